"""Translation's encoder-decoder (models/seq2seq.py's Seq2Seq, d2l's, without attention)
packed: PackedLM's layers, pack, unpack and dropout over two stacks.

Per member, as Seq2Seq.forward: the source embedded and encoded from a zero state; the top
layer's final h the context, concatenated to every embedded target token; the decoder run from
the encoder's final state; the output layer. Parameters stacked under the standalone names
(src_embedding, encoder, tgt_embedding, decoder, output), so `unpack(i)` is member i's
Seq2Seq state_dict. Dropout: each member's generator draws the encoder's masks, then the
decoder's, as its run's one stream would. Attention (model.attention=true) is refused.

Layout: time-major per member. src (P, T_src, B), src_valid_len (P, B), tgt_in (P, T_tgt, B)
ids; logits (P, T_tgt, B, V_tgt).
"""
import torch
import torch.nn.functional as F
from torch import nn

from models.packed import GATES, PackedLM, _zeros, filled, one_form, unpackable
from models.packed_scratch import PackedScratchLM
from models.seq2seq import Seq2Seq


class PackedSeq2Seq(PackedLM):
    """P of Seq2Seq's encoder-decoders of one form; build it with PackedLM.pack."""

    def __init__(self, members: int, mode: str, src_vocab_size: int, tgt_vocab_size: int,
                 num_hiddens: int, num_layers: int, embed_size: int,
                 nonlinearity: str = "tanh", dtype=None, dropout: float = 0.0):
        nn.Module.__init__(self)
        if mode not in GATES:
            raise ValueError(f"mode={mode!r} cannot be packed: it must be one of "
                             f"{', '.join(GATES)} (e.g. mode='gru')")
        self.members, self.mode, self.nonlinearity = members, mode, nonlinearity
        self.vocab_size, self.num_hiddens, self.num_layers = tgt_vocab_size, num_hiddens, \
            num_layers
        self.dropout, self.generators = dropout, None  # seed_dropout sets the generators
        P, kw, E, H = members, {"dtype": dtype}, embed_size, num_hiddens
        self.src_embedding = _zeros(P, {"weight": (src_vocab_size, E)}, kw)
        self.encoder = self._make_core(E, kw)
        self.tgt_embedding = _zeros(P, {"weight": (tgt_vocab_size, E)}, kw)
        self.decoder = self._make_core(E + H, kw)  # an embedded token, then the context
        self.output = _zeros(P, {"weight": (tgt_vocab_size, H), "bias": (tgt_vocab_size,)},
                             kw)

    @classmethod
    def pack(cls, models: list[Seq2Seq]) -> "PackedSeq2Seq":
        """The pack of Seq2Seq `models` without attention (one form, any seeds)."""
        for i, m in enumerate(models):
            if type(m) is not Seq2Seq:
                raise ValueError(unpackable(i, type(m).__name__))
            if m.attention:
                raise ValueError(unpackable(i, "Seq2Seq with attention (model.attention="
                                               "true)"))
        kind, mode, nonlinearity, layers, dropout = one_form(
            models, lambda m: [m.encoder, m.decoder])
        first, cls = models[0], PackedScratchSeq2Seq if kind == "scratch" else PackedSeq2Seq
        src, tgt = first.src_embedding.weight, first.tgt_embedding.weight
        return filled(cls(len(models), mode, src.shape[0], tgt.shape[0], first.num_hiddens,
                          layers, src.shape[1], nonlinearity, dtype=src.dtype,
                          dropout=dropout), models)

    def forward(self, src, src_valid_len, tgt_in):
        """Teacher forcing, each member as Seq2Seq.forward: logits (P, T_tgt, B, V_tgt).
        src_valid_len is not read, as without attention Seq2Seq does not read it."""
        P, B = src.shape[0], src.shape[2]
        members = torch.arange(P, device=src.device)[:, None, None]
        x = self.src_embedding.weight[members, src]  # (P, T_src, B, E)
        _, state = self._run(self.encoder, x, self.begin_state(B, src.device))
        context = (state[0] if self.mode == "lstm" else state)[:, -1]  # top layer (P, B, H)
        y = self.tgt_embedding.weight[members, tgt_in]  # (P, T_tgt, B, E)
        y = torch.cat((y, context[:, None].expand(-1, y.shape[1], -1, -1)), dim=-1)
        out, _ = self._run(self.decoder, y, state)
        return self._project(out)


class PackedScratchSeq2Seq(PackedSeq2Seq, PackedScratchLM):
    """The same over d2l's scratch cells: PackedScratchLM's layers, PackedSeq2Seq's model."""


def member_masked_losses(logits, target, valid_len):
    """Each member's masked_cross_entropy (models/seq2seq.py) as the translation task's loss,
    its sum over valid target tokens divided by their count: (P,) losses and (P,) counts.
    logits (P, T, B, V), target (P, T, B), valid_len (P, B)."""
    P, T, B, V = logits.shape
    ce = F.cross_entropy(logits.reshape(-1, V), target.reshape(-1),
                         reduction="none").view(P, T, B)
    valid = torch.arange(T, device=logits.device)[None, :, None] < valid_len[:, None, :]
    # where, not a product: a padded position's inf or nan must not leak into the sum
    count = valid.sum((1, 2))
    return torch.where(valid, ce, torch.zeros_like(ce)).sum((1, 2)) / count, count
