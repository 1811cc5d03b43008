"""data/: preprocessing, vocabulary and the train / held-out split (the iterators:
test_iterators.py; the download: test_download.py)."""
import hashlib
import re

import pytest
import torch

from data import load_lm_data
from data.corpus import split_tokens
from data.timemachine import read_lines, tokenize
from data.vocab import Vocab

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
