"""models/: the core factory, the language model and the initialisation schemes. d2l's
from-scratch cells are checked against d2l's own code in tests/test_scratch.py, the fused cells
against torch.nn in tests/test_fused.py."""
import re

import pytest
import torch
from torch import nn

from models import SCHEMES, LanguageModel, detach, generate, init_weights, make_core
from models import num_params as count_params
from models.core import has_memory_cell, takes
from models.scratch import ScratchRNN
from tests.helpers import layer

# the recurrent models, by conf/model/'s names (the nn and fused pins aside: tests/test_fused.py)
CELLS = ("rnn", "lstm", "gru", "rnn_scratch", "lstm_scratch", "gru_scratch", "sru", "onlstm")
ONE_WAY = tuple(cell for cell in CELLS if not takes(layer(cell), "bidirectional"))

# --------------------------------------------------------------------------------------------
# make_core


def test_make_core_types():
    assert type(make_core(layer("gru"), 3, 4)) is nn.GRU
    assert type(make_core(layer("lstm"), 3, 4, num_layers=2)) is nn.LSTM
    rnn = make_core(layer("rnn", nonlinearity="relu"), 3, 4)
    assert type(rnn) is nn.RNN and rnn.nonlinearity == "relu"
    core = make_core(layer("lstm_scratch"), 3, 4, num_layers=2, bidirectional=True)
    assert isinstance(core, ScratchRNN)
    assert (core.mode, core.num_layers, core.num_directions) == ("lstm", 2, 2)
    # d2l's layout: W_x. (inputs, H), W_h. (H, H), b_. (H,) per gate; layer 2 reads 2 x H
    assert core.weight_xi_l1_reverse.shape == (8, 4)
    assert core.weight_hc_l0.shape == (4, 4) and core.bias_o_l1.shape == (4,)


def test_make_core_names_the_options_a_layer_does_not_take():
    with pytest.raises(ValueError) as e:
        make_core(layer("sru", chunk_size=4), 3, 4, name="sru")
    assert re.match(r"model\.chunk_size=4 is not a key of model=sru, whose layer SRU takes no "
                    r"options", str(e.value))


@pytest.mark.parametrize("cell", ["lstm", "gru", "lstm_scratch", "gru_scratch"])
def test_make_core_relu_only_for_rnn(cell):
    with pytest.raises(ValueError, match="relu"):
        make_core(layer(cell, nonlinearity="relu"), 3, 4)
    with pytest.raises(ValueError, match="sigmoid"):
        make_core(layer("rnn", nonlinearity="sigmoid"), 3, 4)


# --------------------------------------------------------------------------------------------
# LanguageModel

V, H, T, B = 7, 5, 6, 3


def _options(cell):
    return {"chunk_size": 1} if cell == "onlstm" else {}  # 5 chunks; 1 chunk never writes c


@pytest.mark.parametrize("embed_size", [None, 4])
@pytest.mark.parametrize("cell", CELLS)
def test_lm_logits_and_state_shapes(cell, embed_size):
    torch.manual_seed(0)
    for layers, bidir in ((1, False), (2, False), (2, True))[:2 if cell in ONE_WAY else 3]:
        model = LanguageModel(V, layer(cell, **_options(cell)), H, num_layers=layers,
                              bidirectional=bidir, embed_size=embed_size)
        D = 2 if bidir else 1
        state = model.begin_state(B)
        if has_memory_cell(layer(cell)):
            assert isinstance(state, tuple) and len(state) == 2
            assert all(s.shape == (layers * D, B, H) for s in state)
        else:
            assert torch.is_tensor(state) and state.shape == (layers * D, B, H)
            state = (state,)
        assert all(not s.any() for s in state)
        x = torch.randint(0, V, (T, B))
        logits, new_state = model(x, model.begin_state(B))
        assert logits.shape == (T, B, V)
        new_state = new_state if isinstance(new_state, tuple) else (new_state,)
        assert [s.shape for s in new_state] == [s.shape for s in state]
        assert model.sees_future is bidir
        assert hasattr(model, "embedding") is bool(embed_size)


def test_one_hot_input_is_identity_lookup():
    torch.manual_seed(0)
    model = LanguageModel(V, layer("rnn"), H)
    x = torch.randint(0, V, (T, B))
    logits, _ = model(x, model.begin_state(B))
    one_hot = nn.functional.one_hot(x, V).float()
    out, _ = model.core(one_hot, model.begin_state(B))
    torch.testing.assert_close(logits, model.output(out))
    assert "one_hot" not in model.state_dict()  # a fixed buffer, not saved, not a parameter


def test_gru_one_hot_param_count_closed_form():
    for vocab, hidden in ((28, 32), (7, 5), (100, 256)):
        model = LanguageModel(vocab, layer("gru"), hidden)
        expected = 3 * (hidden * hidden + hidden * vocab + 2 * hidden) + (hidden * vocab + vocab)
        assert count_params(model) == expected
        assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize("cell", ["rnn", "lstm", "lstm_scratch", "sru", "onlstm"])
def test_detach_cuts_history_keeps_values(cell):
    torch.manual_seed(0)
    model = LanguageModel(V, layer(cell, **_options(cell)), H)
    _, state = model(torch.randint(0, V, (T, B)), model.begin_state(B))
    parts = state if isinstance(state, tuple) else (state,)
    assert all(s.grad_fn is not None for s in parts)
    cut = detach(state)
    assert type(cut) is type(state)
    cut_parts = cut if isinstance(cut, tuple) else (cut,)
    assert len(cut_parts) == len(parts)
    for c, s in zip(cut_parts, parts):
        assert c.grad_fn is None and not c.requires_grad
        assert torch.equal(c, s)


@pytest.mark.parametrize("cell", ["gru", "lstm_scratch", "sru", "onlstm"])
def test_generate(cell):
    torch.manual_seed(0)
    model = LanguageModel(V, layer(cell, **_options(cell)), H, embed_size=3)
    prefix = [1, 4, 2]
    model.train()
    out = generate(model, prefix, 8, "cpu")
    assert model.training
    assert len(out) == 8 and all(isinstance(i, int) and 0 <= i < V for i in out)
    model.eval()
    assert generate(model, prefix, 8, "cpu") == out
    assert not model.training
    assert generate(model, prefix, 0, "cpu") == []
    # greedy: step by step, each prediction is the argmax given everything before it
    with torch.no_grad():
        seq = list(prefix)
        for i in range(8):
            logits, _ = model(torch.tensor(seq).reshape(-1, 1), model.begin_state(1))
            assert int(logits[-1, 0].argmax()) == out[i]
            seq.append(out[i])


@pytest.mark.parametrize("cell", CELLS)
def test_causality(cell):
    torch.manual_seed(0)
    t = 3
    x = torch.randint(0, V, (T, B))
    x2 = x.clone()
    x2[t] = (x[t] + 1) % V
    for bidir in (False, True)[:1 if cell in ONE_WAY else 2]:
        model = LanguageModel(V, layer(cell, **_options(cell)), H, num_layers=2,
                              bidirectional=bidir, embed_size=4)
        with torch.no_grad():
            a, _ = model(x, model.begin_state(B))
            b, _ = model(x2, model.begin_state(B))
        assert not torch.allclose(a[t], b[t])
        if bidir:  # reads the future: earlier logits change (the misuse the study shows)
            assert model.sees_future
            assert not torch.allclose(a[:t], b[:t])
        else:
            assert not model.sees_future
            torch.testing.assert_close(a[:t], b[:t], rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# Initialisation


def _lm():
    torch.manual_seed(0)
    return LanguageModel(11, layer("lstm"), 6, num_layers=2, embed_size=5)


@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_init_schemes_touch_weights_and_zero_biases(scheme, bidir):
    torch.manual_seed(0)
    cell = "gru_scratch" if bidir else "lstm"
    model = LanguageModel(11, layer(cell), 6, num_layers=2, bidirectional=bidir, embed_size=5)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert any("embedding" in n for n in before) and any("output" in n for n in before)
    assert init_weights(model, scheme) is model
    after = dict(model.named_parameters())
    biases = [n for n in before if n.rsplit(".", 1)[-1].startswith("bias")]
    weights = [n for n, p in before.items() if p.dim() >= 2]
    # 2 layers x D directions x (lstm: W_ih, W_hh, b_ih, b_hh; gru_scratch, as d2l: W_x., W_h.,
    # b_. for each of z, r, h), then embedding and output
    D, (w, b) = (2, (6, 3)) if bidir else (1, (2, 2))
    assert len(biases) == 2 * D * b + 1 and len(weights) == 2 * D * w + 2
    if scheme == "default":  # each model's own init: torch.nn's U(+-1/sqrt(H)), d2l's zeros
        for n in before:
            assert torch.equal(after[n], before[n])
        assert all((before[n].abs().sum() > 0) != bidir for n in biases)
    else:
        for n in weights:
            assert not torch.equal(after[n], before[n]), n
        for n in biases:
            assert not after[n].any(), n
    assert set(before) == set(weights) | set(biases)


def test_init_normal_std():
    torch.manual_seed(0)
    model = LanguageModel(300, layer("rnn"), 256)
    init_weights(model, "normal", std=0.01)
    big = [p for p in model.parameters() if p.dim() >= 2 and p.numel() >= 50_000]
    assert len(big) >= 2
    for p in big:
        assert abs(p.std().item() - 0.01) < 0.001
        assert abs(p.mean().item()) < 0.001


def test_init_uniform_range():
    torch.manual_seed(0)
    model = LanguageModel(40, layer("gru"), 32, embed_size=16)
    init_weights(model, "uniform", a=0.05)
    for p in model.parameters():
        if p.dim() >= 2:
            assert p.min() >= -0.05 and p.max() <= 0.05
            assert p.min() < -0.04 and p.max() > 0.04  # really U(-a, a), not U(0, a)
    init_weights(model, "uniform", a=0.2, b=0.3)  # both bounds: passed through
    for p in model.parameters():
        if p.dim() >= 2:
            assert p.min() >= 0.2 and p.max() <= 0.3


def test_init_orthogonal():
    torch.manual_seed(0)
    model = LanguageModel(10, layer("rnn"), 16)
    init_weights(model, "orthogonal")
    w = model.core.weight_hh_l0
    assert w.shape == (16, 16)
    torch.testing.assert_close(w @ w.T, torch.eye(16), atol=1e-5, rtol=0)
    w_ih = model.core.weight_ih_l0  # (16, 10): orthonormal columns
    torch.testing.assert_close(w_ih.T @ w_ih, torch.eye(10), atol=1e-5, rtol=0)


def test_init_unknown_scheme_and_default_with_params():
    with pytest.raises(ValueError, match=r"init\.scheme='lecun'") as e:
        init_weights(_lm(), "lecun")
    for name in SCHEMES:
        assert repr(name) in str(e.value)
    with pytest.raises(ValueError, match="default"):
        init_weights(_lm(), "default", std=0.1)
