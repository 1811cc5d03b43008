"""The aggregator: reading a folder of results, statistics per point, tables, the CLI."""
import copy
import json
import logging
import math
import uuid

import pandas as pd
import pytest

from runner.report import write_report
from runner.report.__main__ import main
from runner.report.runs import load_results, swept_params, tidy
from runner.result import validate_result, write_json_atomic
from tests.helpers import tables_in

T2 = 4.302653  # Student's t 0.975 quantile, 2 degrees of freedom
CONFIG = {
    "model": {"_target_": "models.LanguageModel", "cell": "rnn", "num_hiddens": 32,
              "num_layers": 1, "bidirectional": False, "dropout": 0.0, "embed_size": None,
              "nonlinearity": "tanh"},
    "data": {"name": "timemachine", "file": "timemachine.txt", "sha1": "0" * 40,
             "root": "/data", "download": True, "token": "char", "max_tokens": 10000,
             "val_tokens": 2000, "min_freq": 0, "batch_size": 32, "num_steps": 35,
             "sampling": "sequential"},
    "init": {"_target_": "models.init_weights", "_partial_": True, "scheme": "default"},
    "optim": {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 1.0},
    "train": {"num_epochs": 5, "grad_clip": 1.0, "warmup": 0.0, "eval_every": 5},
    "sample": {"prefix": "time traveller", "num_preds": 10},
    "seed": 0, "device": "cpu", "threads": None, "quiet": True, "overwrite": False,
    "launcher": {"n_jobs": 2}, "sweep_name": "test",
}


def make_result(status="completed", ppl=5.0, val=6.0, tps=1000.0, *, environment=None,
                metrics=None, **config) -> dict:
    """A schema-valid result; `config` overrides dotted keys, e.g. **{"model.cell": "gru"};
    `environment` and `metrics` update those sections. By default the run had its 2 threads'
    CPU time (100 CPU seconds in 50 s) on a quiet machine (load 0.5 on 2 cores)."""
    cfg = copy.deepcopy(CONFIG)
    for key, value in config.items():
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = node[p]
        node[leaf] = value
    if cfg["model"]["cell"] != "rnn":  # as the real configs: only rnn cells have it
        del cfg["model"]["nonlinearity"]
    result = {
        "schema_version": 2, "run_id": uuid.uuid4().hex[:12],
        "task": "language_model", "status": status, "config": cfg,
        "dataset": {"file": "/data/timemachine.txt", "sha1": "0" * 40, "token": "char",
                    "corpus_tokens": 170000, "train_tokens": 10000, "val_tokens": 2000,
                    "vocab_size": 28, "val_unk_tokens": 0},
        "sees_future": False,
        "environment": {"python": "3.12", "torch": "2.13.0", "device": "cpu",
                        "device_name": "AMD EPYC", "cpu_count": 2, "threads": 2,
                        "concurrent_jobs": 1, "git_commit": None, "git_dirty": None,
                        "git_diff_sha1": None, "load_avg_start": 0.5, "load_avg_end": 0.5,
                        **(environment or {})},
        "started_at": "2025-01-01T00:00:00+00:00", "finished_at": "2025-01-01T00:01:00+00:00",
        "metrics": {"train_perplexity": ppl, "best_train_perplexity": ppl,
                    "val_perplexity": val, "best_val_perplexity": val, "tokens_per_sec": tps,
                    "tokens_per_sec_epoch_median": tps, "train_tokens": 50000,
                    "train_seconds": 50.0, "train_cpu_seconds": 100.0, "wall_seconds": 60.0,
                    "epochs_done": 5, "val_tokens_scored": 2000, "diverged_epoch": None,
                    "num_params": 2876, "peak_memory_bytes": 1,
                    "peak_memory_kind": "process_peak_rss", **(metrics or {})},
        "curves": {"epoch": [1], "train_perplexity": [ppl], "tokens_per_sec": [tps],
                   "train_seconds": [1.0], "train_tokens": [1000], "lr": [1.0],
                   "val_epoch": [1], "val_perplexity": [val]},
    }
    if status == "completed":
        result["sample"] = {"prefix": "time traveller", "num_preds": 10, "text": "time t"}
    if status in ("failed", "interrupted"):
        result["error"] = {"type": "RuntimeError", "message": "boom", "traceback_tail": ["x"]}
    if status == "diverged":
        result["metrics"]["diverged_epoch"] = 3
    validate_result(result)
    return result


def write_runs(folder, results):
    for i, r in enumerate(results):
        write_json_atomic(folder / "multirun" / str(i) / "result.json", r)
    return folder


def one_factor_runs():
    """num_hiddens 32: perplexities 2, 4, 6 over three seeds, plus a failed and a diverged run
    (whose numbers must not count); 64: one run; 128: two runs."""
    runs = [make_result(ppl=p, val=p + 1, tps=t, seed=s, **{"data.root": f"/m{s}"})
            for s, (p, t) in enumerate([(2, 1000), (4, 2000), (6, 3000)])]
    runs += [make_result("failed", ppl=100.0, val=100.0, tps=9e9, seed=3),
             make_result("diverged", ppl=None, val=None, tps=500.0, seed=4)]
    runs += [make_result(ppl=10.0, val=11.0, tps=4000.0, **{"model.num_hiddens": 64})]
    runs += [make_result(ppl=p, val=p, tps=5000.0, seed=s, **{"model.num_hiddens": 128})
             for s, p in enumerate([8.0, 9.0])]
    return runs


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
    assert counts == {"read": 1, "skipped": 3, "old": 0, "duplicates": 0, "completed": 1,
                      "diverged": 0, "failed": 0, "interrupted": 0}
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3 and all("\n" not in m for m in messages)
    for name in ["corrupt", "truncated", "foreign"]:
        assert sum(f"{name}/result.json" in m for m in messages) == 1
    assert not any("manifest" in m for m in messages)


def markdown_tables_of(path):
    return tables_in(path.read_text())


def test_markdown_one_factor_has_the_studys_shape(tmp_path):
    write_report(write_runs(tmp_path, one_factor_runs()))
    [table] = markdown_tables_of(tmp_path / "summary.md")
    assert table[0] == ["metric", "32", "64", "128"]  # numeric order, not text order
    # nn.RNN over num_hiddens is the study's Table 12: its numbers stand under ours
    assert [row[0] for row in table[1:]] == [
        "training perplexity", "training perplexity (the study)", "held-out perplexity",
        "tokens/sec", "tokens/sec (the study)", "parameters"]
    assert table[6][1:] == ["2,876"] * 3  # one count per point, no interval
    # 32 is the baseline (no 512 in the sweep: the first value); 64 has one run, no test
    assert table[1][1:] == ["4.00 ± 4.97 †", "10.00", "8.50 ± 6.35 *"]
    assert table[2][1:] == ["5.21", "3.69", "1.98"]
    assert table[4][1:3] == ["2,000 ± 2,484 †", "4,000"]
    assert table[5][1:] == ["289,066", "182,857", "160,003"]
    assert "32: 3 (+1 failed, 1 diverged)" in (tmp_path / "summary.md").read_text()


def test_markdown_model_by_factor_has_one_table_per_metric(tmp_path):
    runs = [make_result(ppl=float(h) / 8, **{"model.cell": c, "model.num_hiddens": h})
            for c in ["rnn", "gru"] for h in [64, 32]]
    write_report(write_runs(tmp_path, runs))
    tables = markdown_tables_of(tmp_path / "summary.md")
    assert len(tables) == 5  # four metrics (parameters included) and the run counts
    study = ["gru", "gru (the study)", "rnn", "rnn (the study)"]  # Tables 16-19
    for table, rows in zip(tables, [study, ["gru", "rnn"], study, ["gru", "rnn"]]):
        assert table[0] == ["model", "32", "64"]
        assert [row[0] for row in table[1:]] == rows
    assert tables[0][1] == ["gru", "4.00", "8.00"]
    assert tables[0][2] == ["gru (the study)", "3.70", "1.70"]
    text = (tmp_path / "summary.md").read_text()
    assert "### training perplexity by model.num_hiddens" in text


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
    assert table[4][1:] == ["1,000 ± 0"] * 3  # no test: no sign, not even the baseline's
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
