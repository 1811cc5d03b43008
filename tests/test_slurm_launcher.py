"""launcher=slurm without a cluster: how runner/sweep/slurm.py collects a job (a stand-in for
submitit's SlurmJob, SLURM's answers scripted), the GPU request that follows `device` and the
threads that follow cpus_per_job. tests/test_slurm.py runs the same against a real SLURM."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra.core.utils import JobReturn, JobStatus
from submitit.core.utils import FailedJobError

import runner.sweep.slurm as slurm
from runner.sweep.sweeper import MANIFEST, PROGRESS, Sweep, size_launcher
from tests.helpers import compose_config


class Job:
    """What Collected reads of submitit's job: its id, result file, log, sacct's state (via
    submitit's watcher: one answer a call, the last repeated) and its results()."""

    def __init__(self, tmp_path: Path, sacct: list[str], result=None, appears_after=None):
        self.job_id, self.calls = "7_1", 0
        self.paths = SimpleNamespace(result_pickle=tmp_path / "7_1_result.pkl",
                                     stderr=tmp_path / "7_1_log.err")
        self.sacct, self.result, self.appears_after = sacct, result, appears_after
        self.watcher = SimpleNamespace(get_state=self.state)

    def state(self, job_id):
        self.calls += 1
        if self.calls == self.appears_after:  # the job writes its result now
            self.paths.result_pickle.write_bytes(b"")
        return self.sacct[min(self.calls, len(self.sacct)) - 1]

    def results(self):
        if isinstance(self.result, Exception):
            raise self.result
        return [self.result]


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    for name in ("POLL_S", "SQUEUE_EVERY_S", "RESULT_GRACE_S"):
        monkeypatch.setattr(slurm, name, 0)


def squeue(monkeypatch, *answers):
    said = iter(answers)
    monkeypatch.setattr(slurm, "squeue_state", lambda job_id: next(said, answers[-1]))


@pytest.mark.parametrize("sacct, live, reason", [
    (["CANCELLED by 0"], "CANCELLED", "SLURM job 7_1 ended CANCELLED"),  # scancel
    (["UNKNOWN"], "FAILED", "SLURM job 7_1 ended FAILED"),  # no accounting, kill -9
    (["UNKNOWN"], "GONE", "SLURM job 7_1 ended GONE"),  # no accounting, long gone
    (["OUT_OF_MEMORY"], "GONE", "SLURM job 7_1 ended OUT_OF_MEMORY"),  # squeue forgot it
])
def test_a_job_slurm_ended_without_a_result_is_a_failed_return(tmp_path, monkeypatch, sacct,
                                                               live, reason):
    """Where submitit's own results() would raise (UncompletedJobError) or wait forever."""
    squeue(monkeypatch, live)
    [ret] = slurm.Collected(Job(tmp_path, sacct)).results()
    assert ret.status == JobStatus.FAILED and str(ret._return_value) == reason


def test_a_requeued_job_is_waited_for_though_sacct_says_it_ended(tmp_path, monkeypatch):
    """sacct lags behind a requeue (COMPLETED while the job is PENDING again): squeue's word
    keeps the wait going until the requeued job writes its result."""
    squeue(monkeypatch, "PENDING", "RUNNING")
    job = Job(tmp_path, ["RUNNING", "COMPLETED"], result="completed", appears_after=5)
    assert slurm.Collected(job).results() == ["completed"] and job.calls == 5


def test_a_job_that_raised_fails_with_its_error_line(tmp_path, monkeypatch):
    error = FailedJobError("Job (task=0) failed during processing with trace:\n"
                           "----------------------\nTraceback (most recent call last):\n"
                           '  File "x.py", line 1\nOSError: [Errno 36] File name too long\n'
                           "----------------------\nYou can check full logs with ...")
    job = Job(tmp_path, ["FAILED"], result=error, appears_after=1)
    [ret] = slurm.Collected(job).results()
    assert str(ret._return_value) == "SLURM job 7_1: OSError: [Errno 36] File name too long"


@pytest.mark.parametrize("overrides, gpus", [
    (["device=cpu"], None),  # a CPU partition: no GPU request, no override needed
    (["device=auto"], 1), (["device=cuda"], 1),
    (["device=cpu", "launcher.gpus_per_job=2"], 2),  # as asked
])
def test_the_gpu_request_follows_the_device(overrides, gpus):
    config = compose_config("launcher=slurm", *overrides, hydra_node=True)
    size_launcher(config)
    assert config.hydra.launcher.gpus_per_node == gpus


def test_the_job_runs_as_many_torch_threads_as_it_has_cores():
    assert compose_config("launcher=slurm", "launcher.cpus_per_job=3").threads == 3
    assert compose_config("launcher=slurm", "threads=2").threads == 2  # as asked


def test_a_pack_job_slurm_ended_fails_every_member_it_held_with_the_reason(tmp_path, capsys):
    """launcher.pack: one job per pack, one status per member. A pack's job scancelled (or
    killed) fails each of its members with SLURM's reason; the other pack's members keep
    theirs; the summary is printed and the sweep exits 1 (tests/test_slurm.py: for real)."""
    sweep = Sweep.__new__(Sweep)
    sweep.dir, sweep.name, sweep.started = tmp_path, tmp_path.name, 0.0
    names = ("h8-s0", "h8-s1", "h16-s0", "h16-s1")
    sweep.runs = [{"dir": name, "overrides": [], "status": "pending"} for name in names]
    sweep.groups = [[0, 1], [2, 3]]
    (tmp_path / PROGRESS).write_text("h16-s0 completed\nh16-s1 completed\n")
    done = JobReturn()
    done.status, done.return_value = JobStatus.COMPLETED, ["completed", "completed"]
    with pytest.raises(SystemExit) as exit_:
        sweep.finish([slurm.failed("SLURM job 3_0 ended CANCELLED"), done])
    assert exit_.value.code == 1
    runs = json.loads((tmp_path / MANIFEST).read_text())["runs"]
    assert [(r["status"], r.get("reason")) for r in runs] == [
        ("failed", "SLURM job 3_0 ended CANCELLED"), ("failed", "SLURM job 3_0 ended CANCELLED"),
        ("completed", None), ("completed", None)]
    out, err = capsys.readouterr()
    assert "4 runs: 2 completed, 2 failed" in out and "Traceback" not in out + err
    for name in names[:2]:
        assert f"{name} failed: SLURM job 3_0 ended CANCELLED; the same command runs it" in err
