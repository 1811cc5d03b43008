"""Checkpoints: a run continues after a kill, a preemption or Ctrl-C from the last finished
epoch, and ends with the result it would have had uninterrupted.

After every epoch (training and any evaluation done) the run keeps a snapshot in memory of
everything the next epoch depends on: the model, optimizer and lr-schedule state, the
minibatch generator and torch's global RNG (dropout; a pack member's own dropout generator
instead: runner/run/pack.py), and the curves so far. Every `train.checkpoint_every` epochs
(null: the first epoch end after AUTO_SECONDS of training since the last one), and when a
signal stops the run, that snapshot is written atomically to `<run folder>/checkpoint.pt`
with the run's identity. An epoch cut short is thrown away and trained again on resume from
the same state, so nothing about it reaches the result.
"""
import copy
import io
import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from runner.errors import ConfigError
from runner.result import write_bytes_atomic
from runner.run.identity import Identity
from runner.tasks.loop import History

CHECKPOINT_FILE = "checkpoint.pt"
AUTO_SECONDS = 300.0  # null checkpoint_every: one checkpoint per ~5 minutes of training


def load(folder: Path, cfg: DictConfig, data_sha1: str, packed: bool = False) -> dict | None:
    """The checkpoint in `folder` to continue from, if any (`packed`: the run trains in a
    pack). One of another experiment is refused (never loaded), or, under overwrite=true,
    ignored and later replaced."""
    path = Path(folder) / CHECKPOINT_FILE
    if cfg.overwrite or not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 (any unreadable file: say so, never guess)
        raise ConfigError(f"{path} cannot be read ({type(e).__name__}: {e}): delete it to "
                          f"start over, or pass overwrite=true") from None
    why = Identity.of(cfg, data_sha1, packed).differs(
        Identity.of_record(state.get("identity", {})), data=cfg.data.get("file", "the data file"))
    if why is not None:
        raise ConfigError(f"{path} is a checkpoint of another run: it {why}; choose another "
                          f"output folder (hydra.run.dir or hydra.sweep.dir), or pass "
                          f"overwrite=true to start this one from epoch 0")
    return state


def restore(state: dict, model, optimizer, scheduler, generator) -> History:
    """Put a loaded checkpoint back; returns the curves up to its epoch."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return History.restored(copy.deepcopy(state["history"]))


class Checkpointer:
    """Keeps the last epoch's snapshot and writes it when due, or when asked (a signal)."""

    def __init__(self, folder: Path, cfg: DictConfig, data_sha1: str, run: dict, parts,
                 packed: bool = False):
        self.path = Path(folder) / CHECKPOINT_FILE
        self.every = cfg.train.checkpoint_every
        self.identity = Identity.of(cfg, data_sha1, packed).as_record()
        self.run = run  # run_id, started_at, resumed_from_epoch: the result's own fields
        self.model, self.optimizer, self.scheduler, self.generator = parts
        self.dropout_generator = None  # a pack member's own masks' (models/packed.py), if any
        self.snapshot, self.last_write, self.written_epoch = None, time.monotonic(), None

    def epoch_done(self, history: History) -> None:
        """Snapshot the state after this epoch; write it if a checkpoint is due."""
        self.snapshot = {
            "epoch": history.epoch[-1],
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "history": copy.deepcopy(vars(history)),
        }
        if self.dropout_generator is not None:  # a pack puts it back (runner/run/pack.py)
            self.snapshot["dropout_generator"] = self.dropout_generator.get_state()
        due = (time.monotonic() - self.last_write >= AUTO_SECONDS if self.every is None
               else history.epoch[-1] % self.every == 0)
        if due:
            self.write()

    def write(self) -> Path | None:
        """Write the last snapshot (if any epoch finished and it is not on disk already)."""
        if self.snapshot is None:
            return None
        if self.written_epoch != self.snapshot["epoch"]:
            buffer = io.BytesIO()
            torch.save({**self.snapshot, "identity": self.identity, "run": self.run}, buffer)
            write_bytes_atomic(self.path, buffer.getvalue())
            self.written_epoch, self.last_write = self.snapshot["epoch"], time.monotonic()
        return self.path

    def finish(self, keep: bool) -> None:
        """The result is final: the checkpoint has served (train.keep_checkpoint keeps it)."""
        if keep:
            self.write()
        else:
            self.path.unlink(missing_ok=True)
