"""d2l's scratch models (models/scratch.py) packed: PackedLM's pack, unpack, dropout and
output layer, with d2l's parameters and cells in place of torch.nn's.

Each packed parameter is the members' stacked under the standalone scratch name and layout
(weight_x{g}_l{k} (P, I, H), weight_h{g}_l{k} (P, H, H), bias_{g}_l{k} (P, H), gates g in d2l's
order: rnn h; gru z, r, h; lstm i, f, o, c), so `unpack(i)` is member i's scratch state_dict.
The forward is ScratchRNN's, op for op, one matrix per member: the gates side by side (X W_x + b
for every step at once, then per step addmm(a, h, W_h)); gru's reset gate before W_hh,
H = Z * H + (1 - Z) * H~; lstm's gates i, f, o, then the candidate c."""
import torch

from models.packed import PackedLM
from models.scratch import GATES


class PackedScratchLM(PackedLM):
    """P of d2l's scratch language models of one form; build it with PackedLM.pack."""

    def _layer_shapes(self, input_size: int):
        """(name, shape) of one layer's parameters, per member, in d2l's drawing order."""
        H = self.num_hiddens
        for g in GATES[self.mode]:
            yield from ((f"weight_x{g}", (input_size, H)), (f"weight_h{g}", (H, H)),
                        (f"bias_{g}", (H,)))

    def _weights(self, core, k):
        """Layer k's W_x (P, I, G*H), b (P, G*H) and W_h (P, H, G*H), gates side by side."""
        def cat(prefix):  # one gate (rnn): the parameter itself, not a copy autograd keeps
            parts = [getattr(core, f"{prefix}{g}_l{k}") for g in GATES[self.mode]]
            return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        return cat("weight_x"), cat("bias_"), cat("weight_h")

    def _layer(self, core, k, x, h, c):
        """Layer k of `core` over all steps: x (P, T, B, I) -> its output (P, T, B, H), last
        h and c."""
        P, T, B = x.shape[:3]
        w_x, b, w_h = self._weights(core, k)
        a = torch.baddbmm(b[:, None], x.reshape(P, T * B, -1), w_x)  # (P, T*B, G*H)
        act = torch.relu if self.nonlinearity == "relu" else torch.tanh
        out = []
        for a_t in a.view(P, T, B, -1).unbind(1):
            h, c = self._step(a_t, h, c, w_h, act)
            out.append(h)
        return torch.stack(out, 1), h, c

    def _step(self, a, h, c, w_h, act):
        """One step of models/scratch.py's rnn_step, gru_step or lstm_step, per member:
        a (P, B, G*H) = X W_x + b, h (P, B, H)."""
        H = self.num_hiddens
        if self.mode == "rnn":
            return act(torch.baddbmm(a, h, w_h)), None
        if self.mode == "gru":
            z, r = torch.sigmoid(torch.baddbmm(a[..., :2 * H], h, w_h[..., :2 * H])).chunk(2, -1)
            h_tilda = torch.tanh(torch.baddbmm(a[..., 2 * H:], r * h, w_h[..., 2 * H:]))
            return z * h + (1 - z) * h_tilda, None
        gates = torch.baddbmm(a, h, w_h)  # (P, B, 4H)
        i, f, o = torch.sigmoid(gates[..., :3 * H]).chunk(3, dim=-1)
        c = f * c + i * torch.tanh(gates[..., 3 * H:])
        return o * torch.tanh(c), c
