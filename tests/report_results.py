"""Result files made up for the report's tests: one run's result.json from a few knobs, a
folder of them, and a one-factor sweep with exactly known statistics."""
import copy
import uuid

from runner.result import validate_result, write_json_atomic

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
