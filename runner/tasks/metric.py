"""What a task declares about the numbers it reports: each metric's key in result.json's
`metrics`, whether lower or higher is better, and its name for people. A search sweeper's
objective (runner/objective.py) must be one of them, optimised in its declared direction."""
from dataclasses import dataclass

DIRECTIONS = ("minimize", "maximize")


@dataclass(frozen=True)
class Metric:
    key: str  # in result.json's metrics
    direction: str  # minimize or maximize
    display: str  # e.g. "held-out perplexity"

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"Metric {self.key!r}: direction={self.direction!r} must be one of "
                             f"{', '.join(DIRECTIONS)}")


# Every task's training loop measures its speed the same way (runner/run/execute.py)
TOKENS_PER_SEC = Metric("tokens_per_sec", "maximize", "training tokens/sec")


def metric_named(metrics, key: str) -> Metric | None:
    return next((m for m in metrics if m.key == key), None)
