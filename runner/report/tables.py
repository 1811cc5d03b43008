"""The summary: one row per point (summary.csv) and the study's table layouts (summary.md).

summary.csv has one row per point (the swept config keys, seed aside; "task" first when the
folder mixes tasks): "n" (completed runs), "failed", "diverged", "interrupted", then
"<metric>_mean", "<metric>_std" and "<metric>_ci95" for train_perplexity, val_perplexity,
tokens_per_sec, num_params (and bleu, or a regression's train_mse, mse and eval_mode_mse, and
"trained", when present), then "baseline" and each point against it
(runner.report.stats.compare: "<metric>_diff", "_diff_lo", "_diff_hi", "_p", "_p_holm",
"_significant"). Only completed runs enter the statistics: a diverged run has no perplexity.
"""
import pandas as pd

from runner.report.note import trained
from runner.report.reference import value_key
from runner.report.runs import label
from runner.report.stats import ci95, mark, significance_note, tested

STATISTICS = {"train_perplexity": "training perplexity", "val_perplexity": "held-out perplexity",
              "tokens_per_sec": "tokens/sec", "bleu": "BLEU", "num_params": "parameters",
              "train_mse": "training MSE", "mse": "MSE", "eval_mode_mse": "eval-mode MSE"}

def statistics(frame: pd.DataFrame) -> dict[str, str]:
    """The statistics a report shows, key -> display name: the study's, and the metrics a
    task from outside runner declares (runner.report.runs.tidy's attrs["declared"])."""
    return {**STATISTICS, **frame.attrs.get("declared", {})}


def summarize(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """One row per point: counts by status, and mean, sample std and the 95% CI half-width
    (Student's t) of each statistic over the completed runs with a value for it."""
    stats = [m for m in statistics(df) if m in df.columns]
    groups = df.groupby(by, dropna=False, sort=True) if by else [((), df)]
    rows = []
    for key, g in groups:
        done = g[g["status"] == "completed"]
        row = dict(zip(by, key), n=len(done))
        row |= {s: int((g["status"] == s).sum()) for s in ("failed", "diverged", "interrupted")}
        if "mse" in done:  # regression: completed runs below runner.report.note.TRAINED_MSE
            row["trained"] = int(trained(done["mse"]).sum())
        for m in stats:
            values = pd.to_numeric(done[m], errors="coerce").dropna()
            row[f"{m}_mean"] = values.mean()
            row[f"{m}_std"] = values.std(ddof=1)  # NaN for fewer than 2 values
            row[f"{m}_ci95"] = ci95(values)
        rows.append(row)
    summary = pd.DataFrame(rows)
    summary.attrs["declared"] = df.attrs.get("declared", {})
    return summary


def _cell(row, metric: str, tested: set = frozenset()) -> str:
    """The cell "mean ± ci95", with runner.report.stats.mark's sign for the `tested` metrics."""
    mean, ci = row[f"{metric}_mean"], row[f"{metric}_ci95"]
    fmt = "{:,.0f}" if metric in ("tokens_per_sec", "num_params") else "{:.2f}"
    if pd.isna(mean):  # no completed run at this point
        return "—"
    if metric == "num_params":  # the same for every seed of a point
        return fmt.format(mean)
    return (fmt.format(mean) + ("" if pd.isna(ci) else " ± " + fmt.format(ci))
            + mark(row, metric, tested))


def _runs(row) -> str:
    extra = [f"{row[s]} {s}" for s in ("failed", "diverged", "interrupted") if row[s]]
    return f"{row['n']}" + (f" (+{', '.join(extra)})" if extra else "")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    # a "|" in a value (a JSON list, a name) would end its cell: escaped, as pipe tables allow
    return "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in line) + " |"
                     for line in lines)


def _levels(summary: pd.DataFrame, column: str) -> list[str]:
    """A factor's values in numeric (not text) order, as labels; null last."""
    return [label(v) for v in summary[column].drop_duplicates().sort_values(na_position="last")]


def _study_rows(reference, factor: str, metric: str, values: list[str],
                models: list[str] | None = None) -> list[tuple[str, list[str]]]:
    """The study's numbers for one metric as cells under `values` (labels), formatted like
    _cell, blank where it has none: (model, cells) for each model with any (all of
    reference's models, or `models`)."""
    if reference is None or reference.empty or factor not in reference.columns:
        return []
    fmt = "{:,.0f}" if metric == "tokens_per_sec" else "{:.2f}"
    ref = reference[reference["metric"] == metric]
    found = []
    for model in ref["model.cell"].drop_duplicates() if models is None else models:
        mine = ref[ref["model.cell"] == model]
        numbers = {value_key(v): fmt.format(x) for v, x in zip(mine[factor], mine["reference"])}
        cells = [numbers.get(value_key(v), "") for v in values]
        if any(cells):
            found.append((model, cells))
    return found


def _study_note(reference, factor: str) -> str:
    """One line naming the study's tables shown and what they held ("" when none)."""
    if reference is None or reference.empty or factor not in reference.columns:
        return ""
    tables = reference[["table", "setting"]].drop_duplicates()
    names = "; ".join(f"Table{'s' * ('-' in t)} {t} ({s})"
                      for t, s in zip(tables["table"], tables["setting"]))
    cpu = (" Their tokens/sec were measured on a personal CPU, with torch.nn's layers or d2l's "
           "scratch code; ours by the implementations under Environment (model.impl)."
           if (reference["metric"] == "tokens_per_sec").any() else "")
    return f"\nThe study: {names}.{cpu}\n"


def markdown_tables(summary: pd.DataFrame, by: list[str],
                    reference: pd.DataFrame | None = None) -> str:
    """The study's layout: one factor -> rows are metrics, columns the factor's sorted values;
    model x factor -> one table per metric, a row per model; anything else -> a row per point.
    Cells are "mean ± ci95" over completed runs. The runs per point come with every layout:
    a mean over 1 run and one over 5 read the same. `reference` (runner.report.reference's
    reference_for) adds the study's own numbers: a "<metric> (the study)" row under each metric
    it published, or a "<model> (the study)" row under each model, and a line naming its
    tables; None or empty changes nothing. A summary with runner.report.stats.compare's columns gets
    its signs on the cells and one line under each table saying what they mean."""
    names = statistics(summary)
    stats = [m for m in names if f"{m}_mean" in summary.columns]
    marked = tested(summary, stats)

    def note(metrics):  # "" or the line under a table, with its blank line before
        line = significance_note(summary, by, metrics, names)
        return f"\n\n{line}" if line else ""

    points = {tuple(label(row[c]) for c in by): row for row in summary.to_dict("records")}
    if len(by) == 1:
        values = _levels(summary, by[0])
        rows = []
        for m in stats:
            rows.append([names[m], *(_cell(points[(v,)], m, marked) for v in values)])
            study = _study_rows(reference, by[0], m, values)
            for model, cells in study:  # one model, unless reference holds several
                who = "the study" if len(study) == 1 else f"the study, {model}"
                rows.append([f"{names[m]} ({who})", *cells])
        runs = ", ".join(f"{v}: {_runs(points[(v,)])}" for v in values)
        return (f"{_table(['metric', *values], rows)}{note(stats)}\n\nCompleted runs: {runs}.\n"
                + _study_note(reference, by[0]))
    if len(by) == 2 and "model.cell" in by:
        factor = by[1 - by.index("model.cell")]
        models, values = _levels(summary, "model.cell"), _levels(summary, factor)

        def text(model, value, metric):  # metric None: the run counts
            key = (model, value) if by[0] == "model.cell" else (value, model)
            row = points.get(key)  # a model x value pair that was never run
            return ("—" if row is None else _runs(row) if metric is None
                    else _cell(row, metric, marked))

        parts = []
        for m in [*stats, None]:
            study = dict(_study_rows(reference, factor, m, values, models)) if m else {}
            rows = []
            for model in models:
                rows.append([model, *(text(model, v, m) for v in values)])
                if model in study:
                    rows.append([f"{model} (the study)", *study[model]])
            title = names[m] if m else "completed runs"
            parts.append(f"### {title} by {factor}\n\n{_table(['model', *values], rows)}"
                         f"{note([m] if m else [])}\n")
        return "\n".join(parts) + _study_note(reference, factor)
    if not by:  # nothing swept: all runs are repeats of one point
        points = {("all runs",): summary.to_dict("records")[0]}
    header = [*(by or ["point"]), "runs", *(names[m] for m in stats)]
    rows = [[*key, _runs(row), *(_cell(row, m, marked) for m in stats)]
            for key, row in points.items()]
    return _table(header, rows) + note(stats) + "\n"
