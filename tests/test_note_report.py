"""The report of the companion note's tables (data.task=regression): its rows matched to the
note's, the trained fraction, mean ± std and each seed, and the findings judged on fractions."""
import copy
import uuid
from functools import cache

import pytest
from omegaconf import OmegaConf

from runner.report import write_report
from runner.report.note import note_rows
from runner.result import flatten, validate_result, write_json_atomic
from tests.helpers import compose_config, tables_in


@cache
def _config() -> dict:
    cfg = OmegaConf.to_container(compose_config("data=synthetic"), resolve=True)
    return {**cfg, "sweep_name": "test"}


def regression_result(mse, seed=0, status="completed", **keys) -> dict:
    """A schema-valid regression result; `keys` set dotted config keys."""
    cfg = copy.deepcopy(_config())
    for key, value in {"seed": seed, **keys}.items():
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    metrics = {"train_mse": mse, "best_train_mse": mse, "val_perplexity": None,
               "best_val_perplexity": None, "tokens_per_sec": 900.0,
               "tokens_per_sec_epoch_median": 900.0, "train_tokens": 160000,
               "train_seconds": 200.0, "train_cpu_seconds": 200.0, "wall_seconds": 330.0,
               "epochs_done": 10, "val_tokens_scored": None, "diverged_epoch": None,
               "num_params": 7929138, "peak_memory_bytes": 1,
               "peak_memory_kind": "process_peak_rss"}
    if status == "completed":
        metrics |= {"mse": mse, "eval_mode_mse": mse / 2, "eval_batches": 1000}
    result = {
        "schema_version": 2, "run_id": uuid.uuid4().hex[:12], "task": "regression",
        "status": status, "config": cfg,
        "dataset": {"name": "synthetic regression", "sha1": None, "draw": "...",
                    "shape": [16, 10, 50], "eval_batches": 1000},
        "sees_future": False,
        "environment": {"python": "3.11", "torch": "2.13.0", "device": "cpu",
                        "device_name": "cpu", "cpu_count": 2, "threads": 1,
                        "concurrent_jobs": 2, "git_commit": None, "git_dirty": None,
                        "git_diff_sha1": None, "load_avg_start": 2.0, "load_avg_end": 2.0},
        "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:05:00+00:00",
        "metrics": metrics,
        "curves": {"epoch": [1], "train_mse": [mse], "tokens_per_sec": [900.0],
                   "train_seconds": [20.0], "train_tokens": [16000], "lr": [0.001],
                   "val_epoch": [], "val_perplexity": []},
    }
    if status == "failed":
        result["error"] = {"type": "RuntimeError", "message": "boom", "traceback_tail": []}
    validate_result(result)
    return result


def write(folder, results):
    for i, r in enumerate(results):
        write_json_atomic(folder / str(i) / "result.json", r)
    return folder


def lr_table_runs():
    """The note's lr table at 3 seeds: lr 1e-3 stuck without warm-up (3.5), trained in 2 of
    3 seeds with it; lr 1e-4 trained; lr 1e-5 partly (2.3, never below 1)."""
    rows = {(0.001, 0.0): [3.5, 3.49, 3.51], (0.001, 0.01): [0.13, 3.5, 0.16],
            (0.0001, 0.0): [0.5, 0.6, 0.55], (0.00001, 0.0): [2.3, 2.2, 2.4]}
    return [regression_result(m, seed=s, **{"optim.lr": lr, "train.warmup": w})
            for (lr, w), values in rows.items() for s, m in enumerate(values)]


def test_the_lr_table_has_the_notes_rows_and_figures(tmp_path):
    write_report(write(tmp_path, lr_table_runs()))
    [table] = tables_in((tmp_path / "summary.md").read_text())
    rows = {r[0]: r for r in table[1:]}
    warm = rows["lr 1e-3, 1% warm-up (train.warmup=0.01, optim.lr=0.001)"]
    assert warm[1:] == ["3", "2 of 3", "1.263 ± 1.937", "0.130, 3.500, 0.160", "0.632 ± 0.969"]
    assert rows["lr 1e-3, 1% warm-up (the note, lr table)"][3] == "0.10"  # as published
    assert rows["lr 1e-3, no warm-up (the note, lr table)"][3] == "3.37"
    assert rows["lr 1e-5, no warm-up (train.warmup=0, optim.lr=1e-05)"][2] == "0 of 3"
    assert rows["lr 1e-4, no warm-up (train.warmup=0, optim.lr=0.0001)"][2] == "3 of 3"
    # the note's order, each point with the note's row under it
    assert [r[0].split(" (")[0] for r in table[1::2]] == [
        "lr 1e-3, no warm-up", "lr 1e-4, no warm-up", "lr 1e-5, no warm-up",
        "lr 1e-3, 1% warm-up"]
    assert len(table) == 1 + 8


def test_warm_up_verdict_goes_by_the_trained_fraction(tmp_path):
    write_report(write(tmp_path, lr_table_runs()))
    page = (tmp_path / "report.md").read_text()
    finding = next(line for line in page.splitlines() if "Warm-up rescues" in line)
    # the warm-up point's mean (1.26) mixes the modes; 2 of 3 seeds trained: it trains
    assert "holds: without warm-up the model does not train, with it it does" in finding
    assert "warm-up 0: 0 of 3 trained, MSE 3.50 ± 0.01" in finding
    assert "warm-up 0.01: 2 of 3 trained, MSE 1.26 ± 1.94" in finding
    assert "most of its runs reach an MSE below 1" in page


def test_init_verdict_names_where_the_note_disagrees(tmp_path):
    runs = [regression_result(m, seed=s, **{"train.warmup": 0.01, **keys})
            for keys, values in [
                ({"init.scheme": "default"}, [0.1, 0.12, 0.11]),
                ({"init.scheme": "kaiming_normal", "init.nonlinearity": "leaky_relu",
                  "init.a": 0.0, "init.mode": "fan_in"}, [0.2, 0.3, 3.5]),  # the note: 3.50
                ({"init.scheme": "uniform", "init.a": 0.001}, [3.5, 3.5, 3.4])]
            for s, m in enumerate(values)]
    write_report(write(tmp_path, runs))
    page = (tmp_path / "report.md").read_text()
    finding = next(line for line in page.splitlines() if "Several initialisations" in line)
    assert "does not hold: 1 of 3 settings fail to train (uniform ±0.001)" in finding
    assert "best first: PyTorch default: 3 of 3 trained, MSE 0.11 ± 0.01; kaiming_normal: " \
        "2 of 3 trained" in finding
    assert "disagree on 1: kaiming_normal (the note 3.50, ours 2 of 3 trained" in finding
    [table] = tables_in((tmp_path / "summary.md").read_text())
    assert ["kaiming_normal (the note, init table)", "1", "", "3.50", "", ""] in table


def test_a_shorter_run_is_named_but_not_compared(tmp_path):
    runs = [regression_result(0.3, seed=s, **{"data.steps_per_epoch": 10,
                                              "optim.lr": lr}) for s in (0, 1)
            for lr in (0.001, 0.0001)]
    write_report(write(tmp_path, runs))
    text = (tmp_path / "summary.md").read_text()
    assert "3.37 (1,000 steps; ours fewer)" in text
    assert "not comparable" in text


def test_a_setting_two_tables_share_takes_the_table_of_the_folder():
    """The lr table's warm-up row is the init table's default row: the name follows the
    table that matches most of the folder's points."""
    base = flatten(_config())
    default = {**base, "train.warmup": 0.01}
    lr_folder = [default, {**base, "optim.lr": 0.0001}]
    init_folder = [default, {**default, "init.scheme": "xavier_uniform", "init.gain": 1.0}]
    assert note_rows(lr_folder)[0]["row"] == "lr 1e-3, 1% warm-up"
    assert note_rows(init_folder)[0]["row"] == "PyTorch default"
    assert note_rows([{**base, "model.num_layers": 3}]) == [None]


@pytest.mark.parametrize("status", ["failed"])
def test_failed_runs_are_counted_not_averaged(tmp_path, status):
    runs = [regression_result(0.1, seed=0), regression_result(0.2, seed=1),
            regression_result(9.0, seed=2, status=status)]
    write_report(write(tmp_path, runs))
    [table] = tables_in((tmp_path / "summary.md").read_text())
    assert table[1][1:4] == ["2 (+1 failed)", "2 of 2", "0.150 ± 0.071"]


def test_the_mse_plot_draws_every_run_and_the_trained_line(tmp_path):
    from runner.report.plots import metric_figure
    from runner.report.runs import tidy
    from runner.report.tables import summarize
    runs = tidy(lr_table_runs())
    by = ["optim.lr", "train.warmup"]
    fig = metric_figure(summarize(runs, by), "optim.lr", "mse", "train.warmup", runs=runs)
    ax = fig.axes[0]
    dots = [y for line in ax.lines if line.get_marker() == "." for y in line.get_ydata()]
    assert sorted(dots) == sorted(runs["mse"])  # all 12 runs, each once
    assert any(list(line.get_ydata()) == [1.0, 1.0] for line in ax.lines)  # trained below 1
    write_report(write(tmp_path, lr_table_runs()))
    assert (tmp_path / "plot_mse.png").exists() and (tmp_path / "plot_eval_mode_mse.svg").exists()
