"""Report text: point labels that never merge two values, table cells that stay cells, and
files written as UTF-8 whatever the locale."""
import numpy as np

from runner.report.runs import label
from runner.report.tables import markdown_tables
from runner.result import write_text_atomic
from tests.helpers import tables_in


def test_labels_read_as_overrides_and_keep_close_values_apart():
    assert [label(v) for v in (256, 0.001, 32.0, np.float32(0.5), True, None, float("nan"))] == [
        "256", "0.001", "32", "0.5", "true", "null", "null"]
    assert label(0.0010000001) != label(0.001)
    assert float(label(0.0010000001)) == 0.0010000001
    assert label(1234567.0) == "1234567"  # :g would read 1.23457e+06, another number


def test_a_pipe_in_a_value_stays_inside_its_cell():
    import pandas as pd

    summary = pd.DataFrame([{"model.cell": "a|b", "n": 1, "failed": 0, "diverged": 0,
                             "interrupted": 0, "train_perplexity_mean": 2.0,
                             "train_perplexity_std": np.nan, "train_perplexity_ci95": np.nan}])
    text = markdown_tables(summary, ["model.cell"])
    [table] = tables_in(text.replace("\\|", "¦"))  # the reader splits on unescaped pipes only
    assert table[0] == ["metric", "a¦b"]  # one factor: a column per value
    assert table[1] == ["training perplexity", "2.00"]


def test_text_files_are_utf8_whatever_the_locale(tmp_path, monkeypatch):
    monkeypatch.setenv("LC_ALL", "C")
    monkeypatch.setenv("PYTHONIOENCODING", "ascii")
    write_text_atomic(tmp_path / "t.md", "5.00 ± 0.10 † — ok")
    assert (tmp_path / "t.md").read_bytes() == "5.00 ± 0.10 † — ok".encode()
