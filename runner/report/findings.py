"""The companion note's Transformer findings, checked against a folder of runs: "warm-up
rescues lr 1e-3" and "several initialisation schemes fail to train".

On the note's own task (data.task=regression, runner/report/note.py) a run trained when its
MSE is below note.TRAINED_MSE, and a setting trains when most of its runs did: the verdicts
go by that fraction, never by a mean that mixes the two modes, and name where the note's own
single runs fall. On a language model the note's MSE does not carry over, only which settings
train: a setting (over its seeds) counts as trained when every run completed and its mean
final training perplexity is within TRAINED_RATIO of the best setting's among those sharing its
other swept values; one stuck far above the rest, or with a diverged or failed run, did not.
"""
import copy
import math

import pandas as pd

from runner.report.note import TRAINED_MSE, note_rows
from runner.report.runs import label

TRAINED_RATIO = 1.5
NOTE_LR = 0.001
NOTE_WARMUP = ("lr 1e-3: MSE 3.37 without warm-up, 0.10 with a 1% warm-up (6 layers, "
               "d_model 256)")
NOTE_INIT = ("kaiming_uniform, kaiming_normal, normal (std 0.1, 0.002) and uniform (0.05, "
             "0.001) stuck at MSE 2.3-3.5, against 0.10-0.19 for PyTorch's default and Xavier "
             "(6 layers, d_model 256)")


class Judge:
    """Whether a summary row's setting trains, and its figures in words, for the folder's task."""

    def __init__(self, df: pd.DataFrame, rows: pd.DataFrame):
        self.regression = bool((df["task"] == "regression").all())
        self.best = None if self.regression else rows["train_perplexity_mean"].min()

    def within(self, rows: pd.DataFrame) -> "Judge":
        """This judge for one group of points: a perplexity against the group's best."""
        judge = copy.copy(self)
        if not self.regression:
            judge.best = rows["train_perplexity_mean"].min()
        return judge

    def trains(self, row) -> bool:
        if self.regression:  # most of its completed runs learned the square
            return row["n"] > 0 and 2 * row["trained"] > row["n"]
        ppl = row["train_perplexity_mean"]
        return (row["n"] > 0 and row["failed"] == row["diverged"] == row["interrupted"] == 0
                and not math.isnan(ppl) and ppl <= TRAINED_RATIO * self.best)

    def figures(self, row) -> str:
        bad = [f"{int(row[s])} {s}" for s in ("diverged", "failed") if row[s]]
        if self.regression:
            mean, std = row["mse_mean"], row["mse_std"]
            text = (f"{int(row['trained'])} of {int(row['n'])} trained, MSE "
                    + ("—" if math.isnan(mean) else f"{mean:.2f}")
                    + ("" if math.isnan(std) else f" ± {std:.2f}"))
        else:
            ppl = row["train_perplexity_mean"]
            text = "—" if math.isnan(ppl) else f"{ppl:.2f}"
        return text + (f" ({', '.join(bad)})" if bad else "")

    def sort_key(self, row) -> tuple:
        if self.regression:
            return (-row["trained"] / max(row["n"], 1), row["mse_mean"])
        return (row["train_perplexity_mean"],)

    @property
    def measure(self) -> str:
        return (f"trained runs (MSE < {TRAINED_MSE:g}) of completed" if self.regression
                else "final training perplexity")


def _point(row, keys: list[str]) -> str:
    """The point as overrides, keys it does not have (NaN: init.std of a uniform) left out."""
    values = [(k, row[k]) for k in keys if not (isinstance(row[k], float) and math.isnan(row[k]))]
    return ", ".join(f"{k}={label(v)}" for k, v in values)


def _groups(rows: pd.DataFrame, others: list[str]):
    """(label, rows) per combination of the other swept keys: each is judged on its own, as a
    small model's perplexity is no measure of a large one's."""
    if not others:
        return [("", rows)]
    return [(f"at {_point(g.iloc[0], others)}: ", g)
            for _, g in rows.groupby(others, dropna=False, sort=True)]


def _warmup_verdict(rows: pd.DataFrame, judge: Judge) -> str | None:
    judge = judge.within(rows)
    cold, warm = rows[rows["train.warmup"] == 0], rows[rows["train.warmup"] > 0]
    if cold.empty or warm.empty:
        return None
    cold_ok = all(judge.trains(r) for _, r in cold.iterrows())
    rescued = any(judge.trains(r) for _, r in warm.iterrows())
    verdict = ("holds: without warm-up the model does not train, with it it does"
               if not cold_ok and rescued else
               "does not hold: without warm-up the model trains as well as with it" if cold_ok
               else "does not hold: no warm-up setting trains")
    detail = "; ".join(f"warm-up {r['train.warmup']:g}: {judge.figures(r)}"
                       for _, r in rows.sort_values("train.warmup").iterrows())
    return f"{verdict} ({judge.measure}: {detail})"


def warmup_check(df, summary, by, judge: Judge | None = None) -> str | None:
    if "train.warmup" not in by or not (df["model.cell"] == "transformer").all():
        return None
    judge = judge or Judge(df, summary)
    rows, lr = summary, df["optim.lr"].iloc[0]
    if "optim.lr" in by:  # the note's finding is about lr 1e-3
        rows, lr = summary[summary["optim.lr"] == NOTE_LR], NOTE_LR
    others = [k for k in by if k not in ("train.warmup", "optim.lr")]
    lines = [f"{where}{text}" for where, g in _groups(rows, others)
             if (text := _warmup_verdict(g, judge))]
    if not lines:
        return None
    return (f"**Warm-up rescues lr 1e-3** (the note: {NOTE_WARMUP}), judged at lr {lr:g}: "
            + "; ".join(lines) + ".")


def _init_verdict(rows: pd.DataFrame, keys: list[str], judge: Judge, notes: dict) -> str:
    """`notes`: the note's row of each summary row (by index) that is one; named by it."""
    def name(i, r):
        return notes[i]["row"] if i in notes else _point(r, keys)

    judge = judge.within(rows)

    failed = [name(i, r) for i, r in rows.iterrows() if not judge.trains(r)]
    verdict = (f"{'holds' if len(failed) >= 2 else 'does not hold'}: {len(failed)} of "
               f"{len(rows)} settings fail to train")
    verdict += f" ({'; '.join(failed)})" if failed else ""
    ranked = sorted(rows.iterrows(), key=lambda ir: judge.sort_key(ir[1]))
    text = "; ".join(f"{name(i, r)}: {judge.figures(r)}" for i, r in ranked)
    disagree = [f"{note['row']} (the note {note['mse']}, ours {judge.figures(r)})"
                for i, r in rows.iterrows() if (note := notes.get(i))
                and (note["value"] < TRAINED_MSE) != judge.trains(r)]
    if judge.regression and notes:
        text += ("; the note's single runs agree on every setting" if not disagree else
                 f"; the note's single runs disagree on {len(disagree)}: " + "; ".join(disagree))
    return f"{verdict}; {judge.measure}, best first: {text}"


def init_check(df, summary, by, judge: Judge | None = None) -> str | None:
    if "init.scheme" not in by or not (df["model.cell"] == "transformer").all():
        return None
    judge = judge or Judge(df, summary)
    keys = [k for k in by if k.startswith("init.")]
    others = [k for k in by if k not in keys]
    notes = {}
    if judge.regression:  # each point's row of the note, where it is one
        configs = [df[((df[by] == row[by]) | (df[by].isna() & row[by].isna())).all(axis=1)]
                   .iloc[0].to_dict() for _, row in summary.iterrows()]
        notes = {i: n for i, n in zip(summary.index, note_rows(configs)) if n}
    lines = [f"{where}{_init_verdict(g, keys, judge, notes)}"
             for where, g in _groups(summary, others)]
    return f"**Several initialisations fail to train** (the note: {NOTE_INIT}): " + \
        "; ".join(lines) + "."


def companion_findings(df: pd.DataFrame, summary: pd.DataFrame, by: list[str]) -> list[str]:
    """One paragraph per finding the folder's runs can test (none for other sweeps)."""
    judge = Judge(df, summary)
    found = [check(df, summary, by, judge) for check in (warmup_check, init_check)]
    if not any(found):
        return []
    rule = (f"A setting counts as trained when most of its runs reach an MSE below "
            f"{TRAINED_MSE:g}, the best linear predictor's (runner/report/note.py)."
            if judge.regression else
            f"A setting counts as trained when all its runs completed and its mean final "
            f"training perplexity is within {TRAINED_RATIO}x of the best setting's with the "
            f"same other swept values.")
    return [f for f in found if f] + [rule]
