"""`python -m runner.report FOLDER`: the report of a folder of runs (runner/report/__init__.py)."""
import argparse
import sys
from pathlib import Path

from runner.report import __doc__ as DOC
from runner.report import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.report", description=DOC,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a folder of runs (searched recursively)")
    args = parser.parse_args(argv)
    from runner.run.interrupt import interruptible

    try:
        with interruptible():  # SIGTERM: each write removes its temp file, then one line
            write_report(args.folder)
    except KeyboardInterrupt as e:
        print(f"stopped ({e or 'SIGINT'}) while writing the report of {args.folder}: the same "
              f"command writes it", file=sys.stderr)
        return getattr(e, "exit_code", 130)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
