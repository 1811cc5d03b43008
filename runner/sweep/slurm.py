"""launcher=slurm's collection of jobs. Its Hydra launcher (hydra_plugins/runner_sweeper/
slurm_launcher.py) is hydra-submitit-launcher's SlurmLauncher, whose launch() ends with
`[j.results()[0] for j in jobs]`: that raises when SLURM ended a job that left no result
(scancel, a node failure, the out-of-memory killer, a `kill -9`: UncompletedJobError ends the
whole sweep with a traceback, no summary, no report, siblings uncollected), and waits forever
where `sacct` cannot answer (no accounting: submitit reads every job as UNKNOWN, unfinished).

Only that call changes, the narrowest point: while the plugin launches, the executor it builds
returns jobs whose results() waits on the result file or on SLURM's own word that the job ended
(sacct, else squeue), and turns a job that ended without a result into a failed JobReturn that
says why. The rest of launch() (parameters, array submission, requeue through the launcher's
checkpoint()) is the plugin's own code, run as it is."""
import logging
import subprocess
import time
from contextlib import contextmanager
from unittest import mock

import submitit
from hydra.core.utils import JobReturn, JobStatus
from submitit.core.utils import FailedJobError, UncompletedJobError

log = logging.getLogger(__name__)
# submitit's own list (InfoWatcher.is_done): a job in any other state has ended
UNFINISHED = {"READY", "PENDING", "RUNNING", "UNKNOWN", "REQUEUED", "COMPLETING", "PREEMPTED",
              "CONFIGURING", "RESIZING", "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED"}
POLL_S = 1.0
SQUEUE_EVERY_S = 5.0  # when sacct cannot say: one squeue per job per 5 s at most
RESULT_GRACE_S = 15.0  # as submitit's: a COMPLETED job's result file may show up late


class JobEnded(Exception):
    """A SLURM job that ended without a result: its state, and what the run keeps."""


@contextmanager
def collecting():
    """While inside, the executor hydra-submitit-launcher builds (submitit.AutoExecutor)
    returns Collected jobs: the plugin's `[j.results()[0] for j in jobs]` then collects them."""
    with mock.patch.object(submitit, "AutoExecutor", Executor):
        yield


class Executor(submitit.AutoExecutor):
    def map_array(self, fn, *iterable):
        return [Collected(job) for job in super().map_array(fn, *iterable)]


class Collected:
    """A submitted job whose results() never raises and never waits on a job SLURM ended."""

    def __init__(self, job):
        self.job = job

    def __getattr__(self, name):
        return getattr(self.job, name)

    def results(self) -> list[JobReturn]:
        state = wait(self.job)
        if state is None or self.job.paths.result_pickle.exists():
            try:
                return self.job.results()
            except (UncompletedJobError, FailedJobError) as e:  # the job's own error
                return [failed(f"SLURM job {self.job.job_id}: {first_line(e)}")]
        log.error("SLURM job %s ended %s without a result (log: %s)", self.job.job_id, state,
                  self.job.paths.stderr)
        return [failed(f"SLURM job {self.job.job_id} ended {state}")]


def wait(job) -> str | None:
    """Until the job has written its result (None) or SLURM says it ended (its state). sacct
    through submitit's watcher first (it refreshes on its own schedule); squeue, the
    controller's own view, where sacct says UNKNOWN (no accounting, or the job not in it yet)
    or says the job ended: sacct can lag behind a requeue (COMPLETED while the job is PENDING
    again). squeue keeps an ended job's state for MinJobAge (300 s by default); a job that
    neither knows any more has ended."""
    asked = float("-inf")
    while True:
        if job.paths.result_pickle.exists():
            return None
        state = job.watcher.get_state(job.job_id).split()[0].upper() if job.job_id else "UNKNOWN"
        if state == "UNKNOWN" or state not in UNFINISHED:  # squeue's word, every 5 s
            if time.monotonic() - asked < SQUEUE_EVERY_S:
                state = "UNKNOWN"
            else:
                asked, live = time.monotonic(), squeue_state(job.job_id)
                if live != "UNKNOWN" and not (live == "GONE" and state != "UNKNOWN"):
                    state = live  # else sacct's, which outlives squeue's memory
        if state not in UNFINISHED:
            return state if settled(job, state) else None
        time.sleep(POLL_S)


def settled(job, state: str) -> bool:
    """Whether the job ended with no result file, after the grace a file system may need."""
    grace = RESULT_GRACE_S if state == "COMPLETED" else 2 * POLL_S
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and not job.paths.result_pickle.exists():
        time.sleep(POLL_S)
    return not job.paths.result_pickle.exists()


def squeue_state(job_id: str) -> str:
    """The job's state as squeue has it (e.g. CANCELLED, FAILED, PENDING); `GONE` when squeue
    no longer knows it; UNKNOWN when squeue itself fails (the controller unreachable)."""
    try:
        out = subprocess.run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "UNKNOWN"
    if out.returncode != 0:
        return "GONE" if "Invalid job id" in out.stderr else "UNKNOWN"
    lines = out.stdout.split()
    return lines[0].upper() if lines else "GONE"


def failed(reason: str) -> JobReturn:
    """A job that ended without the run's status: failed, with why (the sweeper records it)."""
    ret = JobReturn()
    ret.status, ret._return_value = JobStatus.FAILED, JobEnded(reason)
    return ret


def first_line(e: Exception) -> str:
    """The line of submitit's error that says what happened: a FailedJobError's is the last
    line of the job's traceback (`OSError: ...`), an UncompletedJobError's its first two."""
    lines = [line for line in str(e).splitlines() if line.strip() and set(line) != {"-"}]
    if isinstance(e, FailedJobError):
        trace = [line for line in lines[1:] if not line.startswith("You can check")]
        return trace[-1].strip() if trace else type(e).__name__
    return " ".join(lines[:2]) or type(e).__name__


def size_slurm(config) -> None:
    """The GPU request follows `device` where launcher.gpus_per_job is null: device=cpu asks
    for none (a CPU partition needs no override), any other device (auto, cuda) for one."""
    from omegaconf import open_dict

    if config.launcher.gpus_per_job is None:
        with open_dict(config):
            config.hydra.launcher.gpus_per_node = None if str(config.device) == "cpu" else 1
