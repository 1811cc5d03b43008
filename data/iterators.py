"""Minibatches for language modelling, with d2l's `seq_data_iter_sequential` and
`seq_data_iter_random` semantics, but built for a whole epoch at once with tensor ops on the
corpus's device, driven by an explicit CPU generator (no global RNG, no per-batch host work).

Layout, everywhere in this project: time-major. One epoch is X, Y of shape
(num_batches, num_steps, batch_size); Y is X shifted by one token.
"""
import torch

SAMPLINGS = ("sequential", "random")


def _randint(high: int, generator: torch.Generator) -> int:
    """Uniform integer in [0, high), drawn on the CPU generator."""
    return int(torch.randint(high, (1,), generator=generator))


def sequential_batches(corpus: torch.Tensor, batch_size: int, num_steps: int,
                       generator: torch.Generator):
    """Sequential partitioning after a random offset in [0, num_steps] (d2l's
    random.randint(0, num_steps), inclusive)."""
    return partition(corpus, _randint(num_steps + 1, generator), batch_size, num_steps)


def partition(corpus: torch.Tensor, offset: int, batch_size: int, num_steps: int):
    """Sequential partitioning: batch i+1 continues, row by row, where batch i stopped, so the
    hidden state can be carried across batches.

        corpus[offset:]  a b c d e f g h | m n o p q r s t | ...   cut into batch_size rows
        row 0:  a b c d | e f g h            batch 0 = first num_steps columns of every row,
        row 1:  m n o p | q r s t            batch 1 = the next num_steps columns, and so on
    """
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    xs = corpus[offset:offset + num_tokens].reshape(batch_size, -1)
    ys = corpus[offset + 1:offset + 1 + num_tokens].reshape(batch_size, -1)
    num_batches = xs.shape[1] // num_steps
    used = num_batches * num_steps

    def blocks(t):  # (B, nb*T) -> (nb, T, B)
        return t[:, :used].reshape(batch_size, num_batches, num_steps).permute(1, 2, 0)

    return blocks(xs).contiguous(), blocks(ys).contiguous()


def random_batches(corpus: torch.Tensor, batch_size: int, num_steps: int,
                   generator: torch.Generator):
    """Random sampling: non-overlapping subsequences in shuffled order; adjacent batches are
    unrelated, so the state is re-initialised for every batch."""
    corpus = corpus[_randint(num_steps, generator):]  # d2l: random.randint(0, num_steps - 1)
    num_subseqs = (len(corpus) - 1) // num_steps
    num_batches = num_subseqs // batch_size
    order = torch.randperm(num_subseqs, generator=generator)[:num_batches * batch_size]
    starts = (order * num_steps).to(corpus.device).reshape(num_batches, 1, batch_size)
    positions = starts + torch.arange(num_steps, device=corpus.device).reshape(1, -1, 1)
    return corpus[positions], corpus[positions + 1]  # (nb, T, B) each


def epoch_batches(sampling: str, corpus, batch_size, num_steps, generator):
    if sampling == "sequential":
        return sequential_batches(corpus, batch_size, num_steps, generator)
    if sampling == "random":
        return random_batches(corpus, batch_size, num_steps, generator)
    raise ValueError(f"data.sampling={sampling!r} is not a sampling; use one of {SAMPLINGS}")


def min_tokens(batch_size: int, num_steps: int) -> int:
    """Fewest corpus tokens that give at least one full batch under either sampling, whatever
    the random offset."""
    return batch_size * num_steps + num_steps + 1
