"""BLEU two ways: the study's sentence score (d2l 0.17.6's `bleu`, on its four test sentences)
and the standard corpus score (sacrebleu), for translations already tokenized by
data's preprocess_nmt (lower case, punctuation split off by spaces)."""
import collections
import math

from sacrebleu.metrics import BLEU

# d2l's four English -> French test sentences (engs, fras in its seq2seq section). They are
# not held out: with the study's preset on the local fra.txt, three are training sentences (their
# study BLEU measures recall) and "he's calm ." is in no line of the file. Each result says
# which were trained on (`in_training`).
STUDY_SENTENCES = [("go .", "va !"), ("i lost .", "j'ai perdu ."),
                   ("he's calm .", "il est calme ."), ("i'm home .", "je suis chez moi .")]


def study_bleu(pred: str, label: str, k: int = 2) -> float:
    """d2l 0.17.6's bleu(pred_seq, label_seq, k): brevity penalty exp(min(0, 1 - len_label /
    len_pred)) times, for n = 1..k, the clipped n-gram precision p_n raised to 1 / 2^n.

    Guard (d2l has none): an empty prediction scores 0.0 (d2l would split it into one empty
    token, then divide by zero at n = 2), and an n-gram order the prediction is too short to
    have (len_pred < n, where d2l divides by zero or a negative count) counts as 0 matches,
    so such a prediction scores 0.0 too. Everything else is d2l's arithmetic exactly.
    """
    if not pred:
        return 0.0
    pred_tokens, label_tokens = pred.split(" "), label.split(" ")
    len_pred, len_label = len(pred_tokens), len(label_tokens)
    score = math.exp(min(0, 1 - len_label / len_pred))
    for n in range(1, k + 1):
        if len_pred < n:
            return 0.0  # no n-grams: 0 matches, a zero precision, a zero product
        num_matches, label_subs = 0, collections.defaultdict(int)
        for i in range(len_label - n + 1):
            label_subs[" ".join(label_tokens[i:i + n])] += 1
        for i in range(len_pred - n + 1):
            gram = " ".join(pred_tokens[i:i + n])
            if label_subs[gram] > 0:  # each label n-gram matches at most as often as it occurs
                num_matches += 1
                label_subs[gram] -= 1
        score *= math.pow(num_matches / (len_pred - n + 1), math.pow(0.5, n))
    return score


def corpus_bleu(hypotheses: list[str], references: list[str]) -> dict:
    """sacrebleu's corpus BLEU (0-100) with one reference per sentence. tokenize="none": the
    text is already tokenized, and sacrebleu's 13a would re-split its punctuation; smoothing
    is sacrebleu's default ("exp")."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    bleu = BLEU(tokenize="none")
    result = bleu.corpus_score(hypotheses, [references])
    # sacrebleu's float arithmetic can land a perfect score at 100.00000000000004
    return {"score": round(float(result.score), 6), "signature": str(bleu.get_signature()),
            "n": len(hypotheses)}
