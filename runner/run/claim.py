"""Claims: one process at a time trains a run folder, or a result for one store key.

Two sweeps started on the same folder (a double start, a resubmitted job) or two sweeps sharing
a store would otherwise both train a run neither has finished, and resume each other's
checkpoints. So run() claims its folder before it looks for a finished result, and its store
key before it looks in the store; a second process that finds one claimed says so and waits,
then finds the finished result (the run is skipped, or copied from the store) or, if the first
stopped before finishing, resumes from its checkpoint.

A claim is `fcntl.flock` on a lock file (as device slots are, runner/sweep/slots.py): the kernel
releases it when the holder's descriptor closes or its process dies, SIGKILL and the
out-of-memory killer included, so there is no stale claim to expire and no lease to renew. A
lease file with a heartbeat would outlive a dead holder by its timeout, and a process stopped
for longer (SIGSTOP, a suspended laptop) would lose it while still alive. Waiting (not skipping)
keeps every sweep's own manifest and report complete. Lock files stay: unlinking one while
another process waits on it would let two processes lock two different files of one name.
Where a folder takes no lock (a file system without flock) the run goes on unclaimed, as
before, with a warning.
"""
import errno
import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)
CLAIM_FILE = ".claim"  # in the run folder; a store key's is <store>/<key[:2]>/<key>.claim


def store_claim(store: str | Path, key: str) -> Path:
    """The lock file of a store key, beside its entry (runner/run/store.py entry)."""
    return Path(store) / key[:2] / f"{key}.claim"


@contextmanager
def claim(path: Path, what: str) -> Iterator[None]:
    """Hold `path`'s lock inside the block; when another process holds it, log who and wait.
    `what` names the thing claimed in that line (e.g. "run folder results/x/seed=0")."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:  # a read-only store: nothing to claim there (nor to file)
        log.warning("%s not claimed (%s): another process may train it too", what, e.strerror)
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("waiting: %s is claimed by %s; this run goes on when it ends (it "
                        "is then skipped or copied if that one finished it)", what, holder(fd))
            fcntl.flock(fd, fcntl.LOCK_EX)  # a signal still stops the wait (interrupt.py)
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            log.warning("%s not claimed (%s takes no lock: %s): another process may train it "
                        "too", what, path, e.strerror)
        mark(fd)
        yield
    finally:
        os.close(fd)  # releases the lock


def holder(fd: int) -> str:
    """Who holds the claim, as its holder wrote it (mark), or "another process"."""
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
    except OSError:
        return "another process"


def mark(fd: int) -> None:
    """Write who holds the claim into its file, for the line of a process that waits on it; a
    full disk leaves it unwritten, which changes nothing else."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
    except OSError:
        pass
