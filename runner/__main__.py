"""`python -m runner [overrides...]`: compose the config with Hydra and run it.

Exit codes: 0 when the run completed or diverged (a sweep: no run failed); 1 when a run failed
(a sweep: any run failed or was interrupted), or could not write its outputs (a full disk:
one line, no traceback); 2 for bad input, refused before any work with one
message (`error: ...`) and no traceback: a config Hydra cannot compose (an unknown option of a
group, an unknown key), a bad value, a bad corpus file, an output folder that cannot be used.
"""
import errno
import re
import shlex
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from data import DataError
from runner.config_dir import CONF_DIR
from runner.errors import ConfigError
from runner.hydra_errors import bad_input
from runner.hydra_private import hydra_raises, hydra_reports, user_wants_tracebacks
from runner.result import RESULT_FILE, read_result
from runner.run import run
from runner.run.interrupt import Interrupted
from runner.run.objective import objective_value
from runner.run.output import check_not_nested
from runner.sweep.job import run_job
from runner.sweep.manifest import typed_command

RUNNER_SWEEPER = "hydra_plugins.runner_sweeper.runner_sweeper.RunnerSweeper"


# an absolute path: conf/ in a checkout, runner/conf/ in an installed wheel (config_dir.py)
@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> str | list[str] | float:
    hydra_reports()  # from here on Hydra reports errors its own way: a run's, exit 1
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:  # one run of a sweep: never raises
        out_dir = Path(hydra_cfg.runtime.output_dir)
        status = run_job(cfg, out_dir, Path(hydra_cfg.sweep.dir))
        if hydra_cfg.sweeper.get("_target_") == RUNNER_SWEEPER:
            return status  # its summary counts the runs by status (a pack's: one each)
        # another sweeper (a search: conf/hparams_search/) optimises the objective's number
        return objective_value(read_result(out_dir / RESULT_FILE), cfg.objective.metric)
    try:
        check_not_nested(hydra_cfg.run.dir, "hydra.run.dir")  # a single run, not in a sweep
        return run(cfg, hydra_cfg.runtime.output_dir)["status"]
    except (ConfigError, DataError) as e:  # bad input: one clear message, no traceback
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:  # SIGTERM or Ctrl-C: checkpointed and recorded; one line
        # the default run folder is named by the time: resuming needs this one named
        print(f"interrupted ({e}): {e.kept}; this command continues it: "
              f"{resume_command(hydra_cfg.runtime.output_dir)}", file=sys.stderr)
        sys.exit(e.exit_code)
    except OSError as e:  # a disk that filled (or a folder lost) while it trained: one line
        # the checkpoints are written atomically: the last one is whole, and the run goes on
        # from it; the result could not be written, so nothing says `completed` wrongly
        free = " free some space, then" if e.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        print(f"error: the run could not write to {hydra_cfg.runtime.output_dir}: {e};{free} "
              f"this command continues it from its last checkpoint: "
              f"{resume_command(hydra_cfg.runtime.output_dir)}", file=sys.stderr)
        sys.exit(1)


def resume_command(output_dir: str, argv: list[str] | None = None) -> str:
    """The typed command (`argv`, default sys.argv) with hydra.run.dir naming the stopped
    run's folder, to paste into a shell as it is: the folder quoted for Hydra (a sweep-like
    name's `=` and `,` would not parse) and the whole override for the shell (spaces)."""
    args = [a for a in typed_command(argv)
            if a.lstrip("+~").split("=", 1)[0] != "hydra.run.dir"]
    return shlex.join([*args, f"hydra.run.dir={hydra_quoted(str(output_dir))}"])


def hydra_quoted(value: str) -> str:
    """`value` as a quoted Hydra override value, read back as it is: in double quotes (single
    where the value holds a double quote and no single one), where a backslash escapes the
    quote, so backslashes before a quote (or before the closing one) are doubled."""
    q = "'" if '"' in value and "'" not in value else '"'
    escaped = re.sub(rf"(\\+)(?={q}|$)", lambda m: m.group(1) * 2, value)
    return q + escaped.replace(q, "\\" + q) + q


def cli() -> None:
    """main(), with every error raised before the task function starts (Hydra's composition,
    the sweeper's checks, the output folder) reported as bad input: one `error: ...` message
    and exit code 2. Hydra would print its own messages, some over many lines, and exit 1."""
    hydra_raises()  # to here, until the task function starts
    try:
        main()
    except Exception as e:  # only before the task function: it restores Hydra's reporting
        message = bad_input(e, sys.argv[1:])
        if message is None or user_wants_tracebacks():
            traceback.print_exc()
        if message is None:  # not the input's fault (a bug, a launcher that died): exit 1
            sys.exit(1)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    cli()
