"""What a result records of its training: the metrics (the task's declared figures, each with
its best, throughput, memory) and the per-epoch curves, from the loop's History."""
import statistics

from models import num_params
from runner.run.environment import peak_memory


def steady_state_median(tokens_per_sec: list[float]) -> float | None:
    """Median over epochs, leaving out the first (allocator, thread-pool and cuDNN warm-up)
    when there is more than one."""
    steady = tokens_per_sec[1:] or tokens_per_sec
    return statistics.median(steady) if steady else None


def metrics_of(history, model, device, memory_kind, task, wall_seconds) -> dict:
    """The result's metrics from the curves, named by the task's declarations (its train
    and val metrics, each with its best); the task's own (BLEU, MSE) are added later."""
    train, val = task.train_metric, task.val_metric
    seconds, tokens = sum(history.train_seconds), sum(history.train_tokens)
    metrics = {train: history.train[-1] if history.train else None,
               f"best_{train}": best(task.metric(train), history.train)}
    if val:
        metrics |= {val: history.val[-1] if history.val else None,
                    f"best_{val}": best(task.metric(val), history.val)}
    return {
        **metrics,
        "tokens_per_sec": tokens / seconds if seconds else None,
        "tokens_per_sec_epoch_median": steady_state_median(history.tokens_per_sec),
        "train_tokens": tokens,
        "train_seconds": seconds,
        "train_cpu_seconds": sum(history.train_cpu_seconds),
        "wall_seconds": wall_seconds,
        "epochs_done": len(history.epoch),
        "diverged_epoch": history.diverged_epoch,
        "num_params": num_params(model) if model else None,
        # the held-out targets every held-out figure was computed over
        "val_tokens_scored": task.val_tokens_scored if history.val else None,
        **peak_memory(device, memory_kind),
    }


def best(metric, curve: list) -> float | None:
    """The curve's best value in the metric's declared direction (a diverged epoch's None
    left out)."""
    pick = min if metric.direction == "minimize" else max
    return pick((v for v in curve if v is not None), default=None)


def curves_of(history, task) -> dict:
    """The result's per-epoch curves, the task's figures under the names it declares."""
    curves = {k: v for k, v in vars(history).items()
              if k not in ("train", "val", "val_epoch", "diverged_epoch")}
    curves[task.train_metric] = history.train
    if task.val_metric:
        curves |= {"val_epoch": history.val_epoch, task.val_metric: history.val}
    return curves
