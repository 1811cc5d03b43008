"""Device slots: at most `jobs_per_device` concurrent jobs per device, across processes.

Hydra's joblib launcher (and submitit) run jobs in reused worker processes without giving each
its own GPU, so every job takes a slot itself before training. A slot is a lock file held with
`fcntl.flock`: the kernel drops the lock when the holder's descriptor closes or its process
dies (SIGKILL included), so a crashed job never leaks a slot and no daemon or shared memory is
needed. flock (not lockf/fcntl record locks) because its locks belong to the open file
description, not the process: two slots taken in one process are two independent locks.
Lock files are never deleted: unlinking one while another process waits on it would let two
processes lock two different inodes under the same name.
"""
import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Slot:
    device: str  # e.g. "cuda:1" or "cpu"
    index: int   # slot number on that device, 0..jobs_per_device-1
    path: Path   # the lock file held while the slot is taken


def _try_lock(path: Path) -> int | None:
    """The descriptor holding an exclusive lock on `path`, or None if someone holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # Python fds are close-on-exec already
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class DeviceSlots:
    def __init__(self, lock_dir: Path, devices: Sequence[str], jobs_per_device: int,
                 poll_seconds: float = 0.2):
        if not devices:
            raise ValueError("devices is empty: give at least one device (e.g. ['cuda:0'])")
        if jobs_per_device < 1:
            raise ValueError(f"jobs_per_device={jobs_per_device!r}: it must be an integer >= 1")
        if poll_seconds <= 0:
            raise ValueError(f"poll_seconds={poll_seconds!r}: it must be a number > 0")
        self.lock_dir, self.devices = Path(lock_dir), list(devices)
        self.jobs_per_device, self.poll_seconds = jobs_per_device, poll_seconds
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        # Slot 0 on every device before slot 1 on any: concurrent jobs spread over devices.
        self.slots = [Slot(d, i, self.lock_dir / f"{d.replace(':', '_')}.{i}.lock")
                      for i in range(jobs_per_device) for d in self.devices]

    @contextmanager
    def acquire(self, timeout: float | None = None) -> Iterator[Slot]:
        """Wait (polling, never oversubscribing) for a free slot; hold it inside the block.
        Every poll scans all slots, so a waiter takes any slot that frees within one poll."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for slot in self.slots:
                fd = _try_lock(slot.path)
                if fd is not None:
                    try:
                        yield slot
                    finally:
                        os.close(fd)  # closing the descriptor releases the lock
                    return
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"no free device slot in {self.lock_dir} after {timeout} s: "
                                   f"all {len(self.slots)} slots ({len(self.devices)} devices x "
                                   f"{self.jobs_per_device} jobs) are held")
            time.sleep(self.poll_seconds if left is None else min(self.poll_seconds, left))


def visible_devices() -> list[str]:
    import torch  # here, so that taking a slot does not need torch imported

    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return ["cpu"]


def threads_per_job(cores: int, jobs: int) -> int:
    """CPU threads for each of `jobs` concurrent jobs: jobs x threads <= cores when jobs <= cores
    (more threads than cores only adds contention)."""
    if cores < 1 or jobs < 1:
        raise ValueError(f"threads_per_job(cores={cores!r}, jobs={jobs!r}): both must be >= 1")
    return max(1, cores // jobs)
