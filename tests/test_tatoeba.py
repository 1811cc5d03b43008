"""data/tatoeba.py: d2l 0.17.6's NMT preprocessing, tokenization, padding and training pairs,
the held-out pairs whose sources were never trained on, training-only vocabularies, and
fetching and checking fra.txt."""
import hashlib
import random
import zipfile

import pytest
import torch

from data import DataError, NMTData, fra_file, load_nmt_data
from data.download import ENV_VAR, sha1_of
from data.tatoeba import RESERVED, Pair, build_array, preprocess_nmt, read_pairs, truncate_pad
from data.vocab import Vocab

FILE = "fra-eng/fra.txt"
DEAD_URL = "http://127.0.0.1:9/fra-eng.zip"  # never reached: tests stay offline

# --------------------------------------------------------------------------------------------
# d2l 0.17.6's read_data_nmt / preprocess_nmt / tokenize_nmt, verbatim but for the path.


def d2l_read_data_nmt(path):
    with open(path, "r") as f:  # noqa: UP015 (verbatim)
        return f.read()


def d2l_preprocess_nmt(text):
    def no_space(char, prev_char):
        return char in set(",.!?") and prev_char != " "

    text = text.replace("\u202f", " ").replace("\xa0", " ").lower()
    out = [" " + char if i > 0 and no_space(char, text[i - 1]) else char
           for i, char in enumerate(text)]
    return "".join(out)


def d2l_tokenize_nmt(text, num_examples=None):
    source, target = [], []
    for i, line in enumerate(text.split("\n")):
        if num_examples and i > num_examples:
            break
        parts = line.split("\t")
        if len(parts) == 2:
            source.append(parts[0].split(" "))
            target.append(parts[1].split(" "))
    return source, target


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
                    "!Ok\tD'accord.\n"
                    "\n", encoding="utf-8")
    pairs, malformed = read_pairs(path)
    # line numbers as d2l counts them; the whole text is preprocessed at once, as d2l does,
    # so a mark opening a line gets a space before it
    assert pairs == [Pair(0, "go .", "va !"), Pair(3, "run !", "cours !"),
                     Pair(4, " !ok", "d'accord .")]
    assert malformed == 2


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


# ---------------------------------------------------------------- training and held-out pairs

# Like the real file: several French translations per English sentence, one after another.
CORPUS = [
    "Go.\tVa !",
    "Go.\tMarche.",
    "Hi.\tSalut !",
    "no tab here",
    "Hi.\tSalut.",
    "Run!\tCours !",                                      # line 5: the last training line
    "Run!\tCourez !",                                     # a training source: skipped
    "Wow!\tÇa alors !",
    "Fire in the old house!\tAu feu dans la vieille maison !",  # longer than num_steps
    "Go.\tBouge !",                                       # a training source again: skipped
    "Help!\tÀ l'aide !",
    "Help!\tAu secours , vite , tout de suite !",          # a target longer than num_steps
    "Jump.\tSaute.",
]


def write_corpus(path, lines=CORPUS):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load(path, **kw):
    args = dict(num_examples=5, val_pairs=4, num_steps=4, min_freq=0) | kw
    return load_nmt_data(path, **args)


def read_back(data: NMTData, arrays):
    """The pairs' tokens, read back from arrays (valid_len - 1 drops <eos>; rows not cut)."""
    src, src_len, tgt, tgt_len = arrays
    return [(data.src_vocab.to_tokens(s[:n - 1]), data.tgt_vocab.to_tokens(t[:m - 1]))
            for s, n, t, m in zip(src, src_len, tgt, tgt_len)]


def test_training_pairs_are_d2ls_first_num_examples_plus_one_lines(tmp_path):
    """d2l's loop stops at `i > num_examples`: lines 0..num_examples, malformed ones skipped."""
    rng, lines = random.Random(0), []
    for k in range(40):
        lines += [f"W{k} go{'.' * (k % 2)}\tF{k} v{j}\xa0!" for j in range(rng.randint(1, 3))]
    lines[5] = "a malformed line"
    lines[9] = "!Hey\tHé !"  # a mark opening a line: d2l's whole-text preprocessing spaces it
    path = write_corpus(tmp_path / "fra.txt", lines)
    for num_examples in (1, 4, 10, 30):
        data = load(path, num_examples=num_examples, val_pairs=1, num_steps=20)
        src, tgt = d2l_tokenize_nmt(d2l_preprocess_nmt(d2l_read_data_nmt(path)), num_examples)
        assert read_back(data, data.train) == list(zip(src, tgt))
        assert data.provenance["train_pairs"] == len(src) == num_examples + 1 - (num_examples >= 5)
        assert data.train_sources == {" ".join(s) for s in src}


def test_held_out_pairs_follow_training_and_never_repeat_a_training_source(tmp_path):
    data = load(write_corpus(tmp_path / "fra.txt"))
    train, val = read_back(data, data.train), read_back(data, data.val)
    assert [" ".join(s) for s, _ in train] == ["go .", "go .", "hi .", "hi .", "run !"]
    # lines 6 ("run !") and 9 ("go .") repeat training sources: skipped, in file order
    assert [" ".join(s) for s, _ in data.val_sentences] == [
        "wow !", "fire in the old house !", "help !", "help !"]
    assert not {" ".join(s) for s, _ in data.val_sentences} & data.train_sources
    assert [" ".join(t) for _, t in data.val_sentences][1] == "au feu dans la vieille maison !"
    # held-out words unseen in training are <unk> in the arrays, as the model reads them
    assert val[0][0] == ["<unk>", "!"] and val[2][1] == ["<unk>", "<unk>", "!"]
    assert data.provenance["val_pairs_skipped_seen_source"] == 2
    assert data.provenance["val_sources_seen_in_training"] == 0
    assert data.provenance["val_last_line"] == 11


def test_val_pairs_is_the_held_out_count(tmp_path):
    path = write_corpus(tmp_path / "fra.txt")
    assert len(load(path, val_pairs=1).val_sentences) == 1
    five = load(path, val_pairs=5)
    assert five.val[0].shape[0] == 5 and five.val_sentences[-1][0] == ["jump", "."]
    assert five.provenance["val_pairs"] == 5 and five.provenance["val_last_line"] == 12
    with pytest.raises(DataError) as e:
        load(path, val_pairs=6)
    msg = str(e.value)
    assert "data.val_pairs=6" in msg and "only 5 pairs after line 5" in msg
    assert "2 more repeat one" in msg and "at most 5" in msg and "data.num_examples" in msg


@pytest.mark.parametrize("kw", [{"num_examples": 0}, {"val_pairs": 0}])
def test_every_pair_for_training_is_refused(tmp_path, kw):
    with pytest.raises(ValueError, match="both must be >= 1"):
        load(write_corpus(tmp_path / "fra.txt"), **kw)


def test_a_file_with_nothing_after_training_is_refused(tmp_path):
    with pytest.raises(DataError, match="only 0 pairs after line 50"):
        load(write_corpus(tmp_path / "fra.txt"), num_examples=50)


def test_held_out_rows_are_never_cut(tmp_path):
    """Training rows are cut to num_steps (d2l); held-out rows keep every token and <eos>."""
    data = load(write_corpus(tmp_path / "fra.txt"))
    src, src_len, tgt, tgt_len = data.val
    assert data.train[0].shape == data.train[2].shape == (5, 4)
    assert src.shape == (4, 7) and tgt.shape == (4, 10)  # the longest source / target + <eos>
    assert src_len.tolist() == [3, 7, 3, 3] and tgt_len.tolist() == [4, 8, 4, 10]
    assert [t[:n].tolist()[-1] for t, n in zip(tgt, tgt_len)] == [3] * 4  # each ends in <eos>
    assert data.provenance["val_tgt_tokens"] == 4 + 8 + 4 + 10


def test_vocab_from_training_only_and_min_freq(tmp_path):
    path = write_corpus(tmp_path / "fra.txt")
    data = load(path)
    assert set(data.src_vocab.idx_to_token[4:]) == {"go", ".", "hi", "run", "!"}
    assert data.tgt_vocab.idx_to_token[:4] == ["<unk>", "<pad>", "<bos>", "<eos>"]
    assert "alors" not in data.tgt_vocab.token_to_idx  # a held-out word
    frequent = load(path, min_freq=2)
    assert frequent.src_vocab.idx_to_token == ["<unk>", "<pad>", "<bos>", "<eos>", ".", "go", "hi"]
    assert frequent.tgt_vocab.idx_to_token == ["<unk>", "<pad>", "<bos>", "<eos>", "!", ".",
                                               "salut"]


def test_provenance(tmp_path):
    path = write_corpus(tmp_path / "fra.txt")
    assert load(path).provenance == {
        "file": str(path.resolve()), "sha1": sha1_of(path), "pairs_in_file": 12,
        "malformed_lines": 1, "num_examples": 5, "train_pairs": 5, "train_sources": 3,
        "val_pairs": 4, "val_sources": 3, "val_last_line": 11,
        "val_pairs_skipped_seen_source": 2, "val_sources_seen_in_training": 0,
        "src_vocab_size": 4 + 5, "tgt_vocab_size": 4 + 6,  # va ! marche . salut cours
        "train_tgt_tokens": 5 * 3,  # two tokens and <eos> each: none cut at num_steps=4
        "val_tgt_tokens": 26, "val_tgt_unk_tokens": 2 + 6 + 2 + 8,  # all but "!"
    }

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
    assert fra_file(tmp_path, FILE, DEAD_URL, "0" * 40, None, download=True) == tmp_path / FILE
    assert (tmp_path / FILE).read_text(encoding="utf-8") == "mine\tà moi\n"
    assert not (tmp_path / "fra-eng.zip").exists()


def test_fra_file_checks_the_text_sha1_on_every_run(tmp_path):
    (tmp_path / "fra-eng").mkdir()
    path = tmp_path / FILE
    path.write_text("mine\tà moi\n", encoding="utf-8")
    mine = sha1_of(path)
    for _ in range(2):  # a file already there is checked each time, not only when fetched
        assert fra_file(tmp_path, FILE, DEAD_URL, None, mine, download=False) == path
    path.write_text("changed\tchangé\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        fra_file(tmp_path, FILE, DEAD_URL, None, mine, download=False)
    msg = str(e.value)
    assert str(path.resolve()) in msg and sha1_of(path) in msg and f"data.sha1={mine}" in msg
    assert f"data.sha1={sha1_of(path)} (or null)" in msg and "data.root" in msg


def test_fra_file_downloads_and_extracts(tmp_path):
    archive = make_zip(tmp_path / "server")
    root = tmp_path / "data"
    path = fra_file(root, FILE, archive.as_uri(), sha1_of(archive), None, download=True)
    assert path == root / FILE
    assert path.read_text(encoding="utf-8") == "Go.\tVa !\n"
    assert not [p for p in root.rglob("*") if p.name.endswith(".part")]
    assert read_pairs(path) == ([Pair(0, "go .", "va !")], 0)


def test_fra_file_extracted_text_is_checked_against_its_own_sha1(tmp_path):
    archive = make_zip(tmp_path)
    text_sha1 = sha1_of(make_zip(tmp_path / "other"))  # any sha1 but the member's
    with pytest.raises(DataError, match=f"data.sha1={text_sha1}"):
        fra_file(tmp_path, FILE, DEAD_URL, sha1_of(archive), text_sha1, download=False)
    member = hashlib.sha1(b"Go.\tVa !\n").hexdigest()
    assert fra_file(tmp_path, FILE, DEAD_URL, sha1_of(archive), member, download=False)


def test_fra_file_zip_already_there_without_download(tmp_path):
    archive = make_zip(tmp_path)
    path = fra_file(tmp_path, FILE, DEAD_URL, sha1_of(archive), None, download=False)
    assert path.read_text(encoding="utf-8") == "Go.\tVa !\n"


def test_fra_file_wrong_zip_sha1_or_member(tmp_path):
    archive = make_zip(tmp_path / "server")
    with pytest.raises(DataError, match="expected"):
        fra_file(tmp_path / "a", FILE, archive.as_uri(), "0" * 40, None, download=True)
    assert not (tmp_path / "a" / FILE).exists()
    other = make_zip(tmp_path / "other", member="fra.txt")
    with pytest.raises(DataError, match="fra-eng/fra.txt"):
        fra_file(tmp_path / "b", FILE, other.as_uri(), sha1_of(other), None, download=True)
    assert not list((tmp_path / "b" / "fra-eng").iterdir())


def test_fra_file_missing_without_download(tmp_path):
    root = tmp_path / "empty"
    with pytest.raises(DataError) as e:
        fra_file(root, FILE, DEAD_URL, None, None, download=False)
    msg = str(e.value)
    assert str(root.resolve()) in msg and DEAD_URL in msg and ENV_VAR in msg and FILE in msg
