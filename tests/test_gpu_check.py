"""make gpu-check (bench/gpu_check.py) run end to end on the CPU: the CUDA tests skip, and
with --cpu the throughput table and the shape timings run tiny, so the GPU machine's short
time is spent only on what the CPU cannot check."""
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.gpu_throughput import COLUMNS
from tests.helpers import tables_in

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # ~10 s: pytest, a tiny run and the plan in subprocesses
@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU path: make gpu-check on a GPU")
def test_the_check_writes_its_files_on_the_cpu(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--cpu"], cwd=ROOT,
                          capture_output=True, text=True, timeout=240,
                          env={**os.environ, "OUT": str(out)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "device: no CUDA" in proc.stdout and "the CUDA parts skip" in proc.stdout
    assert (out / "log.txt").read_text().splitlines()[0].startswith("device: no CUDA")

    with open(out / "throughput.csv") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == COLUMNS
    measured = rows  # one run per process, then a pack (of 2 on the CPU; 20 on a GPU)
    assert [(r["num_hiddens"], r["mode"], r["jobs"]) for r in measured] == [
        ("16", "one run per process", "1"), ("16", "packs of 2", "2")]
    for r in measured:
        assert r["completed"] == r["runs"] == r["jobs"] and not r["note"]
        assert float(r["tokens_per_s_steady"]) > 0 and int(r["tokens"]) > 0
        assert float(r["tokens_per_s_wall"]) == pytest.approx(
            int(r["tokens"]) / float(r["wall_s"]), rel=0.01)

    timings = json.loads((out / "shape_timings.json").read_text())
    assert timings["format"] == "runner-shape-timings/1" and timings["device"] == "cpu"
    assert len(timings["shapes"]) == 1  # --cpu: the lr experiment's one shape
    assert all(s["serial"]["epoch"] > 0 for s in timings["shapes"])
    pack = timings["shapes"][0]["pack"]  # --pack 2: the shape timed as a pack of its 2 seeds
    assert pack["members"] == 2 and pack["round"] > 0
    assert pack["epoch_tokens"] == 2 * timings["shapes"][0]["serial"]["epoch_tokens"]

    summary = (out / "summary.md").read_text()
    assert re.search(r"pytest exit 0: \d+ skipped in ", summary)  # every CUDA test, none run
    throughput, study = tables_in(summary)
    assert throughput[0][:3] == ["cell", "num_hiddens", "mode"] and len(throughput) == 3
    assert study[-1][0] == "total" and study[-1][1] == "10"
    assert study[0][-1] == "launcher.pack=2, serial" and study[-1][-1].endswith(("s", "min"))
