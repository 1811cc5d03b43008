"""The report's tables (summary.md): the study's layouts, its numbers beside ours, and the
significance marks, read back from the files written."""
import pandas as pd
import pytest

from runner.report import write_report
from tests.helpers import tables_in
from tests.report_results import make_result, one_factor_runs, write_runs


def markdown_tables_of(path):
    return tables_in(path.read_text())


def test_markdown_one_factor_has_the_studys_shape(tmp_path):
    write_report(write_runs(tmp_path, one_factor_runs()))
    [table] = markdown_tables_of(tmp_path / "summary.md")
    assert table[0] == ["metric", "32", "64", "128"]  # numeric order, not text order
    # nn.RNN over num_hiddens is the study's Table 12, but at 500 epochs and 20 runs a point:
    # its numbers are left out (tests/test_report_alike.py has them beside ours)
    assert [row[0] for row in table[1:]] == [
        "training perplexity", "held-out perplexity", "tokens/sec", "parameters"]
    assert table[4][1:] == ["2,876"] * 3  # one count per point, no interval
    # 32 is the baseline (no 512 in the sweep: the first value); 64 has one run, no test
    assert table[1][1:] == ["4.00 ± 4.97 †", "10.00", "8.50 ± 6.35 *"]
    assert table[3][1:3] == ["2,000 ± 2,484 †", "4,000"]
    text = (tmp_path / "summary.md").read_text()
    assert "32: 3 (+1 failed, 1 diverged)" in text
    assert ("Left out: the study's Table 12, whose settings differ from these runs' (the study: "
            "500 epochs, 20 seeds; here: 5 epochs, 1 to 3 seeds)") in text


def test_markdown_model_by_factor_has_one_table_per_metric(tmp_path):
    runs = [make_result(ppl=float(h) / 8, **{"model.cell": c, "model.num_hiddens": h})
            for c in ["rnn", "gru"] for h in [64, 32]]
    write_report(write_runs(tmp_path, runs))
    tables = markdown_tables_of(tmp_path / "summary.md")
    assert len(tables) == 5  # four metrics (parameters included) and the run counts
    for table in tables:
        assert table[0] == ["model", "32", "64"]
        assert [row[0] for row in table[1:]] == ["gru", "rnn"]  # 5 epochs: no study rows
    assert tables[0][1] == ["gru", "4.00", "8.00"]
    text = (tmp_path / "summary.md").read_text()
    assert "### training perplexity by model.num_hiddens" in text
    assert ("Left out: the study's Tables 16-19, whose settings differ from these runs' (the "
            "study: 500 epochs, 20 seeds; here: 5 epochs, 1 seed)") in text


def test_markdown_other_sweeps_get_a_row_per_point(tmp_path):
    runs = [make_result(**{"model.num_hiddens": h, "optim.lr": lr, "data.batch_size": b})
            for h, lr, b in [(32, 1.0, 16), (64, 0.5, 16), (32, 1.0, 32)]]
    write_report(write_runs(tmp_path / "three", runs))
    [table] = markdown_tables_of(tmp_path / "three" / "summary.md")
    assert table[0][:4] == ["model.num_hiddens", "data.batch_size", "optim.lr", "runs"]
    assert len(table) == 4
    write_report(write_runs(tmp_path / "none", [make_result(seed=s) for s in (0, 1)]))
    [table] = markdown_tables_of(tmp_path / "none" / "summary.md")
    assert table[0][:2] == ["point", "runs"] and table[1][:2] == ["all runs", "2"]


def test_points_are_compared_with_the_studys_baseline_in_csv_and_tables(tmp_path):
    # 512 (the study's baseline) [1, 2, 3]; 256 [4, 5, 6]: +3, Welch [0.733042, 5.266958],
    # p 0.021312 (tests/test_stats.py has the arithmetic); 1024 [4, 8]: +4, p 0.2765.
    # Holm over the 2: 0.021312 * 2 = 0.042623 (< 0.05: marked); max(0.2765, 0.0426) = 0.2765.
    # tokens/sec is 1000 in every run: no spread, no test, no mark.
    points = {512: [1, 2, 3], 256: [4, 5, 6], 1024: [4, 8]}
    runs = [make_result(ppl=float(p), val=p + 1.0, seed=i, **{"model.num_hiddens": h})
            for h, ppls in points.items() for i, p in enumerate(ppls)]
    write_report(write_runs(tmp_path, runs))
    s = pd.read_csv(tmp_path / "summary.csv").set_index("model.num_hiddens")
    assert s["baseline"].to_dict() == {256: False, 512: True, 1024: False}
    assert s.loc[512, ["train_perplexity_diff", "train_perplexity_p"]].isna().all()
    row = s.loc[256]
    assert row["train_perplexity_diff"] == pytest.approx(3.0)
    assert row["train_perplexity_diff_lo"] == pytest.approx(0.733042, abs=1e-6)
    assert row["train_perplexity_diff_hi"] == pytest.approx(5.266958, abs=1e-6)
    assert row["train_perplexity_p"] == pytest.approx(0.021312, abs=1e-6)
    assert row["train_perplexity_p_holm"] == pytest.approx(0.042623, abs=1e-6)
    assert row["train_perplexity_significant"] == True  # noqa: E712 (read back from CSV)
    assert s.loc[1024, "train_perplexity_p_holm"] == pytest.approx(0.2765, abs=1e-4)
    assert s.loc[1024, "train_perplexity_significant"] == False  # noqa: E712
    assert s["tokens_per_sec_p"].isna().all() and s["tokens_per_sec_significant"].isna().all()
    assert not any(c.startswith("num_params_") and c.endswith("_p") for c in s.columns)
    text = (tmp_path / "summary.md").read_text()
    [table] = tables_in(text)
    assert table[0] == ["metric", "256", "512", "1024"]
    assert table[1][1:] == ["5.00 ± 2.48 *", "2.00 ± 2.48 †", "6.00 ± 25.41"]
    assert table[3][1:] == ["1,000 ± 0"] * 3  # no test: no sign, not even the baseline's
    assert text.count("`*`: differs from the baseline `†`") == 1
    assert ("(model.num_hiddens 512, the study's Table 8 setting): Welch's t (95%), p < 0.05 "
            "after Holm's correction over the table's 2 comparisons per metric") in text
    page = (tmp_path / "report.html").read_text()
    assert "5.00 ± 2.48 *" in page and "2.00 ± 2.48 †" in page and "Holm" in page


def test_model_tables_say_once_each_that_one_run_per_point_gives_no_significance(tmp_path):
    runs = [make_result(ppl=float(h) / 8, **{"model.cell": c, "model.num_hiddens": h})
            for c in ["rnn", "gru"] for h in [64, 32]]
    write_report(write_runs(tmp_path, runs))
    text = (tmp_path / "summary.md").read_text()
    # one line under each compared metric's table (perplexities, tokens/sec), none under the
    # parameters' or the run counts'
    assert text.count("No significance can be given") == 3
    assert "both there and at its baseline (model.num_hiddens 32)" in text
    assert "†" not in text and " *" not in text
