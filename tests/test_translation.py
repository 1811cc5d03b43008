"""The translation task end to end on a generated corpus: the preset, the JSON, BLEU, sweeps."""
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from runner.bleu import STUDY_SENTENCES
from runner.result import RESULT_FILE, validate_result
from runner.run import run
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parent.parent
NOUNS = {"home": "maison", "calm": "calme", "tired": "fatigué", "late": "en retard",
         "ready": "prêt", "here": "ici", "sad": "triste", "happy": "heureux"}


@pytest.fixture
def fra_dir(tmp_path) -> Path:
    """A small fra.txt in the file's format: English, tab, French, tab, attribution."""
    rng, lines = random.Random(0), [f"{e[0].upper()}{e[1:]}\t{f}\tCC-BY" for e, f in
                                    STUDY_SENTENCES]
    for _ in range(300):
        noun = rng.choice(list(NOUNS))
        subject, sujet = rng.choice([("I'm", "Je suis"), ("He's", "Il est"), ("We're",
                                     "Nous sommes")])
        lines.append(f"{subject} {noun}.\t{sujet} {NOUNS[noun]}.\tCC-BY")
    lines.append("a line without a tab")
    (tmp_path / "fra-eng").mkdir()
    (tmp_path / "fra-eng" / "fra.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def overrides(root):
    return ["data=tatoeba", "model=gru", f"data.root={root}", "data.download=false",
            "data.num_examples=0", "train.num_epochs=30", "train.eval_every=10", "quiet=true",
            "device=cpu", "optim.lr=0.01"]


def test_a_short_run_learns_and_reports_bleu(fra_dir, tmp_path):
    result = run(compose_config(*overrides(fra_dir)), tmp_path / "out")
    on_disk = json.loads((tmp_path / "out" / RESULT_FILE).read_text())
    validate_result(on_disk)
    assert result["status"] == "completed" and result["task"] == "translation"
    ds = result["dataset"]
    assert ds["malformed_lines"] == 1 and ds["pairs_in_file"] == 304
    assert ds["train_pairs"] + ds["val_pairs"] == 304 and ds["val_pairs"] == 30
    curve = result["curves"]["train_perplexity"]
    assert curve[-1] < 0.3 * curve[0]  # it learns
    assert result["metrics"]["bleu"] == result["translations"]["corpus_bleu"]["score"] > 30
    assert result["translations"]["corpus_bleu"]["n"] == 30
    sentences = result["translations"]["study_sentences"]
    assert [s["source"] for s in sentences] == [e for e, _ in STUDY_SENTENCES]
    assert all(0 <= s["study_bleu"] <= 1 for s in sentences)
    # tokens/sec counts target tokens, <eos> included, padding excluded
    assert result["curves"]["train_tokens"][0] == ds["train_tgt_tokens"]


def test_translation_rejects_a_bidirectional_encoder():
    from runner.config import validate
    from runner.errors import ConfigError

    with pytest.raises(ConfigError, match="model.bidirectional=True is not allowed"):
        validate(compose_config("data=tatoeba", "model.bidirectional=true"))


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


def test_a_transformer_encoder_decoder_learns_and_reports_bleu(fra_dir, tmp_path):
    cfg = compose_config(*overrides(fra_dir), "model=transformer", "train.num_epochs=20",
                         "optim.lr=0.005")
    result = run(cfg, tmp_path / "out")
    validate_result(json.loads((tmp_path / "out" / RESULT_FILE).read_text()))
    assert result["config"]["model"]["_target_"] == "models.TransformerSeq2Seq"
    assert result["status"] == "completed" and result["metrics"]["bleu"] > 30
    curve = result["curves"]["train_perplexity"]
    assert curve[-1] < 0.3 * curve[0]
