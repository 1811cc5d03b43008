"""models/stack.py and the new cells in models/core.py: plain stacks equal torch.nn's own,
residual and dense connections do what they say, parameter counts match closed forms, and
every new cell trains inside the language model."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models import LanguageModel, Seq2Seq, make_core
from models import num_params as count
from models.stack import Stack
from tests.helpers import layer


def _gru_count(n, m):
    """PyTorch's GRU layer, input size m, hidden size n: 3(n^2 + nm + 2n) (two biases)."""
    return 3 * (n * n + n * m + 2 * n)


@pytest.mark.parametrize("mode,bidir", [("gru", False), ("lstm", False), ("gru", True)])
def test_plain_stack_equals_torch_nn_stack(mode, bidir):
    """skip=none through Stack (one torch.nn layer each) computes what torch.nn's own
    num_layers=3 module computes, state layout included."""
    torch.manual_seed(0)
    n_in, H, L, T, B = 5, 6, 3, 4, 2
    D = 2 if bidir else 1
    ref = {"gru": nn.GRU, "lstm": nn.LSTM}[mode](n_in, H, num_layers=L, bidirectional=bidir)
    width = D * H
    layers = [type(ref)(n_in if k == 0 else width, H, bidirectional=bidir) for k in range(L)]
    for k, one in enumerate(layers):
        for name, p in one.named_parameters():
            p.data.copy_(getattr(ref, name.replace("_l0", f"_l{k}")))
    stack = Stack(layers, "none", 0.0, D)
    x = torch.randn(T, B, n_in)
    h0 = torch.randn(L * D, B, H)
    state = (h0, torch.randn_like(h0)) if mode == "lstm" else h0
    (out_ref, s_ref), (out, s) = ref(x, state), stack(x, state)
    torch.testing.assert_close(out, out_ref)
    for a, b in zip(s if mode == "lstm" else (s,), s_ref if mode == "lstm" else (s_ref,)):
        torch.testing.assert_close(a, b)


def test_residual_adds_each_layers_input_from_the_second_on():
    torch.manual_seed(0)
    n_in, H, T, B = 3, 4, 5, 2
    layers = [nn.GRU(n_in, H), nn.GRU(H, H), nn.GRU(H, H)]
    stack = Stack(layers, "residual", 0.0, 1)
    x, h0 = torch.randn(T, B, n_in), torch.randn(3, B, H)
    out, state = stack(x, h0)
    y1, s1 = layers[0](x, h0[0:1])  # no shortcut: n_in != H
    y2, s2 = layers[1](y1, h0[1:2])
    y3, s3 = layers[2](y1 + y2, h0[2:3])
    torch.testing.assert_close(out, y1 + y2 + y3)
    torch.testing.assert_close(state, torch.cat([s1, s2, s3]))


def test_dense_layers_read_everything_below_and_the_head_reads_every_layer():
    torch.manual_seed(0)
    n_in, H, T, B = 3, 4, 5, 2
    layers = [nn.GRU(n_in, H), nn.GRU(n_in + H, H), nn.GRU(n_in + 2 * H, H)]
    stack = Stack(layers, "dense", 0.0, 1)
    x, h0 = torch.randn(T, B, n_in), torch.zeros(3, B, H)
    out, _ = stack(x, h0)
    y1, _ = layers[0](x, h0[0:1])
    y2, _ = layers[1](torch.cat([x, y1], -1), h0[1:2])
    y3, _ = layers[2](torch.cat([x, y1, y2], -1), h0[2:3])
    assert out.shape == (T, B, 3 * H)
    torch.testing.assert_close(out, torch.cat([y1, y2, y3], -1))


@pytest.mark.parametrize("skip", ["none", "residual", "dense"])
def test_gru_parameter_counts_match_the_closed_form(skip):
    n_in, n, L, V = 7, 10, 3, 7
    core = make_core(layer("gru"), n_in, n, L, skip=skip)
    inputs = [n_in + k * n for k in range(L)] if skip == "dense" else [n_in] + [n] * (L - 1)
    assert count(core) == sum(_gru_count(n, m) for m in inputs)
    model = LanguageModel(V, layer("gru"), n, L, skip=skip)  # one-hot input: m = V for layer 1
    head_in = L * n if skip == "dense" else n
    assert count(model) == count(make_core(layer("gru"), V, n, L, skip=skip)) + head_in * V + V
    assert model.output.in_features == head_in


def test_dropout_falls_between_layers_only():
    torch.manual_seed(0)
    core = make_core(layer("gru"), 3, 4, 2, dropout=0.5, skip="residual")
    x, h0 = torch.randn(6, 2, 3), torch.zeros(2, 2, 4)
    core.eval()
    a, b = core(x, h0)[0], core(x, h0)[0]
    torch.testing.assert_close(a, b)  # no dropout in eval mode
    core.train()
    assert not torch.equal(core(x, h0)[0], a)
    one = make_core(layer("gru"), 3, 4, 1, dropout=0.5, skip="residual").train()
    torch.testing.assert_close(one(x, h0[:1])[0], one(x, h0[:1])[0])  # nothing to drop between


@pytest.mark.parametrize("cell", ["sru", "onlstm"])
@pytest.mark.parametrize("skip", ["none", "residual", "dense"])
def test_new_cells_stack_with_every_connection(cell, skip):
    kwargs = {"chunk_size": 2} if cell == "onlstm" else {}
    model = LanguageModel(9, layer(cell, **kwargs), 8, num_layers=3, skip=skip)
    x = torch.randint(0, 9, (5, 4))
    state = model.begin_state(4)
    logits, new = model(x, state)
    assert logits.shape == (5, 4, 9)
    assert isinstance(new, tuple) == (cell == "onlstm")
    for a, b in zip(new if cell == "onlstm" else (new,), state if cell == "onlstm" else (state,)):
        assert a.shape == b.shape == (3, 4, 8)


@pytest.mark.parametrize("cell", ["sru", "onlstm", "gru"])
def test_seq2seq_runs_every_cell_with_dense_skips_and_attention(cell):
    kwargs = {"chunk_size": 4} if cell == "onlstm" else {}
    model = Seq2Seq(11, 13, layer(cell, **kwargs), 8, num_layers=2, skip="dense",
                    attention=True)
    src, tgt = torch.randint(0, 11, (6, 3)), torch.randint(0, 13, (5, 3))
    assert model(src, torch.tensor([6, 4, 2]), tgt).shape == (5, 3, 13)
    ids, attn = model.translate(src[:, 0], 6, bos=1, eos=2, max_len=4)
    assert len(ids) <= 4 and len(attn) >= 1


@pytest.mark.parametrize("cell,own,bad,match", [
    ("sru", {}, dict(bidirectional=True), "bidirectional"),
    ("gru", dict(chunk_size=4), {}, "chunk_size"),
    ("onlstm", dict(chunk_size=None), {}, "chunk_size"),
    ("gru", {}, dict(skip="highway"), "skip"),
])
def test_bad_cell_options_are_refused_by_name(cell, own, bad, match):
    with pytest.raises(ValueError, match=match):
        make_core(layer(cell, **own), input_size=3, num_hiddens=4, **bad)


@pytest.mark.parametrize("cell,skip", [("sru", "none"), ("onlstm", "none"), ("gru", "residual"),
                                       ("lstm", "dense")])
@pytest.mark.slow  # trains until it learns
def test_each_new_model_learns_a_sequence_that_needs_memory(cell, skip):
    """0 0 1 1 2 2 3 3 ...: what follows a token depends on the one before it, so a model without
    memory is stuck at ln 2 = 0.69 nats on every step."""
    torch.manual_seed(0)
    kwargs = {"chunk_size": 4} if cell == "onlstm" else {}
    model = LanguageModel(4, layer(cell, **kwargs), 16, num_layers=2, skip=skip)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    seq = torch.arange(4).repeat_interleave(2).repeat(3)  # (24,)
    x, y = seq[:-1, None], seq[1:, None]  # (T, B=1)
    for _ in range(200):
        logits, _ = model(x, model.begin_state(1))
        loss = F.cross_entropy(logits.reshape(-1, 4), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
