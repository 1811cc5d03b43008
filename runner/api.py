"""The runner from Python: `from runner.api import run, load_results` (docs/python-api.md).

run() composes the config from the same files and `key=value` overrides as the `runner`
command, validates it as the command does and trains one run in this process;
load_results() reads every result.json under a folder into one pandas DataFrame."""
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from runner.config_dir import CONF_DIR
from runner.errors import ConfigError
from runner.hydra_errors import bad_input
from runner.run import run as run_config
from runner.run.keys import without_added_keys
from runner.run.validate import validate

# the study's knobs: load_results names their columns by the last part of the key
KNOBS = ("model.num_hiddens", "model.num_layers", "data.num_steps", "data.batch_size",
         "optim.lr", "train.num_epochs")


def run(overrides: Sequence[str] = (), *, out_dir: str | Path | None = None,
        config_dir: str | Path | None = None) -> dict:
    """Compose the config with `overrides` (as on the command line: ["model=gru",
    "train.num_epochs=5"]), validate it and run it once into `out_dir`; return the result
    (what out_dir/result.json holds; a finished run of this config there is returned as is,
    with "skipped": True). `out_dir` defaults to the command's own default,
    results/runs/<date>_<time>_<model> under the working folder. `config_dir`: a folder of
    your own configs searched as well (the command's --config-dir), e.g. a conf/model/ file
    of your own. Bad input raises runner.errors.ConfigError (a bad corpus file:
    data.DataError) before any work."""
    if isinstance(overrides, str):  # list("model=gru") would be one override per letter
        raise ConfigError(f"overrides={overrides!r} is not allowed: it must be a list of "
                          f"key=value strings (e.g. run([{overrides!r}]))")
    overrides = list(overrides)
    _refuse_hydra_settings(overrides)
    cfg, primary = _compose(overrides, _search_path(config_dir))
    validate(cfg, primary)  # as the command does: `+key=value` checked against the files' keys
    if out_dir is None:
        out_dir = Path("results", "runs", f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{cfg.model.cell}")
    return run_config(cfg, Path(out_dir))


def load_results(folder: str | Path) -> pd.DataFrame:
    """One row per run's valid result.json under `folder` (a sweep's, results/, any): the
    run's id, status and path, its config (flattened: model.cell, seed, ...), its metrics
    (val_perplexity, tokens_per_sec, ...) and environment. The study's knobs are named
    without their section: num_hiddens, num_layers, num_steps, batch_size, lr, num_epochs.
    The same table as the report's runs.csv: invalid files are skipped with a warning."""
    if not Path(folder).is_dir():
        raise ConfigError(f"load_results({str(folder)!r}): there is no such folder (e.g. the "
                          f"out_dir given to run(), or a sweep's results/<name>)")
    from runner.report import runs  # the report's package imports matplotlib: only here

    results, _ = runs.load_results(Path(folder))
    df = runs.tidy(results)
    return df.rename(columns={key: key.rsplit(".", 1)[1] for key in KNOBS})


def _refuse_hydra_settings(overrides: list[str]) -> None:
    """hydra.* settings shape how the command starts a run (its folder, a sweep, logging);
    here nothing reads them: say what does the same, rather than ignore them."""
    for line in overrides:
        key = line.lstrip("+~").partition("=")[0]
        if key == "hydra" or key.startswith(("hydra.", "hydra/")) or line.startswith("-"):
            raise ConfigError(f"{line!r} is not allowed in runner.api.run: it is a setting of "
                              f"the runner command; here pass out_dir= (the run's folder) or "
                              f"config_dir= (more configs), and sweep with `runner -m ...`")


def _search_path(config_dir) -> list[str]:
    if config_dir is None:
        return []
    folder = Path(config_dir).resolve()
    if not folder.is_dir():
        raise ConfigError(f"config_dir={str(config_dir)!r} is not allowed: there is no such "
                          f"folder (a folder of config groups, e.g. one with model/my_cell.yaml)")
    return [f"hydra.searchpath=[file://{folder}]"]


def _compose(overrides: list[str], search: list[str]) -> tuple[DictConfig, DictConfig]:
    """The run's config, and `primary`: the config without the `+` overrides that add keys
    (runner/run/keys.py). Hydra's errors become the command's messages."""
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3", job_name="runner"):
            cfg = compose("config", overrides=overrides + search, return_hydra_config=True)
            hydra = cfg.hydra
            kept = without_added_keys(overrides, hydra.runtime.choices)
            primary = cfg if kept == overrides else compose("config", overrides=kept + search)
    except Exception as e:
        message = bad_input(e, overrides)
        if message is None:  # not the input's fault
            raise
        raise ConfigError(message) from e
    if hydra.mode == RunMode.MULTIRUN:  # sweep=..., experiment=...: their files set it
        raise ConfigError(f"{' '.join(overrides)!r} is a sweep "
                          f"({dict(hydra.sweeper.get('params') or {})}): runner.api.run runs "
                          f"one config; run the sweep with `runner -m {' '.join(overrides)}`")
    with open_dict(cfg):
        del cfg["hydra"]  # the command's task function gets the config without it, too
    return cfg, primary
