"""The fresh process of one run (isolate.py starts it): `python -c "from runner.sweep.child
import main; main()" <run folder>`, with the spec on its stdin. It runs the job as a worker
would (job.run_here) and sends its status back; or, started as the recorder of a run whose
process died, writes that run's failed result."""
import faulthandler
import logging
import os
import pickle
import signal
import sys
from pathlib import Path

from omegaconf import OmegaConf

from runner.result import (
    FINISHED,
    RESULT_FILE,
    REUSED,
    SCHEMA_VERSION,
    SKIPPED,
    now,
    read_result,
    write_json_atomic,
)
from runner.sweep.isolate import FAULT_FILE, INTERRUPTED, PINNED, file_id

log = logging.getLogger(__name__)
_fault_file = None  # the open FAULT_FILE: faulthandler writes to it on a fatal signal


def main() -> None:
    """The child: read the spec, run (or record a dead run), send the status, exit."""
    signal.signal(signal.SIGINT, _interrupt_once)  # until the run sets its own handlers
    signal.signal(signal.SIGTERM, _interrupt_once)
    spec = pickle.load(sys.stdin.buffer)
    _die_with(spec["parent_pid"])
    if spec["hydra"] is not None:  # the job's Hydra settings and logging, as in the worker
        from runner.hydra_private import enter_job

        enter_job(spec["hydra"])
    else:  # run_fresh called outside Hydra (a script): log to the console
        logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    out_dir = Path(spec["out_dir"])
    if spec["mode"] == "record":
        record_death(spec)
        return
    global _fault_file
    _fault_file = open(out_dir / FAULT_FILE, "w")  # noqa: SIM115 (open for the process's life)
    faulthandler.enable(_fault_file, all_threads=True)
    try:
        from runner.sweep.job import run_here

        before = file_id(out_dir / RESULT_FILE)
        status = run_here(OmegaConf.create(spec["config"]), out_dir, spec["concurrent_jobs"])
        if status not in (SKIPPED, REUSED) and file_id(out_dir / RESULT_FILE) != before:
            result = read_result(out_dir / RESULT_FILE)
            result["environment"]["fresh_process"] = process_record(os.getpid(), spec["slot"])
            write_json_atomic(out_dir / RESULT_FILE, result)
        code = 0
    except KeyboardInterrupt as e:  # run() has written its interrupted result
        status, code = INTERRUPTED, getattr(e, "exit_code", 128 + signal.SIGINT)
    try:
        os.write(spec["status_fd"], status.encode())
    except BrokenPipeError:  # the worker is gone (its death sent the SIGTERM that stopped us)
        code = code or 1
    sys.exit(code)


def process_record(pid: int, slot: str) -> dict:
    """environment.fresh_process: the run's process, its slot and the pinned variables."""
    return {"pid": pid, "slot": slot, **{var: os.environ.get(var) for var in PINNED}}


def record_death(spec: dict) -> None:
    """Write the result of a run whose process died without writing one: `failed` (or
    `interrupted`) with how it died; unless the folder holds a finished result that
    overwrite=false keeps."""
    import torch

    from runner.run import execute  # the result's parts, as run() builds them
    from runner.run.environment import environment, resolve_device
    from runner.run.metrics import curves_of, metrics_of

    cfg, death = OmegaConf.create(spec["config"]), spec["death"]
    path = Path(spec["out_dir"]) / RESULT_FILE
    existing = read_result(path)
    if not cfg.overwrite and existing and existing.get("status") in FINISHED:
        log.warning("%s: kept the finished result already there", path)
        return
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    task = execute.build_task(cfg, execute.data_of(cfg)[0])
    env = environment(device, spec["concurrent_jobs"])
    env["fresh_process"] = process_record(death["pid"], spec["slot"])
    metrics = metrics_of(execute.History(), None, device, "process_max_rss", task,
                                 death["wall_seconds"])
    metrics["peak_memory_bytes"] = death["max_rss_bytes"]  # the dead process's, from wait4
    write_json_atomic(path, {
        "schema_version": SCHEMA_VERSION,
        "run_id": os.urandom(6).hex(),
        "task": cfg.data.task,
        "status": death["status"],
        "config": spec["config"],
        "dataset": task.provenance,
        "sees_future": False,  # the model's own answer; it died with its process
        "environment": env,
        "started_at": death["started_at"],
        "finished_at": now(),
        "error": {"type": "ProcessDied", "message": death["message"],
                  "traceback_tail": death["traceback_tail"]},
        "metrics": metrics,
        "curves": curves_of(execute.History(), task),
    })
    log.info("%s: recorded as %s", path, death["status"])


def _interrupt_once(signum, frame):
    """SIGINT or SIGTERM before the run's own handlers: stop once, ignore a second."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _die_with(parent_pid: int) -> None:
    """SIGTERM this process when the worker that started it dies (Linux), so no run trains on
    without holding its device slot."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)

