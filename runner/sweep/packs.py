"""launcher.pack=N in a sweep: the runs of one point that differ only by seed, at most N of
them, go to one job, which trains them as one pack (runner/run/pack.py, docs/packing.md).

The narrowest change that keeps Hydra's launchers as they are: the sweeper plans every run
(manifest, folders) as ever, then launches one job per pack, its first member's; it writes
`.packs.json` in the sweep folder (each launched job's folder -> its members' folders and
seeds), which that job reads to run its members, each into its own folder, and it returns
one status per member. Every launcher runs such a job as any other: serial, joblib
(launcher=parallel), and submitit's (submitit_local, slurm), whose requeued job (a timeout,
`scontrol requeue`, preemption) runs the same job again: it reads `.packs.json`, each member
resumes from its own checkpoint (written on the signal: runner/run/pack.py) and a finished
member is skipped. A job that ended without a result fails every member it held, with why."""
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from runner.result import read_result, write_json_atomic

PACKS = ".packs.json"


def seed_of(override: str) -> int | None:
    key, _, value = override.partition("=")
    return int(value) if key.lstrip("+") == "seed" else None


def pack_groups(jobs, size: int) -> list[list[int]]:
    """The jobs' indexes in groups of at most `size` whose overrides differ only in seed, in
    the order of the plan."""
    points: dict[tuple, list[int]] = {}
    for i, job in enumerate(jobs):
        point = tuple(o for o in job if seed_of(o) is None)
        points.setdefault(point, []).append(i)
    groups = [ids[k:k + size] for ids in points.values() for k in range(0, len(ids), size)]
    return sorted(groups, key=lambda g: g[0])


def plan_packs(sweep, config: DictConfig, jobs, batches, max_batch_size):
    """The batches to launch: under launcher.pack > 1, one job per pack (its first member's),
    with `.packs.json` written for them; else `batches` as they are. Sets sweep.groups."""
    size = OmegaConf.select(config, "launcher.pack", default=1)
    path = Path(sweep.dir) / PACKS
    if size == 1:
        path.unlink(missing_ok=True)  # an earlier sitting's: no job reads it now
        return batches
    groups = pack_groups(jobs, size)
    folders = [sweep.folder(job) for job in jobs]
    write_json_atomic(path, {folders[g[0]]: [{"dir": folders[i], "seed": seed_of_job(jobs[i])}
                                             for i in g] for g in groups})
    sweep.groups = groups
    leaders = [jobs[g[0]] for g in groups]
    step = max_batch_size or len(leaders)
    return [leaders[k:k + step] for k in range(0, len(leaders), step)]


def seed_of_job(job) -> int:
    seeds = [s for s in map(seed_of, job) if s is not None]
    if not seeds:
        raise ValueError(f"job {list(job)} names no seed: the sweeper's seed axis gives each")
    return seeds[-1]


def members_of(cfg: DictConfig, sweep_dir: Path, out_dir: Path) -> list[dict] | None:
    """This job's pack (its members' folders and seeds, its own first), or None: a job alone."""
    if OmegaConf.select(cfg, "launcher.pack", default=1) == 1:
        return None
    packs = read_result(Path(sweep_dir) / PACKS) or {}
    mine = Path(out_dir).resolve().relative_to(Path(sweep_dir).resolve())
    return packs.get(str(mine))


def outcomes_of(groups, values, runs: int) -> list[str]:
    """Each planned run's outcome, from each launched job's (a list, one per member; a
    single status or a failed job's "failed" counts for every member)."""
    outcomes = ["failed"] * runs
    for group, value in zip(groups, values):
        each = value if isinstance(value, list) and len(value) == len(group) else \
            [value if isinstance(value, str) else "failed"] * len(group)
        for i, outcome in zip(group, each):
            outcomes[i] = outcome
    return outcomes


def reasons_of(groups, reasons, runs: int) -> list[str | None]:
    """Each planned run's reason for failing: its launched job's (a pack's job that raised,
    or that SLURM ended without a result: scancel, kill -9), else None."""
    each = [None] * runs
    for group, reason in zip(groups, reasons):
        for i in group:
            each[i] = reason
    return each
