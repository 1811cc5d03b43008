"""launcher=slurm against a real SLURM (.ci/slurm/start: one node, Slurm 22.05, with
accounting): a sweep, a timeout requeue and an `scontrol requeue` that end as the run never
stopped would, an `scancel` and a `kill -9` that end the sweep with its summary and report.
They run under RUNNER_SLURM=1 where a SLURM answers, and skip otherwise (`make test`); CI starts
one and runs them with RUNNER_SLURM=required, where a skip fails."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from runner.result import RESULT_FILE, run_identity
from runner.run import run
from runner.run.checkpoint import CHECKPOINT_FILE
from tests.helpers import compose_config, tiny_overrides, write_corpus
from tests.test_checkpoint import SETTINGS, outcome

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
# 1 core and 1 GB a job: the node's 2 cores run two jobs at once; no GPU (device=cpu)
SLURM = ["launcher=slurm", "launcher.cpus_per_job=1", "launcher.mem_gb=1",
         "launcher.timeout_min=10"]
# ~18 s of CPU on an idle core: a run still trains when SLURM's SIGKILL comes after a
# SIGTERM (KillWait 2 s, .ci/slurm/start, but seen over 4.5 s later on an idle machine, where
# 100 epochs finished first)
LONG = [*SETTINGS, "train.num_epochs=400", "train.eval_every=200"]


def short_names(*overrides: str) -> str:
    """Run folders named by the seed alone: every key above would make a name over 255 bytes."""
    return ("hydra.job.config.override_dirname.exclude_keys=["
            + ",".join(sorted({o.split("=")[0] for o in overrides})) + "]")


@pytest.fixture(scope="module")
def slurm():
    """Opt-in (RUNNER_SLURM=1, or =required where a skip fails: CI): these tests submit jobs,
    which on a real cluster's login node could wait in its queue for hours. Then a SLURM that
    answers `scontrol ping`, else a skip saying how to start one."""
    how = ('`eval "$(sudo .ci/slurm/start)"` starts a one-node SLURM (root, apt); CI does')
    if not os.environ.get("RUNNER_SLURM"):
        pytest.skip(f"SLURM tests are opt-in: RUNNER_SLURM=1 runs them; {how}")
    if shutil.which("scontrol") and "UP" in subprocess.run(
            ["scontrol", "ping"], capture_output=True, text=True).stdout:
        return
    why = f"no SLURM answers `scontrol ping` (SLURM_CONF={os.environ.get('SLURM_CONF')}): {how}"
    if os.environ.get("RUNNER_SLURM") == "required":
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpora")
    write_corpus(root / "tiny.txt")
    return root


@pytest.fixture(scope="module")
def clean(corpus, tmp_path_factory):
    """LONG, never stopped, in this process (1 thread, as each job runs)."""
    folder = tmp_path_factory.mktemp("clean")
    cfg = compose_config(*tiny_overrides(corpus), *LONG)
    return run(cfg, folder)


def start(corpus, sweep, *extra, env=None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "-m", *SLURM, *tiny_overrides(corpus), *extra,
         short_names(*tiny_overrides(corpus), *LONG), f"hydra.sweep.dir={sweep}"], cwd=ROOT,
        text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})})


def finish(proc, timeout=180) -> str:
    """The sweep's output once it exits; a hang guard only."""
    try:
        return proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"the sweep hung: {proc.communicate()[0][-3000:]}")


def job_id(sweep, task=0) -> str:
    """The SLURM id of the array's `task` (submitit's folder .submitit/<array>_<task>; a
    single job is no array: .submitit/<id>)."""
    for _ in range(3000):  # a hang guard only: ~30 s
        names = [p.name for p in (sweep / ".submitit").glob("*") if p.is_dir()]
        if found := [n for n in names if n.endswith(f"_{task}")]:
            return found[0]
        if len(names) == 1 and task == 0 and sweep.joinpath(".submitit", names[0],
                                                           f"{names[0]}_0_log.out").exists():
            return names[0]  # a single job (an array's main folder holds no log)
        time.sleep(0.01)
    pytest.fail("no job submitted")


def wait_for_epoch(sweep, proc, epoch: int, run_dir="*") -> Path:
    """Until a run's checkpoint holds `epoch` or later; its folder."""
    for _ in range(12000):  # a hang guard only: ~2 min (the job waits for its turn)
        for path in sweep.glob(f"{run_dir}/{CHECKPOINT_FILE}"):
            try:
                if torch.load(path, weights_only=False)["epoch"] >= epoch:
                    return path.parent
            except (EOFError, RuntimeError):  # replaced while read
                pass
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.01)
    pytest.fail(f"no checkpoint of epoch {epoch}")


def manifest(sweep) -> dict:
    return json.loads((sweep / "manifest.json").read_text())


def no_accounting(tmp_path) -> dict:
    """The environment of a sweep on a cluster without slurmdbd: a sacct that fails, first on
    PATH (submitit then reads every job as UNKNOWN, and its own wait never ends)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sacct").write_text("#!/bin/sh\necho 'sacct: error: Slurm accounting storage "
                                   "is disabled' >&2\nexit 1\n")
    (bin_dir / "sacct").chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def same_as_clean(result: dict, clean: dict) -> bool:
    assert run_identity(result["config"]) == run_identity(clean["config"])  # launcher aside
    return ({**outcome(result), "config": None}
            == {**outcome(clean), "run_id": result["run_id"], "config": None})


def test_requeued_jobs_resume_to_the_uninterrupted_result(slurm, corpus, clean, tmp_path):
    """Two sweeps of one job each, at once. One times out: SLURM's advance signal before the
    time limit (USR2, sent as submitit's own test sends it, `scancel --signal`: a real limit
    takes minutes), on which submitit requeues the job. The other is `scontrol requeue`d:
    SIGTERM, which submitit ignores (the run writes its checkpoint on it), SIGKILL KillWait
    later, and SLURM runs the job again. Each ends with the uninterrupted run's result, and
    ran with the one core it asked for and no GPU request."""
    sweeps = {how: tmp_path / how for how in ("timeout", "requeue")}
    procs = {how: start(corpus, sweep, *LONG) for how, sweep in sweeps.items()}
    for how, sweep in sweeps.items():
        wait_for_epoch(sweep, procs[how], 3)
        subprocess.run(["scancel", "--signal=USR2", job_id(sweep)] if how == "timeout"
                       else ["scontrol", "requeue", job_id(sweep)], check=True)
    for how, sweep in sweeps.items():
        out = finish(procs[how])
        assert procs[how].returncode == 0 and "1 runs: 1 completed" in out, out
        assert (sweep / "report.md").exists()
        [path] = sweep.glob(f"*/{RESULT_FILE}")
        result = json.loads(path.read_text())
        assert result["status"] == "completed" and result["resumed_from_epoch"][0] >= 3, how
        assert same_as_clean(result, clean), how
        assert result["config"]["launcher"]["name"] == "slurm"
        # cpus_per_job reached torch inside the job, and the result records it
        assert result["config"]["threads"] == result["environment"]["threads"] == 1
        [script] = (sweep / ".submitit").glob("*/*_submission.sh")
        assert "#SBATCH --cpus-per-task=1\n" in script.read_text()
        assert "gpu" not in script.read_text()  # device=cpu: no GPU asked for, no override


def test_a_cancelled_and_a_killed_job_fail_their_runs_and_the_sweep_finishes(slurm, corpus,
                                                                            clean, tmp_path):
    """Three jobs, two cores: `scancel` of the first, `kill -9` of the second's process inside
    its allocation; the third runs once a core is free. The sweep collects it, records the
    other two failed with SLURM's reason, prints its summary, writes its report and exits 1
    without a traceback; the same command then finishes both from their checkpoints."""
    sweep = tmp_path / "sweep"
    command = [*LONG, "seed=0,1,2"]
    proc = start(corpus, sweep, *command)
    cancelled, killed = manifest_dir(sweep, 0), manifest_dir(sweep, 1)
    wait_for_epoch(sweep, proc, 3, cancelled)
    subprocess.run(["scancel", job_id(sweep, 0)], check=True)
    wait_for_epoch(sweep, proc, 3, killed)
    os.kill(run_process(sweep, 1), signal.SIGKILL)
    out = finish(proc)
    assert proc.returncode == 1 and "Traceback" not in out, out
    assert "3 runs: 1 completed, 2 failed" in out, out
    runs = manifest(sweep)["runs"]
    assert [r["status"] for r in runs] == ["failed", "failed", "completed"]
    assert "ended CANCELLED" in runs[0]["reason"] and "ended FAILED" in runs[1]["reason"]
    assert "reason" not in runs[2] and (sweep / "report.md").exists()
    wait_gone(job_id(sweep, 0))  # its process is SIGKILLed KillWait after the SIGTERM
    again = start(corpus, sweep, *command)
    out = finish(again)
    assert again.returncode == 0 and "2 completed" in out and "1 skipped" in out, out
    first, second = (json.loads((sweep / d / RESULT_FILE).read_text())
                     for d in (cancelled, killed))
    assert same_as_clean(first, clean)  # seed 0, as the clean run
    for result in (first, second):
        assert result["status"] == "completed" and result["resumed_from_epoch"][0] >= 3
    assert not any("reason" in r for r in manifest(sweep)["runs"])


def test_without_accounting_ended_jobs_end_the_sweep(slurm, corpus, tmp_path):
    """No slurmdbd: sacct fails, squeue says how the jobs ended (scancel, kill -9)."""
    sweep = tmp_path / "sweep"
    proc = start(corpus, sweep, *LONG, "seed=0,1", env=no_accounting(tmp_path))
    for task in (0, 1):
        wait_for_epoch(sweep, proc, 3, manifest_dir(sweep, task))
    subprocess.run(["scancel", job_id(sweep, 0)], check=True)
    os.kill(run_process(sweep, 1), signal.SIGKILL)
    out = finish(proc)
    assert proc.returncode == 1 and "Traceback" not in out, out
    assert "2 runs: 0 completed, 2 failed" in out, out
    runs = manifest(sweep)["runs"]
    assert "CANCELLED" in runs[0]["reason"] and "FAILED" in runs[1]["reason"], runs


def run_process(sweep, task: int) -> int:
    """The PID of the process that runs the array's `task` (`python -m submitit.core._submit
    <sweep>/.submitit/%j` under srun, whose command line says the same), by its
    SLURM_ARRAY_TASK_ID."""
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours to read
            continue
        if (b"submitit.core._submit" in cmd and Path(cmd[0].decode()).name != "srun"
                and any(str(sweep).encode() in c for c in cmd)
                and f"SLURM_ARRAY_TASK_ID={task}".encode() in env):
            return int(proc.name)
    pytest.fail(f"no process runs task {task}")


def manifest_dir(sweep, index: int) -> str:
    """The run folder of the manifest's `index`-th run, once the sweep has planned it."""
    for _ in range(3000):  # a hang guard only: ~30 s
        if (sweep / "manifest.json").exists():
            return manifest(sweep)["runs"][index]["dir"]
        time.sleep(0.01)
    pytest.fail("no manifest")


def wait_gone(job: str) -> None:
    """Until no process of the job runs (squeue no longer says RUNNING or COMPLETING)."""
    for _ in range(600):  # a hang guard only: ~60 s
        state = subprocess.run(["squeue", "-h", "-t", "all", "-j", job, "-o", "%T"],
                               capture_output=True, text=True).stdout.strip()
        if state not in ("RUNNING", "COMPLETING"):
            return
        time.sleep(0.1)
    pytest.fail(f"job {job} still running")


# packs (launcher.pack=2) need one layer without dropout; 200 epochs of a pack of 2, ~9 s of
# CPU on an idle core (14 s for 300 measured at load 6.5), so SLURM's SIGKILL, seen 4.5 s
# after the SIGTERM, lands while they train
PACKED = [*(s for s in LONG if not s.startswith(("model.num_layers=", "model.dropout=",
                                                 "train.num_epochs=", "train.eval_every="))),
          "train.num_epochs=200", "train.eval_every=100", "launcher.pack=2", "repeats=2"]


def test_packs_are_requeued_and_cancelled_member_by_member(slurm, corpus, tmp_path):
    """Two packed sweeps at once, one pack job per point (2 seeds each), one core each. The
    first sweep's optim.lr=2 pack is `scancel`led while it trains: both its members are
    recorded failed with SLURM's reason, its lr=1 pack completes, the sweep prints its summary,
    writes its report and exits 1 without a traceback. The second sweep's lr=1 pack (its job
    waiting for the core the cancel frees) is `scontrol requeue`d while it trains (SIGTERM:
    every member writes its checkpoint, then SIGKILL): the job runs again and each member
    resumes from its own checkpoint to the first sweep's uninterrupted member, number for
    number."""
    cancel, requeue = tmp_path / "cancel", tmp_path / "requeue"
    first = start(corpus, cancel, *PACKED, "optim.lr=1,2")
    wait_for_epoch(cancel, first, 1, manifest_dir(cancel, 2))  # optim.lr=2's pack: task 1
    second = start(corpus, requeue, *PACKED, "optim.lr=1")  # its job waits for a core
    wait_for_epoch(cancel, first, 3, manifest_dir(cancel, 2))
    subprocess.run(["scancel", job_id(cancel, 1)], check=True)
    wait_for_epoch(requeue, second, 3)
    subprocess.run(["scontrol", "requeue", job_id(requeue)], check=True)
    out = finish(first, timeout=300)
    assert first.returncode == 1 and "Traceback" not in out, out
    assert "4 runs: 2 completed, 2 failed" in out, out
    runs = manifest(cancel)["runs"]
    assert [r["status"] for r in runs] == ["completed", "completed", "failed", "failed"]
    for member in runs[2:]:
        assert "ended CANCELLED" in member["reason"], runs
        assert f"{member['dir']} failed: SLURM job {job_id(cancel, 1)} ended CANCELLED" in out
    assert (cancel / "report.md").exists()
    out = finish(second, timeout=300)
    assert second.returncode == 0 and "2 runs: 2 completed" in out, out
    for member in manifest(requeue)["runs"]:
        result = json.loads((requeue / member["dir"] / RESULT_FILE).read_text())
        clean = json.loads((cancel / member["dir"] / RESULT_FILE).read_text())
        assert result["status"] == "completed" and result["resumed_from_epoch"][0] >= 3
        assert result["environment"]["packed"] == clean["environment"]["packed"] == 2
        assert "resumed_from_epoch" not in clean
        assert same_as_clean(result, clean)
        # one job's resources for the pack: its core reached torch, no GPU asked for
        assert result["config"]["threads"] == result["environment"]["threads"] == 1
    [script] = (requeue / ".submitit").glob("*/*_submission.sh")
    assert "#SBATCH --cpus-per-task=1\n" in script.read_text() and "gpu" not in script.read_text()
