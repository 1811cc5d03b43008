"""Sweeps through the real CLI on a generated corpus: folders, resume, failure isolation,
launchers, and a SIGKILL in the middle; and every point of every named sweep expanded,
composed and validated, one of each trained."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from runner.hydra_private import basic_sweeper, job_folder
from runner.result import EXECUTION_KEYS, RESULT_FILE, run_identity, validate_result
from runner.sweep.manifest import add_command, earlier_commands, earlier_runs, typed_command
from runner.sweep.sweeper import (
    MANIFEST,
    exclude_keys,
    naming_override,
    runner_app,
    with_seed_axis,
)
from tests.helpers import cli_here, compose_config, tables_in, tiny_overrides

ROOT = Path(__file__).resolve().parent.parent
PARSER = OverridesParser.create()


def sweep_cli(corpus_dir, sweep_dir, *args):
    """A multirun, through the command line's entry point in this process (cli_here): `-m` is
    redundant for named sweeps, and harmless."""
    return cli_here("-m", *tiny_overrides(corpus_dir), "train.eval_every=2",
                    "train.num_epochs=2", f"hydra.sweep.dir={sweep_dir}", *args)


def results(sweep_dir: Path) -> dict[str, dict]:
    found = {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.rglob(RESULT_FILE)}
    for result in found.values():
        validate_result(result)
    return found


@pytest.mark.slow  # the CLI in a subprocess
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


@pytest.mark.slow  # the CLI in a subprocess
def test_a_failing_run_is_isolated_and_the_exit_code_says_so(corpus_dir, tmp_path):
    out = tmp_path / "sweep"
    # 10,000,000 units pass validation; their 400 TB recurrent matrix is more than any
    # address space (so even a machine that overcommits memory refuses it at once)
    proc = sweep_cli(corpus_dir, out, "model.num_hiddens=16,10000000")
    assert proc.returncode == 1
    assert "2 runs: 1 completed, 1 failed" in proc.stdout
    by_size = {r["config"]["model"]["num_hiddens"]: r for r in results(out).values()}
    assert by_size[16]["status"] == "completed"
    assert by_size[10000000]["status"] == "failed"
    assert "can't allocate memory" in by_size[10000000]["error"]["message"]
    assert by_size[10000000]["error"]["traceback_tail"]


@pytest.mark.slow  # the CLI in a subprocess
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


@pytest.mark.slow  # the CLI in a subprocess
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
    # A SIGKILL can land inside an atomic write (runner/result.py): its temp file stays, hidden
    # (.NAME.XXXX.tmp) and read by nothing; no result.json is ever half-written (results())
    assert all(p.name.startswith(".") for p in out.rglob("*.tmp"))
    finish = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, timeout=180)
    assert finish.returncode == 0, finish.stderr
    final = results(out)
    assert len(final) == 4 and {r["status"] for r in final.values()} == {"completed"}
    assert all(final[k]["run_id"] == r["run_id"] for k, r in partial.items()
               if r["status"] == "completed")


@pytest.mark.slow  # the CLI in a subprocess
def test_max_batch_size_launches_batches_of_a_sweep_planned_in_full(corpus_dir, tmp_path):
    out = tmp_path / "sweep"
    proc = sweep_cli(corpus_dir, out, "model.num_hiddens=8,16", "hydra.sweeper.max_batch_size=1")
    assert proc.returncode == 0, proc.stderr
    assert "2 runs planned, 0 already finished" in proc.stdout  # the manifest: every run
    assert "2 runs: 2 completed, 0 failed" in proc.stdout
    # job numbers run on across batches (each batch of 1 is launched on its own)
    nums = sorted(OmegaConf.load(p).hydra.job.num for p in out.rglob(".hydra/hydra.yaml"))
    assert nums == [0, 1]


@pytest.mark.slow  # the CLI in a subprocess, three times
def test_a_second_command_in_one_sweep_folder_keeps_the_first(corpus_dir, tmp_path):
    """`sweep=num_hiddens` then `model=gru sweep=num_hiddens`: one folder, both commands in
    the manifest's history, each run tagged with its command, the first's results untouched,
    and the report's tables one command each. The first command again, with a tracker added,
    trains nothing and replays its runs into that tracker."""
    out = tmp_path / "num_hiddens"
    first = ["sweep=num_hiddens", "model.num_hiddens=32,64"]
    second = ["model=gru", "sweep=num_hiddens", "model.num_hiddens=32,64"]
    assert sweep_cli(corpus_dir, out, *first).returncode == 0
    before = results(out)
    manifest_before = json.loads((out / MANIFEST).read_text())
    proc = sweep_cli(corpus_dir, out, *second)
    assert proc.returncode == 0, proc.stderr
    assert "already holds the runs of 1 other command(s)" in proc.stdout
    assert "[sweep num_hiddens] 2 runs: 2 completed" in proc.stdout  # its own runs only
    assert "2/2 done" in proc.stdout  # progress: this command's runs, not the folder's 4
    now = results(out)
    assert len(now) == 4
    assert all(now[k] == r for k, r in before.items())  # nothing written is lost
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["command"][:3] == ["python", "-m", "runner"]  # as typed, not a path
    commands = manifest["commands"]
    assert [c["command"] for c in commands] == [manifest_before["command"], manifest["command"]]
    assert "model=gru" in commands[1]["command"] and "model=gru" not in commands[0]["command"]
    by_command = {r["dir"]: r["commands"] for r in manifest["runs"]}
    assert sorted(by_command) == sorted(now)
    for folder, asked in by_command.items():
        assert asked == ([1] if "model=gru" in folder else [0]), folder
    assert sorted(commands[1]["runs"]) == sorted(k for k in now if "model=gru" in k)
    report = (out / "summary.md").read_text()
    assert "## Command 1: " in report and "## Command 2: " in report
    heading, _, full = report.split("## Command 2: ")[1].splitlines()[:3]
    assert heading == "`model=gru`"  # what sets it apart from the first command
    assert "model=gru sweep=num_hiddens model.num_hiddens=32,64" in full
    for section in report.split("## Command ")[1:]:
        table = tables_in(section)[0]
        assert table[0][1:] == ["32", "64"]  # one model's points, not four
        # its model's study table, left out at these tiny settings, with the line saying why
        assert "training perplexity (the study)" not in [row[0] for row in table]
        assert "Left out: the study's Table" in section, section  # Table 12, Tables 16-19

    again = sweep_cli(corpus_dir, out, *first, "logger=csv")  # a tracker added later
    assert again.returncode == 0, again.stderr
    assert "0 completed, 0 failed, 0 diverged, 2 skipped (2 finished runs replayed into csv, " \
        "which they had not been logged to)" in again.stdout
    for folder, result in results(out).items():
        sent = "model=gru" not in folder
        assert (out / folder / "metrics.csv").exists() == sent
        assert result["logged_to"] == (["csv"] if sent else [])
    assert len(json.loads((out / MANIFEST).read_text())["commands"]) == 3  # every command kept
    assert (out / "summary.md").read_text().count("## Command ") == 2  # the same points: one


def test_the_manifest_records_the_command_as_typed():
    assert typed_command(["/w/runner/__main__.py", "seed=1"]) == ["python", "-m", "runner",
                                                                  "seed=1"]
    assert typed_command(["/w/.venv/bin/runner", "-m", "seed=1,2"]) == ["runner", "-m",
                                                                        "seed=1,2"]
    assert typed_command(["-c", "seed=1"]) == ["-c", "seed=1"]  # python -c: as it is


def test_an_earlier_runners_manifest_is_the_first_command_of_the_history():
    old = {"command": ["/w/runner/__main__.py", "-m", "seed=0,1"], "started_at": "t0",
           "runs": [{"dir": "seed=0", "status": "completed"}, {"dir": "seed=1"}]}
    commands = earlier_commands(old)
    typed = ["python", "-m", "runner", "-m", "seed=0,1"]
    assert commands == [{"command": typed, "started_at": "t0", "runs": ["seed=0", "seed=1"]}]
    assert [r["commands"] for r in earlier_runs(old)] == [[0], [0]]
    assert add_command(commands, typed, "t1", ["seed=0", "seed=1"]) == 0  # again: a resume
    assert add_command(commands, ["runner", "model=gru"], "t2", ["model=gru"]) == 1
    assert [c["started_at"] for c in commands] == ["t0", "t2"]  # each when it first ran


@pytest.mark.slow  # the CLI in a subprocess
def test_hydras_own_launcher_choice_is_what_the_results_record(corpus_dir, tmp_path):
    out = tmp_path / "sweep"
    proc = sweep_cli(corpus_dir, out, "model.num_hiddens=8,16", "hydra/launcher=joblib",
                     "hydra.launcher.n_jobs=2")
    assert proc.returncode == 0, proc.stderr
    found = results(out)
    assert len(found) == 2
    for result in found.values():
        assert result["config"]["launcher"] == {"name": "joblib"}  # not serial
        assert result["environment"]["concurrent_jobs"] == 2
    assert "runs sharing a device: 2" in (out / "report.md").read_text()


@pytest.mark.slow  # the CLI in a subprocess
def test_help_says_the_internal_groups_are_not_choices():
    proc = subprocess.run([sys.executable, "-m", "runner", "--help"], cwd=ROOT, text=True,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    listed = [line for line in proc.stdout.splitlines()
              if line.startswith(("model/base:", "preset/"))]
    assert listed  # Hydra lists every folder of conf/: these are marked, right below
    groups = proc.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    assert "(internal, not for the command line: model/base and preset/*" in groups


def seeds_of(overrides: list[str], seed: int, repeats: int) -> list[list[str]]:
    """The jobs' seed overrides once the seed axis is added."""
    axis = with_seed_axis(PARSER.parse_overrides(overrides), seed, repeats, PARSER)
    jobs = basic_sweeper().split_arguments(axis, None)[0]
    return [[o for o in job if "seed=" in o] for job in jobs]


def test_a_single_seed_moves_the_start_of_the_seed_axis():
    cfg = compose_config("seed=3", "repeats=2")  # what the sweeper is given: seed 3, 2 repeats
    assert seeds_of(["seed=3"], cfg.seed, cfg.repeats) == [["seed=3"], ["seed=4"]]
    assert seeds_of(["seed=1,5"], 0, 1) == [["seed=1"], ["seed=5"]]  # an explicit seed sweep
    # a seed the app lacks, added by the user (+seed=5): the axis adds it the same way
    assert seeds_of(["+seed=5"], 5, 2) == [["+seed=5"], ["+seed=6"]]
    assert seeds_of(["++seed=5"], 5, 2) == [["seed=5"], ["seed=6"]]  # folders as ever


def test_the_runner_s_own_sweep_is_for_a_config_with_seed_and_repeats():
    assert runner_app(compose_config())
    assert not runner_app(OmegaConf.create({"foo": 10, "seed": 0}))  # no repeats: a foreign app
    assert not runner_app(OmegaConf.create({"repeats": 2}))


def test_folder_names_leave_out_every_execution_setting():
    """One list, runner/result.py EXECUTION_KEYS: each, and any key under one, is left out of
    the folder name the sweeper plans and tells Hydra (exclude_keys, matched exactly)."""
    naming = compose_config(hydra_node=True).hydra.job.config.override_dirname
    lines = [f"{k}=x" for k in EXECUTION_KEYS] + ["launcher.jobs_per_device=2", "seed=1",
                                                  "+logger.mine.file=e.jsonl", "model=gru"]
    job = OverridesParser.create().parse_overrides(lines)
    keys = exclude_keys(job, naming)
    assert set(EXECUTION_KEYS) | {"launcher.jobs_per_device", "logger.mine.file"} == set(keys)
    assert job_folder(job, keys, naming) == "model=gru,seed=1"
    assert naming_override(["logger", "seed"]) == \
        "hydra.job.config.override_dirname.exclude_keys=['logger','seed']"
    config = {"data": {"root": "/x", "num_steps": 35}, "device": "cpu", "seed": 1,
              "launcher": {"name": "parallel"}}
    assert run_identity(config) == {"data": {"num_steps": 35}, "seed": 1}


def test_slurm_launcher_settings_reach_submitit():
    hydra = compose_config("launcher=slurm", "launcher.partition=gpu", "launcher.gpus_per_job=2",
                           hydra_node=True).hydra
    assert hydra.launcher._target_.endswith("SlurmLauncher")
    assert (hydra.launcher.partition, hydra.launcher.gpus_per_node) == ("gpu", 2)
    assert hydra.launcher.timeout_min == 120 and hydra.launcher.array_parallelism == 64
