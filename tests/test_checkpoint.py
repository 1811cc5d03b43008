"""Checkpoints and resume: a run stopped at any point (SIGTERM, SIGINT, kill -9, during
training or an evaluation) and run again ends with the result of a run never stopped."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import runner.tasks.language_model as language_model
from runner.__main__ import hydra_quoted
from runner.errors import ConfigError
from runner.result import RESULT_FILE, run_identity
from runner.run import run
from runner.run.checkpoint import CHECKPOINT_FILE
from runner.run.interrupt import Interrupted
from tests.helpers import compose_config, tiny_overrides

# Measured, not computed: they differ between any two runs, stopped or not.
TIMING = {"tokens_per_sec", "tokens_per_sec_epoch_median", "train_seconds",
          "train_cpu_seconds", "wall_seconds", "peak_memory_bytes", "peak_memory_kind"}
# A small run that uses every source of randomness: random minibatch offsets and order (the
# generator), dropout between two layers (torch's global RNG), evaluations every 2 epochs.
SETTINGS = ["train.num_epochs=6", "train.eval_every=2", "train.checkpoint_every=1",
            "data.sampling=random", "model.num_layers=2", "model.dropout=0.3", "threads=1"]


def outcome(result: dict) -> dict:
    """Everything a stopped-and-resumed run must reproduce exactly."""
    curves = {k: v for k, v in result["curves"].items() if k not in TIMING}
    metrics = {k: v for k, v in result["metrics"].items() if k not in TIMING}
    return {"status": result["status"], "run_id": result["run_id"], "curves": curves,
            "metrics": metrics, "sample": result.get("sample"), "config": result["config"],
            "dataset": result["dataset"]}


def signal_during(monkeypatch, method: str, call: int, signum=signal.SIGTERM):
    """Send `signum` to this process during the `call`-th call of the task's `method`."""
    real, calls = getattr(language_model.LanguageModelTask, method), []

    def patched(self, *args):
        calls.append(1)
        if len(calls) == call:
            os.kill(os.getpid(), signum)
        return real(self, *args)

    monkeypatch.setattr(language_model.LanguageModelTask, method, patched)


@pytest.fixture
def clean(tiny_cfg, tmp_path):
    """The run never stopped, and its outcome."""
    result = run(tiny_cfg(*SETTINGS), tmp_path / "clean")
    assert not (tmp_path / "clean" / CHECKPOINT_FILE).exists()  # deleted once final
    return outcome(result)


@pytest.mark.parametrize("method, call, signum", [
    ("train_batches", 4, signal.SIGTERM),  # in epoch 4's training: epochs 1-3 kept
    ("evaluate", 2, signal.SIGTERM),     # in epoch 4's evaluation
    ("train_batches", 1, signal.SIGINT),   # before any epoch finished: nothing to keep
])
def test_a_stopped_run_resumes_to_the_uninterrupted_result(tiny_cfg, tmp_path, monkeypatch,
                                                           clean, method, call, signum):
    folder = tmp_path / "stopped"
    with monkeypatch.context() as m:
        signal_during(m, method, call, signum)
        with pytest.raises(Interrupted) as stopped:
            run(tiny_cfg(*SETTINGS), folder)
    assert stopped.value.exit_code == 128 + signum
    written = json.loads((folder / RESULT_FILE).read_text())
    assert written["status"] == "interrupted"
    # curves so far: in an evaluation, that epoch's training is done but not yet kept
    kept = call - 1 if method == "train_batches" else 3
    trained = kept if method == "train_batches" else 4
    assert written["curves"]["epoch"] == list(range(1, trained + 1))
    if kept:
        assert written["checkpoint"]["epoch"] == kept and (folder / CHECKPOINT_FILE).exists()
    resumed = run(tiny_cfg(*SETTINGS), folder)
    if kept:  # the same run, continued
        assert resumed["resumed_from_epoch"] == [kept]
        assert resumed["run_id"] == written["run_id"]
        assert outcome(resumed) == {**clean, "run_id": written["run_id"]}
    else:  # nothing to resume from: a fresh run, the same numbers
        assert "resumed_from_epoch" not in resumed
        assert {**outcome(resumed), "run_id": None} == {**clean, "run_id": None}
    assert not (folder / CHECKPOINT_FILE).exists()


def test_a_run_resumed_twice_lists_both_epochs(tiny_cfg, tmp_path, monkeypatch, clean):
    folder = tmp_path / "twice"
    for call in (3, 3):  # stopped in epoch 3, then in epoch 5 (the second process's 3rd)
        with monkeypatch.context() as m:
            signal_during(m, "train_batches", call)
            with pytest.raises(Interrupted):
                run(tiny_cfg(*SETTINGS), folder)
    result = run(tiny_cfg(*SETTINGS), folder)
    assert result["resumed_from_epoch"] == [2, 4]
    assert outcome(result) == {**clean, "run_id": result["run_id"]}
    # tokens/sec: each epoch's tokens over its own seconds, once: none counted twice
    assert result["metrics"]["train_tokens"] == sum(result["curves"]["train_tokens"])
    assert len(result["curves"]["train_seconds"]) == 6


def test_a_checkpoint_of_another_experiment_is_refused_or_replaced(tiny_cfg, tmp_path,
                                                                   monkeypatch):
    folder = tmp_path / "other"
    with monkeypatch.context() as m:
        signal_during(m, "train_batches", 3)
        with pytest.raises(Interrupted):
            run(tiny_cfg(*SETTINGS), folder)
    before = (folder / CHECKPOINT_FILE).read_bytes()
    with pytest.raises(ConfigError, match="checkpoint of another run: it is of a different config"):
        run(tiny_cfg(*SETTINGS, "optim.lr=0.5"), folder)
    assert (folder / CHECKPOINT_FILE).read_bytes() == before  # refused, untouched
    fresh = run(tiny_cfg(*SETTINGS, "optim.lr=0.5", "overwrite=true"), folder)
    assert fresh["status"] == "completed" and "resumed_from_epoch" not in fresh
    assert not (folder / CHECKPOINT_FILE).exists()


def test_keep_checkpoint_keeps_the_last_epoch(tiny_cfg, tmp_path):
    run(tiny_cfg(*SETTINGS, "train.keep_checkpoint=true"), tmp_path)
    state = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=False)
    assert state["epoch"] == 6 and state["history"]["epoch"] == list(range(1, 7))


def test_checkpoints_are_written_every_n_epochs(tiny_cfg, tmp_path, monkeypatch):
    written = []
    real = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f: (written.append(obj["epoch"]),
                                                       real(obj, f)))
    run(tiny_cfg(*SETTINGS, "train.checkpoint_every=2"), tmp_path)
    assert written == [2, 4, 6]


ROOT = Path(__file__).resolve().parent.parent


def start(corpus_dir, folder, *extra):
    """`python -m runner` on the tiny corpus, long enough (tiny epochs) to be stopped."""
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *tiny_overrides(corpus_dir), *SETTINGS,
         "train.num_epochs=40", f"hydra.run.dir={hydra_quoted(str(folder))}", *extra],
        cwd=ROOT, text=True, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"})


def wait_for_checkpoint(folder, proc, epoch: int) -> None:
    """Until the checkpoint holds `epoch` or later (or the run ended)."""
    path = folder / CHECKPOINT_FILE
    for _ in range(6000):  # a hang guard only: ~60 s
        if proc.poll() is not None:
            pytest.fail(f"the run ended before its checkpoint reached epoch {epoch}")
        if path.exists() and torch.load(path, weights_only=False)["epoch"] >= epoch:
            return
        time.sleep(0.01)
    pytest.fail("no checkpoint")


@pytest.mark.slow
@pytest.mark.parametrize("how, code", [(signal.SIGKILL, -9), (signal.SIGTERM, 143)])
def test_the_cli_resumes_after_a_kill_with_the_clean_result(tiny_cfg, corpus_dir, tmp_path,
                                                            how, code):
    clean = run(tiny_cfg(*SETTINGS, "train.num_epochs=40"), tmp_path / "clean")
    folder = tmp_path / "stopped at a=b,c d"  # named like a sweep's run folder, with a space
    proc = start(corpus_dir, folder)
    wait_for_checkpoint(folder, proc, 3)
    proc.send_signal(how)
    _, err = proc.communicate()
    assert proc.returncode == code
    if how == signal.SIGKILL:
        again = start(corpus_dir, folder)
    else:  # one line saying where the checkpoint is and how to continue; no traceback
        assert "Traceback" not in err
        hint = re.search(r"^interrupted \(SIGTERM\): checkpoint after epoch \d+ of 40 "
                         r"in .*checkpoint\.pt; this command continues it: (python -m runner "
                         r".*)$", err, re.M)
        assert hint, err
        assert json.loads((folder / RESULT_FILE).read_text())["status"] == "interrupted"
        # pasted into a shell as printed (issue 26, defect 10): `python` is this interpreter
        again = subprocess.Popen(["bash", "-c", hint.group(1)], cwd=ROOT, text=True,
                                 stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 env={**os.environ, "OMP_NUM_THREADS": "1", "PATH": (
                                     f"{Path(sys.executable).parent}:{os.environ['PATH']}")})
    assert again.wait() == 0
    resumed = json.loads((folder / RESULT_FILE).read_text())
    assert len(resumed["resumed_from_epoch"]) == 1 and resumed["resumed_from_epoch"][0] >= 3
    assert outcome(resumed) == {**outcome(clean), "run_id": resumed["run_id"]}


def submitit_task(folder) -> int | None:
    """The PID of the process submitit runs the job in (`-m submitit.core._submit <folder>`)."""
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours to read
            continue
        if b"submitit.core._submit" in cmd and any(str(folder).encode() in c for c in cmd):
            return int(proc.name)
    return None


@pytest.mark.slow
def test_a_timed_out_submitit_job_is_requeued_and_resumes(tiny_cfg, corpus_dir, tmp_path):
    """launcher=submitit_local: submitit's own timeout signal (SIGUSR2; on SLURM it comes
    signal_delay_s before the time limit, sent here at once) requeues the job through its
    checkpoint() method; the new process continues from the run's checkpoint."""
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "-m", "launcher=submitit_local",
         *tiny_overrides(corpus_dir), *SETTINGS, "train.num_epochs=40",
         f"hydra.sweep.dir={sweep}"], cwd=ROOT, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    for _ in range(6000):  # a hang guard only: ~60 s
        found = list(sweep.glob(f"*/{CHECKPOINT_FILE}"))
        if found and torch.load(found[0], weights_only=False)["epoch"] >= 3:
            break
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.01)
    os.kill(submitit_task(sweep / ".submitit"), signal.SIGUSR2)
    out, _ = proc.communicate()
    assert proc.returncode == 0, out
    [path] = sweep.glob(f"*/{RESULT_FILE}")
    result = json.loads(path.read_text())
    assert result["status"] == "completed" and result["resumed_from_epoch"][0] >= 3, out
    clean = run(tiny_cfg(*SETTINGS, "train.num_epochs=40"), tmp_path / "clean")
    assert run_identity(result["config"]) == run_identity(clean["config"])  # launcher aside
    assert ({**outcome(result), "config": None}
            == {**outcome(clean), "run_id": result["run_id"], "config": None})


def test_slurm_jobs_are_requeued_on_timeout_or_preemption():
    cfg = compose_config("launcher=slurm", hydra_node=True)
    assert cfg.hydra.launcher.max_num_timeout == 3 and cfg.hydra.launcher.signal_delay_s > 0


def test_a_signal_someone_else_handles_is_left_to_them(tiny_cfg, tmp_path, monkeypatch):
    """As under submitit, which ignores SIGTERM: the run neither takes it nor stops."""
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        signal_during(monkeypatch, "train_batches", 2)
        result = run(tiny_cfg(*SETTINGS), tmp_path)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [signal.SIGTERM] and result["status"] == "completed"


def test_a_sigterm_someone_else_handles_gets_the_checkpoint_written_first(tiny_cfg, tmp_path,
                                                                         monkeypatch):
    """Under submitit on SLURM (scancel, requeue, preemption): the SIGTERM is submitit's, which
    ignores it, and SLURM's SIGKILL follows KillWait later. The last finished epoch's checkpoint
    is on disk before their handler runs, though checkpoint_every=null had written none yet."""
    seen = []

    def theirs(signum, frame):
        seen.append(torch.load(tmp_path / CHECKPOINT_FILE, weights_only=False)["epoch"])

    previous = signal.signal(signal.SIGTERM, theirs)
    try:
        signal_during(monkeypatch, "train_batches", 4)  # in epoch 4: epochs 1-3 finished
        result = run(tiny_cfg(*SETTINGS, "train.checkpoint_every=null"), tmp_path)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [3] and result["status"] == "completed"
    assert not (tmp_path / CHECKPOINT_FILE).exists()  # deleted once the result is final


def test_an_exit_asked_of_the_process_checkpoints_and_resumes(tiny_cfg, tmp_path, monkeypatch,
                                                              clean):
    """submitit's requeue exits the process (SystemExit) from inside the run."""
    real = language_model.LanguageModelTask.train_batches
    calls = []

    def requeued(self, *args):
        calls.append(1)
        if len(calls) == 4:
            raise SystemExit(144)
        return real(self, *args)

    with monkeypatch.context() as m:
        m.setattr(language_model.LanguageModelTask, "train_batches", requeued)
        with pytest.raises(SystemExit):
            run(tiny_cfg(*SETTINGS), tmp_path)
    written = json.loads((tmp_path / RESULT_FILE).read_text())
    assert written["status"] == "interrupted" and written["checkpoint"]["epoch"] == 3
    resumed = run(tiny_cfg(*SETTINGS), tmp_path)
    assert outcome(resumed) == {**clean, "run_id": resumed["run_id"]}


@pytest.mark.parametrize("override, line", [
    ("train.checkpoint_every=0", "train.checkpoint_every=0 is not allowed: it must be null "
                                 "(about every 5 minutes) or an integer >= 1 (epochs)"),
    ("train.keep_checkpoint=maybe", "train.keep_checkpoint='maybe' is not allowed"),
])
def test_checkpoint_settings_are_checked_before_work(tiny_cfg, tmp_path, override, line):
    with pytest.raises(ConfigError, match=re.escape(line)):
        run(tiny_cfg(override), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_ctrl_c_in_a_sweep_records_real_statuses_and_the_same_command_finishes_it(corpus_dir,
                                                                                 tmp_path):
    sweep = tmp_path / "sweep"
    command = [sys.executable, "-m", "runner", "-m", *tiny_overrides(corpus_dir), *SETTINGS,
               "train.num_epochs=30", "seed=0,1,2", f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    for _ in range(6000):  # a hang guard only: ~60 s; until the second run has checkpoints
        found = list(sweep.glob(f"*seed=1*/{CHECKPOINT_FILE}"))
        if found and torch.load(found[0], weights_only=False)["epoch"] >= 2:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "3 runs: 1 completed, 0 failed, 0 diverged, 0 skipped, 1 interrupted, 1 pending" in out
    assert "stopped (SIGINT): the same command finishes it" in err
    manifest = json.loads((sweep / "manifest.json").read_text())
    assert [r["status"] for r in manifest["runs"]] == ["completed", "interrupted", "pending"]
    again = subprocess.run(command, cwd=ROOT, text=True, capture_output=True, env=env)
    assert again.returncode == 0, again.stderr
    assert "3 runs: 2 completed, 0 failed, 0 diverged, 1 skipped" in again.stdout
    resumed = json.loads(next(sweep.glob(f"*seed=1*/{RESULT_FILE}")).read_text())
    assert resumed["status"] == "completed" and resumed["resumed_from_epoch"][0] >= 2
