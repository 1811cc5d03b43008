"""The Tatoeba English->French data set for seq2seq models: d2l 0.17.6's preprocessing,
tokenization, padding and training pairs, plus a held-out set whose English sources the model
never trained on (the d2l book has none)."""
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from data.download import ENV_VAR, DataError, ensure_file, not_utf8, sha1_of
from data.vocab import Vocab

ZIP_NAME = "fra-eng.zip"
ZIP_MEMBER = "fra-eng/fra.txt"
RESERVED = ["<pad>", "<bos>", "<eos>"]  # after <unk>: <unk>=0, <pad>=1, <bos>=2, <eos>=3


class Pair(NamedTuple):
    line: int  # 0-based line of the file, as d2l's enumerate(text.split('\n')) counts it
    src: str   # preprocessed English, tokens separated by single spaces
    tgt: str   # preprocessed French


@dataclass
class NMTData:
    src_vocab: Vocab
    tgt_vocab: Vocab
    # (src (N, T), src_valid_len (N,), tgt (N, T), tgt_valid_len (N,)), all int64. Training
    # rows are cut or padded to num_steps (d2l); held-out rows are never cut: sources are padded
    # to max(num_steps, the longest), targets to the longest.
    train: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
    val_sentences: list[tuple[list[str], list[str]]]  # held-out tokens, whole: BLEU refs
    train_sources: frozenset[str]  # every training source, as preprocessed text
    provenance: dict


def preprocess_nmt(text: str) -> str:
    """d2l's: non-breaking spaces become spaces, lowercase, and punctuation becomes its own
    token by putting a space before it (unless one is already there)."""
    text = text.replace("\u202f", " ").replace("\xa0", " ").lower()
    out = [" " + c if i > 0 and c in set(",.!?") and text[i - 1] != " " else c
           for i, c in enumerate(text)]
    return "".join(out)


def read_pairs(path: Path) -> tuple[list[Pair], int]:
    """The file's pairs with their line numbers, and the number of malformed lines skipped.

    The whole text is preprocessed at once, then split into lines, as d2l does. A line is a
    pair when it has at least two tab-separated fields, both non-empty: Anki exports add a
    third attribution column, which is ignored (d2l keeps exactly-two-field lines only)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise not_utf8(path) from e
    lines = preprocess_nmt(text).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()  # a file's trailing newline(s) are not malformed lines
    pairs, malformed = [], 0
    for i, line in enumerate(lines):
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].strip() and parts[1].strip():
            pairs.append(Pair(i, parts[0], parts[1]))
        else:
            malformed += 1
    return pairs, malformed


def split_pairs(pairs: list[Pair], num_examples: int,
                val_pairs: int) -> tuple[list[Pair], list[Pair], int]:
    """(training pairs, held-out pairs, held-out candidates skipped).

    Training: the pairs on file lines 0..num_examples, as d2l's tokenize_nmt, whose loop stops
    at `i > num_examples`: num_examples=600 trains on 601 pairs of a clean file.
    Held-out: the next `val_pairs` pairs of the file, in file order, whose English source is no
    training source. Tatoeba lists several French translations of one sentence, so a later
    pair may repeat a training source; such a candidate is skipped and counted. The file is
    sorted by length, so the held-out sentences look like the training ones."""
    train = [p for p in pairs if p.line <= num_examples]
    seen, val, skipped = {p.src for p in train}, [], 0
    for p in pairs[len(train):]:
        if len(val) == val_pairs:
            break
        if p.src in seen:
            skipped += 1
        else:
            val.append(p)
    return train, val, skipped


def truncate_pad(ids: list[int], num_steps: int, pad: int) -> list[int]:
    if len(ids) > num_steps:
        return ids[:num_steps]
    return ids + [pad] * (num_steps - len(ids))


def build_array(lines: list[list[str]], vocab: Vocab, num_steps: int):
    """d2l's build_array_nmt: ids + <eos>, truncated or padded to num_steps; the valid length
    counts non-<pad> tokens (a truncated line loses its <eos> and has valid_len = num_steps)."""
    rows = [truncate_pad(vocab.indices(line) + [vocab["<eos>"]], num_steps, vocab["<pad>"])
            for line in lines]
    # reshape keeps the (0, num_steps) shape when there are no lines
    array = torch.tensor(rows, dtype=torch.long).reshape(len(rows), num_steps)
    return array, (array != vocab["<pad>"]).long().sum(1)


def longest(lines: list[list[str]]) -> int:
    """The positions the longest line needs, its <eos> included."""
    return max(len(line) for line in lines) + 1


def load_nmt_data(path: Path, num_examples: int, val_pairs: int, num_steps: int,
                  min_freq: int) -> NMTData:
    if num_examples < 1 or val_pairs < 1:
        raise ValueError(
            f"data.num_examples={num_examples} and data.val_pairs={val_pairs}: both must be "
            f">= 1, since the held-out pairs come from the file after the training lines "
            f"0..num_examples (0, 'every pair', would leave none); e.g. data.num_examples=600 "
            f"data.val_pairs=500")
    pairs, malformed = read_pairs(path)
    train, val, skipped = split_pairs(pairs, num_examples, val_pairs)
    if not train:
        raise DataError(f"{path} holds no tab-separated English/French pairs on lines "
                        f"0..{num_examples} (data.num_examples={num_examples}).")
    if len(val) < val_pairs:
        raise DataError(
            f"data.val_pairs={val_pairs}, but {path} has only {len(val)} pairs after line "
            f"{num_examples} whose English source is not a training source ({skipped} more "
            f"repeat one). Lower data.val_pairs to at most {len(val)}, or lower "
            f"data.num_examples={num_examples} to leave more of the file for held-out pairs.")
    src, tgt = [p.src.split(" ") for p in train], [p.tgt.split(" ") for p in train]
    val_src, val_tgt = [p.src.split(" ") for p in val], [p.tgt.split(" ") for p in val]
    # Built from training pairs only: held-out words never seen in training become <unk>.
    src_vocab = Vocab((t for line in src for t in line), min_freq, RESERVED)
    tgt_vocab = Vocab((t for line in tgt for t in line), min_freq, RESERVED)
    train_arrays = (*build_array(src, src_vocab, num_steps),
                    *build_array(tgt, tgt_vocab, num_steps))
    # Held-out rows are never cut, so perplexity scores every target token, <eos> included.
    val_arrays = (*build_array(val_src, src_vocab, max(num_steps, longest(val_src))),
                  *build_array(val_tgt, tgt_vocab, longest(val_tgt)))
    train_sources = frozenset(" ".join(line) for line in src)
    provenance = {
        "file": str(Path(path).resolve()),
        "sha1": sha1_of(path),
        "pairs_in_file": len(pairs),
        "malformed_lines": malformed,
        "num_examples": num_examples,
        "train_pairs": len(train),
        "train_sources": len(train_sources),
        "val_pairs": len(val),
        "val_sources": len({p.src for p in val}),
        "val_last_line": val[-1].line,
        "val_pairs_skipped_seen_source": skipped,
        # 0 by construction; counted from the token lists the arrays are built from
        "val_sources_seen_in_training": sum(" ".join(s) in train_sources for s in val_src),
        "src_vocab_size": len(src_vocab),
        "tgt_vocab_size": len(tgt_vocab),
        "train_tgt_tokens": int(train_arrays[3].sum()),
        "val_tgt_tokens": int(val_arrays[3].sum()),
        # scored like any token (predicting <unk> counts as right): a share worth knowing
        "val_tgt_unk_tokens": int((val_arrays[2] == tgt_vocab.unk).sum()),
    }
    return NMTData(src_vocab, tgt_vocab, train_arrays, val_arrays,
                   list(zip(val_src, val_tgt)), train_sources, provenance)


def fra_file(root: Path, file: str, url: str, zip_sha1: str | None, sha1: str | None,
             download: bool) -> Path:
    """The path of the text to read: `root/file`, extracted from fra-eng.zip (downloaded if
    allowed, or already in `root`; checked against `zip_sha1`) when missing. The text itself
    is checked against `sha1` on every run when one is given; null accepts any file (the
    local copies differ from the zip's member), whose sha1 the run records anyway."""
    root = Path(root)
    path = root / file
    if not path.is_file():
        extract(root, file, url, zip_sha1, download)
    if sha1 and (found := sha1_of(path)) != sha1:
        raise DataError(
            f"{path.resolve()} has sha1 {found}, but data.sha1={sha1}: it is not the text "
            f"this config names. Point data.root (or {ENV_VAR}) at the folder holding that "
            f"file, or set data.sha1={found} (or null) to train on this one.")
    return path


def extract(root: Path, file: str, url: str, zip_sha1: str | None, download: bool) -> None:
    """`root/file` from the zip's member, written atomically."""
    path = root / file
    if not download and not (root / ZIP_NAME).is_file():
        raise DataError(
            f"{file} is not in the data folder {root.resolve()} and data.download=false. "
            f"Download {url} and unzip it into that folder, or set {ENV_VAR} "
            f"(or data.root=...) to a folder that holds {file}."
        )
    archive = ensure_file(root, ZIP_NAME, url, zip_sha1, download)
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
