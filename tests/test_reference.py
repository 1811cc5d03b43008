"""The study's published numbers: the CSV, matching them to a sweep, and the report's rows."""
import pandas as pd
import pytest

from runner.report.reference import (
    load_reference,
    reference_for,
    reference_series,
    value_key,
)
from runner.report.tables import markdown_tables, summarize
from tests.helpers import tables_in

SIZES = [32, 64, 128, 256, 512, 1024]


def summary_of(by: list[str], points: list[tuple]) -> pd.DataFrame:
    """A sweep's summary, one completed run per point: (*values of `by`, perplexity, tok/s)."""
    rows = [dict(zip(by, p[:-2]), status="completed", train_perplexity=p[-2],
                 val_perplexity=p[-2] + 1, tokens_per_sec=p[-1]) for p in points]
    return summarize(pd.DataFrame(rows), by)


def published(table, cell, metric, value):
    ref = load_reference()
    hit = ref[(ref["table"] == table) & (ref["model.cell"] == cell) & (ref["metric"] == metric)
              & (ref["value"] == value)]
    assert len(hit) == 1, (table, cell, metric, value)
    return hit["reference"].item()


def test_csv_has_every_published_number_once():
    ref = load_reference()
    assert list(ref.columns) == ["table", "factor", "value", "model.cell", "metric",
                                 "reference", "setting"]
    assert ref["table"].value_counts().to_dict() == {"16-19": 36, "12": 12, "13": 12, "14": 10,
                                                     "15": 10, "20": 10, "9-10": 6}
    assert ref["reference"].dtype == float and ref["value"].map(type).eq(str).all()
    assert not ref.duplicated(["table", "factor", "value", "model.cell", "metric"]).any()
    assert set(ref["metric"]) == {"train_perplexity", "tokens_per_sec"}
    assert (ref.groupby("table")["metric"].value_counts().unstack().nunique(axis=1) == 1).all()
    assert set(ref["model.cell"]) == {"rnn", "lstm", "gru", "rnn_scratch"}
    assert set(ref.groupby("table")["factor"].unique().map(tuple)) == {
        ("data.sampling",), ("model.num_hiddens",), ("data.num_steps",), ("data.batch_size",),
        ("optim.lr",), ("model.num_layers",)}
    assert ref["setting"].str.contains("mean of 20 runs").all()


def test_published_values_exactly():
    assert published("12", "rnn", "train_perplexity", "32") == 5.21
    assert published("16-19", "rnn", "train_perplexity", "32") == 5.21
    assert published("16-19", "gru", "tokens_per_sec", "1024") == 1764.5
    assert published("15", "rnn", "train_perplexity", "0.01") == 13.3
    assert published("15", "rnn", "tokens_per_sec", "1") == 28992.3
    assert published("9-10", "rnn_scratch", "train_perplexity", "random") == 1.43
    assert published("9-10", "rnn_scratch", "tokens_per_sec", "sequential") == 24701.5
    assert published("9-10", "rnn", "train_perplexity", "sequential") == 1.03
    assert published("12", "rnn", "tokens_per_sec", "32") == 289066.5
    assert published("12", "rnn", "tokens_per_sec", "128") == 160003.4  # Table 12's precision
    assert published("16-19", "rnn", "tokens_per_sec", "128") == 160003  # 16-19's
    assert published("14", "rnn", "train_perplexity", "16") == 13.7
    assert published("13", "rnn", "tokens_per_sec", "20") == 21622.1
    assert published("20", "lstm", "train_perplexity", "5") == 17.5
    assert published("16-19", "lstm", "tokens_per_sec", "64") == 47770


def test_load_reference_hands_out_copies():
    ref = load_reference()
    ref.loc[0, "reference"] = -1.0
    assert load_reference().loc[0, "reference"] != -1.0


def test_values_compare_as_numbers_when_both_are():
    def same(a, b):
        return value_key(a) == value_key(b)

    assert same(1, 1.0) and same("1", 1.0) and same(0.5, "0.5")
    assert same("0.01", 0.01) and same("sequential", "sequential")
    assert not same("32", "random") and not same(1, "1x")
    assert value_key(True) == "true" and value_key(None) == "None"


def test_one_factor_rnn_num_hiddens_gets_table_12_once_per_point():
    s = summary_of(["model.num_hiddens"], [(h, 2.0, 1000.0) for h in SIZES])
    ref = reference_for(s, ["model.num_hiddens"], ["rnn"])
    assert list(ref.columns) == ["model.cell", "model.num_hiddens", "metric", "reference",
                                 "table", "setting"]
    # Table 12 and 16-19 publish the same rnn points: the one-model table is kept
    assert len(ref) == 12 and set(ref["table"]) == {"12"} and set(ref["model.cell"]) == {"rnn"}
    assert sorted(ref["model.num_hiddens"].unique()) == SIZES
    row = ref[(ref["model.num_hiddens"] == 128) & (ref["metric"] == "tokens_per_sec")]
    assert row["reference"].item() == 160003.4


def test_a_gru_sweep_gets_only_gru_rows():
    s = summary_of(["model.num_hiddens"], [(h, 2.0, 1000.0) for h in [32, 1024, 48]])
    ref = reference_for(s, ["model.num_hiddens"], ["gru"])
    assert len(ref) == 4 and set(ref["model.cell"]) == {"gru"} and set(ref["table"]) == {"16-19"}
    assert set(ref["model.num_hiddens"]) == {32, 1024}  # 48: never published


def test_models_by_num_hiddens_gets_tables_16_19_for_all_three():
    points = [(c, h, 2.0, 1000.0) for c in ["rnn", "lstm", "gru"] for h in SIZES]
    for by in (["model.cell", "model.num_hiddens"], ["model.num_hiddens", "model.cell"]):
        s = summary_of(by, [p if by[0] == "model.cell" else (p[1], p[0], *p[2:])
                            for p in points])
        ref = reference_for(s, by, ["rnn", "lstm", "gru"])
        assert len(ref) == 36 and set(ref["table"]) == {"16-19"}
        assert ref.groupby("model.cell").size().to_dict() == {"rnn": 12, "lstm": 12, "gru": 12}
    # a model x value pair that was not run gets no number
    s = summary_of(["model.cell", "model.num_hiddens"], [("rnn", 32, 2.0, 1.0),
                                                         ("gru", 64, 2.0, 1.0)])
    ref = reference_for(s, ["model.cell", "model.num_hiddens"], ["rnn", "gru"])
    assert set(zip(ref["model.cell"], ref["model.num_hiddens"])) == {("rnn", 32), ("gru", 64)}


def test_sampling_by_model_is_tables_9_10():
    points = [(c, m, 2.0, 1.0) for c in ["rnn", "rnn_scratch"] for m in ["sequential", "random"]]
    for by, pts in ((["model.cell", "data.sampling"], points),
                    (["data.sampling", "model.cell"], [(m, c, *r) for c, m, *r in points])):
        ref = reference_for(summary_of(by, pts), by, ["rnn", "rnn_scratch"])
        assert len(ref) == 6 and set(ref["table"]) == {"9-10"}  # no nn.RNN random published
        assert ("rnn", "random") not in set(zip(ref["model.cell"], ref["data.sampling"]))
    s = summary_of(["data.sampling"], [("sequential", 2.0, 1.0), ("random", 2.0, 1.0)])
    assert len(reference_for(s, ["data.sampling"], ["rnn_scratch"])) == 4


def test_unpublished_factors_match_nothing():
    s = summary_of(["init.scheme"], [("default", 2.0, 1.0), ("xavier_uniform", 2.0, 1.0)])
    ref = reference_for(s, ["init.scheme"], ["rnn"])
    assert ref.empty and list(ref.columns) == ["model.cell", "init.scheme", "metric",
                                               "reference", "table", "setting"]
    s = summary_of(["model.num_hiddens", "optim.lr"], [(32, 1.0, 2.0, 1.0), (64, 0.1, 2.0, 1.0)])
    assert reference_for(s, ["model.num_hiddens", "optim.lr"], ["rnn"]).empty  # two factors
    s = summary_of(["model.num_layers"], [(1, 2.0, 1.0), (2, 2.0, 1.0)])
    assert reference_for(s, ["model.num_layers"], ["gru"]).empty  # Table 20 is LSTM only
    assert len(reference_for(s, ["model.num_layers"], ["lstm"])) == 4


def test_numeric_values_match_whatever_their_type():
    s = summary_of(["optim.lr"], [(1.0, 2.0, 1.0), (0.01, 2.0, 1.0), (0.3, 2.0, 1.0)])
    ref = reference_for(s, ["optim.lr"], ["rnn"])
    assert len(ref) == 4 and set(ref["optim.lr"]) == {1.0, 0.01}  # the summary's own values
    assert ref.loc[ref["optim.lr"] == 1.0, "reference"].tolist() == [1.03, 28992.3]
    s = summary_of(["data.batch_size"], [("32", 2.0, 1.0)])  # text that reads as a number
    assert len(reference_for(s, ["data.batch_size"], ["rnn"])) == 2


def test_reference_series_is_long_per_model():
    s = summary_of(["model.cell", "model.num_hiddens"],
                   [(c, h, 2.0, 1.0) for c in ["rnn", "gru"] for h in SIZES])
    ref = reference_for(s, ["model.cell", "model.num_hiddens"], ["rnn", "gru"])
    series = reference_series(ref, "model.num_hiddens", "tokens_per_sec")
    assert list(series.columns) == ["value", "series", "tokens_per_sec"] and len(series) == 12
    gru = series[series["series"] == "gru"]
    assert gru["value"].tolist() == SIZES and gru["tokens_per_sec"].iloc[-1] == 1764.5
    whole = reference_series(load_reference(), "model.num_layers", "train_perplexity")
    assert whole["value"].tolist() == [1, 2, 3, 4, 5] and set(whole["series"]) == {"lstm"}
    assert reference_series(ref.iloc[:0], "x", "bleu").columns.tolist() == ["value", "series",
                                                                             "bleu"]


def test_markdown_one_factor_adds_the_studys_rows_under_each_metric():
    s = summary_of(["model.num_hiddens"], [(48, 9.0, 5e5), (32, 4.0, 3e5), (1024, 1.5, 1e4)])
    ref = reference_for(s, ["model.num_hiddens"], ["rnn"])
    text = markdown_tables(s, ["model.num_hiddens"], ref)
    [table] = tables_in(text)
    assert table[0] == ["metric", "32", "48", "1024"]
    assert [r[0] for r in table[1:]] == ["training perplexity", "training perplexity (the study)",
                                         "held-out perplexity", "tokens/sec",
                                         "tokens/sec (the study)"]
    assert table[1][1:] == ["4.00", "9.00", "1.50"]
    assert table[2][1:] == ["5.21", "", "1.02"]  # 48: the study has none
    assert table[5][1:] == ["289,066", "", "9,542"]
    assert "\nThe study: Table 12 (nn.RNN, 500 epochs, batch 32, 35 steps, lr 1, " in text
    assert text.rstrip().endswith("Their tokens/sec were measured on a personal CPU, with "
                                  "torch.nn's layers or d2l's scratch code; ours by the "
                                  "implementations under Environment (model.impl).")


def test_markdown_model_by_factor_adds_a_study_row_per_model():
    by = ["model.cell", "model.num_hiddens"]
    s = summary_of(by, [(c, h, 3.0, 1e3) for c in ["rnn", "gru", "sru"] for h in [512, 32]])
    ref = reference_for(s, by, ["rnn", "gru", "sru"])
    text = markdown_tables(s, by, ref)
    ppl, val, tps, runs = tables_in(text)
    assert ppl[0] == ["model", "32", "512"]
    assert ppl[1:] == [["gru", "3.00", "3.00"], ["gru (the study)", "3.70", "1.00"],
                       ["rnn", "3.00", "3.00"], ["rnn (the study)", "5.21", "1.03"],
                       ["sru", "3.00", "3.00"]]  # no published numbers: no study row
    assert tps[2] == ["gru (the study)", "82,966", "4,692"]
    assert [r[0] for r in val] == [r[0] for r in runs] == ["model", "gru", "rnn", "sru"]
    assert "The study: Tables 16-19 (nn.RNN, nn.LSTM and nn.GRU, 500 epochs," in text


ONE_FACTOR = """\
| metric | 32 | 64 |
| --- | --- | --- |
| training perplexity | 3.00 ± 25.41 | 5.00 |
| held-out perplexity | 4.00 ± 25.41 | 6.00 |
| tokens/sec | 1,500 ± 6,353 | 3,000 |

Completed runs: 32: 2, 64: 1.
"""


@pytest.mark.parametrize("reference", ["absent", None, "empty"])
def test_markdown_without_reference_is_unchanged(reference):
    s = summary_of(["model.num_hiddens"], [(32, 1.0, 1e3), (32, 5.0, 2e3), (64, 5.0, 3e3)])
    ref = reference_for(s, ["model.num_hiddens"], ["rnn"])
    args = () if reference == "absent" else (None,) if reference is None else (ref.iloc[:0],)
    assert markdown_tables(s, ["model.num_hiddens"], *args) == ONE_FACTOR
    by = ["model.cell", "model.num_hiddens"]
    s = summary_of(by, [("rnn", 32, 2.0, 1e3)])
    assert markdown_tables(s, by, *args) == (
        "### training perplexity by model.num_hiddens\n\n| model | 32 |\n| --- | --- |\n"
        "| rnn | 2.00 |\n\n### held-out perplexity by model.num_hiddens\n\n| model | 32 |\n"
        "| --- | --- |\n| rnn | 3.00 |\n\n### tokens/sec by model.num_hiddens\n\n"
        "| model | 32 |\n| --- | --- |\n| rnn | 1,000 |\n\n"
        "### completed runs by model.num_hiddens\n\n| model | 32 |\n| --- | --- |\n"
        "| rnn | 1 |\n")
