"""Packed language models: P runs of one sweep point that differ only by seed, trained in one
process as one model with a leading member dimension (docs/packing.md).

A pack is built FROM P standalone LanguageModels (`PackedLM.pack`), each already built and
initialised under its own seed exactly as a standalone run builds it, so every member starts
bit-identical to its run by construction, whatever the init scheme. Each packed parameter is
the members' parameters stacked, under the standalone name and layout (torch.nn's: W_ih
(P, G*H, I), W_hh (P, G*H, H), gates in torch.nn's order), so `unpack(i)` is member i's
state_dict, loadable into its standalone model or saved as its checkpoint.

torch.vmap has no batching rule for nn.RNN/GRU/LSTM, so the cells are written here with batched
matrix products (torch.baddbmm), one matrix per member, and autograd takes the gradients. No
operation mixes members: each member's gradient is its own model's, and a member gone NaN
leaves the others untouched. Clipping (`clip_per_member`) and the update (`PackedSGD`) are per
member too, as each standalone run clips its own whole gradient.

Layout: time-major per member. Inputs (P, T, B) token ids, state (P, L, B, H) (a tuple (h, c)
for lstm), logits (P, T, B, V).
"""
import torch
import torch.nn.functional as F
from torch import nn

from models.fused import FusedRNN
from models.lm import LanguageModel

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
NN_MODES = {nn.RNN: "rnn", nn.GRU: "gru", nn.LSTM: "lstm"}
WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _core_form(core: nn.Module) -> tuple[str, str, int]:
    """(mode, nonlinearity, num_layers) of a standalone core a pack can compute, or why not."""
    if isinstance(core, FusedRNN):
        mode, nonlinearity = core.mode, "relu" if core.relu else "tanh"
        bidirectional = core.num_directions == 2
    elif type(core) in NN_MODES:  # the same parameters and function as the fused layers
        mode, nonlinearity = NN_MODES[type(core)], getattr(core, "nonlinearity", "tanh")
        bidirectional = core.bidirectional
        if getattr(core, "proj_size", 0):
            raise ValueError(f"cannot pack an LSTM with proj_size={core.proj_size}: only "
                             f"proj_size=0 is packed (build the members without it)")
    else:
        raise ValueError(f"cannot pack a {type(core).__name__} core: packs compute rnn, gru "
                         f"and lstm stacked plainly (model.skip=none), torch.nn's or fused; "
                         f"train this model unpacked (launcher.pack=1)")
    if bidirectional:
        raise ValueError("cannot pack model.bidirectional=true: packs run one way (use "
                         "model.bidirectional=false, or train unpacked)")
    if core.dropout and core.num_layers > 1:
        raise ValueError(f"cannot pack model.dropout={core.dropout}: dropout needs one random "
                         f"stream per member, not written yet (use model.dropout=0, or train "
                         f"unpacked)")
    return mode, nonlinearity, core.num_layers


class PackedLM(nn.Module):
    """P recurrent language models of one form as one module; build it with `pack`."""

    def __init__(self, members: int, mode: str, vocab_size: int, num_hiddens: int,
                 num_layers: int = 1, embed_size: int | None = None,
                 nonlinearity: str = "tanh", dtype=None):
        """Zero parameters in the standalone layout, each with a leading member dimension;
        `pack` fills them with the members' own."""
        super().__init__()
        if mode not in GATES:
            raise ValueError(f"mode={mode!r} cannot be packed: it must be one of "
                             f"{', '.join(GATES)} (e.g. mode='gru')")
        self.members, self.mode, self.nonlinearity = members, mode, nonlinearity
        self.vocab_size, self.num_hiddens, self.num_layers = vocab_size, num_hiddens, num_layers
        P, G, H, kw = members, GATES[mode] * num_hiddens, num_hiddens, {"dtype": dtype}
        if embed_size:
            self.embedding = nn.Module()
            self.embedding.weight = nn.Parameter(torch.zeros(P, vocab_size, embed_size, **kw))
        else:  # one-hot, as the standalone model: a lookup into a fixed identity
            self.register_buffer("one_hot", torch.eye(vocab_size, **kw), persistent=False)
        self.core = nn.Module()
        for k in range(num_layers):
            size = (embed_size or vocab_size) if k == 0 else H
            for name, shape in zip(WEIGHTS, ((G, size), (G, H), (G,), (G,))):
                self.core.register_parameter(f"{name}_l{k}",
                                             nn.Parameter(torch.zeros(P, *shape, **kw)))
        self.output = nn.Module()
        self.output.weight = nn.Parameter(torch.zeros(P, vocab_size, H, **kw))
        self.output.bias = nn.Parameter(torch.zeros(P, vocab_size, **kw))

    @classmethod
    def pack(cls, models: list[LanguageModel]) -> "PackedLM":
        """The pack of `models` (one form, any seeds), their parameters copied in bit for bit."""
        if not models:
            raise ValueError("pack() got no models: give it at least one LanguageModel")
        first = models[0]
        for i, m in enumerate(models):
            if type(m) is not LanguageModel or type(m.output) is not nn.Linear:
                raise ValueError(f"models[{i}] is a {type(m).__name__} with a "
                                 f"{type(getattr(m, 'output', None)).__name__} output layer: "
                                 f"packs hold recurrent LanguageModels with an nn.Linear output "
                                 f"(not d2l's scratch models, not the Transformer)")
        mode, nonlinearity, layers = _core_form(first.core)
        shapes = {k: (v.shape, v.dtype) for k, v in first.state_dict().items()}
        for i, m in enumerate(models[1:], 1):
            form = _core_form(m.core)
            other = {k: (v.shape, v.dtype) for k, v in m.state_dict().items()}
            if form != (mode, nonlinearity, layers) or other != shapes:
                raise ValueError(f"models[{i}] is not of models[0]'s form ({mode}, "
                                 f"{nonlinearity}, {layers} layer(s), the same sizes and "
                                 f"dtype): a pack holds runs of one sweep point, differing "
                                 f"only by seed")
        embed = first.embedding.embedding_dim if hasattr(first, "embedding") else None
        packed = cls(len(models), mode, first.vocab_size, first.num_hiddens, layers, embed,
                     nonlinearity, dtype=first.output.weight.dtype)
        states = [m.state_dict() for m in models]
        with torch.no_grad():
            for name, p in packed.state_dict(keep_vars=True).items():
                p.copy_(torch.stack([s[name] for s in states]))
        return packed.to(first.output.weight.device)

    def unpack(self, i: int) -> dict:
        """Member i's state_dict, under the standalone names and shapes (a copy)."""
        if not -self.members <= i < self.members:
            raise IndexError(f"member {i} is not in this pack of {self.members} (use 0 to "
                             f"{self.members - 1})")
        return {name: p[i].detach().clone() for name, p in self.state_dict().items()}

    def begin_state(self, batch_size: int, device=None):
        h = torch.zeros(self.members, self.num_layers, batch_size, self.num_hiddens,
                        device=device, dtype=self.output.weight.dtype)
        return (h, torch.zeros_like(h)) if self.mode == "lstm" else h

    def forward(self, inputs, state):
        """inputs (P, T, B) ids -> logits (P, T, B, V), and the new state."""
        P, T, B = inputs.shape
        if hasattr(self, "embedding"):  # member p reads its own table
            x = self.embedding.weight[torch.arange(P, device=inputs.device)[:, None, None],
                                      inputs]
        else:
            x = F.embedding(inputs, self.one_hot)  # (P, T, B, V)
        h0, c0 = state if self.mode == "lstm" else (state, None)
        h_n, c_n = [], []
        for k in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = (getattr(self.core, f"{n}_l{k}") for n in WEIGHTS)
            # every step's input projection at once: (P, T*B, G*H)
            xp = torch.baddbmm(b_ih[:, None], x.reshape(P, T * B, -1), w_ih.transpose(1, 2))
            xs = xp.view(P, T, B, -1).unbind(1)
            h, c, out = h0[:, k], None if c0 is None else c0[:, k], []
            for t in range(T):
                hp = torch.baddbmm(b_hh[:, None], h, w_hh.transpose(1, 2))  # (P, B, G*H)
                h, c = self._cell(xs[t], hp, h, c)
                out.append(h)
            x = torch.stack(out, 1)  # (P, T, B, H)
            h_n.append(h)
            c_n.append(c)
        logits = torch.baddbmm(self.output.bias[:, None], x.reshape(P, T * B, -1),
                               self.output.weight.transpose(1, 2))
        h_n = torch.stack(h_n, 1)
        new = (h_n, torch.stack(c_n, 1)) if self.mode == "lstm" else h_n
        return logits.view(P, T, B, -1), new

    def _cell(self, xp, hp, h, c):
        """One step, torch.nn's equations: xp = W_ih x + b_ih, hp = W_hh h + b_hh."""
        if self.mode == "rnn":
            a = xp + hp
            return (torch.relu(a) if self.nonlinearity == "relu" else torch.tanh(a)), None
        H = self.num_hiddens
        if self.mode == "gru":
            r, z = torch.sigmoid(xp[..., :2 * H] + hp[..., :2 * H]).chunk(2, -1)
            n = torch.tanh(xp[..., 2 * H:] + r * hp[..., 2 * H:])
            return torch.lerp(n, h, z), None  # (1 - z) n + z h
        i, f, g, o = (xp + hp).chunk(4, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


def member_losses(logits, targets):
    """Each member's mean token cross-entropy (P,), as the standalone task's loss: summing
    them to backpropagate gives each member exactly its own gradient."""
    P, V = logits.shape[0], logits.shape[-1]
    per_token = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none")
    return per_token.view(P, -1).mean(1)


def _params(packed):
    return list(packed.parameters()) if isinstance(packed, nn.Module) else list(packed)


def _per_member(values, like):
    """(P,) values shaped to scale a (P, ...) tensor member by member."""
    return values.view(-1, *[1] * (like.dim() - 1)).to(like.dtype)


@torch.no_grad()
def clip_per_member(packed, max_norm: float, eps: float = 1e-6):
    """torch.nn.utils.clip_grad_norm_ on each member alone: member m's global L2 norm over
    its slices of every gradient, and its gradients (only) scaled by min(1, max_norm /
    (norm + eps)). Clipping over the whole pack would let one member's large gradient shrink
    the others' steps. Returns the members' norms (P,), before clipping."""
    grads = [p.grad for p in _params(packed) if p.grad is not None]
    if not grads:
        raise ValueError("clip_per_member found no gradients: call backward() first")
    P = grads[0].shape[0]
    # as torch: the norm of the per-parameter norms
    norms = torch.stack([torch.linalg.vector_norm(g.reshape(P, -1), dim=1) for g in grads])
    total = torch.linalg.vector_norm(norms, dim=0)
    coef = (max_norm / (total + eps)).clamp(max=1.0)
    for g in grads:
        g.mul_(_per_member(coef, g))
    return total


class PackedSGD:
    """torch.optim.SGD's plain step (the study's: no momentum, no weight decay), with each
    member's own lr: p[m] <- p[m] - lr[m] grad[m]. `lr`: a number or a (P,) tensor, writable
    between steps (a schedule sets it)."""

    def __init__(self, params, lr, members: int):
        self.params, self.members = _params(params), members
        self.lr = lr

    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, lr):
        lr = torch.as_tensor(lr, dtype=torch.float64).clone()
        if lr.dim() == 0:
            lr = lr.expand(self.members).clone()
        if lr.shape != (self.members,):
            raise ValueError(f"lr of shape {tuple(lr.shape)} does not fit a pack of "
                             f"{self.members}: give one number or a ({self.members},) tensor, "
                             f"one lr per member")
        self._lr = lr

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, active=None):
        """One update; `active` (P,) bools, if given: the members that step, the others
        keep their parameters exactly (one whose epoch has a batch fewer, as a random offset
        can give, or one that diverged)."""
        if active is not None and tuple(active.shape) != (self.members,):
            raise ValueError(f"active of shape {tuple(active.shape)} does not fit a pack of "
                             f"{self.members}: give ({self.members},) bools, one per member")
        for p in self.params:
            if p.grad is None:
                continue
            new = torch.addcmul(p, _per_member(self._lr.to(p.device), p), p.grad, value=-1)
            if active is not None:  # where, not lr 0: 0 x a NaN gradient is NaN
                new = torch.where(_per_member(active.to(p.device), p).bool(), new, p)
            p.copy_(new)
