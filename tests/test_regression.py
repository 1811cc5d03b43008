"""The companion note's synthetic regression (data=synthetic): the runner's run is the note's
program (tests/note_regression.py) bit for bit, its eval-mode figure and the "trained" line are
computed a second way here, and a stopped run resumes to the same numbers."""
import json
import os
import signal
import statistics

import pytest
import torch

import runner.tasks.regression as regression
from runner.errors import ConfigError
from runner.result import RESULT_FILE, validate_result
from runner.run import run
from runner.run.interrupt import Interrupted
from runner.run.validate import validate
from runner.tasks import build_task
from tests.helpers import TINY_REGRESSION, compose_config
from tests.note_regression import linear_warmup, note_program

SIZES = {"dim": 4, "d_model": 8, "heads": 2, "ffn": 16, "layers": 2}
TIMING = {"tokens_per_sec", "tokens_per_sec_epoch_median", "train_seconds",
          "train_cpu_seconds", "wall_seconds", "peak_memory_bytes", "peak_memory_kind"}


def tiny(*extra):
    return compose_config(*TINY_REGRESSION, "threads=1", *extra)


@pytest.mark.parametrize("seed, warmup, extra", [
    (0, 0.0, []),
    (3, 0.5, ["init=xavier_normal"]),  # 3 of 6 steps warmed up; an init after the build
])
def test_a_run_is_the_note_program_bit_for_bit(tmp_path, seed, warmup, extra):
    result = run(tiny(f"seed={seed}", f"train.warmup={warmup}", *extra), tmp_path / "run")
    validate_result(json.loads((tmp_path / "run" / RESULT_FILE).read_text()))
    init = None
    if extra:
        def init(model):  # the runner's xavier_normal: weight matrices; biases zeroed
            for name, p in model.named_parameters():  # LayerNorm's weights kept
                if p.dim() >= 2:
                    torch.nn.init.xavier_normal_(p)
                elif name.rsplit(".", 1)[-1].startswith("bias"):
                    torch.nn.init.zeros_(p)
    losses, avg = note_program(seed=seed, batch=16, length=10, steps=6, warmup_steps=3 if
                               warmup else 0, eval_steps=4, init=init, **SIZES)
    assert result["status"] == "completed"
    assert result["metrics"]["mse"] == avg  # exactly: same draws, same float64 sum
    # each epoch's figure: the mean of its 3 steps' losses (summed on the device in float32)
    windows = [statistics.fmean(losses[i:i + 3]) for i in (0, 3)]
    assert result["curves"]["train_mse"] == pytest.approx(windows, rel=1e-6)
    assert result["metrics"]["train_mse"] == result["curves"]["train_mse"][-1]
    assert result["metrics"]["eval_batches"] == 4 and result["curves"]["epoch"] == [1, 2]
    assert result["model_class"] == "models.EncoderRegressor"
    assert result["dataset"]["shape"] == [16, 10, 4] and result["dataset"]["sha1"] is None
    assert "train_perplexity" not in result["curves"]


def test_the_note_program_warms_up_as_the_runner():
    """Issue 26: the lr of each update under note=lr1e-3_warmup (10 of 1,000 steps), from the
    runner's scheduler, is the transcription's: 1/10 of the lr first, the full lr from the
    10th update (0-based 9) on."""
    from runner.tasks.loop import make_scheduler
    cfg = compose_config("data=synthetic", "note=lr1e-3_warmup")
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optim.lr)
    scheduler = make_scheduler(optimizer, cfg, cfg.data.steps_per_epoch)
    lrs = []
    for _ in range(12):
        lrs.append(optimizer.param_groups[0]["lr"])  # the lr this update runs at
        optimizer.step()
        scheduler.step()
    assert lrs == [1e-3 * linear_warmup(i, 10) for i in range(12)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[8] == pytest.approx(9e-4)
    assert lrs[9:] == [1e-3] * 3


@pytest.mark.slow
def test_the_note_sized_warm_up_run_is_the_note_program_bit_for_bit(tmp_path):
    """The note's sizes (6 layers, d_model 256, batch 16 x 10 x 50), lr 1e-3, a 10-step
    warm-up, 12 updates: the runner's MSE is the transcription's to the last bit, so the
    warm-up row's 10-seed comparison (bench/note_warmup.py) compares one program with itself
    unless something outside the code (threads, the machine) differs."""
    result = run(compose_config("data=synthetic", "note=lr1e-3_warmup", "train.warmup=0.84",
                                "train.num_epochs=2", "data.steps_per_epoch=6",  # 10 of 12
                                "data.eval_batches=2", "threads=1", "quiet=true",
                                "store=null"), tmp_path / "run")
    losses, avg = note_program(seed=0, steps=12, warmup_steps=10, eval_steps=2)
    assert result["metrics"]["mse"] == avg
    windows = [statistics.fmean(losses[i:i + 6]) for i in (0, 6)]
    assert result["curves"]["train_mse"] == pytest.approx(windows, rel=1e-6)
    assert result["curves"]["lr"] == pytest.approx([6e-4, 1e-3])  # each epoch's last update


def test_the_same_seed_gives_the_same_mse_and_another_seed_another(tmp_path):
    a, b = (run(tiny("seed=1"), tmp_path / name)["metrics"] for name in ("a", "b"))
    c = run(tiny("seed=2"), tmp_path / "c")["metrics"]
    assert (a["mse"], a["eval_mode_mse"]) == (b["mse"], b["eval_mode_mse"])
    assert a["mse"] != c["mse"]


def test_eval_mode_mse_is_the_same_batches_without_dropout():
    """Both figures recomputed by hand: the batches replayed from the same RNG state, each
    scored once with dropout and once without."""
    cfg = tiny("data.eval_batches=5", "model.dropout=0.5")
    task = build_task(cfg)
    torch.manual_seed(7)
    model = task.new_model(torch.device("cpu"))
    state = torch.get_rng_state()
    _, metrics = task.outputs(model, torch.device("cpu"))
    assert model.training  # left in train mode, as training found it
    torch.set_rng_state(state)
    train_mode, eval_mode = [], []
    with torch.no_grad():
        for _ in range(5):
            a, b = torch.randn(16, 10, 4), torch.randn(16, 10, 4)
            x, y = torch.cat([a, b], -1), (a + 1) ** 2 + b
            model.train()
            train_mode.append(float(((model(x) - y) ** 2).mean()) / 2)
            model.eval()
            eval_mode.append(float(((model(x) - y) ** 2).mean()) / 2)
    assert metrics["mse"] == pytest.approx(statistics.fmean(train_mode), rel=1e-6)
    assert metrics["eval_mode_mse"] == pytest.approx(statistics.fmean(eval_mode), rel=1e-6)
    assert metrics["mse"] != metrics["eval_mode_mse"]  # dropout 0.5 changes the output


def test_the_trained_line_and_the_stuck_level_measured_on_the_task():
    """runner/report/note.py's 1.0 and 3.5, by Monte Carlo: the note's loss of the mean
    prediction, and of the least-squares fit linear in (a, b)."""
    from runner.report.note import CONSTANT_MSE, TRAINED_MSE
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(400_000, generator=g, dtype=torch.float64), torch.randn(
        400_000, generator=g, dtype=torch.float64)
    y = (a + 1) ** 2 + b
    assert float(0.5 * ((y - y.mean()) ** 2).mean()) == pytest.approx(CONSTANT_MSE, rel=0.02)
    X = torch.stack([a, b, torch.ones_like(a)], 1)
    fit = torch.linalg.lstsq(X, y[:, None]).solution
    assert float(0.5 * ((X @ fit)[:, 0] - y).pow(2).mean()) == pytest.approx(TRAINED_MSE,
                                                                              rel=0.02)


@pytest.mark.parametrize("overrides, line", [
    (["data=synthetic", "model=rnn"], "model.cell='rnn' is not allowed: it must be transformer"),
    ([*TINY_REGRESSION, "data.dim=0"], "data.dim=0 is not allowed: it must be an integer >= 1"),
    ([*TINY_REGRESSION, "data.steps_per_epoch=-1"], "data.steps_per_epoch=-1 is not allowed"),
    ([*TINY_REGRESSION, "data.eval_batches=0.5"], "data.eval_batches=0.5 is not allowed"),
    ([*TINY_REGRESSION, "model.num_heads=3"], "model.num_heads=3 is not allowed: it must divide"),
    ([*TINY_REGRESSION, "model.batch_first=maybe"], "model.batch_first='maybe' is not allowed"),
])
def test_bad_values_are_refused_before_work(overrides, line):
    with pytest.raises(ConfigError, match="invalid config") as e:
        validate(compose_config(*overrides))
    assert line in str(e.value)


def test_the_note_preset_is_the_note_program():
    cfg = compose_config("data=synthetic")
    assert (cfg.data.batch_size, cfg.data.num_steps, cfg.data.dim) == (16, 10, 50)
    assert cfg.train.num_epochs * cfg.data.steps_per_epoch == 1000
    assert cfg.data.eval_batches == 1000 and cfg.train.warmup == 0 and cfg.train.grad_clip is None
    m = cfg.model
    assert (m.num_hiddens, m.num_heads, m.ffn_num_hiddens, m.num_layers, m.dropout) == \
        (256, 4, 2048, 6, 0.1)
    assert not m.norm_first and not m.batch_first
    assert cfg.optim._target_ == "torch.optim.Adam" and cfg.optim.lr == 0.001
    assert "fused" not in cfg.optim  # torch's default Adam: bit-identical to the note's
    validate(cfg)


def test_a_stopped_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    settings = ["train.num_epochs=4", "train.checkpoint_every=1", "train.warmup=0.25"]
    clean = run(tiny(*settings), tmp_path / "clean")
    real, calls = regression.RegressionTask.train_batches, []

    def stopped_in_epoch_3(self, *args):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, *args)

    with monkeypatch.context() as m:
        m.setattr(regression.RegressionTask, "train_batches", stopped_in_epoch_3)
        with pytest.raises(Interrupted):
            run(tiny(*settings), tmp_path / "stopped")
    resumed = run(tiny(*settings), tmp_path / "stopped")
    assert resumed["resumed_from_epoch"] == [2]

    def outcome(r):
        return ({k: v for k, v in r["metrics"].items() if k not in TIMING},
                {k: v for k, v in r["curves"].items() if k not in TIMING})
    assert outcome(resumed) == outcome(clean)


@pytest.mark.parametrize("warmup, steps_per_epoch, warned", [
    (0.01, 3, True),     # 0.06 steps: none
    (0.25, 2, True),     # 1 step: the full lr from the first step
    (0.5, 2, False),     # 2 steps: a real warm-up
    (0.0, 3, False),     # none asked
])
def test_a_warm_up_of_at_most_one_step_is_said(caplog, warmup, steps_per_epoch, warned):
    from runner.tasks.loop import make_scheduler
    cfg = tiny(f"train.warmup={warmup}")
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with caplog.at_level("WARNING", logger="runner.tasks.loop"):
        make_scheduler(optimizer, cfg, steps_per_epoch)
    assert ("no warm-up at all" in caplog.text) == warned
