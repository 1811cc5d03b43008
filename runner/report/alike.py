"""Only like with like: a figure of the study's may sit beside ours only where every setting
the study held fixed for its table equals ours.

Each of the study's tables varies one factor from one baseline (their Table 8: shared/reference/
seed_study.md) and averages 20 runs per point. A sweep at 32 units and 4 epochs beside its
Table 15 (512 units, 500 epochs) would set 17.71 against 1.19 as if they measured the same
thing: they do not, so such a table's numbers are left out of the tables and plots (never
relabelled, as a number in the next row is read against ours whatever its label says), with
one line naming what differs:

    the study: 512 units, 500 epochs, 20 seeds; here: 32 units, 4 epochs, 3 seeds
"""
import pandas as pd

from runner.report.reference import value_key
from runner.report.runs import label, order
from runner.report.stats import BASELINE as TABLE_8

STUDY_RUNS = 20  # every published number is a mean of 20 runs
SEEDS = "seeds"  # the runs per point, compared as one more setting
# The study's baseline (their Table 8) under our config keys, with the corpus and optimizer
# it names too; the cell is matched already (runner.report.reference.reference_for), and each
# table's factor is what it varies.
BASELINE = {**{k: v for k, v in TABLE_8.items() if k != "model.cell"},
            "data.max_tokens": 10000, "train.grad_clip": 1, "optim._target_": "torch.optim.SGD"}
# What a table holds other than the baseline: Table 20's deep LSTMs have 32 units each.
TABLES = {"20": {"model.num_hiddens": 32}}
# How a setting reads in the line: the study's words for its knobs.
WORDS = {"model.num_hiddens": "{} units", "model.num_layers": "{} layers",
         "data.num_steps": "{} steps", "data.batch_size": "batch {}", "optim.lr": "lr {}",
         "train.num_epochs": "{} epochs", "data.sampling": "{} sampling",
         "data.max_tokens": "{} training tokens", "train.grad_clip": "gradient clipping {}",
         "optim._target_": "{}", SEEDS: "{} seeds"}


def fixed(table: str, factor: str) -> dict:
    """The settings `table` of the study held fixed: all but its `factor`, and its 20 runs."""
    held = {**BASELINE, **TABLES.get(table, {}), SEEDS: STUDY_RUNS}
    return {k: v for k, v in held.items() if k != factor}


def _words(key: str, values: list) -> str:
    """A setting as the line says it: "512 units", "4/8 epochs", "1 to 3 seeds", "SGD"."""
    if key == "optim._target_":
        values = [str(v).rsplit(".", 1)[-1] for v in values]  # torch.optim.SGD -> SGD
    if not values:
        return f"no {key}"
    if key == SEEDS and len(values) > 1:
        text = f"{label(values[0])} to {label(values[-1])}"
    else:
        text = "/".join(label(v) for v in values)
    pattern = WORDS.get(key, key + " {}")
    words = pattern.format(text)
    # a count of one takes the singular: "1 layer", "1 seed"
    return words.removesuffix("s") if text == "1" and pattern.startswith("{} ") else words


def ours(runs: pd.DataFrame, summary: pd.DataFrame, cells) -> dict[str, list]:
    """Each compared setting's distinct values (sorted) over our runs of `cells` (the models
    the study published), and SEEDS: the completed runs per point (what a mean is over)."""
    if "model.cell" in runs.columns:
        runs = runs[runs["model.cell"].isin(cells)]
    if "model.cell" in summary.columns:
        summary = summary[summary["model.cell"].isin(cells)]
    found = {k: sorted({v for v in runs[k] if not pd.isna(v)}, key=order)
             if k in runs.columns else [] for k in BASELINE}
    return found | {SEEDS: sorted(set(summary["n"].astype(int)))}


def differences(held: dict, mine: dict[str, list]) -> list[str]:
    """The settings in `held` that some of our runs do not share."""
    return [k for k, v in held.items()
            if [value_key(x) for x in mine.get(k, [])] != [value_key(v)]]


def like_for_like(reference: pd.DataFrame, runs: pd.DataFrame,
                  summary: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """`reference` (reference_for's answer) less every table whose fixed settings differ from
    our runs', and one line per table left out, naming what differs, study's then ours."""
    if reference.empty:
        return reference, []
    factor = [c for c in reference.columns if c not in (
        "model.cell", "metric", "reference", "table", "setting")][0]
    keep, lines = [], []
    for table, rows in reference.groupby("table", sort=False):
        held = fixed(table, factor)
        mine = ours(runs, summary, set(rows["model.cell"]))
        differ = differences(held, mine)
        if not differ:
            keep.append(rows)
            continue
        study = ", ".join(_words(k, [held[k]]) for k in differ)
        here = ", ".join(_words(k, mine.get(k, [])) for k in differ)
        name = f"Table{'s' * ('-' in table)} {table}"
        lines.append(f"Left out: the study's {name}, whose settings differ from these runs' "
                     f"(the study: {study}; here: {here}); its figures stand beside ours only "
                     f"at the settings it held.")
    kept = pd.concat(keep) if keep else reference.iloc[:0]
    return kept.reset_index(drop=True), lines
