"""runner/report/findings.py: the companion note's Transformer findings, judged from summaries."""
import pandas as pd

from runner.report.findings import companion_findings, init_check, warmup_check


def _summary(rows: list[dict]) -> pd.DataFrame:
    base = {"n": 2, "failed": 0, "diverged": 0, "interrupted": 0}
    return pd.DataFrame([{**base, **r} for r in rows])


def _runs(cell="transformer", lr=0.001):
    return pd.DataFrame({"task": ["language_model"] * 4, "model.cell": [cell] * 4,
                         "optim.lr": [lr] * 4})


def test_warmup_rescue_holds_when_only_the_cold_start_fails():
    summary = _summary([{"train.warmup": 0.0, "train_perplexity_mean": 18.0},
                        {"train.warmup": 0.01, "train_perplexity_mean": 7.0}])
    text = warmup_check(_runs(), summary, ["train.warmup"])
    assert "holds: without warm-up the model does not train" in text
    assert "warm-up 0: 18.00; warm-up 0.01: 7.00" in text


def test_warmup_rescue_fails_when_the_cold_start_trains_too():
    summary = _summary([{"train.warmup": 0.0, "train_perplexity_mean": 7.3},
                        {"train.warmup": 0.01, "train_perplexity_mean": 7.2}])
    assert "does not hold: without warm-up the model trains as well" in warmup_check(
        _runs(), summary, ["train.warmup"])


def test_a_diverged_cold_start_counts_as_not_training_and_only_lr_1e3_is_judged():
    summary = _summary([
        {"train.warmup": 0.0, "optim.lr": 0.001, "train_perplexity_mean": 7.0, "diverged": 1},
        {"train.warmup": 0.01, "optim.lr": 0.001, "train_perplexity_mean": 7.0},
        {"train.warmup": 0.0, "optim.lr": 0.0001, "train_perplexity_mean": 30.0},
        {"train.warmup": 0.01, "optim.lr": 0.0001, "train_perplexity_mean": 30.0}])
    text = warmup_check(_runs(), summary, ["train.warmup", "optim.lr"])
    assert "holds" in text and "(1 diverged)" in text and "30.00" not in text


def test_init_check_names_the_settings_that_fail():
    summary = _summary([{"init.scheme": s, "train_perplexity_mean": p} for s, p in
                        [("default", 7.0), ("xavier_uniform", 7.5), ("kaiming_normal", 17.0),
                         ("normal", 16.5)]])
    text = init_check(_runs(), summary, ["init.scheme"])
    assert "holds: 2 of 4 settings fail to train" in text
    assert "init.scheme=kaiming_normal; init.scheme=normal" in text
    params = _summary([{"init.scheme": "normal", "init.std": 0.1, "train_perplexity_mean": 17.0},
                       {"init.scheme": "uniform", "init.std": float("nan"),
                        "train_perplexity_mean": 17.0},
                       {"init.scheme": "default", "init.std": float("nan"),
                        "train_perplexity_mean": 7.0}])
    text = init_check(_runs(), params, ["init.scheme", "init.std"])
    assert "(init.scheme=normal, init.std=0.1; init.scheme=uniform)" in text  # no "std=nan"
    one_bad = summary.assign(train_perplexity_mean=[7.0, 7.5, 8.0, 16.5])
    assert "does not hold: 1 of 4" in init_check(_runs(), one_bad, ["init.scheme"])


def test_each_model_size_is_judged_against_its_own_best():
    """A small model's perplexity is no failure next to a large one's."""
    summary = _summary([
        {"train.warmup": w, "model.num_hiddens": h, "train_perplexity_mean": p}
        for w, h, p in [(0.0, 64, 7.3), (0.01, 64, 7.2), (0.0, 256, 17.0), (0.01, 256, 3.5)]])
    text = warmup_check(_runs(), summary, ["train.warmup", "model.num_hiddens"])
    # 7.3 is within 1.5x of 64's best (7.2), not of 256's (3.5): both warm-ups train at 64
    assert ("at model.num_hiddens=64: does not hold: without warm-up the model trains as well "
            "as with it") in text
    assert "at model.num_hiddens=256: holds" in text


def test_nothing_to_say_for_recurrent_models_or_other_sweeps():
    summary = _summary([{"train.warmup": 0.0, "train_perplexity_mean": 18.0},
                        {"train.warmup": 0.01, "train_perplexity_mean": 7.0}])
    assert companion_findings(_runs("gru"), summary, ["train.warmup"]) == []
    lr_only = _summary([{"optim.lr": 0.1, "train_perplexity_mean": 7.0}])
    assert companion_findings(_runs(), lr_only, ["optim.lr"]) == []
    found = companion_findings(_runs(), summary, ["train.warmup"])
    assert len(found) == 2 and found[-1].startswith("A setting counts as trained")
