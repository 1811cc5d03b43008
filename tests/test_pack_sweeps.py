"""launcher.pack=N through the sweeper and the launchers: how the sweeper groups a sweep's runs
into packs, a packed sweep through the command line against the unpacked one, a SIGTERM that
submitit handles (each member's checkpoint first), and a pack under launcher=submitit_local
timed out and requeued (runner/sweep/packs.py, runner/run/pack.py, docs/packing.md). The real
SLURM's pack tests are in tests/test_slurm.py."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import runner.tasks.language_model as language_model
from runner.result import RESULT_FILE
from runner.run import run
from runner.run.checkpoint import CHECKPOINT_FILE
from runner.run.pack import run_pack
from runner.sweep.packs import outcomes_of, pack_groups
from tests import test_pack_runner
from tests.helpers import cli_here, compose_config, tiny_overrides
from tests.test_pack_runner import assert_same_run, configs

corpus, dtype = test_pack_runner.corpus, test_pack_runner.dtype  # the fixtures


@pytest.mark.parametrize("dtype", [torch.float64], indirect=True)
def test_a_sigterm_someone_else_handles_gets_every_members_checkpoint_first(corpus, tmp_path,
                                                                           monkeypatch, dtype):
    """Under submitit on SLURM (scancel, `scontrol requeue`, preemption) the SIGTERM is
    submitit's, which ignores it, and SIGKILL follows: each member still training has its last
    finished epoch's checkpoint on disk before their handler runs, though
    checkpoint_every=null had written none; the pack then trains on to the clean result."""
    cfgs = configs(corpus, (0, 1), "model=gru", "train.checkpoint_every=null")
    real, calls, seen = language_model.LanguageModelTask.train_batches, [], []

    def sigterm_in_round_2(self):  # two members: calls 1-2 are epoch 1, 3-4 epoch 2
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self)

    def theirs(signum, frame):
        seen.extend(torch.load(tmp_path / f"pack{c.seed}" / CHECKPOINT_FILE,
                               weights_only=False)["epoch"] for c in cfgs)

    monkeypatch.setattr(language_model.LanguageModelTask, "train_batches", sigterm_in_round_2)
    previous = signal.signal(signal.SIGTERM, theirs)
    try:
        packed = run_pack(cfgs, [tmp_path / f"pack{c.seed}" for c in cfgs])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [1, 1] and [p["status"] for p in packed] == ["completed"] * 2
    assert not any((tmp_path / f"pack{c.seed}" / CHECKPOINT_FILE).exists() for c in cfgs)


def test_groups_hold_up_to_n_runs_of_one_point():
    jobs = [[f"model.num_hiddens={h}", f"seed={s}"] for h in (8, 16) for s in range(3)]
    assert pack_groups(jobs, 2) == [[0, 1], [2], [3, 4], [5]]
    assert pack_groups(jobs, 4) == [[0, 1, 2], [3, 4, 5]]
    # one outcome per member; a job that raised fails every member of its pack
    assert outcomes_of([[0, 1], [2]], [["completed", "skipped"], "failed"], 3) == [
        "completed", "skipped", "failed"]


@pytest.mark.slow  # two sweeps through the command line's entry point
def test_a_packed_sweep_equals_the_unpacked_sweep(corpus, tmp_path):
    def sweep(folder, *args):
        return cli_here("-m", *tiny_overrides(corpus), "model=gru", "train.num_epochs=2",
                        "repeats=3", f"hydra.sweep.dir={folder}", *args)

    done = sweep(tmp_path / "packed", "launcher.pack=2")
    assert done.returncode == 0, done.stderr
    assert sweep(tmp_path / "alone").returncode == 0
    manifest = json.loads((tmp_path / "packed" / "manifest.json").read_text())
    assert [r["status"] for r in manifest["runs"]] == ["completed"] * 3
    for run_entry in manifest["runs"]:
        packed = json.loads((tmp_path / "packed" / run_entry["dir"] / RESULT_FILE).read_text())
        alone = json.loads((tmp_path / "alone" / run_entry["dir"] / RESULT_FILE).read_text())
        assert_same_run(packed, alone, 1e-4)  # float32
    sizes = sorted(json.loads((tmp_path / "packed" / r["dir"] / RESULT_FILE).read_text())
                   ["environment"].get("packed", 1) for r in manifest["runs"])
    assert sizes == [1, 2, 2]  # seeds 0 and 1 packed, seed 2 alone
    refused = sweep(tmp_path / "refused", "model=transformer", "launcher.pack=2")
    assert refused.returncode == 2 and "cannot pack model=transformer" in refused.stderr
    assert "launcher.pack=1" in refused.stderr and not (tmp_path / "refused").exists()


# launcher=submitit_local: one point, two seeds, one pack (one job); 24 short epochs (~0.04 s
# each on an idle core), a checkpoint after each, so the timeout signal lands mid-training
POINT = ["model=gru", "data.max_tokens=1200", "data.val_tokens=300", "data.sampling=random",
         "train.num_epochs=24", "train.eval_every=8", "train.checkpoint_every=1", "threads=1"]


def local_task(sweep: Path, folder: str, proc) -> int:
    """The PID of the submitit_local task that trains `folder`, once its job's log names it."""
    for _ in range(12000):  # a hang guard only: ~2 min
        for log_file in (sweep / ".submitit").glob("*/*_0_log.out"):
            if f"/{folder}" not in log_file.read_text():
                continue
            for task in Path("/proc").iterdir():
                try:
                    cmd = (task / "cmdline").read_bytes().split(b"\0")
                    env = (task / "environ").read_bytes().split(b"\0")
                except OSError:  # gone, or not ours to read
                    continue
                if (b"submitit.core._submit" in cmd
                        and f"SUBMITIT_LOCAL_JOB_ID={log_file.parent.name}".encode() in env):
                    return int(task.name)
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.01)
    pytest.fail(f"no submitit_local task trains {folder}")


@pytest.fixture(scope="module")
def local_sweep(corpus, tmp_path_factory):
    """The packed sweep under launcher=submitit_local, its pack's job sent
    submitit's timeout signal (SIGUSR2; on SLURM it comes signal_delay_s before the limit)
    once its members have 2 epochs done; and each of its runs alone, unpacked, meanwhile."""
    root = tmp_path_factory.mktemp("local")
    # folders named by num_hiddens and seed alone: every key would make a name too long
    named = {o.split("=")[0] for o in [*tiny_overrides(corpus), *POINT]} - {"model.num_hiddens"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "-m", "launcher=submitit_local", "launcher.pack=2",
         *tiny_overrides(corpus), *POINT, "model.num_hiddens=8", "repeats=2",
         f"hydra.job.config.override_dirname.exclude_keys=[{','.join(sorted(named))}]",
         f"hydra.sweep.dir={root / 'packed'}"], cwd=Path(__file__).parent.parent,
        text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    task = local_task(root / "packed", "model.num_hiddens=8,seed=0", proc)
    checkpoint = root / "packed" / "model.num_hiddens=8,seed=1" / CHECKPOINT_FILE
    for _ in range(6000):  # a hang guard only: ~1 min
        try:
            if torch.load(checkpoint, weights_only=False)["epoch"] >= 2:
                break
        except (FileNotFoundError, EOFError, RuntimeError):  # not yet, or replaced while read
            pass
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.01)
    os.kill(task, signal.SIGUSR2)
    for s in (0, 1):  # the same runs unpacked, as the unpacked sweep runs them
        cfg = compose_config(*tiny_overrides(corpus), *POINT, "model.num_hiddens=8", f"seed={s}",
                             "train.checkpoint_every=null")
        run(cfg, root / "alone" / f"model.num_hiddens=8,seed={s}")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "2 runs: 2 completed" in out, out
    return root


def results_of(sweep: Path, hiddens: int) -> list[dict]:
    return [json.loads((sweep / f"model.num_hiddens={hiddens},seed={s}" / RESULT_FILE)
                       .read_text()) for s in (0, 1)]


@pytest.mark.slow  # a sweep of submitit_local's jobs, each a fresh process
def test_a_timed_out_submitit_pack_is_requeued_and_equals_the_runs_alone(local_sweep):
    """submitit requeued the pack's job through its checkpoint() method: the new process read
    .packs.json, and each member resumed from its own checkpoint, packed again, to the result
    of its run alone, unpacked."""
    for packed, alone in zip(results_of(local_sweep / "packed", 8),
                             results_of(local_sweep / "alone", 8)):
        assert packed["status"] == "completed" and packed["environment"]["packed"] == 2
        assert packed["config"]["launcher"]["name"] == "submitit_local"
        assert "packed" not in alone["environment"]
        assert len(packed["resumed_from_epoch"]) == 1 and packed["resumed_from_epoch"][0] >= 2
        assert_same_run(packed, alone, 1e-4)  # float32
    logs = "".join(p.read_text() for p in (local_sweep / "packed" / ".submitit").glob("*/*.out"))
    assert logs.count("pack of 2 runs (seeds 0, 1)") == 2  # one job, twice: requeued
