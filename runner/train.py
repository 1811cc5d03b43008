"""The training loop for language models: one pass per epoch over batches already on the
device, with no host-device synchronisation inside an epoch."""
import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from data.iterators import epoch_batches, partition
from models.lm import detach


@dataclass
class History:
    """Per-epoch curves; `val_epoch[i]` is the epoch after which `val_perplexity[i]` was taken."""
    epoch: list = field(default_factory=list)
    train_perplexity: list = field(default_factory=list)
    tokens_per_sec: list = field(default_factory=list)
    train_seconds: list = field(default_factory=list)
    train_tokens: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    val_epoch: list = field(default_factory=list)
    val_perplexity: list = field(default_factory=list)
    diverged_epoch: int | None = None


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up: the lr multiplier for optimizer step `step` (0-based)."""
    return 1.0 if step >= warmup_steps else (step + 1) / warmup_steps


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def perplexity(mean_loss: float) -> float:
    """exp of a mean token cross-entropy; inf where that overflows a float."""
    return math.exp(mean_loss) if mean_loss < 709 else math.inf


def train_epoch(model, X, Y, optimizer, scheduler, grad_clip, carry_state):
    """One epoch over X, Y (num_batches, T, B). Returns the mean token cross-entropy as a
    device tensor, so the caller decides when to synchronise."""
    vocab_size, batch_size = model.vocab_size, X.shape[2]
    params = [p for p in model.parameters() if p.requires_grad]
    loss_sum, state = torch.zeros((), device=X.device), None
    for x, y in zip(X, Y):  # (T, B) each
        if state is None or not carry_state:
            state = model.begin_state(batch_size, X.device)
        else:
            state = detach(state)  # sequential partitioning: keep the values, cut the graph
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, vocab_size), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)  # global norm, no host sync
        optimizer.step()
        scheduler.step()
        loss_sum += loss.detach()
    return loss_sum / len(X)  # every batch has B*T tokens, so this is the per-token mean


@torch.no_grad()
def evaluate(model, corpus, batch_size, num_steps, carry_state) -> float:
    """Perplexity on a held-out token stream, partitioned sequentially from its start."""
    batch_size = min(batch_size, (len(corpus) - 1) // num_steps)
    X, Y = partition(corpus, 0, batch_size, num_steps)
    model.eval()
    loss_sum, state = torch.zeros((), device=corpus.device), None
    for x, y in zip(X, Y):
        if state is None or not carry_state:
            state = model.begin_state(batch_size, corpus.device)
        logits, state = model(x, state)
        loss_sum += F.cross_entropy(logits.reshape(-1, model.vocab_size), y.reshape(-1))
    model.train()
    return perplexity(float(loss_sum) / len(X))


def train(model, optimizer, data, cfg, device, generator, history: History,
          on_epoch=None) -> History:
    """Train for cfg.train.num_epochs epochs, appending to `history` as it goes (so a failure
    keeps the curves so far); stop early, recording the epoch, on a non-finite loss.

    An epoch's training time runs from building its batches to the device-synchronised end of
    its last optimizer step: evaluation and set-up are not in it."""
    d, tr = cfg.data, cfg.train
    carry_state = d.sampling == "sequential"
    steps_per_epoch = len(partition(data.train, 0, d.batch_size, d.num_steps)[0])
    warmup_steps = round(tr.warmup * tr.num_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_factor(step, warmup_steps))
    model.train()
    for epoch in range(1, tr.num_epochs + 1):
        synchronize(device)
        start = time.perf_counter()
        X, Y = epoch_batches(d.sampling, data.train, d.batch_size, d.num_steps, generator)
        mean_loss = float(train_epoch(model, X, Y, optimizer, scheduler, tr.grad_clip,
                                      carry_state))  # the epoch's one host sync
        seconds = time.perf_counter() - start
        history.epoch.append(epoch)
        history.train_seconds.append(seconds)
        history.train_tokens.append(X.numel())
        history.tokens_per_sec.append(X.numel() / seconds)
        # the lr of the epoch's last step (param_groups already holds the next step's)
        history.lr.append(scheduler.base_lrs[0] * warmup_factor(scheduler.last_epoch - 1,
                                                                warmup_steps))
        train_ppl = perplexity(mean_loss)
        if not math.isfinite(train_ppl):  # NaN/inf loss, or one too large to exponentiate
            history.train_perplexity.append(None)
            history.diverged_epoch = epoch
            break
        history.train_perplexity.append(train_ppl)
        if epoch % tr.eval_every == 0 or epoch == tr.num_epochs:
            history.val_epoch.append(epoch)
            history.val_perplexity.append(
                evaluate(model, data.val, d.batch_size, d.num_steps, carry_state))
        if on_epoch:
            on_epoch(history)
    return history
