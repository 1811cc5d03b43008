"""BLEU: the study's sentence score (d2l 0.17.6's bleu) and sacrebleu's corpus score."""
import math

import pytest
import sacrebleu

from runner.tasks.bleu import STUDY_SENTENCES, corpus_bleu, study_bleu


@pytest.mark.parametrize("pred, label, expected", [
    # The d2l book's printed results (seq2seq section, k=2): exact outputs and its two misses.
    ("va !", "va !", 1.0),
    ("j'ai perdu .", "j'ai perdu .", 1.0),
    # Same length (no penalty); unigrams il, est, . match: p1 = 3/4; bigrams: only "il est"
    # of "il est", "est riche", "riche .": p2 = 1/3. (3/4)^(1/2) * (1/3)^(1/4) = 0.8660 *
    # 0.7598 = 0.658, as the book prints.
    ("il est riche .", "il est calme .", math.sqrt(3 / 4) * (1 / 3) ** 0.25),
    # p1 = 2/5 (je, suis), p2 = 1/4 ("je suis"): sqrt(0.4) * 0.25^0.25 = 0.447, as printed.
    ("je suis en retard ?", "je suis chez moi .", math.sqrt(2 / 5) * (1 / 4) ** 0.25),
])
def test_study_bleu_on_the_books_examples(pred, label, expected):
    assert study_bleu(pred, label) == pytest.approx(expected, abs=1e-12)
    assert round(study_bleu(pred, label), 3) in (1.0, 0.658, 0.447)


def test_identical_sentences_score_one():
    for _, fra in STUDY_SENTENCES:
        assert study_bleu(fra, fra) == 1.0
        assert study_bleu(fra, fra, k=4) == 1.0 or len(fra.split()) < 4


def test_brevity_penalty_for_a_short_prediction():
    # len_pred 3 < len_label 4: penalty exp(1 - 4/3); p1 = 3/3, p2 = 1/2 ("il est" of
    # "il est", "est ."): exp(-1/3) * 1 * (1/2)^(1/4) = 0.7165 * 0.8409 = 0.6025.
    got = study_bleu("il est .", "il est calme .")
    assert got == pytest.approx(math.exp(-1 / 3) * 0.5 ** 0.25, abs=1e-12)
    # A longer prediction has no penalty: min(0, 1 - 4/5) = 0.
    assert study_bleu("il est calme . .", "il est calme .", k=1) == pytest.approx(
        math.sqrt(4 / 5))


def test_counts_are_clipped():
    # Four "." against one in the label: one match, p1 = 1/4, score (1/4)^(1/2).
    assert study_bleu(". . . .", "il est calme .", k=1) == pytest.approx(0.5)


def test_guards_empty_and_too_short_predictions():
    assert study_bleu("", "il est calme .") == 0.0
    # One token has no bigram: the missing order counts as 0 matches (d2l divides by zero).
    assert study_bleu("va", "va !") == 0.0
    assert study_bleu("va", "va !", k=1) == pytest.approx(math.exp(1 - 2))


HYPS = ["il est calme .", "je suis en retard ?", "va !", "j'ai perdu le livre ."]
REFS = ["il est riche .", "je suis chez moi .", "va !", "j'ai perdu ."]


def test_corpus_bleu_matches_sacrebleu_without_tokenization():
    got = corpus_bleu(HYPS, REFS)
    assert got["score"] == pytest.approx(
        sacrebleu.corpus_bleu(HYPS, [REFS], tokenize="none").score)
    assert 0 < got["score"] < 100 and got["n"] == 4
    assert "tok:none" in got["signature"] and "smooth:exp" in got["signature"]
    # No re-tokenization: "calme." stays one token (13a would split off the "." and match).
    glued = corpus_bleu(["il est calme."], ["il est calme ."])["score"]
    assert glued < 100 and sacrebleu.corpus_bleu(["il est calme."], [["il est calme ."]]).score \
        == pytest.approx(100)


def test_corpus_bleu_of_identical_corpora_is_100():
    assert corpus_bleu(REFS, REFS)["score"] == pytest.approx(100.0)


def test_corpus_bleu_needs_one_reference_per_hypothesis():
    with pytest.raises(ValueError):
        corpus_bleu(HYPS, REFS[:2])


def test_a_perfect_corpus_scores_exactly_100():
    """Float noise in sacrebleu must not push a perfect score past the schema's 100."""
    sentences = ["il est calme .", "je suis chez moi .", "nous sommes prêts ."] * 7
    assert corpus_bleu(sentences, sentences)["score"] == 100.0
