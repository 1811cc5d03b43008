"""Statistics of a sweep's points: the 95% interval of a mean, and each point against its table's
baseline (Welch's t, Holm's correction across the table). scipy and statsmodels do the
arithmetic; this module only decides what is compared with what.

The baseline of a table is the study's setting (BASELINE, their Table 8) where the sweep holds
it, else the factor's first value in sorted order. Points are compared within groups that must
never mix: one model's row of a model x factor table (runner.report.markdown_tables), and one
task (a character perplexity is no per-target-token perplexity).
"""
import math
import warnings

import numpy as np
import pandas as pd
from scipy.stats import t, ttest_ind
from statsmodels.stats.multitest import multipletests

from runner.report.reference import value_key

# The study's baseline configuration (their Table 8), as our config keys.
BASELINE = {"model.cell": "rnn", "model.num_hiddens": 512, "model.num_layers": 1,
            "data.num_steps": 35, "data.batch_size": 32, "data.sampling": "sequential",
            "optim.lr": 1, "train.num_epochs": 500}
COMPARED = ("train_perplexity", "val_perplexity", "tokens_per_sec", "bleu")  # not num_params
ALPHA = 0.05
SIGN = {"baseline": "†", "significant": "*"}


def ci95(values) -> float:
    """Half-width of the 95% interval of the mean (Student's t); NaN for fewer than 2 values."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return math.nan
    return float(t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))


def welch(base, other) -> dict:
    """other's mean minus base's, its 95% interval and two-sided p (Welch's unequal-variance
    t). The mean difference needs a run on each side; the interval and p two on each side
    and some spread: with no spread on either side (identical runs) scipy's t is 0/0 or
    infinite, a certainty that a few identical runs cannot support, so both are NaN."""
    base, other = np.asarray(base, dtype=float), np.asarray(other, dtype=float)
    out = dict.fromkeys(["diff", "diff_lo", "diff_hi", "p"], math.nan)
    if len(base) and len(other):
        out["diff"] = float(other.mean() - base.mean())
    if min(len(base), len(other)) < 2 or base.std() == other.std() == 0:
        return out
    with warnings.catch_warnings():  # near-identical runs: scipy warns of precision loss
        warnings.simplefilter("ignore", RuntimeWarning)
        test = ttest_ind(other, base, equal_var=False)
        interval = test.confidence_interval(0.95)
    if math.isfinite(test.pvalue):
        out |= {"diff_lo": float(interval.low), "diff_hi": float(interval.high),
                "p": float(test.pvalue)}
    return out


def holm(p) -> np.ndarray:
    """Holm-adjusted p-values of one family; NaN (no test) stays NaN and is no member."""
    p = np.asarray(p, dtype=float)
    adjusted = np.full(len(p), math.nan)
    tested = ~np.isnan(p)
    if tested.any():
        adjusted[tested] = multipletests(p[tested], method="holm")[1]
    return adjusted


def _key(value):
    """What a config value compares as (1 == 1.0 == "1"); null equals null."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    return value_key(value)


def within_keys(by: list[str]) -> list[str]:
    """The keys whose points are never compared with each other: the model of a model x factor
    table (one row per model, each compared along its own row) and the task."""
    rows = ["model.cell"] if len(by) == 2 and "model.cell" in by else []
    return [k for k in by if k in rows or k == "task"]


def baseline_values(summary: pd.DataFrame, keys: list[str]) -> dict:
    """Each key's baseline: the study's value where swept, else its first value in order."""
    chosen = {}
    for k in keys:
        levels = summary[k].drop_duplicates().sort_values(na_position="last").tolist()
        study = [v for v in levels if k in BASELINE and _key(v) == _key(BASELINE[k])]
        chosen[k] = (study or levels)[0]
    return chosen


def compare(df: pd.DataFrame, summary: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """`summary` (runner.report.summarize's, one row per point) with "baseline" (the point the
    others of its group are compared with) and, for each metric of COMPARED it holds,
    "<metric>_diff", "_diff_lo", "_diff_hi" (point - baseline, Welch 95% interval), "_p",
    "_p_holm" (Holm across the metric's comparisons in the table) and "_significant"
    (p_holm < ALPHA; empty where untested). Each group of within_keys gets one baseline point:
    the one holding the most baseline_values, ties to the first; only completed runs count."""
    within = within_keys(by)
    keys = [k for k in by if k not in within]
    metrics = [m for m in COMPARED if f"{m}_mean" in summary.columns and m in df.columns]
    columns = [f"{m}_{c}" for m in metrics for c in ("diff", "diff_lo", "diff_hi", "p")]
    out = summary.assign(baseline=False, **dict.fromkeys(columns, math.nan))
    done = df[df["status"] == "completed"]
    runs = {tuple(_key(v) for v in (k if isinstance(k, tuple) else (k,))): g
            for k, g in done.groupby(by, dropna=False)} if by else {}

    def values(i, metric):  # point i's completed runs' values
        g = runs.get(tuple(_key(summary.at[i, k]) for k in by), done.iloc[:0])
        return pd.to_numeric(g[metric], errors="coerce").dropna()

    base = baseline_values(summary, keys)
    if not keys:  # only never-compared keys swept (the task): nothing to compare
        groups = []
    else:
        groups = [g for _, g in summary.groupby(within, dropna=False)] if within else [summary]
    for rows in groups:
        score = [sum(_key(row[k]) == _key(base[k]) for k in keys) for _, row in rows.iterrows()]
        home = rows.index[int(np.argmax(score))]
        out.loc[home, "baseline"] = True
        for m in metrics:
            for i in rows.index.drop(home):
                for name, x in welch(values(home, m), values(i, m)).items():
                    out.loc[i, f"{m}_{name}"] = x
    for m in metrics:
        out[f"{m}_p_holm"] = holm(out[f"{m}_p"])
        out[f"{m}_significant"] = pd.Series(
            [None if math.isnan(p) else bool(p < ALPHA) for p in out[f"{m}_p_holm"]],
            index=out.index, dtype=object)
    order = [f"{m}_{c}" for m in metrics for c in ("diff", "diff_lo", "diff_hi", "p", "p_holm",
                                                    "significant")]
    return out[[*summary.columns, "baseline", *order]]


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def mark(row: dict, metric: str, tested: set) -> str:
    """A cell's sign: SIGN["baseline"] on the baseline, SIGN["significant"] on a point that
    differs from it; none where the table's `tested` metrics lack this one."""
    if metric not in tested:
        return ""
    if row.get("baseline"):
        return " " + SIGN["baseline"]
    return " " + SIGN["significant"] if row.get(f"{metric}_significant") is True else ""


def tested(summary: pd.DataFrame, metrics: list[str]) -> set:
    """The metrics with at least one comparison that has a p-value."""
    return {m for m in metrics if f"{m}_p" in summary.columns and summary[f"{m}_p"].notna().any()}


def significance_note(summary: pd.DataFrame, by: list[str], metrics: list[str],
                      names: dict) -> str:
    """The one line under a table of `metrics` that says what its signs mean, or that it can
    have none; "" when nothing is compared (no compare() columns, no factor within a group, or
    no metric of COMPARED: parameters, run counts)."""
    keys = [k for k in by if k not in within_keys(by)]
    metrics = [m for m in metrics if m in COMPARED and f"{m}_p" in summary.columns]
    if "baseline" not in summary.columns or not keys or not metrics:
        return ""
    base = summary[summary["baseline"]]
    where = " or ".join(sorted({", ".join(f"{k} {_text(row[k])}" for k in keys)
                                for _, row in base.iterrows()}))
    study = [k in BASELINE and _key(row[k]) == _key(BASELINE[k])
             for _, row in base.iterrows() for k in keys]
    source = ("the study's Table 8 setting" if all(study) else "the first value; the study's "
              "setting is not in the sweep" if not any(study) else
              "the study's setting where swept, else the first value")
    counts = {m: int(summary[f"{m}_p"].notna().sum()) for m in metrics}
    counts = {m: n for m, n in counts.items() if n}
    if not counts:
        return (f"No significance can be given: no point has 2 or more completed runs, with "
                f"some spread, both there and at its baseline ({where}).")
    if len(set(counts.values())) == 1:
        n = next(iter(counts.values()))
        across = f"{n} comparison{'s' * (n != 1)}" + (" per metric" if len(counts) > 1 else "")
    else:
        across = "comparisons (" + ", ".join(f"{names[m]} {n}" for m, n in counts.items()) + ")"
    untested = int((~summary["baseline"].astype(bool)
                    & summary[[f"{m}_p" for m in metrics]].isna().all(axis=1)).sum())
    return (f"`{SIGN['significant']}`: differs from the baseline `{SIGN['baseline']}` "
            f"({where}, {source}): Welch's t (95%), p < {ALPHA:g} after Holm's correction over "
            f"the table's {across} (differences, intervals and p-values in summary.csv)."
            + (f" {untested} point(s) untested: fewer than 2 completed runs, or no spread, "
               f"there or at the baseline." if untested else ""))
