"""One run, from a composed config to one JSON result: `run(cfg, out_dir) -> result`."""
import logging
import sys
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from models.core import resolve_impl
from runner.loggers import Loggers, replay
from runner.result import (
    RESULT_FILE,
    SCHEMA_VERSION,
    now,
    write_json_atomic,
)
from runner.run import checkpoint, store
from runner.run.claim import CLAIM_FILE, claim, store_claim
from runner.run.environment import (
    environment,
    reset_peak_memory,
    resolve_device,
)
from runner.run.identity import Identity, dropout_masks
from runner.run.interrupt import checkpoint_first, interruptible
from runner.run.output import check_output_folder, log_file_fails_in_one_line, write_snapshot
from runner.run.resume import other_code_version, previous_result
from runner.run.trackers import logger_node, replay_into_new_trackers, run_info
from runner.run.training import (  # noqa: F401 (model_and_optimizer: plan.py's)
    Recording,
    Training,
    model_and_optimizer,
)
from runner.run.validate import validate
from runner.tasks import build_task, data_of, task_class
from runner.tasks.loop import History, fit  # noqa: F401 (History: child.py's)

log = logging.getLogger(__name__)


def progress_bar(cfg: DictConfig, task):
    bar = tqdm(total=cfg.train.num_epochs, unit="epoch", dynamic_ncols=True,
               disable=cfg.quiet or not sys.stderr.isatty())
    train, val = task.metric(task.train_metric), task.val_metric and task.metric(task.val_metric)

    def on_epoch(history):
        shown = {train.short or train.key: f"{history.train[-1]:.3f}"}
        if val:
            shown[val.short or val.key] = f"{history.val[-1]:.3f}" if history.val else "-"
        bar.set_postfix({**shown, "tok_s": f"{history.tokens_per_sec[-1]:,.0f}"},
                        refresh=False)
        bar.update(1)

    return bar, on_epoch


@dataclass
class Prepared:
    """A run past validation, resume and the store, its task built: what is left is to train
    it (`train`) and to `finish` it."""
    cfg: DictConfig
    task: object
    device: torch.device
    result: dict
    rec: Recording
    key: str | None  # the result store's, or None


def run(cfg: DictConfig, out_dir: Path, concurrent_jobs: int = 1) -> dict:
    """Validate, set up, train, evaluate, sample, and write `out_dir/result.json`; or, when
    that file already holds a finished result of this config, return it marked `skipped`.
    `concurrent_jobs`: how many jobs may share the device (recorded with tokens/sec). Another
    process training this run, or this store key, is waited for (runner/run/claim.py)."""
    log_file_fails_in_one_line()  # a full disk: one line, not a traceback per log line
    with ExitStack() as claims:  # released as the run ends, or by the kernel as it dies
        job = prepare(cfg, out_dir, claims, concurrent_jobs)
        if isinstance(job, dict):
            return job
        with interruptible():
            train(job.cfg, job.task, job.device, job.result, job.rec)
        return finish(job)


def prepare(cfg: DictConfig, out_dir: Path, claims: ExitStack,
            concurrent_jobs: int = 1, packed: bool = False) -> dict | Prepared:
    """Everything before training: the finished result (skipped, or reused from the store)
    when there is nothing to train, else the run Prepared. Bad input raises here. The run's
    claims (its folder, its store key) join `claims`, held until the caller lets go.
    `packed`: the run trains in a pack (runner/run/pack.py; with dropout, another identity)."""
    wall_start, started_at = time.perf_counter(), now()
    validate(cfg)
    check_output_folder(out_dir)  # can be written, and the result can land there
    if cfg.store:
        store.check(cfg.store)  # not found unwritable only once the run has trained
    device = resolve_device(cfg.device)
    memory_kind = reset_peak_memory(device)  # this run's peak, not the process's so far
    data_file, data_sha1 = data_of(cfg)  # downloaded first when missing and allowed
    result_path = Path(out_dir) / RESULT_FILE
    claims.enter_context(claim(Path(out_dir) / CLAIM_FILE, f"run folder {out_dir}"))
    if done := previous_result(result_path, cfg, data_sha1, packed):
        other = other_code_version(done)
        log.info("skipped: %s already holds %s run %s of this config%s", result_path,
                 done["status"], done["run_id"], f" (made by code version {other}; "
                 f"overwrite=true re-runs it)" if other else "")
        if cfg.store and (key := Identity.of_result(done).store_key(done["environment"])):
            store.put(cfg.store, key, done)  # finished before the store existed: filed now
        return {**replay_into_new_trackers(done, cfg, Path(out_dir)), "skipped": True}
    if cfg.threads:  # before the environment is read: the store's key counts CPU threads
        torch.set_num_threads(cfg.threads)
    config = OmegaConf.to_container(cfg, resolve=True)
    layer = get_object(cfg.model._target_) if "_target_" in cfg.model else None  # recurrent
    env = {**environment(device, concurrent_jobs),
           "impl": resolve_impl(layer, cfg.model.get("impl", "auto"), device.type)}
    if masks := dropout_masks(config, packed):  # another stream, another curve: said
        env["dropout_masks"] = masks
    key = Identity.of(config, data_sha1, packed).store_key(env) if cfg.store else None
    if key:  # one process trains it for the store; another waits, then copies it
        claims.enter_context(claim(store_claim(cfg.store, key), f"store key {key[:12]}"))
    if key and not cfg.overwrite and (stored := store.lookup(cfg.store, key)):
        return reuse(stored, store.entry(cfg.store, key), cfg, Path(out_dir))
    resumed = checkpoint.load(out_dir, cfg, data_sha1, packed)  # another run's: refused
    task = build_task(cfg, data_file)  # loads and checks the data: bad input stops here
    write_snapshot(out_dir, cfg)  # .hydra/ only now: a refused run leaves the folder as it was
    run_fields = {"run_id": uuid.uuid4().hex[:12], "started_at": started_at,
                  "resumed_from_epoch": []}
    if resumed:  # the same run, continued: its id, start and every epoch it resumed from
        run_fields = {**resumed["run"], "resumed_from_epoch": [
            *resumed["run"]["resumed_from_epoch"], resumed["epoch"]]}
    result = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_fields["run_id"],
        "task": cfg.data.task,
        "status": "failed",
        "config": config,
        "dataset": task.provenance,
        # what the task reports, for the report to show a task from outside runner
        "declared_metrics": {m.key: {"direction": m.direction, "display": m.display}
                             for m in task.metrics},
        "sees_future": False,  # the model's own answer, once it is built
        "environment": env,  # impl: what model.impl=auto chose for the device
        "started_at": run_fields["started_at"],
        **({"resumed_from_epoch": run_fields["resumed_from_epoch"]} if resumed else {}),
    }
    rec = Recording(Path(out_dir), data_sha1, run_fields, resumed, memory_kind, wall_start,
                    packed)
    return Prepared(cfg, task, device, result, rec, key)


def finish(job: Prepared) -> dict:
    """A run trained to its end: filed in the store, and its one line."""
    result = job.result
    if job.key:
        store.put(job.cfg.store, job.key, result)
    shown = [m.key for m in job.task.metrics if m.key in result["metrics"]]
    log.info("%s: %s, %.0f tokens/s -> %s", result["status"],
             ", ".join(f"{k} {result['metrics'][k]}" for k in shown),
             result["metrics"]["tokens_per_sec"] or 0, job.rec.folder / RESULT_FILE)
    return result


def reuse(stored: dict, path: Path, cfg: DictConfig, out_dir: Path) -> dict:
    """The run's folder gets the stored result of this very run (runner/run/store.py), with
    where it came from, and the command's config snapshot; no training."""
    write_snapshot(out_dir, cfg)
    result = {**stored, "reused_from": str(path)}
    for key in ("logger_errors", "logged_to", "replayed_at"):  # the trained run's trackers'
        result.pop(key, None)
    result["logged_to"] = sorted(logger_node(cfg))  # this copy's: replayed into them below
    write_json_atomic(out_dir / RESULT_FILE, result)
    (out_dir / checkpoint.CHECKPOINT_FILE).unlink(missing_ok=True)  # a stopped try's: moot
    loggers = Loggers(logger_node(cfg))  # the trackers show it beside the sweep's other runs
    replay(loggers, run_info(cfg, out_dir, result, first_epoch=1), result,
           out_dir / RESULT_FILE, task_class(cfg))
    if errors := loggers.close():
        result["logger_errors"] = errors
        write_json_atomic(out_dir / RESULT_FILE, result)
    log.info("reused: %s is run %s of this config (%s), trained before: %s", out_dir / RESULT_FILE,
             stored["run_id"], stored["status"], path)
    return {**result, "reused": True}


def train(cfg: DictConfig, task, device, result: dict, rec: Recording) -> None:
    """Build (or restore), train, evaluate and sample, filling `result`; it is written to
    result.json however this ends, with a checkpoint first when the run was stopped."""
    # While the progress bar is drawn, the root logger's console lines go through tqdm.write,
    # which prints them above the bar and redraws it, instead of into the middle of it.
    with logging_redirect_tqdm():
        _train(cfg, task, device, result, rec)


def _train(cfg: DictConfig, task, device, result: dict, rec: Recording) -> None:
    t = Training(cfg, task, device, result, rec, progress_bar)
    try:  # from here on, any failure (out of memory included) is recorded in the result
        t.start(log)
        with checkpoint_first(t.saver.write):  # under submitit: SLURM's SIGTERM, then SIGKILL
            fit(t.model, t.optimizer, t.scheduler, task, cfg, device, t.history, t.epoch_done)
        t.complete()
    except BaseException as e:  # record the failure with the curves so far, then re-raise
        t.stop(e)
        raise
    finally:
        t.end()
    t.finish()  # after the result: it replaces the checkpoint
