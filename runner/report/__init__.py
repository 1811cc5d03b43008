"""Reports: a folder of runs -> runs.csv, summary.csv/.md/.tex, plots and report.md/.html.

    python -m runner.report FOLDER        # or write_report(folder) at the end of a sweep

Every result.json under FOLDER (recursively) that follows the schema counts, once per run_id;
anything else is skipped with one warning line. runs.csv has one row per run: "run_id",
"status", "path" (the run's folder relative to FOLDER), "task", "sees_future", the config
flattened to dotted names ("model.num_hiddens", "seed"), the metrics under their own names
("train_perplexity", ..., "num_params") and "environment.device", "environment.device_name",
"environment.threads", "environment.concurrent_jobs". summary.csv: runner/report/tables.py;
summary.tex: runner/report/latex.py; the study's numbers only beside ours at its settings:
runner/report/alike.py.
This package reads results only (runner/result.py), never the code that made them.
"""
from pathlib import Path

import pandas as pd

from runner.report.alike import like_for_like
from runner.report.commands import tables_by_command
from runner.report.findings import companion_findings
from runner.report.latex import latex_table
from runner.report.note import note_tables
from runner.report.page import environment_lines, page_markdown, samples, warnings_for, write_page
from runner.report.plots import sweep_title, write_plots
from runner.report.reference import reference_for, reference_series
from runner.report.runs import load_results, swept_params, tidy
from runner.report.stats import compare
from runner.report.tables import markdown_tables, summarize
from runner.result import RESULT_FILE, write_text_atomic

__all__ = ["write_report"]


def points_of(df: pd.DataFrame) -> tuple[list[str], pd.DataFrame, pd.DataFrame | None, list]:
    """The swept keys of these runs, their points' summary, the study's numbers that may stand
    beside them (only like with like) and the lines saying which were left out, and why."""
    by = swept_params(df)
    if df["task"].nunique() > 1:  # never one point for two tasks' perplexities (page warns)
        by = ["task", *(k for k in by if k != "data.task")]
    summary = compare(df, summarize(df, by), by)
    reference = reference_for(summary, by, sorted(df["model.cell"].dropna().unique()))
    return by, summary, *like_for_like(reference, df, summary)


def tables_of(df: pd.DataFrame, regression: bool, points=None) -> str:
    """summary.md's tables of these runs, with the lines on the study's numbers left out.
    `points`: points_of(df), when already computed."""
    by, summary, reference, left_out = points or points_of(df)
    tables = note_tables(df, by) if regression else markdown_tables(summary, by, reference)
    return tables + "".join(f"\n{line}\n" for line in left_out)


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
    points = points_of(df)
    by, summary, reference, left_out = points
    paths = {name: folder / name for name in ("runs.csv", "summary.csv", "summary.md",
                                              "summary.tex")}
    write_text_atomic(paths["runs.csv"], df.to_csv(index=False))
    write_text_atomic(paths["summary.csv"], summary.to_csv(index=False))
    write_text_atomic(paths["summary.tex"], latex_table(summary, by))
    tally = ", ".join(f"{counts[s]} {s}" for s in ("completed", "failed", "diverged"))
    regression = bool((df["task"] == "regression").all())  # the companion note's layout
    cells = ("mean ± standard deviation, and every seed's value," if regression else
             "mean ± 95% CI half-width (Student's t)")
    intro = (f"{counts['read']} runs read ({tally}, {counts['skipped']} skipped); swept: "
             f"{', '.join(by) or 'nothing'}. Cells: {cells} over completed runs; failed and "
             f"diverged runs are counted, never averaged.")
    # a folder several commands ran in: each command's points in tables of their own
    tables = (tables_by_command(folder, df, lambda runs: tables_of(runs, regression))
              or tables_of(df, regression, points))
    write_text_atomic(paths["summary.md"], f"# {folder.name}\n\n{intro}\n\n{tables}")
    factor = next((k for k in by if k != "model.cell"), None)
    series = pd.concat([reference_series(reference, factor, m)
                        for m in ("train_perplexity", "tokens_per_sec")]) if factor else None
    plots = write_plots(folder, results, df, summary, by, reference=series,
                        title=sweep_title(folder, results))
    page = page_markdown(folder.name, intro, tables, plots, environment_lines(results),
                         warnings_for(results, counts, by), samples(results, by),
                         companion_findings(df, summary, by))
    paths["report.md"], paths["report.html"] = write_page(folder, page, folder.name)
    print(f"report: {counts['read']} runs read ({tally}, {counts['skipped']} skipped) "
          f"-> {paths['report.html']}")
    return {**counts, "swept": by, "plots": [str(p) for p in plots], "study_left_out": left_out,
            **{name: str(p) for name, p in paths.items()}}
