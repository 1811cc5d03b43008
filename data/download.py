"""Fetching a corpus file into the data folder, with its sha1 checked.

This is the only module that touches the network, and only when `ensure_file` is asked to
download; building a data set never downloads anything on its own.
"""
import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

ENV_VAR = "RUNNER_DATA_DIR"


class DataError(RuntimeError):
    """A corpus file is missing, unreachable or not the file it should be."""


def not_utf8(path: Path) -> DataError:
    """The error for a corpus file that is not UTF-8 text (a binary or wrongly encoded file
    under the corpus's name): the file, the offset of its first bad byte, and the fix."""
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
        where = ""
    except UnicodeDecodeError as e:
        where = f" (byte {e.start} is 0x{data[e.start]:02x})"
    return DataError(
        f"{Path(path).resolve()} is not UTF-8 text{where}: it is not the corpus. Point "
        f"data.root (or {ENV_VAR}) at the folder holding the right {Path(path).name}, or "
        f"convert this file to UTF-8 (e.g. iconv -f latin1 -t utf-8); a data.sha1 of the "
        f"expected file refuses a wrong one before it is read.")


def sha1_of(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_file(root: Path, name: str, url: str, sha1: str | None, download: bool) -> Path:
    """Return `root/name`, downloading it from `url` first if it is missing and allowed.

    A file already present is checked against `sha1` (None skips the check, for user-supplied
    files); a mismatch is an error rather than a silent re-download.
    """
    path = Path(root) / name
    if path.is_file():
        found = sha1_of(path)
        if sha1 and found != sha1:
            raise DataError(
                f"{path} has sha1 {found}, expected {sha1}: it is not the file the study used. "
                f"Delete it to download a fresh copy from {url}, or point {ENV_VAR} "
                f"(or data.root=...) at a folder holding the right {name}."
            )
        return path
    if not download:
        raise DataError(
            f"{name} is not in the data folder {Path(root).resolve()} and data.download=false. "
            f"Download it from {url} into that folder, or set {ENV_VAR} (or data.root=...) "
            f"to a folder that holds {name}."
        )
    fetch(url, path, sha1)
    return path


def fetch(url: str, path: Path, sha1: str | None, timeout: float = 30.0) -> None:
    """Download `url` to `path` atomically (temp file + rename), checking its sha1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"downloading {url} -> {path}", flush=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while block := resp.read(1 << 20):
                out.write(block)
        found = sha1_of(Path(tmp))
        if sha1 and found != sha1:
            raise DataError(f"{url} downloaded with sha1 {found}, expected {sha1}; not saved.")
        os.replace(tmp, path)
    except OSError as e:  # URLError, timeouts and refused connections are all OSErrors
        raise DataError(
            f"could not download {url} into {path.parent.resolve()} ({e}). Offline? Copy "
            f"{path.name} there yourself, or set {ENV_VAR} (or data.root=...) to a folder "
            f"that holds it."
        ) from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
