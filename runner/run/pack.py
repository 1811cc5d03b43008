"""launcher.pack=N: runs of one sweep point that differ only by seed, trained in one process
as one PackedLM (models/packed.py; translation's encoder-decoder a PackedSeq2Seq,
models/packed_seq2seq.py; docs/packing.md).

Each member is a run of its own, and goes through a run's own code: run()'s preparation
(validation, its folder, resume, the store, its checkpoint: execute.prepare), its model built,
seeded and initialised (or restored) as it is built alone (training.Training.start), its
epochs recorded, checkpointed and sent to its trackers, and its result.json written however it
ends (Training). Only the steps are shared (runner/tasks/pack_loop.py). A member already
finished or in the store is not trained; a pack left with one member trains it alone, unless
the model drops between layers: a pack's members draw their masks from their own generators
(models/packed.py seed_dropout), so with dropout every run of a packed sweep is packed, even
one alone (a pack of one), and its identity says so (identity.py dropout_masks)."""
import logging
from contextlib import ExitStack
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from tqdm.contrib.logging import logging_redirect_tqdm

from data import DataError
from models.packed import PackedLM
from models.packed_optim_config import packed_optimizer
from runner.errors import ConfigError
from runner.result import run_identity
from runner.run.execute import Prepared, finish, prepare, progress_bar, train
from runner.run.interrupt import checkpoint_first, interruptible
from runner.run.output import log_file_fails_in_one_line
from runner.run.training import Training
from runner.tasks.language_model import language_model
from runner.tasks.pack_loop import fit_pack
from runner.tasks.translation import seq2seq

log = logging.getLogger(__name__)
# serial, parallel, submitit_local, slurm (the runner's wrap of the plugin's SlurmLauncher)
PACKED_LAUNCHERS = ("BasicLauncher", "JoblibLauncher", "LocalLauncher", "SlurmLauncher")
FIX = "train it unpacked (launcher.pack=1)"
PACKED_TASKS = {  # data.task: its model from conf/model/, on tiny vocabularies, to ask pack()
    "language_model": lambda model: language_model(model, 3, "cpu"),
    "translation": lambda model: seq2seq(model, 3, 3, "cpu")}


def run_pack(cfgs: list[DictConfig], out_dirs: list[Path],
             concurrent_jobs: int = 1) -> list[dict | Exception]:
    """Each member's run, as run() would run it alone, its steps packed with the others':
    its result (marked skipped or reused as run() marks it), or, for a member refused before
    any work (bad input: ConfigError, DataError), that error; the others go on. Raises what
    the training raises (every unfinished member's result then says so), Ctrl-C included."""
    same_point(cfgs)
    log_file_fails_in_one_line()  # a full disk: one line, not a traceback per log line
    outcomes = []
    with ExitStack() as claims:  # every member's folder (and store key), held to the end
        for cfg, out_dir in zip(cfgs, out_dirs):
            try:
                outcomes.append(prepare(cfg, Path(out_dir), claims, concurrent_jobs,
                                        packed=True))
            except (ConfigError, DataError) as e:
                log.error("%s: %s", out_dir, e)
                outcomes.append(e)
        todo = [job for job in outcomes if isinstance(job, Prepared)]
        with interruptible():
            if len(todo) == 1 and "dropout_masks" not in todo[0].result["environment"]:
                # nothing to pack it with: the run alone, exactly (no masks to draw)
                train(todo[0].cfg, todo[0].task, todo[0].device, todo[0].result, todo[0].rec)
                finish(todo[0])
            elif todo:
                train_pack(todo)
    return [job.result if isinstance(job, Prepared) else job for job in outcomes]


def same_point(cfgs: list[DictConfig]) -> None:
    """A pack holds runs of one point: their configs may differ in seed and execution settings
    only (the sweeper groups them so; a caller of its own may not)."""
    def point(cfg):
        identity = run_identity(OmegaConf.to_container(cfg, resolve=True))
        identity.pop("seed", None)
        return identity

    first = point(cfgs[0])
    if any(point(cfg) != first for cfg in cfgs[1:]):
        raise ValueError("run_pack got configs that differ in more than seed: a pack holds the "
                         "runs of one sweep point (launcher.pack groups them so)")


def quiet_bar(cfg, task):
    """A member's bar, off: the pack draws one (its first member's)."""
    return progress_bar(OmegaConf.merge(cfg, {"quiet": True}), task)


def train_pack(jobs: list[Prepared]) -> None:
    """Train the prepared members as one pack; each member's result is written (and filed
    in the store) as soon as its own training ends, a failure's or a stop's for those still
    training when anything raises."""
    with logging_redirect_tqdm():  # the console's lines above the bar, as a run's
        runs = [Training(j.cfg, j.task, j.device, j.result, j.rec,
                         progress_bar if i == 0 else quiet_bar) for i, j in enumerate(jobs)]
        job_of = {id(t): j for t, j in zip(runs, jobs)}

        def done(t: Training) -> None:  # this member's training has ended: its result now
            t.complete()
            t.end()
            t.finish()
            finish(job_of[id(t)])

        try:
            for t in runs:  # each built (or restored) as its run alone builds it
                t.start(log)
            packed = PackedLM.pack([t.model for t in runs])
            seed_masks(packed, runs)
            for t in runs:
                t.result["environment"]["packed"] = len(runs)
            log.info("pack of %d runs (seeds %s) in one process", len(runs),
                     ", ".join(str(j.cfg.seed) for j in jobs))
            # under submitit (SLURM's scancel, requeue, preemption: SIGTERM, then SIGKILL)
            # every member still training writes its last epoch's checkpoint first
            with checkpoint_first(lambda: [t.saver.write() for t in runs if not t.ended]):
                fit_pack(packed, runs, jobs[0].cfg, jobs[0].device, done)
        except BaseException as e:  # every member still training records it, then re-raise
            for t in runs:
                if not t.ended:
                    t.stop(e)
            raise
        finally:
            for t in runs:
                if not t.ended:
                    t.end()


def seed_masks(packed: PackedLM, runs: list[Training]) -> None:
    """With dropout, each member's own generator (seed_dropout), put back where its
    checkpoint left it, and kept in its checkpoints from now on."""
    masks = {"dropout_masks" in t.result["environment"] for t in runs}
    if masks != {bool(packed.dropout)}:  # the identity's rule and the model disagree
        raise RuntimeError(f"pack with dropout {packed.dropout}: its members' identities say "
                           f"dropout masks {masks}; runner/run/identity.py dropout_masks and "
                           f"models/packed.py must agree")
    if not packed.dropout:
        return
    packed.seed_dropout([t.cfg.seed for t in runs])
    for t, generator in zip(runs, packed.generators):
        if t.rec.resumed:  # its identity (the member stream's) was checked: the state is there
            generator.set_state(t.rec.resumed["dropout_generator"])
        t.saver.dropout_generator = generator


def pack_problem(cfg: DictConfig, launcher_target: str) -> str | None:
    """Why runs of this config cannot be packed, as one line naming what and the fix; None
    when they can (models/packed.py's PackedLM.pack is asked, on a tiny vocabulary)."""
    n = cfg.launcher.pack
    launcher = launcher_target.rpartition(".")[2]
    if launcher not in PACKED_LAUNCHERS:
        return (f"launcher.pack={n} is not supported with launcher={cfg.launcher.name} "
                f"({launcher}): packs run under launcher=serial, parallel, submitit_local or "
                f"slurm; or {FIX}")
    if cfg.launcher.get("fresh_process") is True:
        return (f"launcher.pack={n} cannot run in fresh processes (launcher.fresh_process=true)"
                f" yet: use launcher.fresh_process=auto (a pack stays in its worker), or {FIX}")
    task = cfg.data.get("task")
    if task not in PACKED_TASKS:
        return (f"launcher.pack={n} cannot pack data.task={task}: packs train recurrent "
                f"language models and translation's encoder-decoder only; {FIX}")
    if task == "translation" and cfg.model.get("attention"):
        return (f"launcher.pack={n} cannot pack model.attention=true: packs hold translation's "
                f"encoder-decoder without attention (its attention decoder is not written per "
                f"member); use model.attention=false, or {FIX}")
    try:
        PackedLM.pack([PACKED_TASKS[task](cfg.model)])
    except ValueError as e:
        fix = "" if "launcher.pack=1" in str(e) else f"; {FIX}"
        return f"launcher.pack={n} cannot pack model={cfg.model.get('cell')}: {e}{fix}"
    try:  # the packed optimizers' own check: the one fit_pack builds
        packed_optimizer(OmegaConf.to_container(cfg.optim, resolve=True), [], 1)
    except ValueError as e:
        return f"launcher.pack={n} cannot pack {e}"
    return None
