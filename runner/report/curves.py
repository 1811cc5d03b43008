"""The training curves of a sweep: per epoch, a line per point, the mean over its seeds with
a band from their min to max (plots.write_plots saves it as plot_curves)."""
import math
from collections import Counter

import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter, StrMethodFormatter

from runner.report.runs import label
from runner.report.runs import order as _order
from runner.result import flatten

FAMILIES = ["Blues", "Oranges", "Greens", "Reds", "Purples", "Greys"]


def curves_figure(results: list[dict], by: list[str]) -> Figure:
    """Training perplexity (a regression's MSE) per epoch of completed runs, a line per point
    (the `by` keys of each result's config): the mean over seeds epoch by epoch, with a band
    from the seeds' min to max. Diverged, failed and interrupted runs are left out (their
    curves stop early) and counted in the title."""
    groups, left_out = {}, Counter()
    for r in results:
        if r["status"] != "completed":
            left_out[r["status"]] += 1
            continue
        values = r["curves"].get("train_perplexity", r["curves"].get("train_mse", []))
        curve = pd.Series([math.nan if v is None else v for v in values],
                          index=r["curves"]["epoch"], dtype=float)
        config = flatten(r["config"])
        groups.setdefault(tuple(config.get(k) for k in by), []).append(curve)
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    extent = []  # every seed's lowest and highest perplexity, to choose the y scale
    keys = sorted(groups, key=lambda k: [_order(v) for v in k])
    for key, color in zip(keys, _curve_colors(keys, by)):
        table = pd.concat(groups[key], axis=1).sort_index()  # a column per seed, by epoch
        if len(by) == 1:
            name = label(key[0])
        else:
            name = ", ".join(f"{k.rsplit('.', 1)[-1]}={label(v)}" for k, v in zip(by, key))
        ax.plot(table.index, table.mean(axis=1), color=color,
                label=f"{name or 'all runs'} (n={table.shape[1]})")
        ax.fill_between(table.index, table.min(axis=1), table.max(axis=1), color=color,
                        alpha=0.15, linewidth=0)
        extent += [table.min(axis=1).min(), table.max(axis=1).max()]
    if extent and min(extent) > 0 and max(extent) / min(extent) >= 10:
        # Perplexity falls fast early on: a log axis keeps the tail legible; base 2 gives
        # ticks (1, 2, 4, ... 32) that a reader can label without exponents.
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    if not groups:
        ax.text(0.5, 0.5, "no completed run", ha="center", va="center", transform=ax.transAxes)
    skipped = ", ".join(f"{n} {s}" for s, n in sorted(left_out.items()))
    ax.set_title("mean over seeds, band: min..max over seeds"
                 + (f"; left out: {skipped}" if skipped else ""), fontsize=9)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epoch 1, 2; never 1.25 or 1.5
    mse = bool(results) and all(r.get("task") == "regression" for r in results)
    ax.set_ylabel(f"training {'MSE' if mse else 'perplexity'} (per epoch)")
    if len(groups) > 6:  # a model x size sweep has ~18 points: beside the axes, not on them
        fig.set_figwidth(9)
        fig.legend(loc="outside right upper", fontsize=7)
    elif groups:
        ax.legend(fontsize=8)
    return fig


def _curve_colors(keys: list[tuple], by: list[str]) -> list:
    """A colour per point. With two keys, one (model.cell if swept, else the one with fewer
    values) picks a colour family and the other a shade, darker for larger values: 18 lines of
    a model x size sweep stay readable. Otherwise the colour cycle."""
    if len(by) != 2:
        return [f"C{i % 10}" for i in range(len(keys))]
    fam = by.index("model.cell") if "model.cell" in by else min(
        (0, 1), key=lambda j: len({k[j] for k in keys}))
    families = sorted({k[fam] for k in keys}, key=_order)
    shades = sorted({k[1 - fam] for k in keys}, key=_order)
    return [colormaps[FAMILIES[families.index(k[fam]) % len(FAMILIES)]](
        0.45 + 0.55 * shades.index(k[1 - fam]) / max(len(shades) - 1, 1)) for k in keys]
