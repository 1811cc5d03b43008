"""d2l 0.17.6's recurrent networks from scratch, the subject of the study's Tables 9-10 "from
scratch" rows: RNNModelScratch with get_params / init_rnn_state / rnn (d2l section 8.5), and
get_params / gru (9.1) and get_lstm_params / lstm (9.2). In d2l's notation, per time step,
X (B, I), H (B, H):

    rnn   H = tanh(X W_xh + H W_hh + b_h)
    gru   Z = sigmoid(X W_xz + H W_hz + b_z);  R = sigmoid(X W_xr + H W_hr + b_r)
          H~ = tanh(X W_xh + (R * H) W_hh + b_h);  H = Z * H + (1 - Z) * H~
    lstm  I, F, O = sigmoid(X W_x. + H W_h. + b_.) for . = i, f, o
          C~ = tanh(X W_xc + H W_hc + b_c);  C = F * C + I * C~;  H = O * tanh(C)

and the output layer Y = H W_hq + b_q, which is the language model's `output` layer
(models/lm.py; built by d2l_output_layer below when the cell is a scratch cell).

These are not torch.nn's layers written out, and do not compute what torch.nn computes:
- one bias per gate (b_z, ...), where torch.nn has two (b_ih and b_hh), so fewer parameters
  (291,356 for the study's rnn at vocabulary 28, 512 hidden, against nn.RNN's 291,868);
- the GRU's reset gate scales the state before W_hh, (R * H) W_hh, where torch.nn scales the
  product after it, r * (W_hn h + b_hn);
- weights drawn from N(0, 0.01^2) (d2l: torch.randn(shape) * 0.01), biases zero, where torch.nn
  draws every parameter from U(-1/sqrt(H), 1/sqrt(H)). This is the models' own init, so
  init=default keeps it; any other scheme (models/init.py) replaces it.

Parameters are d2l's tensors, in d2l's shapes and drawing order: for each gate g (rnn: h; gru:
z, r, h; lstm: i, f, o, c) weight_x{g}_l{k} (I, H), weight_h{g}_l{k} (H, H) and bias_{g}_l{k}
(H,), `_reverse` for a backward direction. So a one-layer one-hot language model, seeded as
d2l's get_params is, starts from the very same numbers, and a named init scheme fills d2l's own
matrices (torch.nn.init reads fan-in from dim 1: kaiming_* scale W_x. (I, H) by H, as they
would d2l's, where a torch.nn cell's (H, I) gets I).

Beyond d2l, which has one layer, one direction and tanh: layers stack as torch.nn's do (each
reads the one below, dropout between them), a backward direction has its own tensors, and rnn
may use relu; every layer and direction follows the equations above.

Layout: time-major. Input (T, B, I); state (num_layers * num_directions, B, H), for lstm a
tuple (h, c); output (T, B, num_directions * H).
"""
import torch
import torch.nn.functional as F
from torch import nn

from models.cells import nonlinearity_problems

GATES = {"rnn": "h", "gru": "zrh", "lstm": "ifoc"}  # d2l's gate names, in get_params' order
ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


def d2l_normal(*shape) -> torch.Tensor:
    """d2l's `normal(shape)`: torch.randn(size=shape) * 0.01."""
    return torch.randn(size=shape) * 0.01


def d2l_output_layer(num_hiddens: int, vocab_size: int) -> nn.Linear:
    """d2l's output layer Y = H W_hq + b_q, as an nn.Linear (weight = W_hq^T: the same function
    and parameter count) with d2l's init: W_hq drawn in d2l's (H, V) shape, b_q zero."""
    # skip_init: nn.Linear's own init would draw numbers only to be overwritten, and move the
    # random stream off d2l's, which draws W_hq right after the recurrent weights.
    layer = nn.utils.skip_init(nn.Linear, num_hiddens, vocab_size)
    with torch.no_grad():
        layer.weight.copy_(d2l_normal(num_hiddens, vocab_size).T)
        layer.bias.zero_()
    return layer


# One time step of each cell. `a` (B, G*H) holds X W_x + b for all gates, computed for every
# step at once before the loop; `w_h` the H-side weights: rnn (W_hh,), lstm (W_h[ifoc],),
# gru (W_h[zr], W_hh), W_hh apart as it multiplies R * H rather than H.


def rnn_step(a, h, c, w_h, act):
    return act(torch.addmm(a, h, w_h[0])), None


def gru_step(a, h, c, w_h, act):
    w_zr, w_hh = w_h
    H = h.shape[-1]
    z, r = torch.sigmoid(torch.addmm(a[:, :2 * H], h, w_zr)).chunk(2, dim=-1)
    h_tilda = torch.tanh(torch.addmm(a[:, 2 * H:], r * h, w_hh))  # reset before W_hh, as d2l
    return z * h + (1 - z) * h_tilda, None


def lstm_step(a, h, c, w_h, act):
    H = h.shape[-1]
    gates = torch.addmm(a, h, w_h[0])  # (B, 4H)
    i, f, o = torch.sigmoid(gates[:, :3 * H]).chunk(3, dim=-1)
    c = f * c + i * torch.tanh(gates[:, 3 * H:])
    return o * torch.tanh(c), c


STEPS = {"rnn": rnn_step, "gru": gru_step, "lstm": lstm_step}


def _cat(tensors):
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim=-1)


class ScratchRNN(nn.Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", dropout: float = 0.0, bidirectional: bool = False):
        super().__init__()
        if mode not in GATES:
            raise ValueError(f"no scratch {mode!r} layer; d2l has scratch {tuple(GATES)}")
        self.mode, self.hidden_size, self.num_layers = mode, hidden_size, num_layers
        self.dropout, self.num_directions = dropout, 2 if bidirectional else 1
        self.act = ACTIVATIONS[nonlinearity]
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes(layer):
                for g in GATES[mode]:  # d2l's three(): W_x (I, H), W_h (H, H), b (H,) zero
                    self.register_parameter(f"weight_x{g}{suffix}",
                                            nn.Parameter(d2l_normal(in_size, hidden_size)))
                    self.register_parameter(f"weight_h{g}{suffix}",
                                            nn.Parameter(d2l_normal(hidden_size, hidden_size)))
                    self.register_parameter(f"bias_{g}{suffix}",
                                            nn.Parameter(torch.zeros(hidden_size)))

    def _suffixes(self, layer):
        return [f"_l{layer}", f"_l{layer}_reverse"][:self.num_directions]

    def _weights(self, suffix):
        """W_x (I, G*H) and b (G*H,) of all gates side by side, and the H-side weights."""
        gates = GATES[self.mode]
        w_x = _cat([getattr(self, f"weight_x{g}{suffix}") for g in gates])
        b = _cat([getattr(self, f"bias_{g}{suffix}") for g in gates])
        w_h = [getattr(self, f"weight_h{g}{suffix}") for g in gates]
        if self.mode == "gru":
            return w_x, b, (_cat(w_h[:2]), w_h[2])
        return w_x, b, (_cat(w_h),)

    def forward(self, x, state):
        h0, c0 = state if self.mode == "lstm" else (state, None)
        step, hs, cs = STEPS[self.mode], [], []
        for layer in range(self.num_layers):
            outputs = []
            for d, suffix in enumerate(self._suffixes(layer)):
                k = layer * self.num_directions + d
                seq = x.flip(0) if d else x
                w_x, b, w_h = self._weights(suffix)
                T, B = seq.shape[:2]
                # X W_x + b for every step in one matmul (the same sums as d2l's, per step);
                # only the H-dependent part loops.
                a = torch.addmm(b, seq.reshape(T * B, -1), w_x).view(T, B, -1)  # (T, B, G*H)
                h, c, out = h0[k], None if c0 is None else c0[k], []
                for a_t in a.unbind(0):
                    h, c = step(a_t, h, c, w_h, self.act)
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


# The layers conf/model/*_scratch.yaml name (the cell contract, docs/extend-cell.md): d2l's
# model of each mode, drawn with its output layer W_hq, b_q (`output_layer`, which the language
# model builds right after the recurrent weights, as d2l's get_params draws it).
class RNNScratch(ScratchRNN):
    output_layer = staticmethod(d2l_output_layer)
    problems = staticmethod(nonlinearity_problems)

    def __init__(self, input_size: int, num_hiddens: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, nonlinearity: str = "tanh"):
        super().__init__("rnn", input_size, num_hiddens, num_layers, nonlinearity, dropout,
                         bidirectional)


class GRUScratch(ScratchRNN):
    output_layer = staticmethod(d2l_output_layer)

    def __init__(self, input_size: int, num_hiddens: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0):
        super().__init__("gru", input_size, num_hiddens, num_layers, "tanh", dropout,
                         bidirectional)


class LSTMScratch(ScratchRNN):
    has_memory_cell = True
    output_layer = staticmethod(d2l_output_layer)

    def __init__(self, input_size: int, num_hiddens: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0):
        super().__init__("lstm", input_size, num_hiddens, num_layers, "tanh", dropout,
                         bidirectional)
