"""A task from outside the package (docs/extend-task.md), with a tracker from outside too: the
task's class and its data YAML in the user's own folder, found with --config-dir and
PYTHONPATH; no file of runner edited. The task tells whether a bit string holds more ones
than zeros; it declares its own metrics, which the trackers, result.json and the report use."""
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from runner.result import RESULT_FILE, validate_result
from tests.test_external_tracker import TRACKER, events
from tests.test_external_tracker import YAML as TRACKER_YAML

# The two files a task needs: docs/extend-task.md shows them.
TASK = '''"""data=bits: does a bit string hold more ones than zeros?"""
import torch
import torch.nn.functional as F
from torch import nn

from runner.tasks import Metric, Task


class Classifier(nn.Module):
    """Bits (T, B) -> embedding -> GRU -> its last output -> two classes (B, 2)."""

    def __init__(self, num_hiddens: int):
        super().__init__()
        self.embed, self.rnn = nn.Embedding(2, 8), nn.GRU(8, num_hiddens)
        self.out = nn.Linear(num_hiddens, 2)

    def forward(self, bits):
        out, _ = self.rnn(self.embed(bits))  # (T, B, H)
        return self.out(out[-1])


class BitsTask(Task):
    metrics = (Metric("train_loss", "minimize", "training cross-entropy", "loss"),
               Metric("val_accuracy", "maximize", "held-out accuracy", "val_acc"))
    train_metric, val_metric = "train_loss", "val_accuracy"

    def __init__(self, cfg, path=None, *, task, num_steps, batch_size, num_train, num_val):
        self.cfg, self.batch_size = cfg, batch_size
        self.steps_per_epoch = num_train // batch_size
        g = torch.Generator().manual_seed(1234)  # the same strings whatever the seed
        bits = torch.randint(0, 2, (num_train + num_val, num_steps), generator=g)
        labels = (2 * bits.sum(1) > num_steps).long()
        self.train = bits[:num_train], labels[:num_train]
        self.val = bits[num_train:], labels[num_train:]  # never trained on
        self.provenance = {"name": "bits", "strings": num_train + num_val, "length": num_steps}

    def new_model(self, device):
        self.generator, self.device = torch.Generator().manual_seed(self.cfg.seed), device
        return Classifier(self.cfg.model.num_hiddens)

    def train_batches(self):
        order = torch.randperm(len(self.train[1]), generator=self.generator)
        for i in range(self.steps_per_epoch):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.train[0][idx].T.to(self.device), self.train[1][idx].to(self.device)

    def loss(self, model, batch):
        bits, labels = batch
        return F.cross_entropy(model(bits), labels), len(labels)

    def train_score(self, mean_loss):
        return mean_loss

    def evaluate(self, model):
        bits, labels = self.val
        return (model(bits.T.to(self.device)).argmax(1).cpu() == labels).float().mean().item()

    def outputs(self, model, device):
        return {}, {}
'''
DATA_YAML = """# @package _global_
data:
  _target_: bits.BitsTask
  task: bits
  num_steps: 9
  batch_size: 16
  num_train: 128
  num_val: 64
objective:
  metric: val_accuracy
  direction: maximize
"""


@pytest.mark.slow  # the CLI in subprocesses
def test_a_task_and_a_tracker_from_the_users_folder_sweep_and_report(tmp_path):
    user = tmp_path / "user"
    for group, name, text in (("data", "bits", DATA_YAML), ("logger", "mytracker", TRACKER_YAML)):
        (user / "conf" / group).mkdir(parents=True, exist_ok=True)
        (user / "conf" / group / f"{name}.yaml").write_text(text)
    (user / "bits.py").write_text(TASK)
    (user / "mytracker.py").write_text(TRACKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(user), os.environ.get("PYTHONPATH")]))}
    sweep = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--config-dir", user / "conf", "-m", "data=bits",
         "model=gru", "model.num_hiddens=8,16", "repeats=2", "train.num_epochs=3",
         "train.eval_every=1", "optim.lr=0.5", "logger=mytracker", "quiet=true", "store=null",
         "threads=1", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "4 runs: 4 completed, 0 failed" in proc.stdout
    folders = sorted(p.parent for p in sweep.glob(f"*/{RESULT_FILE}"))
    assert len(folders) == 4
    for folder in folders:
        result = json.loads((folder / RESULT_FILE).read_text())
        validate_result(result)
        assert result["task"] == "bits" and result["dataset"]["name"] == "bits"
        curves, metrics = result["curves"], result["metrics"]
        assert set(curves) >= {"train_loss", "val_accuracy", "val_epoch"}
        assert "train_perplexity" not in curves and "val_perplexity" not in metrics
        assert metrics["val_accuracy"] == curves["val_accuracy"][-1]
        assert 0 <= metrics["val_accuracy"] <= 1
        assert metrics["best_val_accuracy"] == max(curves["val_accuracy"])  # maximised
        assert metrics["best_train_loss"] == min(curves["train_loss"])
        got = events(folder)  # the tracker: start, every epoch under the task's names, end
        assert [e["event"] for e in got] == ["start", "epoch", "epoch", "epoch", "end"]
        for e, epoch in zip(got[1:-1], curves["epoch"]):
            i = curves["epoch"].index(e["epoch"]) if e["epoch"] == epoch else None
            assert i is not None
            assert e["train_loss"] == curves["train_loss"][i]
            assert e["val_accuracy"] == curves["val_accuracy"][i]
    summary = pd.read_csv(sweep / "summary.csv")  # the report: a row per point, its metrics
    assert sorted(summary["model.num_hiddens"]) == [8, 16]
    assert list(summary["n"]) == [2, 2]
    assert {"train_loss_mean", "val_accuracy_mean"} <= set(summary.columns)
    runs = pd.read_csv(sweep / "runs.csv")
    by_folder = {r["path"]: r for _, r in runs.iterrows()}
    for folder in folders:
        result = json.loads((folder / RESULT_FILE).read_text())
        assert by_folder[folder.name]["val_accuracy"] == result["metrics"]["val_accuracy"]
