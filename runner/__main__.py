"""`python -m runner [overrides...]`: compose the config with Hydra and run it."""
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from data import DataError
from runner.errors import ConfigError
from runner.run import run
from runner.run.interrupt import Interrupted
from runner.sweep.job import run_job


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> str:
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:  # one run of a sweep: never raises
        return run_job(cfg, Path(hydra_cfg.runtime.output_dir), Path(hydra_cfg.sweep.dir))
    try:
        return run(cfg, hydra_cfg.runtime.output_dir)["status"]
    except (ConfigError, DataError) as e:  # bad input: one clear message, no traceback
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:  # SIGTERM or Ctrl-C: checkpointed and recorded; one line
        print(f"interrupted ({e}): {e.resume_hint}", file=sys.stderr)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
