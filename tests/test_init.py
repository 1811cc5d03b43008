"""models/init.py: the plain schemes fill every weight matrix and zero the biases; data=tatoeba's
xavier_uniform_d2l touches exactly what d2l 0.17.6's xavier_init_weights touches."""
import copy
import math

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from models import Seq2Seq, init_weights
from runner.tasks.translation import seq2seq
from tests.helpers import compose_config, layer


def d2l_xavier_init_weights(m):
    """d2l 0.17.6's, from train_seq2seq, verbatim but for `is` in place of `==`."""
    if type(m) is nn.Linear:
        nn.init.xavier_uniform_(m.weight)
    if type(m) is nn.GRU:
        for param in m._flat_weights_names:
            if "weight" in param:
                nn.init.xavier_uniform_(m._parameters[param])


def study_seq2seq(attention=False):
    """The study's preset on nn.GRU (data=tatoeba model=gru_nn), small vocabularies."""
    cfg = compose_config("data=tatoeba", "model=gru_nn",
                         f"model.attention={str(attention).lower()}")
    torch.manual_seed(0)
    return cfg, seq2seq(cfg.model, src_vocab_size=11, tgt_vocab_size=13)


@pytest.mark.parametrize("attention", [False, True])
def test_tatoeba_init_is_d2ls_xavier_init_weights(attention):
    cfg, fresh = study_seq2seq(attention)
    assert isinstance(fresh.encoder, nn.GRU) and isinstance(fresh.decoder, nn.GRU)
    ours, d2l = copy.deepcopy(fresh), copy.deepcopy(fresh)
    torch.manual_seed(1)
    instantiate(cfg.init)(ours)
    torch.manual_seed(1)
    d2l.apply(d2l_xavier_init_weights)
    # the same RNG state and the same visiting order: bit-identical tensors
    assert ours.state_dict().keys() == d2l.state_dict().keys()
    for name, value in d2l.state_dict().items():
        assert torch.equal(ours.state_dict()[name], value), name

    before = fresh.state_dict()
    linear = {f"{n}.weight" for n, m in ours.named_modules() if isinstance(m, nn.Linear)}
    recurrent = {f"{n}.{p}" for n, m in ours.named_modules() if isinstance(m, nn.GRU)
                 for p in m._flat_weights_names if "weight" in p}
    assert ("attn.W_q.weight" in linear) == attention and "output.weight" in linear
    assert len(recurrent) == 8  # weight_ih / weight_hh, 2 layers, encoder and decoder
    for name, value in ours.state_dict().items():
        if name in linear | recurrent:
            fan_out, fan_in = value.shape
            assert not torch.equal(value, before[name]), name
            assert value.abs().max() <= math.sqrt(6 / (fan_in + fan_out)), name
        else:  # embeddings and every bias: PyTorch's own values, untouched
            assert torch.equal(value, before[name]), name
    assert {n for n in before if "embedding" in n} == {"src_embedding.weight",
                                                       "tgt_embedding.weight"}


def test_plain_schemes_fill_embeddings_and_zero_biases():
    _, model = study_seq2seq()
    before = copy.deepcopy(model.state_dict())
    init_weights(model, "xavier_uniform")
    after = model.state_dict()
    assert not torch.equal(after["src_embedding.weight"], before["src_embedding.weight"])
    biases = [n for n in after if ".bias" in n or n.rsplit(".", 1)[-1].startswith("bias")]
    assert biases and all(not after[n].any() for n in biases)


def test_options_narrow_what_is_filled():
    _, model = study_seq2seq()
    before = copy.deepcopy(model.state_dict())
    init_weights(model, "normal", embeddings=False, std=0.5)  # biases zeroed, tables kept
    after = model.state_dict()
    assert torch.equal(after["tgt_embedding.weight"], before["tgt_embedding.weight"])
    assert not after["output.bias"].any()
    assert not torch.equal(after["output.weight"], before["output.weight"])


@pytest.mark.parametrize("kw, match", [
    ({"scheme": "xavier_uniform", "biases": "random"}, r"init.biases='random'.*\('zero', 'keep'\)"),
    ({"scheme": "xavier_uniform", "embeddings": "no"}, "init.embeddings='no'.*true or false"),
    ({"scheme": "default", "biases": "keep"}, "init.scheme=default .* takes no options"),
    ({"scheme": "xavier"}, "init.scheme='xavier' is not a scheme"),
])
def test_bad_options_name_the_value_and_the_choices(kw, match):
    with pytest.raises(ValueError, match=match):
        init_weights(Seq2Seq(5, 5, layer("gru"), 4), **kw)
