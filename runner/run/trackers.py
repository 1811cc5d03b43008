"""A run's trackers (runner/loggers/) as the run sees them: the configured ones, what they are
told at the start, and a finished run replayed into a tracker added after it ran."""
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from runner.loggers import Loggers, RunInfo, replay
from runner.loggers.naming import varied_keys
from runner.result import RESULT_FILE, flatten, now, version_label, write_json_atomic
from runner.tasks import task_class

log = logging.getLogger(__name__)


def logger_node(cfg: DictConfig) -> dict:
    """The configured loggers (conf/logger/): name -> options; {} for logger=none."""
    node = cfg.get("logger")
    return OmegaConf.to_container(node, resolve=True) if node else {}


def run_info(cfg: DictConfig, folder: Path, result: dict, first_epoch: int) -> RunInfo:
    """What the trackers are told at a run's start (runner/loggers)."""
    folder = Path(folder).resolve()
    tags = {"sweep": folder.parent.name, "model": cfg.model.cell, "seed": cfg.seed,
            "code_version": version_label(result["environment"]), "run_id": result["run_id"]}
    task = task_class(cfg)
    keys = (task.train_metric, "tokens_per_sec", "lr", *filter(None, [task.val_metric]))
    return RunInfo(folder=folder, run_id=result["run_id"], name=folder.name,
                   group=folder.parent.name, params=flatten(result["config"]), tags=tags,
                   first_epoch=first_epoch, epoch_keys=keys, varied=tuple(varied_keys(folder)))


def logged_to(result: dict) -> list[str]:
    """The trackers that hold a finished run's events: its `logged_to`, or, in a result of an
    earlier runner, the loggers its config named."""
    if "logged_to" in result:
        return result["logged_to"]
    return sorted(result.get("config", {}).get("logger") or {})


def succeeded(node: dict, errors: list[dict]) -> list[str]:
    """The configured trackers that took every event (none of `errors` is theirs)."""
    failed = {e["logger"] for e in errors}
    return sorted(name for name in node if name not in failed and "all" not in failed)


def replay_into_new_trackers(done: dict, cfg: DictConfig, out_dir: Path) -> dict:
    """A finished run kept as it is, and a tracker added since it ran (`logger=tensorboard`
    on a sweep run without one): the run's events are replayed from result.json into the
    trackers that lack them, so the tracker shows the whole sweep; result.json records them
    in `logged_to`, and when, in `replayed_at` (the sweep's summary counts them)."""
    node = logger_node(cfg)
    missing = {name: options for name, options in node.items() if name not in logged_to(done)}
    if not missing:
        return done
    loggers = Loggers(missing)
    replay(loggers, run_info(cfg, out_dir, done, first_epoch=1), done, out_dir / RESULT_FILE,
           task_class(cfg))
    errors = loggers.close()
    if errors:  # not recorded as logged to: the next sitting tries again
        log.warning("%s: not replayed into %s: %s", out_dir, ", ".join(sorted(missing)),
                    "; ".join(f"{e['logger']}: {e['error']}" for e in errors))
    sent = succeeded(missing, errors)
    if not sent:
        return done
    done = {**done, "logged_to": sorted({*logged_to(done), *sent}),
            "replayed_at": {**done.get("replayed_at", {}), **dict.fromkeys(sent, now())}}
    write_json_atomic(out_dir / RESULT_FILE, done)
    log.info("replayed %s into %s, which it had not been logged to", out_dir / RESULT_FILE,
             ", ".join(sent))
    return done
