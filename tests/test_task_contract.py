"""The task contract (runner/tasks/task.py) and the loop that owns the step: the epoch's figure
weighs each batch's mean loss by its units, as d2l's train_ch8 does (sum of l * n over sum of
n), checked against a hand-worked case where a mean of batch means would differ."""
import pytest
import torch
from torch import nn

from runner.run.metrics import best
from runner.tasks import LanguageModelTask, TranslationTask
from runner.tasks.loop import train_epoch
from runner.tasks.task import TOKENS_PER_SEC, Metric, Task


class Constant(Task):
    """Two batches of known mean losses 1 and 4, over 1 and 3 units."""
    metrics = (Metric("train_loss", "minimize", "training loss"),)
    train_metric, steps_per_epoch = "train_loss", 2

    def new_model(self, device):
        return nn.Linear(1, 1)

    def train_batches(self):
        return [(1.0, 1), (4.0, 3)]

    def loss(self, model, batch):
        mean, units = batch
        return model.weight.sum() * 0 + mean, units  # a graph to step on, the value fixed

    def train_score(self, mean_loss):
        return mean_loss

    def outputs(self, model, device):
        return {}, {}


def test_the_epoch_mean_weighs_each_batch_by_its_units():
    task, model = Constant(), nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    mean, units = train_epoch(model, optimizer, scheduler, task, grad_clip=1.0)
    assert units == 4
    assert float(mean) == pytest.approx((1 * 1 + 4 * 3) / 4)  # 3.25; batch means: 2.5
    assert scheduler.last_epoch == 2  # one optimizer step a batch


def test_declared_metrics_and_their_bests():
    assert LanguageModelTask.metric("val_perplexity").direction == "minimize"
    assert LanguageModelTask.metric("best_val_perplexity").direction == "minimize"
    assert LanguageModelTask.metric("tokens_per_sec") == TOKENS_PER_SEC
    assert LanguageModelTask.metric("bleu") is None  # translation's, not the language model's
    assert TranslationTask.metric("bleu").direction == "maximize"
    accuracy = Metric("val_accuracy", "maximize", "held-out accuracy")
    assert best(accuracy, [0.5, 0.9, 0.7]) == 0.9
    assert best(LanguageModelTask.metric("train_perplexity"), [9.0, None, 3.0]) == 3.0
    with pytest.raises(ValueError, match="direction='up' must be one of minimize, maximize"):
        Metric("x", "up", "x")
