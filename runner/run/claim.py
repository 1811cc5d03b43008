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
keeps every sweep's own manifest and report complete. The holder removes its lock file as it
lets go (nothing is left in the folder), so a waiter that then holds a lock on a removed file
lets it go and locks the file now at that path (the lock-file-with-unlink pattern), never two
holders of one name; a SIGKILLed holder leaves its file, unlocked, for the next one to take.
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
        fd = lock(path, what)
    except OSError as e:  # a read-only store: nothing to claim there (nor to file)
        log.warning("%s not claimed (%s): another process may train it too", what, e.strerror)
        yield
        return
    try:
        mark(fd)
        yield
    finally:
        path.unlink(missing_ok=True)  # while still held: a waiter on it then tries again
        os.close(fd)  # releases the lock


def lock(path: Path, what: str) -> int:
    """A descriptor of `path` holding its lock, waiting (and saying so) while another process
    holds it. The file is removed by its holder as it lets go (claim), so a lock taken on a
    file no longer at `path` is let go and taken again on the one there now."""
    path.parent.mkdir(parents=True, exist_ok=True)
    said = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not said:
                log.warning("waiting: %s is claimed by %s; this run goes on when it ends (it "
                            "is then skipped or copied if that one finished it)", what,
                            holder(fd))
                said = True
            fcntl.flock(fd, fcntl.LOCK_EX)  # a signal still stops the wait (interrupt.py)
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                os.close(fd)
                raise
            log.warning("%s not claimed (%s takes no lock: %s): another process may train it "
                        "too", what, path, e.strerror)
            return fd
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder removed it as it let go: take the one there now


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
