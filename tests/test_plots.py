"""The figures: asserted on the matplotlib objects (line data, scales, labels), not on pixels."""
import math
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer

from runner.report.plots import (
    FAILED,
    curves_figure,
    dual_axis_figure,
    metric_figure,
    save,
    write_plots,
)
from runner.report.runs import swept_params, tidy
from runner.report.tables import summarize

METRICS = ("train_perplexity", "val_perplexity", "tokens_per_sec")


def make_runs(points: dict, statuses: dict | None = None) -> pd.DataFrame:
    """Runs by hand: points maps a config tuple (a dict's items) to a list of train perplexities,
    one per seed; val is ppl + 1 and tokens/sec 1000 / ppl. statuses: {(point, seed): status}."""
    rows = []
    for point, ppls in points.items():
        for seed, ppl in enumerate(ppls):
            status = (statuses or {}).get((point, seed), "completed")
            done = status == "completed"
            rows.append({**dict(point), "seed": seed, "status": status,
                         "train_perplexity": ppl if done else None,
                         "val_perplexity": ppl + 1 if done else None,
                         "tokens_per_sec": 1000 / ppl if done else None})
    return pd.DataFrame(rows)


def errorbars(ax) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def half_heights(container) -> list[float]:
    """Half of each point's vertical bar; NaN where no bar is drawn (NaN ci95: an empty segment)."""
    segments = container.lines[2][0].get_segments()  # one vertical segment per point
    return [(s[1][1] - s[0][1]) / 2 if len(s) else math.nan for s in segments]


def sizes_summary(statuses=None):
    key = "model.num_hiddens"
    points = {((key, 256),): [3.0, 3.5, 4.0], ((key, 32),): [9.0, 8.0, 10.0],
              ((key, 1024),): [2.0, 2.2, 2.1], ((key, 64),): [6.0, 6.5, 7.0]}
    runs = make_runs(points, statuses)
    return runs, summarize(runs, [key])


def test_metric_figure_plots_means_and_ci95_in_factor_order_on_log2_axis():
    _, summary = sizes_summary()
    ax = metric_figure(summary, "model.num_hiddens", "train_perplexity").axes[0]
    (bars,) = errorbars(ax)
    expected = summary.sort_values("model.num_hiddens")
    assert list(bars.lines[0].get_xdata()) == [32, 64, 256, 1024]
    assert np.allclose(bars.lines[0].get_ydata(), expected["train_perplexity_mean"])
    assert np.allclose(half_heights(bars), expected["train_perplexity_ci95"])
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    assert [t.get_text() for t in ax.get_xticklabels()] == ["32", "64", "256", "1024"]
    assert ax.get_ylabel() == "training perplexity (per epoch, last epoch)"
    assert ax.get_legend() is None  # one line: nothing to tell apart


def test_categorical_factor_gets_evenly_spaced_labelled_ticks_and_no_bar_for_one_run():
    key = "data.sampling"
    runs = make_runs({((key, "sequential"),): [4.0, 5.0], ((key, "random"),): [6.0]})
    ax = metric_figure(summarize(runs, [key]), key, "val_perplexity").axes[0]
    assert ax.get_xscale() == "linear"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["random", "sequential"]
    (bars,) = errorbars(ax)
    assert list(bars.lines[0].get_xdata()) == [0, 1]
    assert list(bars.lines[0].get_ydata()) == [7.0, 5.5]
    random, sequential = half_heights(bars)
    assert math.isnan(random)  # a single run has no CI: no bar
    assert sequential == pytest.approx(12.706205 * 0.5)  # t(1 dof) * std 0.707 / sqrt(2)
    assert ax.get_ylabel() == "held-out perplexity"


def test_one_line_per_model_with_the_models_as_legend():
    points = {(("model.cell", cell), ("model.num_hiddens", h)): [base * h / 32, base * h / 16]
              for cell, base in (("rnn", 1.0), ("lstm", 2.0), ("gru", 3.0)) for h in (32, 128)}
    summary = summarize(make_runs(points), ["model.cell", "model.num_hiddens"])
    ax = metric_figure(summary, "model.num_hiddens", "tokens_per_sec", "model.cell").axes[0]
    bars = errorbars(ax)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["gru", "lstm", "rnn"]
    for container, cell in zip(bars, ["gru", "lstm", "rnn"]):
        rows = summary[summary["model.cell"] == cell].sort_values("model.num_hiddens")
        assert list(container.lines[0].get_xdata()) == [32, 128]
        assert np.allclose(container.lines[0].get_ydata(), rows["tokens_per_sec_mean"])
    assert ax.get_ylabel() == "tokens/sec (training)"


def test_a_point_without_completed_runs_is_a_failure_marker_not_a_number():
    key = "model.num_hiddens"
    lost = ((key, 1024),)
    partly = ((key, 64),)
    statuses = {(lost, 0): "diverged", (lost, 1): "failed", (lost, 2): "diverged",
                (partly, 2): "failed"}
    _, summary = sizes_summary(statuses)
    ax = metric_figure(summary, key, "train_perplexity").axes[0]
    (bars,) = errorbars(ax)
    assert list(bars.lines[0].get_xdata()) == [32, 64, 256]
    assert bars.lines[0].get_ydata()[1] == pytest.approx(6.25)  # the 2 completed runs' mean
    (marker,) = [line for line in ax.lines if line.get_label() == FAILED]
    assert marker.get_marker() == "x" and list(marker.get_xdata()) == [1024]
    assert FAILED in [t.get_text() for t in ax.get_legend().get_texts()]


def test_reference_is_a_dashed_grey_line_per_series():
    _, summary = sizes_summary()
    reference = pd.concat([  # as runner.report.reference.reference_series gives them, stacked
        pd.DataFrame({"value": ["64", "32.0", 256, 2048], "series": ["gru"] * 4,
                      "train_perplexity": [6.1, 8.8, 3.2, 1.0]}),
        pd.DataFrame({"value": [1024], "series": ["gru"], "tokens_per_sec": [5e4]})])
    ax = metric_figure(summary, "model.num_hiddens", "train_perplexity",
                       reference=reference).axes[0]
    (ref,) = [line for line in ax.lines if line.get_label() == "gru (the study)"]
    assert ref.get_linestyle() == "--" and ref.get_color() == "grey"
    assert list(ref.get_xdata()) == [32, 64, 256]  # 2048 was not swept: no tick for it
    assert list(ref.get_ydata()) == [8.8, 6.1, 3.2]


def test_dual_axis_figure_has_perplexity_left_and_tokens_per_sec_right():
    _, summary = sizes_summary()
    fig = dual_axis_figure(summary, "model.num_hiddens")
    left, right = fig.axes
    expected = summary.sort_values("model.num_hiddens")
    (ppl,), (tps,) = errorbars(left), errorbars(right)
    assert np.allclose(ppl.lines[0].get_ydata(), expected["train_perplexity_mean"])
    assert np.allclose(tps.lines[0].get_ydata(), expected["tokens_per_sec_mean"])
    assert np.allclose(half_heights(tps), expected["tokens_per_sec_ci95"])
    assert right.get_xscale() == "log"
    assert "perplexity" in left.get_ylabel() and "tokens/sec" in right.get_ylabel()


def make_result(status, cell, seed, ppl, epochs=(1, 2, 3)) -> dict:
    return {"run_id": f"{cell}{seed}{status}", "status": status, "sees_future": False,
            "config": {"model": {"cell": cell, "num_hiddens": 32}, "seed": seed},
            "metrics": {"train_perplexity": ppl[-1] if status == "completed" else None,
                        "val_perplexity": ppl[-1] + 1 if status == "completed" else None,
                        "tokens_per_sec": 1000.0},
            "curves": {"epoch": list(epochs), "train_perplexity": list(ppl)},
            "environment": {}}


def test_curves_figure_means_completed_seeds_per_epoch():
    results = [make_result("completed", "gru", 0, [20.0, 10.0, 5.0]),
               make_result("completed", "gru", 1, [22.0, 12.0, 7.0]),
               make_result("diverged", "gru", 2, [25.0, None], epochs=(1, 2)),
               make_result("completed", "rnn", 0, [30.0, 20.0, 15.0]),
               make_result("completed", "rnn", 1, [18.0, 13.0], epochs=(2, 3)),
               make_result("failed", "rnn", 2, [], epochs=())]
    ax = curves_figure(results, ["model.cell"]).axes[0]
    gru, rnn = ax.lines
    assert gru.get_label() == "gru (n=2)" and rnn.get_label() == "rnn (n=2)"
    assert list(gru.get_xdata()) == [1, 2, 3]
    assert list(gru.get_ydata()) == [21.0, 11.0, 6.0]
    assert list(rnn.get_ydata()) == [30.0, 19.0, 14.0]  # aligned on the epoch number
    assert len(ax.collections) == 2  # a min..max band per line
    assert "1 diverged, 1 failed" in ax.get_title() and "min..max" in ax.get_title()


def write_sweep(tmp_path, results, reference=None):
    runs = tidy(results)
    by = swept_params(runs)
    return by, write_plots(tmp_path, results, runs, summarize(runs, by), by, reference)


def assert_valid(paths, folder, names):
    assert sorted(p.name for p in paths) == sorted(f"{n}.{s}" for n in names for s in ("png",
                                                                                      "svg"))
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths)  # no temps
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        else:
            assert ET.parse(p).getroot().tag.endswith("svg")


def test_write_plots_writes_every_figure_of_a_model_sweep(tmp_path):
    results = [make_result("completed", cell, seed, [9.0 - seed, 5.0 + seed, 4.0 + i])
               for i, cell in enumerate(["rnn", "gru"]) for seed in range(2)]
    results[0]["config"]["model"]["num_hiddens"] = 64  # sweep model x num_hiddens
    reference = pd.DataFrame({"value": [32], "series": ["gru"], "train_perplexity": [4.5]})
    by, paths = write_sweep(tmp_path, results, reference)
    assert by == ["model.cell", "model.num_hiddens"]
    assert_valid(paths, tmp_path, [*(f"plot_{m}" for m in METRICS), "plot_curves",
                                   "plot_perplexity_vs_tokens_per_sec"])


def test_write_plots_without_a_factor_draws_only_the_curves(tmp_path):
    results = [make_result("completed", "gru", seed, [9.0, 5.0, 4.0 + seed]) for seed in (0, 1)]
    by, paths = write_sweep(tmp_path, results)
    assert by == []
    assert_valid(paths, tmp_path, ["plot_curves"])


def test_save_leaves_no_temp_file_and_the_old_file_when_drawing_fails(tmp_path):
    _, summary = sizes_summary()
    fig = metric_figure(summary, "model.num_hiddens", "train_perplexity")
    (tmp_path / "plot.png").write_bytes(b"old")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    fig.savefig = broken
    with pytest.raises(RuntimeError):
        save(fig, tmp_path / "plot")
    assert [p.name for p in tmp_path.iterdir()] == ["plot.png"]
    assert (tmp_path / "plot.png").read_bytes() == b"old"


def test_a_folder_mixing_tasks_draws_one_line_per_task_never_one_across_them(tmp_path,
                                                                              monkeypatch):
    import runner.report.plots as plots

    by = ["task", "model.num_hiddens"]  # as runner.report keys a mixed folder
    runs = make_runs({(("task", t), ("model.num_hiddens", h)): [2.0, 3.0]
                      for t in ("language_model", "translation") for h in (32, 64)})
    drawn, real = [], plots.metric_figure

    def metric_figure(summary, factor, metric, series=None, reference=None, runs=None):
        drawn.append((factor, series))
        return real(summary, factor, metric, series, reference, runs)

    monkeypatch.setattr(plots, "metric_figure", metric_figure)
    monkeypatch.setattr(plots, "curves_figure", lambda results, by: plots.Figure())
    write_plots(tmp_path, [], runs, summarize(runs, by), by)
    assert set(drawn) == {("model.num_hiddens", "task")}


def test_saved_figures_are_readable_by_everyone_like_every_other_report_file(tmp_path):
    _, summary = sizes_summary()
    paths = save(metric_figure(summary, "model.num_hiddens", "train_perplexity"),
                 tmp_path / "plot")
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in paths)
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
