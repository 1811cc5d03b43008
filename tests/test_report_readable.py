"""The report, easy to read: values in value order, figures with integer epochs, a log axis
where a metric spans decades and the sweep in the title, and summary.tex for a paper."""
import pandas as pd
import pytest

import runner.report.plots as plots
from runner.report import write_report
from runner.report.plots import curves_figure, dual_axis_figure, metric_figure
from runner.report.tables import summarize
from runner.result import write_json_atomic
from tests.report_results import make_result, one_factor_runs, write_runs

SIZES = [1024, 128, 256, 32]  # the order their folders' names sort in, as text


def size_sweep(tmp_path, **environment):
    """A num_hiddens sweep in folders named as Hydra names them, so that they sort as text."""
    for h in SIZES:
        r = make_result(tps=300_000.0 / h, environment=environment,
                        **{"model.num_hiddens": h, "sweep_name": "sizes"})
        r["sample"]["text"] = f"text of {h}"
        write_json_atomic(tmp_path / f"model.num_hiddens={h},seed=0" / "result.json", r)
    return tmp_path


def test_samples_and_warnings_list_points_by_value_not_as_text(tmp_path):
    write_report(size_sweep(tmp_path, load_avg_end=7.5))  # every run oversubscribed
    page = (tmp_path / "report.md").read_text()
    samples = [line for line in page.splitlines() if line.startswith("- model.num_hiddens=")]
    assert samples == [f"- model.num_hiddens={h}: `text of {h}`" for h in [32, 128, 256, 1024]]
    [busy] = [line for line in page.splitlines() if "oversubscribed" in line]
    named = [busy.index(f"model.num_hiddens={h},seed=0") for h in [32, 128, 256, 1024]]
    assert named == sorted(named)


def test_warnings_list_thread_counts_by_value(tmp_path):
    runs = [make_result(seed=s, environment={"threads": t}) for s, t in enumerate([16, 2, 4])]
    write_report(write_runs(tmp_path, runs))
    page = (tmp_path / "report.md").read_text()
    assert "different thread counts (2, 4, 16)" in page
    assert "- threads per run: 2, 4, 16;" in page


def test_curves_have_integer_epoch_ticks():
    r = make_result()
    r["curves"] |= {"epoch": [1, 2], "train_perplexity": [9.0, 8.0]}
    ax = curves_figure([r], []).axes[0]
    ticks = [t for t in ax.get_xticks() if 1 <= t <= 2]
    assert ticks == [1.0, 2.0]  # not 1.25, 1.5, 1.75


def summary_of(tokens_per_sec: list[float]) -> pd.DataFrame:
    runs = pd.DataFrame({"model.num_hiddens": [32 * 2 ** i for i in range(len(tokens_per_sec))],
                         "status": "completed", "train_perplexity": 2.0,
                         "tokens_per_sec": tokens_per_sec})
    return summarize(runs, ["model.num_hiddens"])


@pytest.mark.parametrize("values, scale", [([320_000, 80_000, 4_000], "log"),  # 80x
                                           ([10_000, 5_000, 1_000], "linear"),  # 10x: not over
                                           ([3_000, 2_000, 1_500], "linear")])
def test_tokens_per_sec_gets_a_log_axis_only_when_it_spans_over_10x(values, scale):
    s = summary_of(values)
    assert metric_figure(s, "model.num_hiddens", "tokens_per_sec").axes[0].get_yscale() == scale
    left, right = dual_axis_figure(s, "model.num_hiddens").axes
    assert right.get_yscale() == scale and left.get_yscale() == "linear"  # perplexity: flat


def test_a_log_axis_counts_the_studys_numbers_too():
    s = summary_of([3_000, 2_000])
    study = pd.DataFrame({"value": [32, 64], "tokens_per_sec": [289_066.5, 182_857.1]})
    ax = metric_figure(s, "model.num_hiddens", "tokens_per_sec", reference=study).axes[0]
    assert ax.get_yscale() == "log"
    assert "100,000" in [t.get_text() for t in ax.get_yticklabels()]


def test_every_figure_names_the_sweep_and_the_model(tmp_path, monkeypatch):
    titles = {}
    monkeypatch.setattr(plots, "save", lambda fig, path: titles.setdefault(
        path.name, fig.get_suptitle()) and [])
    write_report(size_sweep(tmp_path))
    assert set(titles) == {"plot_train_perplexity", "plot_val_perplexity",
                           "plot_tokens_per_sec", "plot_perplexity_vs_tokens_per_sec",
                           "plot_curves"}
    assert set(titles.values()) == {"sweep sizes; model rnn"}


def test_summary_tex_is_a_tabular_of_the_summary(tmp_path):
    out = write_report(write_runs(tmp_path, one_factor_runs()))
    tex = (tmp_path / "summary.tex").read_text()
    assert out["summary.tex"] == str(tmp_path / "summary.tex")
    assert tex.startswith("\\begin{tabular}{lrrrrr}\n\\toprule\n")
    assert tex.rstrip().endswith("\\bottomrule\n\\end{tabular}")
    lines = tex.splitlines()
    assert lines[2] == ("model.num\\_hiddens & runs & training perplexity & held-out perplexity"
                        " & tokens/sec & parameters \\\\")
    assert lines[4] == ("32 & 3 (+1 failed, 1 diverged) & 4.00 $\\pm$ 4.97 & 5.00 $\\pm$ 4.97 & "
                        "2,000 $\\pm$ 2,484 & 2,876 \\\\")
    assert lines[5] == "64 & 1 & 10.00 & 11.00 & 4,000 & 2,876 \\\\"  # one run: no interval
    assert lines[6].startswith("128 & 2 & 8.50 $\\pm$ 6.35 & ")
