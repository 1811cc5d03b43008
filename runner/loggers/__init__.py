"""Experiment trackers (conf/logger/): a run's events, sent as it trains to a CSV file,
TensorBoard, MLflow or W&B, or to several (`logger=[tensorboard,mlflow]`).

A tracker is a class and a YAML: conf/logger/<name>.yaml holds `<name>:` with the class's
`_target_` and its constructor's arguments (docs/extend-tracker.md). The training loop knows
one object, `Loggers`, and four events:
  start  RunInfo: the run's folder, its id (which a resumed run keeps, and so finds its
         tracker run again), the flattened resolved config as parameters; tags: sweep, model,
         seed, code version and run id;
  epoch  the task's training figure (runner/tasks/task.py: train_metric), tokens_per_sec and
         lr, and its held-out figure (val_metric) on the epochs that evaluate;
  end    the result's final metrics (BLEU for translation), its status, and result.json as an
         artifact where the tracker keeps artifacts;
then `close`. `Tracker` gives each a default that does nothing.

Trackers never break or slow a run: the events go through a queue to one background thread,
which builds each tracker and calls it in turn. A tracker that raises is dropped for the rest
of the run and its error is kept; the run ends with them in result.json's `logger_errors`. A
tracker that hangs (a server that never answers) is waited for at most CLOSE_SECONDS after the
run ends.
"""
import importlib
import importlib.util
import inspect
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from runner.config_dir import CONF_DIR

log = logging.getLogger(__name__)
CLOSE_SECONDS = 60.0


class Tracker:
    """What a tracker may declare and implement; every event does nothing unless overridden.
    `requires` is the package it imports (lazily, in start: validation reads this attribute
    without it) and `extra` the pyproject extra that installs it (None: `pip install
    <requires>`)."""
    requires: str | None = None
    extra: str | None = None

    def start(self, run: "RunInfo") -> None:
        pass

    def epoch(self, epoch: int, metrics: dict) -> None:
        pass

    def end(self, status: str, metrics: dict, result_path: Path) -> None:
        pass

    def close(self) -> None:
        pass


def tracker_class(target: str) -> type:
    """The class a logger's `_target_` names ("package.module.Class")."""
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def logger_problems(node) -> list[str]:
    """validate.py's lines for the `logger` node: each logger names an importable class whose
    package is installed and whose constructor takes its options."""
    return [line for name, options in dict(node or {}).items()
            if (line := _problem(name, dict(options or {})))]


def _problem(name: str, options: dict) -> str | None:
    target = options.pop("_target_", None)
    if not target:
        return (f"logger={name!r} is not allowed: a logger is a file of conf/logger/ (or of "
                f"--config-dir's logger/) whose _target_ names its class; runner's own: "
                f"{', '.join(own_loggers())} (e.g. logger=[tensorboard,mlflow])")
    try:
        cls = tracker_class(target)
    except ModuleNotFoundError as e:  # its own module missing, or a package it imports
        if e.name and not (target + ".").startswith(e.name + "."):
            return _missing(name, e.name.split(".")[0], None)
        return (f"logger={name}: its _target_ {target} cannot be imported ({e}): fix the "
                f"class path, or put its folder on PYTHONPATH")
    except Exception as e:  # noqa: BLE001 (an AttributeError, or the module's own error)
        return (f"logger={name}: its _target_ {target} cannot be imported "
                f"({type(e).__name__}: {e}): fix the class path")
    package = getattr(cls, "requires", None)
    if package and importlib.util.find_spec(package) is None:
        return _missing(name, package, getattr(cls, "extra", None))
    try:
        inspect.signature(cls).bind(**options)
    except TypeError as e:
        return (f"logger.{name} options {sorted(options)} do not fit {target}: {e} (its "
                f"arguments: {', '.join(inspect.signature(cls).parameters)})")
    return None


def _missing(name: str, package: str, extra: str | None) -> str:
    fix = f"pip install -e '.[{extra}]'" if extra else f"pip install {package}"
    return f"logger={name} needs the {package} package, which is not installed: {fix}"


def own_loggers() -> list[str]:
    """The files of runner's conf/logger/ (an error's list of what there is)."""
    return sorted(p.stem for p in (CONF_DIR / "logger").glob("*.yaml"))


@dataclass
class RunInfo:
    """What a tracker is told about the run at its start."""
    folder: Path  # the run's folder
    run_id: str  # the result's run_id: the same across resumes
    name: str  # the run folder's name, e.g. model.num_hiddens=256,seed=1
    group: str  # the folder above it: the sweep's (results/num_hiddens -> num_hiddens)
    params: dict  # the flattened resolved config
    tags: dict  # sweep, model, seed, code_version, run_id
    first_epoch: int  # 1, or the epoch a resumed run continues from
    epoch_keys: tuple = ()  # what an epoch event may carry, in order (the task's figures)
    varied: tuple = ()  # the keys its sweep varies (runner/loggers/naming.py varied_keys)


class Loggers:
    """The configured loggers, fed from the training loop through a queue (module docstring).
    With no logger configured every method does nothing."""

    def __init__(self, node: dict | None):
        self.node, self.errors = dict(node or {}), []
        self.queue, self.thread = queue.Queue(), None

    def start(self, info: RunInfo) -> None:
        if not self.node:
            return
        self.thread = threading.Thread(target=self._work, args=(info,), daemon=True,
                                       name="runner-loggers")
        self.thread.start()

    def epoch(self, epoch: int, metrics: dict) -> None:
        if self.thread:
            self.queue.put(("epoch", (epoch, metrics)))

    def end(self, result: dict, result_path: Path) -> None:
        if self.thread:
            self.queue.put(("end", (result["status"], final_metrics(result), result_path)))

    def close(self, timeout: float = CLOSE_SECONDS) -> list[dict]:
        """Wait (at most `timeout` s) for the events to reach the trackers; the errors."""
        if not self.thread:
            return self.errors
        self.queue.put(None)
        self.thread.join(timeout)
        if self.thread.is_alive():  # the thread is a daemon: it dies with the process
            self.errors.append({"logger": "all", "event": "close",
                                "error": f"the trackers had not finished {timeout:g} s "
                                         f"after the run ended; later events may be missing"})
        return self.errors

    def _work(self, info: RunInfo) -> None:
        live = {}
        for name, options in self.node.items():  # built here: a tracker's import takes seconds
            try:
                options = dict(options)
                tracker = tracker_class(options.pop("_target_"))(**options)
                tracker.start(info)
                live[name] = tracker
            except Exception as e:  # noqa: BLE001 (whatever a tracker raises, the run goes on)
                self._failed(name, "start", e)
        while (item := self.queue.get()) is not None:
            event, args = item
            for name, logger in list(live.items()):
                try:
                    getattr(logger, event)(*args)
                except Exception as e:  # noqa: BLE001
                    self._failed(name, event, e)
                    live.pop(name)
        for name, logger in live.items():
            try:
                logger.close()
            except Exception as e:  # noqa: BLE001
                self._failed(name, "close", e)

    def _failed(self, name: str, event: str, e: Exception) -> None:
        message = f"{type(e).__name__}: {e}"
        log.warning("logger %s failed at %s (the run goes on without it): %s", name, event,
                    message)
        self.errors.append({"logger": name, "event": event, "error": message[:2000]})


def final_metrics(result: dict) -> dict:
    """The result's numeric metrics (null ones left out): what a tracker shows as final."""
    return {k: v for k, v in result.get("metrics", {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)}


def epoch_metrics(history, task) -> dict:
    """The last epoch's figures from fit()'s History, under the task's names: its training
    figure, tokens/sec and lr, and its held-out figure on an epoch that evaluated."""
    metrics = {task.train_metric: history.train[-1],
               "tokens_per_sec": history.tokens_per_sec[-1], "lr": history.lr[-1]}
    if history.val_epoch and history.val_epoch[-1] == history.epoch[-1]:
        metrics[task.val_metric] = history.val[-1]
    return metrics


def replay(loggers: Loggers, info: RunInfo, result: dict, result_path: Path, task) -> None:
    """A finished result's events, as the run sent them: a run copied from the store shows in
    the trackers beside the sweep's trained ones."""
    curves, name = result.get("curves", {}), task.train_metric
    val = dict(zip(curves.get("val_epoch", []), curves.get(task.val_metric, [])))
    loggers.start(info)
    for i, epoch in enumerate(curves.get("epoch", [])):
        if curves[name][i] is None:  # the diverged epoch: never sent
            break
        metrics = {name: curves[name][i], "tokens_per_sec": curves["tokens_per_sec"][i],
                   "lr": curves["lr"][i]}  # epoch_metrics' keys, in its order
        if epoch in val:
            metrics[task.val_metric] = val[epoch]
        loggers.epoch(epoch, metrics)
    loggers.end(result, result_path)


def timestamp_ms() -> int:
    return int(time.time() * 1000)
