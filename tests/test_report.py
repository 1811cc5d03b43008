"""The aggregator: reading a folder of results, statistics per point, tables, the CLI."""
import json
import logging
import math

import pandas as pd
import pytest

from runner.report import write_report
from runner.report.__main__ import main
from runner.report.runs import load_results, swept_params, tidy
from runner.result import validate_result
from tests.report_results import make_result, one_factor_runs, write_runs

T2 = 4.302653  # Student's t 0.975 quantile, 2 degrees of freedom


def test_summary_csv_has_exact_statistics_and_counts(tmp_path):
    write_report(write_runs(tmp_path, one_factor_runs()))
    s = pd.read_csv(tmp_path / "summary.csv").set_index("model.num_hiddens")
    assert list(s.index) == [32, 64, 128]
    assert list(s.loc[32, ["n", "failed", "diverged", "interrupted"]]) == [3, 1, 1, 0]
    assert s.loc[32, "train_perplexity_mean"] == pytest.approx(4.0)
    assert s.loc[32, "train_perplexity_std"] == pytest.approx(2.0)
    assert s.loc[32, "train_perplexity_ci95"] == pytest.approx(T2 * 2 / math.sqrt(3))
    assert s.loc[32, "val_perplexity_mean"] == pytest.approx(5.0)
    assert s.loc[32, "tokens_per_sec_mean"] == pytest.approx(2000.0)  # not 9e9, not 500
    assert s.loc[32, "tokens_per_sec_std"] == pytest.approx(1000.0)
    assert s.loc[64, "n"] == 1 and s.loc[64, "train_perplexity_mean"] == 10.0
    assert math.isnan(s.loc[64, "train_perplexity_std"])  # one run: no spread, no interval
    assert math.isnan(s.loc[64, "train_perplexity_ci95"])
    assert s.loc[128, "train_perplexity_std"] == pytest.approx(math.sqrt(0.5))
    assert s.loc[128, "train_perplexity_ci95"] == pytest.approx(12.706205 * math.sqrt(0.5)
                                                                / math.sqrt(2))
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert len(runs) == 8 and set(runs["path"]) == {f"multirun/{i}" for i in range(8)}
    for column in ["run_id", "status", "model.cell", "model.num_hiddens", "data.batch_size",
                   "optim.lr", "optim._target_", "train.num_epochs", "seed",
                   "train_perplexity", "best_val_perplexity", "tokens_per_sec_epoch_median",
                   "num_params", "environment.device", "environment.concurrent_jobs"]:
        assert column in runs.columns
    for dropped in ["data.root", "data.download", "device", "threads", "quiet", "overwrite",
                    "launcher.n_jobs", "sweep_name"]:
        assert dropped not in runs.columns


def test_swept_params_are_the_varied_keys_never_seed():
    runs = [make_result(seed=s, device=f"cuda:{s}", threads=s + 1,  # execution, not identity
                        **{"model.num_hiddens": h, "optim.lr": lr, "data.root": f"/{s}"})
            for s, (h, lr) in enumerate([(32, 1.0), (64, 1.0), (32, 0.1)])]
    assert swept_params(tidy(runs)) == ["model.num_hiddens", "optim.lr"]
    assert swept_params(tidy(runs[:1])) == []
    # model x num_hiddens: model.nonlinearity (rnn only) follows from model.cell, no factor
    cells = [make_result(**{"model.cell": c, "model.num_hiddens": h})
             for c in ["rnn", "lstm", "gru"] for h in [32, 64]]
    assert swept_params(tidy(cells)) == ["model.cell", "model.num_hiddens"]
    # but a null that is a value of its own (one-hot vs an embedding) is a factor
    embed = [make_result(**{"model.embed_size": e}) for e in [None, 16]]
    assert swept_params(tidy(embed)) == ["model.embed_size"]
    # each model's own preset (the transformer's Adam lr, dropout) is no factor either...
    presets = {"rnn": (1.0, 0.0), "transformer": (0.001, 0.1)}
    families = [make_result(**{"model.cell": c, "model.num_hiddens": h, "optim.lr": presets[c][0],
                               "model.dropout": presets[c][1]})
                for c in presets for h in [32, 64]]
    assert swept_params(tidy(families)) == ["model.cell", "model.num_hiddens"]
    # ...unless it varies within a model: then it was swept
    swept_lr = [make_result(**{"model.cell": c, "optim.lr": lr})
                for c in presets for lr in [0.1, 1.0]]
    assert swept_params(tidy(swept_lr)) == ["model.cell", "optim.lr"]


def test_bad_files_are_skipped_with_one_warning_each(tmp_path, caplog):
    write_runs(tmp_path, [make_result()])
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "result.json").write_text("{not json")
    (tmp_path / "truncated").mkdir()
    text = json.dumps(make_result())
    (tmp_path / "truncated" / "result.json").write_text(text[: len(text) // 2])
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "result.json").write_text('{"accuracy": 0.9}')
    (tmp_path / "manifest.json").write_text('{"runs": 1}')  # not a result: skipped silently
    with caplog.at_level(logging.WARNING, logger="runner.report"):
        results, counts = load_results(tmp_path)
    assert len(results) == 1 and results[0]["_path"] == "multirun/0"
    assert counts == {"read": 1, "skipped": 3, "old": 0, "duplicates": 0, "strays": 0,
                      "completed": 1, "diverged": 0, "failed": 0, "interrupted": 0}
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3 and all("\n" not in m for m in messages)
    for name in ["corrupt", "truncated", "foreign"]:
        assert sum(f"{name}/result.json" in m for m in messages) == 1
    assert not any("manifest" in m for m in messages)


@pytest.mark.slow  # the report written twice
def test_cli_writes_three_files_and_fails_clearly_on_an_empty_folder(tmp_path, capsys):
    folder = write_runs(tmp_path / "sweep", one_factor_runs())
    assert main([str(folder)]) == 0
    for name in ["runs.csv", "summary.csv", "summary.md", "report.md", "report.html"]:
        assert (folder / name).is_file()
    out = capsys.readouterr().out
    assert out == (f"report: 8 runs read (6 completed, 1 failed, 1 diverged, 0 skipped) "
                   f"-> {folder / 'report.html'}\n")
    assert main([str(folder)]) == 0  # again: the report's own files are not results
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "empty" in err and "result.json" in err
    assert main([str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_a_run_copied_many_times_counts_once(tmp_path, caplog):
    one = make_result(ppl=2.0)
    write_runs(tmp_path, [one] * 4 + [make_result(ppl=4.0, seed=1)])
    with caplog.at_level(logging.WARNING, logger="runner.report"):
        counts = write_report(tmp_path)
    assert counts["read"] == 2 and counts["duplicates"] == 3 and counts["skipped"] == 0
    [message] = [r.getMessage() for r in caplog.records]
    assert "3 duplicate result(s)" in message
    assert "multirun/1 is a copy of multirun/0" in message
    s = pd.read_csv(tmp_path / "summary.csv")
    assert s["n"].tolist() == [2] and s["train_perplexity_mean"].tolist() == [3.0]
    assert len(pd.read_csv(tmp_path / "runs.csv")) == 2
    assert "3 duplicate result(s)" in (tmp_path / "report.md").read_text()


def test_results_of_the_older_runner_are_skipped_with_one_clear_warning(tmp_path, caplog):
    old = []
    for seed in (1, 2):
        r = make_result(seed=seed)
        r["schema_version"] = 1
        for key in ("git_diff_sha1", "load_avg_start", "load_avg_end", "cpu_count"):
            del r["environment"][key]
        for key in ("train_cpu_seconds", "val_tokens_scored"):
            del r["metrics"][key]
        old.append(r)
    write_runs(tmp_path, [make_result(), *old])
    with caplog.at_level(logging.WARNING, logger="runner.report"):
        results, counts = load_results(tmp_path)
    assert len(results) == 1 and counts["skipped"] == 2 and counts["old"] == 2
    [message] = [r.getMessage() for r in caplog.records]
    assert "2 result(s) from an older runner (schema_version 1" in message
    assert "multirun/1/result.json" in message and "overwrite=true" in message
    assert "json_path" not in message and "$." not in message  # not the validator's words


def as_translation(result: dict) -> dict:
    """make_result's result as a translation run's: its dataset facts, BLEU, translations."""
    result = {**result, "task": "translation", "metrics": {**result["metrics"], "bleu": 20.0}}
    result["dataset"] = {"file": "/data/fra.txt", "sha1": "0" * 40, "pairs_in_file": 600,
                         "malformed_lines": 0, "train_pairs": 540, "val_pairs": 60,
                         "src_vocab_size": 100, "tgt_vocab_size": 120}
    result["translations"] = {"corpus_bleu": {"score": 20.0, "signature": "x", "n": 60},
                              "study_sentences": []}
    del result["sample"]
    validate_result(result)
    return result


def test_language_model_and_translation_results_never_share_a_point(tmp_path):
    runs = []
    for task, scale in [("language_model", 1.0), ("translation", 10.0)]:
        for h in (32, 64):
            for seed in (0, 1):
                r = make_result(ppl=scale * (2 + seed), seed=seed,
                                **{"model.num_hiddens": h, "data.task": task})
                runs.append(as_translation(r) if task == "translation" else r)
    write_report(write_runs(tmp_path, runs))
    s = pd.read_csv(tmp_path / "summary.csv")
    assert list(s.columns[:2]) == ["task", "model.num_hiddens"] and len(s) == 4
    means = s.set_index(["task", "model.num_hiddens"])["train_perplexity_mean"]
    assert means.to_dict() == {("language_model", 32): 2.5, ("language_model", 64): 2.5,
                               ("translation", 32): 25.0, ("translation", 64): 25.0}
    # each task's 64 against its own 32: +0 twice, never 25 - 2.5
    assert s["train_perplexity_diff"].dropna().tolist() == [0.0, 0.0]
    report = (tmp_path / "report.md").read_text()
    warnings = report[report.index("## Warnings"):report.index("## Tables")]
    assert "mixes tasks (4 language_model, 4 translation runs)" in warnings
    assert "the task is part of every point" in warnings
