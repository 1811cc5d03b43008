"""The result store: every finished run's result, filed under a key computed from everything
that decides its numbers, so that a run asked for again (the study's baseline sits in seven of
its experiments) is copied, not trained again.

The key (runner/run/identity.py Identity.store_key) is a sha256 of: the run's identity (its
config without execution settings, the data file's sha1, the result format: what resume
compares), the code version (git commit, and the uncommitted diff's sha1), and what changes the
floating-point arithmetic though not the experiment: the device's name, the cells'
implementation (environment.impl) and, on a CPU, the thread count. So a stored result is the
one the current command would produce, curve for curve (CPU training is deterministic here:
tests/test_checkpoint.py), timings aside. Outside a git checkout the code version is unknown
and nothing is stored or reused.

Layout: <store>/<key[:2]>/<key>.json, each a result.json. Config: `store` (a folder; null: off).
"""
import logging
from pathlib import Path

from runner.result import FINISHED, read_result, write_json_atomic

log = logging.getLogger(__name__)


def entry(store: str | Path, key: str) -> Path:
    return Path(store) / key[:2] / f"{key}.json"


def lookup(store: str | Path, key: str) -> dict | None:
    """The finished result filed under `key`, or None (absent, unreadable, unfinished)."""
    path = entry(store, key)
    found = read_result(path)
    if found is None and path.exists():
        log.warning("store: %s is unreadable: ignored, the run trains and replaces it", path)
    if found is not None and found.get("status") not in FINISHED:
        return None
    return found


def put(store: str | Path, key: str, result: dict) -> None:
    """File a finished result (atomically; an entry already there is left as it is)."""
    path = entry(store, key)
    if result.get("status") in FINISHED and read_result(path) is None:
        stored = {k: v for k, v in result.items() if k not in ("reused_from", "skipped")}
        write_json_atomic(path, stored)
