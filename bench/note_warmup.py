"""Issue 26: does the companion note's "lr 1e-3, 1% warm-up" row train? Seeds of the note's
program (tests/note_regression.py, its warm-up written as the runner's) against seeds of the
runner (`data=synthetic note=lr1e-3_warmup`), then their trained fractions compared.

    nice -n 15 python -m bench.note_warmup [--seeds 0-9] [--jobs 2] [--eval-batches 1000]
                                           [--only runner|program]
                                           [--out results/note_warmup]
    python -m bench.note_warmup --compare [--out results/note_warmup]

Each run is its own process with one thread, `--jobs` at a time: the first seed of both, then
every runner seed, then the program's (tests/test_regression.py shows the two bit-identical,
so on a busy machine the runner's seeds come first). Each finished run
adds a row to OUT/runs.csv (program, seed, mse, eval_mode_mse where the runner gives it,
trained, seconds); a run already there is skipped, so a rerun finishes the rest. --compare
prints each side's trained count (MSE below runner.report.note.TRAINED_MSE, the docs' table's
line), Fisher's exact test on the 2 x 2 table, and the seeds where the two programs' MSEs are
not bit-identical. A run is ~4 min on an idle core (docs/note.md, Cost).
"""
import argparse
import csv
import fcntl
import io
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ["program", "seed", "eval_batches", "mse", "eval_mode_mse", "trained", "seconds"]
RUNNER = ["data=synthetic", "note=lr1e-3_warmup", "threads=1", "quiet=true", "device=cpu"]
WARMUP_STEPS = 10  # conf/note/lr1e-3_warmup.yaml: train.warmup 0.01 of 1,000 steps


def program_mse(seed: int, eval_batches: int) -> dict:
    """The note's program in this process, one thread: its "AVG Loss"."""
    import torch

    from tests.note_regression import note_program
    torch.set_num_threads(1)
    _, mse = note_program(seed=seed, warmup_steps=WARMUP_STEPS, eval_steps=eval_batches)
    return {"mse": mse, "eval_mode_mse": ""}


def one(program: str, seed: int, out: Path, eval_batches: int) -> dict:
    """One run in a fresh process; its row."""
    start = time.perf_counter()
    if program == "runner":
        folder = out / "runner" / f"seed{seed}"  # no "=": an override
        subprocess.run([sys.executable, "-m", "runner", *RUNNER, f"seed={seed}",
                        f"data.eval_batches={eval_batches}", f"hydra.run.dir={folder}"],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        metrics = json.loads((folder / "result.json").read_text())["metrics"]
        row = {"mse": metrics["mse"], "eval_mode_mse": metrics["eval_mode_mse"]}
    else:
        done = subprocess.run([sys.executable, "-m", "bench.note_warmup", "--one", str(seed),
                               "--eval-batches", str(eval_batches)],
                              check=True, cwd=ROOT, capture_output=True, text=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
    from runner.report.note import TRAINED_MSE
    return {"program": program, "seed": seed, "eval_batches": eval_batches, **row,
            "trained": row["mse"] < TRAINED_MSE, "seconds": round(time.perf_counter() - start, 1)}


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: list[dict]) -> None:
    """The whole CSV, atomically (a temporary file renamed over it)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: (r["program"], int(r["seed"]))))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(buf.getvalue())
    os.replace(tmp, path)


def compare(path: Path) -> str:
    """Each side's trained count, Fisher's exact test, and the pairs that differ."""
    from scipy.stats import fisher_exact
    rows = read_rows(path)
    sides = {p: [r for r in rows if r["program"] == p] for p in ("program", "runner")}
    counts = {p: sum(r["trained"] == "True" for r in rs) for p, rs in sides.items()}
    table = [[counts[p], len(sides[p]) - counts[p]] for p in sides]
    lines = [f"{p}: {counts[p]} of {len(rs)} trained; MSE by seed: "
             + ", ".join(f"{r['seed']}: {float(r['mse']):.3f}" for r in rs)
             for p, rs in sides.items()]
    lines.append(f"Fisher's exact test (two-sided): p = {fisher_exact(table)[1]:.3g}")
    mse = {(r["program"], r["seed"]): r["mse"] for r in rows}
    pairs = [s for (p, s) in mse if p == "runner" and ("program", s) in mse]
    differ = [s for s in pairs if mse["runner", s] != mse["program", s]]
    lines.append(f"seeds run by both: {len(pairs)}; MSE not bit-identical at: "
                 f"{', '.join(differ) or 'none'}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0-9", help="first-last, inclusive (default 0-9)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "note_warmup")
    p.add_argument("--eval-batches", type=int, default=1000,
                   help="fresh batches scored after training (default 1000, the note's)")
    p.add_argument("--only", choices=("runner", "program"),
                   help="run one side only (the other's seeds where its runs already stand)")
    p.add_argument("--compare", action="store_true", help="compare what is in OUT/runs.csv")
    p.add_argument("--one", type=int, metavar="SEED", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one is not None:
        print(json.dumps(program_mse(args.one, args.eval_batches)))
        return
    path = args.out / "runs.csv"
    if args.compare:
        print(compare(path))
        return
    try:
        first, last = (int(s) for s in args.seeds.split("-"))
    except ValueError:
        p.error(f"--seeds={args.seeds!r} is not allowed: it must be first-last (e.g. 0-9)")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = read_rows(path)
    done = {(r["program"], int(r["seed"])) for r in rows}
    # the first seed of both, to check they agree, then every runner seed, then the rest
    order = [("runner", first), ("program", first)] + [
        (prog, s) for prog in ("runner", "program") for s in range(first + 1, last + 1)]
    todo = [job for job in order if job not in done and args.only in (None, job[0])]

    lock = threading.Lock()

    def run_and_save(job):
        row = one(*job, args.out, args.eval_batches)
        with lock, (args.out / "runs.lock").open("w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # another bench on the same folder may write too
            write_rows(path, [*read_rows(path), row])
        print(json.dumps(row), flush=True)

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(run_and_save, todo))
    print(compare(path))


if __name__ == "__main__":
    main()
