"""models.onlstm: cumax's shape (monotone from 0 to 1), ONLSTM against a per-step loop written
from the paper's equations (outputs, final state, gradients), its parameter count, its
chunk_size check, its state and that it learns a sequence needing memory."""
import pytest
import torch

from models.onlstm import ONLSTM, cumax
from tests.test_sru import train_on_memory_task

T, B = 5, 3


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
def test_cumax_is_a_monotone_ramp_to_one(scale):
    torch.manual_seed(0)
    x = torch.randn(4, 7, 50) * scale
    for dim in (-1, 1):
        y = cumax(x, dim)
        assert (y.diff(dim=dim) >= 0).all()  # sums of non-negative terms: exact in floats
        assert (y >= 0).all() and (y <= 1 + 1e-6).all()
        torch.testing.assert_close(y.select(dim, -1), torch.ones(4, 50 if dim == 1 else 7))
        assert ((1 - y).diff(dim=dim) <= 0).all()


def naive_onlstm(x, h, c, layer):
    """One step at a time, straight from the equations, master gates repeated per chunk."""
    n, C = layer.num_chunks, layer.chunk_size
    outputs = []
    for x_t in x:
        gates = layer.ih(x_t) + layer.hh(h)
        m_in = 1 - cumax(gates[:, :n]).repeat_interleave(C, dim=-1)
        m_forget = cumax(gates[:, n:2 * n]).repeat_interleave(C, dim=-1)
        o, g, i, f = gates[:, 2 * n:].chunk(4, dim=-1)
        o, g, i, f = torch.sigmoid(o), torch.tanh(g), torch.sigmoid(i), torch.sigmoid(f)
        w = m_forget * m_in
        c = (f * w + (m_forget - w)) * c + (i * w + (m_in - w)) * g
        h = o * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs), (h.unsqueeze(0), c.unsqueeze(0))


@pytest.mark.parametrize("IN,H,C", [(4, 6, 1), (4, 12, 3), (5, 16, 8)])
def test_matches_naive_loop_with_gradients(IN, H, C):
    torch.manual_seed(0)
    layer = ONLSTM(IN, H, C)
    x = torch.randn(T, B, IN, requires_grad=True)
    h0, c0 = (torch.randn(1, B, H, requires_grad=True) for _ in range(2))
    weights = [torch.randn(T, B, H), torch.randn(1, B, H), torch.randn(1, B, H)]
    leaves = [x, h0, c0, *layer.parameters()]

    def outputs_and_grads(out, state):
        loss = sum((v * w).sum() for v, w in zip((out, *state), weights))
        return out, state, torch.autograd.grad(loss, leaves)

    got = outputs_and_grads(*layer(x, (h0, c0)))
    expected = outputs_and_grads(*naive_onlstm(x, h0[0], c0[0], layer))
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("IN,H,C", [(10, 32, 8), (7, 12, 1)])
def test_parameter_count(IN, H, C):
    layer = ONLSTM(IN, H, C)
    assert sum(p.numel() for p in layer.parameters()) == (4 * H + 2 * H // C) * (IN + H + 2)


@pytest.mark.parametrize("chunk_size,hint", [(7, 8), (0, 1), (-4, 1), (64, 16), (32, 16)])
def test_bad_chunk_size_names_the_setting_and_a_fix(chunk_size, hint):
    with pytest.raises(ValueError, match=f"model.chunk_size={chunk_size} is not allowed: it "
                                         f"must be an integer >= 1 dividing model.num_hiddens=32"
                                         f".*model.chunk_size={hint}"):
        ONLSTM(4, 32, chunk_size)


def test_shapes_and_state_is_used():
    torch.manual_seed(0)
    layer, x, zeros = ONLSTM(4, 6, 2), torch.randn(T, B, 4), torch.zeros(1, B, 6)
    out, (h, c) = layer(x, (zeros, zeros))
    assert out.shape == (T, B, 6) and h.shape == c.shape == (1, B, 6)
    torch.testing.assert_close(h[0], out[-1])
    first, mid = layer(x[:2], (zeros, zeros))  # the returned state carries on
    torch.testing.assert_close(torch.cat([first, layer(x[2:], mid)[0]]), out)
    for state in ((torch.ones(1, B, 6), zeros), (zeros, torch.ones(1, B, 6))):
        out2, (h2, c2) = layer(x, state)
        assert not torch.allclose(out, out2) and not torch.allclose(c, c2)


def test_learns_sequence_that_needs_memory():
    torch.manual_seed(0)
    zeros = torch.zeros(1, 4, 16)
    assert train_on_memory_task(ONLSTM(3, 16, 4), (zeros, zeros)) < 0.05
