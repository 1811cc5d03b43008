"""The manifest's history: every command run in one sweep folder, and the runs each asked for.

A sweep folder is named by the sweep (results/num_hiddens), not by the command, so a second
command under the same name (another model's points) lands beside the first's runs. Its
manifest keeps the first command and its runs: `commands` lists each command once, as typed,
with the run folders it planned; each run lists the indices of the commands that asked for it.
The top-level `command` and `started_at` are the latest sitting's. The report reads the history
to show each command's points in a table of its own (runner/report/commands.py)."""
import errno
import os
import sys
from pathlib import Path

from runner.result import write_json_atomic

# Disk space held beside the manifest while the sweep runs: on a disk the runs fill, the
# sitting's last write (every run's status) frees it and lands in its place
RESERVE = ".manifest.reserve"


def typed_command(argv: list[str] | None = None) -> list[str]:
    """The command as the user typed it: `python -m runner ...` when run as a module
    (sys.argv[0] is then the path of runner/__main__.py, which earlier manifests recorded),
    `runner ...` for the console script (runner.__main__:cli), else argv as it is."""
    argv = list(sys.argv if argv is None else argv)
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    as_module = spec is not None and spec.name in ("runner", "runner.__main__")
    if argv and (as_module or Path(argv[0]).as_posix().endswith("runner/__main__.py")):
        return ["python", "-m", "runner", *argv[1:]]
    if argv and Path(argv[0]).name == "runner":
        return ["runner", *argv[1:]]
    return argv


def earlier_commands(old: dict) -> list[dict]:
    """The commands an existing manifest records; a manifest of an earlier runner, which kept
    only its last command, gives that one, with all its runs."""
    if "commands" in old:
        return [dict(c) for c in old["commands"]]
    if old.get("runs"):
        return [{"command": typed_command(old.get("command") or []),
                 "started_at": old.get("started_at"), "runs": [r["dir"] for r in old["runs"]]}]
    return []


def earlier_runs(old: dict) -> list[dict]:
    """An existing manifest's runs, each with the commands that asked for it (an earlier
    runner's manifest had one command: index 0)."""
    return [{**r, "commands": r.get("commands", [0])} for r in old.get("runs", [])]


def add_command(commands: list[dict], command: list[str], started_at: str,
                runs: list[str]) -> int:
    """Put this command in the history (once: the same command again is a resume) with the
    run folders it plans; returns its index."""
    for i, entry in enumerate(commands):
        if entry["command"] == command:
            entry["runs"] = sorted({*entry["runs"], *runs})
            return i
    commands.append({"command": command, "started_at": started_at, "runs": runs})
    return len(commands) - 1


def current_runs(manifest: dict) -> set[str] | None:
    """The run folders the latest sitting's command planned (None: every run, as in a
    manifest of an earlier runner)."""
    return next((set(c["runs"]) for c in manifest.get("commands", [])
                 if c["command"] == manifest.get("command")), None)


def write_manifest(path: Path, manifest: dict, last: bool = False) -> None:
    """Write the manifest atomically, then hold room for the next write (reserve); on a full
    disk, write it again in that room. The sitting's last write frees the room, and one that
    fails even so is one line: the manifest then says what it said before, and the runs'
    result.json files what ran."""
    held = path.with_name(RESERVE)
    try:
        try:
            write_json_atomic(path, manifest)
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT) or not held.exists():
                raise
            held.unlink()
            write_json_atomic(path, manifest)
    except OSError as e:
        if not last:
            raise
        print(f"[sweep {manifest['sweep']}] {path} not updated ({e}): it says what it said "
              f"before; the runs' result.json files say what ran", file=sys.stderr, flush=True)
    if last:
        held.unlink(missing_ok=True)
    else:
        reserve(path)


def reserve(path: Path) -> None:
    """Hold room for the manifest at `path` to be written again (twice its size, and a page)
    (bytes written out: a sparse file holds nothing); none where the disk has no room."""
    held = path.with_name(RESERVE)
    try:
        with open(held, "wb") as f:
            f.write(bytes(2 * path.stat().st_size + 4096))
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        held.unlink(missing_ok=True)

