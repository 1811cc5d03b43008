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

Trust: an entry is reused only when it is what was filed there, for this very run: its content
matches the sha256 written beside it at filing (CHECKSUM, inside the entry), and its own
identity and environment recompute to the key it is filed under. An edited metric, another
run's result swapped in, an entry from before checksums, or an unreadable one is a warning, and
the run trains and replaces it. A store that cannot be written is refused before any work
(check): a run that trained and then could not file its result would fail after the work.

Layout: <store>/<key[:2]>/<key>.json, each a result.json with CHECKSUM added. Config: `store`
(a folder; null: off).
"""
import hashlib
import json
import logging
from pathlib import Path

from runner.errors import ConfigError
from runner.result import FINISHED, finite_or_none, load_result, write_json_atomic
from runner.run.identity import Identity
from runner.run.output import probe_write

log = logging.getLogger(__name__)
CHECKSUM = "store_sha256"  # the entry's content (all but this field) as filed
NOT_FILED = ("reused_from", "skipped", "reused")  # a copy's marks, never the run's


def entry(store: str | Path, key: str) -> Path:
    return Path(store) / key[:2] / f"{key}.json"


def check(store: str | Path) -> None:
    """Before any work: the store folder can be created and a file written there; else
    ConfigError naming `store`, why, and the fix."""
    try:
        probe_write(Path(store))  # bytes: an empty file can be made on a full disk
    except OSError as e:
        raise ConfigError(f"invalid config:\n  store={store} cannot be written "
                          f"({e.strerror or e}): a run would train, then fail to file its "
                          f"result; pass a folder you can write (e.g. store=results/store), "
                          f"or store=null to run without the store") from e


def checksum(content: dict) -> str:
    """sha256 of `content` as JSON (NaN and inf as null, as written)."""
    text = json.dumps(finite_or_none(content), sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def read(store: str | Path, key: str) -> tuple[dict | None, str | None]:
    """(the entry filed under `key`, without its checksum, None) when it can be trusted;
    (None, why not) when it cannot; (None, None) when there is none."""
    path = entry(store, key)
    try:
        found = load_result(path)
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as e:
        return None, f"is unreadable ({e})"
    content = {k: v for k, v in found.items() if k != CHECKSUM}
    if CHECKSUM not in found:
        return None, "has no checksum (filed by an older runner, or not by the runner)"
    if found[CHECKSUM] != checksum(content):
        return None, "was changed after it was filed (its content does not match its checksum)"
    if content.get("status") not in FINISHED:
        return None, f"is no finished result (status {content.get('status')!r})"
    try:
        own = Identity.of_result(content).store_key(content["environment"])
    except (KeyError, AttributeError, TypeError):  # no environment, a dataset not an object
        own = None
    if own != key:  # another run's result, filed (or copied) under this run's key
        return None, f"is the result of another run (its config and environment give key {own})"
    return content, None


def lookup(store: str | Path, key: str) -> dict | None:
    """The finished result filed under `key` when it can be trusted (read), else None; an
    entry that cannot is a warning: the run trains and replaces it (put)."""
    found, why = read(store, key)
    if why:
        log.warning("store: %s %s: not reused; the run trains and replaces it",
                    entry(store, key), why)
    return found


def put(store: str | Path, key: str, result: dict) -> None:
    """File a finished result with its checksum (atomically). A trusted entry already there is
    left as it is; any other is replaced. A failed write is a warning, not the run's failure:
    its own result.json is written already."""
    if result.get("status") not in FINISHED or read(store, key)[0] is not None:
        return
    content = {k: v for k, v in result.items() if k not in NOT_FILED}
    path = entry(store, key)
    try:
        write_json_atomic(path, {**content, CHECKSUM: checksum(content)})
    except OSError as e:
        log.warning("store: could not file %s (%s): the run's own result is intact; the store "
                    "will not copy it", path, e.strerror or e)
