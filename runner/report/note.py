"""The companion note's Transformer tables (data.task=regression): its published MSE as data,
what "trained" means, and the tables in its layout, a row per setting.

companion_note.csv (next to this module) transcribes the note's figures as copied in
shared/reference/seed_study.md, one row per figure: its table ("lr", "init", "2 layers",
"batch 64"), its row name, its MSE, the config values that make a run that row (`conditions`,
"key=value;...") and what else held, in words. A point is the note's row when its runs' config
holds every condition; it is compared with the note's figure only when it also ran the note's
1,000 steps and scored 1,000 batches (not so under reproduce --quick).

Trained: MSE below TRAINED_MSE. The note's loss is half the squared error, so predicting the
target's mean, E[(a + 1)**2 + b] = 2, scores half its variance: (Var(a**2 + 2a) + Var(b)) / 2
= (2 + 4 + 1) / 2 = 3.5, the note's "fails to train" figure. The best prediction linear in
(a, b) still misses a**2 - 1, variance 2: it scores 1.0. Below 1.0 a model has learned the
square, which nothing linear can; outcomes are bimodal around that line (about 3.5, or
about 0.1-0.2), so a mean over seeds that mixes the two modes says little. Rows report the
trained fraction beside mean ± std and every seed's value.
"""
from functools import lru_cache
from pathlib import Path

import pandas as pd

from runner.report.reference import value_key
from runner.report.runs import label

NOTE_FILE = Path(__file__).with_name("companion_note.csv")
TRAINED_MSE = 1.0    # the best linear predictor's loss (module docstring)
CONSTANT_MSE = 3.5   # the constant (mean) predictor's
NOTE_STEPS = 1000
NOTE_EVAL_BATCHES = 1000


@lru_cache(maxsize=1)
def load_note() -> pd.DataFrame:
    note = pd.read_csv(NOTE_FILE, dtype=str)  # figures as published: "0.10" keeps its 0
    note["value"] = note["mse"].astype(float)
    note["conditions"] = [dict(c.split("=", 1) for c in text.split(";"))
                          for text in note["conditions"]]
    return note


def _holds(config: dict, conditions: dict) -> bool:
    return all(key in config and value_key(config[key]) == value_key(value)
               for key, value in conditions.items())


def note_rows(configs: list[dict]) -> list[dict | None]:
    """The note's row for each point (its runs' flattened config), or None. Where two of the
    note's tables hold the same setting (its lr table's warm-up row is its init table's
    default), the row comes from the table that matches most of these points."""
    note = load_note()
    matches = [[i for i, c in enumerate(note["conditions"]) if _holds(config, c)]
               for config in configs]
    tally = pd.Series([note.at[i, "table"] for m in matches for i in m]).value_counts()
    rows = []
    for m in matches:
        best = max(m, key=lambda i: (tally[note.at[i, "table"]], -i), default=None)
        rows.append(None if best is None else {**note.loc[best].to_dict(), "index": best})
    return rows


def comparable(config: dict) -> bool:
    """The run is the note's length: 1,000 steps and 1,000 batches scored."""
    steps = config.get("train.num_epochs", 0) * config.get("data.steps_per_epoch", 0)
    return steps == NOTE_STEPS and config.get("data.eval_batches") == NOTE_EVAL_BATCHES


def trained(mse) -> pd.Series:
    return pd.to_numeric(mse, errors="coerce") < TRAINED_MSE


def _mean_std(values: pd.Series, digits: int = 3) -> str:
    if values.empty:
        return "—"
    std = values.std(ddof=1)
    return f"{values.mean():.{digits}f}" + ("" if pd.isna(std) else f" ± {std:.{digits}f}")


def note_tables(df: pd.DataFrame, by: list[str]) -> str:
    """A row per point in the note's layout: its setting (the note's row name where it is
    one), runs, trained fraction, MSE (train mode: the note's figure) and eval-mode MSE as
    mean ± std with each seed's value; under it, the note's own figure."""
    groups = list(df.groupby(by, dropna=False, sort=True)) if by else [((), df)]
    configs = [g.iloc[0].to_dict() for _, g in groups]  # a point's config: its first run's
    matched = note_rows(configs)
    # the note's rows in its order, then the points it has none for
    order = sorted(range(len(groups)), key=lambda i: (matched[i] is None,
                                                       (matched[i] or {}).get("index", i), i))
    groups, configs, matched = ([x[i] for i in order] for x in (groups, configs, matched))
    header = ["setting", "runs", f"trained (MSE < {TRAINED_MSE:g})", "MSE, mean ± std",
              "MSE per seed", "eval-mode MSE, mean ± std"]
    lines, unequal = [], False
    for (key, g), config, row in zip(groups, configs, matched):
        key = key if isinstance(key, tuple) else (key,)
        point = ", ".join(f"{k}={label(v)}" for k, v in zip(by, key)  # null: a key it lacks
                          if label(v) != "null") or "all runs"
        done = g[g["status"] == "completed"].sort_values("seed")
        mse = pd.to_numeric(done["mse"], errors="coerce").dropna()
        bad = [f"{int((g['status'] == s).sum())} {s}" for s in ("failed", "diverged",
                                                                 "interrupted")
               if (g["status"] == s).any()]
        name = f"{row['row']} ({point})" if row else point
        lines.append([name, f"{len(done)}" + (f" (+{', '.join(bad)})" if bad else ""),
                      f"{int(trained(mse).sum())} of {len(mse)}", _mean_std(mse),
                      ", ".join(f"{v:.3f}" for v in mse) or "—",
                      _mean_std(pd.to_numeric(done["eval_mode_mse"], errors="coerce").dropna())])
        if row:
            fair = comparable(config)
            unequal |= not fair
            lines.append([f"{row['row']} (the note, {row['table']} table)", "1", "",
                          row["mse"] + ("" if fair else " (1,000 steps; ours fewer)"),
                          "", ""])
    table = "\n".join("| " + " | ".join(str(c).replace("|", "\\|") for c in line) + " |"
                      for line in [header, ["---"] * len(header), *lines])
    note = (f"\nMSE: the note's loss, mean(0.5 * (y - target)**2), over fresh batches after "
            f"training, with dropout on as the note scored it (train mode); eval-mode MSE: the "
            f"same batches without dropout. Trained: MSE below {TRAINED_MSE:g}, the best "
            f"linear predictor's loss; predicting the mean scores {CONSTANT_MSE:g} "
            f"(runner/report/note.py). The note's figures are single runs.\n")
    if unequal:
        note += ("Runs here are shorter than the note's 1,000 steps and 1,000 scored batches "
                 "(reproduce --quick): the note's figures are not comparable with them.\n")
    return table + "\n" + note
