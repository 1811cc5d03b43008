"""data/: preprocessing, vocabulary, the train / held-out split, minibatch iterators (checked
against d2l 0.17.6's reference iterators) and the sha1-checked download."""
import hashlib
import random
import re

import pytest
import torch

from data import DataError, ensure_file, load_lm_data
from data.corpus import split_tokens
from data.download import ENV_VAR
from data.iterators import (
    SAMPLINGS,
    epoch_batches,
    min_tokens,
    partition,
    random_batches,
    sequential_batches,
)
from data.timemachine import read_lines, tokenize
from data.vocab import Vocab

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
# Preprocessing


def test_read_lines_d2l_semantics(tmp_path):
    text = ("The Time Machine, by H. G. Wells [1898]\n"
            "  I.  \n"
            "\n"
            "...!!!...\n"
            "Caf\u00e9 au LAIT--it's 3 o'clock\n"
            "tab\there")
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    assert read_lines(path) == [
        "the time machine by h g wells",
        "i",
        "",
        "",
        "caf au lait it s o clock",
        "tab here",
    ]
    # exactly d2l's expression, line by line
    expected = [re.sub("[^A-Za-z]+", " ", line).strip().lower()
                for line in text.splitlines(keepends=True)]
    assert read_lines(path) == expected


def test_tokenize_char_and_word():
    lines = ["ab c", "", "d  e"]
    assert tokenize(lines, "char") == ["a", "b", " ", "c", "d", " ", " ", "e"]
    assert tokenize(lines, "word") == ["ab", "c", "d", "e"]
    assert tokenize([], "char") == []


def test_tokenize_unknown_kind():
    with pytest.raises(ValueError, match=r"data\.token='bpe'") as e:
        tokenize(["a b"], "bpe")
    assert "char" in str(e.value) and "word" in str(e.value)


# --------------------------------------------------------------------------------------------
# Vocab

SENTENCE = ["the", "a", "sat", "cat", "mat", "the", "cat", "a", "the"]


def test_vocab_order_unk_first_then_frequency_ties_by_first_appearance():
    v = Vocab(SENTENCE)
    # the:3, then a/cat (2 each; a seen first), then sat/mat (1 each; sat seen first): ties
    # follow first appearance, neither alphabetical (mat < sat) nor reversed (cat > a)
    assert v.idx_to_token == ["<unk>", "the", "a", "cat", "sat", "mat"]
    assert v.token_to_idx == {t: i for i, t in enumerate(v.idx_to_token)}
    assert len(v) == 6
    assert v.token_freqs == [("the", 3), ("a", 2), ("cat", 2), ("sat", 1), ("mat", 1)]
    assert v.unk == 0 and v["<unk>"] == 0


def test_vocab_reserved_tokens_follow_unk():
    v = Vocab(SENTENCE, reserved_tokens=["<pad>", "<bos>"])
    assert v.idx_to_token == ["<unk>", "<pad>", "<bos>", "the", "a", "cat", "sat", "mat"]
    assert v["<pad>"] == 1 and v["<bos>"] == 2 and v["the"] == 3


def test_vocab_min_freq_and_unknown_tokens():
    v = Vocab(SENTENCE, min_freq=2)
    assert v.idx_to_token == ["<unk>", "the", "a", "cat"]
    assert v["sat"] == 0 and v["mat"] == 0 and v["zebra"] == 0
    assert v.indices(["a", "zebra", "the", "sat"]) == [2, 0, 1, 0]
    assert Vocab(SENTENCE, min_freq=1).idx_to_token == Vocab(SENTENCE).idx_to_token
    assert Vocab(SENTENCE, min_freq=4).idx_to_token == ["<unk>"]


def test_vocab_to_tokens_inverts_indices():
    v = Vocab(SENTENCE)
    ids = v.indices(SENTENCE)
    assert ids == [1, 2, 4, 3, 5, 1, 3, 2, 1]
    assert v.to_tokens(ids) == SENTENCE
    assert v.to_tokens(torch.tensor(ids)) == SENTENCE
    assert v.to_tokens(v.indices(["cat", "dog"])) == ["cat", "<unk>"]


# --------------------------------------------------------------------------------------------
# Train / held-out split


def test_split_tokens_prefix_and_disjoint():
    tokens = [f"w{i}" for i in range(20)]
    train, val = split_tokens(tokens, 12, 5)
    assert train == tokens[:12] and val == tokens[12:17]
    train, val = split_tokens(tokens, None, 5)
    assert train == tokens[:15] and val == tokens[15:]
    train, val = split_tokens(tokens, 20, 0)
    assert train == tokens and val == []


def test_split_tokens_none_with_val_longer_than_corpus():
    # a negative end would wrap around: check_fits_data then reports the empty training slice
    tokens = list(range(10))
    train, val = split_tokens(tokens, None, 15)
    assert train == [] and val == tokens


WORD_TEXT = "The cat sat.\nThe mat!  The cat?\n\nZebra, cat -- the\n"
WORD_TOKENS = ["the", "cat", "sat", "the", "mat", "the", "cat", "zebra", "cat", "the"]


@pytest.mark.parametrize("max_tokens", [7, None])
def test_load_lm_data_words(tmp_path, max_tokens):
    path = tmp_path / "c.txt"
    path.write_text(WORD_TEXT, encoding="utf-8")
    d = load_lm_data(path, "word", max_tokens, 3)
    assert d.vocab.idx_to_token == ["<unk>", "the", "cat", "sat", "mat"]  # no "zebra"
    assert d.train.dtype == torch.long and d.val.dtype == torch.long
    assert d.train.tolist() == [1, 2, 3, 1, 4, 1, 2]
    assert d.val.tolist() == [0, 2, 1]  # zebra only appears in the held-out slice -> <unk>
    assert d.vocab.to_tokens(d.train) + ["zebra", "cat", "the"] == WORD_TOKENS
    assert d.provenance == {
        "file": str(path.resolve()),
        "sha1": hashlib.sha1(WORD_TEXT.encode()).hexdigest(),
        "token": "word",
        "corpus_tokens": 10,
        "train_tokens": 7,
        "val_tokens": 3,
        "vocab_size": 5,
        "val_unk_tokens": 1,
    }


def test_load_lm_data_min_freq_counts_val_unk(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(WORD_TEXT, encoding="utf-8")
    d = load_lm_data(path, "word", 5, 4, min_freq=2)
    # train: the cat sat the mat -> only "the" occurs twice
    assert d.vocab.idx_to_token == ["<unk>", "the"]
    assert d.train.tolist() == [1, 0, 0, 1, 0]
    # held out: the cat zebra cat -> three tokens outside the vocabulary
    assert d.val.tolist() == [1, 0, 0, 0]
    assert d.provenance["val_unk_tokens"] == 3
    assert d.provenance["vocab_size"] == 2
    assert (d.provenance["train_tokens"], d.provenance["val_tokens"]) == (5, 4)


def test_load_lm_data_chars_prefix_of_corpus(tmp_path):
    path = tmp_path / "c.txt"
    raw = b"Ab, c!\nxyz\nAB\n"
    path.write_bytes(raw)
    chars = list("ab c" + "xyz" + "ab")  # line breaks dropped
    d = load_lm_data(path, "char", 4, 3)
    train, val = d.vocab.to_tokens(d.train), d.vocab.to_tokens(d.val)
    assert train == chars[:4] and len(val) == 3
    assert train + ["x", "y", "z"] == chars[:7]
    assert val == ["<unk>"] * 3  # x, y, z are not in the training slice
    assert d.provenance["sha1"] == hashlib.sha1(raw).hexdigest()
    assert d.provenance["corpus_tokens"] == 9
    assert d.provenance["vocab_size"] == 5  # <unk> a b ' ' c
    assert d.provenance["val_unk_tokens"] == 3

    d = load_lm_data(path, "char", None, 2)
    assert d.vocab.to_tokens(d.train) == chars[:7]
    assert d.val.tolist() == [d.vocab["a"], d.vocab["b"]]
    assert d.provenance["train_tokens"] == 7 and d.provenance["val_tokens"] == 2


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


# --------------------------------------------------------------------------------------------
# Download

NAME = "timemachine.txt"
CONTENT = b"The Time Machine, by H. G. Wells\nI.\n"
SHA1 = hashlib.sha1(CONTENT).hexdigest()
BAD_SHA1 = "0" * 40
DEAD_URL = "http://127.0.0.1:9/timemachine.txt"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def test_ensure_file_existing_with_matching_sha1(tmp_path):
    (tmp_path / NAME).write_bytes(CONTENT)
    assert ensure_file(tmp_path, NAME, DEAD_URL, SHA1, download=False) == tmp_path / NAME
    assert ensure_file(tmp_path, NAME, DEAD_URL, SHA1, download=True) == tmp_path / NAME


def test_ensure_file_wrong_sha1(tmp_path):
    (tmp_path / NAME).write_bytes(CONTENT)
    with pytest.raises(DataError) as e:
        ensure_file(tmp_path, NAME, DEAD_URL, BAD_SHA1, download=True)
    msg = str(e.value)
    assert SHA1 in msg and BAD_SHA1 in msg and ENV_VAR == "RUNNER_DATA_DIR" and ENV_VAR in msg
    assert (tmp_path / NAME).read_bytes() == CONTENT  # left alone, not re-downloaded


def test_ensure_file_sha1_none_accepts_any_file(tmp_path):
    (tmp_path / NAME).write_bytes(b"anything at all")
    assert ensure_file(tmp_path, NAME, DEAD_URL, None, download=False) == tmp_path / NAME


def test_ensure_file_missing_without_download(tmp_path):
    root = tmp_path / "corpora"
    root.mkdir()
    with pytest.raises(DataError) as e:
        ensure_file(root, NAME, DEAD_URL, SHA1, download=False)
    msg = str(e.value)
    assert str(root.resolve()) in msg and DEAD_URL in msg and "RUNNER_DATA_DIR" in msg
    assert list(root.iterdir()) == []


def test_ensure_file_unreachable_url(tmp_path):
    root = tmp_path / "corpora"
    with pytest.raises(DataError) as e:
        ensure_file(root, NAME, DEAD_URL, SHA1, download=True)
    msg = str(e.value)
    assert str(root.resolve()) in msg and DEAD_URL in msg and "RUNNER_DATA_DIR" in msg
    assert list(root.iterdir()) == []  # neither the file nor a .part temp file


def test_ensure_file_downloads_file_url(tmp_path):
    src = tmp_path / "mirror" / NAME
    src.parent.mkdir()
    src.write_bytes(CONTENT)
    root = tmp_path / "corpora"  # created on demand
    path = ensure_file(root, NAME, src.as_uri(), SHA1, download=True)
    assert path == root / NAME
    assert path.read_bytes() == CONTENT
    assert list(root.iterdir()) == [path]
    # a second call finds the file and does not need the URL any more
    src.unlink()
    assert ensure_file(root, NAME, src.as_uri(), SHA1, download=True) == path


def test_ensure_file_download_with_wrong_sha1_is_refused(tmp_path):
    src = tmp_path / "mirror" / NAME
    src.parent.mkdir()
    src.write_bytes(CONTENT)
    root = tmp_path / "corpora"
    with pytest.raises(DataError) as e:
        ensure_file(root, NAME, src.as_uri(), BAD_SHA1, download=True)
    assert SHA1 in str(e.value) and BAD_SHA1 in str(e.value)
    assert list(root.iterdir()) == []
