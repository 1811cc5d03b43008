"""`python -m runner [overrides...]`: compose the config with Hydra and run it."""
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from data import DataError
from runner.errors import ConfigError
from runner.run import run


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> str:
    try:
        return run(cfg, HydraConfig.get().runtime.output_dir)["status"]
    except (ConfigError, DataError) as e:  # bad input: one clear message, no traceback
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
