"""A task, a cell and a tracker from outside the package (docs/extend-task.md,
docs/extend-cell.md, docs/extend-tracker.md): each a class and a YAML in the user's own
folder, found with --config-dir and PYTHONPATH; no file of runner edited. The task tells
whether a bit string holds more ones than zeros, with the user's cell in runner's network; it
declares its own metrics, which the trackers, result.json and the report use."""
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from runner.result import RESULT_FILE, validate_result
from tests.test_external_cell import MYCELL_PY, MYCELL_YAML
from tests.test_external_tracker import TRACKER, events
from tests.test_external_tracker import YAML as TRACKER_YAML

# The two files a task needs: docs/extend-task.md shows them.
TASK = '''"""data=bits: does a bit string hold more ones than zeros?"""
import torch
import torch.nn.functional as F

from models import LanguageModel
from runner.tasks import Metric, Task
from runner.tasks.build import recurrent_keys, recurrent_network


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

    @staticmethod
    def model_keys(model):  # conf/model/'s keys the network takes: any other is refused
        return recurrent_keys(LanguageModel, ("vocab_size",), model)

    def new_model(self, device):
        """The configured cells in runner's network over the two symbols 0 and 1: the last
        step's two scores are the classes' (fewer ones, more ones)."""
        self.generator, self.device = torch.Generator().manual_seed(self.cfg.seed), device
        return recurrent_network(LanguageModel, self.cfg.model, device, vocab_size=2)

    def scores(self, model, bits):  # (T, B) -> (B, 2)
        logits, _ = model(bits, model.begin_state(bits.shape[1], bits.device))
        return logits[-1]

    def train_batches(self):
        order = torch.randperm(len(self.train[1]), generator=self.generator)
        for i in range(self.steps_per_epoch):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.train[0][idx].T.to(self.device), self.train[1][idx].to(self.device)

    def loss(self, model, batch):
        bits, labels = batch
        return F.cross_entropy(self.scores(model, bits), labels), len(labels)

    def train_score(self, mean_loss):
        return mean_loss

    def evaluate(self, model):
        bits, labels = self.val
        guess = self.scores(model, bits.T.to(self.device)).argmax(1).cpu()
        return (guess == labels).float().mean().item()

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
def test_a_task_a_cell_and_a_tracker_from_the_users_folder_sweep_and_report(tmp_path):
    user = tmp_path / "user"
    # two files each: conf/<group>/<name>.yaml, whose _target_ is <name>.<Class>, and <name>.py
    for group, name, yaml, module in (("data", "bits", DATA_YAML, TASK),
                                      ("model", "mycell", MYCELL_YAML, MYCELL_PY),
                                      ("logger", "mytracker", TRACKER_YAML, TRACKER)):
        (user / "conf" / group).mkdir(parents=True, exist_ok=True)
        (user / "conf" / group / f"{name}.yaml").write_text(yaml)
        (user / f"{name}.py").write_text(module)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(user), os.environ.get("PYTHONPATH")]))}
    sweep = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--config-dir", user / "conf", "-m", "data=bits",
         "model=mycell", "model.num_hiddens=8,16", "repeats=2", "train.num_epochs=3",
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
        assert result["config"]["model"]["_target_"] == "mycell.MyCell"
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
