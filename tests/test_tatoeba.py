"""data/tatoeba.py: d2l 0.17.6's NMT preprocessing, tokenization and padding, the seeded
held-out split with training-only vocabularies, and fetching fra.txt from its zip."""
import zipfile

import pytest
import torch

from data import DataError, NMTData, fra_file, load_nmt_data
from data.download import ENV_VAR, sha1_of
from data.tatoeba import (
    RESERVED,
    build_array,
    preprocess_nmt,
    read_pairs,
    tokenize,
    truncate_pad,
)
from data.vocab import Vocab

FILE = "fra-eng/fra.txt"
DEAD_URL = "http://127.0.0.1:9/fra-eng.zip"  # never reached: tests stay offline


# ---------------------------------------------------------------- preprocessing and tokens

@pytest.mark.parametrize("raw, expected", [
    ("Go.", "go ."),
    ("I'm home.", "i'm home ."),
    ("Hi,\xa0you?", "hi , you ?"),
    ("Go.\u202fNow!", "go . now !"),
    ("Va !", "va !"),  # an existing space before the mark is not doubled
    ("Wait...", "wait . . ."),  # d2l looks at the original previous character
    ("!Ok", "!ok"),  # nothing is inserted at the start
    ("Run!\tCours\u202f!", "run !\tcours !"),
])
def test_preprocess_nmt(raw, expected):
    assert preprocess_nmt(raw) == expected


def test_read_pairs_counts_malformed_and_takes_two_fields(tmp_path):
    path = tmp_path / "fra.txt"
    path.write_text("Go.\tVa !\n"
                    "no tab here\n"
                    "Hi.\t\n"
                    "Run!\tCours\u202f!\tCC-BY 2.0 (France) Attribution: tatoeba.org #906328\n"
                    "\n", encoding="utf-8")
    pairs, malformed = read_pairs(path)
    assert pairs == [("go .", "va !"), ("run !", "cours !")]
    assert malformed == 2


def test_tokenize_first_examples():
    pairs = [("go .", "va !"), ("hi .", "salut ."), ("run !", "cours !")]
    src, tgt = tokenize(pairs, 2)
    assert src == [["go", "."], ["hi", "."]]
    assert tgt == [["va", "!"], ["salut", "."]]
    src, tgt = tokenize(pairs, 0)
    assert src == [["go", "."], ["hi", "."], ["run", "!"]]
    assert tgt == [["va", "!"], ["salut", "."], ["cours", "!"]]


def test_truncate_pad():
    assert truncate_pad([1, 2, 3], 2, 0) == [1, 2]
    assert truncate_pad([1], 3, 9) == [1, 9, 9]
    assert truncate_pad([1, 2], 2, 9) == [1, 2]


def test_build_array_exact():
    vocab = Vocab(["a", "b", "b"], reserved_tokens=RESERVED)  # <unk><pad><bos><eos> b a
    assert vocab.idx_to_token == ["<unk>", "<pad>", "<bos>", "<eos>", "b", "a"]
    array, valid_len = build_array([["a", "b"], ["b", "a", "x", "a"], []], vocab, 4)
    assert array.dtype == valid_len.dtype == torch.long
    assert array.tolist() == [[5, 4, 3, 1],  # <eos> appended, then <pad>
                              [4, 5, 0, 5],  # too long: truncated, <eos> lost, x is <unk>
                              [3, 1, 1, 1]]
    assert valid_len.tolist() == [3, 4, 1]
    empty, empty_len = build_array([], vocab, 4)
    assert empty.shape == (0, 4) and empty_len.shape == (0,)


# ---------------------------------------------------------------- load_nmt_data

def write_pairs(path, n=10):
    """n pairs, each with one word of its own (w<i> / f<i>) and words shared by all."""
    lines = [f"W{i} go.\tF{i} va\xa0!" for i in range(n)] + ["broken line"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load(path, **kw):
    args = dict(num_examples=0, val_fraction=0.2, num_steps=6, min_freq=0, seed=0) | kw
    return load_nmt_data(path, **args)


def train_pairs(data: NMTData):
    """The training pairs' tokens, read back from the arrays (valid_len - 1 drops <eos>)."""
    src, src_len, tgt, tgt_len = data.train
    return [(tuple(data.src_vocab.to_tokens(s[:n - 1])), tuple(data.tgt_vocab.to_tokens(t[:m - 1])))
            for s, n, t, m in zip(src, src_len, tgt, tgt_len)]


def test_split_disjoint_and_vocab_from_training_only(tmp_path):
    data = load(write_pairs(tmp_path / "fra.txt"))
    val = [(tuple(s), tuple(t)) for s, t in data.val_pairs]
    train = train_pairs(data)
    assert len(train) == 8 and len(val) == 2
    assert not set(train) & set(val)
    assert sorted(train + val) == sorted(((f"w{i}", "go", "."), (f"f{i}", "va", "!"))
                                         for i in range(10))
    for src, tgt in val:  # the held-out pair's own words were never seen in training
        assert src[0] not in data.src_vocab.token_to_idx
        assert tgt[0] not in data.tgt_vocab.token_to_idx
    sv, tv = data.src_vocab, data.tgt_vocab
    assert data.val[0].tolist() == [[0, sv["go"], sv["."], 3, 1, 1]] * 2
    assert data.val[2].tolist() == [[0, tv["va"], tv["!"], 3, 1, 1]] * 2
    assert data.val[1].tolist() == data.val[3].tolist() == [4, 4]
    for vocab in (sv, tv):
        assert vocab.idx_to_token[:4] == ["<unk>", "<pad>", "<bos>", "<eos>"]
        assert [vocab[t] for t in ("<unk>", "<pad>", "<bos>", "<eos>")] == [0, 1, 2, 3]


def test_split_deterministic_per_seed(tmp_path):
    path = write_pairs(tmp_path / "fra.txt")
    a, b, c = load(path, seed=0), load(path, seed=0), load(path, seed=1)
    assert a.val_pairs == b.val_pairs
    assert all(torch.equal(x, y) for x, y in zip(a.train + a.val, b.train + b.val))
    assert a.val_pairs != c.val_pairs


def test_min_freq_drops_singletons(tmp_path):
    data = load(write_pairs(tmp_path / "fra.txt"), min_freq=2)
    assert data.src_vocab.idx_to_token == ["<unk>", "<pad>", "<bos>", "<eos>", "go", "."]
    assert data.tgt_vocab.idx_to_token == ["<unk>", "<pad>", "<bos>", "<eos>", "va", "!"]
    assert data.train[0].tolist() == [[0, 4, 5, 3, 1, 1]] * 8


def test_provenance_counts(tmp_path):
    path = write_pairs(tmp_path / "fra.txt")
    data = load(path)
    assert data.provenance == {
        "file": str(path.resolve()), "sha1": sha1_of(path), "pairs_in_file": 10,
        "malformed_lines": 1, "num_examples": 0, "train_pairs": 8, "val_pairs": 2,
        "src_vocab_size": 4 + 2 + 8, "tgt_vocab_size": 4 + 2 + 8,
        "train_tgt_tokens": 8 * 4,  # f<i> va ! <eos>
    }
    few = load(path, num_examples=5, num_steps=3)  # floor(0.2 * 5) = 1 held out
    assert (few.provenance["num_examples"], few.provenance["train_pairs"],
            few.provenance["val_pairs"]) == (5, 4, 1)
    assert few.provenance["train_tgt_tokens"] == 4 * 3  # truncated to num_steps
    assert few.train[2].shape == (4, 3) and few.val[0].shape == (1, 3)
    none = load(path, val_fraction=0.0)
    assert none.val[0].shape == (0, 6) and none.val_pairs == []
    assert none.provenance["train_pairs"] == 10


# ---------------------------------------------------------------- fra_file

def make_zip(folder, text="Go.\tVa !\n", member=FILE):
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "fra-eng.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(member, text.encode("utf-8"))
    return archive


def test_fra_file_user_file_used_as_is(tmp_path):
    (tmp_path / "fra-eng").mkdir()
    (tmp_path / FILE).write_text("mine\tà moi\n", encoding="utf-8")
    assert fra_file(tmp_path, FILE, DEAD_URL, "0" * 40, download=True) == tmp_path / FILE
    assert (tmp_path / FILE).read_text(encoding="utf-8") == "mine\tà moi\n"
    assert not (tmp_path / "fra-eng.zip").exists()


def test_fra_file_downloads_and_extracts(tmp_path):
    archive = make_zip(tmp_path / "server")
    root = tmp_path / "data"
    path = fra_file(root, FILE, archive.as_uri(), sha1_of(archive), download=True)
    assert path == root / FILE
    assert path.read_text(encoding="utf-8") == "Go.\tVa !\n"
    assert not [p for p in root.rglob("*") if p.name.endswith(".part")]
    assert read_pairs(path) == ([("go .", "va !")], 0)


def test_fra_file_zip_already_there_without_download(tmp_path):
    archive = make_zip(tmp_path)
    path = fra_file(tmp_path, FILE, DEAD_URL, sha1_of(archive), download=False)
    assert path.read_text(encoding="utf-8") == "Go.\tVa !\n"


def test_fra_file_wrong_sha1_or_member(tmp_path):
    archive = make_zip(tmp_path / "server")
    with pytest.raises(DataError, match="expected"):
        fra_file(tmp_path / "a", FILE, archive.as_uri(), "0" * 40, download=True)
    assert not (tmp_path / "a" / FILE).exists()
    other = make_zip(tmp_path / "other", member="fra.txt")
    with pytest.raises(DataError, match="fra-eng/fra.txt"):
        fra_file(tmp_path / "b", FILE, other.as_uri(), sha1_of(other), download=True)
    assert not list((tmp_path / "b" / "fra-eng").iterdir())


def test_fra_file_missing_without_download(tmp_path):
    root = tmp_path / "empty"
    with pytest.raises(DataError) as e:
        fra_file(root, FILE, DEAD_URL, None, download=False)
    msg = str(e.value)
    assert str(root.resolve()) in msg and DEAD_URL in msg and ENV_VAR in msg and FILE in msg
