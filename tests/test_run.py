"""A whole run on a generated corpus: learning, the JSON result, determinism, statuses."""
import json
import math

import pytest

import runner.run.execute
import runner.tasks
from runner.errors import ConfigError
from runner.result import RESULT_FILE, validate_result
from runner.run.execute import run
from runner.tasks import LanguageModelTask


@pytest.mark.slow  # 8 epochs
def test_short_run_learns_and_writes_a_valid_result(tiny_cfg, tmp_path):
    cfg = tiny_cfg("model=gru", "optim=adam", "optim.lr=0.01", "train.num_epochs=8")
    result = run(cfg, tmp_path / "out")
    on_disk = json.loads((tmp_path / "out" / RESULT_FILE).read_text())
    validate_result(on_disk)
    assert on_disk == json.loads(json.dumps(result))  # what run() returns is what it wrote
    assert result["status"] == "completed"
    curve = result["curves"]["train_perplexity"]
    assert len(curve) == 8 and curve[-1] < 0.6 * curve[0]
    m = result["metrics"]
    # 10 words + space + <unk>: uniform guessing would be ~ the vocab size
    assert result["dataset"]["vocab_size"] < 27
    assert m["val_perplexity"] < 0.5 * result["dataset"]["vocab_size"]
    assert m["best_train_perplexity"] == min(curve)
    assert m["epochs_done"] == 8 and m["diverged_epoch"] is None
    assert m["train_tokens"] == sum(result["curves"]["train_tokens"])
    assert m["tokens_per_sec"] == pytest.approx(m["train_tokens"] / m["train_seconds"])
    assert m["train_seconds"] < m["wall_seconds"]
    assert result["curves"]["val_epoch"] == list(range(1, 9))
    text = result["sample"]["text"]
    assert text.startswith("time traveller") and len(text) == len("time traveller") + 10
    assert result["config"]["model"]["cell"] == "gru"
    assert result["environment"]["concurrent_jobs"] == 1


def test_same_seed_same_metrics_other_seed_differs(tiny_cfg, tmp_path):
    curves = []
    for i, seed in enumerate([3, 3, 4]):
        result = run(tiny_cfg(f"seed={seed}", "data.sampling=random"), tmp_path / str(i))
        curves.append((result["curves"]["train_perplexity"], result["curves"]["val_perplexity"],
                       result["sample"]["text"]))
    assert curves[0] == curves[1]
    assert curves[0][0] != curves[2][0]


def test_divergence_stops_the_run_with_its_epoch(tiny_cfg, tmp_path):
    cfg = tiny_cfg("train.grad_clip=null", "optim.lr=1e30", "train.num_epochs=5")
    result = run(cfg, tmp_path)
    validate_result(json.loads((tmp_path / RESULT_FILE).read_text()))
    assert result["status"] == "diverged"
    assert result["metrics"]["diverged_epoch"] == result["metrics"]["epochs_done"]
    assert result["metrics"]["epochs_done"] < 5
    assert result["curves"]["train_perplexity"][-1] is None


def test_failure_is_recorded_then_raised(tiny_cfg, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr("runner.run.execute.fit", boom)
    with pytest.raises(RuntimeError, match="simulated"):
        run(tiny_cfg(), tmp_path)
    result = json.loads((tmp_path / RESULT_FILE).read_text())
    validate_result(result)
    assert result["status"] == "failed"
    assert result["error"]["type"] == "RuntimeError"
    assert "simulated" in result["error"]["traceback_tail"][-1]


def test_ctrl_c_is_recorded_as_interrupted_with_the_epochs_so_far(tiny_cfg, tmp_path,
                                                                   monkeypatch):
    def ctrl_c_after_two_epochs(history):
        if len(history.epoch) == 2:
            raise KeyboardInterrupt

    real_fit = runner.run.execute.fit
    monkeypatch.setattr("runner.run.execute.fit", lambda *args: real_fit(*args[:-1],
                                                                     ctrl_c_after_two_epochs))
    with pytest.raises(KeyboardInterrupt):
        run(tiny_cfg("train.num_epochs=5"), tmp_path)
    result = json.loads((tmp_path / RESULT_FILE).read_text())
    validate_result(result)
    assert result["status"] == "interrupted" and result["error"]["type"] == "KeyboardInterrupt"
    assert result["metrics"]["epochs_done"] == 2 and len(result["curves"]["epoch"]) == 2


def test_finished_result_is_resumed_never_lost(tiny_cfg, tmp_path, monkeypatch):
    first = run(tiny_cfg("train.num_epochs=1"), tmp_path)
    # Same experiment, other execution settings: skipped, nothing trains, nothing is written.
    monkeypatch.setattr("runner.run.execute.fit", lambda *a: pytest.fail("trained a finished run"))
    again = run(tiny_cfg("train.num_epochs=1", "quiet=false", "threads=1"), tmp_path)
    assert again["skipped"] is True and again["run_id"] == first["run_id"]
    monkeypatch.undo()
    # Another experiment in the same folder: refused, the finished result stays.
    with pytest.raises(ConfigError, match="holds a finished result .* of a different config.*"
                                          "overwrite=true"):
        run(tiny_cfg("train.num_epochs=2"), tmp_path)
    assert json.loads((tmp_path / RESULT_FILE).read_text())["run_id"] == first["run_id"]
    second = run(tiny_cfg("train.num_epochs=2", "overwrite=true"), tmp_path)
    assert json.loads((tmp_path / RESULT_FILE).read_text())["run_id"] == second["run_id"]


def test_a_failed_run_is_run_again(tiny_cfg, tmp_path, monkeypatch):
    def bogus(self, device):
        raise ValueError("bogus: the model cannot be built")

    with monkeypatch.context() as m, pytest.raises(ValueError):  # past validation, in train()
        m.setattr(LanguageModelTask, "new_model", bogus)
        run(tiny_cfg(), tmp_path)
    failed = json.loads((tmp_path / RESULT_FILE).read_text())
    validate_result(failed)
    assert failed["status"] == "failed" and "bogus" in failed["error"]["message"]
    assert failed["metrics"]["num_params"] is None  # failed before the model existed
    assert run(tiny_cfg(), tmp_path)["status"] == "completed"


def test_bidirectional_warns_and_says_so(tiny_cfg, tmp_path):
    with pytest.warns(UserWarning, match="sees the tokens it predicts"):
        result = run(tiny_cfg("model=lstm", "model.bidirectional=true"), tmp_path)
    assert result["sees_future"] is True
    assert result["status"] == "completed"


@pytest.mark.parametrize("model", ["rnn_scratch", "lstm_scratch", "gru_scratch", "rnn_fused",
                                   "gru_fused"])
def test_twin_cells_train(tiny_cfg, tmp_path, model):
    result = run(tiny_cfg(f"model={model}", "model.num_layers=2", "model.dropout=0.1"), tmp_path)
    assert result["status"] == "completed"
    assert math.isfinite(result["metrics"]["val_perplexity"])


def test_warmup_ramps_the_learning_rate(tiny_cfg, tmp_path):
    # 37 steps an epoch here; warm-up over 0.75 * 4 epochs = 3 epochs' steps
    result = run(tiny_cfg("train.warmup=0.75", "train.num_epochs=4", "optim.lr=0.5"), tmp_path)
    lrs = result["curves"]["lr"]  # the lr of each epoch's last step
    assert lrs == pytest.approx([0.5 / 3, 0.5 * 2 / 3, 0.5, 0.5])


@pytest.mark.parametrize("model", [
    ["model=sru"], ["model=onlstm", "model.chunk_size=4"], ["model=gru", "model.num_layers=3",
                                                            "model.skip=dense"],
    ["model=transformer", "model.num_heads=2", "model.ffn_num_hiddens=32", "model.num_layers=2"],
], ids=["sru", "onlstm", "gru-dense", "transformer"])
def test_every_model_family_runs_learns_and_counts_its_parameters(tiny_cfg, tmp_path, model):
    cfg = tiny_cfg(*model, "optim=adam", "optim.lr=0.01", "train.num_epochs=6")
    result = run(cfg, tmp_path)
    validate_result(json.loads((tmp_path / RESULT_FILE).read_text()))
    assert result["status"] == "completed"
    curve = result["curves"]["train_perplexity"]
    assert curve[-1] < 0.7 * curve[0]
    task = runner.tasks.build_task(cfg)
    built = task.new_model("cpu")
    assert result["metrics"]["num_params"] == sum(p.numel() for p in built.parameters()) > 0
    text = result["sample"]["text"]  # generation works with every model's state
    assert text.startswith("time traveller") and len(text) == len("time traveller") + 10
