"""Resume: the finished result already in a run's folder, reused only when it is the result
the current command would produce (the same identity: runner/run/identity.py)."""
import logging
from pathlib import Path

from omegaconf import DictConfig

from runner.errors import ConfigError
from runner.result import FINISHED, load_result, version_label
from runner.run.environment import code_version
from runner.run.identity import Identity

log = logging.getLogger(__name__)


def finished_result(path: Path, cfg: DictConfig, warn: bool = False) -> dict | None:
    """The finished result at `path` that resume would consider, if any: none under
    overwrite=true, nor a missing, unreadable, failed or interrupted one (the run runs again).
    `warn`: say so when the file is there but unreadable (not JSON, not an object)."""
    if cfg.overwrite:
        return None
    try:
        existing = load_result(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:  # trained again, and said so, as the store says so
        if warn:
            log.warning("%s is unreadable (%s): the run trains again and replaces it", path, e)
        return None
    return existing if existing.get("status") in FINISHED else None


def previous_result(path: Path, cfg: DictConfig, data_sha1: str,
                    packed: bool = False) -> dict | None:
    """The finished result already at `path` for this very run, if any (resume; `packed`: the
    run trains in a pack). A finished result of anything else is never silently replaced, nor
    reused: ConfigError."""
    if (existing := finished_result(path, cfg, warn=True)) is None:
        return None
    why = Identity.of(cfg, data_sha1, packed).differs(
        Identity.of_result(existing),
        data=f"{cfg.data.get('file')} under data.root={cfg.data.get('root')}")
    if why is None:
        return existing
    raise ConfigError(f"{path} holds a finished result (run {existing.get('run_id')}) that "
                      f"{why}: choose another output folder (hydra.run.dir or hydra.sweep.dir), "
                      f"or pass overwrite=true to replace it")


def other_code_version(result: dict, current: str | None = None) -> str | None:
    """The code version that made `result` when it is not `current` (default: the
    checkout's)."""
    made_by = version_label(result.get("environment", {}))
    return made_by if made_by != (current or version_label(code_version())) else None
