"""End to end: a run that trains while busy loops hold every core is named in the report's
warnings as oversubscribed (its tokens/sec is no speed figure)."""
import os
import subprocess
import sys

from runner.report import write_report
from tests.conftest import tiny_overrides

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_run_beside_busy_loops_is_named_as_oversubscribed(tmp_path, corpus_dir):
    cores = os.cpu_count()
    run_dir = tmp_path / "sweep" / "busy_run"
    overrides = [o for o in tiny_overrides(corpus_dir) if not o.startswith("train.num_epochs")]
    # 2 busy loops per core, started first and kept until the run ends, so that every moment
    # of its training shares the cores: its `cores` threads get about a third of their time.
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(2 * cores)]
    try:
        run = subprocess.run([sys.executable, "-m", "runner", *overrides, "train.num_epochs=3",
                              f"threads={cores}", f"hydra.run.dir={run_dir}"], cwd=CHECKOUT,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
    finally:
        for p in busy:
            p.kill()
            p.wait()
    write_report(tmp_path / "sweep")
    report = (tmp_path / "sweep" / "report.md").read_text()
    warnings = report[report.index("## Warnings"):report.index("## Tables")]
    [line] = [w for w in warnings.splitlines() if "oversubscribed" in w]
    assert "busy_run (" in line and "not a speed figure" in line
    assert f"of its {cores} threads" in line or f"on {cores} cores" in line
