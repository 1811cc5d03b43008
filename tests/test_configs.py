"""Every file of every config group composes, validates and instantiates."""
import pytest
import torch
from hydra.utils import instantiate

from models import EncoderRegressor, LanguageModel, Seq2Seq, TransformerLM, TransformerSeq2Seq
from runner.loggers import Tracker, tracker_class
from runner.run.validate import validate
from runner.tasks import build_task
from runner.tasks.language_model import language_model
from runner.tasks.translation import seq2seq
from tests.helpers import CONF, OPTUNA, compose_config, needs

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
    if (group, name) == ("hparams_search", "optuna"):  # Hydra's Optuna sweeper: an extra
        needs(OPTUNA, "optuna")
    cfg = compose_config(f"{group}={name}", "model.num_hiddens=16")
    for node in (cfg.get("logger") or {}).values():  # its package: an optional extra
        if package := tracker_class(node._target_).requires:
            needs(package)
    validate(cfg)
    for node in (cfg.get("logger") or {}).values():  # built from its options, not started
        assert isinstance(instantiate(node), Tracker)
    if cfg.data.task == "translation":
        model = seq2seq(cfg.model, src_vocab_size=11, tgt_vocab_size=13)
        assert isinstance(model, Seq2Seq | TransformerSeq2Seq)
    elif cfg.data.task == "regression":
        model = build_task(cfg).new_model(torch.device("cpu"))
        assert isinstance(model, EncoderRegressor)
    else:
        model = language_model(cfg.model, vocab_size=11)
        assert isinstance(model, LanguageModel | TransformerLM)
    init = instantiate(cfg.init)
    assert init(model) is model
    optimizer = instantiate(cfg.optim)(params=model.parameters())
    assert isinstance(optimizer, torch.optim.Optimizer)
    assert optimizer.param_groups[0]["lr"] == cfg.optim.lr
    tokens = torch.zeros(3, 2, dtype=torch.long)
    if cfg.data.task == "regression":  # (batch, length, 2 x dim) -> (batch, length, dim)
        assert model(torch.zeros(3, 2, 2 * cfg.data.dim)).shape == (3, 2, cfg.data.dim)
    elif cfg.data.task == "translation":
        logits = model(tokens, torch.tensor([3, 2]), tokens)
        assert logits.shape == (3, 2, 13)
    else:
        logits, _ = model(tokens, model.begin_state(2))
        assert logits.shape == (3, 2, 11)


MODEL_CLASSES = {("language_model", False): LanguageModel, ("translation", False): Seq2Seq,
                 ("language_model", True): TransformerLM, ("translation", True): TransformerSeq2Seq}


@pytest.mark.parametrize("data", ["timemachine", "tatoeba"])
@pytest.mark.parametrize("model", GROUPS["model"])
def test_every_model_builds_for_every_data_set(model, data):
    """The data set's task builds the class it needs around each model's cells, at the sizes
    conf/preset/<family>/<data>.yaml gives."""
    cfg = compose_config(f"model={model}", f"data={data}", "model.num_hiddens=16")
    validate(cfg)
    kind = MODEL_CLASSES[cfg.data.task, model == "transformer"]
    built = (seq2seq(cfg.model, 11, 13) if cfg.data.task == "translation"
             else language_model(cfg.model, 11))
    assert type(built) is kind
    cell, _, pinned = model.rpartition("_")  # gru_nn: gru's function, model.impl=nn
    if pinned in ("nn", "fused"):
        assert (cfg.model.cell, cfg.model.impl) == (cell, pinned)
    else:
        assert cfg.model.cell == model  # the name reports use


def test_transformer_brings_adam_and_warmup_and_yields_to_the_command_line():
    cfg = compose_config("model=transformer")
    assert cfg.optim._target_ == "torch.optim.Adam" and cfg.optim.lr == 0.001
    assert cfg.train.warmup == 0.01 and cfg.model.context == cfg.data.num_steps == 35
    cfg = compose_config("model=transformer", "optim=sgd", "optim.lr=0.1", "train.warmup=0")
    assert cfg.optim._target_ == "torch.optim.SGD" and cfg.optim.lr == 0.1
    assert cfg.train.warmup == 0
    mt = compose_config("model=transformer", "data=tatoeba")
    assert (mt.model.num_hiddens, mt.model.num_layers, mt.model.ffn_num_hiddens) == (32, 2, 64)
    assert mt.optim.lr == 0.005  # the data set's preset comes last
    assert compose_config("model=gru").optim._target_ == "torch.optim.SGD"


def test_tatoeba_is_the_studys_seq2seq_preset():
    cfg = compose_config("data=tatoeba", "model=gru")
    assert (cfg.model.embed_size, cfg.model.num_hiddens, cfg.model.num_layers) == (32, 32, 2)
    assert cfg.model.dropout == 0.1 and cfg.model.attention is False
    assert (cfg.data.batch_size, cfg.data.num_steps, cfg.data.num_examples) == (64, 10, 600)
    assert cfg.optim._target_ == "torch.optim.Adam" and cfg.optim.lr == 0.005
    assert cfg.train.num_epochs == 300 and cfg.train.grad_clip == 1.0
    assert cfg.init.scheme == "xavier_uniform"
    # command-line values still win over the preset
    assert compose_config("data=tatoeba", "model.num_hiddens=64").model.num_hiddens == 64


def test_defaults_are_the_study_baseline():
    cfg = compose_config()
    assert cfg.model.cell == "rnn" and cfg.model.num_hiddens == 512
    assert cfg.model.nonlinearity == "tanh" and cfg.model.embed_size is None
    assert (cfg.data.batch_size, cfg.data.num_steps, cfg.data.max_tokens) == (32, 35, 10000)
    assert cfg.data.sampling == "sequential" and cfg.data.token == "char"
    assert cfg.optim._target_ == "torch.optim.SGD" and cfg.optim.lr == 1.0
    assert cfg.train.num_epochs == 500 and cfg.train.grad_clip == 1.0
