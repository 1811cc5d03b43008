"""Device slots: spreading order, the per-device cap across real processes, a freed slot taken
by a waiter, release on exceptions and on SIGKILL. Simulated devices: no GPU needed. Nothing
here depends on how fast the machine is: waits are checked on a fake clock, and concurrency by
the order of events, never by wall-clock time."""
import fcntl
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from runner.sweep import slots as slots_module
from runner.sweep.slots import DeviceSlots, Slot, threads_per_job, visible_devices

SPAWN = mp.get_context("spawn")  # like joblib's loky workers: fresh interpreters, no shared fds
HANG_GUARD = 120  # seconds before a wait that should end is called a hang (never a bound)


def locked(slots: DeviceSlots) -> dict[str, int]:
    """Slots whose lock file someone holds, per device: asked of the kernel directly (a
    non-blocking flock on a descriptor of our own), not of DeviceSlots."""
    counts = dict.fromkeys(slots.devices, 0)
    for slot in slots.slots:
        if not slot.path.exists():
            continue
        with open(slot.path, "rb") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                counts[slot.device] += 1
    return counts


class FakeClock:
    """time.monotonic and time.sleep for slots.py: sleeping only moves the clock on, and runs
    `on_sleep(n)` after the n-th sleep (n from 1)."""

    def __init__(self, on_sleep=lambda n: None):
        self.now, self.sleeps, self.on_sleep = 0.0, [], on_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.on_sleep(len(self.sleeps))


@pytest.fixture
def fake_clock(monkeypatch):
    def install(on_sleep=lambda n: None) -> FakeClock:
        clock = FakeClock(on_sleep)
        monkeypatch.setattr(slots_module, "time",
                            SimpleNamespace(monotonic=clock.monotonic, sleep=clock.sleep))
        return clock
    return install


def test_nested_acquire_spreads_over_devices_then_times_out(tmp_path):
    lock_dir = tmp_path / "not" / "yet" / "there"
    devices = ["cuda:0", "cuda:1", "cuda:2"]
    slots = DeviceSlots(lock_dir, devices, jobs_per_device=2, poll_seconds=0.02)
    cms = [slots.acquire(timeout=0) for _ in range(6)]
    try:
        got = [cm.__enter__() for cm in cms]
        assert [(s.device, s.index) for s in got] == [(d, i) for i in range(2) for d in devices]
        assert len({s.device for s in got[:3]}) == 3  # the first k jobs land on k devices
        assert got[0] == Slot("cuda:0", 0, lock_dir / "cuda_0.0.lock") and got[0].path.exists()
        assert locked(slots) == {d: 2 for d in devices}

        with pytest.raises(TimeoutError, match=f"{lock_dir}.*all 6 slots"):
            with slots.acquire(timeout=0):
                pass

        cms[4].__exit__(None, None, None)  # frees ("cuda:1", 1): exactly that one is next
        assert locked(slots) == {"cuda:0": 2, "cuda:1": 1, "cuda:2": 2}
        with slots.acquire(timeout=0) as again:
            assert again == got[4]
            assert locked(slots) == {d: 2 for d in devices}
        cms[4] = slots.acquire(timeout=0)
        cms[4].__enter__()
    finally:
        for cm in cms:
            cm.__exit__(None, None, None)
    assert locked(slots) == {d: 0 for d in devices}


def test_a_full_wait_polls_until_the_timeout_then_says_why(tmp_path, fake_clock):
    slots = DeviceSlots(tmp_path, ["gpu0", "gpu1"], jobs_per_device=1, poll_seconds=0.1)
    with slots.acquire(timeout=0), slots.acquire(timeout=0):
        clock = fake_clock()
        with pytest.raises(TimeoutError, match=r"after 0.25 s: all 2 slots \(2 devices x 1 jobs"):
            with slots.acquire(timeout=0.25):
                pass
    # a poll every poll_seconds, the last one cut short so as to give up at the deadline
    assert clock.sleeps == pytest.approx([0.1, 0.1, 0.05])


def test_a_waiter_takes_a_slot_freed_while_it_waits_at_the_next_poll(tmp_path, fake_clock):
    slots = DeviceSlots(tmp_path, ["gpu0"], jobs_per_device=2, poll_seconds=0.5)
    holders = [slots.acquire(timeout=0) for _ in range(2)]
    assert [h.__enter__().index for h in holders] == [0, 1]
    try:
        def on_sleep(n: int) -> None:  # the holder of slot 1 leaves during the 3rd sleep
            if n == 3:
                holders[1].__exit__(None, None, None)

        clock = fake_clock(on_sleep)
        with slots.acquire() as slot:  # no timeout: polls every poll_seconds
            assert slot.index == 1
            assert locked(slots) == {"gpu0": 2}
        assert clock.sleeps == [0.5] * 3  # taken at the first poll after it was freed
    finally:
        holders[0].__exit__(None, None, None)
    assert locked(slots) == {"gpu0": 0}


def test_slot_is_released_when_the_job_raises(tmp_path):
    slots = DeviceSlots(tmp_path, ["gpu0"], jobs_per_device=1)
    with pytest.raises(RuntimeError, match="boom"):
        with slots.acquire(timeout=0):
            assert locked(slots) == {"gpu0": 1}
            raise RuntimeError("boom")
    assert locked(slots) == {"gpu0": 0}
    with slots.acquire(timeout=0) as slot:
        assert slot.index == 0


def _job(lock_dir: Path, log: Path, job: int, release, barrier) -> None:
    """Take a slot, say so, hold it until told to release it, say so, release it."""
    slots = DeviceSlots(lock_dir, ["gpu0", "gpu1"], jobs_per_device=2, poll_seconds=0.01)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def event(*fields) -> None:  # one short line per O_APPEND write: never interleaved
        os.write(fd, (" ".join(map(str, fields)) + "\n").encode())

    barrier.wait()  # all jobs ask at once, after the interpreters have started
    event("request", job, "-", -1)
    with slots.acquire(timeout=HANG_GUARD) as slot:
        event("start", job, slot.device, slot.index)  # after the lock is taken
        release.wait(HANG_GUARD)
        event("end", job, slot.device, slot.index)  # before the lock is let go
    os.close(fd)


def _events(log: Path) -> list[tuple[str, int, tuple[str, int]]]:
    """(kind, job, (device, index)) in the order the jobs wrote them."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [(kind, int(job), (device, int(index)))
            for kind, job, device, index in (line.split() for line in lines)]


def _wait_for(log: Path, kind: str, count: int) -> list[tuple[str, int, tuple[str, int]]]:
    deadline = time.monotonic() + HANG_GUARD  # a hang guard, not a timing assertion
    while len(found := [e for e in _events(log) if e[0] == kind]) < count:
        assert time.monotonic() < deadline, f"{count} {kind} events expected: {_events(log)}"
        time.sleep(0.01)
    return found


def test_processes_never_oversubscribe_and_a_freed_slot_goes_to_a_waiter(tmp_path):
    """6 jobs in 6 processes for 2 devices x 2 slots: 4 start, 2 wait; each slot freed goes
    to a waiter, after (never before) its holder let it go."""
    jobs = 6
    log, barrier = tmp_path / "events.log", SPAWN.Barrier(jobs + 1)
    release = [SPAWN.Event() for _ in range(jobs)]
    procs = [SPAWN.Process(target=_job, args=(tmp_path / "locks", log, n, release[n], barrier))
             for n in range(jobs)]
    for p in procs:
        p.start()
    try:
        barrier.wait(timeout=HANG_GUARD)
        _wait_for(log, "request", jobs)
        first = _wait_for(log, "start", 4)
        assert len(first) == 4  # nobody has released anything: the other 2 are waiting
        holder = {slot: job for _, job, slot in first}
        assert sorted(holder) == [(d, i) for d in ("gpu0", "gpu1") for i in range(2)]
        assert locked(DeviceSlots(tmp_path / "locks", ["gpu0", "gpu1"], 2)) == \
            {"gpu0": 2, "gpu1": 2}

        release_order: list[int] = []
        for n, freed in enumerate([("gpu0", 0), ("gpu1", 1)], start=5):
            release[holder[freed]].set()
            starts = _wait_for(log, "start", n)
            _, waiter, slot = starts[-1]
            assert slot == freed  # the only free slot, taken by a job that was waiting
            assert waiter not in holder.values() and waiter not in release_order
            order = _events(log)
            assert order.index(("end", holder[freed], freed)) < \
                order.index(("start", waiter, freed))
            release_order.append(holder[freed])
            holder[freed] = waiter
    finally:
        for r in release:
            r.set()
        for p in procs:
            p.join(timeout=HANG_GUARD)
            if p.exitcode is None:
                p.kill()
    assert [p.exitcode for p in procs] == [0] * jobs

    # Replayed in the order written (a start after its lock is taken, an end before it is let
    # go), the jobs never held more than 2 slots on a device nor 2 jobs one slot; both devices
    # were used to the full.
    order = _events(log)
    assert sorted(job for kind, job, _ in order if kind == "end") == list(range(jobs))
    open_now: dict[int, tuple[str, int]] = {}
    peak = {"gpu0": 0, "gpu1": 0}
    for kind, job, slot in order:
        if kind == "start":
            assert slot not in open_now.values(), (slot, order)
            open_now[job] = slot
            on_device = sum(d == slot[0] for d, _ in open_now.values())
            peak[slot[0]] = max(peak[slot[0]], on_device)
        elif kind == "end":
            assert open_now.pop(job) == slot
    assert peak == {"gpu0": 2, "gpu1": 2} and not open_now


def _hold_forever(lock_dir: Path, ready) -> None:
    with DeviceSlots(lock_dir, ["gpu0"], jobs_per_device=1).acquire(timeout=10):
        ready.set()
        time.sleep(60)


def test_a_holder_killed_by_sigkill_releases_its_slot(tmp_path):
    slots = DeviceSlots(tmp_path, ["gpu0"], jobs_per_device=1, poll_seconds=0.02)
    ready = SPAWN.Event()
    holder = SPAWN.Process(target=_hold_forever, args=(tmp_path, ready))
    holder.start()
    try:
        assert ready.wait(timeout=HANG_GUARD)
        assert locked(slots) == {"gpu0": 1}
        with pytest.raises(TimeoutError):
            with slots.acquire(timeout=0):
                pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(timeout=HANG_GUARD)  # reaped: the kernel has closed its descriptors
        assert holder.exitcode == -signal.SIGKILL
        assert locked(slots) == {"gpu0": 0}
        with slots.acquire(timeout=0) as slot:
            assert slot == Slot("gpu0", 0, tmp_path / "gpu0.0.lock")
    finally:
        holder.kill()
        holder.join(timeout=10)


@pytest.mark.parametrize(("cores", "jobs", "threads"),
                         [(2, 1, 2), (2, 2, 1), (2, 8, 1), (16, 4, 4), (16, 3, 5)])
def test_threads_per_job(cores, jobs, threads):
    assert threads_per_job(cores, jobs) == threads
    assert jobs > cores or jobs * threads <= cores


def test_bad_arguments_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="devices is empty"):
        DeviceSlots(tmp_path, [], jobs_per_device=1)
    with pytest.raises(ValueError, match=r"jobs_per_device=0: it must be an integer >= 1"):
        DeviceSlots(tmp_path, ["gpu0"], jobs_per_device=0)
    with pytest.raises(ValueError, match=r"poll_seconds=0: it must be a number > 0"):
        DeviceSlots(tmp_path, ["gpu0"], jobs_per_device=1, poll_seconds=0)
    with pytest.raises(ValueError, match=r"cores=2, jobs=0\): both must be >= 1"):
        threads_per_job(2, 0)


def test_visible_devices_without_cuda():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert visible_devices() == ["cpu"]
