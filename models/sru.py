"""The Simple Recurrent Unit (Lei et al. 2017, the original version, whose gates read the input
only), one layer, one direction:

    x~_t = W x_t
    f_t  = sigmoid(W_f x_t + b_f)                      forget gate
    r_t  = sigmoid(W_r x_t + b_r)                      reset (highway) gate
    c_t  = f_t * c_{t-1} + (1 - f_t) * x~_t
    h_t  = r_t * tanh(c_t) + (1 - r_t) * x'_t          highway: x'_t = x_t if I == H, else W_h x_t

No gate reads h_{t-1}, so every matmul runs over all time steps at once, as one (T*B, I) @
(I, kH) product; only the element-wise recurrence of c loops over time, one fused
multiply-add a step, forward and back (a hand-written backward: left to autograd, the loop's
per-step overhead is a large share of the layer's time at small I and H). How fast that is
against torch.nn's LSTM and GRU: `make bench` and docs/benchmarks.md.

Parameters: `weight` (k*H, I), rows [W; W_f; W_r] and, when I != H, W_h (k = 3 if I == H else
4, as in the paper's code), and `bias` (2H,) = [b_f; b_r]: k*H*I + 2H in all. Both start
U(-1/sqrt(H), 1/sqrt(H)), torch.nn's default for recurrent layers.

Layout: time-major. Input (T, B, I); state c (1, B, H), torch.nn's single-layer layout;
output h (T, B, H).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable


class _Recurrence(torch.autograd.Function):
    """c_t = u_t + f_t c_{t-1} for t = 1..T, with u_t = (1 - f_t) x~_t: one addcmul a step,
    forward and back. Left to autograd, every step is a node whose backward takes several ops
    (the gradients of u_t, f_t and c_{t-1}, then the sum of c_t's two gradients); here the
    backward loop only carries dc back, dc_{t-1} += f_t dc_t, and the gradients of u and f
    follow from it in one op each over all steps."""

    @staticmethod
    def forward(ctx, u, f, c0):  # u, f (T, B, H); c0 (B, H)
        cs = u.new_empty((u.shape[0] + 1, *u.shape[1:]))  # (T+1, B, H): c_0, c_1, ..., c_T
        cs[0] = c0
        c, u_t, f_t = cs.unbind(0), u.unbind(0), f.unbind(0)
        for t in range(u.shape[0]):
            torch.addcmul(u_t[t], f_t[t], c[t], out=c[t + 1])
        ctx.save_for_backward(f, cs)
        return cs[1:]  # a view: c_{t-1} for every step stays cs[:-1], with no copy

    @staticmethod
    @once_differentiable
    def backward(ctx, dcs):  # dcs (T, B, H): gradient of c_1..c_T from the outputs
        f, cs = ctx.saved_tensors
        # dc[t] starts as c_t's gradient from the outputs; the loop adds what flows back
        # from c_{t+1}, so dc ends as each c_t's total gradient, which is also u_t's.
        dc = dcs.clone(memory_format=torch.contiguous_format)
        d, f_t = dc.unbind(0), f.unbind(0)
        for t in range(len(d) - 1, 0, -1):
            d[t - 1].addcmul_(d[t], f_t[t])
        dc0 = d[0] * f_t[0] if ctx.needs_input_grad[2] else None
        return dc, dc * cs[:-1], dc0


class SRU(nn.Module):
    def __init__(self, input_size: int, num_hiddens: int):
        super().__init__()
        self.input_size, self.num_hiddens = input_size, num_hiddens
        k = 3 if input_size == num_hiddens else 4  # a 4th projection W_h when x can't pass as is
        bound = 1 / math.sqrt(num_hiddens)
        self.weight = nn.Parameter(torch.empty(k * num_hiddens, input_size).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(2 * num_hiddens).uniform_(-bound, bound))

    def forward(self, x, state):
        (T, B, _), H = x.shape, self.num_hiddens
        k = self.weight.shape[0] // H
        bias = F.pad(self.bias, (H, (k - 3) * H))  # (kH,): zero for x~ and x', b_f and b_r
        # Every projection of every step in one matmul, split by unbind rather than slicing:
        # the backward of a slice zero-fills a (T, B, kH) gradient, unbind's is one stack.
        x_tilde, f, r, *w_h_x = F.linear(x, self.weight, bias).view(T, B, k, H).unbind(2)
        f, r = torch.sigmoid(f), torch.sigmoid(r)  # (T, B, H) each
        highway = w_h_x[0] if w_h_x else x  # (T, B, H)
        cs = _Recurrence.apply((1 - f) * x_tilde, f, state[0])  # (T, B, H): c_1..c_T
        # h for all steps at once: r tanh(c) + (1 - r) x' = x' + r (tanh(c) - x').
        return torch.lerp(highway, torch.tanh(cs), r), cs[-1:]
