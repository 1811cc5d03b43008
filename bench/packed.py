"""A pack of P seeds (models/packed.py) against the same P runs trained as runner trains them,
in tokens/sec of all runs together, on CPU (docs/packing.md).

    python -m bench.packed [--cells gru,lstm,rnn] [--hiddens 32,64,256] [--packs 4,20]
                           [--jobs 2] [--rounds 5] [--steps 10] [--warmup 2] [--quick]

packed: one PackedLM in this process, --threads (default --jobs) threads; a step is its
forward, member_losses, backward, clip_per_member (1) and PackedSGD (lr 1). peer: --jobs
one-thread processes, each training its share of the same runs one after another as
bench/loop.py's `ours` (model.impl=auto's layer on CPU, runner/tasks/loop.py's `step`). Runs:
batch_size 32, num_steps 35, one-hot, sequential sampling over the Time Machine's first 10,000
characters in $RUNNER_DATA_DIR (else seeded random ids; the output says which), offsets from
the seeds. A round: pack, then peer, each --warmup untimed then --steps timed steps per run
(the peer's jobs start together: a barrier). Median over rounds of P x steps x 32 x 35 / time.
"""
import argparse
import csv
import io
import multiprocessing as mp
import os
import queue
import statistics
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.roofline import VOCAB
from data.iterators import sequential_batches
from models import cells
from models.core import implementation, resolve_impl
from models.lm import LanguageModel, detach
from models.packed import PackedLM, PackedSGD, clip_per_member, member_losses
from runner.result import write_json_atomic, write_text_atomic
from runner.run.environment import device_name, environment
from runner.tasks.loop import step

BATCH, STEPS, LR, CLIP, CHARS = 32, 35, 1.0, 1.0, 10_000  # the study's
LAYERS = {"rnn": cells.rnn, "gru": cells.gru, "lstm": cells.lstm}
FULL = {"cells": "gru,lstm,rnn", "hiddens": "32,64,256", "packs": "4,20", "rounds": 5,
        "steps": 10, "warmup": 2}
QUICK = {"cells": "gru,lstm", "hiddens": "8", "packs": "2", "rounds": 2, "steps": 2, "warmup": 1}
HEADER = "| cell | impl | num_hiddens | P | packed tokens/s | peer tokens/s | packed/peer | range |"
COLUMNS = ("cell", "impl", "num_hiddens", "pack", "threads", "jobs", "steps", "rounds",
           "packed_tokens_per_sec", "peer_tokens_per_sec", "ratio", "ratio_min", "ratio_max",
           "packed_tokens", "peer_tokens", "load_average")


def corpus() -> tuple[torch.Tensor, str]:
    """The training ids every run reads, and where they came from."""
    path = Path(os.environ.get("RUNNER_DATA_DIR", "data/corpora")) / "timemachine.txt"
    why = f"no {path}"
    if path.is_file():
        from data.corpus import load_lm_data  # the runner's own preprocessing and vocabulary
        data = load_lm_data(path, "char", CHARS, 0)
        if len(data.vocab) == VOCAB:
            return data.train, f"{path}, first {CHARS:,} characters ({VOCAB} ids)"
        why = f"{path} has {len(data.vocab)} characters, not {VOCAB}"
    ids = torch.randint(VOCAB, (CHARS,), generator=torch.Generator().manual_seed(0))
    return ids, f"synthetic: {CHARS:,} uniform random ids of {VOCAB} ({why})"


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


def timed(runs, warmup: int, steps: int, barrier=None) -> tuple[float, float, int]:
    """Warm-up steps, then `steps` per run one run after another: (start, end, tokens)."""
    for r in runs:
        r.train(warmup)
    if barrier is not None:  # every job of the peer starts its interval at once
        barrier.wait()
    start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the machine
    tokens = sum(r.train(steps) for r in runs)
    return start, time.monotonic(), tokens


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
    from a fork server that imported torch and ran nothing: no copy of a parent's OpenMP
    threads, torch imported once (not this module: as __main__ each job re-runs it)."""

    def __init__(self, jobs: int, ids: torch.Tensor):
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["torch", "models.packed", "runner.tasks.loop"])
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

    def rate(self, warmup: int, steps: int) -> tuple[float, int]:
        """(tokens/sec of all jobs together, tokens) of one timed interval."""
        for q in self.inboxes:
            q.put(("train", warmup, steps))
        starts, ends, tokens = zip(*self._answers())
        return sum(tokens) / (max(ends) - min(starts)), sum(tokens)

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


def measure(cell: str, hidden: int, size: int, peer: Peer, ids, args) -> dict:
    """Interleaved rounds of the pack of `size` and the peer over the same runs: one row."""
    pack = Pack(cell, hidden, range(size), ids)  # seeds 0..P-1 on both sides
    peer.build(cell, hidden, range(size))
    packed, peers, ratios = [], [], []
    for _ in range(args.rounds):
        start, end, packed_tokens = timed([pack], args.warmup, args.steps)
        packed.append(packed_tokens / (end - start))
        rate, peer_tokens = peer.rate(args.warmup, args.steps)
        peers.append(rate)
        ratios.append(packed[-1] / rate)
    mid = {"packed": statistics.median(packed), "peer": statistics.median(peers)}
    return {"cell": cell, "impl": resolve_impl(LAYERS[cell], "auto", "cpu") or "nn",
            "num_hiddens": hidden, "pack": size, "threads": args.threads, "jobs": args.jobs,
            "steps": args.steps, "rounds": args.rounds, "packed_tokens_per_sec": mid["packed"],
            "peer_tokens_per_sec": mid["peer"], "ratio": mid["packed"] / mid["peer"],
            "ratio_min": min(ratios), "ratio_max": max(ratios), "packed_tokens": packed_tokens,
            "peer_tokens": peer_tokens, "load_average": os.getloadavg()[0],
            "packed_rounds": packed, "peer_rounds": peers}


def parse(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for key, default in FULL.items():  # None: --quick's or the full bench's, below
        p.add_argument(f"--{key}", type=type(default), help=f"default {default}")
    p.add_argument("--jobs", type=int, default=2, help="the peer's one-thread processes")
    p.add_argument("--threads", type=int, help="the pack's torch threads (default: --jobs)")
    p.add_argument("--quick", action="store_true", help=f"the code path only (the tests): {QUICK}")
    p.add_argument("--out", default="bench/out/packed", help="writes OUT.json and OUT.csv")
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        setattr(args, key, value if getattr(args, key) is None else getattr(args, key))
    args.threads = args.jobs if args.threads is None else args.threads
    args.cells = args.cells.split(",")
    problems = [f"--cells {c}: no such cell; choose from {','.join(LAYERS)} (e.g. --cells "
                f"gru,lstm)" for c in args.cells if c not in LAYERS]
    for key, least in (("hiddens", 1), ("packs", max(args.jobs, 1))):
        raw = getattr(args, key).split(",")
        setattr(args, key, [int(v) for v in raw if v.strip().isdigit()])
        if len(getattr(args, key)) < len(raw) or min(getattr(args, key)) < least:
            problems.append(f"--{key} {','.join(raw)}: it must be comma-separated integers "
                            f">= {least} (e.g. --{key} {FULL[key]})")
    for key, least in (("jobs", 1), ("threads", 1), ("rounds", 1), ("steps", 1), ("warmup", 0)):
        if getattr(args, key) < least:
            problems.append(f"--{key} {getattr(args, key)}: it must be an integer >= {least} "
                            f"(e.g. --{key} {FULL.get(key, 2)})")
    if problems:
        p.error("; ".join(problems))
    return args


def main(argv=None) -> list[dict]:
    args = parse(argv)
    ids, source = corpus()
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    print(f"packed: 1 process x {args.threads} threads; peer: {args.jobs} processes x 1 thread; "
          f"{args.warmup} warm-up + {args.steps} timed steps per run, median of {args.rounds} "
          f"interleaved rounds; data: {source}\n{HEADER}\n|{' --- |' * 8}", flush=True)
    peer, rows = Peer(args.jobs, ids), []
    try:
        for cell in args.cells:
            for hidden in args.hiddens:
                for size in args.packs:
                    rows.append(measure(cell, hidden, size, peer, ids, args))
                    print(format_row(rows[-1]), flush=True)
                    save(rows, args, source)  # each row as it comes: a cut-off bench keeps it
    finally:
        peer.close()
        torch.set_num_threads(threads)  # main() may run inside another program (the tests)
    print(f"-> {args.out}.csv, {args.out}.json ({device_name(torch.device('cpu'))})")
    return rows


def save(rows: list[dict], args, source: str) -> None:
    table = io.StringIO()
    writer = csv.DictWriter(table, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(Path(f"{args.out}.csv"), table.getvalue())
    write_json_atomic(Path(f"{args.out}.json"), {
        "what": __doc__.split("\n\n")[0].replace("\n", " "), "data": source,
        "device": device_name(torch.device("cpu")),
        "environment": environment(torch.device("cpu"), args.jobs), "rows": rows})


def format_row(r: dict) -> str:
    return (f"| {r['cell']} | {r['impl']} | {r['num_hiddens']} | {r['pack']} | "
            f"{r['packed_tokens_per_sec']:,.0f} | {r['peer_tokens_per_sec']:,.0f} | "
            f"{r['ratio']:.2f}x | {r['ratio_min']:.2f}-{r['ratio_max']:.2f} |")


if __name__ == "__main__":
    main()
