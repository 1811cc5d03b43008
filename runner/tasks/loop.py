"""The training loop, the same for every task: epochs over batches already on the device,
with no host-device synchronisation inside an epoch, timing, warm-up and divergence."""
import logging
import math
import time
from dataclasses import dataclass, field

import torch

log = logging.getLogger(__name__)


@dataclass
class History:
    """Per-epoch curves: `train` the task's training figure (its train_metric) of each epoch;
    `val[i]` its held-out figure (val_metric) taken after epoch `val_epoch[i]`."""
    epoch: list = field(default_factory=list)
    train: list = field(default_factory=list)
    tokens_per_sec: list = field(default_factory=list)
    train_seconds: list = field(default_factory=list)
    train_cpu_seconds: list = field(default_factory=list)  # this process's CPU time, all threads
    train_tokens: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    val_epoch: list = field(default_factory=list)
    val: list = field(default_factory=list)
    diverged_epoch: int | None = None

    @classmethod
    def restored(cls, saved: dict) -> "History":
        """A checkpoint's curves; those written before the task contract named the figures
        (train_perplexity or train_mse, val_perplexity) are read as `train` and `val`."""
        saved = dict(saved)
        for old in ("train_perplexity", "train_mse"):
            if old in saved:
                train = saved.pop(old)
                saved["train"] = train if train else saved.get("train", [])
        if "val_perplexity" in saved:
            saved["val"] = saved.pop("val_perplexity")
        return cls(**saved)


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up: the lr multiplier for optimizer step `step` (0-based)."""
    return 1.0 if step >= warmup_steps else (step + 1) / warmup_steps


def warmup_steps(cfg, steps_per_epoch: int) -> int:
    """train.warmup, a fraction of all optimizer steps, as a number of steps."""
    return round(cfg.train.warmup * cfg.train.num_epochs * steps_per_epoch)


def make_scheduler(optimizer, cfg, steps_per_epoch: int):
    """The per-step lr schedule: a linear warm-up, then the optimizer's lr."""
    n = warmup_steps(cfg, steps_per_epoch)
    if cfg.train.warmup > 0 and n <= 1:  # 1 step: (0 + 1) / 1, the full lr at once
        log.warning("train.warmup=%g of %d optimizer steps is %d step(s): no warm-up at all; "
                    "raise train.warmup or the number of steps", cfg.train.warmup,
                    cfg.train.num_epochs * steps_per_epoch, n)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_factor(step, n))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def perplexity(mean_loss: float) -> float:
    """exp of a mean token cross-entropy; inf where that overflows a float."""
    return math.exp(mean_loss) if mean_loss < 709 else math.inf


def step(loss, params, optimizer, scheduler, grad_clip) -> None:
    """One optimizer step on `loss`: backward, clip by global norm (no host sync), update."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    scheduler.step()


def train_epoch(model, optimizer, scheduler, task, grad_clip):
    """One epoch over the task's batches, one optimizer step each; returns (mean loss per
    unit, units) as device values: no host sync here."""
    params = [p for p in model.parameters() if p.requires_grad]
    loss_sum, count = None, 0
    for batch in task.train_batches():
        loss, units = task.loss(model, batch)
        step(loss, params, optimizer, scheduler, grad_clip)
        weighted = loss.detach() * units
        loss_sum = weighted if loss_sum is None else loss_sum + weighted
        count = count + units
    return loss_sum / count, count


def fit(model, optimizer, scheduler, task, cfg, device, history: History,
        on_epoch=None) -> History:
    """Train up to epoch cfg.train.num_epochs, from the epoch after the last one in `history`
    (a resumed run's), appending to `history` as it goes (so a failure keeps the curves so
    far); stop early, recording the epoch, on a non-finite training figure. The task
    (runner/tasks/task.py) gives the batches, their loss and its figures; this loop is the
    same for all.

    An epoch's training time runs from building its batches to the device-synchronised end of
    its last optimizer step: evaluation and set-up are not in it. The process's CPU time over
    the same interval is kept beside it: on an oversubscribed machine it falls far below
    wall time x threads, which says the tokens/sec measured there is not the code's speed."""
    tr = cfg.train
    warmup = warmup_steps(cfg, task.steps_per_epoch)
    model.train()
    for epoch in range(len(history.epoch) + 1, tr.num_epochs + 1):
        synchronize(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        mean_loss, tokens = train_epoch(model, optimizer, scheduler, task, tr.grad_clip)
        mean_loss, tokens = float(mean_loss), int(tokens)  # the epoch's one host sync
        seconds = time.perf_counter() - start
        history.epoch.append(epoch)
        history.train_seconds.append(seconds)
        history.train_cpu_seconds.append(time.process_time() - cpu_start)
        history.train_tokens.append(tokens)
        history.tokens_per_sec.append(tokens / seconds)
        # the lr of the epoch's last step (param_groups already holds the next step's)
        history.lr.append(scheduler.base_lrs[0] * warmup_factor(scheduler.last_epoch - 1,
                                                                warmup))
        score = task.train_score(mean_loss)
        if not math.isfinite(score):  # NaN/inf loss, or one too large to exponentiate
            history.train.append(None)
            history.diverged_epoch = epoch
            break
        history.train.append(score)
        if task.val_metric and (epoch % tr.eval_every == 0 or epoch == tr.num_epochs):
            model.eval()
            with torch.no_grad():
                history.val.append(task.evaluate(model))
            history.val_epoch.append(epoch)
            model.train()
        if on_epoch:
            on_epoch(history)
    return history
