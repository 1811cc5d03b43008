"""Every use of Hydra beyond its documented API, behind one door. hydra-core is pinned to 1.3.x
(pyproject.toml) because of these; tests/test_hydra_private.py has one test per use, and fails,
naming it, when an installed Hydra changes one.

1. BasicSweeper (hydra._internal.core_plugins): the runner's sweeper extends Hydra's own
   cartesian-product sweeper rather than re-implementing override expansion; Hydra exports no
   public base class that does it.
2. get_overrides_dirname (hydra._internal.config_loader_impl): the exact folder name Hydra will
   give a job (hydra.job.override_dirname), so the manifest names each run's folder before the
   job starts, and resume finds it.
3. HYDRA_FULL_ERROR=1 makes hydra.main re-raise an error rather than print it and exit 1. It is
   documented as a debugging switch; the CLI relies on it as behaviour, to report an error
   raised before the task function starts as bad input (exit 2).
4. Hydra's run_job makes the job's folder, and gives an OSError there no type of its own:
   one raised through run_job while Hydra still raises (the task function has not started) is
   that folder's problem (job_folder_error).
5. A job in a fresh process gets its Hydra settings and logging back as Hydra's launchers set
   them in a worker: HydraConfig.set_config of a HydraConf node, then configure_log of its
   job_logging (enter_job).
"""
import importlib
import os
import traceback

from hydra._internal.config_loader_impl import get_overrides_dirname
from hydra.conf import HydraConf
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.types import Override
from hydra.core.utils import configure_log, run_job, setup_globals
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf, open_dict

__all__ = ["basic_sweeper", "enter_job", "hydra_raises", "hydra_reports", "job_folder",
           "job_folder_error", "job_hydra", "sweep_params", "user_wants_tracebacks"]

FULL_ERROR = "HYDRA_FULL_ERROR"
USER_FULL_ERROR = os.environ.get(FULL_ERROR)  # the user's own setting, restored for the run
_raising = False  # between hydra_raises() and hydra_reports(): before the task function


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


def hydra_raises() -> None:
    """From now until hydra_reports(), hydra.main re-raises its errors (composing the config,
    the sweeper's checks, making the output folder) to its caller."""
    global _raising
    _raising = True
    os.environ[FULL_ERROR] = "1"


def hydra_reports() -> None:
    """Hydra reports errors its own way again (a run's error: its message, exit 1), or as the
    user's HYDRA_FULL_ERROR says."""
    global _raising
    _raising = False
    if USER_FULL_ERROR is None:
        os.environ.pop(FULL_ERROR, None)
    else:
        os.environ[FULL_ERROR] = USER_FULL_ERROR


def user_wants_tracebacks() -> bool:
    """Whether the user set HYDRA_FULL_ERROR=1: a full traceback with every error."""
    return USER_FULL_ERROR == "1"


def job_folder_error(e: OSError) -> bool:
    """Whether `e` is Hydra failing to make the job's folder: raised through Hydra's run_job
    before the task function started (hydra_reports() not yet called)."""
    return _raising and any(
        frame.f_code is run_job.__code__ for frame, _ in traceback.walk_tb(e.__traceback__))


def job_hydra() -> dict | None:
    """This job's Hydra settings as plain containers (HydraConf nodes do not pickle), for a
    fresh process to enter_job with; None outside a Hydra job."""
    if not HydraConfig.initialized():
        return None
    return OmegaConf.to_container(HydraConfig.get(), resolve=False)


def enter_job(hydra: dict) -> None:
    """In a fresh process, this job's Hydra settings (HydraConfig.get()) and Hydra's job
    logging (the console and <output_dir>/<job name>.log), as Hydra's run_job sets them in a
    launcher's worker (with Hydra's resolvers: ${now:...}, ${hydra:...})."""
    setup_globals()
    node = OmegaConf.structured(HydraConf)
    with open_dict(node):  # the keys Hydra's own config groups add (hydra.env)
        node.merge_with(hydra)
    HydraConfig.instance().set_config(OmegaConf.create({"hydra": node}))
    configure_log(HydraConfig.get().job_logging, HydraConfig.get().verbose)
