"""summary.tex: the summary as a LaTeX tabular, ready to paste into a paper (booktabs rules:
\\usepackage{booktabs}), written by pandas' own Styler.to_latex.

A row per point (the swept keys' values in value order), its completed runs, then each
statistic as "mean $\\pm$ 95% CI half-width", formatted as in summary.md. The significance
signs of summary.md are left out: their key is a line of Markdown, not part of the tabular.
"""
import pandas as pd

from runner.report.runs import label
from runner.report.tables import _runs, statistics

NUMBERS = {"tokens_per_sec": "{:,.0f}", "num_params": "{:,.0f}"}  # the rest: 2 decimals


def _cell(row, metric: str) -> str:
    mean, ci = row[f"{metric}_mean"], row[f"{metric}_ci95"]
    fmt = NUMBERS.get(metric, "{:.2f}")
    if pd.isna(mean):  # no completed run at this point
        return "--"
    if metric == "num_params" or pd.isna(ci):  # one per point, or one run: no interval
        return fmt.format(mean)
    return f"{fmt.format(mean)} $\\pm$ {fmt.format(ci)}"


def latex_table(summary: pd.DataFrame, by: list[str]) -> str:
    """The tabular of summary.tex. Text that comes from the runs (a key such as
    model.num_hiddens, a value such as rnn_scratch) is escaped for LaTeX; the cells, made
    here of digits and $\\pm$, are not."""
    names = statistics(summary)
    stats = [m for m in names if f"{m}_mean" in summary.columns]
    keys = by or ["point"]
    rows = []
    for row in summary.to_dict("records"):
        point = [label(row[k]) for k in by] or ["all runs"]
        rows.append([*point, _runs(row), *(_cell(row, m) for m in stats)])
    table = pd.DataFrame(rows, columns=[*keys, "runs", *(names[m] for m in stats)])
    return (table.style.hide(axis="index")
            .format(escape="latex", subset=[*keys, "runs"])
            .format_index(escape="latex", axis="columns")
            .to_latex(hrules=True, column_format="l" * len(keys) + "r" * (len(stats) + 1)))
