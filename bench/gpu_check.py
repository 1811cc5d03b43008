"""make gpu-check: everything a first look at a GPU needs, in one command that stops within
8 minutes (a lent GPU's time is short: docs/gpu-check.md).

    python -m bench.gpu_check [--out DIR] [--budget S] [--cpu]

1. the device: name, torch, CUDA and cuDNN versions (or "no CUDA: the CUDA parts skip");
2. the CUDA tests: pytest -m cuda tests/test_cuda.py (they skip without a GPU);
3. the throughput table (bench/gpu_throughput.py): rnn at 32, 256 and 1024 units, one run per
   process, then 4 and 8 jobs sharing the GPU;
4. the study's model shapes timed on the GPU (runner/plan.py), alone and as packs of 20 seeds
   (runner/plan_pack.py), saved as the file that `make plan ARGS="--timings FILE --pack 20"`
   estimates the study from, and that estimate.

Written under DIR ($OUT if set, else gpu-check/): log.txt (what it printed; when $OUT/log.txt
exists already, .device/gpu is teeing the output there and it is left to it), throughput.csv,
shape_timings.json, summary.md. Each part gets what is left of --budget (450 s) when it starts,
and the throughput table stops taking rows at its own share: what is measured is written.
Without CUDA, parts 3 and 4 skip, unless --cpu runs them tiny on the CPU (the code path only).
"""
import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from bench import gpu_throughput

ROOT = Path(__file__).resolve().parent.parent
SIZES, CPU_SIZES = (32, 256, 1024), (16,)
# seconds from the start at which each part stops: tests, throughput table, shape timings
TESTS_BY, TABLE_BY = 200, 340


class Log:
    """print, and the same line to log.txt when this process writes it."""

    def __init__(self, path: Path | None):
        self.file = open(path, "w") if path else None  # noqa: SIM115 (open for the run)

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        if self.file:
            self.file.write(text + "\n")
            self.file.flush()


def device_lines() -> list[str]:
    versions = (f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
                f"{torch.backends.cudnn.version() if torch.cuda.is_available() else None}")
    if not torch.cuda.is_available():
        return [f"device: no CUDA ({versions}): the CUDA parts skip"]
    props = torch.cuda.get_device_properties(0)
    return [f"device: {props.name}, {props.total_memory / 2**30:.1f} GiB, capability "
            f"{props.major}.{props.minor}, {torch.cuda.device_count()} visible; {versions}"]


def stream(cmd: list[str], log: Log, timeout: float) -> tuple[int | None, list[str]]:
    """Run `cmd`, each output line to the log as it comes; (its exit code, or None when it was
    killed at `timeout` with everything it started, its lines)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # its own group: killed whole
    expired = threading.Event()

    def kill():
        expired.set()
        os.killpg(proc.pid, signal.SIGKILL)

    timer, lines = threading.Timer(max(1.0, timeout), kill), []
    timer.start()
    try:
        for text in proc.stdout:
            lines.append(text.rstrip("\n"))
            log("  " + lines[-1])
        code = proc.wait()
    finally:
        timer.cancel()
    return (None if expired.is_set() else code), lines


def cpu_base(out: Path) -> list[str]:
    """--cpu: the tests' tiny corpus, so the table's code path runs in seconds."""
    from data.tiny import write_corpus

    root = out / "corpus"
    root.mkdir(parents=True, exist_ok=True)
    write_corpus(root / "tiny.txt")
    return [f"data.root={root}", "data.file=tiny.txt", "data.sha1=null", "data.download=false",
            "data.max_tokens=3000", "data.val_tokens=600", "data.batch_size=8",
            "data.num_steps=10"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu-check"))
    p.add_argument("--budget", type=float, default=450.0, help="seconds in all (default 450)")
    p.add_argument("--cpu", action="store_true", help="without CUDA, run parts 3-4 tiny on "
                   "the CPU (to test the code path)")
    p.add_argument("--epochs", type=int, default=30, help="epochs per throughput run")
    args = p.parse_args(argv)
    start, out = time.monotonic(), args.out
    out.mkdir(parents=True, exist_ok=True)
    teed = bool(os.environ.get("OUT")) and (out / "log.txt").exists()
    log = Log(None if teed else out / "log.txt")
    cuda = torch.cuda.is_available()
    scale = args.budget / 450.0  # each part's stop, in proportion to the budget
    summary = ["# GPU check", "", *device_lines(), ""]
    log(summary[2])

    log(f"== CUDA tests (pytest -m cuda tests/test_cuda.py, up to {TESTS_BY * scale:.0f} s)")
    code, lines = stream([sys.executable, "-m", "pytest", "-m", "cuda", "tests/test_cuda.py",
                          "-rs", "-p", "no:cacheprovider"], log, TESTS_BY * scale)
    verdict = lines[-1] if lines else "no output"
    tests_ok = code == 0
    summary += ["## CUDA tests", "", f"pytest exit {code}: {verdict}"
                + (" (stopped at its time budget)" if code is None else ""), ""]

    rows = []
    log("== throughput (bench/gpu_throughput.py)")
    if cuda or args.cpu:
        device, sizes = ("cuda", SIZES) if cuda else ("cpu", CPU_SIZES)
        modes = (1, 4, 8) if cuda else (1,)  # the CPU: the code path only, one process
        base = ["data.download=false"] if cuda else cpu_base(out)
        rows = gpu_throughput.table(["rnn"], sizes, modes, args.epochs if cuda else 2, device,
                                    base, start + TABLE_BY * scale, say=log,
                                    pack=gpu_throughput.PACK if cuda else 2)
        gpu_throughput.write_csv(out / "throughput.csv", rows)
        summary += ["## Throughput (rnn, model.impl=auto)", "",
                    *gpu_throughput.markdown(rows), ""]
    else:
        log("  skipped: no CUDA (--cpu runs it tiny on the CPU)")
        summary += ["## Throughput", "", "skipped: no CUDA", ""]

    log("== the study's model shapes timed here (runner/plan.py), for make plan --timings")
    if cuda or args.cpu:
        left = args.budget - (time.monotonic() - start)
        plan = [sys.executable, "-m", "runner.reproduce", "--plan", "--device",
                "cuda" if cuda else "cpu", "--save-timings", str(out / "shape_timings.json"),
                "--budget", str(max(1, int(left - 30))),  # 30 s: planning, then the table
                "--pack", "20" if cuda else "2"]  # and as packs of each point's seeds
        if not cuda:
            plan += ["--quick", "--only", "lr", *cpu_base(out), "train.num_epochs=1"]  # 1 shape
        code, lines = stream(plan, log, left)
        summary += ["## The study on this device (make plan --timings shape_timings.json)",
                    "", *[x for x in lines if x.startswith("|")], "",
                    *[x for x in lines if " runs, " in x and not x.startswith("|")],
                    f"(exit {code})", ""]
    else:
        log("  skipped: no CUDA")
        summary += ["## Shape timings", "", "skipped: no CUDA", ""]

    took = time.monotonic() - start
    summary.append(f"Took {took:.0f} s of a {args.budget:.0f} s budget.")
    (out / "summary.md").write_text("\n".join(summary) + "\n")
    log(f"== done in {took:.0f} s: {', '.join(sorted(f.name for f in out.glob('*.*')))} "
        f"in {out}")
    return 0 if tests_ok and all(not r.get("note", "").startswith("exit") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
