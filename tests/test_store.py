"""The result store (runner/run/store.py): a run asked for again, in another folder or sweep,
is copied from the store, not trained; only when everything that decides its numbers is the
same; overwrite=true still trains."""
import json

import pandas as pd
import pytest

from runner.result import RESULT_FILE, version_label
from runner.run import run
from runner.run.checkpoint import CHECKPOINT_FILE
from runner.run.identity import Identity
from runner.run.store import CHECKSUM, checksum, entry
from tests.test_sweep import sweep_cli


def store_key(config: dict, data_sha1: str, env: dict) -> str | None:
    """The store's key of a run of `config` (resolved, as a result records it) on `env`."""
    return Identity.of(config, data_sha1).store_key(env)


TIMING = {"tokens_per_sec", "tokens_per_sec_epoch_median", "train_seconds",
          "train_cpu_seconds", "wall_seconds", "peak_memory_bytes", "peak_memory_kind"}


def test_a_run_asked_for_again_is_copied_from_the_store(tiny_cfg, tmp_path):
    store = tmp_path / "store"
    first = run(tiny_cfg(f"store={store}"), tmp_path / "a")
    key = store_key(first["config"], first["dataset"]["sha1"], first["environment"])
    assert json.loads(entry(store, key).read_text()) == {  # filed as written, and checksummed
        **first, CHECKSUM: checksum(first)}
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / CHECKPOINT_FILE).write_bytes(b"a stopped try of this run")
    again = run(tiny_cfg(f"store={store}", "quiet=false"), tmp_path / "b")
    assert again["reused"] is True and again["run_id"] == first["run_id"]
    written = json.loads((tmp_path / "b" / RESULT_FILE).read_text())
    assert written == {**first, "reused_from": str(entry(store, key))}
    assert (tmp_path / "b" / ".hydra" / "config.yaml").exists()  # the command's snapshot
    assert not (tmp_path / "b" / CHECKPOINT_FILE).exists()
    forced = run(tiny_cfg(f"store={store}", "overwrite=true"), tmp_path / "c")
    assert "reused" not in forced and forced["run_id"] != first["run_id"]
    # trained again, the same numbers: what the store gave is what the command produces
    assert forced["curves"]["train_perplexity"] == first["curves"]["train_perplexity"]
    assert forced["metrics"]["val_perplexity"] == first["metrics"]["val_perplexity"]


@pytest.mark.parametrize("change", [
    {"config": {"optim": {"lr": 0.5}}},               # another experiment
    {"dataset": "f" * 40},                            # other data
    {"environment": {"git_diff_sha1": "1" * 40, "git_dirty": True}},  # other code
    {"environment": {"threads": 7}},                  # other CPU arithmetic
    {"environment": {"impl": "nn"}},                  # the other implementation
    {"environment": {"device_name": "NVIDIA H200"}},  # another device
])
def test_the_key_changes_with_everything_that_decides_the_numbers(tiny_cfg, tmp_path, change):
    result = run(tiny_cfg("train.num_epochs=1"), tmp_path)
    config, sha1, env = result["config"], result["dataset"]["sha1"], result["environment"]
    base = store_key(config, sha1, env)
    assert base and store_key(config, sha1, env) == base
    # execution settings that leave the arithmetic alone do not count
    assert store_key({**config, "quiet": False, "launcher": {"name": "parallel"}}, sha1,
                     {**env, "concurrent_jobs": 2, "hostname": "elsewhere"}) == base
    config = {**config, **{k: {**config[k], **v} for k, v in change.get("config", {}).items()}}
    env = {**env, **change.get("environment", {})}
    assert store_key(config, change.get("dataset", sha1), env) != base


def test_no_store_outside_a_git_checkout(tiny_cfg, tmp_path):
    result = run(tiny_cfg("train.num_epochs=1"), tmp_path)
    env = {**result["environment"], "git_commit": None}
    assert version_label(env) == "unknown"
    assert store_key(result["config"], result["dataset"]["sha1"], env) is None


def test_a_bad_store_entry_is_trained_over(tiny_cfg, tmp_path):
    store = tmp_path / "store"
    first = run(tiny_cfg(f"store={store}", "train.num_epochs=1"), tmp_path / "a")
    path = entry(store, store_key(first["config"], first["dataset"]["sha1"],
                                  first["environment"]))
    path.write_text("{ half a file")
    again = run(tiny_cfg(f"store={store}", "train.num_epochs=1"), tmp_path / "b")
    assert "reused" not in again and again["run_id"] != first["run_id"]
    assert json.loads(path.read_text())["run_id"] == again["run_id"]  # replaced


@pytest.mark.slow  # three sweeps through the CLI
def test_two_sweeps_sharing_a_point_train_it_once(corpus_dir, tmp_path):
    """num_hiddens 16 at batch 8 is in both sweeps: the second copies it, says so, and its
    report equals that of the same sweep trained alone (timings aside)."""
    store = f"store={tmp_path / 'store'}"
    a = sweep_cli(corpus_dir, tmp_path / "a", store, "model.num_hiddens=16,24", "threads=1")
    assert a.returncode == 0, a.stderr
    b = sweep_cli(corpus_dir, tmp_path / "b", store, "data.batch_size=8,4", "threads=1")
    assert b.returncode == 0, b.stderr
    assert "2 runs: 1 completed, 0 failed, 0 diverged, 0 skipped, 1 reused" in b.stdout
    alone = sweep_cli(corpus_dir, tmp_path / "alone", "store=null", "data.batch_size=8,4",
                      "threads=1")
    assert alone.returncode == 0, alone.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert sorted(bool(r.get("reused")) for r in manifest["runs"]) == [False, True]
    runs = {f: pd.read_csv(tmp_path / f / "runs.csv") for f in ("a", "b", "alone")}
    shared = runs["b"][runs["b"]["data.batch_size"] == 8]
    assert list(shared["run_id"]) == list(runs["a"][runs["a"]["model.num_hiddens"] == 16]
                                          ["run_id"])
    summary = {f: pd.read_csv(tmp_path / f / "summary.csv") for f in ("b", "alone")}
    kept = [c for c in summary["b"].columns if not any(t in c for t in TIMING)]
    pd.testing.assert_frame_equal(summary["b"][kept], summary["alone"][kept])
