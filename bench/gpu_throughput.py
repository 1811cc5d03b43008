"""The GPU check's throughput table (bench/gpu_check.py): training tokens/s of whole runs on one
GPU at 32, 256 and 1024 units, one run per process, then launcher=parallel with 4 and 8 jobs
sharing the GPU (launcher.jobs_per_device), each job in its own pinned process. A row is one
`python -m runner` command timed from outside, with the GPU's utilisation and memory sampled
meanwhile (nvidia-smi, twice a second) and the runs' own figures read from their result.json:

- tokens_per_s_wall: every run's training tokens over the command's wall time (process starts,
  CUDA set-up and evaluation included: what a sweep of such runs gets);
- tokens_per_s_steady: the sum over the runs of each one's median epoch (tokens_per_sec_
  epoch_median): the GPU's rate once every job trains at once;
- peak_alloc_mib: the largest run's torch.cuda.max_memory_allocated (process_peak_rss on CPU);
  gpu_mem_used_max_mib: nvidia-smi's memory.used, all processes and their CUDA contexts.

Packs of 20: `launcher.pack=20`, the 20 seeds of a shape trained as one model in one process
(docs/packing.md); a member's tokens/sec is its own tokens over its pack's time, so the sum over
the members is the pack's.
"""
import csv
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from runner.result import RESULT_FILE

MODES = ((1, "one run per process"), (4, "jobs_per_device=4"), (8, "jobs_per_device=8"))
COLUMNS = ["cell", "num_hiddens", "mode", "jobs", "runs", "completed", "epochs", "wall_s",
           "tokens", "tokens_per_s_wall", "tokens_per_s_steady", "per_run_tokens_per_s",
           "peak_alloc_mib", "gpu_util_mean", "gpu_util_max", "gpu_mem_used_max_mib", "note"]
PACK = 20


class GpuSampler(threading.Thread):
    """nvidia-smi's utilisation.gpu (%) and memory.used (MiB) of one GPU, every `every` s."""

    def __init__(self, gpu: str = "0", every: float = 0.5):
        super().__init__(daemon=True)
        self.cmd = ["nvidia-smi", "-i", gpu, "--query-gpu=utilization.gpu,memory.used",
                    "--format=csv,noheader,nounits"]
        self.every, self.util, self.mem, self.done = every, [], [], threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                out = subprocess.run(self.cmd, capture_output=True, text=True, timeout=5)
                util, mem = (float(v) for v in out.stdout.strip().splitlines()[0].split(","))
                self.util.append(util)
                self.mem.append(mem)
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return  # no nvidia-smi, or one that says nothing: the columns stay empty
            self.done.wait(self.every)

    def figures(self) -> dict:
        self.done.set()
        self.join()
        if not self.util:
            return {}
        return {"gpu_util_mean": round(statistics.mean(self.util), 1),
                "gpu_util_max": max(self.util), "gpu_mem_used_max_mib": max(self.mem)}


def command(cell: str, size: int, jobs: int, epochs: int, device: str, base: list[str],
            out: Path, pack: bool = False) -> list[str]:
    runs = [*base, f"model={cell}", f"model.num_hiddens={size}", f"train.num_epochs={epochs}",
            f"train.eval_every={epochs}", "sample.num_preds=0", "quiet=true", "store=null"]
    if pack:  # one process, the serial launcher: `jobs` seeds as one pack
        return [sys.executable, "-m", "runner", "-m", *runs, f"device={device}",
                f"launcher.pack={jobs}", f"seed={','.join(map(str, range(jobs)))}",
                f"hydra.sweep.dir={out}"]
    if jobs == 1:
        return [sys.executable, "-m", "runner", *runs, f"device={device}",
                f"hydra.run.dir={out}"]
    slots = ["launcher.devices=[cuda:0]"] if device == "cuda" else []
    return [sys.executable, "-m", "runner", "-m", *runs, f"device={device}", "launcher=parallel",
            f"launcher.jobs_per_device={jobs}", *slots,
            f"seed={','.join(map(str, range(jobs)))}", f"hydra.sweep.dir={out}"]


def measure(cell: str, size: int, jobs: int, epochs: int, device: str, base: list[str],
            timeout: float, pack: bool = False) -> dict:
    """One row: the command run to its end (or `timeout`), its runs' results read back."""
    mode = f"packs of {jobs}" if pack else dict(MODES).get(jobs, f"{jobs} jobs")
    row = {"cell": cell, "num_hiddens": size, "mode": mode, "jobs": jobs, "epochs": epochs,
           "note": ""}
    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    # the runs use GPU 0 as this process sees it: nvidia-smi counts every GPU of the machine
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip() or "0"
    sampler = GpuSampler(gpu) if device == "cuda" and shutil.which("nvidia-smi") else None
    if sampler:
        sampler.start()
    start = time.perf_counter()
    # its own process group: at the budget, the sweep's job processes are killed with it
    proc = subprocess.Popen(command(cell, size, jobs, epochs, device, base, tmp / "out", pack),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=timeout)
        if proc.returncode:
            row["note"] = f"exit {proc.returncode}: {stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        row["note"] = f"stopped at the time budget ({timeout:.0f} s)"
    row["wall_s"] = round(time.perf_counter() - start, 2)
    if sampler:
        row.update(sampler.figures())
    results = [json.loads(p.read_text()) for p in (tmp / "out").rglob(RESULT_FILE)]
    shutil.rmtree(tmp, ignore_errors=True)
    done = [r["metrics"] for r in results if r["status"] == "completed"]
    row.update(runs=len(results), completed=len(done))
    if done:
        rates = [m["tokens_per_sec_epoch_median"] for m in done]
        row.update(tokens=sum(m["train_tokens"] for m in done),
                   tokens_per_s_steady=round(sum(rates)),
                   per_run_tokens_per_s=round(statistics.median(rates)),
                   peak_alloc_mib=round(max(m["peak_memory_bytes"] for m in done) / 2**20, 1))
        row["tokens_per_s_wall"] = round(row["tokens"] / row["wall_s"])
    return row


def table(cells, sizes, modes, epochs: int, device: str, base: list[str], deadline: float,
          say=print, pack: int = PACK) -> list[dict]:
    """Every (cell, jobs, size) row in that order, each given what is left before `deadline`
    (time.monotonic()); once it has passed the rest are listed as skipped."""
    rows = []
    for cell in cells:
        for jobs, packed in [*((jobs, False) for jobs in modes), (pack, True)]:
            for size in sizes:
                left = deadline - time.monotonic()
                if left < 10:
                    row = {"cell": cell, "num_hiddens": size, "jobs": jobs,
                           "mode": f"packs of {jobs}" if packed else dict(MODES).get(jobs),
                           "note": "skipped: the check's time budget is spent"}
                else:
                    row = measure(cell, size, jobs, epochs, device, base, left, packed)
                rows.append(row)
                say(line(row))
    return rows


def line(row: dict) -> str:
    figures = [f"{row[k]:,} {label}" for k, label in
               (("tokens_per_s_wall", "tok/s (wall)"), ("tokens_per_s_steady", "tok/s (steady)"),
                ("peak_alloc_mib", "MiB peak alloc"), ("gpu_util_mean", "% GPU (mean)"),
                ("gpu_mem_used_max_mib", "MiB GPU used")) if row.get(k) is not None]
    return (f"  {row['cell']} {row['num_hiddens']:>5} {row['mode']:<22} "
            f"{row.get('completed', 0)}/{row.get('runs', 0)} runs, {row.get('wall_s', 0)} s: "
            + ", ".join(figures) + (f" [{row['note']}]" if row.get("note") else ""))


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def markdown(rows: list[dict]) -> list[str]:
    keys = ["num_hiddens", "mode", "completed", "wall_s", "tokens_per_s_wall",
            "tokens_per_s_steady", "peak_alloc_mib", "gpu_util_mean", "gpu_mem_used_max_mib",
            "note"]
    lines = ["| cell | " + " | ".join(keys) + " |", "|" + " --- |" * (len(keys) + 1)]
    return lines + [f"| {r['cell']} | " + " | ".join(str(r.get(k, "")) for k in keys) + " |"
                    for r in rows]
