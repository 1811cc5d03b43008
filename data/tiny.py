"""A tiny corpus in the Time Machine's shape, written on demand: what the tests, the benchmarks
and a smoke run train on when the real corpus is not wanted (seconds, not minutes)."""
import random
from pathlib import Path

WORDS = ["the", "time", "traveller", "said", "machine", "was", "a", "and", "of", "in"]


def write_corpus(path: Path, num_words: int = 1500, seed: int = 0) -> Path:
    """A small text in the Time Machine's shape: lines of words with punctuation and capitals
    (which preprocessing strips), from a 10-word vocabulary so a model can learn it fast."""
    rng = random.Random(seed)
    lines, words = [], []
    for i in range(num_words):
        words.append(rng.choice(WORDS).capitalize() if i % 9 == 0 else rng.choice(WORDS))
        if len(words) == 12:
            lines.append(" ".join(words) + ", " + rng.choice([".", "!", "?"]))
            words = []
    path.write_text("\n".join(lines) + "\n")
    return path
