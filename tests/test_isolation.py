"""launcher=parallel with a fresh process per run (runner/sweep/isolate.py): the slot's pinning
(CUDA_VISIBLE_DEVICES, threads) as pure functions, so the GPU cases need no GPU; then on CPU,
forced with launcher.fresh_process=true, each run's own process, the environment it saw, a
child that exits or is killed hard recorded as failed, and the sweep going on."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.errors import ConfigError
from runner.result import RESULT_FILE, validate_result
from runner.sweep import isolate
from runner.sweep.isolate import FAULT_FILE, fault_tail, how_it_died, in_fresh_process, pin
from runner.sweep.job import device_slot
from runner.sweep.sweeper import MANIFEST
from tests.helpers import compose_config, tiny_overrides

ROOT = Path(__file__).resolve().parent.parent


def test_a_gpu_slot_pins_the_process_to_that_gpu_alone():
    assert pin("cuda:1", 4, {}) == ({"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4",
                                     "CUDA_VISIBLE_DEVICES": "1"}, "cuda:0")
    assert pin("cuda", None, {}) == ({"CUDA_VISIBLE_DEVICES": "0"}, "cuda:0")
    # the slot's index counts in the worker's own visible GPUs (numbers, UUIDs or MIG names)
    assert pin("cuda:1", 2, {"CUDA_VISIBLE_DEVICES": "2,3"})[0]["CUDA_VISIBLE_DEVICES"] == "3"
    assert pin("cuda:0", 2, {"CUDA_VISIBLE_DEVICES": "GPU-a1, GPU-b2"})[0][
        "CUDA_VISIBLE_DEVICES"] == "GPU-a1"
    with pytest.raises(ConfigError, match="cuda:2 but CUDA_VISIBLE_DEVICES='0,1' shows 2 GPUs"):
        pin("cuda:2", 2, {"CUDA_VISIBLE_DEVICES": "0,1"})
    with pytest.raises(ConfigError, match="shows 0 GPUs"):
        pin("cuda:0", 2, {"CUDA_VISIBLE_DEVICES": ""})
    # a CPU slot sees no GPU at all
    assert pin("cpu", 1, {"CUDA_VISIBLE_DEVICES": "0"}) == (
        {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}, "cpu")


def test_fresh_process_auto_means_gpu_slots_only():
    cfg = compose_config("launcher=parallel")
    assert cfg.launcher.fresh_process == "auto"
    for device, fresh in [("cuda:1", True), ("cuda", True), ("cpu", False)]:
        cfg.device = device
        assert in_fresh_process(cfg) is fresh
    for choice in (True, False):
        cfg.launcher.fresh_process = choice
        assert in_fresh_process(cfg) is choice
    cfg.launcher.fresh_process = "always"
    with pytest.raises(ConfigError, match="launcher.fresh_process='always': use auto"):
        in_fresh_process(cfg)
    serial = compose_config("device=cuda:0")
    assert in_fresh_process(serial) is False  # only the parallel launcher starts processes


def test_every_slot_gets_its_share_of_the_cores_gpu_slots_too(tmp_path):
    cfg = compose_config("launcher=parallel", "launcher.devices=[cuda:0,cuda:1]",
                         "launcher.jobs_per_device=2")
    with device_slot(cfg, tmp_path) as (job_cfg, sharing):
        assert (job_cfg.device, sharing) == ("cuda:0", 2)
        assert job_cfg.threads == max(1, (os.cpu_count() or 1) // 4)
        assert cfg.device == "auto"  # the job's copy is pinned, not the sweep's config


@pytest.mark.parametrize("returncode, status, words", [
    (-signal.SIGSEGV, "failed", "was killed by SIGSEGV (Segmentation fault)"),
    (-signal.SIGKILL, "failed", "SIGKILL (Killed) (also what the out-of-memory killer sends)"),
    (-signal.SIGABRT, "failed", "SIGABRT"),
    (-signal.SIGTERM, "interrupted", "SIGTERM"),
    (-signal.SIGINT, "interrupted", "SIGINT"),
    (130, "interrupted", "exited with code 130 (interrupted)"),
    (143, "interrupted", "exited with code 143 (interrupted)"),
    (3, "failed", "exited with code 3 without reporting an outcome"),
    (0, "failed", "exited with code 0 without reporting an outcome"),
])
def test_how_a_child_died(returncode, status, words):
    got_status, how = how_it_died(returncode)
    assert got_status == status and words in how


def test_the_fault_record_keeps_the_crashed_thread(tmp_path):
    path = tmp_path / FAULT_FILE
    assert fault_tail(path) == []  # none written
    path.write_text("")
    assert fault_tail(path) == []  # no fatal signal
    path.write_text("Fatal Python error: Segmentation fault\n\n"
                    "Thread 0x1 (most recent call first):\n  File \"tqdm.py\", line 1 in run\n\n"
                    "Current thread 0x2 (most recent call first):\n"
                    "  File \"loop.py\", line 79 in fit\n  File \"<string>\", line 1 in <module>\n"
                    "\nExtension modules: torch._C (total: 1)\n")
    assert fault_tail(path) == ["Fatal Python error: Segmentation fault",
                                "Current thread 0x2 (most recent call first):",
                                "  File \"loop.py\", line 79 in fit",
                                "  File \"<string>\", line 1 in <module>"]


def exits_hard_when_it_runs(code: int):
    """A child command that dies with os._exit(code) instead of running, but records a dead
    run for real: what a crash in the run's process looks like to the worker."""
    def command(out_dir):
        script = ("import io, os, pickle, sys\n"
                  "data = sys.stdin.buffer.read()\n"
                  f"if pickle.loads(data)['mode'] == 'run': os._exit({code})\n"
                  "sys.stdin = io.TextIOWrapper(io.BytesIO(data))\n"
                  "from runner.sweep.child import main; main()\n")
        return [sys.executable, "-c", script, str(out_dir)]
    return command


@pytest.mark.slow  # three fresh interpreters with torch
def test_a_run_in_a_fresh_process_then_resumed_then_dying_hard(tiny_cfg, tmp_path, monkeypatch,
                                                                caplog):
    out = tmp_path / "run"
    cfg = tiny_cfg("train.num_epochs=1", "threads=1")
    assert isolate.run_fresh(cfg, out, 1) == "completed"
    result = json.loads((out / RESULT_FILE).read_text())
    validate_result(result)
    process = result["environment"]["fresh_process"]  # what the child saw, from inside
    assert process["pid"] != os.getpid()
    assert process == {"pid": process["pid"], "slot": "cpu", "CUDA_VISIBLE_DEVICES": "",
                       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert result["environment"]["threads"] == 1
    assert not (out / FAULT_FILE).exists()

    # resuming asks no process: a child now would die, and the run is skipped all the same
    monkeypatch.setattr(isolate, "child_command", exits_hard_when_it_runs(3))
    assert isolate.run_fresh(cfg, out, 1) == "skipped"
    assert json.loads((out / RESULT_FILE).read_text())["run_id"] == result["run_id"]

    cfg.overwrite = True  # now it runs, and its process exits with code 3 mid-way
    assert isolate.run_fresh(cfg, out, 1) == "failed"
    dead = json.loads((out / RESULT_FILE).read_text())
    validate_result(dead)
    assert dead["status"] == "failed" and dead["run_id"] != result["run_id"]
    assert dead["error"]["type"] == "ProcessDied"
    assert "exited with code 3 without reporting an outcome" in dead["error"]["message"]
    assert dead["metrics"]["peak_memory_kind"] == "process_max_rss"
    assert dead["metrics"]["epochs_done"] == 0 and dead["curves"]["epoch"] == []
    assert dead["dataset"] == result["dataset"] and dead["config"]["overwrite"] is True
    assert dead["environment"]["fresh_process"]["pid"] not in (os.getpid(), process["pid"])
    assert "exited with code 3" in caplog.text
    assert not (out / FAULT_FILE).exists()


def child_pids(pattern: str) -> list[int]:
    """Running runs' processes whose command line holds `pattern` (isolate.child_command)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "runner.sweep.child" in cmdline and pattern in cmdline:
            found.append(int(proc.name))
    return found


@pytest.mark.slow  # the CLI in a subprocess, a run killed in the middle
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds processes in /proc")
def test_a_sweep_in_fresh_processes_survives_a_segfault(corpus_dir, tmp_path):
    """Three runs on two joblib workers (jobs_per_device=2), so one worker takes two, each run
    in a process of its own: the first, killed with SIGSEGV from here in the middle of its
    training, is recorded as failed; the others go on."""
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "runner", "-m", *tiny_overrides(corpus_dir),
           "train.eval_every=1000", "train.num_epochs=300,1,2", "launcher=parallel",
           "launcher.jobs_per_device=2", "launcher.fresh_process=true", f"hydra.sweep.dir={out}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        victim, deadline = None, time.time() + 120
        while victim is None and time.time() < deadline and proc.poll() is None:
            logs = [p for p in out.glob("*num_epochs=300*/runner.log") if " on cpu" in
                    p.read_text()]  # the child logs there once training starts
            pids = child_pids("train.num_epochs=300")
            victim = pids[0] if logs and pids else None
            time.sleep(0.05)
        assert victim, "the 300-epoch run never started training"
        os.kill(victim, signal.SIGSEGV)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 1, stderr  # a failed run
    assert "3 runs: 2 completed, 1 failed" in stdout
    results = {}
    for path in out.rglob(RESULT_FILE):
        results[json.loads(path.read_text())["config"]["train"]["num_epochs"]] = \
            json.loads(path.read_text())
        if "num_epochs=300" not in path.parent.name:  # the snapshot records the command too
            assert (path.parent / ".hydra" / "overrides.yaml").exists()
    for result in results.values():
        validate_result(result)
    assert {n: r["status"] for n, r in results.items()} == {300: "failed", 1: "completed",
                                                            2: "completed"}
    error = results[300]["error"]
    assert error["type"] == "ProcessDied" and f"(pid {victim}) was killed by SIGSEGV" in \
        error["message"]
    assert error["traceback_tail"][0] == "Fatal Python error: Segmentation fault"
    assert any("in fit" in line for line in error["traceback_tail"])  # killed while training
    pids = [r["environment"]["fresh_process"]["pid"] for r in results.values()]
    assert len(set(pids)) == 3 and victim in pids  # two workers, three processes
    threads = str(max(1, (os.cpu_count() or 1) // 2))
    for result in results.values():
        assert result["environment"]["fresh_process"]["OMP_NUM_THREADS"] == threads
        assert result["environment"]["fresh_process"]["CUDA_VISIBLE_DEVICES"] == ""
        assert result["config"]["threads"] == int(threads)
    manifest = json.loads((out / MANIFEST).read_text())
    assert sorted(r["status"] for r in manifest["runs"]) == ["completed", "completed", "failed"]
    assert not list(out.rglob(FAULT_FILE))
