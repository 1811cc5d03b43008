"""The Tatoeba English->French data set for seq2seq models, with d2l 0.17.6's preprocessing,
tokenization and padding, plus a seeded held-out split that the d2l book does not have."""
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from data.download import ENV_VAR, DataError, ensure_file, sha1_of
from data.vocab import Vocab

ZIP_NAME = "fra-eng.zip"
ZIP_MEMBER = "fra-eng/fra.txt"
RESERVED = ["<pad>", "<bos>", "<eos>"]  # after <unk>: <unk>=0, <pad>=1, <bos>=2, <eos>=3


@dataclass
class NMTData:
    src_vocab: Vocab
    tgt_vocab: Vocab
    # (src (N, T), src_valid_len (N,), tgt (N, T), tgt_valid_len (N,)), all int64
    train: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # the held-out pairs
    val_pairs: list[tuple[list[str], list[str]]]  # held-out tokens, untruncated: BLEU refs
    provenance: dict


def preprocess_nmt(text: str) -> str:
    """d2l's: non-breaking spaces become spaces, lowercase, and punctuation becomes its own
    token by putting a space before it (unless one is already there)."""
    text = text.replace("\u202f", " ").replace("\xa0", " ").lower()
    out = [" " + c if i > 0 and c in set(",.!?") and text[i - 1] != " " else c
           for i, c in enumerate(text)]
    return "".join(out)


def read_pairs(path: Path) -> tuple[list[tuple[str, str]], int]:
    """(english, french) pairs and the number of malformed lines skipped. Anki exports may add
    a third attribution column, so only the first two fields are used."""
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()  # a file's trailing newline(s) are not malformed lines
    pairs, malformed = [], 0
    for line in lines:
        parts = preprocess_nmt(line).split("\t")
        if len(parts) >= 2 and parts[0].strip() and parts[1].strip():
            pairs.append((parts[0], parts[1]))
        else:
            malformed += 1
    return pairs, malformed


def tokenize(pairs, num_examples: int) -> tuple[list[list[str]], list[list[str]]]:
    """d2l's tokenize_nmt: split on single spaces. Takes exactly the first `num_examples` pairs
    (0 = all); d2l's own loop (`i > num_examples`) keeps one more."""
    pairs = pairs[:num_examples] if num_examples else pairs
    return [en.split(" ") for en, _ in pairs], [fr.split(" ") for _, fr in pairs]


def truncate_pad(ids: list[int], num_steps: int, pad: int) -> list[int]:
    if len(ids) > num_steps:
        return ids[:num_steps]
    return ids + [pad] * (num_steps - len(ids))


def build_array(lines: list[list[str]], vocab: Vocab, num_steps: int):
    """d2l's build_array_nmt: ids + <eos>, truncated or padded to num_steps; the valid length
    counts non-<pad> tokens (a truncated line loses its <eos> and has valid_len = num_steps)."""
    rows = [truncate_pad(vocab.indices(line) + [vocab["<eos>"]], num_steps, vocab["<pad>"])
            for line in lines]
    # reshape keeps the (0, num_steps) shape when there are no lines (val_fraction=0)
    array = torch.tensor(rows, dtype=torch.long).reshape(len(rows), num_steps)
    return array, (array != vocab["<pad>"]).long().sum(1)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded shuffle into (train, held-out) indices, each kept in file order. The held-out
    share is floor(val_fraction * n), at least 1 when val_fraction > 0 and at most n - 1, so
    training is never empty."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = min(max(int(val_fraction * n), 1), n - 1) if val_fraction > 0 else 0
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(perm[n_val:]), sorted(perm[:n_val])


def load_nmt_data(path: Path, num_examples: int, val_fraction: float, num_steps: int,
                  min_freq: int, seed: int) -> NMTData:
    pairs, malformed = read_pairs(path)
    src, tgt = tokenize(pairs, num_examples)
    if not src:
        raise DataError(f"{path} holds no tab-separated English/French pairs.")
    train_idx, val_idx = split_indices(len(src), val_fraction, seed)
    # Built from training pairs only: held-out words never seen in training become <unk>.
    src_vocab = Vocab((t for i in train_idx for t in src[i]), min_freq, RESERVED)
    tgt_vocab = Vocab((t for i in train_idx for t in tgt[i]), min_freq, RESERVED)

    def arrays(idx):
        return (*build_array([src[i] for i in idx], src_vocab, num_steps),
                *build_array([tgt[i] for i in idx], tgt_vocab, num_steps))

    train, val = arrays(train_idx), arrays(val_idx)
    provenance = {
        "file": str(Path(path).resolve()),
        "sha1": sha1_of(path),
        "pairs_in_file": len(pairs),
        "malformed_lines": malformed,
        "num_examples": num_examples,
        "train_pairs": len(train_idx),
        "val_pairs": len(val_idx),
        "src_vocab_size": len(src_vocab),
        "tgt_vocab_size": len(tgt_vocab),
        "train_tgt_tokens": int(train[3].sum()),
    }
    val_pairs = [(src[i], tgt[i]) for i in val_idx]
    return NMTData(src_vocab, tgt_vocab, train, val, val_pairs, provenance)


def fra_file(root: Path, file: str, url: str, sha1: str | None, download: bool) -> Path:
    """`root/file`, extracting it from the sha1-checked fra-eng.zip (downloaded if allowed, or
    already in `root`) when missing. A file already there is the user's: used as is."""
    root = Path(root)
    path = root / file
    if path.is_file():
        return path
    if not download and not (root / ZIP_NAME).is_file():
        raise DataError(
            f"{file} is not in the data folder {root.resolve()} and data.download=false. "
            f"Download {url} and unzip it into that folder, or set {ENV_VAR} "
            f"(or data.root=...) to a folder that holds {file}."
        )
    archive = ensure_file(root, ZIP_NAME, url, sha1, download)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Extract next to the target, then rename: an interrupted run never leaves a partial file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, zipfile.ZipFile(archive) as z, z.open(ZIP_MEMBER) as f:
            shutil.copyfileobj(f, out)
        os.replace(tmp, path)
    except (KeyError, zipfile.BadZipFile) as e:
        raise DataError(f"{archive} is not a zip holding {ZIP_MEMBER} ({e}).") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
