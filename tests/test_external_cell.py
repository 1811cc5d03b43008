"""A researcher's own recurrent cell, from outside the package: two files in their folder,
`conf/model/mycell.yaml` (its `_target_` naming the class) and `mycell.py` (the class), found
with --config-dir and PYTHONPATH. Nothing in runner/, models/ or conf/ is edited: the real CLI
trains it, sweeps it with repeats and reports it, and refuses a key its constructor does not
take. The two files are docs/extend-cell.md's example."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner.result import RESULT_FILE
from tests.helpers import tiny_overrides, write_corpus

ROOT = Path(__file__).resolve().parent.parent

MYCELL_YAML = """\
# An Elman cell with a learned gate between the old state and the new (mycell.py).
defaults:
  - base/recurrent@_here_   # the package's sizes and options every recurrent model shares
  - _self_
_target_: mycell.MyCell
cell: mycell                # the model's name in results, reports and folders
gate_bias: 1.0              # the gate's initial bias: > 0 keeps more of the old state
"""

MYCELL_PY = '''\
import torch
from torch import nn


class MyCell(nn.Module):
    """h_t = g * h_{t-1} + (1 - g) * tanh(W x_t + U h_{t-1} + b), g = sigmoid(V x_t + c).
    One layer, one way (no num_layers, no bidirectional argument: the network stacks it)."""

    def __init__(self, input_size: int, num_hiddens: int, gate_bias: float = 1.0):
        super().__init__()
        self.ih = nn.Linear(input_size, 2 * num_hiddens)  # candidate and gate, from x
        self.hh = nn.Linear(num_hiddens, num_hiddens, bias=False)
        with torch.no_grad():
            self.ih.bias[num_hiddens:].fill_(gate_bias)

    def forward(self, x, state):  # x (T, B, I), state (1, B, H) -> (T, B, H), (1, B, H)
        cand, gate = self.ih(x).chunk(2, dim=-1)  # (T, B, H) each, all steps at once
        gate, h, outputs = torch.sigmoid(gate), state[0], []
        for c_t, g_t in zip(cand.unbind(0), gate.unbind(0)):
            h = g_t * h + (1 - g_t) * torch.tanh(c_t + self.hh(h))
            outputs.append(h)
        return torch.stack(outputs), h.unsqueeze(0)
'''


@pytest.fixture
def user(tmp_path):
    """The user's folder: conf/model/mycell.yaml and mycell.py; and a tiny corpus."""
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "mycell.yaml").write_text(MYCELL_YAML)
    (tmp_path / "mycell.py").write_text(MYCELL_PY)
    (tmp_path / "corpora").mkdir()
    write_corpus(tmp_path / "corpora" / "tiny.txt")
    return tmp_path


def cli(user: Path, *args: str):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(user), str(ROOT)])}
    flags = [a for a in args if a == "-m"]  # before the overrides, for Hydra's argparse
    cmd = [sys.executable, "-m", "runner", *flags, "--config-dir", str(user / "conf"),
           "model=mycell", *(o for o in tiny_overrides(user / "corpora")
                             if not o.startswith(("model.num_hiddens=", "train.num_epochs="))),
           "model.num_hiddens=8", "train.num_epochs=2",
           *[a for a in args if a != "-m"]]
    return subprocess.run(cmd, cwd=user, text=True, capture_output=True, env=env, timeout=300)


@pytest.mark.slow  # the CLI in subprocesses: a run and a refusal (a sweep of a user's cell, task
# and tracker, with its report: tests/test_external_task.py)
def test_a_cell_from_outside_the_package_runs_and_is_checked(user):
    proc = cli(user, f"hydra.run.dir={user / 'run'}")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((user / "run" / RESULT_FILE).read_text())
    assert result["status"] == "completed"
    model = result["config"]["model"]
    assert (model["cell"], model["_target_"], model["gate_bias"]) == ("mycell", "mycell.MyCell",
                                                                     1.0)
    assert result["environment"]["impl"] is None  # one implementation
    for key in ("train_perplexity", "val_perplexity"):
        assert math.isfinite(result["metrics"][key]) and result["metrics"][key] > 1

    # the constructor's signature is the truth: a key MyCell does not take is bad input
    proc = cli(user, "+model.gate_bais=2", f"hydra.run.dir={user / 'refused'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ("model.gate_bais=2 is not a key of model=mycell: did you mean model.gate_bias?"
            in proc.stderr), proc.stderr
    assert not (user / "refused" / RESULT_FILE).exists()
    assert not (user / "refused" / ".hydra").exists()
