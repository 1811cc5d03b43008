"""What a run trains: the task its `data` config names with `_target_` (conf/data/): a
language model on one token stream, an encoder-decoder translator, the companion note's
synthetic regression, or a user's own (docs/extend-task.md). Every task keeps the contract in
task.py; loop.py is the loop they share."""
import importlib

from data.download import sha1_of
from runner.errors import ConfigError
from runner.tasks.language_model import LanguageModelTask
from runner.tasks.regression import RegressionTask
from runner.tasks.task import Metric, Task
from runner.tasks.translation import TranslationTask


def task_class(cfg) -> type[Task]:
    """The class `data._target_` names; a ConfigError that says why when it cannot be one."""
    target = cfg.data.get("_target_")
    module, _, name = str(target).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name) if module else None
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"data._target_={target!r} cannot be imported ({type(e).__name__}: "
                          f"{e}): fix the class path, or put its folder on PYTHONPATH") from None
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ConfigError(f"data._target_={target!r} is not a task: it must name a subclass of "
                          f"runner.tasks.Task (e.g. data=timemachine; docs/extend-task.md)")
    return cls


def build_task(cfg, path=None) -> Task:
    """The run's task: data's keys are its constructor's arguments; the run's config and the
    data file (data_of's) are passed at instantiation. Called directly, not through Hydra's
    instantiate, which would wrap the task's own errors (bad data: ConfigError, DataError)."""
    arguments = {key: value for key, value in cfg.data.items() if key != "_target_"}
    return task_class(cfg)(cfg, path, **arguments)


def data_of(cfg):
    """(file, sha1) of the run's data: the task's file, downloaded first when missing and
    allowed; (None, None) for data that is drawn, not read."""
    path = task_class(cfg).data_file(cfg)
    return path, (sha1_of(path) if path else None)


__all__ = ["LanguageModelTask", "Metric", "RegressionTask", "Task", "TranslationTask",
           "build_task", "data_of", "task_class"]
