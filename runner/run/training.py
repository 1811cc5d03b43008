"""One run's training, around the loop: its model, optimizer, schedule and checkpoint built or
restored, its progress bar and trackers, every finished epoch recorded, and its result written
however it ends. A run alone (execute.py) has one; a pack (pack.py) one per member, so every
member is recorded exactly as its run alone would be."""
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from models import num_params
from runner.loggers import Loggers, epoch_metrics
from runner.result import RESULT_FILE, error_record, now, write_json_atomic
from runner.run import checkpoint
from runner.run.environment import load_average
from runner.run.interrupt import Interrupted
from runner.run.metrics import curves_of, metrics_of
from runner.run.trackers import logger_node, run_info
from runner.tasks.loop import History, make_scheduler


@dataclass
class Recording:
    """Where and how a run records itself: its folder, identity, checkpoint and clocks."""
    folder: Path
    data_sha1: str
    run_fields: dict
    resumed: dict | None
    memory_kind: str
    wall_start: float
    packed: bool = False  # trained in a pack: with dropout, its identity says so (identity.py)


def model_and_optimizer(cfg: DictConfig, task, device):
    """The task's model, seeded, initialised and on the device, and its optimizer."""
    torch.manual_seed(cfg.seed)
    model = task.new_model(device)
    instantiate(cfg.init)(model)
    model.to(device)
    optimizer = instantiate(cfg.optim)(params=model.parameters())
    if getattr(model, "sees_future", False):  # a bidirectional language model
        warnings.warn("model.bidirectional=true: a bidirectional language model sees the "
                      "tokens it predicts, so its perplexity is not a language-model score",
                      stacklevel=2)
    return model, optimizer


class Training:
    """One run's state while it trains; `start`, then the loop calls `epoch_done` after each
    epoch; `complete` on success or `stop` on any exception; `end` always (writes result.json)."""

    def __init__(self, cfg: DictConfig, task, device, result: dict, rec: Recording,
                 progress_bar):
        self.cfg, self.task, self.device, self.result, self.rec = cfg, task, device, result, rec
        self.bar, self.on_epoch = progress_bar(cfg, task)
        self.history, self.model, self.task_metrics, self.saver = History(), None, {}, None
        self.loggers = Loggers(logger_node(cfg))
        self.ended = False

    def start(self, log) -> None:
        """Build (or restore from the checkpoint) the model, optimizer and schedule; log the
        run's line; tell the trackers."""
        cfg, rec, result = self.cfg, self.rec, self.result
        self.model, self.optimizer = model_and_optimizer(cfg, self.task, self.device)
        self.scheduler = make_scheduler(self.optimizer, cfg, self.task.steps_per_epoch)
        if rec.resumed:
            self.history = checkpoint.restore(rec.resumed, self.model, self.optimizer,
                                              self.scheduler, self.task.generator)
            self.bar.update(len(self.history.epoch))
        self.saver = checkpoint.Checkpointer(
            rec.folder, cfg, rec.data_sha1, rec.run_fields,
            (self.model, self.optimizer, self.scheduler, self.task.generator), rec.packed)
        result["sees_future"] = getattr(self.model, "sees_future", False)
        result["model_class"] = f"models.{type(self.model).__name__}"  # what the task built
        impl = result["environment"]["impl"]
        log.info("run %s: %s%s on %s, %d params, output %s%s", result["run_id"], cfg.model.cell,
                 f" ({impl})" if impl else "", self.device, num_params(self.model), rec.folder,
                 f", resumed after epoch {len(self.history.epoch)}" if rec.resumed else "")
        result["environment"]["load_avg_start"] = load_average()
        self.loggers.start(run_info(cfg, rec.folder, result,
                                    first_epoch=len(self.history.epoch) + 1))

    def epoch_done(self, history: History) -> None:
        """The bar, the trackers, then the checkpoint."""
        self.on_epoch(history)
        self.loggers.epoch(history.epoch[-1], epoch_metrics(history, self.task))
        self.saver.epoch_done(history)

    def complete(self) -> None:
        """Training ended (all epochs, or diverged): the status and the task's outputs."""
        self.result["environment"]["load_avg_end"] = load_average()
        self.result["status"] = "diverged" if self.history.diverged_epoch else "completed"
        outputs, self.task_metrics = self.task.outputs(self.model, self.device)
        self.result.update(outputs)

    def stop(self, e: BaseException) -> None:
        """Record a failure or a stop (a signal, Ctrl-C, an exit asked of the process:
        submitit's requeue), with a checkpoint of the last finished epoch to resume from."""
        stopped = isinstance(e, KeyboardInterrupt | SystemExit)
        self.result["status"] = "interrupted" if stopped else "failed"
        self.result["error"] = error_record(e)
        if self.saver and (path := self.saver.write()):
            self.result["checkpoint"] = {"path": str(path), "epoch": self.saver.written_epoch}
            if isinstance(e, Interrupted):
                e.kept = (f"checkpoint after epoch {self.saver.written_epoch} of "
                          f"{self.cfg.train.num_epochs} in {path}")

    def end(self) -> None:
        """The result with its curves and metrics, written atomically however the run ended;
        then the trackers get it."""
        self.ended = True
        self.bar.close()
        result, rec = self.result, self.rec
        result["metrics"] = metrics_of(self.history, self.model, self.device, rec.memory_kind,
                                       self.task, time.perf_counter() - rec.wall_start)
        result["metrics"].update(self.task_metrics)  # e.g. BLEU
        result["curves"] = curves_of(self.history, self.task)
        result["finished_at"] = now()
        # the trackers it was sent to (logger_errors: any that dropped it): a later sitting
        # with another tracker replays it there (replay_into_new_trackers)
        result["logged_to"] = sorted(logger_node(self.cfg))
        write_json_atomic(rec.folder / RESULT_FILE, result)
        self.loggers.end(result, rec.folder / RESULT_FILE)  # result.json is their artifact
        if errors := self.loggers.close():
            result["logger_errors"] = errors
            write_json_atomic(rec.folder / RESULT_FILE, result)

    def finish(self) -> None:
        """After a result that is final: it replaces the checkpoint (unless kept)."""
        self.saver.finish(keep=self.cfg.train.keep_checkpoint)
