"""Experiment trackers (conf/logger/): a run's events, sent as it trains to a CSV file,
TensorBoard, MLflow or W&B, or to several (`logger=[tensorboard,mlflow]`).

The training loop knows one object, `Loggers`, and four events:
  start  the flattened resolved config as parameters; tags: sweep, model, seed, code version
         and the run's id (which a resumed run keeps, and so finds its tracker run again);
  epoch  the task's training figure (runner/tasks/task.py: train_metric), tokens_per_sec and
         lr, and its held-out figure (val_metric) on the epochs that evaluate;
  end    the result's final metrics (BLEU for translation), its status, and result.json as an
         artifact where the tracker keeps artifacts.
Each logger (one module here per tracker) implements those three methods and `close`.

Trackers never break or slow a run: the events go through a queue to one background thread,
which calls each logger in turn. A logger that raises is dropped for the rest of the run and
its error is kept; the run ends with them in result.json's `logger_errors`. A tracker that
hangs (a server that never answers) is waited for at most CLOSE_SECONDS after the run ends.
"""
import importlib
import importlib.util
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

# name: (module here, the package it needs, the pyproject extra that installs it)
LOGGERS = {
    "csv": ("csv_logger", None, None),
    "tensorboard": ("tensorboard_logger", "tensorboard", "tensorboard"),
    "mlflow": ("mlflow_logger", "mlflow", "mlflow"),
    "wandb": ("wandb_logger", "wandb", "wandb"),
}
CLOSE_SECONDS = 60.0


def logger_problems(node) -> list[str]:
    """validate.py's lines for the `logger` node: each name known, its package installed."""
    names = list(node or {})
    problems = []
    for name in names:
        if name not in LOGGERS:
            problems.append(f"logger={name!r} is not allowed: it must be none or one or more "
                            f"of {', '.join(LOGGERS)} (e.g. logger=[tensorboard,mlflow])")
        elif (package := LOGGERS[name][1]) and importlib.util.find_spec(package) is None:
            problems.append(f"logger={name} needs the {package} package, which is not "
                            f"installed: pip install -e '.[{LOGGERS[name][2]}]'")
    return problems


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
    options: dict = field(default_factory=dict)  # this logger's node of conf/logger/
    epoch_keys: tuple = ()  # what an epoch event may carry, in order (the task's figures)


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
        for name, options in self.node.items():
            try:
                module = importlib.import_module(f"runner.loggers.{LOGGERS[name][0]}")
                live[name] = module.Logger(RunInfo(**{**vars(info), "options": options or {}}))
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
