"""Training throughput of rnn, lstm and gru (each implementation), sru and onlstm at
num_hiddens 32, 256 and 1024 (batch 32, num_steps 35, the Time Machine's first 10,000 chars),
with the GFLOP/s it achieves against this machine's fp32 GEMM, measured in the same sitting
(bench/roofline.py: the FLOP formula and the ceilings), printed as a table and saved as JSON.

    python -m bench.throughput [--cells rnn,gru_nn] [--epochs N] [--repeats R] [--threads T]
                               [--d2l PY]

Models are conf/model/ names: rnn, gru (model.impl=auto: on CPU our fused layers), rnn_nn,
gru_nn (torch.nn's layers), lstm (torch.nn's; no fused LSTM), sru, onlstm.

With --d2l, the study's own implementation (d2l 0.17.6 train_ch8 around torch.nn's layer,
through ../shared/tools/d2l_reference.py in that interpreter) runs on the same configurations
in the same sitting, interleaved: each round runs every model of a kind (rnn, gru, lstm) at a
size once, then d2l once, so a slow minute of the machine hits both. The table gains d2l's
figures and our speed-up (a `_scratch` model would compare with d2l's torch.nn: speed only).

Figures: `ours` is the median over epochs 2..N of (training tokens / training seconds) of one
epoch; d2l's is its own timer over its last epoch (the same interval). Each is the median of
--repeats rounds, each run in a fresh process, alone on the machine (1 concurrent job), with
--threads torch threads (default: the cores this process may use): run nothing else meanwhile.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from bench.roofline import flops_per_token, gemm_gflops, machine_peak, step_shape
from runner.result import RESULT_FILE, write_json_atomic
from runner.run.environment import CHECKOUT, device_name, environment

CELLS = ("rnn", "rnn_nn", "gru", "gru_nn", "lstm", "sru", "onlstm")
SIZES, D2L_KINDS = (32, 256, 1024), ("rnn", "lstm", "gru")
D2L_SCRIPT = CHECKOUT.parent / "shared" / "tools" / "d2l_reference.py"  # ../shared
KEY, D2L_KEY = "tokens_per_sec_epoch_median", "tokens_per_sec_last_epoch_d2l_timer"


def epochs_for(size: int, base: int) -> int:
    return max(3, base // {32: 1, 256: 2, 1024: 8}[size])


def ours_once(cell: str, size: int, epochs: int, threads: int) -> dict:
    """One run in a fresh `python -m runner` process (as d2l's are): its metrics and impl."""
    overrides = [f"model={cell}", f"model.num_hiddens={size}", f"train.num_epochs={epochs}",
                 f"train.eval_every={epochs}", "quiet=true", "sample.num_preds=0",
                 f"threads={threads}", "device=cpu", "store=null"]  # trained, never copied
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "runner", *overrides, f"hydra.run.dir={out}"],
                       cwd=CHECKOUT, check=True, capture_output=True)
        result = json.loads((Path(out) / RESULT_FILE).read_text())
    return {**result["metrics"], "impl": result["environment"].get("impl")}


def d2l_once(python: str, cell: str, size: int, epochs: int, threads: int) -> dict:
    """d2l reads ../data/timemachine.txt relative to its working directory: give it one."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "data").mkdir()
        shutil.copy(Path(os.environ.get("RUNNER_DATA_DIR", "data/corpora")) /
                    "timemachine.txt", Path(tmp) / "data")
        (Path(tmp) / "work").mkdir()
        cmd = [python, str(D2L_SCRIPT), cell, str(size), str(epochs), str(threads)]
        out = subprocess.run(cmd, cwd=Path(tmp) / "work", capture_output=True, text=True,
                             check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def median_of(runs: list[dict], key: str) -> dict:
    """The median run by `key`, with every run's figure (the spread)."""
    runs = sorted(runs, key=lambda r: r[key])
    return {**runs[len(runs) // 2], "runs": [r[key] for r in runs]}


def measure(kind_cells: list[str], size: int, epochs: int, args) -> tuple[dict, dict | None]:
    """Interleaved rounds: every model of one kind at `size`, then d2l; medians."""
    ours, theirs = {c: [] for c in kind_cells}, []
    kind = kind_cells[0].split("_")[0]
    for _ in range(args.repeats):
        for cell in kind_cells:
            ours[cell].append(ours_once(cell, size, epochs, args.threads))
        if args.d2l and kind in D2L_KINDS:
            theirs.append(d2l_once(args.d2l, kind, size, epochs, args.threads))
    return ({c: median_of(r, KEY) for c, r in ours.items()},
            median_of(theirs, D2L_KEY) if theirs else None)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", default=",".join(CELLS), help="comma-separated model names")
    p.add_argument("--epochs", type=int, default=40, help="epochs at num_hiddens 32 "
                   "(halved at 256, /8 at 1024, at least 3)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="torch threads of every run (default: the cores this process may use)")
    p.add_argument("--d2l", metavar="PYTHON", help="interpreter with d2l 0.17.6 installed")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median)")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="num_hiddens values")
    p.add_argument("--out", default="bench/out/throughput.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    peak = machine_peak()  # before and after the runs: the better one is the machine's
    print(f"fp32 GEMM peak, {args.threads} threads: {peak['gflops']:.1f} GFLOP/s\n"
          f"{header(bool(args.d2l))}", flush=True)
    cells, rows = args.cells.split(","), []
    kinds = list(dict.fromkeys(c.split("_")[0] for c in cells))
    for size in map(int, args.sizes.split(",")):
        epochs = epochs_for(size, args.epochs)
        for kind in kinds:
            group = [c for c in cells if c.split("_")[0] == kind]
            ours, theirs = measure(group, size, epochs, args)
            for cell in group:
                rows.append(row_of(cell, size, epochs, ours[cell], theirs, peak["gflops"]))
                print(format_row(rows[-1], bool(args.d2l)), flush=True)
    after = machine_peak()
    if after["gflops"] > peak["gflops"]:
        peak = after
        for row in rows:  # percentages against the better of the two measurements
            row.update(against_peak(row, peak["gflops"]))
    report = {"what": "training tokens/sec per epoch, batch 32, num_steps 35, clip 1, one-hot "
                      "input, SGD lr 1, 1 concurrent job; GFLOP/s = tokens/sec x FLOPs per "
                      "token (bench/roofline.py: 6kH^2 + 4kHV + 6HV, V = 28)",
              "threads": args.threads, "gemm_peak": peak,
              "environment": environment(torch.device("cpu")), "rows": rows}
    write_json_atomic(Path(args.out), report)
    print(f"\nfp32 GEMM peak {peak['gflops']:.1f} GFLOP/s; {device_name(torch.device('cpu'))}, "
          f"{args.threads} threads -> {args.out}")


def row_of(cell, size, epochs, ours, theirs, peak) -> dict:
    kind = cell.split("_")[0]
    row = {"model": cell, "impl": ours["impl"], "num_hiddens": size, "epochs": epochs,
           "ours": ours, "flops_per_token": flops_per_token(kind, size)}
    if row["flops_per_token"]:  # the per-step product's own rate: the recurrence's ceiling
        row["step_gemm_gflops"] = gemm_gflops(*step_shape(kind, size))
    if theirs:
        row |= {"d2l": theirs, "speedup": ours[KEY] / theirs[D2L_KEY]}
    return row | against_peak(row, peak)


def against_peak(row: dict, peak: float) -> dict:
    if not row["flops_per_token"]:
        return {}
    gflops = row["ours"][KEY] * row["flops_per_token"] / 1e9
    return {"gflops": gflops, "pct_of_peak": 100 * gflops / peak}


def header(with_d2l: bool) -> str:
    names = ["model", "impl", "num_hiddens", "epochs", "ours tokens/s", "GFLOP/s", "% of peak",
             "ours ppl"]
    if with_d2l:
        names += ["d2l tokens/s", "d2l ppl", "speed-up"]
    return "| " + " | ".join(names) + " |\n|" + " --- |" * len(names)


def format_row(row, with_d2l: bool = False) -> str:
    o = row["ours"]
    flops = (f"{row['gflops']:6.1f} | {row['pct_of_peak']:3.0f}%" if "gflops" in row
             else "  |  ")
    line = (f"| {row['model']:8} | {row['impl'] or '-'} | {row['num_hiddens']:5} | "
            f"{row['epochs']:3} | {o[KEY]:>10,.0f} | {flops} | {o['train_perplexity']:6.2f} |")
    if "d2l" in row:
        d = row["d2l"]
        line += (f" {d[D2L_KEY]:>10,.0f} | {d['train_perplexity_last_epoch']:6.2f} | "
                 f"{row['speedup']:4.2f}x |")
    elif with_d2l:  # no d2l counterpart: blank cells keep the table's shape
        line += "  |  |  |"
    return line


if __name__ == "__main__":
    sys.exit(main())
