"""Experiment trackers (logger=, runner/loggers/): what each tracker's own reader finds after a
run is the run's result.json curves, epoch for epoch; a stopped and resumed run continues its
tracker runs; a failing tracker never fails the run; a missing package is refused before work.

The tracker packages are optional extras: their tests skip where one is missing, except under
RUNNER_EXTRAS=required (CI), where a missing one fails."""
import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import runner.loggers.csv_logger as csv_logger
from runner.errors import ConfigError
from runner.loggers import Loggers, RunInfo, logger_problems
from runner.result import RESULT_FILE, is_execution_key, validate_result
from runner.run import run
from runner.run.interrupt import Interrupted
from tests.helpers import CONF, cli_here, needs, tiny_overrides
from tests.test_checkpoint import ROOT, signal_during, wait_for_checkpoint
from tests.tracker_stores import (
    by_epoch,
    csv_curves,
    mlflow_history,
    mlflow_runs,
    tensorboard_hparams,
    tensorboard_scalars,
    wandb_history,
)

SETTINGS = ["train.num_epochs=5", "train.eval_every=2", "threads=1"]


def logger_node(*names: str) -> dict:
    """The `logger` node of logger=[names...], as conf/logger/ writes it."""
    from omegaconf import OmegaConf

    return {k: v for name in names
            for k, v in OmegaConf.to_container(OmegaConf.load(CONF / "logger" / f"{name}.yaml"))
            .items()}


# ---- csv: no extra package


def test_csv_holds_the_results_curves(tiny_cfg, tmp_path):
    folder = tmp_path / "runs" / "one"
    result = run(tiny_cfg(*SETTINGS, "logger=csv"), folder)
    table = csv_curves(folder)
    assert list(table.index) == [1, 2, 3, 4, 5]
    assert table["train_perplexity"].to_dict() == by_epoch(result)
    assert table["tokens_per_sec"].to_dict() == by_epoch(result, "tokens_per_sec")
    assert table["lr"].to_dict() == by_epoch(result, "lr")
    assert table["val_perplexity"].dropna().to_dict() == by_epoch(result, "val_perplexity")
    assert set(table["val_perplexity"].dropna().index) == {2, 4, 5}
    assert "logger_errors" not in result


def test_logger_none_writes_nothing_and_is_the_default(tiny_cfg, tmp_path):
    run(tiny_cfg(*SETTINGS), tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [".hydra", RESULT_FILE]


def test_a_failing_tracker_leaves_the_run_and_the_other_trackers_alone(tiny_cfg, tmp_path,
                                                                        monkeypatch):
    calls = []

    def broken(self, epoch, metrics):
        calls.append(epoch)
        raise OSError("disk full")

    monkeypatch.setattr(csv_logger.CSVLogger, "epoch", broken)
    clean = run(tiny_cfg(*SETTINGS), tmp_path / "clean")
    result = run(tiny_cfg(*SETTINGS, "logger=csv"), tmp_path / "broken")
    assert result["status"] == "completed"
    assert result["curves"]["train_perplexity"] == clean["curves"]["train_perplexity"]
    assert calls == [1]  # dropped after its first error: no error per epoch
    assert result["logger_errors"] == [{"logger": "csv", "event": "epoch",
                                        "error": "OSError: disk full"}]
    written = json.loads((tmp_path / "broken" / RESULT_FILE).read_text())
    assert written["logger_errors"] == result["logger_errors"]
    validate_result(written)


def test_a_tracker_that_hangs_is_waited_for_a_bounded_time(tmp_path, monkeypatch):
    import threading

    release = threading.Event()
    monkeypatch.setattr(csv_logger.CSVLogger, "epoch", lambda self, e, m: release.wait(30))
    loggers = Loggers(logger_node("csv"))
    loggers.start(RunInfo(folder=tmp_path, run_id="0" * 12, name="x", group="g", params={},
                          tags={}, first_epoch=1))
    loggers.epoch(1, {"train_perplexity": 2.0})
    errors = loggers.close(timeout=0.2)
    release.set()
    assert errors[-1]["event"] == "close" and "had not finished 0.2 s" in errors[-1]["error"]


def test_a_tracker_that_cannot_start_is_recorded(tiny_cfg, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the csv's folder would be
    result = run(tiny_cfg(*SETTINGS, "logger=csv", f"logger.csv.file={blocked}/metrics.csv"),
                 tmp_path / "run")
    assert result["status"] == "completed"
    assert [(e["logger"], e["event"]) for e in result["logger_errors"]] == [("csv", "start")]


def test_unknown_or_missing_loggers_are_refused_before_work(monkeypatch):
    assert logger_problems({}) == [] and logger_problems(None) == []
    assert "whose _target_ names its class; runner's own: csv, mlflow, none, tensorboard, " \
        "wandb" in logger_problems({"neptune": {"project": "x"}})[0]
    real, trackers = importlib.util.find_spec, ("tensorboard", "mlflow", "wandb")
    with monkeypatch.context() as m:  # every tracker's package there, installed or not
        m.setattr(importlib.util, "find_spec",
                  lambda name, *a: object() if name in trackers else real(name, *a))
        assert logger_problems(logger_node("csv", *trackers)) == []
    monkeypatch.setattr(importlib.util, "find_spec",  # and mlflow's missing
                        lambda name, *a: None if name == "mlflow" else
                        object() if name in trackers else real(name, *a))
    assert logger_problems(logger_node("csv", "mlflow")) == [
        "logger=mlflow needs the mlflow package, which is not installed: "
        "pip install -e '.[mlflow]'"]


def test_a_logger_whose_class_cannot_be_built_is_refused_naming_its_target(monkeypatch,
                                                                          tmp_path):
    assert logger_problems({"mine": {"_target_": "mytrackr.MyTracker"}}) == [
        "logger=mine: its _target_ mytrackr.MyTracker cannot be imported (No module named "
        "'mytrackr'): fix the class path, or put its folder on PYTHONPATH"]
    assert "its _target_ runner.loggers.csv_logger.CsvLogger cannot be imported (AttributeError" \
        in logger_problems({"csv": {"_target_": "runner.loggers.csv_logger.CsvLogger"}})[0]
    assert logger_problems({"csv": {**logger_node("csv")["csv"], "path": "m.csv"}}) == [
        "logger.csv options ['file', 'path'] do not fit runner.loggers.csv_logger.CSVLogger: "
        "got an unexpected keyword argument 'path' (its arguments: file)"]
    # a tracker outside the package that imports its package at the top: named by the import
    (tmp_path / "neptune_tracker.py").write_text("import neptune\n\n\nclass NeptuneTracker:\n"
                                                 "    pass\n")
    monkeypatch.setitem(sys.modules, "neptune", None)
    monkeypatch.syspath_prepend(tmp_path)
    assert logger_problems({"nep": {"_target_": "neptune_tracker.NeptuneTracker"}}) == [
        "logger=nep needs the neptune package, which is not installed: pip install neptune"]


def test_the_cli_refuses_a_missing_tracker_in_one_line(corpus_dir, tmp_path, monkeypatch):
    """exit 2 before any work: mlflow hidden from the process (sys.modules[name] = None)."""
    monkeypatch.setitem(sys.modules, "mlflow", None)
    folder = tmp_path / "run"
    proc = cli_here(*tiny_overrides(corpus_dir), "logger=[csv,mlflow]",
                    f"hydra.run.dir={folder}")
    assert proc.returncode == 2, proc.stderr
    assert "logger=mlflow needs the mlflow package, which is not installed: " \
           "pip install -e '.[mlflow]'" in proc.stderr
    assert "Traceback" not in proc.stderr
    sweep = cli_here("-m", *tiny_overrides(corpus_dir), "seed=0,1", "logger=mlflow",
                     f"hydra.sweep.dir={tmp_path / 's'}")
    assert sweep.returncode == 2 and "pip install -e '.[mlflow]'" in sweep.stderr, sweep.stderr
    assert not (tmp_path / "s" / "manifest.json").exists()  # refused before the plan
    written = {f.name: f.read_bytes() for f in folder.rglob("*") if f.is_file()}
    assert written in ({}, {"runner.log": b""})  # Hydra's log, opened before the task


def test_a_run_copied_from_the_store_shows_in_the_trackers(tiny_cfg, tmp_path):
    store = f"store={tmp_path / 'store'}"
    first = run(tiny_cfg(*SETTINGS, store, "logger=csv"), tmp_path / "a" / "p")
    copied = run(tiny_cfg(*SETTINGS, store, "logger=csv"), tmp_path / "b" / "p")
    assert copied.get("reused")
    assert csv_curves(tmp_path / "b" / "p").equals(csv_curves(tmp_path / "a" / "p"))
    assert csv_curves(tmp_path / "b" / "p")["train_perplexity"].to_dict() == by_epoch(first)


def test_a_finished_run_is_replayed_into_a_tracker_added_later(tiny_cfg, tmp_path):
    folder = tmp_path / "runs" / "one"
    first = run(tiny_cfg(*SETTINGS), folder)  # logger=none
    assert first["logged_to"] == []
    again = run(tiny_cfg(*SETTINGS, "logger=csv"), folder)
    assert again["skipped"] and again["run_id"] == first["run_id"]  # not trained again
    assert csv_curves(folder)["train_perplexity"].to_dict() == by_epoch(first)
    assert csv_curves(folder)["val_perplexity"].dropna().to_dict() == by_epoch(
        first, "val_perplexity")
    written = json.loads((folder / RESULT_FILE).read_text())
    validate_result(written)
    assert written["logged_to"] == ["csv"] and set(written["replayed_at"]) == {"csv"}
    assert written["curves"] == first["curves"]  # the result itself unchanged
    table = (folder / "metrics.csv").read_text()
    third = run(tiny_cfg(*SETTINGS, "logger=csv"), folder)  # csv holds it now: no replay
    assert third["skipped"] and third["replayed_at"] == written["replayed_at"]
    assert (folder / "metrics.csv").read_text() == table


@pytest.mark.slow  # the CLI in a subprocess, twice
def test_a_sweep_in_fresh_processes_replays_its_finished_runs_into_a_new_tracker(corpus_dir,
                                                                                tmp_path):
    """launcher.fresh_process=true skips a finished run without starting its process: the
    replay happens there too."""
    sweep = tmp_path / "sweep"
    argv = ["-m", *tiny_overrides(corpus_dir), "seed=0,1", "train.num_epochs=2",
            f"hydra.sweep.dir={sweep}"]
    assert cli_here(*argv).returncode == 0  # the launcher is an execution setting
    again = cli_here(*argv, "launcher=parallel", "launcher.fresh_process=true", "logger=csv")
    assert again.returncode == 0, again.stderr
    assert "2 skipped (2 finished runs replayed into csv, which they had not been logged " \
           "to)" in again.stdout
    for path in sweep.glob(f"*/{RESULT_FILE}"):
        result = json.loads(path.read_text())
        assert result["logged_to"] == ["csv"]
        assert csv_curves(path.parent)["train_perplexity"].to_dict() == by_epoch(result)


def test_mlflow_run_names_are_short_and_tell_a_sweeps_runs_apart():
    from runner.loggers.naming import named_keys, short_name

    assert short_name("model.num_hiddens=16,seed=0") == "nh=16 seed=0"
    assert short_name("model=gru,model.num_hiddens=16,seed=1") == "model=gru nh=16 seed=1"
    # two keys whose initials agree keep their leaves
    assert short_name("model.num_hiddens=8,model.num_heads=2,seed=0") == \
        "num_hiddens=8 num_heads=2 seed=0"
    assert short_name("2026-01-01_10-00-00_rnn") == "2026-01-01_10-00-00_rnn"  # one run
    assert named_keys("optim.lr=0.1,+foo.bar=[1,2],seed=3") == ["optim.lr", "foo.bar", "seed"]
    # in a sweep, only the keys it varies: not the settings every run of it shares
    assert short_name("data.file=tiny.txt,model.num_hiddens=16,seed=0",
                      ["model.num_hiddens", "seed"]) == "nh=16 seed=0"


# ---- the trackers' own readers


def test_tensorboard_event_files_hold_the_curves(tiny_cfg, tmp_path):
    needs("tensorboard")
    folder = tmp_path / "runs" / "model.num_hiddens=16,seed=0"  # a sweep run's folder
    result = run(tiny_cfg(*SETTINGS, "logger=tensorboard"), folder)
    scalars = tensorboard_scalars(folder)
    assert scalars["train_perplexity"] == pytest.approx(by_epoch(result), rel=1e-6)
    assert scalars["val_perplexity"] == pytest.approx(by_epoch(result, "val_perplexity"),
                                                      rel=1e-6)
    assert sorted(scalars["lr"]) == [1, 2, 3, 4, 5]
    # the final figures where the curves end (epoch 5), not at step 0
    assert scalars["final/val_perplexity"] == pytest.approx(
        {5: result["metrics"]["val_perplexity"]}, rel=1e-6)
    # HParams: the run's varied keys, and its final figures as the view's metrics
    hparams = tensorboard_hparams(folder)
    assert hparams["hparams"] == {"model.cell": "rnn", "model.num_hiddens": 16, "seed": 0}
    assert {"final/train_perplexity", "final/val_perplexity", "final/best_val_perplexity",
            "final/tokens_per_sec"} <= set(hparams["metrics"])


@pytest.mark.slow
def test_mlflow_holds_params_metrics_per_step_and_the_result(tiny_cfg, tmp_path):
    needs("mlflow")
    folder = tmp_path / "results" / "runs" / "model.num_hiddens=16,seed=0"
    result = run(tiny_cfg(*SETTINGS, "logger=mlflow"), folder)
    client, runs = mlflow_runs(tmp_path / "results" / "mlruns", "runs")
    assert len(runs) == 1
    mlrun = runs[0]
    assert mlrun.info.status == "FINISHED" and mlrun.info.run_name == "nh=16 seed=0"
    assert mlrun.data.tags["runner.folder"] == folder.name
    assert mlrun.data.params["model.num_hiddens"] == "16"
    assert mlrun.data.params["data.batch_size"] == "8"
    assert mlrun.data.tags["runner.run_id"] == result["run_id"]
    assert mlrun.data.tags["runner.status"] == "completed"
    assert mlflow_history(client, mlrun.info.run_id, "train_perplexity") == pytest.approx(
        by_epoch(result))
    assert mlflow_history(client, mlrun.info.run_id, "val_perplexity") == pytest.approx(
        by_epoch(result, "val_perplexity"))
    assert mlrun.data.metrics["final.train_perplexity"] == pytest.approx(
        result["metrics"]["train_perplexity"])
    artifact = client.download_artifacts(mlrun.info.run_id, RESULT_FILE, str(tmp_path))
    assert json.loads(Path(artifact).read_text()) == json.loads(
        (folder / RESULT_FILE).read_text())


def test_wandb_offline_run_holds_the_history(tiny_cfg, tmp_path, monkeypatch):
    needs("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    folder = tmp_path / "runs" / "one"
    result = run(tiny_cfg(*SETTINGS, "logger=wandb"), folder)
    assert "logger_errors" not in result, result.get("logger_errors")
    rows = wandb_history(folder)
    assert {row["epoch"]: row["train_perplexity"] for row in rows} == pytest.approx(
        by_epoch(result)), rows
    assert {row["epoch"]: row["val_perplexity"] for row in rows
            if "val_perplexity" in row} == pytest.approx(by_epoch(result, "val_perplexity"))


# ---- resume: the same tracker runs, continued


@pytest.mark.slow
def test_a_stopped_run_continues_its_tracker_runs(tiny_cfg, tmp_path, monkeypatch):
    needs("tensorboard")
    needs("mlflow")
    needs("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    loggers = "logger=[csv,tensorboard,mlflow,wandb]"
    clean = run(tiny_cfg(*SETTINGS, "train.checkpoint_every=1"), tmp_path / "clean")
    folder = tmp_path / "results" / "runs" / "stopped"
    with monkeypatch.context() as m:
        signal_during(m, "train_batches", 4)  # epochs 1-3 done and logged
        with pytest.raises(Interrupted):
            run(tiny_cfg(*SETTINGS, "train.checkpoint_every=1", loggers), folder)
    client, runs = mlflow_runs(tmp_path / "results" / "mlruns", "runs")
    assert [r.info.status for r in runs] == ["KILLED"]
    result = run(tiny_cfg(*SETTINGS, "train.checkpoint_every=1", loggers), folder)
    assert result["resumed_from_epoch"] == [3]
    assert result["curves"]["train_perplexity"] == clean["curves"]["train_perplexity"]
    client, runs = mlflow_runs(tmp_path / "results" / "mlruns", "runs")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"  # the same MLflow run
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "train_perplexity")]
    assert sorted(steps) == [1, 2, 3, 4, 5]
    assert tensorboard_scalars(folder)["train_perplexity"] == pytest.approx(by_epoch(clean))
    assert csv_curves(folder)["train_perplexity"].to_dict() == by_epoch(clean)
    # W&B: both tries are the one W&B run (its id is the run id), epochs 1-3 then 4-5
    tries = sorted((folder / "wandb").glob("offline-run-*/run-*.wandb"))
    assert tries and {p.stem for p in tries} == {f"run-{result['run_id']}"}
    assert {row["epoch"]: row["train_perplexity"] for row in wandb_history(folder)} == \
        pytest.approx(by_epoch(clean))


@pytest.mark.slow
def test_a_killed_run_resumes_its_trackers_without_duplicate_epochs(tiny_cfg, corpus_dir,
                                                                    tmp_path):
    """kill -9 after epoch 5 was logged but only epoch 4 checkpointed: the resumed run logs
    epoch 5 again; TensorBoard purges the first, the csv keeps one row per epoch."""
    needs("tensorboard")
    folder = tmp_path / "runs" / "killed"
    extra = ["train.num_epochs=40", "train.eval_every=2", "train.checkpoint_every=2",
             "threads=1", "logger=[csv,tensorboard]", f"hydra.run.dir={folder}"]
    argv = [sys.executable, "-m", "runner", *tiny_overrides(corpus_dir), *extra]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wait_for_checkpoint(folder, proc, 4)
    while proc.poll() is None:  # until epoch 5 is in the csv (6 would be checkpointed)
        rows = (folder / "metrics.csv").read_text().splitlines()
        if len(rows) > 5 and rows[5].startswith("5,"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert subprocess.run(argv, cwd=ROOT, capture_output=True).returncode == 0
    result = json.loads((folder / RESULT_FILE).read_text())
    assert result["resumed_from_epoch"] in ([4], [6])  # 6: the kill came after its checkpoint
    table = csv_curves(folder)
    assert list(table.index) == list(range(1, 41))
    assert table["train_perplexity"].to_dict() == by_epoch(result)
    assert tensorboard_scalars(folder)["train_perplexity"] == pytest.approx(by_epoch(result))


# ---- a sweep: every run in both tools


@pytest.mark.slow
def test_a_parallel_sweep_shows_every_run_in_tensorboard_and_mlflow(corpus_dir, tmp_path):
    needs("tensorboard")
    needs("mlflow")
    sweep = tmp_path / "results" / "hidden"
    proc = cli_here("-m", *tiny_overrides(corpus_dir), "model.num_hiddens=8,16,24", "repeats=2",
                    "train.num_epochs=3", "logger=[tensorboard,mlflow]", "launcher=parallel",
                    "launcher.jobs_per_device=2", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr
    results = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob(f"*/{RESULT_FILE}")}
    assert len(results) == 6
    client, runs = mlflow_runs(tmp_path / "results" / "mlruns", "hidden")
    assert sorted(r.data.tags["runner.folder"] for r in runs) == sorted(results)
    # names that differ in MLflow's run list, which shows ~15 characters of each
    assert len({r.info.run_name[:14] for r in runs}) == 6
    for mlrun in runs:
        folder = mlrun.data.tags["runner.folder"]
        result = results[folder]
        assert mlrun.data.tags["runner.run_id"] == result["run_id"]
        assert mlflow_history(client, mlrun.info.run_id, "train_perplexity") == pytest.approx(
            by_epoch(result))
        assert tensorboard_scalars(sweep / folder)["train_perplexity"] == \
            pytest.approx(by_epoch(result))


@pytest.mark.slow
def test_the_sweep_summary_counts_runs_with_logger_errors(corpus_dir, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    sweep = tmp_path / "sweep"
    proc = cli_here("-m", *tiny_overrides(corpus_dir), "seed=0,1", "train.num_epochs=1",
                    "logger=csv", f"logger.csv.file={blocked}/m.csv", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr
    assert "2 runs: 2 completed, 0 failed, 0 diverged, 0 skipped (2 with logger errors: see " \
           "their result.json logger_errors)" in proc.stdout


def test_loggers_are_execution_settings(tiny_cfg, tmp_path):
    """Adding a tracker changes neither the run's identity (resume, the store) nor its folder."""
    from omegaconf import OmegaConf

    from runner.result import run_identity

    plain, tracked = (OmegaConf.to_container(tiny_cfg(*extra), resolve=True)
                      for extra in ([], ["logger=[csv,tensorboard]"]))
    assert tracked["logger"] and run_identity(plain) == run_identity(tracked)
    folder = tmp_path / "r"
    run(tiny_cfg(*SETTINGS), folder)
    assert run(tiny_cfg(*SETTINGS, "logger=csv"), folder).get("skipped")


def test_a_logger_error_is_refused_by_validation_with_the_config(tiny_cfg, tmp_path):
    with pytest.raises(ConfigError, match="logger='neptune' is not allowed"):
        run(tiny_cfg("+logger.neptune.project=x"), tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_every_logger_option_is_an_execution_setting():
    """Every option of every conf/logger/ file is left out of the run's identity and, given on
    the command line, of its sweep folder's name (Hydra's exclude_keys match exact keys: the
    sweeper gives each job the keys of its overrides under runner/result.py EXECUTION_KEYS)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from runner.hydra_private import job_folder
    from runner.sweep.sweeper import exclude_keys
    from tests.helpers import compose_config

    naming = compose_config(hydra_node=True).hydra.job.config.override_dirname
    files = sorted((CONF / "logger").glob("*.yaml"))
    options = [f"logger.{name}.{key}" for path in files
               for name, node in logger_node(path.stem).items() for key in node]
    assert {o.split(".")[1] for o in options} == {p.stem for p in files} - {"none"}
    for key in options:
        assert is_execution_key(key), key
        job = OverridesParser.create().parse_overrides(["seed=1", f"{key}=x"])
        assert key in exclude_keys(job, naming)
        assert job_folder(job, exclude_keys(job, naming), naming) == "seed=1", key


@pytest.mark.slow
def test_every_tracker_shows_an_epoch_while_the_run_goes_on(tmp_path):
    """Live: an epoch's figures are readable in each store before the run ends (close)."""
    needs("tensorboard")
    needs("mlflow")
    import time

    folder = tmp_path / "results" / "hidden" / "seed=0"
    folder.mkdir(parents=True)
    loggers = Loggers(logger_node("csv", "tensorboard", "mlflow"))
    loggers.start(RunInfo(folder=folder, run_id="a" * 12, name=folder.name, group="hidden",
                          params={"model.num_hiddens": 16}, tags={"run_id": "a" * 12},
                          first_epoch=1))
    loggers.epoch(1, {"train_perplexity": 7.5, "tokens_per_sec": 1000.0, "lr": 1.0})

    def seen() -> dict:
        found = {}
        if (folder / "metrics.csv").exists() and (folder / "metrics.csv").stat().st_size:
            found["csv"] = csv_curves(folder)["train_perplexity"].to_dict()
        if (folder / "tensorboard").exists():
            found["tensorboard"] = tensorboard_scalars(folder).get("train_perplexity")
        if (tmp_path / "results" / "mlruns" / "mlflow.db").exists():
            client, runs = mlflow_runs(tmp_path / "results" / "mlruns", "hidden")
            if runs:
                found["mlflow"] = mlflow_history(client, runs[0].info.run_id,
                                                 "train_perplexity") or None
        return {k: v for k, v in found.items() if v}

    for _ in range(300):  # a hang guard only: ~30 s
        if len(seen()) == 3:
            break
        time.sleep(0.1)
    assert seen() == {"csv": {1: 7.5}, "tensorboard": {1: 7.5}, "mlflow": {1: 7.5}}
    assert loggers.close() == []
