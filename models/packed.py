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

Dropout between layers (model.dropout, num_layers > 1) is applied where the standalone layers
apply it, with the same p, but each member draws its masks from its own generator
(`seed_dropout`), so a member's masks do not depend on the pack; not the standalone run's masks.
d2l's scratch form (models/scratch.py) packs as PackedScratchLM (models/packed_scratch.py),
translation's encoder-decoder without attention as PackedSeq2Seq (models/packed_seq2seq.py);
the per-member clip and SGD are in models/packed_optim.py, the memory count (`packed_bytes`)
in models/packed_memory.py.

Layout: time-major per member. Inputs (P, T, B) token ids, state (P, L, B, H) (a tuple (h, c)
for lstm), logits (P, T, B, V).
"""
import hashlib

import torch
import torch.nn.functional as F
from torch import nn

from models.fused import FusedRNN
from models.lm import LanguageModel
from models.packed_memory import packed_bytes
from models.packed_optim import PackedSGD, clip_per_member
from models.scratch import ScratchRNN
from models.seq2seq import Seq2Seq

__all__ = ["PackedLM", "PackedSGD", "clip_per_member", "dropout_seed", "member_losses",
           "packed_bytes"]

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
NN_MODES = {nn.RNN: "rnn", nn.GRU: "gru", nn.LSTM: "lstm"}
WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _core_form(core: nn.Module) -> tuple:
    """(kind, mode, nonlinearity, num_layers, dropout) of a standalone core a pack can compute,
    or why not; kind: "nn" (torch.nn's or the fused layers' function) or "scratch" (d2l's)."""
    if isinstance(core, ScratchRNN):
        kind, mode = "scratch", core.mode
        nonlinearity = "relu" if core.act is torch.relu else "tanh"
        bidirectional = core.num_directions == 2
    elif isinstance(core, FusedRNN):
        kind, mode, nonlinearity = "nn", core.mode, "relu" if core.relu else "tanh"
        bidirectional = core.num_directions == 2
    elif type(core) in NN_MODES:  # the same parameters and function as the fused layers
        kind, mode = "nn", NN_MODES[type(core)]
        nonlinearity, bidirectional = getattr(core, "nonlinearity", "tanh"), core.bidirectional
        if getattr(core, "proj_size", 0):
            raise ValueError(f"cannot pack an LSTM with proj_size={core.proj_size}: only "
                             f"proj_size=0 is packed (build the members without it)")
    else:
        raise ValueError(f"cannot pack a {type(core).__name__} core: packs compute rnn, gru "
                         f"and lstm stacked plainly (model.skip=none), torch.nn's, fused or "
                         f"d2l's scratch; train this model unpacked (launcher.pack=1)")
    if bidirectional:
        raise ValueError("cannot pack model.bidirectional=true: packs run one way (use "
                         "model.bidirectional=false, or train unpacked)")
    dropout = float(core.dropout) if core.num_layers > 1 else 0.0  # torch.nn's: between layers
    return kind, mode, nonlinearity, core.num_layers, dropout


def unpackable(i: int, what: str) -> str:
    return (f"cannot pack models[{i}], a {what}: packs hold the recurrent LanguageModel and "
            f"translation's encoder-decoder without attention, not the Transformer; train it "
            f"unpacked (launcher.pack=1)")


def one_form(models: list, cores) -> tuple:
    """_core_form of the models' cores (`cores(model)`: its list), the same for all of them
    and their state_dicts' shapes and dtypes too, or why not."""
    if not models:
        raise ValueError("pack() got no models: give it at least one LanguageModel")
    forms = {_core_form(core) for core in cores(models[0])}
    form = forms.pop()
    shapes = {k: (v.shape, v.dtype) for k, v in models[0].state_dict().items()}
    for i, m in enumerate(models[1:], 1):
        other = {k: (v.shape, v.dtype) for k, v in m.state_dict().items()}
        if {_core_form(core) for core in cores(m)} != {form} or other != shapes:
            raise ValueError(f"models[{i}] is not of models[0]'s form ({form[1]}, {form[2]}, "
                             f"{form[3]} layer(s), dropout {form[4]}, the same impl, sizes "
                             f"and dtype): a pack holds runs of one sweep point, differing "
                             f"only by seed")
    return form


def filled(packed: nn.Module, models: list) -> nn.Module:
    """`packed` with the models' parameters stacked in, on their device."""
    states = [m.state_dict() for m in models]
    with torch.no_grad():
        for name, p in packed.state_dict(keep_vars=True).items():
            p.copy_(torch.stack([s[name] for s in states]))
    return packed.to(next(models[0].parameters()).device)


def _zeros(members: int, shapes: dict, kw: dict) -> nn.Module:
    """A module holding zero parameters of the given names, each (members, *shape)."""
    module = nn.Module()
    for name, shape in shapes.items():
        module.register_parameter(name, nn.Parameter(torch.zeros(members, *shape, **kw)))
    return module


def dropout_seed(seed: int) -> int:
    """The seed of a member's dropout generator: the first 4 bytes of sha256("dropout/<seed>"),
    little-endian. Not `seed` itself, whose stream the run's init and minibatch generator
    already draw; 32 bits, as torch's CPU generator keeps only those."""
    return int.from_bytes(hashlib.sha256(f"dropout/{seed}".encode()).digest()[:4], "little")


class PackedLM(nn.Module):
    """P recurrent language models of one form as one module; build it with `pack`."""

    # The members that draw dropout masks in the next forwards (None: all). A member sitting
    # a step out (PackedSGD.step(active)) draws none, so its generator moves only with its
    # own steps, as in a pack of one: set by the caller (runner/tasks/pack_loop.py).
    drawing: list[bool] | None = None

    def __init__(self, members: int, mode: str, vocab_size: int, num_hiddens: int,
                 num_layers: int = 1, embed_size: int | None = None,
                 nonlinearity: str = "tanh", dtype=None, dropout: float = 0.0):
        """Zero parameters in the standalone layout, each with a leading member dimension;
        `pack` fills them with the members' own."""
        super().__init__()
        if mode not in GATES:
            raise ValueError(f"mode={mode!r} cannot be packed: it must be one of "
                             f"{', '.join(GATES)} (e.g. mode='gru')")
        self.members, self.mode, self.nonlinearity = members, mode, nonlinearity
        self.vocab_size, self.num_hiddens, self.num_layers = vocab_size, num_hiddens, num_layers
        self.dropout, self.generators = dropout, None  # seed_dropout sets the generators
        P, kw = members, {"dtype": dtype}
        if embed_size:
            self.embedding = _zeros(P, {"weight": (vocab_size, embed_size)}, kw)
        else:  # one-hot, as the standalone model: a lookup into a fixed identity
            self.register_buffer("one_hot", torch.eye(vocab_size, **kw), persistent=False)
        self.core = self._make_core(embed_size or vocab_size, kw)
        self.output = _zeros(P, {"weight": (vocab_size, num_hiddens), "bias": (vocab_size,)},
                             kw)

    def _make_core(self, input_size: int, kw: dict) -> nn.Module:
        """A stack's zero parameters, layer k's named <name>_l<k>, as the standalone core's."""
        sizes = [input_size] + [self.num_hiddens] * (self.num_layers - 1)
        return _zeros(self.members, {f"{name}_l{k}": shape for k, size in enumerate(sizes)
                                     for name, shape in self._layer_shapes(size)}, kw)

    def _layer_shapes(self, input_size: int):
        """(name, shape) of one layer's parameters, per member: torch.nn's."""
        G, H = GATES[self.mode] * self.num_hiddens, self.num_hiddens
        return zip(WEIGHTS, ((G, input_size), (G, H), (G,), (G,)))

    @classmethod
    def pack(cls, models: list[LanguageModel]) -> "PackedLM":
        """The pack of `models` (one form, any seeds), their parameters copied in bit for bit:
        a PackedScratchLM for d2l's scratch models, a PackedSeq2Seq for translation's
        encoder-decoder. With dropout, call `seed_dropout` next."""
        if models and type(models[0]) is Seq2Seq:
            from models.packed_seq2seq import PackedSeq2Seq  # it builds on this class
            return PackedSeq2Seq.pack(models)
        for i, m in enumerate(models):
            if type(m) is not LanguageModel or type(m.output) is not nn.Linear:
                raise ValueError(unpackable(i, type(m).__name__))
        kind, mode, nonlinearity, layers, dropout = one_form(models, lambda m: [m.core])
        cls = PackedLM  # the models' form decides, whichever subclass is asked
        if kind == "scratch":
            from models.packed_scratch import PackedScratchLM  # it builds on this class
            cls = PackedScratchLM
        first = models[0]
        embed = first.embedding.embedding_dim if hasattr(first, "embedding") else None
        return filled(cls(len(models), mode, first.vocab_size, first.num_hiddens, layers,
                          embed, nonlinearity, dtype=first.output.weight.dtype,
                          dropout=dropout), models)

    def seed_dropout(self, seeds) -> "PackedLM":
        """Give member i its own dropout generator, seeded with dropout_seed(seeds[i]) on the
        pack's device (call it after .to(device)): its masks are then the same in any pack.
        Its state (`generators[i].get_state()`) is what a checkpoint must keep."""
        if len(seeds) != self.members:
            raise ValueError(f"seed_dropout got {len(seeds)} seeds for a pack of "
                             f"{self.members}: give one seed per member, its run's seed")
        device = self.output.weight.device
        self.generators = [torch.Generator(device).manual_seed(dropout_seed(int(s)))
                           for s in seeds]
        return self

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
        x, state = self._run(self.core, x, state)
        return self._project(x), state

    def _run(self, core, x, state):
        """The stack `core` over x (P, T, B, I) from `state`: its output (P, T, B, H) and
        its new state."""
        h0, c0 = state if self.mode == "lstm" else (state, None)
        h_n, c_n = [], []
        for k in range(self.num_layers):
            if k:  # between layers, as the standalone layers
                x = self._dropout(x)
            x, h, c = self._layer(core, k, x, h0[:, k], None if c0 is None else c0[:, k])
            h_n.append(h)
            c_n.append(c)
        h_n = torch.stack(h_n, 1)
        return x, ((h_n, torch.stack(c_n, 1)) if self.mode == "lstm" else h_n)

    def _project(self, x):
        """The output layer: x (P, T, B, H) -> logits (P, T, B, V)."""
        P, T, B = x.shape[:3]
        logits = torch.baddbmm(self.output.bias[:, None], x.reshape(P, T * B, -1),
                               self.output.weight.transpose(1, 2))
        return logits.view(P, T, B, -1)

    def _dropout(self, x):
        """F.dropout's arithmetic (x * bernoulli(1 - p) / (1 - p)), one (T, B, H) mask per
        member from its own generator, in its own order."""
        if not (self.dropout and self.training):
            return x
        if self.generators is None:
            raise RuntimeError(f"this pack has dropout {self.dropout}: call "
                               f"seed_dropout(seeds) once before training, one seed per member")
        keep, drawing = 1 - self.dropout, self.drawing or [True] * self.members
        shape, kw = x.shape[1:], {"dtype": x.dtype, "device": x.device}
        masks = torch.stack([torch.empty(shape, **kw).bernoulli_(keep, generator=g) if on
                             else torch.full(shape, keep, **kw)  # kept whole: no draw
                             for g, on in zip(self.generators, drawing)])
        return x * masks.div_(keep)

    def _layer(self, core, k, x, h, c):
        """Layer k of `core` over all steps: x (P, T, B, I) -> its output (P, T, B, H), last
        h and c."""
        P, T, B = x.shape[:3]
        w_ih, w_hh, b_ih, b_hh = (getattr(core, f"{n}_l{k}") for n in WEIGHTS)
        # every step's input projection at once: (P, T*B, G*H)
        xp = torch.baddbmm(b_ih[:, None], x.reshape(P, T * B, -1), w_ih.transpose(1, 2))
        xs, out = xp.view(P, T, B, -1).unbind(1), []
        for t in range(T):
            hp = torch.baddbmm(b_hh[:, None], h, w_hh.transpose(1, 2))  # (P, B, G*H)
            h, c = self._cell(xs[t], hp, h, c)
            out.append(h)
        return torch.stack(out, 1), h, c

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
