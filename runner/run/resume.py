"""Resume: the finished result already in a run's folder, reused only when it is the result
the current command would produce (same config, data file and result format)."""
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from runner.errors import ConfigError
from runner.result import (
    FINISHED,
    SCHEMA_VERSION,
    read_result,
    run_identity,
    version_label,
)
from runner.run.environment import code_version


def previous_result(path: Path, cfg: DictConfig, data_sha1: str) -> dict | None:
    """The finished result already at `path` for this very experiment, if any (resume): the
    same config (execution settings aside), the same data file (by sha1) and the same result
    format. A finished result of anything else is never silently replaced, nor reused."""
    existing = read_result(path)
    if cfg.overwrite or not existing or existing.get("status") not in FINISHED:
        return None  # missing, failed or interrupted: run (again)
    if existing.get("schema_version") != SCHEMA_VERSION:
        why = (f"was made by an older runner (result schema_version "
               f"{existing.get('schema_version')}, now {SCHEMA_VERSION}) whose metrics are "
               f"computed differently")
    elif run_identity(existing.get("config", {})) != run_identity(
            OmegaConf.to_container(cfg, resolve=True)):
        why = "is of a different config"
    elif (seen := existing.get("dataset", {}).get("sha1")) != data_sha1:
        why = (f"was trained on data with sha1 {seen}, but {cfg.data.file} under "
               f"data.root={cfg.data.root} now has sha1 {data_sha1}")
    else:
        return existing
    raise ConfigError(f"{path} holds a finished result (run {existing.get('run_id')}) that "
                      f"{why}: choose another output folder (hydra.run.dir or hydra.sweep.dir), "
                      f"or pass overwrite=true to replace it")


def other_code_version(result: dict, current: str | None = None) -> str | None:
    """The code version that made `result` when it is not `current` (default: the
    checkout's)."""
    made_by = version_label(result.get("environment", {}))
    return made_by if made_by != (current or version_label(code_version())) else None
