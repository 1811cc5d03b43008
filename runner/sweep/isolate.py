"""launcher=parallel on GPUs: each run in a fresh process, pinned to its device slot.

Joblib's loky workers are reused from job to job. On a GPU that carries three things over: a
CUDA error (an illegal memory access, a device-side assert) is sticky for the rest of the
process, so it poisons every later run of that worker; a worker that ran on cuda:0 keeps that
context and its cached memory when it later takes a cuda:1 slot; and a job's CPU threads are
bounded only by what joblib put in the worker's environment. So the worker, which still holds
the device slot (at most jobs_per_device runs per device), starts the run in a new interpreter
(a process per job, `subprocess`; no scheduler of our own) whose environment is set before it
starts, hence before any library reads it: CUDA_VISIBLE_DEVICES names the slot's GPU alone (the
run then uses cuda:0, the one GPU it sees), OMP_NUM_THREADS and MKL_NUM_THREADS the job's share
of the cores (cfg.threads too). The run's folder is on the child's command line, so `ps` says
which run each process is.

The child runs the job as the worker would (job.run_here), records in its result's
`environment.fresh_process` its pid, its slot and the pinned variables as it saw them, and
sends its status back through a pipe. A child that ends without sending one (a segfault,
os._exit, the out-of-memory killer's SIGKILL) is recorded by the worker: `failed` (or
`interrupted` for SIGINT/SIGTERM), with how it died, its peak memory and, for a fatal signal,
the Python stack faulthandler dumped. That record is built in a second fresh process pinned the
same way (it needs the data's provenance and the device's description, and the worker must
never touch CUDA itself); the sweep goes on either way.

Why not submitit's LocalExecutor (docs/supervision.md, `python -m bench.supervise`): it is as
good on a fresh process per job and on CPU pinning, but it records no hard death (no result,
no exit code, no peak memory, after a fixed 15 s wait), its jobs outlive a killed parent, it
gives a run 1 s, not GRACE, to write its interrupted result, and it polls once a second.

`launcher.fresh_process`: auto (GPU slots only), true or false. On CPU, auto keeps joblib's
reused workers: there a fresh process costs ~4 s a run (measured on 2 cores: a torch import,
~2.6 s, then the first-run warm-up a reused worker pays once), against ~0.2 s for a tiny run.
"""
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from runner.errors import ConfigError
from runner.hydra_private import job_hydra
from runner.result import (
    RESULT_FILE,
    REUSED,
    SKIPPED,
    STATUSES,
    now,
    read_result,
)

log = logging.getLogger(__name__)
INTERRUPTED = "interrupted"
PINNED = ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
FAULT_FILE = ".fault.log"  # in the run's folder while its child lives: faulthandler's stacks
RECORD_TIMEOUT = 600  # seconds for the process that records a dead child's result
GRACE = 30  # seconds a child gets to write its own interrupted result when this one stops


def in_fresh_process(cfg: DictConfig) -> bool:
    """Whether this job's run goes to a fresh process: launcher.fresh_process, where `auto`
    means on a GPU slot only."""
    if cfg.launcher.name != "parallel":
        return False
    choice = cfg.launcher.get("fresh_process", "auto")
    if choice == "auto":
        return str(cfg.device).startswith("cuda")
    if isinstance(choice, bool):
        return choice
    raise ConfigError(f"launcher.fresh_process={choice!r}: use auto (a fresh process per run on "
                      f"GPU slots), true or false")


def pin(device: str, threads: int | None, env: Mapping[str, str]) -> tuple[dict, str]:
    """The variables that pin a fresh process to the slot `device` with `threads` CPU threads,
    given the worker's environment `env`; and the device the run names in there. A GPU slot's
    index counts in the worker's own CUDA_VISIBLE_DEVICES when it has one (cuda:1 under
    CUDA_VISIBLE_DEVICES=2,3 is GPU 3); a CPU slot sees no GPU."""
    pins = {var: str(threads) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if threads}
    kind, _, index = str(device).partition(":")
    if kind == "cuda":
        i = int(index or 0)
        gpus = [g.strip() for g in env["CUDA_VISIBLE_DEVICES"].split(",")
                if g.strip()] if "CUDA_VISIBLE_DEVICES" in env else None
        if gpus is not None and i >= len(gpus):
            raise ConfigError(f"device slot {device} but CUDA_VISIBLE_DEVICES="
                              f"{env['CUDA_VISIBLE_DEVICES']!r} shows {len(gpus)} GPUs")
        return {**pins, "CUDA_VISIBLE_DEVICES": gpus[i] if gpus else str(i)}, "cuda:0"
    if kind == "cpu":
        pins["CUDA_VISIBLE_DEVICES"] = ""
    return pins, str(device)


def how_it_died(returncode: int) -> tuple[str, str]:
    """(status, what happened) for a child that ended without reporting an outcome."""
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode)
        except ValueError:
            return "failed", f"was killed by signal {-returncode}"
        status = INTERRUPTED if sig in (signal.SIGINT, signal.SIGTERM) else "failed"
        oom = " (also what the out-of-memory killer sends)" if sig == signal.SIGKILL else ""
        return status, f"was killed by {sig.name} ({signal.strsignal(sig)}){oom}"
    if returncode in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        return INTERRUPTED, f"exited with code {returncode} (interrupted)"
    return "failed", f"exited with code {returncode} without reporting an outcome"


def child_command(out_dir: Path) -> list[str]:
    """The child's command line: the run's folder last, for `ps`."""
    return [sys.executable, "-c", "from runner.sweep.child import main; main()", str(out_dir)]


def run_fresh(cfg: DictConfig, out_dir: Path, sharing: int) -> str:
    """Run in a fresh process pinned to the slot cfg.device; the run's status. A child that
    dies is recorded as failed; this raises only when no child can start (a slot that the
    worker's CUDA_VISIBLE_DEVICES does not show) and on Ctrl-C."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pins, device = pin(cfg.device, cfg.threads, os.environ)
    slot, cfg = cfg.device, cfg.copy()
    with open_dict(cfg):
        cfg.device = device
    if finished := finished_already(cfg, out_dir):  # resume, without a process start
        log.info("skipped: %s already holds %s run %s of this config", out_dir / RESULT_FILE,
                 finished["status"], finished["run_id"])
        from runner.run.trackers import replay_into_new_trackers

        replay_into_new_trackers(finished, cfg, out_dir)  # as run() does when it skips
        return SKIPPED
    spec = {"mode": "run", "config": OmegaConf.to_container(cfg, resolve=True),
            "out_dir": str(out_dir), "concurrent_jobs": sharing, "slot": slot,
            "parent_pid": os.getpid(), "hydra": job_hydra()}
    before, started_at, start = file_id(out_dir / RESULT_FILE), now(), time.perf_counter()
    (out_dir / FAULT_FILE).unlink(missing_ok=True)
    status, pid, returncode, max_rss = child(spec, pins, out_dir)
    fault = fault_tail(out_dir / FAULT_FILE)
    if status in (*STATUSES, SKIPPED, REUSED):
        if returncode and status != INTERRUPTED:
            log.warning("%s: its process (pid %d) reported %s, then %s", out_dir, pid, status,
                        how_it_died(returncode)[1])
        (out_dir / FAULT_FILE).unlink(missing_ok=True)
        return status
    status, how = how_it_died(returncode)
    log.error("%s %s: its process (pid %d) %s", out_dir, status, pid, how)
    if file_id(out_dir / RESULT_FILE) != before:  # it wrote its result, then died
        written = read_result(out_dir / RESULT_FILE) or {}
        return written.get("status", status)
    death = {"status": status, "message": f"the run's process (pid {pid}) {how}",
             "traceback_tail": fault, "pid": pid, "started_at": started_at,
             "wall_seconds": time.perf_counter() - start, "max_rss_bytes": max_rss}
    record = {**spec, "mode": "record", "death": death}
    _, _, code, _ = child(record, pins, out_dir, timeout=RECORD_TIMEOUT)
    if code == 0:
        (out_dir / FAULT_FILE).unlink(missing_ok=True)
    else:
        log.error("%s: no result recorded for the dead run (the recording process %s)",
                  out_dir, how_it_died(code)[1])
    return status


def child(spec: dict, pins: dict, out_dir: Path, timeout: float | None = None):
    """Start the child with `spec` on its stdin and the pinned environment, wait for it; return
    (the status it sent or None, its pid, its exit code as subprocess gives it, its peak RSS
    in bytes). If this process is stopped meanwhile (Ctrl-C), the child, which got the same
    signal from the terminal, gets GRACE seconds to write its own result, then SIGKILL."""
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen(child_command(out_dir), stdin=subprocess.PIPE,
                                env={**os.environ, **pins}, pass_fds=(write_end,))
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    try:
        try:
            proc.stdin.write(pickle.dumps({**spec, "status_fd": write_end}))
            proc.stdin.close()
        except BrokenPipeError:  # it died before reading: its exit code says how
            pass
        returncode, max_rss = wait(proc, timeout)
        os.set_blocking(read_end, False)  # the status (a few bytes) waits in the pipe
        try:
            sent = os.read(read_end, 64).decode()
        except BlockingIOError:
            sent = ""
    except BaseException:
        if proc.returncode is None:
            wait(proc, GRACE)
        raise
    finally:
        os.close(read_end)
    return sent or None, proc.pid, returncode, max_rss


def wait(proc: subprocess.Popen, timeout: float | None) -> tuple[int, int]:
    """Reap `proc` (os.wait4, for its peak memory); (exit code as Popen gives it, max RSS in
    bytes). Past `timeout`, SIGKILL it."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, 0 if deadline is None else os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_maxrss * 1024  # KiB on Linux
        if time.monotonic() > deadline:
            proc.kill()
            deadline = None  # and wait for it
        else:
            time.sleep(0.1)


def finished_already(cfg: DictConfig, out_dir: Path) -> dict | None:
    """The finished result of this very run already in `out_dir` (what the run itself would
    skip on: resume's identity check), asked here so that resuming a sweep starts no process
    per finished run. None when in doubt: the run then decides, and says why."""
    from runner.run.resume import finished_result, previous_result

    if finished_result(out_dir / RESULT_FILE, cfg) is None:
        return None  # nothing to keep: the data file need not be read here
    try:
        from runner.run import execute  # run()'s own first steps

        return previous_result(out_dir / RESULT_FILE, cfg, execute.data_of(cfg)[1])
    except Exception:  # noqa: BLE001 (a different config, missing data: the run says so)
        return None


def fault_tail(path: Path, lines: int = 20) -> list[str]:
    """What faulthandler wrote at a fatal signal: its first line ("Fatal Python error:
    Segmentation fault") and the stack of the thread that crashed (its last `lines`)."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    if not text:
        return []
    current = next((i for i, line in enumerate(text) if line.startswith("Current thread")),
                   None)
    if current is None:
        return text[-lines:]
    end = next((i for i in range(current, len(text)) if not text[i].strip()), len(text))
    return [text[0], *text[current:end][-lines + 1:]]


def file_id(path: Path) -> tuple[int, int] | None:
    """Which file is at `path` (writes are atomic renames: a new write is a new inode)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns

