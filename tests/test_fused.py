"""models.fused.FusedRNN against torch.nn: same outputs, final state and gradients (of every
parameter, the input and the initial state), with state_dicts loaded across."""
import pytest
import torch
from torch import nn

from models.core import make_core
from models.fused import FusedRNN
from models.lm import LanguageModel
from tests.helpers import layer

T, B, IN, H = 5, 3, 4, 6
NN = {"rnn": nn.RNN, "gru": nn.GRU}
CASES = [(mode, layers, bidi, "tanh") for mode in NN for layers in (1, 2) for bidi in (0, 1)]
CASES += [("rnn", layers, bidi, "relu") for layers in (1, 2) for bidi in (0, 1)]


def pair(mode, layers, bidi, nonlinearity="tanh", dropout=0.0):
    kwargs = dict(num_layers=layers, bidirectional=bool(bidi), dropout=dropout)
    ref = NN[mode](IN, H, **kwargs, **({"nonlinearity": nonlinearity} if mode == "rnn" else {}))
    fused = FusedRNN(mode, IN, H, nonlinearity=nonlinearity, **kwargs)
    fused.load_state_dict(ref.state_dict())
    return ref, fused


def run(model, mode, x, state, weights, inputs_grad=True):
    """Outputs, final state and the gradients of a random scalar loss of both."""
    x = x.clone().requires_grad_(inputs_grad)
    state = tuple(s.clone().requires_grad_(inputs_grad) for s in state)
    out, new = model(x, state[0])
    new = (new,)
    loss = (out * weights[0]).sum() + sum((s * w).sum() for s, w in zip(new, weights[1:]))
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    return out, new, grads, x.grad, [s.grad for s in state]


@pytest.mark.parametrize("mode,layers,bidi,nonlinearity", CASES)
def test_matches_torch_nn(mode, layers, bidi, nonlinearity, inputs_grad=True):
    torch.manual_seed(0)
    ref, fused = pair(mode, layers, bidi, nonlinearity)
    x = torch.randn(T, B, IN)
    state = [torch.randn(layers * (1 + bidi), B, H)]
    weights = [torch.randn(T, B, H * (1 + bidi))] + [torch.randn_like(s) for s in state]
    expected = run(ref, mode, x, state, weights, inputs_grad)
    got = run(fused, mode, x, state, weights, inputs_grad)
    torch.testing.assert_close(got, expected)
    assert set(got[2]) == set(expected[2]) and all(g is not None for g in got[2].values())


@pytest.mark.parametrize("mode", NN)
def test_matches_without_input_and_state_grads(mode):
    """The training loop's case (one-hot input, detached state): the Functions skip dx and
    dh0 there."""
    test_matches_torch_nn(mode, 2, 1, "tanh", inputs_grad=False)


@pytest.mark.parametrize("mode", NN)
def test_state_dict_loads_both_ways(mode):
    ref, fused = pair(mode, 2, 1)
    assert {k: v.shape for k, v in fused.state_dict().items()} == \
        {k: v.shape for k, v in ref.state_dict().items()}
    NN[mode](IN, H, num_layers=2, bidirectional=True).load_state_dict(fused.state_dict())


@pytest.mark.parametrize("mode", NN)
def test_dropout_eval_matches(mode):
    torch.manual_seed(0)
    ref, fused = pair(mode, 2, 0, dropout=0.5)
    ref.eval(), fused.eval()
    x, h = torch.randn(T, B, IN), torch.randn(2, B, H)
    torch.testing.assert_close(fused(x, h), ref(x, h))


@pytest.mark.parametrize("mode", NN)
def test_dropout_train_is_applied(mode):
    torch.manual_seed(0)
    _, fused = pair(mode, 2, 0, dropout=0.5)
    x, h = torch.randn(T, B, IN), torch.zeros(2, B, H)
    with torch.no_grad():
        assert not torch.equal(fused(x, h)[0], fused.eval()(x, h)[0])


@pytest.mark.parametrize("mode", NN)
def test_init_is_torch_nns_own(mode):
    """Same seed, same numbers: the fused layer draws torch.nn's U(-1/sqrt(H), 1/sqrt(H)) for
    every parameter, in torch.nn's order, so init=default means the same for both."""
    torch.manual_seed(0)
    ref = NN[mode](IN, H, num_layers=2, bidirectional=True)
    torch.manual_seed(0)
    fused = FusedRNN(mode, IN, H, num_layers=2, bidirectional=True)
    assert list(fused.state_dict()) == list(ref.state_dict())
    for name, p in ref.state_dict().items():
        assert torch.equal(fused.state_dict()[name], p), name


def test_no_fused_lstm():
    with pytest.raises(ValueError, match="use model=lstm"):
        FusedRNN("lstm", IN, H)


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_impl_fused_trains_as_torch_nn(cell):
    """model.impl=fused builds a language model around FusedRNN that trains as its torch.nn
    twin (model.impl=nn): same logits, and the same gradient for every parameter."""
    assert isinstance(make_core(layer(cell, impl="fused"), IN, H), FusedRNN)
    torch.manual_seed(0)
    model, twin = (LanguageModel(10, layer(cell, impl=i), H, num_layers=2)
                   for i in ("fused", "nn"))
    assert isinstance(model.core, FusedRNN) and isinstance(twin.core, NN[cell])
    twin.load_state_dict(model.state_dict())
    tokens, weights = torch.randint(10, (T, B)), torch.randn(T, B, 10)
    logits, grads = [], []
    for m in (model, twin):
        out, _ = m(tokens, m.begin_state(B))
        assert out.shape == (T, B, 10)
        (out * weights).sum().backward()  # a random scalar loss: every logit counts
        logits.append(out.detach())
        grads.append({n: p.grad for n, p in m.named_parameters()})
        assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
                   for g in grads[-1].values())
    torch.testing.assert_close(logits[0], logits[1])
    assert set(grads[0]) == set(grads[1])
    torch.testing.assert_close(grads[0], grads[1])
