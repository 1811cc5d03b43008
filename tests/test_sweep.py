"""Sweeps through the real CLI on a generated corpus: folders, resume, failure isolation,
launchers, and a SIGKILL in the middle."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.result import EXECUTION_KEYS, RESULT_FILE, run_identity, validate_result
from runner.sweep.sweeper import MANIFEST
from tests.helpers import compose_config, tiny_overrides

ROOT = Path(__file__).resolve().parent.parent


def sweep_cli(corpus_dir, sweep_dir, *args, timeout=180):
    """A multirun: `-m` is redundant for named sweeps, and harmless."""
    cmd = [sys.executable, "-m", "runner", "-m", *tiny_overrides(corpus_dir),
           "train.eval_every=2", "train.num_epochs=2", f"hydra.sweep.dir={sweep_dir}", *args]
    return subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, timeout=timeout)


def results(sweep_dir: Path) -> dict[str, dict]:
    found = {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.rglob(RESULT_FILE)}
    for result in found.values():
        validate_result(result)
    return found


def test_two_by_two_sweep_then_resume(corpus_dir, tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep=num_hiddens", "model.num_hiddens=8,16", "repeats=2"]
    proc = sweep_cli(corpus_dir, out, *args)
    assert proc.returncode == 0, proc.stderr
    first = results(out)
    assert len(first) == 4
    for folder, result in first.items():
        assert result["status"] == "completed"
        cfg = result["config"]
        assert f"model.num_hiddens={cfg['model']['num_hiddens']}" in folder.split(",")
        assert f"seed={cfg['seed']}" in folder.split(",")
        assert "sweep=" not in folder and "repeats=" not in folder and "data.root" not in folder
    assert sorted((r["config"]["model"]["num_hiddens"], r["config"]["seed"])
                  for r in first.values()) == [(8, 0), (8, 1), (16, 0), (16, 1)]
    assert "[sweep sweep] 4 runs: 4 completed, 0 failed, 0 diverged, 0 skipped" in proc.stdout
    manifest = json.loads((out / MANIFEST).read_text())
    assert sorted(r["dir"] for r in manifest["runs"]) == sorted(first)
    assert {r["status"] for r in manifest["runs"]} == {"completed"}
    assert (out / "summary.csv").exists() and (out / "runs.csv").exists()

    again = sweep_cli(corpus_dir, out, *args)  # the same command trains nothing
    assert again.returncode == 0, again.stderr
    assert "4 runs planned, 4 already finished" in again.stdout
    assert "0 completed, 0 failed, 0 diverged, 4 skipped" in again.stdout
    assert {k: r["run_id"] for k, r in results(out).items()} == \
        {k: r["run_id"] for k, r in first.items()}

    victim = sorted(first)[1]
    (out / victim / RESULT_FILE).unlink()  # a lost result: only that run trains again
    third = sweep_cli(corpus_dir, out, *args)
    assert "1 completed, 0 failed, 0 diverged, 3 skipped" in third.stdout
    now = results(out)
    assert now[victim]["run_id"] != first[victim]["run_id"]
    assert all(now[k]["run_id"] == first[k]["run_id"] for k in first if k != victim)


def test_a_failing_run_is_isolated_and_the_exit_code_says_so(corpus_dir, tmp_path):
    out = tmp_path / "sweep"
    proc = sweep_cli(corpus_dir, out, "init=kaiming_normal", "init.mode=fan_in,bogus")
    assert proc.returncode == 1
    assert "2 runs: 1 completed, 1 failed" in proc.stdout
    by_mode = {r["config"]["init"]["mode"]: r for r in results(out).values()}
    assert by_mode["fan_in"]["status"] == "completed"
    assert by_mode["bogus"]["status"] == "failed"
    assert "bogus" in by_mode["bogus"]["error"]["message"]
    assert by_mode["bogus"]["error"]["traceback_tail"]


def test_parallel_launcher_runs_two_jobs_sharing_the_cpu(corpus_dir, tmp_path):
    out = tmp_path / "sweep"
    proc = sweep_cli(corpus_dir, out, "model.num_hiddens=8,16", "launcher=parallel",
                     "launcher.jobs_per_device=2")
    assert proc.returncode == 0, proc.stderr
    found = results(out)
    assert len(found) == 2
    for result in found.values():
        assert result["status"] == "completed"
        assert result["environment"]["concurrent_jobs"] == 2
        assert result["environment"]["threads"] == max(1, os.cpu_count() // 2)


def test_submitit_local_launcher(corpus_dir, tmp_path):
    out = tmp_path / "sweep"
    proc = sweep_cli(corpus_dir, out, "model.num_hiddens=8,16", "launcher=submitit_local")
    assert proc.returncode == 0, proc.stderr
    assert [r["status"] for r in results(out).values()] == ["completed", "completed"]


def test_sigkill_mid_sweep_then_the_same_command_finishes_it(corpus_dir, tmp_path):
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "runner", "-m", *tiny_overrides(corpus_dir),
           "train.num_epochs=15", "model.num_hiddens=8,12,16,20", f"hydra.sweep.dir={out}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while not list(out.rglob(RESULT_FILE)) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # well inside the next run's training
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = results(out)  # whatever is there is whole and valid
    assert 1 <= len(partial) < 4
    assert not [p for p in out.rglob("*.tmp")]  # no half-written temp file left as a result
    finish = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, timeout=180)
    assert finish.returncode == 0, finish.stderr
    final = results(out)
    assert len(final) == 4 and {r["status"] for r in final.values()} == {"completed"}
    assert all(final[k]["run_id"] == r["run_id"] for k, r in partial.items()
               if r["status"] == "completed")


def test_folder_names_leave_out_every_execution_setting():
    hydra = compose_config(hydra_node=True).hydra
    exclude = set(hydra.job.config.override_dirname.exclude_keys)
    assert set(EXECUTION_KEYS) - {"sweep_name"} <= exclude
    config = {"data": {"root": "/x", "num_steps": 35}, "device": "cpu", "seed": 1,
              "launcher": {"name": "parallel"}}
    assert run_identity(config) == {"data": {"num_steps": 35}, "seed": 1}


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "conf" / "sweep").glob("*.yaml")))
def test_every_named_sweep_composes_in_multirun_mode(name):
    cfg = compose_config(f"sweep={name}", hydra_node=True)
    assert cfg.hydra.mode.name == "MULTIRUN"
    assert cfg.sweep_name == name and cfg.hydra.sweeper.params


def test_slurm_launcher_settings_reach_submitit():
    hydra = compose_config("launcher=slurm", "launcher.partition=gpu", "launcher.gpus_per_job=2",
                           hydra_node=True).hydra
    assert hydra.launcher._target_.endswith("SlurmLauncher")
    assert (hydra.launcher.partition, hydra.launcher.gpus_per_node) == ("gpu", 2)
    assert hydra.launcher.timeout_min == 120 and hydra.launcher.array_parallelism == 64
