"""Sweeps: the seed axis, stable run folders, the manifest, device slots, failure isolation,
progress and the closing summary. Hydra runs the jobs (runner's sweeper plugin and Hydra's
launcher plugins); resume happens in each job, which skips a run already finished. All of it
is for the runner's own app (runner_app): any other Hydra app gets Hydra's basic sweep."""
import logging
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from hydra.core.utils import JobStatus
from omegaconf import DictConfig, OmegaConf, open_dict

from runner.errors import ConfigError
from runner.hydra_private import job_folder
from runner.result import (
    FINISHED,
    PENDING,
    RESULT_FILE,
    REUSED,
    SKIPPED,
    STATUSES,
    is_execution_key,
    now,
    read_result,
)
from runner.sweep.manifest import (
    add_command,
    earlier_commands,
    earlier_runs,
    typed_command,
    write_manifest,
)
from runner.sweep.notes import skipped, summary_notes
from runner.sweep.packs import outcomes_of, reasons_of
from runner.sweep.settings import refuse_duplicate_points

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
PROGRESS = ".progress"  # each job of this sitting appends "<folder> <status>": progress lines


def refuse(key: str, value) -> None:
    """Raise ConfigError, in validation's one-line form, when `key=value` breaks its rule
    (runner/run/validate.py): the sweeper's own settings are checked before anything is
    planned, launched or written."""
    from runner.run.validate import rule_problem

    if line := rule_problem(key, value):
        raise ConfigError(f"invalid config:\n  {line}")


# The runner's sweep settings (conf/config.yaml): an app whose config has both is the runner's
# own, and gets the seed axis, launcher sizing, the manifest, summary, report and exit code.
# Any other Hydra app (Hydra's plugin test suites, a user's own app) gets Hydra's basic sweep,
# untouched: its jobs return whatever they like, so there is no status to count or report.
RUNNER_KEYS = ("seed", "repeats")


def runner_app(config: DictConfig) -> bool:
    """Whether the composed config is the runner's (RUNNER_KEYS, at the top level)."""
    return all(key in config for key in RUNNER_KEYS)


def with_seed_axis(overrides, seed: int, repeats: int, parser):
    """`repeats` seeds per point: seed, seed + 1, ... (a single `seed=N` moves the start). An
    explicit seed sweep (seed=1,5,9) is kept as it is. Every run folder then names its seed."""
    refuse("repeats", repeats)  # 0 or less would plan no run at all
    if any(o.key_or_group == "seed" and o.is_sweep_override() for o in overrides):
        if repeats != 1:
            log.warning("repeats=%d ignored: the seeds are swept explicitly", repeats)
        return overrides
    given = [o for o in overrides if o.key_or_group == "seed"]
    # `+seed=3` added a seed the app lacks, and so must the axis (`seed=` would fail there);
    # after `seed=3` or `++seed=3` it is `seed=`, as ever, so run folders keep their names
    key = "+seed" if given and given[-1].get_key_element() == "+seed" else "seed"
    kept = [o for o in overrides if o.key_or_group != "seed"]
    return kept + parser.parse_overrides([f"{key}=range({seed},{seed + repeats})"])


def size_launcher(config: DictConfig) -> None:
    """launcher=parallel: one joblib worker per device slot; launcher=slurm: the GPU request
    from `device`. An app without the runner's `launcher` group keeps the hydra/launcher it
    chose, as it is."""
    name = OmegaConf.select(config, "launcher.name", default=None)
    if name == "slurm":
        from runner.sweep.slurm import size_slurm

        size_slurm(config)
    if name == "parallel":
        from runner.sweep.slots import visible_devices

        refuse("launcher.jobs_per_device", config.launcher.jobs_per_device)
        devices = config.launcher.devices or visible_devices()
        with open_dict(config):
            config.hydra.launcher.n_jobs = len(devices) * config.launcher.jobs_per_device


def exclude_keys(overrides, naming: DictConfig) -> list[str]:
    """The keys Hydra leaves out of a job's folder name: those of its overrides that are
    execution settings or under one (runner/result.py: logger.<any tracker>.<option> too),
    and any the config lists itself. Hydra matches exact keys, so each job is told its own
    (naming_override): the one list is EXECUTION_KEYS."""
    return sorted({*naming.exclude_keys,
                   *(o.key_or_group for o in overrides if is_execution_key(o.key_or_group))})


def naming_override(keys: list[str]) -> str:
    """The hydra override that gives a job these exclude_keys."""
    return ("hydra.job.config.override_dirname.exclude_keys=["
            + ",".join(f"'{k}'" for k in keys) + "]")


class Sweep:
    """The sweeper's side: plan, manifest, summary, report, exit code."""
    # the manifest's history (runner/sweep/manifest.py), set by start(): other commands' runs
    # in this folder, and every command with the runs it planned
    kept, commands = (), ()
    groups = None  # launcher.pack: each launched job's runs, as indexes of the plan (packs.py)

    def __init__(self, config: DictConfig, overrides, parser):
        refuse("hydra.sweeper.max_batch_size", config.hydra.sweeper.get("max_batch_size"))
        self.dir = Path(config.hydra.sweep.dir)
        self.name = self.dir.name
        self.parser = parser
        self.naming = config.hydra.job.config.override_dirname
        self.overrides = with_seed_axis(overrides, config.seed, config.repeats, parser)
        refuse_duplicate_points(self.overrides)  # seed=0,0: one folder planned twice
        from runner.loggers import logger_problems

        if problems := logger_problems(config.get("logger")):  # not once per job: before any
            raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
        self.started = time.time()

    @property
    def started_at(self) -> str:
        """The manifest's started_at: results finished since sort after it (ISO 8601 UTC)."""
        return datetime.fromtimestamp(self.started, timezone.utc).isoformat(timespec="seconds")

    def folder(self, job: list[str]) -> str:
        """The run folder Hydra will give this job (hydra.sweep.subdir: override_dirname)."""
        parsed = self.parser.parse_overrides(list(job))
        return job_folder(parsed, exclude_keys(parsed, self.naming), self.naming)

    def launched(self, jobs) -> list[list[str]]:
        """The jobs as the launcher gets them: each with its exclude_keys for Hydra."""
        return [[*job, naming_override(exclude_keys(self.parser.parse_overrides(list(job)),
                                                    self.naming))] for job in jobs]

    def start(self, jobs) -> None:
        from runner.run.output import check_not_nested, check_output_folder
        from runner.sweep.precheck import refuse_shared_folders

        folders = [self.folder(job) for job in jobs]
        refuse_shared_folders(jobs, folders)
        check_not_nested(self.dir, "hydra.sweep.dir")  # not inside a single run's folder
        check_output_folder(self.dir, files=(MANIFEST,))  # before anything is written there
        old = read_result(self.dir / MANIFEST) or {}
        self.commands = earlier_commands(old)
        known = len(self.commands)
        index = add_command(self.commands, typed_command(), self.started_at, folders)
        asked = {r["dir"]: r["commands"] for r in earlier_runs(old)}
        self.runs = []
        for job, folder in zip(jobs, folders):
            previous = read_result(self.dir / folder / RESULT_FILE) or {}
            self.runs.append({"dir": folder, "overrides": list(job),
                              "status": previous.get("status", PENDING),
                              "commands": sorted({*asked.get(folder, []), index})})
        # the runs of the folder's other commands: kept as they are, never replaced
        self.kept = [r for r in earlier_runs(old) if r["dir"] not in set(folders)]
        if self.kept and index == known:  # a new command, beside other commands' runs
            print(f"[sweep {self.name}] {self.dir} already holds the runs of "
                  f"{len(self.commands) - 1} other command(s): this one's are added beside "
                  f"them (manifest.json commands), and the report shows each command's points "
                  f"in a table of its own", flush=True)
        self.write_manifest()  # and room held for its last write, should the runs fill the disk
        (self.dir / PROGRESS).write_text("")  # this sitting's job outcomes, appended by jobs
        finished = sum(r["status"] in FINISHED for r in self.runs)
        print(f"[sweep {self.name}] {len(self.runs)} runs planned, {finished} already finished "
              f"-> {self.dir}", flush=True)

    def write_manifest(self, last: bool = False) -> None:
        write_manifest(self.dir / MANIFEST, {
            "sweep": self.name, "command": typed_command(), "started_at": self.started_at,
            "updated_at": now(), "runs": [*self.kept, *self.runs],
            "commands": list(self.commands)}, last)

    def finish(self, returns) -> None:
        """Every job has run: manifest, summary line, report; exit 1 if any run failed."""
        # A job that raised anyway (a launcher or Hydra error), or one its scheduler ended
        # without a result (launcher=slurm: scancel, kill -9), counts as failed, with why.
        outcomes = [ret.return_value if ret.status == JobStatus.COMPLETED else "failed"
                    for ret in returns]
        reasons = [None if ret.status == JobStatus.COMPLETED else f"{ret._return_value}"
                   for ret in returns]
        if self.groups is not None:  # one job per pack: one outcome per member, and a job
            outcomes = outcomes_of(self.groups, outcomes, len(self.runs))  # that ended
            reasons = reasons_of(self.groups, reasons, len(self.runs))  # fails all it held
        for run, reason in zip(self.runs, reasons):
            run.pop("reason", None)
            if reason is not None:
                run["reason"] = reason
                print(f"[sweep {self.name}] {run['dir']} failed: {reason}; the same command "
                      f"runs it again (from its checkpoint, if it wrote one)", file=sys.stderr)
        counts = self.record(outcomes)
        try:
            from runner.report import write_report
            from runner.run.interrupt import interruptible

            with interruptible():  # a signal: each write removes its temp file, then one line
                write_report(self.dir)
        except KeyboardInterrupt as e:  # the manifest is written: the report alone is missing
            print(f"[sweep {self.name}] stopped ({e or 'SIGINT'}) while writing the report; "
                  f"python -m runner.report {self.dir} writes it", file=sys.stderr, flush=True)
            sys.exit(getattr(e, "exit_code", 130))
        except Exception as e:  # the runs' results stand; say why the report is missing
            print(f"[sweep {self.name}] report failed: {e}", file=sys.stderr)
        if counts["failed"] or counts["interrupted"]:
            sys.exit(1)  # so scripts notice; every result is already written

    def stop(self, e: KeyboardInterrupt) -> None:
        """Ctrl-C or SIGTERM in the middle: the manifest gets every run's real status (the
        jobs that ended, the run stopped, the runs never reached), the summary line is
        printed, and the sweep exits 130 (143 for SIGTERM)."""
        ended = job_outcomes(self.dir)
        self.record([ended.get(r["dir"]) or self.stopped_status(r) for r in self.runs])
        code = getattr(e, "exit_code", 130)
        print(f"[sweep {self.name}] stopped ({e or 'SIGINT'}): the same command finishes it; "
              f"finished runs are kept, a stopped run resumes from its checkpoint",
              file=sys.stderr, flush=True)
        sys.exit(code)

    def stopped_status(self, run: dict) -> str:
        """A run with no outcome this sitting: `interrupted` if its result says it was stopped
        in this sitting, else what the manifest said (pending, or an earlier status)."""
        result = read_result(self.dir / run["dir"] / RESULT_FILE) or {}
        if (result.get("status") == "interrupted"
                and result.get("finished_at", "") >= self.started_at):
            return "interrupted"
        return run["status"]

    def record(self, outcomes: list[str]) -> dict:
        """Put each job's outcome in the manifest, print the summary line; returns the counts."""
        for run, outcome in zip(self.runs, outcomes):
            for flag in ("skipped", REUSED):  # this sitting's outcome replaces the last's
                run.pop(flag, None)
            if outcome in (SKIPPED, REUSED):  # kept or copied: say what the result is
                kept = read_result(self.dir / run["dir"] / RESULT_FILE) or {}
                flag = "skipped" if outcome == SKIPPED else REUSED
                run.update({"status": kept.get("status", run["status"]), flag: True})
            else:
                run["status"] = outcome
        self.write_manifest(last=True)  # a full disk: in the room held, or one line
        order = ("completed", "failed", "diverged", SKIPPED, REUSED, "interrupted", PENDING)
        assert set(order) == {*STATUSES, SKIPPED, REUSED, PENDING}  # every status a run can have
        counts = {s: sum(r["status"] == s and not skipped(r) and not r.get(REUSED)
                         for r in self.runs) for s in order}
        counts[SKIPPED] = sum(map(skipped, self.runs))
        counts[REUSED] = sum(bool(r.get(REUSED)) for r in self.runs)
        print(f"[sweep {self.name}] {len(self.runs)} runs: "
              + ", ".join(f"{n} {s}" for s, n in counts.items()
                          if n or s not in ("interrupted", PENDING, REUSED))
              + summary_notes(self.dir, self.runs, self.started_at)
              + f" in {time.time() - self.started:.0f}s -> {self.dir}", flush=True)
        return counts


def job_outcomes(sweep_dir: Path) -> dict[str, str]:
    """{run folder: status} of the jobs that ended this sitting (each appends one line)."""
    try:
        lines = (Path(sweep_dir) / PROGRESS).read_text().splitlines()
    except FileNotFoundError:
        return {}
    return dict(line.rsplit(" ", 1) for line in lines if " " in line)
