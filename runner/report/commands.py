"""A sweep folder that several commands ran in (runner/sweep/manifest.py: the manifest's
`commands`, each with the run folders it planned): the report shows each command's points in
a table of its own, never one long table of every point of every command, which would drop
the study's rows (one model per table) and mix what was asked separately."""
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

PREFIXES = (["python", "-m", "runner"], ["runner"])  # the manifest's command as typed


def command_groups(folder: Path) -> list[tuple[list[str], list[str]]]:
    """(the command's arguments, its run folders) for each command of the folder's manifest
    that asked for points of its own (a command that asked the same runs again is the first's);
    [] when one command (or none) ran there: the report is as it was."""
    try:
        manifest = json.loads((Path(folder) / "manifest.json").read_text())
    except (OSError, ValueError):
        return []
    commands = manifest.get("commands", []) if isinstance(manifest, dict) else []
    if len(commands) < 2:
        return []
    groups, seen = [], set()
    for entry in commands:
        runs = frozenset(entry.get("runs", []))
        if runs in seen:  # the same points asked again (with a tracker, another launcher)
            continue
        seen.add(runs)
        argv = list(entry.get("command", []))
        for prefix in PREFIXES:
            if argv[:len(prefix)] == prefix:
                argv = argv[len(prefix):]
                break
        groups.append((argv, sorted(runs)))
    return groups if len(groups) > 1 else []


def tables_by_command(folder: Path, df: pd.DataFrame,
                      tables_of: Callable[[pd.DataFrame], str]) -> str | None:
    """One section per command: its own points' tables (`tables_of` a frame of runs, as
    write_report makes them for the whole folder); None when one command ran there."""
    groups = command_groups(folder)
    if not groups:
        return None
    shared = set.intersection(*(set(args) for args, _ in groups))
    parts = []
    for i, (args, runs) in enumerate(groups, 1):
        mine = df[df["path"].isin(runs)]
        body = tables_of(mine) if not mine.empty else "No result of this command yet.\n"
        # the heading: what sets this command apart from the others; the whole command below
        own = " ".join(a for a in args if a not in shared)
        heading = f"`{own}`" if own else "the arguments every command shares, alone"
        parts.append(f"## Command {i}: {heading}\n\n`{' '.join(args)}`: {len(mine)} runs.\n\n"
                     f"{body}")
    return "\n".join(parts)
