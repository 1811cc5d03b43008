"""The one JSON result a run leaves behind: building blocks, schema and atomic writing."""
import copy
import functools
import json
import math
import os
import secrets
import traceback
from datetime import datetime, timezone
from pathlib import Path

SCHEMA_VERSION = 2
RESULT_FILE = "result.json"
SCHEMA_FILE = Path(__file__).with_name("result.schema.json")
STATUSES = ("completed", "diverged", "failed", "interrupted")  # what a result.json records
FINISHED = ("completed", "diverged")  # re-running either gives the same result: resume skips
# A sweep's two further words for a run: planned and not run yet (its manifest), and kept
# because its folder already held this result (the job's outcome).
PENDING, SKIPPED = "pending", "skipped"
REUSED = "reused"  # a job's outcome: its result copied from the store (runner/run/store.py)
# Execution settings: where and how a run executes, not what it is. Each names a config key
# and every key under it (`logger`: logger.mlflow.tracking_uri, a tracker's from outside the
# package too), or a config group that only picks them (sweep=, experiment=). They are left
# out of the identity that resume compares, of reports' factors and of sweep folder names
# (the runner's sweeper tells Hydra each job's: runner/sweep/sweeper.py). Under
# launcher=parallel each job's device and threads are set to its slot; the device a run used
# is in environment.device, the implementation of its cells (model.impl, resolved for the
# device) in environment.impl.
EXECUTION_KEYS = ("data.root", "data.download", "device", "threads", "model.impl", "quiet",
                  "overwrite", "store", "repeats", "launcher", "logger", "sweep_name", "reproduce",
                  "train.checkpoint_every", "train.keep_checkpoint", "sweep", "experiment",
                  "hparams_search", "objective")

# Keys that add nothing to what a run is: data.name, which earlier runners wrote and nothing
# read, and the class paths a name already records (data._target_: data.task names the task;
# model._target_: model.cell names the model). Left out of the identity and of reports, so
# results made before the config named its classes are still recognised and compared.
RETIRED_KEYS = ("data.name", "data._target_", "model._target_")


def is_execution_key(key: str) -> bool:
    """`key` (dotted) is an execution setting or a key under one (EXECUTION_KEYS)."""
    return any(key == k or key.startswith(k + ".") for k in EXECUTION_KEYS)

# model.cell names earlier runners wrote, now model.cell=<cell> model.impl=fused (the same
# function): reports read them as such, validation refuses them with the new spelling.
RETIRED = {"rnn_fused": "rnn", "gru_fused": "gru"}

def now() -> str:
    """A result's timestamps: UTC, ISO 8601, to the second (they sort as strings)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def version_label(env: dict) -> str:
    """A result's code version (its environment's git fields) as one short string: "8608afc1e2",
    "8608afc1e2+dirty 3f2a9c1b" (the sha1 of its uncommitted diff: two different edits of one
    commit are two versions), "unknown" outside a git checkout."""
    commit, diff = env.get("git_commit"), env.get("git_diff_sha1")
    if not commit:
        return "unknown"
    return commit[:10] + (f"+dirty {diff[:8]}" if diff else "")


def flatten(obj: dict, prefix: str = "") -> dict:
    """{"model": {"cell": "rnn"}} -> {"model.cell": "rnn"}; lists become JSON text, so that
    every value can be compared and grouped."""
    flat = {}
    for key, value in obj.items():
        name = prefix + str(key)
        if isinstance(value, dict):
            flat |= flatten(value, name + ".")
        else:
            flat[name] = json.dumps(value) if isinstance(value, list) else value
    return flat


def finite_or_none(obj):
    """JSON has no inf or NaN: write them as null (a diverged value, not a number)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    return obj


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))  # UTF-8 whatever the locale: ±, —, †


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`: a reader (or a
    crash at any moment) sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Named before it exists (mkstemp names it as it creates it): a SIGTERM raised anywhere in
    # here (runner/run/interrupt.py) still finds and removes it, however early it lands.
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "xb") as f:  # x: never another's file
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # whatever the umask: results are for everyone to read
        os.replace(tmp, path)
    except OSError as e:  # a full disk: the error names the file it could not write
        if e.filename is None:
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, obj: dict) -> None:
    # Serialised first: an unserialisable object fails before the old file is touched.
    write_text_atomic(path, json.dumps(finite_or_none(obj), indent=2, allow_nan=False) + "\n")


def run_identity(config: dict) -> dict:
    """`config` without its execution settings (and retired keys): equal identities mean the
    same experiment."""
    return without(config, (*EXECUTION_KEYS, *RETIRED_KEYS))


def without(config: dict, keys) -> dict:
    """A copy of the nested `config` without the dotted `keys` (those absent are fine)."""
    config = copy.deepcopy(config)
    for key in keys:
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return config


def load_result(path: Path) -> dict:
    """The JSON object at `path` (a result, a manifest, a store entry: always an object).
    OSError when it cannot be read; ValueError, saying what it holds, when it is not JSON or
    not an object (`"completed"`, `42`, `[1]`: valid JSON that no reader can use)."""
    with open(path) as f:
        obj = json.load(f)
    if not isinstance(obj, dict):
        raise ValueError(f"it holds a JSON {type(obj).__name__} ({json.dumps(obj)[:40]}), "
                         f"not an object")
    return obj


def read_result(path: Path) -> dict | None:
    """The result at `path`, or None if there is none or it is unreadable (load_result)."""
    try:
        return load_result(path)
    except (OSError, ValueError):
        return None


def error_record(exc: BaseException, tail_lines: int = 20) -> dict:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {"type": type(exc).__name__, "message": str(exc),
            "traceback_tail": "".join(lines).splitlines()[-tail_lines:]}


def validate_result(obj: dict) -> None:
    """Raise jsonschema.ValidationError if `obj` does not follow the documented schema."""
    from jsonschema.exceptions import best_match  # lazily: only readers of results need it

    if error := best_match(_validator().iter_errors(obj)):
        raise error


@functools.cache
def _validator():
    """Checking the schema itself costs ~50 ms: once per process, not once per result."""
    from jsonschema.validators import validator_for

    schema = json.loads(SCHEMA_FILE.read_text())
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)
