"""Recurrent layers with hand-written backpropagation through time, for speed on CPU.

torch.nn's RNN/LSTM/GRU run op by op on CPU, and autograd records several nodes per time step;
at small hidden sizes that per-op overhead is most of a training step. Here each layer and
direction is one autograd.Function: the forward loops over time with a few in-place ops per
step into preallocated buffers (no autograd inside), and the backward loops back over time
doing only what the recurrence needs (one matmul, dh_{t-1} = dz_t @ W_hh, plus a few
elementwise ops), then takes the weight, bias and input gradients with one large matmul each
over all T*B rows. Whatever does not depend on the recurrence (activation derivatives and the
like) is computed once over all steps, outside the loops.

Where it pays: rnn and gru on CPU (`python -m bench.kernels`, one layer; `make bench`, whole
runs; docs/benchmarks.md). There is no fused LSTM: torch.nn.LSTM on CPU already runs
as one oneDNN kernel per layer (aten::mkldnn_rnn_layer), and an LSTM written this way (the same
in-place factors and hoisted weight gradients, exact to 3e-15 in float64) ran at 0.44x, 0.69x
and 1.00x of its speed at num_hiddens 32, 256 and 1024 (2 threads, 2026-11-29). On GPU, use
torch.nn (cuDNN).

Parameters and forward contract are torch.nn's (names, shapes, gate order, default init), so
state_dicts move freely between a fused layer and its torch.nn twin, and so does what they
compute (tests/test_fused.py). (The `_scratch` cells are another model: d2l's, models/scratch.py.)
Time-major: input (T, B, I); state (L*D, B, H); output (T, B, D*H).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

# Notation: T steps, B batch, I input size, H hidden size, G gates (1 rnn, 3 gru).
# Each Function fills hs (T+1, B, H) = (h0, h_1, ..., h_T), so the previous state of every
# step is hs[:-1] with no copy, and returns the view hs[1:], the layer's output (T, B, H).
# Returning exactly what the next layer consumes (rather than hs, sliced outside) spares
# autograd a zero-filled (T+1, B, H) gradient buffer per layer and step.


def _input_grads(ctx, dz, x, w_ih):
    """dx and dW_ih from the gradient dz (T*B, G*H) of the input projection W_ih x_t (dW_hh
    is the same over the previous states, hs[:-1]): one matmul each over all T*B rows."""
    dx = (dz @ w_ih).view_as(x) if ctx.needs_input_grad[0] else None
    return dx, dz.t() @ x.reshape(-1, x.shape[-1])


class _RNN(torch.autograd.Function):
    """h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh): two ops a step forward, two back."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, relu):
        T, B, H = x.shape[0], x.shape[1], w_hh.shape[1]
        hs = x.new_empty(T + 1, B, H)
        hs[0] = h0
        # Input projections for all steps, written straight into hs[1:]; each step then adds
        # W_hh h_{t-1} in place and activates in place: no copies.
        torch.addmm(b_ih + b_hh, x.reshape(T * B, -1), w_ih.t(), out=hs[1:].view(T * B, H))
        # W_hh^T made contiguous once: a few % faster per-step GEMM than the transposed view.
        h, w, act_ = hs.unbind(0), w_hh.t().contiguous(), torch.relu_ if relu else torch.tanh_
        for t in range(T):
            act_(h[t + 1].addmm_(h[t], w))
        ctx.relu = relu
        ctx.save_for_backward(x, w_ih, w_hh, hs)
        return hs[1:]

    @staticmethod
    @once_differentiable
    def backward(ctx, dout):  # dout (T, B, H): gradient of the outputs h_1..h_T
        x, w_ih, w_hh, hs = ctx.saved_tensors
        T, need_h0, h = x.shape[0], ctx.needs_input_grad[1], hs[1:]
        # dz (T, B, H): gradient of the pre-activations a_t, first act'(a_t) from the
        # activation's output: relu' = [h > 0] (h >= 0, so its sign), tanh' = 1 - h^2
        dz = torch.sign(h) if ctx.relu else torch.addcmul(h.new_ones(()), h, h, value=-1)
        dh = dout.clone()  # dh[t]: total gradient of h_{t+1}, completed as the loop passes t+1
        dzt, dht = dz.unbind(0), dh.unbind(0)  # views made once, not two selects a step
        for t in range(T - 1, -1, -1):
            dzt[t].mul_(dht[t])
            if t:  # dh_{t-1} = dout_{t-1} + dz_t @ W_hh, accumulated in place
                dht[t - 1].addmm_(dzt[t], w_hh)
        dh0 = dz[0] @ w_hh if need_h0 else None
        dz = dz.view(T * x.shape[1], -1)
        dx, dw_ih = _input_grads(ctx, dz, x, w_ih)
        db = dz.sum(0)  # both biases' gradient: two tensors, as autograd may keep each as .grad
        return dx, dh0, dw_ih, dz.t() @ hs[:-1].reshape(-1, hs.shape[-1]), db, db.clone(), None


class _GRU(torch.autograd.Function):
    """r, z = sigma(W_i{r,z} x_t + b_i{r,z} + W_h{r,z} h_{t-1} + b_h{r,z});
    n = tanh(W_in x_t + b_in + r (W_hn h_{t-1} + b_hn)); h_t = (1 - z) n + z h_{t-1}."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh):
        T, B, H = x.shape[0], x.shape[1], w_hh.shape[1]
        hs = x.new_empty(T + 1, B, H)
        hs[0] = h0
        # a (T, B, 3H) starts as (W_ir x + b_ir + b_hr, W_iz x + b_iz + b_hz, b_hn); adding
        # W_hh h in place then gives r's and z's pre-activations and the n part W_hn h + b_hn,
        # kept apart from xn = W_in x + b_in as the gradient of W_hn passes through r.
        a, x2 = x.new_empty(T, B, 3 * H), x.reshape(T * B, -1)
        torch.addmm(b_ih[:2 * H] + b_hh[:2 * H], x2, w_ih[:2 * H].t(),
                    out=a.view(T * B, 3 * H)[:, :2 * H])
        a[..., 2 * H:] = b_hh[2 * H:]
        xn = torch.addmm(b_ih[2 * H:], x2, w_ih[2 * H:].t()).view(T, B, H)
        n = x.new_empty(T, B, H)
        at, rzt, rt, zt, hnt = (v.unbind(0) for v in (a, a[..., :2 * H], a[..., :H],
                                                       a[..., H:2 * H], a[..., 2 * H:]))
        h, nt, xnt, w = hs.unbind(0), n.unbind(0), xn.unbind(0), w_hh.t().contiguous()
        for t in range(T):
            at[t].addmm_(h[t], w)  # (B, 3H)
            rzt[t].sigmoid_()  # r, z in place; the n part stays W_hn h + b_hn
            torch.addcmul(xnt[t], rt[t], hnt[t], out=nt[t]).tanh_()
            torch.lerp(nt[t], h[t], zt[t], out=h[t + 1])  # n + z (h - n)
        ctx.save_for_backward(x, w_ih, w_hh, hs, a, n)
        return hs[1:]

    @staticmethod
    @once_differentiable
    def backward(ctx, dout):  # dout (T, B, H): gradient of the outputs h_1..h_T
        x, w_ih, w_hh, hs, a, n = ctx.saved_tensors
        (T, B, H), need_h0 = n.shape, ctx.needs_input_grad[1]
        r, z, hn = a.view(T, B, 3, H).unbind(2)
        # Every pre-activation gradient is dh_t times a factor known from the forward, k
        # (T, B, 3, H) for r's and z's pre-activations and for W_hn h + b_hn, computed in place
        # (these passes over T*B*H are most of the backward's time beside its matmuls):
        k = torch.empty_like(a).view(T, B, 3, H)
        kr, kz, kn = k.unbind(2)
        dan = torch.mul(n, n).sub_(1).mul_(torch.sub(z, 1, out=kn))  # (1 - n^2)(1 - z): n's
        torch.addcmul(z, z, z, value=-1, out=kn)  # z (1 - z), scratch
        torch.sub(hs[:-1], n, out=kz).mul_(kn)  # (h_{t-1} - n) z (1 - z)
        torch.addcmul(r, r, r, value=-1, out=kr).mul_(hn).mul_(dan)  # dan hn r (1 - r)
        torch.mul(dan, r, out=kn)  # dan r
        dhh = torch.empty_like(a)  # gradient of W_hh h + b_hh (with r, z pre-activations)
        # dh (T+1, B, H): total gradient of hs, kept for the input side; dh[t] starts as the
        # output's gradient and is completed in place as the loop passes step t.
        dh = torch.empty_like(hs)
        dh[0], dh[1:] = 0, dout
        kt, dhht, dht, dhu, zt = k.unbind(0), dhh.unbind(0), dh.unbind(0), \
            dh.unsqueeze(2).unbind(0), z.unbind(0)
        for t in range(T - 1, -1, -1):  # step t's output is hs[t+1], its gradient dh[t+1]
            torch.mul(kt[t], dhu[t + 1], out=dhht[t].view(B, 3, H))
            if t or need_h0:  # dh_{t-1} += dh_t z_t + dhh_t @ W_hh
                dht[t].addcmul_(dht[t + 1], zt[t]).addmm_(dhht[t], w_hh)
        dz = dhh.view(T * B, 3 * H)
        dw_hh, db_hh = dz.t() @ hs[:-1].reshape(-1, H), dz.sum(0)
        # Then dz becomes the input side's gradient, in place: the same for r and z; for n,
        # dh dan, unscaled by r.
        torch.mul(dh[1:], dan, out=dhh[..., 2 * H:])
        dx, dw_ih = _input_grads(ctx, dz, x, w_ih)
        db_ih = torch.cat([db_hh[:2 * H], dz[:, 2 * H:].sum(0)])
        return dx, dh[0] if need_h0 else None, dw_ih, dw_hh, db_ih, db_hh


class FusedRNN(nn.Module):
    """Drop-in for torch.nn.RNN/GRU (time-major), with their parameters: weight_ih_l{k} (G*H, I),
    weight_hh_l{k} (G*H, H), bias_ih_l{k}, bias_hh_l{k} (G*H,), `_reverse` for the backward
    direction, gates in torch.nn's order (r, z, n for gru), all drawn from U(-1/sqrt(H),
    1/sqrt(H)) as torch.nn does."""

    GATES = {"rnn": 1, "gru": 3}

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", dropout: float = 0.0, bidirectional: bool = False):
        super().__init__()
        if mode not in self.GATES:
            raise ValueError(f"no fused {mode!r} layer; fused layers exist for {tuple(self.GATES)} "
                             f"(torch.nn's lstm is already fused on CPU: use model=lstm)")
        self.mode, self.hidden_size, self.num_layers = mode, hidden_size, num_layers
        self.dropout, self.num_directions = dropout, 2 if bidirectional else 1
        self.relu = nonlinearity == "relu"
        gates = self.GATES[mode] * hidden_size
        bound = 1 / math.sqrt(hidden_size)  # torch.nn's default: U(-1/sqrt(H), 1/sqrt(H))
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes(layer):
                for name, shape in (("weight_ih", (gates, in_size)),
                                    ("weight_hh", (gates, hidden_size)),
                                    ("bias_ih", (gates,)), ("bias_hh", (gates,))):
                    param = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))
                    self.register_parameter(name + suffix, param)

    def _suffixes(self, layer):
        return [f"_l{layer}", f"_l{layer}_reverse"][:self.num_directions]

    def forward(self, x, h0):
        h_n = []
        for layer in range(self.num_layers):
            outputs = []
            for d, suffix in enumerate(self._suffixes(layer)):
                k = layer * self.num_directions + d
                w = [getattr(self, name + suffix)
                     for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                seq = x.flip(0) if d else x
                if self.mode == "gru":
                    out = _GRU.apply(seq, h0[k], *w)  # (T, B, H)
                else:
                    out = _RNN.apply(seq, h0[k], *w, self.relu)
                h_n.append(out[-1])
                outputs.append(out.flip(0) if d else out)
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout)  # between layers only, as torch.nn
        return x, torch.stack(h_n)
