"""The sweep's summary line, beyond its counts: what a sitting did besides training (runs that
ran on without a tracker, finished runs replayed into a new tracker, results kept from another
code version). Each note reads the runs' own result.json."""
from pathlib import Path

from runner.result import PENDING, RESULT_FILE, SKIPPED, read_result, version_label


def skipped(run: dict) -> bool:
    """Whether a manifest entry was kept, not run, this sitting: `"skipped": true` beside the
    kept result's own status (`"status": "skipped"` in manifests of earlier runners)."""
    return run.get("skipped", run["status"] == SKIPPED)


def summary_notes(sweep_dir: Path, runs: list[dict], started_at: str) -> str:
    """The notes of the sitting that started at `started_at`, each in brackets ('' if none)."""
    results = {r["dir"]: read_result(Path(sweep_dir) / r["dir"] / RESULT_FILE) or {}
               for r in runs}
    return (logger_errors_note(runs, results) + replayed_note(runs, results, started_at)
            + other_code_note(runs, results))


def logger_errors_note(runs, results) -> str:
    """How many runs of this sitting ran on without a tracker that failed (runner/loggers)."""
    n = sum(bool(results[r["dir"]].get("logger_errors"))
            for r in runs if not skipped(r) and r["status"] != PENDING)
    return f" ({n} with logger errors: see their result.json logger_errors)" if n else ""


def replayed_note(runs, results, started_at: str) -> str:
    """How many skipped runs were replayed this sitting into a tracker they had not been
    logged to (runner/run/trackers.py replay_into_new_trackers), and which."""
    trackers, n = set(), 0
    for r in filter(skipped, runs):
        late = {k for k, at in results[r["dir"]].get("replayed_at", {}).items()
                if at >= started_at}
        trackers, n = trackers | late, n + bool(late)
    return (f" ({n} finished runs replayed into {', '.join(sorted(trackers))}, which they "
            f"had not been logged to)" if n else "")


def other_code_note(runs, results) -> str:
    """How many skipped runs kept a result made by another code version than this one."""
    from runner.run.environment import code_version
    from runner.run.resume import other_code_version

    current = version_label(code_version())
    kept = [r for r in runs if skipped(r) and other_code_version(results[r["dir"]], current)]
    return (f" ({len(kept)} results from another code version kept; overwrite=true "
            f"re-runs them)" if kept else "")
