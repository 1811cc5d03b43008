"""The training loop of a pack (launcher.pack, docs/packing.md): P runs of one sweep point,
differing only by seed, stepped together as one PackedLM (models/packed.py; translation's:
a PackedSeq2Seq).

Each member's epoch is its run's own, as loop.fit trains it: its batches from its own task
(its generator: offsets and order), its loss as its task computes it (Task.packed_loss: a
language model's carried state, translation's masked loss), its own clipping
(clip_per_member), the lr of its own schedule (its LambdaLR, stepped only when it steps), its
optimizer's state (models/packed_optim.py: loaded from its run's own torch optimizer, fresh or
restored, and written back into it after every epoch, for its checkpoint), and fit's records
and divergence rule. Members may stand at different epochs (a pack resumed from members'
checkpoints): in each round every member still training runs its next epoch; one whose epoch
has fewer batches (a random offset can cut one), or who has finished, sits the step out (the
packed optimizer's step(active): parameters, state and step count kept) and its loss is left
out of its figure. Its held-out figure, its checkpoint and its outputs come from its own
standalone model, given the member's parameters (PackedLM.unpack) at each epoch's end."""
import math
import time

import torch
from omegaconf import OmegaConf

from models.packed import clip_per_member
from models.packed_optim_config import packed_optimizer
from runner.tasks.loop import synchronize, warmup_factor, warmup_steps


def fit_pack(packed, members, cfg, device, on_done) -> None:
    """Train every member to epoch cfg.train.num_epochs from its own history's last epoch.
    A member is an object with `task`, `model` (its standalone model), `optimizer` and
    `scheduler` (its run's own: they give its lr and keep its state for the checkpoint),
    `history` (loop.History) and `epoch_done(history)`; `on_done(member)` is called once
    its training has ended (all epochs, or diverged)."""
    tr, P = cfg.train, len(members)
    # each member's lr is set before each step; its state is its own optimizer's (restored
    # from its checkpoint, or fresh)
    opt = packed_optimizer(OmegaConf.to_container(cfg.optim, resolve=True),
                           packed.parameters(), P)
    warmup = warmup_steps(cfg, members[0].task.steps_per_epoch)
    for i, m in enumerate(members):
        m.optimizer.step()  # a no-op (no gradients yet): torch's schedule expects one first
        opt.load_member(i, m.optimizer, own_params(packed, m.model))
    live = [len(m.history.epoch) < tr.num_epochs for m in members]
    for m, going in zip(members, live):
        if not going:  # stopped after its last epoch, before its result: nothing to train
            on_done(m)
    packed.train()
    while any(live):
        synchronize(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        sums, counts = train_round(packed, members, live, opt, tr.grad_clip, device)
        means, counts = (sums / counts.clamp(min=1)).tolist(), counts.tolist()  # the syncs
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        for i, m in enumerate(members):
            if live[i]:
                live[i] = epoch_end(packed, opt, i, m, means[i], counts[i], seconds, cpu,
                                    warmup, tr)
                if not live[i]:
                    on_done(m)


def train_round(packed, members, live, opt, grad_clip, device):
    """Each live member's next epoch, batch by batch; (P,) summed losses x units, and each
    member's units (tokens; 0 for a member not training), (P,) on the device. The loss of a
    step is the task's (its packed_loss: each member's own, as its run's loss())."""
    P, task = len(members), members[0].task
    epochs = [iter(m.task.train_batches()) if going else iter(()) for m, going in
              zip(members, live)]
    sums, counts, state = None, torch.zeros(P, dtype=torch.long, device=device), None
    while True:
        batches = [next(e, None) for e in epochs]
        if all(b is None for b in batches):
            return (sums if sums is not None else torch.zeros(P, device=device)), counts
        filler = next(b for b in batches if b is not None)  # read by a member sitting out
        active = [b is not None for b in batches]
        packed.drawing = active  # one sitting out draws no dropout masks: its stream its own
        losses, units, state = task.packed_loss(packed, [b or filler for b in batches], state)
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
        weighted = torch.where(on, losses.detach() * units, torch.zeros_like(losses))
        sums = weighted if sums is None else sums + weighted
        counts = counts + on * units


def own_params(packed, model) -> list:
    """A member's standalone parameters in the pack's order (the pack keeps their names)."""
    mine = dict(model.named_parameters())
    return [mine[name] for name, _ in packed.named_parameters()]


def epoch_end(packed, opt, i, m, mean_loss, tokens, seconds, cpu, warmup, tr) -> bool:
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
    opt.write_member(i, m.optimizer, own_params(packed, m.model))  # and its optimizer's state
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
