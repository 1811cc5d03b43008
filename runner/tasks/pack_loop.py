"""The training loop of a pack (launcher.pack, docs/packing.md): P runs of one sweep point,
differing only by seed, stepped together as one PackedLM (models/packed.py).

Each member's epoch is its run's own, as loop.fit trains it: its batches from its own task
(its generator: offsets and order), its carried state, its loss, its own clipping
(clip_per_member), the lr of its own schedule (its LambdaLR, stepped only when it steps), and
fit's records and divergence rule. Members may stand at different epochs (a pack resumed from
members' checkpoints): in each round every member still training runs its next epoch; one whose
epoch has fewer batches (a random offset can cut one), or who has finished, sits the step out
(PackedSGD.step(active)) and its loss is left out of its figure. Its held-out figure, its
checkpoint and its outputs come from its own standalone model, given the member's parameters
(PackedLM.unpack) at each epoch's end."""
import math
import time

import torch

from models.lm import detach
from models.packed import PackedSGD, clip_per_member, member_losses
from runner.tasks.loop import synchronize, warmup_factor, warmup_steps


def fit_pack(packed, members, cfg, device, on_done) -> None:
    """Train every member to epoch cfg.train.num_epochs from its own history's last epoch.
    A member is an object with `task`, `model` (its standalone model), `optimizer` and
    `scheduler` (its run's own: they give its lr and keep its state for the checkpoint),
    `history` (loop.History) and `epoch_done(history)`; `on_done(member)` is called once
    its training has ended (all epochs, or diverged)."""
    tr, P = cfg.train, len(members)
    opt = PackedSGD(packed.parameters(), 0.0, P)  # each member's lr set before each step
    warmup = warmup_steps(cfg, members[0].task.steps_per_epoch)
    for m in members:  # a no-op (no gradients there); torch's schedule expects one before it
        m.optimizer.step()
    live = [len(m.history.epoch) < tr.num_epochs for m in members]
    for m, going in zip(members, live):
        if not going:  # stopped after its last epoch, before its result: nothing to train
            on_done(m)
    packed.train()
    while any(live):
        synchronize(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        sums, counts = train_round(packed, members, live, opt, tr.grad_clip, device)
        means = (sums / torch.tensor(counts, device=device).clamp(min=1)).tolist()  # one sync
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        for i, m in enumerate(members):
            if live[i]:
                live[i] = epoch_end(packed, i, m, means[i], counts[i], seconds, cpu, warmup, tr)
                if not live[i]:
                    on_done(m)


def train_round(packed, members, live, opt, grad_clip, device):
    """Each live member's next epoch, batch by batch; (P,) summed losses x tokens, and each
    member's token count (0 for a member not training)."""
    P = len(members)
    epochs = [iter(m.task.train_batches()) if going else iter(()) for m, going in
              zip(members, live)]
    carry = members[0].task.carry_state  # sequential partitioning: the state goes on
    sums, counts, state = None, [0] * P, None
    while True:
        batches = [next(e, None) for e in epochs]
        if all(b is None for b in batches):
            return (sums if sums is not None else torch.zeros(P, device=device)), counts
        filler = next(b for b in batches if b is not None)  # read by a member sitting out
        active = [b is not None for b in batches]
        packed.drawing = active  # one sitting out draws no dropout masks: its stream its own
        x = torch.stack([(b or filler)[0] for b in batches])  # (P, T, B)
        y = torch.stack([(b or filler)[1] for b in batches])
        if state is None or not carry:
            state = packed.begin_state(x.shape[2], device)
        else:
            state = detach(state)  # keep the values, cut the graph
        logits, state = packed(x, state)  # (P, T, B, V)
        losses = member_losses(logits, y)  # (P,)
        opt.zero_grad()
        losses.sum().backward()  # no op mixes members: each gets its own gradient
        if grad_clip is not None:
            clip_per_member(packed, grad_clip)
        opt.lr = [m.optimizer.param_groups[0]["lr"] for m in members]
        opt.step(active=torch.tensor(active))
        for m, stepped in zip(members, active):
            if stepped:
                m.scheduler.step()
        on = torch.tensor(active, device=device)
        weighted = torch.where(on, losses.detach() * y[0].numel(), torch.zeros_like(losses))
        sums = weighted if sums is None else sums + weighted
        counts = [c + y[0].numel() * a for c, a in zip(counts, active)]


def epoch_end(packed, i, m, mean_loss, tokens, seconds, cpu, warmup, tr) -> bool:
    """Record member i's epoch as loop.fit records a run's; whether it trains on."""
    h = m.history
    epoch = len(h.epoch) + 1
    h.epoch.append(epoch)
    h.train_seconds.append(seconds)  # the pack's round: every member's epoch ran in it
    h.train_cpu_seconds.append(cpu)
    h.train_tokens.append(tokens)
    h.tokens_per_sec.append(tokens / seconds)
    h.lr.append(m.scheduler.base_lrs[0] * warmup_factor(m.scheduler.last_epoch - 1, warmup))
    m.model.load_state_dict(packed.unpack(i))  # its standalone model: evaluation, checkpoint
    score = m.task.train_score(mean_loss)
    if not math.isfinite(score):  # diverged: recorded as fit records it, and masked out
        h.train.append(None)
        h.diverged_epoch = epoch
        return False
    h.train.append(score)
    if m.task.val_metric and (epoch % tr.eval_every == 0 or epoch == tr.num_epochs):
        m.model.eval()
        with torch.no_grad():
            h.val.append(m.task.evaluate(m.model))
        h.val_epoch.append(epoch)
        m.model.train()
    m.epoch_done(h)
    return epoch < tr.num_epochs
