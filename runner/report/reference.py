"""The published study's numbers, as data, to set beside a sweep's own.

seed_study.csv (next to this module) transcribes the study's Tables 9-10 and 12-20, as copied
in shared/reference/seed_study.md: RNN, LSTM and GRU character-level language models on *The
Time Machine* (d2l's code, first 10,000 character tokens, SGD with gradient clipping to norm 1),
one factor at a time from the baseline num_hiddens 512, 500 epochs, batch 32, 35 steps, lr 1,
sequential sampling; each number the mean of 20 runs; tokens/sec measured on the authors'
personal CPU. One row per published number, exactly as published (thousands separators
dropped: "160,003" -> 160003; Table 12 prints the same point as 160,003.4):

    table       "9-10", "12", "13", "14", "15", "16-19", "20"
    factor      our config key: model.num_hiddens, data.num_steps, data.batch_size, optim.lr,
                model.num_layers, data.sampling
    value       the factor's value as our config or sweep writes it (text: 32, 0.01, sequential)
    model.cell  rnn (nn.RNN), lstm, gru, rnn_scratch (d2l's RNN from scratch, models/scratch.py)
    metric      train_perplexity or tokens_per_sec (the study has no held-out perplexity)
    reference   the number
    setting     what else held, in words

Table 12 and the RNN rows of Tables 16-19 are the same experiments: both are kept, each
labelled; reference_for keeps one of them per point (see there).
"""
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE_FILE = Path(__file__).with_name("seed_study.csv")
COLUMNS = ["table", "factor", "value", "model.cell", "metric", "reference", "setting"]


@lru_cache(maxsize=1)
def _read() -> pd.DataFrame:
    return pd.read_csv(REFERENCE_FILE, dtype={c: str for c in COLUMNS if c != "reference"}
                       | {"reference": float}, keep_default_na=False)


def load_reference() -> pd.DataFrame:
    """The study's numbers, one row per number (COLUMNS); every column text but "reference".
    Read once; each call gets its own copy."""
    return _read().copy()


def value_key(value) -> float | str:
    """What a config value compares as: a number when it reads as one (1, 1.0 and "1" alike),
    else its text (booleans as true/false, as one would type them)."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _empty(factor: str | None) -> pd.DataFrame:
    columns = ["model.cell", *([factor] if factor else []), "metric", "reference", "table",
               "setting"]
    return pd.DataFrame({c: pd.Series(dtype=float if c == "reference" else object)
                         for c in columns})


def reference_for(summary: pd.DataFrame, by: list[str], cells: list[str]) -> pd.DataFrame:
    """The study's numbers for this sweep's points: rows whose factor is the swept one (the one
    key of `by` other than "model.cell"), whose model.cell is among `cells` (the point's own
    cell when model.cell is swept) and whose value is one of the swept values. Columns:
    "model.cell", the factor (holding the summary's own value, so that it labels like the
    sweep's), "metric", "reference", "table", "setting"; empty when nothing matches (a factor
    the study never published, or no single factor).

    Table 12 repeats the RNN row of Tables 16-19: where two tables publish the same point,
    one is kept: the multi-model table when model.cell is swept (the layout of Tables 16-19),
    else the one-model table (Table 12).

    Only the swept factor is checked: the settings held fixed (epochs, ...) are the caller's to
    compare, with the "setting" column."""
    others = [k for k in by if k != "model.cell"]
    factor = others[0] if len(others) == 1 else None
    if factor is None or factor not in summary.columns:
        return _empty(factor)
    ref = load_reference()
    ref = ref[ref["factor"] == factor]
    cell_swept = "model.cell" in by
    if cell_swept:
        points = [(c, v) for c, v in zip(summary["model.cell"], summary[factor])]
    else:
        points = [(c, v) for c in cells for v in summary[factor]]
    keys = {(str(c), value_key(v)): v for c, v in reversed(points)}  # the first one wins
    matched = [keys.get((c, value_key(v))) for c, v in zip(ref["model.cell"], ref["value"])]
    found = [m is not None for m in matched]
    ref = ref[found].assign(**{factor: [m for m in matched if m is not None]})
    if ref.empty:
        return _empty(factor)
    # one table per point: the one with the most model cells when they are swept, else fewest
    width = load_reference().groupby("table")["model.cell"].nunique()
    ref = ref.assign(_order=ref["table"].map(width) * (-1 if cell_swept else 1))
    ref = ref.sort_values("_order", kind="stable").drop_duplicates(
        ["model.cell", "value", "metric"]).sort_index()
    return ref[["model.cell", factor, "metric", "reference", "table", "setting"]].reset_index(
        drop=True)


def reference_series(ref: pd.DataFrame, factor: str, metric: str) -> pd.DataFrame:
    """One metric's study numbers as a long table for plotting: "value" (the factor's value),
    "series" (the model cell) and the metric's name (the number). `ref` is reference_for's
    answer, or load_reference()'s (then the value is a number where every value reads as one).
    """
    if "factor" in ref.columns:  # the whole CSV: its value column is text
        ref = ref[ref["factor"] == factor]
        values = pd.to_numeric(ref["value"], errors="coerce")
        values = ref["value"] if values.isna().any() else values
    elif factor in ref.columns:
        values = ref[factor]
    else:
        return pd.DataFrame(columns=["value", "series", metric])
    keep = (ref["metric"] == metric).to_numpy()
    return pd.DataFrame({"value": values[keep].to_numpy(),
                         "series": ref["model.cell"][keep].to_numpy(),
                         metric: ref["reference"][keep].to_numpy(dtype=float)})
