"""Every job of a runner sweep validated before any starts, as its run will validate it: a bad
value or an unknown key in one point is bad input (one message, exit 2, nothing written), not
one failed run per job found hours into the sweep."""
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from runner.errors import ConfigError
from runner.run import store
from runner.run.keys import without_added_keys
from runner.run.validate import validate
from runner.sweep.packs import seed_of

SHOWN = 5  # problem lines shown; a sweep of 20 bad values says so once, not 20 times


def check_jobs(loader, config: DictConfig, jobs) -> None:
    """Compose each job's config (what Hydra's validate_batch_is_legal does) and validate it,
    with its config less the `+` overrides as the known keys. Raises ConfigError naming every
    distinct problem and how many jobs have it."""
    found: dict[str, int] = {}  # each problem line -> how many jobs have it
    packable: dict[tuple, str | None] = {}  # launcher.pack: a point's form, asked once
    for overrides in jobs:
        cfg = loader.load_sweep_config(master_config=config, sweep_overrides=list(overrides))
        kept = without_added_keys(list(overrides), cfg.hydra.runtime.choices)
        primary = cfg if len(kept) == len(overrides) else loader.load_sweep_config(
            master_config=config, sweep_overrides=kept)
        try:
            validate(_without_hydra(cfg), _without_hydra(primary))
            if cfg.get("store"):  # written after each run: checked before the first
                store.check(cfg.store)
        except ConfigError as e:
            for line in str(e).removeprefix("invalid config:\n").splitlines():
                found[line] = found.get(line, 0) + 1
            continue
        point = tuple(o for o in overrides if seed_of(o) is None)
        if OmegaConf.select(cfg, "launcher.pack", default=1) > 1:
            if point not in packable:
                from runner.run.pack import pack_problem

                packable[point] = pack_problem(cfg, cfg.hydra.launcher.get("_target_", ""))
            if line := packable[point]:
                found[f"  {line}"] = found.get(f"  {line}", 0) + 1
    if found:
        lines = [f"{line} ({n} of the sweep's {len(jobs)} jobs)" if n < len(jobs) else line
                 for line, n in list(found.items())[:SHOWN]]
        more = f"\n  ... and {len(found) - SHOWN} more like these" if len(found) > SHOWN else ""
        raise ConfigError("invalid config:\n" + "\n".join(lines) + more)


def _without_hydra(cfg: DictConfig) -> DictConfig:
    """The job's config as its task function gets it: Hydra's own node taken out."""
    cfg = cfg.copy()
    with read_write(cfg), open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


def refuse_shared_folders(jobs, folders) -> None:
    """Points that differ only in execution settings (model.impl, device, threads: left out of
    folder names, runner/result.py) would share one folder, the second skipping as the first's
    finished run: refused before anything is written, with the fix."""
    seen = {}
    for job, folder in zip(jobs, folders):
        if folder in seen and seen[folder] != list(job):
            differ = sorted(set(job) ^ set(seen[folder]))
            raise ConfigError(
                f"invalid sweep:\n  points {', '.join(differ)} differ only in execution "
                f"settings, left out of run folders and of the run's identity (runner/result.py "
                f"EXECUTION_KEYS), so they would share the folder {folder!r}: sweep them in "
                f"separate sweeps (e.g. hydra.sweep.dir=results/impl_nn), or, for model.impl, "
                f"sweep the models that pin it (e.g. model=gru_nn,gru_fused)")
        seen[folder] = list(job)
