"""Facts about where a run ran, recorded in its result."""
import ctypes
import gc
import hashlib
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

import torch

# the repository: runner/run/ is two below; in an installed wheel, site-packages (no .git)
CHECKOUT = Path(__file__).resolve().parents[2]


def resolve_device(name: str) -> torch.device:
    from runner.errors import ConfigError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name!r} but torch {torch.__version__} sees no CUDA GPU "
                              f"here: use device=cpu or device=auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device={name!r} but there are {torch.cuda.device_count()} GPUs "
                              f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    return device


def code_version() -> dict:
    """The commit checked out and, when tracked files differ from it, the sha1 of that diff, so
    that two different uncommitted states of one commit are two versions. Untracked files are
    not part of it (git status --untracked-files=no). An installed wheel has no commit: all
    None, rather than the commit of whatever repository holds its site-packages."""
    if not (CHECKOUT / ".git").exists():  # a folder in a clone, a file in a worktree
        return {"git_commit": None, "git_dirty": None, "git_diff_sha1": None}
    def git(*args) -> bytes:
        return subprocess.run(["git", "-C", str(CHECKOUT), *args], capture_output=True,
                              timeout=10, check=True).stdout
    try:
        commit = git("rev-parse", "--verify", "HEAD").decode().strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
        diff = hashlib.sha1(git("diff", "HEAD", "--binary")).hexdigest() if dirty else None
    except (OSError, subprocess.SubprocessError):
        commit, dirty, diff = None, None, None
    return {"git_commit": commit, "git_dirty": dirty, "git_diff_sha1": diff}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device, concurrent_jobs: int = 1) -> dict:
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "device": str(device),
        "device_name": device_name(device),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "concurrent_jobs": concurrent_jobs,
        **code_version(),
        "load_avg_start": None,  # set by the run around its training
        "load_avg_end": None,
    }


def load_average() -> float | None:
    """The 1-minute system load average (runnable and running tasks), or None where the
    platform has none."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def reset_peak_memory(device: torch.device) -> str:
    """Start a run's peak-memory measurement; returns the kind peak_memory will report.

    On CPU, Linux lets a process reset its own high-water mark (writing 5 to
    /proc/self/clear_refs); memory freed by an earlier run of the same process (a serial
    sweep) is first handed back to the OS, so the mark starts near this run's own baseline.
    Elsewhere the process's lifetime maximum is all there is, and the kind says so."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return "cuda_max_allocated"
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed heap pages otherwise
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return "process_peak_rss"
    except OSError:
        return "process_max_rss"


def peak_memory(device: torch.device, kind: str) -> dict:
    """Peak memory since reset_peak_memory, of the kind it returned."""
    if kind == "cuda_max_allocated":
        peak = torch.cuda.max_memory_allocated(device)
    elif kind == "process_peak_rss":
        peak = _status_kib("VmHWM") * 1024
    else:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {"peak_memory_bytes": peak, "peak_memory_kind": kind}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")
