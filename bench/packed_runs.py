"""The two sides bench/packed.py times, each training the same P runs (seeds 0..P-1) of one
shape: `Pack`, the runs as one PackedLM, stepped as docs/packing.md says, in the calling
process; `Peer`, one-thread processes each training its share of the runs one after another,
each a `Run` stepped as runner steps it (bench/loop.py's `ours`). `timed` measures both alike:
wall-clock on the machine's one monotonic clock, and CPU time (the process's, all threads)."""
import multiprocessing as mp
import queue
import time
import traceback

import torch
import torch.nn.functional as F

from bench.roofline import VOCAB
from data.iterators import sequential_batches
from models import cells
from models.core import implementation, resolve_impl
from models.lm import LanguageModel, detach
from models.packed import PackedLM, PackedSGD, clip_per_member, member_losses
from runner.tasks.loop import step

BATCH, STEPS, LR, CLIP, CHARS = 32, 35, 1.0, 1.0, 10_000  # the study's
LAYERS = {"rnn": cells.rnn, "gru": cells.gru, "lstm": cells.lstm}


def standalone(cell: str, hidden: int, seed: int) -> LanguageModel:
    """A run's model as runner builds it on CPU (model.impl=auto), seeded."""
    torch.manual_seed(seed)
    layer = implementation(LAYERS[cell], resolve_impl(LAYERS[cell], "auto", "cpu"))
    return LanguageModel(VOCAB, layer, hidden)


def batches(ids: torch.Tensor, seed: int):
    """One epoch of run `seed`'s batches, X and Y (nb, T, B), its offset from its generator."""
    return sequential_batches(ids, BATCH, STEPS, torch.Generator().manual_seed(seed))


class Run:
    """One standalone run, stepped as runner steps it (bench/loop.py's `ours`)."""

    def __init__(self, cell: str, hidden: int, seed: int, ids: torch.Tensor):
        self.model = standalone(cell, hidden, seed)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.SGD(self.params, lr=LR)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: 1.0)
        self.X, self.Y = batches(ids, seed)
        self.state, self.i = self.model.begin_state(BATCH), 0

    def train(self, steps: int) -> int:
        """`steps` steps, the state carried from batch to batch: the tokens trained."""
        tokens = 0
        for _ in range(steps):
            x, y = self.X[self.i % len(self.X)], self.Y[self.i % len(self.X)]
            self.state = detach(self.state)
            logits, self.state = self.model(x, self.state)
            self.update(logits, y)
            self.i, tokens = self.i + 1, tokens + x.numel()
        return tokens

    def update(self, logits, y) -> None:
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
        step(loss, self.params, self.opt, self.sched, CLIP)


class Pack(Run):
    """The same runs (seeds) as one PackedLM; its steps are docs/packing.md's."""

    def __init__(self, cell: str, hidden: int, seeds, ids: torch.Tensor):
        self.model = PackedLM.pack([standalone(cell, hidden, s) for s in seeds])
        self.opt = PackedSGD(self.model.parameters(), LR, self.model.members)
        epochs = [batches(ids, s) for s in seeds]
        n = min(len(x) for x, _ in epochs)  # an offset can cut one batch from an epoch
        self.X = torch.stack([x[:n] for x, _ in epochs], 1)  # (nb, P, T, B)
        self.Y = torch.stack([y[:n] for _, y in epochs], 1)
        self.state, self.i = self.model.begin_state(BATCH), 0

    def update(self, logits, y) -> None:
        losses = member_losses(logits, y)
        self.opt.zero_grad()
        losses.sum().backward()  # each member its own gradient
        clip_per_member(self.model, CLIP)
        self.opt.step()


def timed(runs, warmup: int, steps: int, barrier=None) -> tuple[float, float, float, int]:
    """Warm-up steps, then `steps` per run one run after another: (start, end, CPU seconds of
    this process, all its threads, tokens). Beside other jobs, wall-clock also counts the
    time the cores spent on them; CPU time does not (but does count OpenMP's spin-waits)."""
    for r in runs:
        r.train(warmup)
    if barrier is not None:  # every job of the peer starts its interval at once
        barrier.wait()
    start, cpu = time.monotonic(), time.process_time()  # monotonic: one clock machine-wide
    tokens = sum(r.train(steps) for r in runs)
    return start, time.monotonic(), time.process_time() - cpu, tokens


def peer_process(ids, barrier, inbox, outbox) -> None:
    """One job of the peer: builds its runs, trains them on each ('train', ...), until None."""
    torch.set_num_threads(1)
    runs = []
    while (job := next_job(inbox)) is not None:
        try:
            if job[0] == "build":
                runs = [Run(job[1], job[2], s, ids) for s in job[3]]
                outbox.put(("built",))
            else:
                outbox.put(timed(runs, job[1], job[2], barrier))
        except Exception:  # noqa: BLE001 -- reported to the parent, which raises it
            barrier.abort()  # the other jobs stop waiting for this one
            outbox.put(("error", traceback.format_exc()))


def next_job(inbox):
    """The parent's next message; None once it is gone (a killed bench leaves no job behind)."""
    while mp.parent_process().is_alive():
        try:
            return inbox.get(timeout=1)
        except queue.Empty:
            pass
    return None


class Peer:
    """`jobs` one-thread processes for the whole bench; runs `seeds[j::jobs]` go to job j. Forked
    from a fork server that imported this module and ran nothing: no copy of a parent's OpenMP
    threads, and torch imported once, not once per job."""

    def __init__(self, jobs: int, ids: torch.Tensor):
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        self.barrier, self.outbox = ctx.Barrier(jobs), ctx.Queue()
        self.inboxes = [ctx.Queue() for _ in range(jobs)]
        self.procs = [ctx.Process(target=peer_process, daemon=True,
                                  args=(ids, self.barrier, q, self.outbox)) for q in self.inboxes]
        for p in self.procs:
            p.start()

    def build(self, cell: str, hidden: int, seeds: range) -> None:
        for j, q in enumerate(self.inboxes):
            q.put(("build", cell, hidden, seeds[j::len(self.inboxes)]))
        self._answers()

    def timed(self, warmup: int, steps: int) -> tuple[float, float, float, int]:
        """`timed` over all jobs together: from the first start to the last end, their CPU
        seconds summed."""
        for q in self.inboxes:
            q.put(("train", warmup, steps))
        starts, ends, cpus, tokens = zip(*self._answers())
        return min(starts), max(ends), sum(cpus), sum(tokens)

    def _answers(self) -> list[tuple]:
        got = []
        while len(got) < len(self.inboxes):
            try:
                got.append(self.outbox.get(timeout=1))
            except queue.Empty:
                if not all(p.is_alive() for p in self.procs):
                    raise RuntimeError("a peer process died (out of memory?)") from None
            if got and got[-1][0] == "error":
                raise RuntimeError(f"a peer process failed:\n{got[-1][1]}")
        return got

    def close(self) -> None:  # each job ends its loop, then exits
        for q, p in zip(self.inboxes, self.procs):
            q.put(None)
            p.join(timeout=10)
