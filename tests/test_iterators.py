"""data/iterators.py: minibatch iterators, checked against d2l 0.17.6's reference iterators."""
import random

import pytest
import torch

from data.iterators import (
    SAMPLINGS,
    epoch_batches,
    min_tokens,
    partition,
    random_batches,
    sequential_batches,
)

# --------------------------------------------------------------------------------------------
# d2l 0.17.6 reference iterators (batch-major, (B, T) per batch), verbatim but for `rng`, which
# defaults to Python's `random` module as in d2l and can be replaced to force the offset.


def d2l_seq_data_iter_random(corpus, batch_size, num_steps, rng=random):
    corpus = corpus[rng.randint(0, num_steps - 1):]
    num_subseqs = (len(corpus) - 1) // num_steps
    initial_indices = list(range(0, num_subseqs * num_steps, num_steps))
    rng.shuffle(initial_indices)

    def data(pos):
        return corpus[pos: pos + num_steps]

    num_batches = num_subseqs // batch_size
    for i in range(0, batch_size * num_batches, batch_size):
        initial_indices_per_batch = initial_indices[i: i + batch_size]
        X = [data(j) for j in initial_indices_per_batch]
        Y = [data(j + 1) for j in initial_indices_per_batch]
        yield torch.tensor(X), torch.tensor(Y)


def d2l_seq_data_iter_sequential(corpus, batch_size, num_steps, rng=random):
    offset = rng.randint(0, num_steps)
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = torch.tensor(corpus[offset: offset + num_tokens])
    Ys = torch.tensor(corpus[offset + 1: offset + 1 + num_tokens])
    Xs, Ys = Xs.reshape(batch_size, -1), Ys.reshape(batch_size, -1)
    num_batches = Xs.shape[1] // num_steps
    for i in range(0, num_steps * num_batches, num_steps):
        yield Xs[:, i: i + num_steps], Ys[:, i: i + num_steps]


class FixedOffset(random.Random):
    """A `random` stand-in whose randint always returns `offset` (shuffle stays random)."""

    def __init__(self, offset, seed=0):
        super().__init__(seed)
        self.offset = offset

    def randint(self, a, b):
        assert a <= self.offset <= b, (a, self.offset, b)
        return self.offset


def d2l_batches(kind, corpus, batch_size, num_steps, offset):
    it = d2l_seq_data_iter_sequential if kind == "sequential" else d2l_seq_data_iter_random
    return list(it(corpus.tolist(), batch_size, num_steps, FixedOffset(offset)))


def gen(seed):
    return torch.Generator().manual_seed(seed)


def rows(X):
    """All subsequences of a time-major (nb, T, B) tensor as tuples."""
    return [tuple(X[n, :, b].tolist()) for n in range(X.shape[0]) for b in range(X.shape[2])]


# --------------------------------------------------------------------------------------------
# Iterators


@pytest.mark.parametrize("n,B,T", [(50, 2, 3), (61, 4, 5), (23, 3, 1), (40, 1, 7), (33, 5, 2)])
def test_partition_equals_d2l_sequential(n, B, T):
    corpus = torch.randint(0, 9, (n,), generator=gen(n))
    for offset in range(T + 1):
        X, Y = partition(corpus, offset, B, T)
        ref = d2l_batches("sequential", corpus, B, T, offset)
        assert X.shape == Y.shape == (len(ref), T, B)
        assert len(ref) >= 1
        for i, (rx, ry) in enumerate(ref):
            assert torch.equal(X[i].T, rx) and torch.equal(Y[i].T, ry)


def test_sequential_batches_equal_d2l_for_every_offset():
    n, B, T = 47, 3, 4
    corpus = torch.arange(100, 100 + n)
    seen = set()
    for seed in range(60):
        X, Y = sequential_batches(corpus, B, T, gen(seed))
        offset = int(X[0, 0, 0]) - 100  # distinct tokens: the first one tells the offset
        seen.add(offset)
        ref = d2l_batches("sequential", corpus, B, T, offset)
        assert len(X) == len(ref)
        for i, (rx, ry) in enumerate(ref):
            assert torch.equal(X[i].T, rx) and torch.equal(Y[i].T, ry)
    assert seen == set(range(T + 1))  # offsets in [0, T], T included as in d2l


def test_sequential_batches_continue_rows():
    corpus = torch.randint(0, 5, (200,), generator=gen(3))
    B, T = 4, 6
    X, Y = sequential_batches(corpus, B, T, gen(1))
    assert len(X) >= 3
    for i in range(len(X) - 1):
        assert torch.equal(X[i + 1][0], Y[i][-1])  # next batch starts where this one ended
    # each row, read across the batches, is one contiguous stretch of the corpus
    xs = X.permute(2, 0, 1).reshape(B, -1)
    ys = Y.permute(2, 0, 1).reshape(B, -1)
    for offset in range(T + 1):
        num_tokens = ((len(corpus) - offset - 1) // B) * B
        row_len = num_tokens // B
        if all(torch.equal(xs[b], corpus[offset + b * row_len:][:xs.shape[1]])
               for b in range(B)):
            break
    else:
        pytest.fail("rows are not contiguous stretches of the corpus")
    for b in range(B):
        assert torch.equal(ys[b], corpus[offset + 1 + b * row_len:][:ys.shape[1]])
    # with distinct tokens: every row continues exactly
    X, _ = sequential_batches(torch.arange(200), B, T, gen(1))
    assert torch.equal(X[1:, 0, :], X[:-1, -1, :] + 1)


@pytest.mark.parametrize("n,B,T", [(61, 3, 4), (64, 3, 4), (50, 2, 5), (29, 4, 1)])
def test_random_batches_match_d2l_subsequences(n, B, T):
    corpus = torch.arange(1000, 1000 + n)
    seen = set()
    for seed in range(40):
        X, Y = random_batches(corpus, B, T, gen(seed))
        offset = (int(X[0, 0, 0]) - 1000) % T
        seen.add(offset)
        ref = d2l_batches("random", corpus, B, T, offset)
        ref_x = {tuple(r.tolist()) for rx, _ in ref for r in rx}
        ref_pairs = {(tuple(x.tolist()), tuple(y.tolist()))
                     for rx, ry in ref for x, y in zip(rx, ry)}
        ours_x, ours_y = rows(X), rows(Y)
        assert X.shape == Y.shape == (len(ref), T, B)
        assert len(set(ours_x)) == len(ours_x) == len(ref_x)  # no subsequence twice
        values = X.flatten().tolist()
        assert len(set(values)) == len(values)  # subsequences do not overlap
        assert torch.equal(Y, X + 1)  # Y is X shifted by one token
        all_subseqs = {tuple(range(1000 + offset + k * T, 1000 + offset + (k + 1) * T))
                       for k in range((n - offset - 1) // T)}
        assert set(ours_x) <= all_subseqs
        assert set(zip(ours_x, ours_y)) <= {(x, tuple(v + 1 for v in x)) for x in all_subseqs}
        if len(all_subseqs) % B == 0:  # d2l then uses every subsequence: the sets coincide
            assert set(ours_x) == ref_x
            assert set(zip(ours_x, ours_y)) == ref_pairs
    assert seen == set(range(T))  # offsets in [0, T - 1] as in d2l


def test_random_batches_seeded_by_generator_only():
    corpus = torch.randint(0, 50, (300,), generator=gen(7))
    B, T = 4, 5
    torch.manual_seed(0)
    random.seed(0)
    X1, Y1 = random_batches(corpus, B, T, gen(11))
    torch.manual_seed(1)
    random.seed(1)
    X2, Y2 = random_batches(corpus, B, T, gen(11))
    assert torch.equal(X1, X2) and torch.equal(Y1, Y2)
    X3, _ = random_batches(corpus, B, T, gen(12))
    assert X3.shape != X1.shape or not torch.equal(X1, X3)
    assert torch.equal(Y1[:, :-1], X1[:, 1:])  # within a subsequence, Y is X shifted


@pytest.mark.parametrize("n,B,T", [(50, 2, 3), (101, 4, 5), (37, 3, 1), (64, 1, 8), (99, 7, 2)])
def test_shapes(n, B, T):
    corpus = torch.arange(n)
    for seed in range(8):
        X, Y = sequential_batches(corpus, B, T, gen(seed))
        off = int(X[0, 0, 0])
        assert X.shape == Y.shape == (((n - off - 1) // B) // T, T, B)
        assert X.dtype == Y.dtype == torch.long and X.is_contiguous()
        X, Y = random_batches(corpus, B, T, gen(seed))
        off = int(X[0, 0, 0]) % T
        assert X.shape == Y.shape == (((n - off - 1) // T) // B, T, B)


@pytest.mark.parametrize("B,T", [(2, 3), (4, 5), (3, 2), (1, 6), (5, 4)])
def test_min_tokens_is_enough_and_tight(B, T):
    n = min_tokens(B, T)
    assert n == B * T + T + 1
    corpus = torch.arange(n)
    for offset in range(T + 1):
        assert len(partition(corpus, offset, B, T)[0]) >= 1
        assert len(d2l_batches("sequential", corpus, B, T, offset)) >= 1
    for offset in range(T):
        assert len(d2l_batches("random", corpus, B, T, offset)) >= 1
    for seed in range(30):
        for sampling in SAMPLINGS:
            assert len(epoch_batches(sampling, corpus, B, T, gen(seed))[0]) >= 1

    short = torch.arange(n - 1)
    failing = [off for off in range(T + 1) if len(partition(short, off, B, T)[0]) == 0]
    assert failing == [T]  # the largest sequential offset leaves no full batch
    assert len(d2l_batches("sequential", short, B, T, T)) == 0
    # random sampling (offset <= T - 1) would still fit: sequential is what sets the bound
    assert all(len(d2l_batches("random", short, B, T, off)) >= 1 for off in range(T))


def test_epoch_batches_dispatch_and_unknown_sampling():
    corpus = torch.arange(120)
    for name, fn in (("sequential", sequential_batches), ("random", random_batches)):
        X, Y = epoch_batches(name, corpus, 3, 4, gen(5))
        X2, Y2 = fn(corpus, 3, 4, gen(5))
        assert torch.equal(X, X2) and torch.equal(Y, Y2)
    with pytest.raises(ValueError, match=r"data\.sampling='shuffled'") as e:
        epoch_batches("shuffled", corpus, 3, 4, gen(0))
    assert "sequential" in str(e.value) and "random" in str(e.value)
