"""Figures of a sweep, drawn from the tables runner.report builds.

    metric_figure      one metric's mean over completed runs against the swept factor, 95% CI bars
    dual_axis_figure   training perplexity (left) and tokens/sec (right): the study's Figure 23
    curves_figure      (curves.py) training perplexity per epoch, mean over seeds, min..max band
    write_plots        the figures a sweep folder gets, as plot_*.png and plot_*.svg

Figures are matplotlib.figure.Figure objects, never pyplot: no global state and no GUI backend,
so drawing works the same in a sweep's process, a test or a headless cluster node, and a figure
is freed like any object. Only save() and write_plots() touch the disk.
"""
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

from runner.report.curves import curves_figure
from runner.report.note import TRAINED_MSE
from runner.report.runs import label
from runner.report.runs import order as _order
from runner.result import flatten, write_bytes_atomic

LABELS = {"train_perplexity": "training perplexity (per epoch, last epoch)",
          "val_perplexity": "held-out perplexity", "tokens_per_sec": "tokens/sec (training)",
          "bleu": "BLEU", "mse": "MSE (the note's: train mode, after training)",
          "eval_mode_mse": "MSE (eval mode, after training)"}
# Knobs the study sweeps in doublings: their points are evenly spaced on a log2 axis only.
SIZE_KNOBS = ("num_hiddens", "batch_size", "num_steps", "num_epochs")
FAILED = "failed/diverged (no completed run)"
# Colour families of the curves' points: the first four match C0..C3, the series colours of the
# metric figures, so a model has the same hue in every figure of a sweep.
CI_NOTE = "mean over completed runs, bars: 95% CI (Student's t)"
# Bimodal metrics (the note's MSE): every run is drawn too, as their mean may sit where none is
EVERY_RUN = ("mse", "eval_mode_mse")
# A metric whose values span more than this factor gets a log y axis: tokens/sec over
# num_hiddens 32..1024 spans 80x, and on a linear axis every point but the fastest sits flat.
LOG_SPAN = 10


def _number(value) -> bool:
    return (isinstance(value, int | float | np.integer | np.floating)
            and not isinstance(value, bool) and math.isfinite(value))


def _key(value) -> str:
    """What places a value on the axis: its label, numeric text read as a number, so that the
    study's "0.5" or "32.0" lands on our 0.5 or 32."""
    if isinstance(value, str):
        try:
            return label(float(value))
        except ValueError:
            pass
    return label(value)


def _x_axis(ax, values: pd.Series, factor: str) -> dict[str, float]:
    """Lay the factor's values out on ax's x axis; returns label -> x position. Size knobs (or
    any positive numbers spanning 8x or more) go on a log2 axis, other numbers on a linear one,
    anything else (sampling schemes, init names, null) on evenly spaced, labelled ticks."""
    levels = sorted(pd.unique(values), key=_order)
    labels = [label(v) for v in levels]
    if all(_number(v) for v in levels):
        xs = [float(v) for v in levels]
        if min(xs) > 0 and (factor.rsplit(".", 1)[-1] in SIZE_KNOBS or max(xs) / min(xs) >= 8):
            ax.set_xscale("log", base=2)
    else:
        xs = list(range(len(levels)))
        ax.set_xlim(-0.5, len(levels) - 0.5)
    ax.set_xticks(xs, labels)  # a tick per point, labelled as the override spells it
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.minorticks_off()
    ax.set_xlabel(factor)
    return dict(zip(map(_key, levels), xs))


def _lines(table: pd.DataFrame, column: str | None) -> list[tuple]:
    """(value, rows) per line: one per value of `column` in sorted order, or one for all rows."""
    if column is None:
        return [(None, table)]
    keys = sorted(pd.unique(table[column]), key=_order)
    return [(k, table[table[column].map(_key) == _key(k)]) for k in keys]


def _draw_metric(ax, summary, factor, metric, series, pos, fmt="o-", suffix="", first_color=0,
                 mark_lost=True) -> None:
    """Mean ± ci95 against x, one line per series value. A point whose runs all failed or
    diverged (n == 0) has no mean: it gets an "x" at the axis bottom rather than a number, and
    the line joins its neighbours; a point with some failures plots its completed runs' mean."""
    lost_labelled = False
    for i, (key, rows) in enumerate(_lines(summary, series)):
        color = f"C{(i + first_color) % 10}"
        rows = rows.assign(_x=[pos[_key(v)] for v in rows[factor]]).sort_values("_x")
        done = rows[(rows["n"] > 0) & rows[f"{metric}_mean"].notna()]
        name = ", ".join(p for p in (None if key is None else label(key), suffix) if p)
        if len(done):  # a NaN ci95 (one run) draws no bar
            ax.errorbar(done["_x"], done[f"{metric}_mean"], yerr=done[f"{metric}_ci95"], fmt=fmt,
                        color=color, capsize=3, label=name or "mean of completed runs")
        lost = rows[rows["n"] == 0]
        if mark_lost and len(lost):
            # x in data, y in axes coordinates: stays at the bottom whatever the y range.
            ax.plot(lost["_x"], [0.03] * len(lost), "x", color=color, ms=9, mew=2,
                    transform=ax.get_xaxis_transform(), clip_on=False,
                    label="_nolegend_" if lost_labelled else FAILED)
            lost_labelled = True


def _legend(ax, *more_axes) -> None:
    """One legend for ax and its twins, the failure marker last; none for a lone line. Beyond 6
    entries it goes below the axes, where it cannot hide the data."""
    pairs = [pair for a in (ax, *more_axes) for pair in zip(*a.get_legend_handles_labels())]
    pairs.sort(key=lambda pair: pair[1] == FAILED)  # stable: the rest keep their order
    if len(pairs) > 6:
        ax.figure.legend(*zip(*pairs), loc="outside lower center", ncol=3, fontsize=8)
    elif len(pairs) > 1:
        ax.legend(*zip(*pairs), fontsize=8)


def _y_axis(ax, metric: str, values=()) -> None:
    """Label the y axis; a log one when the positive `values` drawn span over LOG_SPAN times,
    ticked at 1, 2 and 5 times powers of ten, so that at least three ticks carry numbers."""
    ax.set_ylabel(LABELS.get(metric, metric))
    values = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").dropna()
    if len(values) and values.min() > 0 and values.max() / values.min() > LOG_SPAN:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    if metric == "tokens_per_sec":  # 400,000 reads faster than 400000 or 4e5
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))


def _drawn(summary: pd.DataFrame, metric: str, reference=None) -> list:
    """The values a metric figure draws: the points' means and the study's numbers."""
    done = summary.loc[summary["n"] > 0, f"{metric}_mean"].tolist()
    if reference is not None and metric in reference.columns:
        done += reference[metric].dropna().tolist()
    return done


def metric_figure(summary: pd.DataFrame, factor: str, metric: str, series: str | None = None,
                  reference: pd.DataFrame | None = None, runs=None) -> Figure:
    """`metric`'s mean against `factor` with 95% CI bars, a line per value of `series`.

    `reference`, optional: the study's numbers as a long table with columns "value" (a value of
    `factor`), "series" (a value of `series`; leave it out, or null, for one line) and one column
    named `metric` (runner.report.reference.reference_series's answer; tables of several metrics may
    be stacked, a row counting for the metrics it has a number for). Each series is drawn dashed
    grey, labelled "<series> (the study)"; values not among the factor's points are left out,
    and a value matches as a number where it reads as one ("32" is 32). `runs` (runs.csv's
    table), for a metric of EVERY_RUN: each completed run as a dot too, and the trained line.
    """
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    pos = _x_axis(ax, summary[factor], factor)
    _draw_metric(ax, summary, factor, metric, series, pos)
    if each := runs is not None and metric in EVERY_RUN:
        done = runs[runs["status"] == "completed"]
        for i, (_, rows) in enumerate(_lines(done, series)):  # in the series' colours
            ax.plot([pos[_key(v)] for v in rows[factor]], pd.to_numeric(rows[metric]), ".",
                    color=f"C{i % 10}", alpha=0.6, ms=7, label="_nolegend_")
        ax.axhline(TRAINED_MSE, color="grey", linestyle=":", linewidth=1,
                   label=f"trained below {TRAINED_MSE:g} (runner/report/note.py)")
    if reference is not None and metric in reference.columns:
        ref = reference[reference["value"].map(_key).isin(pos) & reference[metric].notna()]
        groups = _lines(ref, "series" if "series" in ref.columns else None)
        for marker, (key, rows) in zip("svD^<>p*h+", groups):
            rows = rows.assign(_x=[pos[_key(v)] for v in rows["value"]]).sort_values("_x")
            unnamed = key is None or label(key) == "null"
            name = "the study" if unnamed else f"{label(key)} (the study)"
            ax.plot(rows["_x"], rows[metric], linestyle="--", marker=marker, color="grey",
                    alpha=0.8, label=name)
        drawn = _drawn(summary, metric, ref)
    else:
        drawn = _drawn(summary, metric)
    if each:
        drawn += pd.to_numeric(done[metric], errors="coerce").tolist()
    _y_axis(ax, metric, drawn)
    ax.set_title(CI_NOTE + ("; dots: each completed run" if each else ""), fontsize=9)
    _legend(ax)
    return fig


def dual_axis_figure(summary: pd.DataFrame, factor: str, series: str | None = None) -> Figure:
    """Training perplexity (left axis, solid) and tokens/sec (right axis, dashed) against
    `factor`, both mean ± 95% CI: the study's Figure 23, the price of a knob in speed."""
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    pos = _x_axis(ax, summary[factor], factor)
    right = ax.twinx()  # shares x, scale included
    _draw_metric(ax, summary, factor, "train_perplexity", series, pos, "o-", "perplexity")
    # A series keeps its colour on both axes (style tells the metrics apart); a lone pair of
    # lines gets two colours as well. The "x" of a lost point is on the left axis already.
    _draw_metric(right, summary, factor, "tokens_per_sec", series, pos, "s--", "tokens/sec",
                 first_color=1 if series is None else 0, mark_lost=False)
    _y_axis(ax, "train_perplexity", _drawn(summary, "train_perplexity"))
    _y_axis(right, "tokens_per_sec", _drawn(summary, "tokens_per_sec"))
    ax.set_title(CI_NOTE, fontsize=9)
    _legend(ax, right)
    return fig


def sweep_title(folder: Path, results: list[dict]) -> str:
    """"sweep NAME; model CELL" (or "models A, B"): the runs' sweep_name when they share one,
    else the folder's name (a sweep's folder is results/<sweep_name>)."""
    configs = [flatten(r["config"]) for r in results]
    names = {c.get("sweep_name") for c in configs} - {None}
    cells = sorted({c.get("model.cell") for c in configs} - {None}, key=_order)
    sweep = names.pop() if len(names) == 1 else Path(folder).name
    models = f"; model{'s' * (len(cells) > 1)} {', '.join(map(label, cells))}" if cells else ""
    return f"sweep {sweep}{models}"


def save(fig: Figure, path_without_suffix: Path) -> list[Path]:
    """Write `fig` as PNG (dpi 120) and SVG, each atomically (runner.result.write_bytes_atomic):
    a reader, or a crash at any moment, sees the old file or the new one."""
    base = Path(path_without_suffix)
    written = []
    for fmt in ("png", "svg"):
        path = base.with_name(f"{base.name}.{fmt}")  # with_suffix would eat a dotted name
        buffer = io.BytesIO()
        # No date in the SVG: the same figure gives the same bytes.
        fig.savefig(buffer, format=fmt, dpi=120, metadata={"Date": None} if fmt == "svg"
                    else None)
        write_bytes_atomic(path, buffer.getvalue())
        written.append(path)
    return written


def write_plots(folder: Path, results: list[dict], runs: pd.DataFrame, summary: pd.DataFrame,
                by: list[str], reference: pd.DataFrame | None = None,
                title: str | None = None) -> list[Path]:
    """The figures of a sweep, in `folder`: plot_<metric> for every metric with a value in
    `runs` (train_perplexity, val_perplexity, tokens_per_sec, bleu), plot_perplexity_vs_tokens_
    per_sec, and plot_curves; each as .png and .svg. The factor (x axis) is the swept key other
    than model.cell (or task: a folder mixing tasks), and model.cell (or task), when swept, the
    series, so that no line joins two tasks' perplexities; of two other keys, the one with
    more values is the factor. Nothing swept, or more than two keys: plot_curves only.
    `reference`: see metric_figure. `title` (sweep_title's): every figure's title, so that a
    PNG sent alone still says which sweep and model it shows. Returns the paths written."""
    folder = Path(folder)
    written = []

    def titled(fig: Figure) -> Figure:
        if title:
            fig.suptitle(title, fontsize=10)
        return fig

    if 1 <= len(by) <= 2:
        keys = sorted(by, key=lambda k: (k in ("model.cell", "task"),
                                         -summary[k].nunique(dropna=False)))
        factor, series = keys[0], (keys[1] if len(keys) == 2 else None)
        metrics = [m for m in LABELS if m in runs.columns and f"{m}_mean" in summary.columns
                   and pd.to_numeric(runs[m], errors="coerce").notna().any()]
        for m in metrics:
            fig = metric_figure(summary, factor, m, series, reference, runs)
            written += save(titled(fig), folder / f"plot_{m}")
        if {"train_perplexity", "tokens_per_sec"} <= set(metrics):
            written += save(titled(dual_axis_figure(summary, factor, series)),
                            folder / "plot_perplexity_vs_tokens_per_sec")
    written += save(titled(curves_figure(results, by)), folder / "plot_curves")
    return written
