"""A sweep's progress line, from the manifest and its jobs' appended outcomes only."""
import os
from datetime import datetime
from types import SimpleNamespace

import runner.sweep.job
from runner.result import write_json_atomic
from runner.sweep.job import progress
from runner.sweep.sweeper import MANIFEST, PROGRESS


def manifest(folder, statuses, started):
    write_json_atomic(folder / MANIFEST, {
        "sweep": folder.name, "started_at": started, "updated_at": started,
        "runs": [{"dir": f"seed={i}", "overrides": [f"seed={i}"], "status": s}
                 for i, s in enumerate(statuses)]})


def test_counts_runs_finished_before_and_this_sitting_and_never_reads_results(tmp_path,
                                                                             monkeypatch):
    sweep = tmp_path / "lr"
    sweep.mkdir()
    started = "2026-01-01T00:00:00+00:00"
    clock = datetime.fromisoformat(started).timestamp() + 60  # a minute into the sweep
    monkeypatch.setattr(runner.sweep.job, "time", SimpleNamespace(time=lambda: clock))
    manifest(sweep, ["completed", "pending", "failed", "pending", "pending"], started)
    (sweep / PROGRESS).write_text("")
    assert progress(sweep) == "[sweep lr] 1/5 done, 0 failed, ETA -"
    # result.json files that disagree are not read: the jobs' outcomes are the source
    os.makedirs(sweep / "seed=1")
    (sweep / "seed=1" / "result.json").write_text("{not json")
    (sweep / PROGRESS).write_text("seed=0 skipped\nseed=1 completed\nseed=2 failed\n")
    line = progress(sweep)
    assert line.startswith("[sweep lr] 2/5 done, 1 failed, ETA ")
    # 2 runs (seed=1, seed=2) took 60 s; 2 (seed=3, seed=4) are left: 60 s more
    assert line.endswith("ETA 60s")
    (sweep / PROGRESS).write_text("seed=0 skipped\nseed=1 completed\nseed=2 diverged\n"
                                  "seed=3 completed\nseed=4 completed\n")
    assert progress(sweep) == "[sweep lr] 5/5 done, 0 failed, ETA -"


def test_without_a_manifest_says_so(tmp_path):
    assert progress(tmp_path) == f"[sweep {tmp_path.name}] (no manifest)"
