"""Every file of every config group composes, validates and instantiates."""
import pytest
import torch
from hydra.utils import instantiate

from models import LanguageModel
from runner.config import validate
from tests.conftest import CONF, compose_config

GROUPS = {g.name: sorted(p.stem for p in g.glob("*.yaml")) for g in CONF.iterdir()
          if g.is_dir()}
CHOICES = [(group, name) for group, names in sorted(GROUPS.items()) for name in names]


def test_groups_are_the_registry():
    assert {"model", "data", "init", "optim"} <= set(GROUPS)
    assert {"rnn", "lstm", "gru", "rnn_scratch", "lstm_scratch", "gru_scratch"} <= set(
        GROUPS["model"])
    assert set(GROUPS["init"]) >= {"default", "xavier_uniform", "xavier_normal",
                                   "kaiming_uniform", "kaiming_normal", "normal", "uniform",
                                   "orthogonal"}


@pytest.mark.parametrize("group,name", CHOICES)
def test_choice_composes_validates_and_instantiates(group, name):
    cfg = compose_config(f"{group}={name}", "model.num_hiddens=8")
    validate(cfg)
    model = instantiate(cfg.model, vocab_size=11)
    assert isinstance(model, LanguageModel)
    init = instantiate(cfg.init)
    assert init(model) is model
    optimizer = instantiate(cfg.optim)(params=model.parameters())
    assert isinstance(optimizer, torch.optim.Optimizer)
    assert optimizer.param_groups[0]["lr"] == cfg.optim.lr
    logits, _ = model(torch.zeros(3, 2, dtype=torch.long), model.begin_state(2))
    assert logits.shape == (3, 2, 11)


def test_defaults_are_the_study_baseline():
    cfg = compose_config()
    assert cfg.model.cell == "rnn" and cfg.model.num_hiddens == 512
    assert cfg.model.nonlinearity == "tanh" and cfg.model.embed_size is None
    assert (cfg.data.batch_size, cfg.data.num_steps, cfg.data.max_tokens) == (32, 35, 10000)
    assert cfg.data.sampling == "sequential" and cfg.data.token == "char"
    assert cfg.optim._target_ == "torch.optim.SGD" and cfg.optim.lr == 1.0
    assert cfg.train.num_epochs == 500 and cfg.train.grad_clip == 1.0
