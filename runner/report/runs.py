"""The results of a folder as one table: every valid result.json read once, flattened to one
row per run (runs.csv), and the config keys that vary across them (the factors)."""
import json
import logging
import math
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd

from runner.result import (
    EXECUTION_KEYS,
    RESULT_FILE,
    RETIRED,
    RETIRED_KEYS,
    SCHEMA_FILE,
    STATUSES,
    flatten,
    read_result,
    validate_result,
)

log = logging.getLogger(__name__)

# The schema is the one list of metric names: those every result has, then each task's own
# (train_perplexity: language model and translation; bleu: translation; *mse: regression).
_SCHEMA = json.loads(SCHEMA_FILE.read_text())["properties"]["metrics"]
METRICS = list(dict.fromkeys(["train_perplexity", "best_train_perplexity", *_SCHEMA["required"],
                              *_SCHEMA["properties"]]))
ENVIRONMENT = ["device", "device_name", "threads", "concurrent_jobs", "impl"]
RUN_COLUMNS = ["run_id", "status", "path", "task", "sees_future"]
# No metric a run records gets here: 10^12 tokens/s, a perplexity past any vocabulary, a
# terabyte of memory; a value at or beyond it is a file edited or broken (odd_values).
ABSURD = 1e12


def label(value) -> str:
    """A config value as one types it in an override: 256, 0.001, true, null. Tables, plots
    and findings name points with it, so 32 and 32.0 read "32" everywhere."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if not isinstance(value, float | np.floating):
        return str(value)
    short = f"{value:g}"  # 6 significant digits: two close values must not share a label
    if float(short) == value:
        return short
    exact = repr(float(value))  # the shortest text that reads back as this very float
    return exact.removesuffix(".0")


def order(value) -> tuple:
    """Sort key across mixed types: numbers by value (32 before 128, never as text), then
    text, null last. Points, samples and warnings all list their values in this order."""
    if (isinstance(value, int | float | np.integer | np.floating)
            and not isinstance(value, bool | np.bool_) and math.isfinite(value)):
        return (0, float(value), "")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2, 0.0, "")
    return (1, 0.0, str(value))


def odd_values(metrics: dict) -> dict[str, str]:
    """The metrics holding a value no run records -> that value as text: NaN or inf (written
    as null by the runner: a file from elsewhere, or edited) or one of ABSURD or more, whose
    mean and spread would overflow to a 300-digit number ± inf."""
    return {k: f"{v:g}" for k, v in metrics.items() if isinstance(v, int | float)
            and not isinstance(v, bool) and not abs(v) < ABSURD}  # NaN fails `<` too


def load_results(folder: Path) -> tuple[list[dict], dict]:
    """Valid results under `folder`, each with "_path" (its folder relative to `folder`) added,
    and the counts. A bad file is a warning, never a crash: one broken run must not hide the
    others; so is a metric with an odd value (odd_values): null, listed in "_left_out". A
    run copied twice counts once (its first path in sorted order); results of schema_version 1
    are skipped with one warning for all of them (counts["old"])."""
    folder = Path(folder)
    results, skipped, old, copies, strays, manifests = {}, 0, [], [], [], {}
    for path in sorted(folder.rglob(RESULT_FILE)):
        if not listed_in_manifest(path.parent, folder, manifests):
            strays.append(path)
            continue
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
            if odd := odd_values(obj["metrics"]):  # out of every mean, plot and test
                log.warning("report: %s: left out of every statistic: %s (no run records "
                            "these: NaN and inf, which JSON cannot hold, or %g and beyond)",
                            path, ", ".join(f"{k} {v}" for k, v in odd.items()), ABSURD)
                obj = {**obj, "metrics": {**obj["metrics"], **dict.fromkeys(odd)},
                       "_left_out": odd}
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
    if strays:  # a single run, or another sweep, written into a sweep's folder
        log.warning("report: left out %d result(s) that no manifest.json lists (e.g. %s): not "
                    "runs of the sweep whose folder holds them", len(strays), strays[0])
    if copies:
        log.warning("report: %d duplicate result(s) counted once: same run_id as another "
                    "(e.g. %s is a copy of %s)", len(copies), *copies[0])
    results = list(results.values())
    counts = {"read": len(results), "skipped": skipped + len(old), "old": len(old),
              "duplicates": len(copies), "strays": len(strays)}
    counts |= {s: sum(r["status"] == s for r in results) for s in STATUSES}
    return results, counts


def listed_in_manifest(run_dir: Path, top: Path, manifests: dict) -> bool:
    """Whether every sweep folder from `run_dir` up to `top` lists it among its runs in its
    manifest.json (true where none is a sweep's): only a manifest's runs are its sweep's, not
    a single run or another sweep written into its folder (issue 26, defect 6). `manifests`:
    {folder: its runs' folders, or None}, filled as folders are read."""
    for sweep in (run_dir, *run_dir.parents):
        if sweep not in manifests:
            manifest = read_result(sweep / "manifest.json")
            runs = manifest.get("runs") if isinstance(manifest, dict) else None
            manifests[sweep] = ({r.get("dir") for r in runs if isinstance(r, dict)}
                                if isinstance(runs, list) else None)
        listed = manifests[sweep]
        if listed is not None and run_dir.relative_to(sweep).as_posix() not in listed:
            return False
        if sweep == top:
            return True
    return True


def _ignored(key: str) -> bool:
    parts = key.split(".")
    return any(".".join(parts[:i]) in (*EXECUTION_KEYS, *RETIRED_KEYS)
               for i in range(1, len(parts) + 1))


def implemented(config: dict, environment: dict) -> dict:
    """A run's config with model.impl saying what computed its cells, "nn" or "fused" (the
    model.impl typed, such as auto, is an execution setting: ignored). Results from before
    model.impl computed rnn, lstm and gru with torch.nn, and named the fused ones rnn_fused
    and gru_fused: read as the cell and impl they were, they compare with today's."""
    cell = config.get("model.cell")
    # before model.impl, torch.nn computed these three
    impl = environment.get("impl") or ("nn" if cell in ("rnn", "lstm", "gru") else None)
    if cell in RETIRED:
        cell, impl = RETIRED[cell], "fused"
    if impl is None:
        return config
    items = list(config.items())
    at = next((i + 1 for i, (k, _) in enumerate(items) if k == "model.cell"), len(items))
    return dict([*items[:at], ("model.cell", cell), ("model.impl", impl), *items[at:]])


def declared_metrics(results: list[dict]) -> dict[str, str]:
    """key -> display name of the metrics the results' tasks declare (result.json's
    declared_metrics) beyond METRICS: a task from outside runner reports its own."""
    declared = {}
    for r in results:
        declared |= {k: v["display"] for k, v in r.get("declared_metrics", {}).items()
                     if k not in METRICS}
    return declared


def tidy(results: list[dict]) -> pd.DataFrame:
    """One row per run, columns in a fixed order: run, config, metrics, environment.
    df.attrs["declared"]: declared_metrics(results)."""
    rows, config_columns = [], {}
    declared = declared_metrics(results)
    known = [*METRICS, *declared]
    for r in results:
        config = implemented({k: v for k, v in flatten(r["config"]).items() if not _ignored(k)},
                             r["environment"])
        config_columns |= dict.fromkeys(config)  # first-seen order, across differing configs
        rows.append({"run_id": r["run_id"], "status": r["status"], "path": r.get("_path", ""),
                     "task": r.get("task"), "sees_future": r["sees_future"], **config,
                     **{m: r["metrics"][m] for m in known if m in r["metrics"]},
                     **{f"environment.{k}": r["environment"].get(k) for k in ENVIRONMENT}})
    metrics = [m for m in known if any(m in r["metrics"] for r in results)]
    columns = [*RUN_COLUMNS, *config_columns, *metrics, *(f"environment.{k}" for k in ENVIRONMENT)]
    df = pd.DataFrame(rows, columns=columns).sort_values("path", kind="stable",
                                                         ignore_index=True)
    df.attrs["declared"] = declared
    return df


def swept_params(df: pd.DataFrame) -> list[str]:
    """Config columns that vary across runs, seed aside (repeats of a point, not a factor).
    Left out, as no factor: a key that exists only for some runs (model.nonlinearity: rnn
    cells only) when the other swept keys already tell its runs apart, and, when model.cell
    is swept, a key each model holds at one value (a model's own preset, such as the
    transformer's Adam lr and dropout)."""
    metrics = {*METRICS, *df.attrs.get("declared", {})}
    config = [c for c in df.columns if c not in {*RUN_COLUMNS, *metrics, "seed"}
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
