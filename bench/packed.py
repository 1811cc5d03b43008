"""A pack of P seeds (models/packed.py) against the same P runs trained as runner trains them,
in tokens/sec of all runs together, on CPU (docs/packing.md). Part of `make bench`.

    python -m bench.packed [--cells gru,lstm,rnn] [--hiddens 32,64,256] [--packs 4,20]
                           [--jobs 2] [--threads N] [--rounds 5] [--steps 10] [--warmup 2]
                           [--quick] [--out bench/out/packed]

- packed: the P runs as one PackedLM in this process, --threads torch threads (default
  --jobs); a step is its forward, member_losses, backward, clip_per_member (1, d2l's) and
  PackedSGD (lr 1).
- peer: --jobs processes of one thread each (2 jobs x 1 thread: the 2-core machine's launcher),
  each training its share of the same runs one after another, each as bench/loop.py's `ours`:
  the layer model.impl=auto picks on CPU (fused rnn and gru, torch.nn's lstm), cross-entropy,
  runner/tasks/loop.py's `step` (clip_grad_norm_ 1, SGD lr 1, the lr schedule).

Every run: batch_size 32, num_steps 35, one-hot input, sequential sampling (the state carried)
over the Time Machine's first 10,000 characters in $RUNNER_DATA_DIR (28 ids; without the file
a seeded random stream of 28 ids, and the output says so), its offset from its seed. A round
runs the pack, then the peer (never both at once), each --warmup untimed steps per run, then
--steps timed ones; the peer's jobs start their interval together (a barrier) and it ends with
the last. Each figure: the median over rounds of P x steps x 32 x 35 tokens over the interval
(wall-clock), and over the CPU seconds spent in it (all threads, all jobs), which other users
of the cores inflate less. Rows go to OUT.csv and OUT.json (with every round) as they come.
"""
import argparse
import csv
import io
import os
import statistics
from pathlib import Path

import torch

from bench.packed_runs import CHARS, LAYERS, Pack, Peer, timed
from bench.roofline import VOCAB
from models.core import resolve_impl
from runner.result import write_json_atomic, write_text_atomic
from runner.run.environment import device_name, environment

FULL = {"cells": "gru,lstm,rnn", "hiddens": "32,64,256", "packs": "4,20", "rounds": 5,
        "steps": 10, "warmup": 2}
QUICK = {"cells": "gru,lstm", "hiddens": "8", "packs": "2", "rounds": 2, "steps": 2, "warmup": 1}
HEADER = ("| cell | impl | num_hiddens | P | packed tokens/s | peer tokens/s | packed/peer "
          "| (range) | per CPU-second: packed/peer | load average |")
COLUMNS = ("cell", "impl", "num_hiddens", "pack", "threads", "jobs", "steps", "rounds",
           "packed_tokens_per_sec", "peer_tokens_per_sec", "ratio", "ratio_min", "ratio_max",
           "packed_tokens_per_cpu_sec", "peer_tokens_per_cpu_sec", "cpu_ratio",
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


def measure(cell: str, hidden: int, size: int, peer: Peer, ids, args) -> dict:
    """Interleaved rounds of the pack of `size` and the peer over the same runs: one row."""
    pack = Pack(cell, hidden, range(size), ids)  # seeds 0..P-1 on both sides
    peer.build(cell, hidden, range(size))
    rounds, tokens = {k: [] for k in ("packed", "peer", "packed_cpu", "peer_cpu")}, {}
    for _ in range(args.rounds):  # the pack, then the peer: never both at once
        for side, run in (("packed", lambda: timed([pack], args.warmup, args.steps)),
                          ("peer", lambda: peer.timed(args.warmup, args.steps))):
            start, end, cpu, tokens[side] = run()
            rounds[side].append(tokens[side] / (end - start))
            rounds[f"{side}_cpu"].append(tokens[side] / cpu)
    mid = {k: statistics.median(v) for k, v in rounds.items()}
    ratios = [a / b for a, b in zip(rounds["packed"], rounds["peer"])]
    return {"cell": cell, "impl": resolve_impl(LAYERS[cell], "auto", "cpu") or "nn",
            "num_hiddens": hidden, "pack": size, "threads": args.threads, "jobs": args.jobs,
            "steps": args.steps, "rounds": args.rounds, "packed_tokens_per_sec": mid["packed"],
            "peer_tokens_per_sec": mid["peer"], "ratio": mid["packed"] / mid["peer"],
            "ratio_min": min(ratios), "ratio_max": max(ratios),
            "packed_tokens_per_cpu_sec": mid["packed_cpu"], "peer_tokens_per_cpu_sec":
            mid["peer_cpu"], "cpu_ratio": mid["packed_cpu"] / mid["peer_cpu"],
            "packed_tokens": tokens["packed"], "peer_tokens": tokens["peer"],
            "load_average": os.getloadavg()[0],
            **{f"{k}_rounds": v for k, v in rounds.items()}}


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
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')}; "
          f"packed: 1 process x {args.threads} threads; peer: {args.jobs} processes x 1 thread; "
          f"{args.warmup} warm-up + {args.steps} timed steps per run, median of {args.rounds} "
          f"interleaved rounds; data: {source}\n{HEADER}\n|{' --- |' * 10}", flush=True)
    peer, rows = Peer(args.jobs, ids), []
    try:
        for hidden in args.hiddens:  # the small shapes first: a bench cut short keeps them
            for cell in args.cells:
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
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),  # under load it decides the pack
        "device": device_name(torch.device("cpu")),
        "environment": environment(torch.device("cpu"), args.jobs), "rows": rows})


def format_row(r: dict) -> str:
    return (f"| {r['cell']} | {r['impl']} | {r['num_hiddens']} | {r['pack']} | "
            f"{r['packed_tokens_per_sec']:,.0f} | {r['peer_tokens_per_sec']:,.0f} | "
            f"{r['ratio']:.2f}x | {r['ratio_min']:.2f}-{r['ratio_max']:.2f} | "
            f"{r['cpu_ratio']:.2f}x | {r['load_average']:.1f} |")


if __name__ == "__main__":
    main()
