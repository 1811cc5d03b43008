"""One job of a sweep: hold a device slot, run, report progress, never raise."""
import logging
import os
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from omegaconf import DictConfig, open_dict

from data import DataError
from runner.errors import ConfigError
from runner.result import FINISHED, RESULT_FILE, REUSED, SKIPPED, read_result
from runner.sweep.manifest import current_runs
from runner.sweep.sweeper import MANIFEST, PROGRESS, job_outcomes

log = logging.getLogger(__name__)


# Hydra's launcher classes (hydra.launcher._target_) by the runner's launcher names
HYDRA_LAUNCHERS = {"BasicLauncher": "serial", "JoblibLauncher": "joblib",
                   "LocalLauncher": "submitit_local", "SlurmLauncher": "slurm"}


def launcher_ran(cfg: DictConfig) -> tuple[str, int]:
    """The launcher Hydra runs this job with, and how many jobs it runs at once. `launcher=`
    names it, unless hydra/launcher was chosen the Hydra way: `hydra/launcher=joblib
    hydra.launcher.n_jobs=2` runs 2 jobs at once while launcher.name still says serial."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():  # run() called by a script, not by Hydra
        return cfg.launcher.name, 1
    node = HydraConfig.get().launcher
    target = str(node.get("_target_", ""))
    name = HYDRA_LAUNCHERS.get(target.rpartition(".")[2], target)
    if name != "joblib":
        return name, 1
    n_jobs = node.get("n_jobs") or 1  # joblib's own reading: -1 every core, -2 all but one
    return name, n_jobs if n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)


@contextmanager
def device_slot(cfg: DictConfig, sweep_dir: Path):
    """Under launcher=parallel, hold a device slot for the run and pin it there; yield the
    config to run and how many jobs may share its device. Under any other launcher the
    config records the one that ran (launcher_ran), so results and report say what ran."""
    if cfg.launcher.name != "parallel":
        name, jobs = launcher_ran(cfg)
        if name != cfg.launcher.name:
            cfg = cfg.copy()
            with open_dict(cfg):
                # the name alone (validation knows launcher's keys); how many jobs ran at
                # once is environment.concurrent_jobs
                cfg.launcher = {"name": name}
        yield cfg, jobs
        return
    from runner.sweep.slots import DeviceSlots, threads_per_job, visible_devices

    per = cfg.launcher.jobs_per_device
    devices = list(cfg.launcher.devices or visible_devices())
    slots = DeviceSlots(sweep_dir / ".slots", devices, per)
    with slots.acquire() as slot:
        cfg = cfg.copy()
        with open_dict(cfg):
            cfg.device = slot.device
            # every concurrent job's share of the cores, a GPU job's too (its CPU side)
            cfg.threads = threads_per_job(os.cpu_count() or 1, len(devices) * per)
        yield cfg, per


def run_job(cfg: DictConfig, out_dir: Path, sweep_dir: Path) -> str | list[str]:
    """One run of a sweep; returns its status for the summary (a pack's job, launcher.pack:
    one per member). Never raises (Ctrl-C aside): Hydra stops at the first job that raises
    and skips the sweep's closing work. Under launcher=parallel the run may go to a fresh
    process pinned to the slot (isolate.py); a pack stays in the worker."""
    from runner.run.output import log_file_fails_in_one_line
    from runner.sweep.isolate import in_fresh_process, run_fresh
    from runner.sweep.packs import members_of

    log_file_fails_in_one_line()  # a full disk: one line, not a traceback per log line
    members = members_of(cfg, Path(sweep_dir), Path(out_dir))
    folders = [Path(sweep_dir) / m["dir"] for m in members] if members else [Path(out_dir)]
    try:
        with device_slot(cfg, Path(sweep_dir)) as (job_cfg, sharing):
            if members:
                status = run_pack_here(job_cfg, members, folders, sharing)
            else:
                run_it = run_fresh if in_fresh_process(job_cfg) else run_here
                status = run_it(job_cfg, Path(out_dir), sharing)
    except Exception as e:  # no slot, a bad launcher setting, no process started
        log.error("%s failed: %s: %s", out_dir, type(e).__name__, e)
        status = ["failed"] * len(folders) if members else "failed"
    if (Path(sweep_dir) / MANIFEST).exists():  # the runner's sweeper's, not a search's
        try:
            with open(Path(sweep_dir) / PROGRESS, "a") as f:  # short appends: lines never mix
                for folder, outcome in zip(folders, status if members else [status]):
                    f.write(f"{folder.resolve().relative_to(Path(sweep_dir).resolve())} "
                            f"{outcome}\n")
        except OSError as e:  # a full disk: the sweeper still gets the status Hydra returns
            log.error("%s: progress not recorded: %s", out_dir, e)
        print(progress(Path(sweep_dir)), flush=True)
    return status


def run_pack_here(cfg: DictConfig, members: list[dict], folders: list[Path],
                  sharing: int) -> list[str]:
    """A pack's runs (runner/run/pack.py), in this process; each member's status. Never
    raises (Ctrl-C aside)."""
    from runner.run.pack import run_pack

    cfgs = []
    for member in members:
        cfgs.append(cfg.copy())
        with open_dict(cfgs[-1]):
            cfgs[-1].seed = member["seed"]
    try:
        outcomes = run_pack(cfgs, folders, concurrent_jobs=sharing)
    except Exception as e:  # the members' results say how each ended
        log.error("pack of %s failed: %s: %s", folders[0], type(e).__name__, e)
        return [(read_result(f / RESULT_FILE) or {}).get("status", "failed") for f in folders]
    return [outcome_of(o) if isinstance(o, dict) else "failed" for o in outcomes]


def outcome_of(result: dict) -> str:
    """A job's outcome from what run() returned."""
    return SKIPPED if result.get("skipped") else REUSED if result.get("reused") else \
        result["status"]


def run_here(cfg: DictConfig, out_dir: Path, sharing: int) -> str:
    """The run, in this process; its status. Never raises (Ctrl-C aside)."""
    from runner.run.execute import run

    try:
        return outcome_of(run(cfg, out_dir, concurrent_jobs=sharing))
    except (ConfigError, DataError) as e:  # bad input: nothing was written
        log.error("%s: %s", out_dir, e)
    except Exception as e:  # run() has written a failed result with the traceback
        log.error("%s failed: %s: %s", out_dir, type(e).__name__, e)
    return "failed"


def progress(sweep_dir: Path) -> str:
    """Runs finished / planned, failures, and an ETA from this sitting's pace, from the two
    files the sweep keeps: the manifest (the plan, and what had finished before it started)
    and the outcomes its jobs appended since. No job re-reads its siblings' results."""
    manifest = read_result(sweep_dir / MANIFEST)
    if not manifest:
        return f"[sweep {sweep_dir.name}] (no manifest)"
    planned = current_runs(manifest)  # this command's: not the folder's other commands'
    status = {r["dir"]: r["status"] for r in manifest["runs"]
              if planned is None or r["dir"] in planned}
    outcomes = job_outcomes(sweep_dir)
    status |= outcomes
    ran = [s for s in outcomes.values() if s not in (SKIPPED, REUSED)]  # trained this sitting
    done = sum(s in (*FINISHED, SKIPPED, REUSED) for s in status.values())
    failed = sum(s == "failed" for s in outcomes.values())
    left = sum(d not in outcomes and s not in FINISHED for d, s in status.items())
    elapsed = time.time() - datetime.fromisoformat(manifest["started_at"]).timestamp()
    eta = f"{elapsed / len(ran) * left:.0f}s" if ran and left else "-"
    return (f"[sweep {sweep_dir.name}] {done}/{len(status)} done, {failed} failed, "
            f"ETA {eta}")
