"""models.sru.SRU against a per-step loop written from the paper's equations (outputs, final
state, gradients), its parameter count, its state and that it learns a sequence needing memory."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models.sru import SRU

T, B = 6, 3


def naive_sru(x, c, weight, bias):
    """One step at a time, straight from the equations."""
    H = bias.shape[0] // 2
    W, W_f, W_r = weight[:H], weight[H:2 * H], weight[2 * H:3 * H]
    outputs = []
    for x_t in x:
        f = torch.sigmoid(x_t @ W_f.T + bias[:H])
        r = torch.sigmoid(x_t @ W_r.T + bias[H:])
        c = f * c + (1 - f) * (x_t @ W.T)
        highway = x_t if weight.shape[0] == 3 * H else x_t @ weight[3 * H:].T
        outputs.append(r * torch.tanh(c) + (1 - r) * highway)
    return torch.stack(outputs), c


@pytest.mark.parametrize("IN,H,inputs_grad", [(5, 5, True), (4, 7, True), (4, 7, False)])
def test_matches_naive_loop_with_gradients(IN, H, inputs_grad):
    """inputs_grad=False is the training loop's case: one-hot input, detached state."""
    torch.manual_seed(0)
    sru = SRU(IN, H)
    x, c0 = torch.randn(T, B, IN), torch.randn(1, B, H)
    x.requires_grad_(inputs_grad), c0.requires_grad_(inputs_grad)
    leaves = [x, c0, sru.weight, sru.bias] if inputs_grad else [sru.weight, sru.bias]
    w_out, w_c = torch.randn(T, B, H), torch.randn(B, H)

    def outputs_and_grads(forward):
        out, c = forward()
        loss = (out * w_out).sum() + (c.reshape(B, H) * w_c).sum()
        return out, c.reshape(B, H), torch.autograd.grad(loss, leaves)

    got = outputs_and_grads(lambda: sru(x, c0))
    expected = outputs_and_grads(lambda: naive_sru(x, c0[0], sru.weight, sru.bias))
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("IN,H,k", [(8, 8, 3), (5, 8, 4)])
def test_parameter_count(IN, H, k):
    sru = SRU(IN, H)
    assert sum(p.numel() for p in sru.parameters()) == k * H * IN + 2 * H
    bound = 1 / H ** 0.5
    assert all(p.abs().max() <= bound for p in sru.parameters())


def test_shapes_and_state_is_used():
    torch.manual_seed(0)
    sru, x = SRU(4, 6), torch.randn(T, B, 4)
    out, c = sru(x, torch.zeros(1, B, 6))
    assert out.shape == (T, B, 6) and c.shape == (1, B, 6)
    first, mid = sru(x[:2], torch.zeros(1, B, 6))  # the returned state carries on
    torch.testing.assert_close(torch.cat([first, sru(x[2:], mid)[0]]), out)
    with torch.no_grad():  # generation runs without autograd
        out2, c2 = sru(x, torch.ones(1, B, 6))
    assert not torch.allclose(out, out2) and not torch.allclose(c, c2)


def memory_task(period=(0, 1, 0, 2), steps=16):
    """Every phase of a periodic sequence in which what follows 0 depends on what came before
    it: one-hot inputs (T, B, 3) and next-token targets (T, B)."""
    seq = torch.tensor(period * (steps // len(period) + 2))
    tokens = torch.stack([seq[p:p + steps + 1] for p in range(len(period))], dim=1)
    return F.one_hot(tokens[:-1], 3).float(), tokens[1:]


def train_on_memory_task(layer, state, target=0.05, max_steps=300, lr=0.03):
    """Cross-entropy of layer + linear head on the memory task once below `target`, or after
    max_steps, each step from `state` (batch 4: the period's phases). The first step, with no
    history, is left out of the loss; without memory the loss cannot go below 0.5 ln 2 = 0.35
    nats (0 is followed by 1 or 2 half the time)."""
    x, y = memory_task()
    head = nn.Linear(layer.num_hiddens, 3)
    opt = torch.optim.Adam([*layer.parameters(), *head.parameters()], lr=lr)
    # One thread: tensors this small gain nothing from two, and on a machine shared with
    # other jobs each parallel op can wait milliseconds for a descheduled thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(max_steps):
            out, _ = layer(x, state)
            loss = F.cross_entropy(head(out[1:]).reshape(-1, 3), y[1:].reshape(-1))
            if loss.item() < target:
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return loss.item()


def test_learns_sequence_that_needs_memory():
    torch.manual_seed(0)
    assert train_on_memory_task(SRU(3, 16), torch.zeros(1, 4, 16)) < 0.05
