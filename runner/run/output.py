"""A run's output folder: checked before any work (it can be created and written, and its
result can land there), and the run's config snapshot (`.hydra/`), written only once the run
is past validation and resume and about to train, so a refused run leaves the folder as it
was (conf/config.yaml sets hydra.output_subdir: null: Hydra writes no snapshot itself)."""
import errno
import logging
import os
import sys
import tempfile
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from runner.errors import ConfigError
from runner.result import RESULT_FILE, write_text_atomic

SNAPSHOT = ".hydra"  # where Hydra itself would write it (hydra.output_subdir's default)
MANIFEST = "manifest.json"  # a sweep folder's (runner/sweep/sweeper.py)
PROBE_BYTES = 64 * 1024  # written by the folder check: room for a result.json (10-60 KB)
FIX = ("choose another folder (e.g. hydra.run.dir=results/runs/mine, or for a sweep "
       "hydra.sweep.dir=results/mine)")


def folder_problem(folder, what: str, remedy: str = "") -> str:
    """The one line for an output folder that cannot be used: which, why, the fix."""
    return f"the output folder {folder} cannot be used: {what}; {remedy}{FIX}"


def probe_write(folder: Path) -> None:
    """Create `folder` if needed and write, fsync and remove PROBE_BYTES there; OSError if
    that cannot be done."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check.", suffix=".tmp")
    try:  # bytes, not an empty file: creating one succeeds on a full disk
        os.write(fd, bytes(PROBE_BYTES))
        os.fsync(fd)  # where blocks are allocated only on flush (ext4, XFS)
    finally:
        os.close(fd)
        os.unlink(probe)


def check_output_folder(out_dir, files=(RESULT_FILE, SNAPSHOT)) -> None:
    """Create `out_dir` if needed and check that a file can be written there and that none of
    `files` (the result, the snapshot folder) is in the way, before any training; raises
    ConfigError naming the folder, what is wrong and the fix."""
    folder = Path(out_dir)
    try:
        probe_write(folder)
    except OSError as e:
        full = e.errno in (errno.ENOSPC, errno.EDQUOT)
        raise ConfigError(folder_problem(folder, e.strerror or str(e),
                                         "free some space, or " if full else "")) from e
    for name in files:
        path = folder / name
        wanted = "folder" if name == SNAPSHOT else "file"
        if path.exists() and path.is_dir() != (wanted == "folder"):
            raise ConfigError(folder_problem(
                folder, f"{path} is {'a file' if wanted == 'folder' else 'a folder'}, where the "
                        f"run writes its {name} {wanted}", "move it away, or "))


def check_not_nested(folder, key: str) -> None:
    """A single run's folder (key: hydra.run.dir) inside a sweep's, or a sweep's folder
    (hydra.sweep.dir) inside a run's: refused, since a report of the outer folder would count
    the stray results among its runs (issue 26, defect 6)."""
    inner = Path(folder).resolve()
    marker, what, example = ((MANIFEST, "sweep", "results/runs/mine") if key == "hydra.run.dir"
                             else (RESULT_FILE, "run", "results/mine"))
    outer = next((p for p in (inner, *inner.parents) if (p / marker).is_file()), None)
    if outer is not None:
        raise ConfigError(f"{key}={folder} is not allowed: it is inside the {what} folder "
                          f"{outer} (it holds {marker}), whose runs would then include this "
                          f"{'single run' if what == 'sweep' else 'sweep'}; choose another "
                          f"folder (e.g. {key}={example})")


def write_snapshot(out_dir, cfg: DictConfig) -> None:
    """The run's config as Hydra would have saved it, in `out_dir/.hydra/`: config.yaml (this
    run's config), and, when the run was started by Hydra, overrides.yaml (the command line's
    overrides) and hydra.yaml (Hydra's own settings). Each file is written atomically."""
    folder = Path(out_dir) / SNAPSHOT
    write_text_atomic(folder / "config.yaml", OmegaConf.to_yaml(cfg))
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():  # run() called directly (tests, scripts): no Hydra
        return
    hydra = HydraConfig.get()
    if hydra.runtime.output_dir != os.path.abspath(out_dir):
        return  # Hydra's settings are another job's: not this run's to record
    write_text_atomic(folder / "overrides.yaml", OmegaConf.to_yaml(hydra.overrides.task))
    write_text_atomic(folder / "hydra.yaml", OmegaConf.to_yaml({"hydra": hydra}))


class LogFile(logging.FileHandler):
    """Hydra's log file in the run folder (hydra.job_logging), which says in one line, once,
    that it cannot be written (a full disk), then leaves the log to the console: logging's own
    handler prints a traceback for every line that fails to reach the file."""
    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            print(f"[log] {self.baseFilename} cannot be written ({sys.exc_info()[1]}): the log "
                  f"goes on on the console only", file=sys.stderr, flush=True)


def log_file_fails_in_one_line() -> None:
    """Put a LogFile in place of each plain log file handler of the root logger (Hydra's,
    set up anew for each job); a user's own logging config (hydra/job_logging=...) keeps its
    handlers and their classes otherwise."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if type(h) is logging.FileHandler]:
        new = LogFile(old.baseFilename, encoding=old.encoding, delay=True)
        new.setLevel(old.level)
        new.setFormatter(old.formatter)
        root.addHandler(new)
        root.removeHandler(old)
        old.close()
