"""Faults around the disk and the processes (issue 26, defects 3, 4 and 9): a disk that fills
during a sweep or is full before it, two sweeps on the same runs at once, and a SIGTERM while
the report is written. A full disk is a small tmpfs the test mounts (root only: skipped where
mount is not permitted)."""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from runner.errors import ConfigError
from runner.result import RESULT_FILE, read_result
from runner.run import run, store
from runner.run.checkpoint import CHECKPOINT_FILE
from runner.run.claim import CLAIM_FILE, claim
from runner.run.output import check_output_folder
from runner.sweep.sweeper import MANIFEST
from tests.helpers import cli_here, tiny_overrides

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs at tmp_path/disk, unmounted afterwards; skipped where it cannot be
    mounted (mount needs root or CAP_SYS_ADMIN)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                                 capture_output=True, text=True)
    except OSError as e:  # no mount command
        pytest.skip(f"cannot mount a tmpfs for a full disk: {e}")
    if mounted.returncode:
        pytest.skip(f"mount -t tmpfs not permitted here (needs root or CAP_SYS_ADMIN): "
                    f"{mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Write a file into `disk` until it is full (ENOSPC); returns it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, bytes(4096))
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def sweep_command(corpus_dir: Path, out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "runner", "-m", *tiny_overrides(corpus_dir),
            "train.num_epochs=1", f"hydra.sweep.dir={out}", *args]


def outcome(proc) -> str:
    return proc.stdout + proc.stderr


# ---------------------------------------------------------------- 3. a full disk
def test_a_completely_full_disk_is_refused_by_the_folder_check(small_disk):
    fill(small_disk)
    with pytest.raises(ConfigError, match=f"the output folder {small_disk / 'run'} cannot be "
                                          f"used: No space left on device; free some space, or "
                                          f"choose another folder"):
        check_output_folder(small_disk / "run")
    assert [p.name for p in (small_disk / "run").iterdir()] == []  # the probe is gone
    # the store's check writes the same probe: an empty file could be made on this disk
    (small_disk / "store").mkdir()
    with pytest.raises(ConfigError, match=f"store={small_disk / 'store'} cannot be written "
                                          f"\\(No space left on device\\)"):
        store.check(small_disk / "store")


@pytest.mark.slow  # the CLI in a subprocess, three times
def test_a_disk_that_fills_mid_sweep_gives_one_line_per_failed_write(corpus_dir, small_disk):
    out = small_disk / "sweep"
    cmd = sweep_command(corpus_dir, out, "model.num_hiddens=8,10,12")
    proc = subprocess.Popen(cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while len(list(out.glob(f"*/{RESULT_FILE}"))) < 2 and time.time() < deadline:
        time.sleep(0.02)
    filler = fill(small_disk)  # during the third run
    stdout, stderr = proc.communicate(timeout=180)
    said = stdout + stderr
    assert proc.returncode == 1, said
    assert "Traceback" not in said and "Logging error" not in said
    assert "[sweep sweep] 3 runs: 2 completed, 1 failed" in stdout
    manifest = json.loads((out / MANIFEST).read_text())
    on_disk = {r["dir"]: (read_result(out / r["dir"] / RESULT_FILE) or {}).get("status", "failed")
               for r in manifest["runs"]}
    assert {r["dir"]: r["status"] for r in manifest["runs"]} == on_disk  # right, not pending
    assert sorted(on_disk.values()) == ["completed", "completed", "failed"]
    for folder, status in on_disk.items():  # each failed run: a line naming it and why
        if status == "failed":
            assert any(folder in line and "No space left on device" in line
                       for line in said.splitlines()), said
    assert not list(out.rglob("*.tmp"))

    filler.unlink()  # space freed: the same command finishes the sweep
    again = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, timeout=180)
    assert again.returncode == 0, outcome(again)
    assert "3 runs: 1 completed, 0 failed, 0 diverged, 2 skipped" in again.stdout

    fill(small_disk)  # full before the sweep starts: refused, nothing written
    full = subprocess.run(sweep_command(corpus_dir, small_disk / "other"), cwd=ROOT,
                          text=True, capture_output=True, timeout=120)
    assert full.returncode == 2, outcome(full)
    assert "No space left on device; free some space" in full.stderr
    assert not list((small_disk / "other").rglob("*.json"))


def test_a_disk_that_fills_mid_run_gives_one_line_and_the_run_resumes(corpus_dir, small_disk):
    """A single run (not a sweep) whose disk fills while it trains: one line saying so and
    how to go on, exit 1, no traceback; its last checkpoint intact, so once space is freed
    the printed command finishes the run from it."""
    out = small_disk / "run"
    args = [*tiny_overrides(corpus_dir), "train.num_epochs=12", "train.checkpoint_every=1",
            f"hydra.run.dir={out}"]
    filled = {}

    def fill_after_a_checkpoint():
        deadline = time.time() + 60
        while not (out / CHECKPOINT_FILE).exists() and time.time() < deadline:
            time.sleep(0.005)
        filled["file"] = fill(small_disk)

    filler = threading.Thread(target=fill_after_a_checkpoint)
    filler.start()
    done = cli_here(*args)
    filler.join()
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "Traceback" not in said and "Logging error" not in said, said
    lines = [line for line in done.stderr.splitlines() if "No space left on device" in line]
    assert len(lines) == 1 and "free some space" in lines[0], said
    assert "hydra.run.dir=" in lines[0]  # the command that continues it
    kept = torch.load(out / CHECKPOINT_FILE, weights_only=False)  # intact, loadable
    assert 1 <= len(kept["history"]["epoch"]) < 12

    filled["file"].unlink()  # space freed: the same command finishes the run
    again = cli_here(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    result = read_result(out / RESULT_FILE)
    assert result["status"] == "completed" and result["resumed_from_epoch"][0] >= 1
    assert len(result["curves"]["train_perplexity"]) == 12


# ---------------------------------------------------------------- 4. claims
def test_a_claimed_run_waits_then_skips_what_the_holder_finished(tiny_cfg, tmp_path, caplog):
    """Another process's claim on the run folder (a flock: the kernel tells two descriptors
    apart, even in one process): the run waits, says so, and skips the result the holder
    wrote instead of training it again."""
    out = tmp_path / "run"
    done = run(tiny_cfg("train.num_epochs=1"), tmp_path / "trained")  # the holder's result
    out.mkdir()
    ran = {}
    with claim(out / CLAIM_FILE, "held by the test"):
        second = threading.Thread(target=lambda: ran.update(run(tiny_cfg("train.num_epochs=1"),
                                                                out)))
        second.start()
        deadline = time.time() + 60
        while "waiting" not in caplog.text and time.time() < deadline:
            time.sleep(0.01)
        assert not (out / RESULT_FILE).exists()  # waiting, not training
        shutil.copy(tmp_path / "trained" / RESULT_FILE, out)  # the holder finishes the run
    second.join(timeout=60)
    assert f"waiting: run folder {out} is claimed by pid {os.getpid()} on " in caplog.text
    assert ran["skipped"] and ran["run_id"] == done["run_id"]


def two_at_once(*commands: list[str]) -> list[subprocess.CompletedProcess]:
    procs = [subprocess.Popen(cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for cmd in commands]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=300), *p.communicate())
            for p in procs]


def trained(procs) -> int:
    """How many runs the sweeps trained, from their summary lines."""
    return sum(int(line.split(" runs: ")[1].split(" completed")[0])
               for p in procs for line in p.stdout.splitlines() if " runs: " in line)


@pytest.mark.slow  # two CLI sweeps at once
def test_two_sweeps_started_at_once_on_one_folder_train_each_run_once(corpus_dir, tmp_path):
    cmd = sweep_command(corpus_dir, tmp_path / "sweep", "model.num_hiddens=8,12")
    procs = two_at_once(cmd, cmd)
    assert [p.returncode for p in procs] == [0, 0], [outcome(p) for p in procs]
    assert trained(procs) == 2  # not 4
    # they overlapped, and one waited on the other's claim; or, on a busy machine, one had
    # finished before the other reached its first run (the in-process test above waits surely)
    assert any("waiting: run folder" in p.stderr + p.stdout or " runs: 0 completed" in p.stdout
               for p in procs), [p.stdout for p in procs]
    manifest = json.loads((tmp_path / "sweep" / MANIFEST).read_text())
    assert {r["status"] for r in manifest["runs"]} == {"completed"}


@pytest.mark.slow  # two CLI sweeps at once
def test_two_sweeps_sharing_a_store_train_a_shared_run_once(corpus_dir, tmp_path):
    store = f"store={tmp_path / 'store'}"
    procs = two_at_once(
        sweep_command(corpus_dir, tmp_path / "a", "model.num_hiddens=12,8", store),
        sweep_command(corpus_dir, tmp_path / "b", "model.num_hiddens=12,16", store))
    assert [p.returncode for p in procs] == [0, 0], [outcome(p) for p in procs]
    assert trained(procs) == 3  # 12 once, for both
    assert sum(", 1 reused" in p.stdout for p in procs) == 1
    a, b = ({r["config"]["model"]["num_hiddens"]: r for r in map(
        read_result, (tmp_path / s).glob(f"*/{RESULT_FILE}"))} for s in "ab")
    assert a[12]["run_id"] == b[12]["run_id"]  # one run, copied


# ---------------------------------------------------------------- 9. SIGTERM in the report
# A module run (the sweep, the report) whose os.replace sends SIGTERM to its own process just
# before it renames the first plot into place: a signal while the report's temp file exists.
SIGTERM_IN_REPORT = """
import os, runpy, signal, sys
real = os.replace
def replace(src, dst, *a, **k):
    if str(dst).endswith("plot_tokens_per_sec.png"):
        os.kill(os.getpid(), signal.SIGTERM)
    return real(src, dst, *a, **k)
os.replace = replace
module, *args = sys.argv[1:]
sys.argv = [module, *args]
runpy.run_module(module, run_name="__main__")
"""


@pytest.mark.slow  # the CLI in a subprocess
def test_sigterm_while_the_report_is_written_leaves_no_temp_file(corpus_dir, tmp_path):
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-c", SIGTERM_IN_REPORT, "runner",
           *sweep_command(corpus_dir, out, "model.num_hiddens=8,12")[3:]]
    proc = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, timeout=180)
    assert proc.returncode == 128 + signal.SIGTERM, outcome(proc)
    assert f"[sweep sweep] stopped (SIGTERM) while writing the report; python -m " \
           f"runner.report {out} writes it" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(out.rglob("*.tmp"))
    assert {r["status"] for r in json.loads((out / MANIFEST).read_text())["runs"]} == \
        {"completed"}

    alone = subprocess.run([sys.executable, "-c", SIGTERM_IN_REPORT, "runner.report", str(out)],
                           cwd=ROOT, text=True, capture_output=True, timeout=120)
    assert alone.returncode == 128 + signal.SIGTERM, outcome(alone)
    assert f"stopped (SIGTERM) while writing the report of {out}: the same command writes " \
           f"it" in alone.stderr
    assert not list(out.rglob("*.tmp"))
