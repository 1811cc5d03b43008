"""What a run measures about itself: peak memory of this run alone, CPU time beside wall time
over training, and the load on the machine around it."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from runner.run.execute import run

ROOT = Path(__file__).resolve().parent.parent


# Three runs in one fresh process, as a serial sweep runs them. Fresh: a test worker that ran
# other tests first holds freed memory that a large run's allocations reuse unseen.
THREE_RUNS = """
import json, sys
from runner.run.execute import run
from tests.helpers import compose_config, tiny_overrides
corpus, out = sys.argv[1:]
small = ["train.num_epochs=1", "threads=1"]
large = [*small, "model.num_hiddens=2048", "data.batch_size=64", "data.val_tokens=60"]
print(json.dumps([run(compose_config(*tiny_overrides(corpus), *extra), f"{out}/{i}")["metrics"]
                  for i, extra in enumerate([small, large, small])]))
"""


@pytest.mark.slow  # a large run, then a small one, in a fresh process
def test_a_small_run_after_a_large_one_reports_its_own_peak_memory(corpus_dir, tmp_path):
    """Several runs share one process in a serial sweep: each reports its own peak, not the
    process's maximum so far (which only ever rises)."""
    proc = subprocess.run([sys.executable, "-c", THREE_RUNS, str(corpus_dir), str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    peaks = json.loads(proc.stdout.splitlines()[-1])
    assert {m["peak_memory_kind"] for m in peaks} == {"process_peak_rss"}
    first, big, after = (m["peak_memory_bytes"] / 2**20 for m in peaks)  # MiB
    assert big > first + 80  # the large run's weights, activations and gradients
    assert after < big - 80
    assert after == pytest.approx(first, abs=25)


def test_cpu_time_and_load_are_recorded_around_training(tiny_cfg, tmp_path):
    result = run(tiny_cfg("train.num_epochs=3", "threads=1"), tmp_path)
    m, env, curves = result["metrics"], result["environment"], result["curves"]
    assert len(curves["train_cpu_seconds"]) == 3
    assert m["train_cpu_seconds"] == pytest.approx(sum(curves["train_cpu_seconds"]))
    # one busy thread: CPU time is close to wall time, never far above it
    assert 0 < m["train_cpu_seconds"] <= 1.5 * m["train_seconds"] + 0.05
    assert env["threads"] == 1
    for key in ("load_avg_start", "load_avg_end"):
        assert isinstance(env[key], float) and env[key] >= 0
