"""Training throughput of rnn, lstm, gru (and their fused twins), sru and onlstm at num_hiddens
32, 256 and 1024 (batch 32, num_steps 35, the Time Machine's first 10,000 chars), printed as
a table and saved as JSON.

    python -m bench.throughput [--cells rnn,gru_fused] [--epochs N] [--repeats R] [--d2l PY]

With --d2l, the study's own implementation (d2l 0.17.6 train_ch8, through
../shared/tools/d2l_reference.py in that interpreter) runs on the same configurations in the
same sitting, one after the other, and the table gains its figures and our speed-up
(a `_fused` cell is compared with d2l's torch.nn cell of the same kind; so is a `_scratch`
cell, as d2l_reference.py runs no d2l scratch model: there only the speed compares, the model
differs; sru, onlstm and transformer have none, so their d2l columns stay blank).

Figures: `ours` is the median over epochs 2..N of (training tokens / training seconds) of one
epoch; d2l's is its own timer over its last epoch (the same interval). Each is the median of
--repeats runs, each in a fresh process, alone on the machine (1 concurrent job): run nothing
else meanwhile.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from runner.result import RESULT_FILE, write_json_atomic
from runner.run.environment import CHECKOUT, device_name, environment

CELLS = ("rnn", "lstm", "gru", "rnn_fused", "gru_fused", "sru", "onlstm")
SIZES, D2L_KINDS = (32, 256, 1024), ("rnn", "lstm", "gru")
D2L_SCRIPT = CHECKOUT.parent / "shared" / "tools" / "d2l_reference.py"


def epochs_for(size: int, base: int) -> int:
    return max(3, base // {32: 1, 256: 2, 1024: 8}[size])


def ours(cell: str, size: int, epochs: int, threads: int | None, repeats: int) -> dict:
    """Median over `repeats` runs, each a fresh `python -m runner` process (as d2l's are)."""
    overrides = [f"model={cell}", f"model.num_hiddens={size}", f"train.num_epochs={epochs}",
                 f"train.eval_every={epochs}", "quiet=true", "sample.num_preds=0"]
    if threads:
        overrides.append(f"threads={threads}")
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([sys.executable, "-m", "runner", *overrides, f"hydra.run.dir={out}"],
                           cwd=CHECKOUT, check=True, capture_output=True)
            runs.append(json.loads((Path(out) / RESULT_FILE).read_text())["metrics"])
    key = "tokens_per_sec_epoch_median"
    runs.sort(key=lambda m: m[key])
    m = runs[len(runs) // 2]
    return {key: m[key], "tokens_per_sec": m["tokens_per_sec"], "epochs": epochs,
            "train_perplexity": m["train_perplexity"], "range": [runs[0][key], runs[-1][key]]}


def d2l(python: str, cell: str, size: int, epochs: int, threads: int | None,
        repeats: int) -> dict:
    """Median over `repeats` runs of d2l's last-epoch figure (one epoch is one noisy sample)."""
    runs = [d2l_once(python, cell, size, epochs, threads) for _ in range(repeats)]
    key = "tokens_per_sec_last_epoch_d2l_timer"
    runs.sort(key=lambda r: r[key])
    return {**runs[len(runs) // 2], "repeats": repeats, "range": [runs[0][key], runs[-1][key]]}


def d2l_once(python: str, cell: str, size: int, epochs: int, threads: int | None) -> dict:
    """d2l reads ../data/timemachine.txt relative to its working directory: give it one."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "data").mkdir()
        shutil.copy(Path(os.environ.get("RUNNER_DATA_DIR", "data/corpora")) /
                    "timemachine.txt", Path(tmp) / "data")
        (Path(tmp) / "work").mkdir()
        cmd = [python, str(D2L_SCRIPT), cell, str(size), str(epochs)]
        if threads:
            cmd.append(str(threads))
        out = subprocess.run(cmd, cwd=Path(tmp) / "work", capture_output=True, text=True,
                             check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", default=",".join(CELLS), help="comma-separated model names")
    p.add_argument("--epochs", type=int, default=40, help="epochs at num_hiddens 32 "
                   "(halved at 256, /8 at 1024, at least 3)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--d2l", metavar="PYTHON", help="interpreter with d2l 0.17.6 installed")
    p.add_argument("--repeats", type=int, default=3, help="runs per point, each (median)")
    p.add_argument("--out", default="bench/out/throughput.json")
    args = p.parse_args(argv)
    rows, d2l_runs = [], {}
    print(header(bool(args.d2l)))
    for cell in args.cells.split(","):
        for size in SIZES:
            epochs = epochs_for(size, args.epochs)
            row = {"model": cell, "num_hiddens": size,
                   "ours": ours(cell, size, epochs, args.threads, args.repeats)}
            kind = cell.split("_")[0]
            if args.d2l and kind in D2L_KINDS:
                if (kind, size) not in d2l_runs:
                    d2l_runs[kind, size] = d2l(args.d2l, kind, size, epochs, args.threads,
                                               args.repeats)
                row["d2l"] = d2l_runs[kind, size]
                row["speedup"] = (row["ours"]["tokens_per_sec_epoch_median"]
                                  / row["d2l"]["tokens_per_sec_last_epoch_d2l_timer"])
            rows.append(row)
            print(format_row(row, bool(args.d2l)), flush=True)
    import torch

    report = {"what": "training tokens/sec per epoch, batch 32, num_steps 35, clip 1, one-hot "
                      "input (the transformer: an embedding), each model's own optimizer "
                      "preset (SGD lr 1; the transformer: Adam), 1 concurrent job",
              "environment": environment(torch.device("cpu")), "rows": rows}
    write_json_atomic(Path(args.out), report)
    print(f"\n{device_name(torch.device('cpu'))}, {torch.get_num_threads()} threads "
          f"-> {args.out}")


def header(with_d2l: bool) -> str:
    names = ["model", "num_hiddens", "epochs", "ours tokens/s", "ours ppl"]
    if with_d2l:
        names += ["d2l tokens/s", "d2l ppl", "speed-up"]
    return "| " + " | ".join(names) + " |\n|" + " --- |" * len(names)


def format_row(row, with_d2l: bool = False) -> str:
    o = row["ours"]
    line = (f"| {row['model']:12} | {row['num_hiddens']:5} | {o['epochs']:3} | "
            f"{o['tokens_per_sec_epoch_median']:>10,.0f} | {o['train_perplexity']:6.2f} |")
    if "d2l" in row:
        line += (f" {row['d2l']['tokens_per_sec_last_epoch_d2l_timer']:>10,.0f} | "
                 f"{row['d2l']['train_perplexity_last_epoch']:6.2f} | {row['speedup']:4.2f}x |")
    elif with_d2l:  # no d2l counterpart: blank cells keep the table's shape
        line += "  |  |  |"
    return line


if __name__ == "__main__":
    sys.exit(main())
