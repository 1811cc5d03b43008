"""Shared fixtures: a tiny generated corpus and the real config, composed and shrunk."""
import os
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


def pytest_configure(config):
    """Under pytest-xdist (make test: one worker per core), one torch thread per worker and
    per CLI process a test starts: two workers with a thread per core each would oversubscribe
    the cores, which slows torch down many times over."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Tests marked cuda skip, with the reason, where torch sees no CUDA device: the CPU
    suite collects them and says why they did not run; make gpu-check runs them on a GPU."""
    cuda = [item for item in items if item.get_closest_marker("cuda")]
    if not cuda:
        return
    import torch

    if torch.cuda.is_available():
        return
    why = pytest.mark.skip(reason=f"no CUDA device (torch {torch.__version__}, CUDA build: "
                                  f"{torch.version.cuda or 'none'}): make gpu-check on a GPU")
    for item in cuda:
        item.add_marker(why)


def pytest_runtest_logreport(report):
    """Under RUNNER_SKIPPED_FILE, each skipped test's id, one a line: CI runs the README's
    suite first with no optional extra, then these again once the extras are installed.
    Written by the controlling process only (pytest-xdist's workers report to it)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    if report.skipped and (path := os.environ.get("RUNNER_SKIPPED_FILE")):
        with open(path, "a") as f:
            f.write(report.nodeid + "\n")
