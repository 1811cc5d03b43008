"""The translation task end to end on a generated corpus: the preset, the JSON, BLEU, sweeps."""
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from models import Seq2Seq
from runner.errors import ConfigError
from runner.result import RESULT_FILE, validate_result
from runner.run.execute import run
from runner.tasks import build_task
from runner.tasks.bleu import STUDY_SENTENCES
from tests.helpers import compose_config

ROOT = Path(__file__).resolve().parent.parent
NOUNS = {"home": "maison", "calm": "calme", "tired": "fatigué", "late": "en retard",
         "ready": "prêt", "here": "ici", "sad": "triste", "happy": "heureux"}
# Several French translations for some sources, as in the real file.
SUBJECTS = [("I'm", ["Je suis"]), ("He's", ["Il est"]), ("She's", ["Elle est"]),
            ("We're", ["Nous sommes"]), ("They're", ["Ils sont", "Elles sont"]),
            ("You're", ["Tu es", "Vous êtes"])]
TRAIN_LINES, VAL_PAIRS = 300, 14  # file lines 0..299 are training (data.num_examples=299)


def held_out_combo(i, j):
    """Subject i with noun j: a quarter of the combinations, "he's calm" among them, are
    never trained on; every word still is."""
    return (i + j) % 4 == 2


def line(i, j, k=0):
    (subject, sujets), noun = SUBJECTS[i], list(NOUNS)[j]
    return f"{subject} {noun}.\t{sujets[k % len(sujets)]} {NOUNS[noun]}.\tCC-BY"


@pytest.fixture
def fra_dir(tmp_path) -> Path:
    return write_fra(tmp_path)


def write_fra(root: Path) -> Path:
    """A small fra.txt in the file's format (English, tab, French, tab, attribution) under
    `root`/fra-eng: the study's sentences but "he's calm ." (absent from the local file
    too), training lines, then held-out sentences with lines repeating training sources among
    them, and a bad line. Read it with overrides(root)."""
    rng = random.Random(0)
    lines = [f"{e[0].upper()}{e[1:]}\t{f}\tCC-BY" for e, f in STUDY_SENTENCES
             if e != "he's calm ."]
    seen = [(i, j) for i in range(6) for j in range(8) if not held_out_combo(i, j)]
    lines += [line(i, j, k) for k in range(2) for i, j in seen]
    lines += [line(*rng.choice(seen), rng.randrange(2)) for _ in range(TRAIN_LINES - len(lines))]
    lines.append("a line without a tab")
    for n, (i, j) in enumerate((i, j) for i in range(6) for j in range(8) if held_out_combo(i, j)):
        lines += [line(i, j, k) for k in range(len(SUBJECTS[i][1]))]
        if n % 2:
            lines.append(line(*seen[n]))  # a training source again: skipped
    (root / "fra-eng").mkdir()
    (root / "fra-eng" / "fra.txt").write_text("\n".join(lines) + "\n")
    return root


def overrides(root):
    return ["data=tatoeba", "model=gru", f"data.root={root}", "data.download=false",
            f"data.num_examples={TRAIN_LINES - 1}", f"data.val_pairs={VAL_PAIRS}",
            "train.num_epochs=30", "train.eval_every=10", "quiet=true", "device=cpu",
            "optim.lr=0.01", "store=null"]


@pytest.mark.slow  # 30 epochs
def test_a_short_run_learns_and_reports_bleu_on_unseen_sources(fra_dir, tmp_path):
    result = run(compose_config(*overrides(fra_dir)), tmp_path / "out")
    on_disk = json.loads((tmp_path / "out" / RESULT_FILE).read_text())
    validate_result(on_disk)
    assert result["status"] == "completed" and result["task"] == "translation"
    ds = result["dataset"]
    assert ds["malformed_lines"] == 1 and ds["train_pairs"] == TRAIN_LINES
    assert ds["val_pairs"] == VAL_PAIRS and ds["val_sources_seen_in_training"] == 0
    assert ds["val_pairs_skipped_seen_source"] == 5  # repeats met before the 14th held out
    curve = result["curves"]["train_perplexity"]
    assert curve[-1] < 0.3 * curve[0]  # it learns
    # unseen subject-noun combinations: a model this small gets the subject but rarely the
    # noun, so BLEU stays modest; the held-out perplexity shows it learnt the task's form
    assert 0 < result["metrics"]["bleu"] == result["translations"]["corpus_bleu"]["score"] < 100
    assert result["metrics"]["val_perplexity"] < 0.25 * ds["tgt_vocab_size"]
    assert result["translations"]["corpus_bleu"]["n"] == VAL_PAIRS
    sentences = result["translations"]["study_sentences"]
    assert [s["source"] for s in sentences] == [e for e, _ in STUDY_SENTENCES]
    assert [s["in_training"] for s in sentences] == [True, True, False, True]
    assert [s["reference"] for s in sentences] == [f for _, f in STUDY_SENTENCES]

    def by_hand(pred: str, label: str) -> float:
        """d2l's formula, k = 2: exp(min(0, 1 - len_label / len_pred)) * prod_n p_n^(1/2^n),
        p_n the n-gram precision with each label n-gram matched at most as often as it occurs
        (a multiset intersection); an empty or too short prediction scores 0."""
        from collections import Counter

        p, lab = pred.split(" ") if pred else [], label.split(" ")
        if len(p) < 2:
            return 0.0
        score = math.exp(min(0, 1 - len(lab) / len(p)))
        for n in (1, 2):
            grams = [Counter(tuple(t[i:i + n]) for i in range(len(t) - n + 1)) for t in (p, lab)]
            score *= (sum((grams[0] & grams[1]).values()) / (len(p) - n + 1)) ** (0.5 ** n)
        return score

    for s in sentences:
        assert s["study_bleu"] == pytest.approx(by_hand(s["translation"], s["reference"]),
                                                abs=1e-12), s
    # tokens/sec counts target tokens, <eos> included, padding excluded
    assert result["curves"]["train_tokens"][0] == ds["train_tgt_tokens"]


def test_translation_rejects_a_bidirectional_encoder():
    from runner.errors import ConfigError
    from runner.run.validate import validate

    with pytest.raises(ConfigError, match="model.bidirectional=True is not allowed"):
        validate(compose_config("data=tatoeba", "model.bidirectional=true"))


@pytest.mark.slow  # the CLI in a subprocess
def test_a_tatoeba_sweep_reports_bleu(fra_dir, tmp_path):
    out = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "-m", "runner", "-m", *overrides(fra_dir),
                           "train.num_epochs=3", "model.num_hiddens=16,32",
                           f"hydra.sweep.dir={out}"], cwd=ROOT, text=True, capture_output=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    summary = (out / "summary.md").read_text()
    assert "| BLEU |" in summary
    assert (out / "plot_bleu.png").exists()


@pytest.mark.slow  # 20 epochs
def test_a_transformer_encoder_decoder_learns_and_reports_bleu(fra_dir, tmp_path):
    cfg = compose_config(*overrides(fra_dir), "model=transformer", "train.num_epochs=20",
                         "optim.lr=0.005")
    result = run(cfg, tmp_path / "out")
    validate_result(json.loads((tmp_path / "out" / RESULT_FILE).read_text()))
    assert result["model_class"] == "models.TransformerSeq2Seq"
    assert result["status"] == "completed" and result["metrics"]["bleu"] > 0
    assert result["metrics"]["val_perplexity"] < 0.25 * result["dataset"]["tgt_vocab_size"]
    curve = result["curves"]["train_perplexity"]
    assert curve[-1] < 0.3 * curve[0]


# ---------------------------------------------------------------- held-out perplexity

WORDS = {"i": "je", "see": "vois", "the": "le", "big": "grand", "red": "rouge", "cat": "chat",
         "dog": "chien", "now": "maintenant"}


@pytest.fixture
def varied_dir(tmp_path) -> Path:
    """Pairs of 1 to 7 words: with data.num_steps=4, many held-out sources are shorter (read
    padded to 4) and many sources and targets longer (never cut when held out)."""
    rng, lines = random.Random(1), []
    for _ in range(160):
        words = [rng.choice(list(WORDS)) for _ in range(rng.randint(1, 7))]
        lines.append(f"{' '.join(words)}.\t{' '.join(WORDS[w] for w in words)} , oui.")
    (tmp_path / "fra-eng").mkdir()
    (tmp_path / "fra-eng" / "fra.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def teacher_forced_nll(model, task, src, tgt) -> tuple[float, int]:
    """One pair alone: the whole source (padded to num_steps when shorter, as training reads
    it), then the target fed one token at a time after <bos>; the summed -log p of every
    target token and <eos>, and their count."""
    sv, tv = task.data.src_vocab, task.data.tgt_vocab
    ids = sv.indices(src) + [sv["<eos>"]]
    x = torch.tensor(ids + [sv["<pad>"]] * (task.cfg.data.num_steps - len(ids)))[:, None]
    valid = torch.tensor([len(ids)])
    targets, prefix, nll = tv.indices(tgt) + [tv["<eos>"]], [tv["<bos>"]], 0.0
    if isinstance(model, Seq2Seq):
        enc_out, state = model.encode(x)
        memory = model.memory(enc_out, state, valid)
    else:
        memory, pad = model.encode(x, valid)
    for token in targets:
        if isinstance(model, Seq2Seq):
            logits, state, _ = model.decode(torch.tensor([[prefix[-1]]]), state, memory)
        else:
            logits = model.decode(torch.tensor(prefix)[:, None], memory, pad)[-1:]
        nll -= float(torch.log_softmax(logits[-1, 0].double(), -1)[token])
        prefix.append(token)
    return nll, len(targets)


@pytest.mark.parametrize("model", [["model=gru"], ["model=gru", "model.attention=true"],
                                   ["model=lstm"], ["model=transformer"]])
def test_held_out_perplexity_scores_every_target_token(varied_dir, model, monkeypatch):
    cfg = compose_config(*overrides(varied_dir), *model, "data.num_examples=99",
                         "data.val_pairs=50", "data.num_steps=4", "data.min_freq=0")
    task = build_task(cfg)
    whole = [t for _, t in task.data.val_sentences]
    assert max(map(len, whole)) + 1 > 4 and min(len(s) for s, _ in task.data.val_sentences) < 3
    torch.manual_seed(0)
    net = task.new_model(torch.device("cpu"))
    instantiate(cfg.init)(net)
    net.eval()
    with torch.no_grad():
        ppl = task.evaluate(net)
        pairs = [teacher_forced_nll(net, task, s, t) for s, t in task.data.val_sentences]
    nll, count = sum(n for n, _ in pairs), sum(c for _, c in pairs)
    assert count == sum(len(t) + 1 for t in whole) == task.val_tokens_scored
    assert task.provenance["val_tgt_tokens"] == count
    assert ppl == pytest.approx(math.exp(nll / count), rel=1e-5)
    # corpus BLEU's references are the whole held-out targets, not cut to num_steps
    seen = {}
    monkeypatch.setattr("runner.tasks.translation.corpus_bleu",
                        lambda hyps, refs: seen.setdefault("refs", refs) and {"score": 0.0})
    task.outputs(net, torch.device("cpu"))
    assert seen["refs"] == [" ".join(t) for t in whole]


def test_a_transformer_too_short_for_the_held_out_sentences_is_refused(varied_dir):
    cfg = compose_config(*overrides(varied_dir), "model=transformer", "model.max_len=5",
                         "data.num_examples=99", "data.val_pairs=50", "data.num_steps=4")
    with pytest.raises(ConfigError, match=r"model.max_len=5 is too short .* at least 1\d"):
        build_task(cfg)


def test_a_min_freq_that_leaves_every_word_unk_is_refused(fra_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"data.min_freq=100000 leaves no source word in the "
                                          r"vocabulary, only <unk> and the reserved tokens"):
        run(compose_config(*overrides(fra_dir), "data.min_freq=100000"), tmp_path)
    assert not (tmp_path / RESULT_FILE).exists()
