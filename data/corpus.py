"""The language-model data set: a training token stream and a held-out slice after it."""
from dataclasses import dataclass
from pathlib import Path

import torch

from data.download import sha1_of
from data.timemachine import read_lines, tokenize
from data.vocab import Vocab


@dataclass
class LMData:
    vocab: Vocab
    train: torch.Tensor  # (N_train,) int64 token ids
    val: torch.Tensor  # (N_val,) int64 token ids, the tokens right after the training slice
    provenance: dict


def split_tokens(tokens: list[str], max_tokens: int | None, val_tokens: int):
    """Training tokens are the first `max_tokens` (the study's corpus); the held-out slice is
    the `val_tokens` that follow, so the two never overlap. With max_tokens=None the training
    slice is everything before the last `val_tokens`."""
    end = max(len(tokens) - val_tokens, 0) if max_tokens is None else max_tokens
    return tokens[:end], tokens[end:end + val_tokens]


def load_lm_data(path: Path, token: str, max_tokens: int | None, val_tokens: int,
                 min_freq: int = 0) -> LMData:
    tokens = tokenize(read_lines(path), token)
    train, val = split_tokens(tokens, max_tokens, val_tokens)
    # Built from training tokens only: held-out words never seen in training become <unk>.
    vocab = Vocab(train, min_freq=min_freq)
    provenance = {
        "file": str(Path(path).resolve()),
        "sha1": sha1_of(path),
        "token": token,
        "corpus_tokens": len(tokens),
        "train_tokens": len(train),
        "val_tokens": len(val),
        "vocab_size": len(vocab),
        "val_unk_tokens": sum(1 for t in val if t not in vocab.token_to_idx),
    }
    return LMData(vocab, _ids(vocab, train), _ids(vocab, val), provenance)


def _ids(vocab: Vocab, tokens: list[str]) -> torch.Tensor:
    return torch.tensor(vocab.indices(tokens), dtype=torch.long)
