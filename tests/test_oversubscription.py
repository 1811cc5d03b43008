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
    run = subprocess.Popen([sys.executable, "-m", "runner", *overrides, "train.num_epochs=1",
                            f"threads={cores}", f"hydra.run.dir={run_dir}"], cwd=CHECKOUT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    busy = []
    try:
        # Start the loops once the model is built (the run logs "run <id>: ..." before
        # training; Hydra logs to stdout), so that imports run at full speed: 2 loops per core
        # leave the run's `cores` threads about a third of their CPU time over training.
        seen = []
        for line in run.stdout:
            seen.append(line)
            if "runner.run" in line and " params, output " in line:
                break
        else:
            raise AssertionError("the run ended before training began:\n" + "".join(seen))
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(2 * cores)]
        out, _ = run.communicate(timeout=300)
        assert run.returncode == 0, "".join(seen) + out
    finally:
        for p in [*busy, run]:
            p.kill()
        for p in [*busy, run]:
            p.wait()
    write_report(tmp_path / "sweep")
    report = (tmp_path / "sweep" / "report.md").read_text()
    warnings = report[report.index("## Warnings"):report.index("## Tables")]
    [line] = [w for w in warnings.splitlines() if "oversubscribed" in w]
    assert "busy_run (" in line and "not a speed figure" in line
    assert f"of its {cores} threads" in line or f"on {cores} cores" in line
