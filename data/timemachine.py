"""Preprocessing of The Time Machine, as d2l's `read_time_machine` and `tokenize`."""
import re
from pathlib import Path

from data.download import not_utf8

TOKEN_KINDS = ("char", "word")


def read_lines(path: Path) -> list[str]:
    """Lines with every run of non-letters replaced by one space, stripped and lowercased."""
    try:
        with open(path, encoding="utf-8") as f:
            return [re.sub("[^A-Za-z]+", " ", line).strip().lower() for line in f]
    except UnicodeDecodeError as e:
        raise not_utf8(path) from e


def tokenize(lines: list[str], token: str) -> list[str]:
    """Flatten lines into one token stream, as d2l's corpus: chars (line breaks dropped, as in
    d2l) or words."""
    if token == "char":
        return [ch for line in lines for ch in line]
    if token == "word":
        return [w for line in lines for w in line.split()]
    raise ValueError(f"data.token={token!r} is not a token kind; use one of {TOKEN_KINDS}")
