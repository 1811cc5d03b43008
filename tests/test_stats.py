"""runner/report/stats.py: intervals, Welch's t against the baseline and Holm's correction, checked
against arithmetic done by hand (in the comments)."""
import math

import pandas as pd
import pytest
from scipy.stats import t

from runner.report.stats import ci95, compare, holm, significance_note, welch
from runner.report.tables import summarize

NAMES = {"train_perplexity": "training perplexity"}


def test_ci95_is_students_t_half_width():
    # [1, 2, 3]: sd 1, n 3, t(0.975, df 2) = 4.302653 (printed tables) -> 4.302653 / sqrt(3)
    assert ci95([1.0, 2.0, 3.0]) == pytest.approx(4.302653 / math.sqrt(3), abs=1e-6)
    # [1, 3]: sd sqrt(2), n 2, t(0.975, df 1) = 12.706205 -> 12.706205 * sqrt(2) / sqrt(2)
    assert ci95([1.0, 3.0]) == pytest.approx(12.706205, abs=1e-6)
    # df 100: t = 1.983972 (printed tables); 101 values 0, 1, 0, 1, ...
    values = [i % 2 for i in range(101)]
    sd = pd.Series(values).std()
    assert ci95(values) == pytest.approx(1.983972 * sd / math.sqrt(101), abs=1e-6)
    assert math.isnan(ci95([4.0])) and math.isnan(ci95([]))


def test_welch_difference_interval_and_p_by_hand():
    # baseline [1, 2, 3] (mean 2, var 1), point [4, 5, 6] (mean 5, var 1): diff 3,
    # se = sqrt(1/3 + 1/3) = 0.816497, Welch df = (2/3)^2 / (2 * (1/3)^2 / 2) = 4,
    # t = 3 / 0.816497 = 3.674235, t(0.975, 4) = 2.776445 -> 3 +- 2.776445 * 0.816497
    # = [0.733042, 5.266958]; two-sided p = 2 * P(T4 > 3.674235) = 0.021312.
    w = welch([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert w["diff"] == pytest.approx(3.0)
    assert w["diff_lo"] == pytest.approx(0.733042, abs=1e-6)
    assert w["diff_hi"] == pytest.approx(5.266958, abs=1e-6)
    assert w["p"] == pytest.approx(0.021312, abs=1e-6)


def test_welch_is_not_the_pooled_variance_test():
    # baseline [1, 2, 3] (var 1, n 3), point [4, 8] (mean 6, var 8, n 2): diff 4.
    # Welch: se^2 = 1/3 + 8/2 = 13/3; df = (13/3)^2 / ((1/3)^2 / 2 + 4^2 / 1) = 338/289.
    # Pooled would be: s^2 = (2 * 1 + 1 * 8) / 3 = 10/3, se^2 = 10/3 * (1/3 + 1/2) = 25/9, df 3:
    # half-width 3.182446 * 5/3 = 5.30 and p = 0.0958, against Welch's 18.9 and 0.2765.
    se, df = math.sqrt(13 / 3), 338 / 289
    w = welch([1.0, 2.0, 3.0], [4.0, 8.0])
    assert w["diff"] == pytest.approx(4.0)
    half = t.ppf(0.975, df) * se  # the quantile at a fractional df: no printed table has it
    assert (w["diff_lo"], w["diff_hi"]) == pytest.approx((4 - half, 4 + half))
    assert w["p"] == pytest.approx(2 * t.sf(4 / se, df))
    assert w["p"] == pytest.approx(0.2765, abs=1e-4)


def test_welch_without_spread_or_repeats_gives_no_test():
    for base, other in [([2.0, 2.0, 2.0], [2.0, 2.0]),  # scipy: 0/0, NaN
                        ([2.0, 2.0, 2.0], [3.0, 3.0]),  # scipy: t = inf, p = 0
                        ([1.0, 2.0, 3.0], [4.0]), ([], [1.0, 2.0])]:
        w = welch(base, other)
        assert all(math.isnan(w[k]) for k in ("diff_lo", "diff_hi", "p")), (base, other)
    assert welch([2.0, 2.0], [3.0, 3.0])["diff"] == 1.0  # the difference itself is known


def test_holm_by_hand():
    # sorted: 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04 -> at least the previous, 0.06.
    # In the input's order: 0.01 -> 0.03, 0.04 -> 0.06, 0.03 -> 0.06.
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # an untested comparison (NaN) is no member of the family: two members, not three
    adjusted = holm([0.01, math.nan, 0.03])
    assert adjusted[[0, 2]] == pytest.approx([0.02, 0.03]) and math.isnan(adjusted[1])
    assert len(holm([])) == 0


def runs(points: dict, key="model.num_hiddens") -> pd.DataFrame:
    """{value: [train perplexities, one run each]} -> a runs table."""
    return pd.DataFrame([{key: v, "status": "completed", "train_perplexity": p}
                         for v, ppls in points.items() for p in ppls])


def compared(df, by):
    return compare(df, summarize(df, by), by).set_index(by)


def test_the_family_is_the_table_and_holm_corrects_it():
    # Three points each [4, 5, 6] against the baseline 512 [1, 2, 3]: each p = 0.021312 < 0.05,
    # but Holm over the 3: 3 * 0.021312 = 0.063935 for all three -> none significant.
    df = runs({512: [1, 2, 3], 32: [4, 5, 6], 64: [4, 5, 6], 1024: [4, 5, 6]})
    s = compared(df, ["model.num_hiddens"])
    assert s["baseline"].to_dict() == {32: False, 64: False, 512: True, 1024: False}
    assert pd.isna(s.loc[512, "train_perplexity_p"])
    for h in (32, 64, 1024):
        assert s.loc[h, "train_perplexity_diff"] == pytest.approx(3.0)
        assert s.loc[h, "train_perplexity_p"] == pytest.approx(0.021312, abs=1e-6)
        assert s.loc[h, "train_perplexity_p_holm"] == pytest.approx(3 * 0.021312, abs=1e-5)
        assert s.loc[h, "train_perplexity_significant"] is False
    # the same difference alone in its table: Holm over 1 changes nothing -> significant
    s = compared(runs({512: [1, 2, 3], 32: [4, 5, 6]}), ["model.num_hiddens"])
    assert s.loc[32, "train_perplexity_p_holm"] == pytest.approx(0.021312, abs=1e-6)
    assert s.loc[32, "train_perplexity_significant"] is True


def test_baseline_is_the_studys_value_when_swept_else_the_first_in_numeric_order():
    s = compared(runs({256: [4, 5, 6], 512: [1, 2, 3], 1024: [1, 2, 3]}), ["model.num_hiddens"])
    assert list(s.index[s["baseline"]]) == [512]  # Table 8, though 256 comes first
    s = compared(runs({32: [4, 5, 6], 128: [1, 2, 3], 64: [1, 2, 3]}), ["model.num_hiddens"])
    assert list(s.index[s["baseline"]]) == [32]  # no 512: 32, not "128" (text order)
    assert s.loc[128, "train_perplexity_diff"] == pytest.approx(-3.0)
    s = compared(runs({"random": [1, 2], "sequential": [3, 4]}, "data.sampling"),
                 ["data.sampling"])
    assert list(s.index[s["baseline"]]) == ["sequential"]


def test_model_by_factor_compares_each_model_with_its_own_baseline():
    # rnn: 35 [1, 2, 3] vs 70 [4, 5, 6]: +3, p 0.021312. gru: 35 [10, 11, 12] vs 70 [4, 5, 6]:
    # -6, se 0.816497, t = -7.348469, df 4, p = 0.001826. Holm over the 2: 0.001826 * 2 =
    # 0.003652; 0.021312 * 1 = 0.021312 -> both significant.
    rows = [{"model.cell": c, "data.num_steps": n, "status": "completed", "train_perplexity": p}
            for c, n, ppls in [("rnn", 35, [1, 2, 3]), ("rnn", 70, [4, 5, 6]),
                               ("gru", 35, [10, 11, 12]), ("gru", 70, [4, 5, 6])]
            for p in ppls]
    s = compared(pd.DataFrame(rows), ["model.cell", "data.num_steps"])
    assert list(s.index[s["baseline"]]) == [("gru", 35), ("rnn", 35)]
    assert s.loc[("rnn", 70), "train_perplexity_diff"] == pytest.approx(3.0)
    assert s.loc[("gru", 70), "train_perplexity_diff"] == pytest.approx(-6.0)
    assert s.loc[("gru", 70), "train_perplexity_p"] == pytest.approx(0.001826, abs=1e-6)
    assert s.loc[("gru", 70), "train_perplexity_p_holm"] == pytest.approx(0.003652, abs=1e-6)
    assert s.loc[("rnn", 70), "train_perplexity_p_holm"] == pytest.approx(0.021312, abs=1e-6)


def test_other_layouts_compare_with_the_point_nearest_the_baseline_within_a_task():
    rows = [{"task": task, "model.num_hiddens": h, "optim.lr": lr, "status": s,
             "train_perplexity": p}
            for task in ("language_model", "translation")
            for h, lr, s, ppls in [(512, 1.0, "completed", [1, 2, 3]),
                                   (512, 0.1, "completed", [4, 5, 6]),
                                   (32, 1.0, "failed", [None])]
            for p in ppls]
    by = ["task", "model.num_hiddens", "optim.lr"]
    s = compared(pd.DataFrame(rows), by)
    assert list(s.index[s["baseline"]]) == [("language_model", 512, 1.0),
                                            ("translation", 512, 1.0)]
    # each task against its own baseline: +3 twice (never 0 + 3 across tasks); the failed
    # point has no completed run, so no difference at all
    assert s["train_perplexity_diff"].dropna().tolist() == pytest.approx([3.0, 3.0])
    assert s["train_perplexity_p"].notna().sum() == 2


def test_the_note_says_when_no_significance_can_be_given():
    by = ["model.num_hiddens"]
    df = runs({512: [1], 32: [4], 64: [5, 6]})
    s = compare(df, summarize(df, by), by)
    assert s["train_perplexity_p"].isna().all() and not s["train_perplexity_significant"].any()
    note = significance_note(s, by, ["train_perplexity"], NAMES)
    assert note.startswith("No significance can be given") and "model.num_hiddens 512" in note
    df = runs({512: [1, 2, 3], 32: [4, 5, 6], 64: [2, 2.5], 128: [7]})
    note = significance_note(compare(df, summarize(df, by), by), by, ["train_perplexity"], NAMES)
    assert "(model.num_hiddens 512, the study's Table 8 setting)" in note
    assert "Welch" in note and "Holm" in note and "over the table's 2 comparisons " in note
    assert note.endswith(" 1 point(s) untested: fewer than 2 completed runs, or no spread, "
                         "there or at the baseline.")  # 128: one run
    assert significance_note(summarize(df, by), by, ["train_perplexity"], NAMES) == ""
    assert significance_note(compare(df, summarize(df, by), by), by, ["num_params"], NAMES) == ""
