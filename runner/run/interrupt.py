"""SIGTERM (SLURM, Kubernetes, `timeout`) and SIGINT (Ctrl-C) stop a run the same way: an
Interrupted exception wherever the run is, so that it checkpoints, writes its result as
`interrupted` and exits 128 + the signal's number (143, 130)."""
import signal
import threading
from contextlib import contextmanager

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by `signum`; `exit_code` is the shell's 128 + signum."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.exit_code = signum, 128 + signum
        self.kept = "no epoch had finished"  # or the checkpoint written: what a re-run finds


@contextmanager
def interruptible():
    """While inside, SIGTERM and SIGINT raise Interrupted; a second signal is ignored, so the
    checkpoint and the result are written whole (a SIGKILL still stops it: writes are atomic).
    A signal someone else already handles is left to them: submitit, for one, ignores SIGTERM
    and requeues a SLURM job on its own signal, exiting the run (which then checkpoints too).
    Outside the main thread (where handlers cannot be set) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        for s in taken:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)
    stop.runner_stop = True  # checkpoint_first: ours, not someone else's

    taken = [s for s in SIGNALS
             if signal.getsignal(s) in (signal.SIG_DFL, signal.default_int_handler)]
    previous = {s: signal.signal(s, stop) for s in taken}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def checkpoint_first(write):
    """A SIGTERM that someone else handles gets the last finished epoch's checkpoint written
    first (`write()`), then their handler. submitit ignores SIGTERM, so on SLURM's scancel,
    requeue or preemption the run goes on until the SIGKILL KillWait later (30 s by default),
    and without this write would lose everything since the last periodic checkpoint (up to 5
    minutes under checkpoint_every=null). The write costs that time once, within KillWait; an
    epoch in progress is lost either way."""
    theirs = signal.getsignal(signal.SIGTERM)
    if (threading.current_thread() is not threading.main_thread() or not callable(theirs)
            or theirs is signal.default_int_handler or getattr(theirs, "runner_stop", False)):
        yield
        return

    def write_then_theirs(signum, frame):
        write()
        theirs(signum, frame)

    signal.signal(signal.SIGTERM, write_then_theirs)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, theirs)
