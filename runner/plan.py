"""What a reproduction will cost, before anything runs: `python -m runner.reproduce --plan`.

Every experiment's runs are planned as its sweep would plan them (the experiment's params, the
command line, the seed axis, Hydra's cartesian product) and composed. Runs asked for by several
experiments are one run: the store trains each once (runner/run/store.py), in the first
experiment that asks. Each distinct model shape (the config without seed, epochs, lr, init,
warm-up and sampling, which leave the cost of an epoch alone) is timed here, in this process,
at the threads a run would get: its set-up, one epoch after one to warm up, one held-out
evaluation and the run's closing outputs (the note's regression: 3 steps and 5 scored batches,
scaled up). A run's estimate is set-up + epochs x epoch + evaluations x evaluation + outputs
+ RUN_OVERHEAD; an experiment's is its trained runs' + EXPERIMENT_OVERHEAD; under
launcher=parallel with N jobs a sweep hands its runs, in order, to the first free of N
workers, each timed at cores // N threads (the slots' share); experiments run one after
another. Copied runs cost nothing here (a copy takes milliseconds).
"""
import json
import logging
import os
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf, open_dict

from runner.hydra_private import basic_sweeper, job_folder
from runner.plan_pack import packed_costs
from runner.result import without
from runner.run.identity import Identity
from runner.sweep.sweeper import exclude_keys, with_seed_axis
from runner.timings import read_timings, write_timings

RUN_OVERHEAD = 1.0  # s a sweep job spends outside its run: Hydra's job set-up, logging
# s an experiment spends outside its runs: its process start, Hydra's composition, the report
# and plots. Measured: make reproduce-quick took 749 s here, its 15 sweeps 645 s (docs/reports.md)
EXPERIMENT_OVERHEAD = 7.0
# keys that leave an epoch's cost alone: one timing serves every value
COST_FREE = ("seed", "train.num_epochs", "train.eval_every", "optim.lr", "init",
             "train.warmup", "data.sampling")


@dataclass
class Run:
    experiment: str
    folder: str
    cfg: object  # the composed DictConfig
    identity: str = field(init=False)
    shape: str = field(init=False)
    point: str = field(init=False)  # its sweep point: the identity but the seed

    def __post_init__(self):
        # one data file per data set here; a sweep under launcher.pack > 1 packs every run
        packed = OmegaConf.select(self.cfg, "launcher.pack", default=1) > 1
        identity = Identity.of(self.cfg, data_sha1=None, packed=packed)
        self.identity = identity.digest()
        self.shape = json.dumps(without(identity.config, COST_FREE), sort_keys=True)
        self.point = json.dumps(without(identity.config, ("seed",)), sort_keys=True)


def planned_runs(experiment: str, args: list[str], conf_dir: str) -> list[Run]:
    """The runs `python -m runner -m ARGS` makes, as the runner's sweeper plans them, each with
    its composed config. Group choices are composed by Hydra once per distinct set; a point's
    plain `key=value` overrides are then applied as Hydra applies them (OmegaConf.update),
    which tests/test_sweep.py checks against a full compose."""
    parser = OverridesParser.create()
    task = [a for a in args if a != "-m" and not a.startswith("hydra.")]
    fixed = [a for a in task if not parser.parse_overrides([a])[0].is_sweep_override()]
    composed = {}

    def config(overrides: tuple[str, ...], hydra_node=False):
        if (overrides, hydra_node) not in composed:
            with initialize_config_dir(conf_dir, version_base="1.3"):
                composed[overrides, hydra_node] = compose(
                    "config", overrides=list(overrides), return_hydra_config=hydra_node)
        return composed[overrides, hydra_node]

    primary = config(tuple(fixed), True)
    params = [f"{k}={v}" for k, v in (primary.hydra.sweeper.params or {}).items()]
    overrides = with_seed_axis(parser.parse_overrides(params + task), primary.seed,
                               primary.repeats, parser)
    naming = primary.hydra.job.config.override_dirname
    sweeper = basic_sweeper()(max_batch_size=None, params=None)
    runs = []
    for job in sweeper.split_arguments(overrides, None)[0]:
        parsed = parser.parse_overrides(list(job))
        runs.append(Run(experiment, job_folder(parsed, exclude_keys(parsed, naming), naming),
                        compose_job(parsed, conf_dir, config)))
    return runs


def compose_job(overrides, conf_dir: str, compose_groups):
    """One job's config from its parsed overrides: its group choices composed by
    `compose_groups` (a cache of Hydra's compose), then its plain `key=value` overrides applied
    as Hydra applies them after composing (OmegaConf.update with merge)."""
    groups = tuple(o.input_line for o in overrides
                   if os.path.isdir(os.path.join(conf_dir, o.key_or_group)))
    cfg = compose_groups(groups).copy()  # struct: a key the config lacks fails, as in Hydra
    for o in overrides:
        if o.input_line in groups:
            continue
        if o.is_add() or o.is_delete() or o.is_force_add():
            raise ValueError(f"{o.input_line}: only plain key=value overrides are planned")
        OmegaConf.update(cfg, o.key_or_group, o.value(), merge=True)
    return cfg


@dataclass
class Timing:
    """Seconds of one shape's parts, measured here (Plan docstring); tokens of one epoch."""
    setup: float
    epoch: float
    evaluation: float
    outputs: float
    epoch_tokens: int

    def run_seconds(self, cfg) -> float:
        tr = cfg.train
        evaluations = (tr.num_epochs // tr.eval_every + (tr.num_epochs % tr.eval_every != 0)
                       if self.evaluation else 0)
        return (self.setup + tr.num_epochs * self.epoch + evaluations * self.evaluation
                + self.outputs + RUN_OVERHEAD)


# the regression task's epoch and scoring, shrunk for timing: (key, value timed at)
SHRINK = {"regression": (("data.steps_per_epoch", 3), ("data.eval_batches", 5))}


def time_shape(cfg, threads: int, device: str = "cpu") -> Timing:
    """Time one run of `cfg` in this process on `device` (module docstring)."""
    cfg, scale = cfg.copy(), {}
    with open_dict(cfg):
        cfg.device, cfg.threads = device, threads
        for key, small in SHRINK.get(cfg.data.task, ()):
            scale[key] = OmegaConf.select(cfg, key) / small
            OmegaConf.update(cfg, key, small)
    with timing_here(threads):
        return _time(cfg, scale, torch.device(device))


@contextmanager
def timing_here(threads: int):
    """This process set as a run's for timing: `threads` torch threads, and a run's own
    warnings and log lines kept out of the plan's."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    quiet = logging.getLogger("runner")
    level, quiet.level = quiet.level, logging.ERROR
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        torch.set_num_threads(before)
        quiet.setLevel(level)


def _time(cfg, scale: dict, device) -> Timing:
    from runner.run.execute import model_and_optimizer
    from runner.tasks import build_task, data_of
    from runner.tasks.loop import make_scheduler, train_epoch

    start = _clock(device)
    task = build_task(cfg, data_of(cfg)[0])
    model, optimizer = model_and_optimizer(cfg, task, device)
    scheduler = make_scheduler(optimizer, cfg, task.steps_per_epoch)
    setup = _clock(device) - start
    epoch, tokens = [], 0
    for _ in range(2):  # the first warms up (allocations, oneDNN primitives)
        start = _clock(device)
        _, tokens = train_epoch(model, optimizer, scheduler, task, cfg.train.grad_clip)
        tokens = int(tokens)
        epoch.append(_clock(device) - start)
    evaluation = 0.0
    if task.val_metric:
        start = _clock(device)
        model.eval()
        with torch.no_grad():
            task.evaluate(model)
        evaluation = _clock(device) - start
    start = _clock(device)
    task.outputs(model, device)
    outputs = _clock(device) - start
    steps = scale.get("data.steps_per_epoch", 1)
    return Timing(setup, epoch[1] * steps, evaluation,
                  outputs * scale.get("data.eval_batches", 1), int(tokens * steps))


def _clock(device) -> float:
    """Seconds now, once the device has done what was queued on it: CUDA runs asynchronously,
    so a clock read without waiting would time the queueing, not the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def makespan(seconds: list[float], workers: int) -> float:
    """Wall time of jobs handed in order to the first free of `workers` (joblib's way)."""
    free = [0.0] * workers
    for s in seconds:
        free[free.index(min(free))] += s
    return max(free)


def plan(experiments, commands: dict, jobs: int, conf_dir: str, say=print,
         timings: str | None = None, device: str = "cpu", save: str | None = None,
         budget: float | None = None, pack: int = 1) -> list[str]:
    """The plan's lines (Markdown): each experiment's runs, distinct runs, training tokens and
    estimated hours, serial and with `jobs` parallel jobs, and with `pack` > 1 serial in packs
    of that many seeds (plan_pack.py); `commands`: name -> its argv. `timings`: a shape-timing
    file (`save` writes one: timings.py) whose shapes are not timed again; the others are timed
    on `device`, within `budget` seconds when given."""
    cores = len(os.sched_getaffinity(0))
    threads = {"serial": cores, "parallel": max(1, cores // jobs)}
    runs = [r for e in experiments for r in planned_runs(e.name, commands[e.name], conf_dir)]
    first = {}
    for r in runs:  # the first experiment that asks for a run trains it; later ones copy it
        first.setdefault(r.identity, r)
    shapes = {r.shape: r.cfg for r in first.values()}
    loaded, source = read_timings(timings) if timings else ({}, None)
    timed = {shape: loaded[shape] for shape in shapes if shape in loaded}
    todo = [shape for shape in shapes if shape not in timed]
    say(f"timing {len(todo)} of {len(shapes)} model shapes here on {device} ({cores} cores)"
        + (f"; {len(timed)} read from {timings} ({source})" if timings else "") + "...")
    start = time.perf_counter()
    for shape in todo:
        if budget is not None and time.perf_counter() - start > budget:
            say(f"time budget ({budget:.0f} s) spent: {len(shapes) - len(timed)} shapes "
                f"left untimed")
            break
        cfg = shapes[shape]
        # on a GPU the CPU threads hardly matter: one timing serves both columns
        modes = {"serial": cores} if device != "cpu" else threads
        timed[shape] = {mode: time_shape(cfg, n, device) for mode, n in modes.items()
                        if mode == "serial" or n != cores}
        timed[shape].setdefault("parallel", timed[shape]["serial"])
    if pack > 1:
        from runner.plan_pack import time_packs
        time_packs(list(first.values()), timed, pack, cores, device, say,
                   None if budget is None else budget - (time.perf_counter() - start))
    took = time.perf_counter() - start
    if save:
        write_timings(save, {s: timed[s] for s in shapes if s in timed}, device, jobs)
        say(f"wrote {save}: {len(timed)} shapes")
    if missing := [s for s in shapes if s not in timed]:
        return [f"{len(missing)} of {len(shapes)} model shapes untimed: no estimate"]
    rows, totals = [], {"runs": 0, "distinct": 0, "tokens": 0, "serial": 0.0, "parallel": 0.0,
                        "packed": 0.0}
    for e in experiments:
        mine = [r for r in runs if r.experiment == e.name]
        trained = [r for r in mine if first[r.identity] is r]
        cost = {mode: [timed[r.shape][mode].run_seconds(r.cfg) for r in trained]
                for mode in ("serial", "parallel")}
        row = {"runs": len(mine), "distinct": len(trained),
               "tokens": sum(timed[r.shape]["serial"].epoch_tokens * r.cfg.train.num_epochs
                             for r in trained),
               "serial": sum(cost["serial"]) + EXPERIMENT_OVERHEAD,
               "parallel": makespan(cost["parallel"], jobs) + EXPERIMENT_OVERHEAD,
               "packed": (sum(packed_costs(trained, timed, pack)) if pack > 1 else 0.0)
               + EXPERIMENT_OVERHEAD}
        rows.append((e.name, row))
        totals = {k: totals[k] + row[k] for k in totals}
    head = (f"| experiment | runs | trained (distinct) | training tokens | serial, {cores} "
            f"threads | launcher=parallel, {jobs} jobs x {threads['parallel']} threads |"
            + (f" launcher.pack={pack}, serial |" if pack > 1 else ""))
    lines = [head, "| --- | --- | --- | --- | --- | --- |" + (" --- |" if pack > 1 else "")]
    for name, row in [*rows, ("total", totals)]:
        lines.append(f"| {name} | {row['runs']:,} | {row['distinct']:,} | {row['tokens']:,} | "
                     f"{_hours(row['serial'])} | {_hours(row['parallel'])} |"
                     + (f" {_hours(row['packed'])} |" if pack > 1 else ""))
    reused = totals["runs"] - totals["distinct"]
    lines += ["", f"{totals['runs']:,} runs, {totals['distinct']:,} trained: {reused:,} asked "
              f"for again by a later experiment are copied from the store. Estimated from "
              f"{len(shapes)} model shapes ({len(todo)} timed here on {device} in {took:.0f} s"
              f"{f', the others read from {timings}: {source}' if timings else ''}; "
              f"runner/plan.py); "
              f"training tokens count every epoch of every trained run."]
    return lines


def _hours(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"
