"""Recurrent layers written out with their gate equations, for the study's scratch vs torch.nn
comparison. Parameters carry torch.nn's names, shapes and gate order (weight_ih_l{k},
weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, `_reverse` for the backward direction), so a
state_dict moves freely between a scratch layer and its torch.nn twin.

Layout: time-major. Input (T, B, I); state (num_layers * num_directions, B, H), for LSTM a
tuple (h, c); output (T, B, num_directions * H).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def rnn_step(x_proj, h, c, w_hh, b_hh, act):
    """h' = act(W_ih x + b_ih + W_hh h + b_hh); x_proj already holds W_ih x + b_ih."""
    return act(x_proj + F.linear(h, w_hh, b_hh)), None


def lstm_step(x_proj, h, c, w_hh, b_hh, act):
    i, f, g, o = (x_proj + F.linear(h, w_hh, b_hh)).chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g  # forget part of the memory, write the candidate through the input gate
    return o * torch.tanh(c), c


def gru_step(x_proj, h, c, w_hh, b_hh, act):
    x_r, x_z, x_n = x_proj.chunk(3, dim=-1)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)  # reset gate
    z = torch.sigmoid(x_z + h_z)  # update gate
    n = torch.tanh(x_n + r * h_n)  # candidate; torch.nn applies r after the b_hn bias
    return (1 - z) * n + z * h, None


STEPS = {"rnn": rnn_step, "lstm": lstm_step, "gru": gru_step}


class ScratchRNN(nn.Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", dropout: float = 0.0, bidirectional: bool = False):
        super().__init__()
        self.mode, self.hidden_size, self.num_layers = mode, hidden_size, num_layers
        self.dropout, self.num_directions = dropout, 2 if bidirectional else 1
        self.act = {"tanh": torch.tanh, "relu": torch.relu}[nonlinearity]
        gates = GATES[mode] * hidden_size
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

    def forward(self, x, state):
        h0, c0 = state if self.mode == "lstm" else (state, None)
        step, hs, cs = STEPS[self.mode], [], []
        for layer in range(self.num_layers):
            outputs = []
            for d, suffix in enumerate(self._suffixes(layer)):
                k = layer * self.num_directions + d
                seq = x.flip(0) if d else x
                # Input projections for all time steps in one matmul; only W_hh h loops.
                x_proj = F.linear(seq, getattr(self, "weight_ih" + suffix),
                                  getattr(self, "bias_ih" + suffix))  # (T, B, G*H)
                w_hh, b_hh = getattr(self, "weight_hh" + suffix), getattr(self, "bias_hh" + suffix)
                h, c, out = h0[k], None if c0 is None else c0[k], []
                for t in range(x_proj.shape[0]):
                    h, c = step(x_proj[t], h, c, w_hh, b_hh, self.act)
                    out.append(h)
                out = torch.stack(out)  # (T, B, H)
                outputs.append(out.flip(0) if d else out)
                hs.append(h)
                cs.append(c)
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout)  # between layers only, as torch.nn
        h_n = torch.stack(hs)
        return x, ((h_n, torch.stack(cs)) if self.mode == "lstm" else h_n)
