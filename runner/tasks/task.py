"""The task contract: what a task gives the runner, written once. A task loads and checks its
data, builds the model around the configured core, hands the training loop one epoch's
batches and each batch's loss, evaluates on held-out data, and scores what it scores after
training. The loop (loop.py) owns the optimizer step, timing, warm-up and divergence; the
progress bar, the trackers, result.json and the objective of a search read the metrics a task
declares here, and name none themselves.

A task declares:
  metrics       every figure it reports, each a Metric (its key in result.json's metrics,
                whether lower or higher is better, its name for people); among them
  train_metric  the per-epoch training figure (train_score of the epoch's mean loss): a
                curve in result.json, sent to the trackers each epoch;
  val_metric    the held-out figure that evaluate() returns every train.eval_every epochs
                and after the last, or None: nothing is held out between epochs.
The runner adds `best_<train_metric>`, `best_<val_metric>` and TOKENS_PER_SEC."""
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

DIRECTIONS = ("minimize", "maximize")


@dataclass(frozen=True)
class Metric:
    key: str  # in result.json's metrics (and curves, for the training and held-out figures)
    direction: str  # minimize or maximize
    display: str  # e.g. "held-out perplexity"
    short: str = ""  # the progress bar's label; "" = the key

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"Metric {self.key!r}: direction={self.direction!r} must be one of "
                             f"{', '.join(DIRECTIONS)}")


# Every task's training loop measures its speed the same way (runner/run/execute.py)
TOKENS_PER_SEC = Metric("tokens_per_sec", "maximize", "training tokens/sec", "tok_s")


class Task(ABC):
    """One run's task, built from the run's composed config (and its data file, when
    data_file() names one): bad data fails in __init__, before any result is written."""
    metrics: tuple[Metric, ...]
    train_metric: str
    val_metric: str | None = None
    provenance: dict  # result.json's `dataset`: what was read or drawn
    steps_per_epoch: int  # optimizer steps an epoch (warm-up and the plan count them)
    val_tokens_scored: int | None = None  # the held-out targets evaluate() averages over
    generator: torch.Generator  # the minibatch stream's: a checkpoint saves and restores it

    @staticmethod
    def data_file(cfg) -> Path | None:
        """The file the task reads, fetched first when missing and allowed; None: drawn."""
        return None

    @staticmethod
    def model_keys(model) -> list[str] | None:
        """The keys of conf/model/ the task's network takes, from its constructors' signatures
        (runner/tasks/build.py): any other is refused before work; None: not checked."""
        return None

    @abstractmethod
    def new_model(self, device) -> nn.Module:
        """The model on `device` (torch is seeded by the caller), and `self.generator`."""

    @abstractmethod
    def train_batches(self) -> Iterable:
        """One epoch's batches, on the device, in the order the seed gives."""

    @abstractmethod
    def loss(self, model, batch) -> tuple[torch.Tensor, torch.Tensor | int]:
        """(the mean loss to step on, how many units it averages over: tokens), as device
        values: the loop reads neither until the epoch ends."""

    def packed_loss(self, packed, batches: list, state):
        """loss() for a pack (runner/tasks/pack_loop.py): `batches` one per member (each its
        own task's), `packed` their models as one (models/packed.py); (each member's loss (P,),
        as loss() computes it, no value mixing members; its units, a number or (P,); the state
        the next call gets). A task without it is not packed (runner/run/pack.py refuses)."""
        raise NotImplementedError(f"{type(self).__name__} is not trained in packs")

    @abstractmethod
    def train_score(self, mean_loss: float) -> float:
        """The training figure (train_metric) of an epoch's mean loss per unit."""

    def evaluate(self, model) -> float:
        """The held-out figure (val_metric); called in eval mode, under no_grad."""
        raise NotImplementedError(f"{type(self).__name__} declares no val_metric")

    @abstractmethod
    def outputs(self, model, device) -> tuple[dict, dict]:
        """After training: (result.json fields, e.g. a sample; metrics, e.g. BLEU)."""

    @classmethod
    def metric(cls, key: str) -> Metric | None:
        """A metric the task reports: declared, a `best_` of a curve, or tokens/sec."""
        for m in cls.metrics:
            if m.key == key:
                return m
            if key == f"best_{m.key}" and m.key in (cls.train_metric, cls.val_metric):
                return Metric(key, m.direction, f"best {m.display}")
        return TOKENS_PER_SEC if key == TOKENS_PER_SEC.key else None

    @classmethod
    def metric_keys(cls) -> list[str]:
        curves = [m.key for m in cls.metrics if m.key in (cls.train_metric, cls.val_metric)]
        return [*(m.key for m in cls.metrics), *(f"best_{k}" for k in curves),
                TOKENS_PER_SEC.key]
