"""data/download.py: the sha1-checked download, never silent, never the network in tests."""
import hashlib

import pytest

from data import DataError, ensure_file
from data.download import ENV_VAR

# --------------------------------------------------------------------------------------------
# Download

NAME = "timemachine.txt"
CONTENT = b"The Time Machine, by H. G. Wells\nI.\n"
SHA1 = hashlib.sha1(CONTENT).hexdigest()
BAD_SHA1 = "0" * 40
DEAD_URL = "http://127.0.0.1:9/timemachine.txt"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def test_ensure_file_existing_with_matching_sha1(tmp_path):
    (tmp_path / NAME).write_bytes(CONTENT)
    assert ensure_file(tmp_path, NAME, DEAD_URL, SHA1, download=False) == tmp_path / NAME
    assert ensure_file(tmp_path, NAME, DEAD_URL, SHA1, download=True) == tmp_path / NAME


def test_ensure_file_wrong_sha1(tmp_path):
    (tmp_path / NAME).write_bytes(CONTENT)
    with pytest.raises(DataError) as e:
        ensure_file(tmp_path, NAME, DEAD_URL, BAD_SHA1, download=True)
    msg = str(e.value)
    assert SHA1 in msg and BAD_SHA1 in msg and ENV_VAR == "RUNNER_DATA_DIR" and ENV_VAR in msg
    assert (tmp_path / NAME).read_bytes() == CONTENT  # left alone, not re-downloaded


def test_ensure_file_sha1_none_accepts_any_file(tmp_path):
    (tmp_path / NAME).write_bytes(b"anything at all")
    assert ensure_file(tmp_path, NAME, DEAD_URL, None, download=False) == tmp_path / NAME


def test_ensure_file_missing_without_download(tmp_path):
    root = tmp_path / "corpora"
    root.mkdir()
    with pytest.raises(DataError) as e:
        ensure_file(root, NAME, DEAD_URL, SHA1, download=False)
    msg = str(e.value)
    assert str(root.resolve()) in msg and DEAD_URL in msg and "RUNNER_DATA_DIR" in msg
    assert list(root.iterdir()) == []


def test_ensure_file_unreachable_url(tmp_path):
    root = tmp_path / "corpora"
    with pytest.raises(DataError) as e:
        ensure_file(root, NAME, DEAD_URL, SHA1, download=True)
    msg = str(e.value)
    assert str(root.resolve()) in msg and DEAD_URL in msg and "RUNNER_DATA_DIR" in msg
    assert list(root.iterdir()) == []  # neither the file nor a .part temp file


def test_ensure_file_downloads_file_url(tmp_path):
    src = tmp_path / "mirror" / NAME
    src.parent.mkdir()
    src.write_bytes(CONTENT)
    root = tmp_path / "corpora"  # created on demand
    path = ensure_file(root, NAME, src.as_uri(), SHA1, download=True)
    assert path == root / NAME
    assert path.read_bytes() == CONTENT
    assert list(root.iterdir()) == [path]
    # a second call finds the file and does not need the URL any more
    src.unlink()
    assert ensure_file(root, NAME, src.as_uri(), SHA1, download=True) == path


def test_ensure_file_download_with_wrong_sha1_is_refused(tmp_path):
    src = tmp_path / "mirror" / NAME
    src.parent.mkdir()
    src.write_bytes(CONTENT)
    root = tmp_path / "corpora"
    with pytest.raises(DataError) as e:
        ensure_file(root, NAME, src.as_uri(), BAD_SHA1, download=True)
    assert SHA1 in str(e.value) and BAD_SHA1 in str(e.value)
    assert list(root.iterdir()) == []
