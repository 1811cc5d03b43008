"""Every use of Hydra's private API, behind one door. hydra-core is pinned to 1.3.x
(pyproject.toml) because of these; tests/test_hydra_private.py fails loudly, naming the
missing piece, when an installed Hydra changes one of them.

- BasicSweeper (hydra._internal.core_plugins): the runner's sweeper extends Hydra's own
  cartesian-product sweeper rather than re-implementing override expansion; Hydra exports no
  public base class that does it. Another app's sweep is BasicSweeper.sweep itself; the
  runner's reads its max_batch_size and params and calls split_arguments.
- get_overrides_dirname (hydra._internal.config_loader_impl): the exact folder name Hydra will
  give a job (hydra.job.override_dirname), so the manifest can name each run's folder before
  the job starts, and resume finds it.
"""
import importlib

from hydra._internal.config_loader_impl import get_overrides_dirname
from hydra.core.override_parser.types import Override
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig

__all__ = ["basic_sweeper", "job_folder", "sweep_params"]


def basic_sweeper() -> type[Sweeper]:
    """Hydra's BasicSweeper class, looked up when the plugin module is imported. Not imported
    here at module level: Hydra's plugin scan re-imports its core plugins, and a subclass of an
    earlier copy of the class fails in BasicSweeper.__init__'s super(BasicSweeper, self)."""
    return importlib.import_module("hydra._internal.core_plugins.basic_sweeper").BasicSweeper


def job_folder(overrides: list[Override], exclude_keys: list[str], naming: DictConfig) -> str:
    """The folder Hydra names a job with these overrides under `hydra.sweep.subdir:
    ${hydra:job.override_dirname}` when its hydra.job.config.override_dirname is `naming`
    with these `exclude_keys` (Hydra leaves out the overrides whose key is one, exactly)."""
    return get_overrides_dirname(overrides, list(exclude_keys), naming.item_sep, naming.kv_sep)


def sweep_params(sweeper: Sweeper) -> list[str]:
    """The `hydra.sweeper.params` of a named sweep as override strings ("key=a,b")."""
    return [f"{key}={value}" for key, value in sweeper.params.items()]
