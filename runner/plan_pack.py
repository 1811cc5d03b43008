"""launcher.pack=N in the plan (`make plan ARGS="--pack N"`): what the study costs when each
point's seeds train in packs of up to N (runner/run/pack.py, docs/packing.md), as the sweeper
groups them: the trained runs of one point (the config without its seed), in plan order, in
chunks of N.

A shape whose runs can pack (pack_problem says so) is timed once more, as a pack of P =
min(N, the most trained seeds one of its points has) members, trained as
runner/tasks/pack_loop.py trains a pack: P models built and initialised under seeds 0..P-1,
packed, two rounds, the first to warm up, the second timed. A pack's job of k members then
costs

    k x (setup + evaluations x evaluation + outputs) + num_epochs x round + RUN_OVERHEAD

with setup, evaluation and outputs the shape's own alone (each member is set up, evaluated and
writes its outputs as its run alone does) and round the timed pack's. A last pack of k < P is
charged P's round: on a GPU a round hardly depends on P; on a CPU this overstates it. A shape
that cannot pack costs, run by run, what it costs alone."""
from dataclasses import dataclass

from omegaconf import open_dict

BASIC = "BasicLauncher"  # the serial launcher, by the class name pack_problem reads


@dataclass
class PackTiming:
    """One timed round of a pack of `members` runs of a shape; all members' tokens in it."""
    members: int
    round: float
    epoch_tokens: int


def pack_groups(trained, size: int) -> list[list]:
    """The trained runs in the packs the sweeper would launch (runner/sweep/packs.py): each
    point's runs, in plan order, in chunks of `size`."""
    points: dict[str, list] = {}
    for r in trained:
        points.setdefault(r.point, []).append(r)
    return [runs[k:k + size] for runs in points.values() for k in range(0, len(runs), size)]


def pack_sizes(trained, size: int) -> dict[str, int]:
    """Each packable shape's pack to time: min(size, its largest point's trained runs)."""
    sizes: dict[str, int] = {}
    for group in pack_groups(trained, size):
        shape = group[0].shape
        sizes[shape] = max(sizes.get(shape, 0), len(group))
    return sizes


def packed_costs(trained, timed: dict, size: int) -> list[float]:
    """Seconds of each job the sweep launches under launcher.pack=size (module docstring):
    one per pack of a shape timed as a pack, one per run of any other."""
    from runner.plan import RUN_OVERHEAD

    costs = []
    for group in pack_groups(trained, size):
        solo, pack = timed[group[0].shape]["serial"], timed[group[0].shape].get("pack")
        if pack is None or len(group) == 1:  # alone, exactly: run_pack trains one member so
            costs += [solo.run_seconds(r.cfg) for r in group]
            continue
        tr = group[0].cfg.train
        each = solo.run_seconds(group[0].cfg) - tr.num_epochs * solo.epoch - RUN_OVERHEAD
        costs.append(len(group) * each + tr.num_epochs * pack.round + RUN_OVERHEAD)
    return costs


def time_packs(trained, timed: dict, size: int, threads: int, device: str, say,
               budget: float | None) -> None:
    """Each shape of the `trained` runs that can pack, timed as its pack (time_pack) into
    timed[shape]["pack"], within `budget` seconds; a pack timing of the same size already
    there (a timing file's) is kept. A shape left untimed costs what it costs alone."""
    import time

    from runner.plan import timing_here
    from runner.run.pack import pack_problem

    sizes = pack_sizes(trained, size)
    cfgs = {r.shape: r.cfg for r in trained}
    todo = [s for s, n in sizes.items() if n > 1 and not (
        (t := timed[s].get("pack")) and t.members == n)]
    refused = {s: why for s in todo if (why := pack_problem(cfgs[s], BASIC)) is not None}
    say(f"timing {len(todo) - len(refused)} model shapes as packs of up to {size} here on "
        f"{device}" + (f"; {len(refused)} cannot pack (costed alone), e.g. "
                       f"{next(iter(refused.values()))}" if refused else ""))
    start = time.perf_counter()
    for shape in todo:
        if shape in refused:
            continue
        if budget is not None and time.perf_counter() - start > budget:
            say("time budget spent: shapes left untimed as packs are costed alone")
            break
        with timing_here(threads):
            timed[shape]["pack"] = time_pack(cfgs[shape], sizes[shape], threads, device)


def time_pack(cfg, members: int, threads: int, device: str = "cpu") -> PackTiming:
    """Time one round of a pack of `members` runs of `cfg` in this process (module
    docstring); call under plan.time_shape's settings (threads, quiet logging)."""
    import torch

    from models.packed import PackedLM
    from runner.plan import _clock
    from runner.tasks import build_task, data_of
    from runner.tasks.pack_loop import fit_pack

    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.device, cfg.threads, cfg.train.num_epochs = device, threads, 2
    path, dev = data_of(cfg)[0], torch.device(device)
    runs = []
    for seed in range(members):
        member_cfg = cfg.copy()
        with open_dict(member_cfg):
            member_cfg.seed = seed
        runs.append(_Member(build_task(member_cfg, path), member_cfg, dev))
    packed = PackedLM.pack([m.model for m in runs])
    if getattr(packed, "dropout", 0):
        packed.seed_dropout(range(members))
    _clock(dev)
    fit_pack(packed, runs, cfg, dev, lambda member: None)
    return PackTiming(members, runs[0].history.train_seconds[1],
                      int(sum(m.history.train_tokens[1] for m in runs)))


class _Member:
    """What fit_pack asks of a member: its task (held-out evaluation off: timed alone, not
    here), model, optimizer, schedule and history."""

    def __init__(self, task, cfg, device):
        from runner.run.execute import model_and_optimizer
        from runner.tasks.loop import History, make_scheduler

        task.val_metric = None
        self.task = task
        self.model, self.optimizer = model_and_optimizer(cfg, task, device)
        self.scheduler = make_scheduler(self.optimizer, cfg, task.steps_per_epoch)
        self.history = History()

    def epoch_done(self, history) -> None:
        pass
