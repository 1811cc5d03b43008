"""Held-out perplexity scores every held-out target once, whatever batch_size and num_steps
are: runner/tasks/language_model.py's evaluate against a plain token-by-token loop written here."""
import math

import pytest
import torch

from runner.run.execute import model_and_optimizer, run
from runner.tasks import build_task
from runner.tasks.loop import History, fit, make_scheduler

TRANSFORMER = ["model=transformer", "model.num_hiddens=16", "model.num_heads=2",
               "model.ffn_num_hiddens=32", "model.num_layers=2"]


def token_by_token_perplexity(model, ids: list[int]) -> tuple[float, int]:
    """Feed the stream one token at a time from a fresh state, carrying the state; the mean of
    -log p(next token) over every target; and how many targets that was."""
    state, nll = model.begin_state(1), []  # float32 model, float64 sums
    for current, target in zip(ids[:-1], ids[1:]):
        logits, state = model(torch.tensor([[current]]), state)
        nll.append(-torch.log_softmax(logits[0, 0].double(), dim=0)[target].item())
    return math.exp(sum(nll) / len(nll)), len(nll)


def trained(cfg):
    """A task and its model after a few epochs: a model whose per-token losses differ, so
    that leaving tokens out would change the mean."""
    task = build_task(cfg)
    model, optimizer = model_and_optimizer(cfg, task, torch.device("cpu"))
    scheduler = make_scheduler(optimizer, cfg, task.steps_per_epoch)
    fit(model, optimizer, scheduler, task, cfg, torch.device("cpu"), History())
    return task, model.eval()


@pytest.mark.parametrize("batch_size, num_steps", [(16, 10), (32, 10), (256, 10), (8, 15),
                                                   (8, 40)])
@pytest.mark.parametrize("model", [["model=rnn"], ["model=lstm"], TRANSFORMER],
                         ids=["rnn", "lstm", "transformer"])
def test_evaluate_scores_every_target_as_one_stream(tiny_cfg, model, batch_size, num_steps):
    cfg = tiny_cfg(*model, f"data.batch_size={batch_size}", f"data.num_steps={num_steps}",
                   "train.num_epochs=2", "optim=adam", "optim.lr=0.01")
    task, model = trained(cfg)
    with torch.no_grad():
        ours = task.evaluate(model)
        reference, targets = token_by_token_perplexity(model, task.data.val.tolist())
    assert targets == task.val_tokens_scored == 599  # data.val_tokens=600 in tiny_overrides
    assert ours == pytest.approx(reference, rel=1e-5)


def test_transformer_reads_with_its_own_context(tiny_cfg):
    """A window model's held-out score depends on model.context (what it is configured to
    carry), not on num_steps: the same weights read with context 3 and 10 differ."""
    task, model = trained(tiny_cfg(*TRANSFORMER, "model.context=10"))
    with torch.no_grad():
        wide = task.evaluate(model)
        model.context = 3
        narrow = task.evaluate(model)
        assert narrow == pytest.approx(token_by_token_perplexity(model, task.data.val.tolist())[0],
                                       rel=1e-5)
    assert narrow != pytest.approx(wide, rel=1e-6)


def test_result_records_the_scored_targets(tiny_cfg, tmp_path):
    result = run(tiny_cfg("train.num_epochs=1"), tmp_path)
    assert result["metrics"]["val_tokens_scored"] == result["dataset"]["val_tokens"] - 1 == 599
