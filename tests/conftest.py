"""Shared fixtures: a tiny generated corpus and the real config, composed and shrunk."""
from pathlib import Path

import pytest

from tests.helpers import compose_config, tiny_overrides, write_corpus


@pytest.fixture
def corpus_dir(tmp_path) -> Path:
    root = tmp_path / "corpora"
    root.mkdir()
    write_corpus(root / "tiny.txt")
    return root


@pytest.fixture
def tiny_cfg(corpus_dir):
    """The real config, shrunk to the tiny corpus; extra overrides as arguments."""
    return lambda *extra: compose_config(*tiny_overrides(corpus_dir), *extra)
