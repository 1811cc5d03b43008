"""`python -m runner.report FOLDER`: the report of a folder of runs (runner/report/__init__.py)."""
import argparse
import signal
import sys
from pathlib import Path

from runner.report import __doc__ as DOC
from runner.report import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.report", description=DOC,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a folder of runs (searched recursively)")
    args = parser.parse_args(argv)
    try:
        write_report(args.folder)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (stop): no write left half-done
        name = str(e) or "SIGINT"
        print(f"stopped ({name}) while writing the report of {args.folder}: the same command "
              f"writes it", file=sys.stderr)
        return 128 + signal.Signals[name]
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def stop(signum: int, frame) -> None:
    """SIGTERM as Ctrl-C: the write in progress removes its temp file (runner/result.py)."""
    signal.signal(signum, signal.SIG_IGN)  # a second one while that is done: ignored
    raise KeyboardInterrupt(signal.Signals(signum).name)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop)
    sys.exit(main())
