"""Only like with like: the study's figures beside ours at its settings, and left out, with
what differs named, anywhere else (runner/report/alike.py)."""

from runner.report import write_report
from runner.report.alike import like_for_like
from runner.report.reference import reference_for
from runner.report.runs import tidy
from runner.report.tables import summarize
from tests.helpers import tables_in
from tests.report_results import make_result, write_runs

AT_THE_STUDYS = {"model.num_hiddens": 512, "train.num_epochs": 500}  # the rest is CONFIG's


def test_a_small_short_sweep_leaves_the_study_out_and_says_what_differs(tmp_path):
    # an lr sweep (the study's Table 15) at 32 units, 4 epochs and 3 seeds a point
    runs = [make_result(ppl=17.71 + s, seed=s, **{"optim.lr": lr, "train.num_epochs": 4})
            for lr in [0.25, 1.0] for s in range(3)]
    out = write_report(write_runs(tmp_path, runs))
    line = ("Left out: the study's Table 15, whose settings differ from these runs' (the study: "
            "512 units, 500 epochs, 20 seeds; here: 32 units, 4 epochs, 3 seeds); its figures "
            "stand beside ours only at the settings it held.")
    assert out["study_left_out"] == [line]
    text = (tmp_path / "summary.md").read_text()
    [table] = tables_in(text)
    assert [row[0] for row in table[1:]] == ["training perplexity", "held-out perplexity",
                                             "tokens/sec", "parameters"]
    assert "1.19" not in text and "(the study)" not in text  # Table 15's lr 0.25 perplexity
    assert text.count(line) == 1 and "The study: Table" not in text
    assert line in (tmp_path / "report.md").read_text()
    assert line in (tmp_path / "report.html").read_text()


def test_at_the_studys_settings_its_figures_sit_beside_ours(tmp_path):
    # Table 12: nn.RNN over num_hiddens, 500 epochs, 20 runs a point, the rest Table 8's
    runs = [make_result(ppl=1.0 + h / 1024, seed=s, **{**AT_THE_STUDYS, "model.num_hiddens": h})
            for h in [256, 512] for s in range(20)]
    out = write_report(write_runs(tmp_path, runs))
    assert out["study_left_out"] == []
    text = (tmp_path / "summary.md").read_text()
    [table] = tables_in(text)
    assert table[0] == ["metric", "256", "512"]
    assert table[2] == ["training perplexity (the study)", "1.28", "1.03"]
    assert table[5] == ["tokens/sec (the study)", "84,529", "28,992"]
    assert "Left out" not in text and "\nThe study: Table 12 (nn.RNN, 500 epochs" in text


def study_rows(runs, by):
    df = tidy(runs)
    summary = summarize(df, by)
    return like_for_like(reference_for(summary, by, sorted(df["model.cell"].unique())), df,
                         summary)


def test_a_tables_own_settings_count_and_only_the_differing_ones_are_named():
    # Table 20: deep LSTMs of 32 units (not the baseline's 512) over num_layers
    deep = {"model.cell": "lstm", "train.num_epochs": 500, "model.num_hiddens": 32}
    runs = [make_result(seed=s, **{**deep, "model.num_layers": n}) for n in [1, 2]
            for s in range(20)]
    kept, lines = study_rows(runs, ["model.num_layers"])
    assert set(kept["table"]) == {"20"} and len(kept) == 4 and lines == []
    # the same at 512 units, Adam, batch 64: each named, the study's value first
    runs = [make_result(seed=s, **{**deep, "model.num_layers": n, "model.num_hiddens": 512,
                                   "data.batch_size": 64, "optim._target_": "torch.optim.Adam"})
            for n in [1, 2] for s in range(20)]
    kept, [line] = study_rows(runs, ["model.num_layers"])
    assert kept.empty
    assert ("(the study: 32 units, batch 32, SGD; here: 512 units, batch 64, Adam)") in line


def test_models_side_by_side_compare_each_table_on_its_own_models():
    # rnn and gru over sampling: Tables 9-10 publish only nn.RNN (and the scratch RNN), so
    # the gru points' seeds do not count against them
    runs = [make_result(seed=s, **{**AT_THE_STUDYS, "model.cell": "rnn", "data.sampling": m})
            for m in ["sequential", "random"] for s in range(20)]
    runs += [make_result(**{**AT_THE_STUDYS, "model.cell": "gru", "data.sampling": "random"})]
    kept, lines = study_rows(runs, ["model.cell", "data.sampling"])
    assert lines == [] and set(kept["table"]) == {"9-10"}
    assert kept["model.cell"].tolist() == ["rnn", "rnn"]
