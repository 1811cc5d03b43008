"""The Ordered-Neurons LSTM (Shen et al., ICLR 2019), one layer, one direction. An LSTM whose
neurons are ordered: two master gates, monotone along the hidden dimension, decide how far up
the order the memory is kept (master forget) and how far down it is written (master input), so
high-ranked neurons hold long-lived information and low-ranked ones short-lived:

    f, i, o = sigmoid(.), c^ = tanh(.)            LSTM gates, from W x_t + U h_{t-1} + b
    mf = cumax(.)                                  master forget gate, rising from 0 to 1
    mi = 1 - cumax(.)                              master input gate, falling from 1 to 0
    w  = mf * mi                                   where both are open: the overlap
    f^ = f * w + (mf - w),   i^ = i * w + (mi - w)
    c_t = f^ * c_{t-1} + i^ * c^,   h_t = o * tanh(c_t)

The master gates have one entry per chunk of `chunk_size` neurons (H / C of them), shared by
the chunk's neurons: broadcast over a (B, H/C, C) view, the same as repeat_interleave(C).

Parameters, as in the paper's code: `ih` = Linear(I, 4H + 2H/C) and `hh` = Linear(H, 4H + 2H/C),
both with bias, so (4H + 2H/C)(I + H + 2) in all, with nn.Linear's default init. Their rows,
in the paper code's order: master input (H/C), master forget (H/C), then o, c^, i, f (H each).

Layout: time-major. Input (T, B, I); state a tuple (h, c), each (1, B, H), torch.nn.LSTM's
single-layer layout; output (T, B, H).
"""
import torch
import torch.nn.functional as F
from torch import nn


def cumax(x, dim=-1):
    """Cumulative softmax: non-decreasing along `dim`, from above 0 up to 1."""
    return torch.cumsum(torch.softmax(x, dim=dim), dim=dim)


def nearest_divisor(n: int, k: int) -> int:
    return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: (abs(d - k), d))


def chunk_problems(num_hiddens: int, chunk_size) -> list[str]:
    """ON-LSTM's rule for model.chunk_size, the one place it is written: if broken, one line
    in the form of runner/run/validate.py, which reports it with the config's other problems;
    ONLSTM raises it. Judged for an integer num_hiddens only (its own rule is validation's)."""
    if not _is_int(num_hiddens) or (_is_int(chunk_size) and chunk_size >= 1
                                    and num_hiddens % chunk_size == 0
                                    and num_hiddens // chunk_size >= 2):
        return []
    # One chunk makes both master gates constant (cumax of one value is 1): the master input
    # gate is 0 and the memory is never written.
    hint = nearest_divisor(max(num_hiddens // 2, 1), chunk_size if _is_int(chunk_size) else 8)
    return [f"model.chunk_size={chunk_size!r} is not allowed: it must be an integer >= 1 "
            f"dividing model.num_hiddens={num_hiddens} into at least 2 chunks (e.g. "
            f"model.chunk_size={hint})"]


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class ONLSTM(nn.Module):
    has_memory_cell = True  # the state is (h, c), as torch.nn.LSTM's
    problems = staticmethod(chunk_problems)  # its own option's rule, for validation

    def __init__(self, input_size: int, num_hiddens: int, chunk_size: int):
        super().__init__()
        problems = chunk_problems(num_hiddens, chunk_size)
        if problems:
            raise ValueError("; ".join(problems))
        self.input_size, self.num_hiddens, self.chunk_size = input_size, num_hiddens, chunk_size
        self.num_chunks = num_hiddens // chunk_size
        gates = 4 * num_hiddens + 2 * self.num_chunks
        self.ih = nn.Linear(input_size, gates)
        self.hh = nn.Linear(num_hiddens, gates)

    def forward(self, x, state):
        n, C = self.num_chunks, self.chunk_size
        h, c = state[0][0], state[1][0]  # (B, H) each
        # Input projections of all steps in one matmul, with both biases; only U h loops.
        x_proj = F.linear(x, self.ih.weight, self.ih.bias + self.hh.bias)  # (T, B, G)
        w_hh, outputs = self.hh.weight.t(), []
        for xp in x_proj.unbind(0):  # unbind: one stack in the backward, not T zero tensors
            gates = torch.addmm(xp, h, w_hh)  # (B, G)
            B = gates.shape[0]
            # split and unbind, not slices: their backwards concatenate, a slice's zero-fills
            master, lstm = gates.split([2 * n, 4 * n * C], dim=1)
            m_in, m_forget = cumax(master.view(B, 2, n, 1), dim=2).unbind(1)  # (B, n, 1) each
            m_in = 1 - m_in  # master gates broadcast over each chunk's C neurons
            o, g, i, f = lstm.view(B, 4, n, C).unbind(1)  # (B, n, C) each
            o, g, i, f = torch.sigmoid(o), torch.tanh(g), torch.sigmoid(i), torch.sigmoid(f)
            w = m_forget * m_in  # (B, n, 1)
            f_hat = f * w + (m_forget - w)  # (B, n, C)
            i_hat = i * w + (m_in - w)
            c = f_hat * c.reshape(B, n, C) + i_hat * g  # reshape: c_0 may be a strided view
            h = (o * torch.tanh(c)).view(B, -1)  # (B, H)
            c = c.view(B, -1)
            outputs.append(h)
        return torch.stack(outputs), (h.unsqueeze(0), c.unsqueeze(0))
