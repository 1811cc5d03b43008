"""End to end: a run that trains while busy loops hold every core is named in the report's
warnings as oversubscribed (its tokens/sec is no speed figure)."""
import os
import subprocess
import sys

import pytest

from runner.report import write_report
from runner.run.execute import run


@pytest.mark.slow  # a run beside busy loops
def test_a_run_beside_busy_loops_is_named_as_oversubscribed(tmp_path, tiny_cfg):
    cores = os.cpu_count()
    # 2 busy loops per core, started first and kept until the run ends, so that all of its
    # training shares the cores: its one thread gets well under a core. The run is in this
    # process, whose imports are done: the loops only slow what is measured.
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(2 * cores)]
    try:
        result = run(tiny_cfg("train.num_epochs=2", "threads=1"),
                     tmp_path / "sweep" / "busy_run")
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert result["status"] == "completed"
    write_report(tmp_path / "sweep")
    report = (tmp_path / "sweep" / "report.md").read_text()
    warnings = report[report.index("## Warnings"):report.index("## Tables")]
    [line] = [w for w in warnings.splitlines() if "oversubscribed" in w]
    assert "busy_run (" in line and "not a speed figure" in line
    assert "of its 1 threads" in line or f"on {cores} cores" in line
