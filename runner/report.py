"""Aggregate a folder of runs into runs.csv, summary.csv and summary.md.

    python -m runner.report FOLDER        # or write_report(folder) at the end of a multirun

Every result.json under FOLDER (recursively) that follows the schema counts, once per run_id;
anything else is skipped with one warning line. runs.csv has one row per run: "run_id",
"status", "path" (the run's folder relative to FOLDER), "task", "sees_future", the config
flattened to dotted names ("model.num_hiddens", "seed"), the metrics under their own names
("train_perplexity", ...) and "environment.device", "environment.device_name",
"environment.threads", "environment.concurrent_jobs". summary.csv has one row per point (the
swept config keys, seed aside; "task" first when the folder mixes tasks): "n" (completed runs),
"failed", "diverged", "interrupted", then "<metric>_mean", "<metric>_std" and "<metric>_ci95"
for train_perplexity, val_perplexity, tokens_per_sec (and bleu when present), then "baseline"
and each point against it (runner.stats.compare: "<metric>_diff", "_diff_lo", "_diff_hi",
"_p", "_p_holm", "_significant"). Only completed runs enter the statistics: a diverged run has
no perplexity.
"""
import argparse
import json
import logging
import math
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd

from runner.findings import companion_findings
from runner.page import environment_lines, page_markdown, samples, warnings_for, write_page
from runner.plots import write_plots
from runner.reference import reference_for, reference_series
from runner.result import (
    EXECUTION_KEYS,
    RESULT_FILE,
    SCHEMA_FILE,
    STATUSES,
    validate_result,
    write_text_atomic,
)
from runner.stats import ci95, compare, mark, significance_note, tested

log = logging.getLogger(__name__)

# The schema is the one list of metric names; "bleu" is optional (translation tasks).
METRICS = [*json.loads(SCHEMA_FILE.read_text())["properties"]["metrics"]["required"], "bleu"]
ENVIRONMENT = ["device", "device_name", "threads", "concurrent_jobs"]
RUN_COLUMNS = ["run_id", "status", "path", "task", "sees_future"]
STATISTICS = {"train_perplexity": "training perplexity", "val_perplexity": "held-out perplexity",
              "tokens_per_sec": "tokens/sec", "bleu": "BLEU", "num_params": "parameters"}


def load_results(folder: Path) -> tuple[list[dict], dict]:
    """Valid results under `folder`, each with "_path" (its folder relative to `folder`) added,
    and the counts. A bad file is a warning, never a crash: one broken run must not hide the
    others. A run copied twice counts once (its first path in sorted order); results of
    schema_version 1 are skipped with one warning for all of them (counts["old"])."""
    folder = Path(folder)
    results, skipped, old, copies = {}, 0, [], []
    for path in sorted(folder.rglob(RESULT_FILE)):
        try:
            with open(path) as f:
                obj = json.load(f)
            if isinstance(obj, dict) and obj.get("schema_version") == 1:
                old.append(path)
                continue
            validate_result(obj)
        except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError included
            why = f"unreadable JSON ({e})"
        except jsonschema.ValidationError as e:  # foreign JSON, or a result missing fields
            why = f"not a valid result, at {e.json_path}: {e.message}"
        else:
            where = path.parent.relative_to(folder).as_posix()
            if obj["run_id"] in results:
                copies.append((where, results[obj["run_id"]]["_path"]))
            else:
                results[obj["run_id"]] = {**obj, "_path": where}
            continue
        skipped += 1
        log.warning("report: skipped %s: %s", path, " ".join(why.split())[:200])
    if old:  # their held-out perplexity scored only part of the held-out tokens
        log.warning("report: skipped %d result(s) from an older runner (schema_version 1, "
                    "e.g. %s), whose held-out perplexity scored only part of the held-out "
                    "tokens: re-run them with overwrite=true to compare them", len(old), old[0])
    if copies:
        log.warning("report: %d duplicate result(s) counted once: same run_id as another "
                    "(e.g. %s is a copy of %s)", len(copies), *copies[0])
    results = list(results.values())
    counts = {"read": len(results), "skipped": skipped + len(old), "old": len(old),
              "duplicates": len(copies)}
    counts |= {s: sum(r["status"] == s for r in results) for s in STATUSES}
    return results, counts


def flatten(obj: dict, prefix: str = "") -> dict:
    """{"model": {"cell": "rnn"}} -> {"model.cell": "rnn"}; lists become JSON text, so that
    every value can be compared and grouped."""
    flat = {}
    for key, value in obj.items():
        name = prefix + str(key)
        if isinstance(value, dict):
            flat |= flatten(value, name + ".")
        else:
            flat[name] = json.dumps(value) if isinstance(value, list) else value
    return flat


def _ignored(key: str) -> bool:
    parts = key.split(".")
    return any(".".join(parts[:i]) in EXECUTION_KEYS for i in range(1, len(parts) + 1))


def tidy(results: list[dict]) -> pd.DataFrame:
    """One row per run, columns in a fixed order: run, config, metrics, environment."""
    rows, config_columns = [], {}
    for r in results:
        config = {k: v for k, v in flatten(r["config"]).items() if not _ignored(k)}
        config_columns |= dict.fromkeys(config)  # first-seen order, across differing configs
        rows.append({"run_id": r["run_id"], "status": r["status"], "path": r.get("_path", ""),
                     "task": r.get("task"), "sees_future": r["sees_future"], **config,
                     **{m: r["metrics"][m] for m in METRICS if m in r["metrics"]},
                     **{f"environment.{k}": r["environment"].get(k) for k in ENVIRONMENT}})
    metrics = [m for m in METRICS if any(m in r["metrics"] for r in results)]
    columns = [*RUN_COLUMNS, *config_columns, *metrics, *(f"environment.{k}" for k in ENVIRONMENT)]
    df = pd.DataFrame(rows, columns=columns)
    return df.sort_values("path", kind="stable", ignore_index=True)


def swept_params(df: pd.DataFrame) -> list[str]:
    """Config columns that vary across runs, seed aside (repeats of a point, not a factor).
    Left out, as no factor: a key that exists only for some runs (model.nonlinearity: rnn
    cells only) when the other swept keys already tell its runs apart, and, when model.cell
    is swept, a key each model holds at one value (a model's own preset, such as the
    transformer's Adam lr and dropout)."""
    config = [c for c in df.columns if c not in {*RUN_COLUMNS, *METRICS, "seed"}
              and not c.startswith("environment.")]
    swept = [c for c in config if df[c].nunique(dropna=False) > 1]

    def groups(cols):
        return df.groupby(cols, dropna=False).ngroups if cols else 1

    def per_model(c):
        return "model.cell" in swept and c != "model.cell" and bool(
            (df.groupby("model.cell", dropna=False)[c].nunique(dropna=False) == 1).all())

    for c in reversed(list(swept)):
        rest = [k for k in swept if k != c]
        if (df[c].isna().any() and groups(rest) == groups(swept)) or per_model(c):
            swept.remove(c)
    return swept


def summarize(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """One row per point: counts by status, and mean, sample std and the 95% CI half-width
    (Student's t) of each statistic over the completed runs with a value for it."""
    stats = [m for m in STATISTICS if m in df.columns]
    groups = df.groupby(by, dropna=False, sort=True) if by else [((), df)]
    rows = []
    for key, g in groups:
        done = g[g["status"] == "completed"]
        row = dict(zip(by, key), n=len(done))
        row |= {s: int((g["status"] == s).sum()) for s in ("failed", "diverged", "interrupted")}
        for m in stats:
            values = pd.to_numeric(done[m], errors="coerce").dropna()
            row[f"{m}_mean"] = values.mean()
            row[f"{m}_std"] = values.std(ddof=1)  # NaN for fewer than 2 values
            row[f"{m}_ci95"] = ci95(values)
        rows.append(row)
    return pd.DataFrame(rows)


def _label(value) -> str:
    """A config value as one would type it in an override: 256, 0.001, true, null."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def _cell(row, metric: str, tested: set = frozenset()) -> str:
    """The cell "mean ± ci95", with runner.stats.mark's sign for the `tested` metrics."""
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
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _levels(summary: pd.DataFrame, column: str) -> list[str]:
    """A factor's values in numeric (not text) order, as labels; null last."""
    return [_label(v) for v in summary[column].drop_duplicates().sort_values(na_position="last")]


def _study_rows(reference, factor: str, metric: str, values: list[str],
                models: list[str] | None = None) -> list[tuple[str, list[str]]]:
    """The study's numbers for one metric as cells under `values` (labels), formatted like
    _cell, blank where it has none: (model, cells) for each model with any (all of
    reference's models, or `models`)."""
    if reference is None or reference.empty or factor not in reference.columns:
        return []
    from runner.reference import value_key  # 1, 1.0 and "1" alike

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
    cpu = (" Their tokens/sec were measured on a personal CPU."
           if (reference["metric"] == "tokens_per_sec").any() else "")
    return f"\nThe study: {names}.{cpu}\n"


def markdown_tables(summary: pd.DataFrame, by: list[str],
                    reference: pd.DataFrame | None = None) -> str:
    """The study's layout: one factor -> rows are metrics, columns the factor's sorted values;
    model x factor -> one table per metric, a row per model; anything else -> a row per point.
    Cells are "mean ± ci95" over completed runs. The runs per point come with every layout:
    a mean over 1 run and one over 5 read the same. `reference` (runner.reference's
    reference_for) adds the study's own numbers: a "<metric> (the study)" row under each metric
    it published, or a "<model> (the study)" row under each model, and a line naming its
    tables; None or empty changes nothing. A summary with runner.stats.compare's columns gets
    its signs on the cells and one line under each table saying what they mean."""
    stats = [m for m in STATISTICS if f"{m}_mean" in summary.columns]
    marked = tested(summary, stats)

    def note(metrics):  # "" or the line under a table, with its blank line before
        line = significance_note(summary, by, metrics, STATISTICS)
        return f"\n\n{line}" if line else ""

    points = {tuple(_label(row[c]) for c in by): row for row in summary.to_dict("records")}
    if len(by) == 1:
        values = _levels(summary, by[0])
        rows = []
        for m in stats:
            rows.append([STATISTICS[m], *(_cell(points[(v,)], m, marked) for v in values)])
            study = _study_rows(reference, by[0], m, values)
            for model, cells in study:  # one model, unless reference holds several
                who = "the study" if len(study) == 1 else f"the study, {model}"
                rows.append([f"{STATISTICS[m]} ({who})", *cells])
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
            title = STATISTICS[m] if m else "completed runs"
            parts.append(f"### {title} by {factor}\n\n{_table(['model', *values], rows)}"
                         f"{note([m] if m else [])}\n")
        return "\n".join(parts) + _study_note(reference, factor)
    if not by:  # nothing swept: all runs are repeats of one point
        points = {("all runs",): summary.to_dict("records")[0]}
    header = [*(by or ["point"]), "runs", *(STATISTICS[m] for m in stats)]
    rows = [[*key, _runs(row), *(_cell(row, m, marked) for m in stats)]
            for key, row in points.items()]
    return _table(header, rows) + note(stats) + "\n"


def write_report(folder: Path) -> dict:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (expected a folder of runs, each "
                                f"with a {RESULT_FILE})")
    results, counts = load_results(folder)
    if not results:
        raise ValueError(f"{folder}: no valid {RESULT_FILE} found ({counts['skipped']} skipped); "
                         f"expected one per run, in the folder or its subfolders")
    df = tidy(results)
    by = swept_params(df)
    if df["task"].nunique() > 1:  # never one point for two tasks' perplexities (page warns)
        by = ["task", *(k for k in by if k != "data.task")]
    summary = compare(df, summarize(df, by), by)
    reference = reference_for(summary, by, sorted(df["model.cell"].dropna().unique()))
    paths = {name: folder / name for name in ("runs.csv", "summary.csv", "summary.md")}
    write_text_atomic(paths["runs.csv"], df.to_csv(index=False))
    write_text_atomic(paths["summary.csv"], summary.to_csv(index=False))
    tally = ", ".join(f"{counts[s]} {s}" for s in ("completed", "failed", "diverged"))
    intro = (f"{counts['read']} runs read ({tally}, {counts['skipped']} skipped); swept: "
             f"{', '.join(by) or 'nothing'}. Cells: mean ± 95% CI half-width (Student's t) "
             f"over completed runs; failed and diverged runs are counted, never averaged.")
    tables = markdown_tables(summary, by, reference)
    write_text_atomic(paths["summary.md"], f"# {folder.name}\n\n{intro}\n\n{tables}")
    factor = next((k for k in by if k != "model.cell"), None)
    series = pd.concat([reference_series(reference, factor, m)
                        for m in ("train_perplexity", "tokens_per_sec")]) if factor else None
    plots = write_plots(folder, results, df, summary, by, reference=series)
    page = page_markdown(folder.name, intro, tables, plots, environment_lines(results),
                         warnings_for(results, counts), samples(results, by, flatten),
                         companion_findings(df, summary, by))
    paths["report.md"], paths["report.html"] = write_page(folder, page, folder.name)
    print(f"report: {counts['read']} runs read ({tally}, {counts['skipped']} skipped) "
          f"-> {paths['report.html']}")
    return {**counts, "swept": by, "plots": [str(p) for p in plots],
            **{name: str(p) for name, p in paths.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a folder of runs (searched recursively)")
    args = parser.parse_args(argv)
    try:
        write_report(args.folder)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
