"""The number a search sweeper optimises (conf/hparams_search/, Hydra's Optuna sweeper): one
of the metrics the task reports (runner/tasks/task.py), named by `objective.metric`, with
`objective.direction` its declared direction. The runner's own sweeper ignores it: its jobs
return their status, and the report compares every metric."""
import math

from runner.tasks.task import DIRECTIONS


def objective_problems(objective, task_name: str, task) -> list[str]:
    """validate.py's lines for the `objective` node against the metrics `task` reports."""
    if objective is None:
        return []
    declared = task.metric(objective.get("metric"))
    if declared is None:
        keys = task.metric_keys()
        return [f"objective.metric={objective.get('metric')!r} is not a metric of "
                f"data.task={task_name}: it must be one of {', '.join(keys)} (e.g. "
                f"objective.metric={task.val_metric or task.train_metric})"]
    direction = objective.get("direction")
    if direction not in DIRECTIONS:
        return [f"objective.direction={direction!r} is not allowed: it must be one of "
                f"{', '.join(DIRECTIONS)} (e.g. objective.direction={declared.direction})"]
    if direction != declared.direction:  # e.g. maximising a perplexity: a search gone wrong
        better = "lower" if declared.direction == "minimize" else "higher"
        return [f"objective.direction={direction} contradicts {declared.key}, which is better "
                f"when {better}: set objective.direction={declared.direction}"]
    return []


def objective_value(result: dict | None, metric: str) -> float:
    """result.json's metrics[metric] as a float; NaN where the run has none (it failed, was
    refused, or diverged before the metric existed): Optuna records such a trial as failed."""
    value = ((result or {}).get("metrics") or {}).get(metric)
    return float(value) if isinstance(value, int | float) else math.nan
