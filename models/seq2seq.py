"""A recurrent encoder-decoder for machine translation, as d2l 0.17.6 (Seq2SeqEncoder with
Seq2SeqDecoder, or Seq2SeqAttentionDecoder with additive attention), on any recurrent layer
(conf/model/<name>.yaml's `_target_`), stacked by models.core.make_core.

Layout: time-major everywhere. src (T_src, B) and tgt_in (T_tgt, B) token ids, valid lengths
(B,), encoder outputs (T_src, B, H), state (L, B, H) (for LSTM a tuple (h, c)), logits
(T_tgt, B, V_tgt).
"""
import torch
import torch.nn.functional as F
from torch import nn

from models.core import has_memory_cell, make_core
from models.stack import output_size


def _top(state) -> torch.Tensor:
    """The top layer's hidden state (B, H); an LSTM's state is (h, c) and only h is read."""
    return (state[0] if isinstance(state, tuple) else state)[-1]


def bidirectional_problems(bidirectional: bool) -> list[str]:
    """Seq2Seq's rule for model.bidirectional, the one place it is written: a broken rule as one
    line in runner/run/validate.py's form (validation reports it with the config's other
    problems before any work; Seq2Seq raises it), or none."""
    if not bidirectional:
        return []
    # The decoder is initialised with the encoder's (L, B, H) state and its context is one
    # H-vector; a bidirectional encoder would need a bridge d2l does not have.
    return [f"model.bidirectional={bidirectional!r} is not allowed: it must be false "
            f"(translation) (e.g. model.bidirectional=false)"]


class AdditiveAttention(nn.Module):
    """Bahdanau attention, d2l's AdditiveAttention: score = w_v^T tanh(W_q q + W_k k)."""

    def __init__(self, key_size: int, query_size: int, num_hiddens: int, dropout: float = 0.0):
        super().__init__()
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=False)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query, keys_proj, values, valid_len):
        """query (B, Hq); keys_proj = W_k(keys) (T, B, H), projected once per sequence since
        the keys do not change across decoder steps (d2l recomputes it: same values);
        values (T, B, Hv); valid_len (B,). Returns context (B, Hv) and weights (T, B)."""
        features = torch.tanh(self.W_q(query).unsqueeze(0) + keys_proj)  # (T, B, H)
        scores = self.w_v(features).squeeze(-1)  # (T, B)
        # d2l's masked_softmax: padded keys get -1e6, so exp() makes their weight exactly 0.
        pad = torch.arange(scores.shape[0], device=scores.device)[:, None] >= valid_len[None, :]
        weights = scores.masked_fill(pad, -1e6).softmax(dim=0)  # (T, B), sums to 1 over T
        context = torch.einsum("tb,tbh->bh", self.dropout(weights), values)  # (B, Hv)
        return context, weights


class Seq2Seq(nn.Module):
    sees_future = False  # the decoder reads only the target tokens before each prediction

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, layer, num_hiddens: int,
                 num_layers: int = 1, dropout: float = 0.0, embed_size: int | None = 32,
                 attention: bool = False, bidirectional: bool = False, skip: str = "none",
                 name: str | None = None):
        """`layer`: the recurrent layer's class or partial (models.core); `name`: the
        model's (model.cell), for messages."""
        super().__init__()
        problems = bidirectional_problems(bidirectional)
        if problems:
            raise ValueError("; ".join(problems))
        embed_size = embed_size or num_hiddens
        self.num_hiddens, self.attention = num_hiddens, attention
        self.has_memory_cell = has_memory_cell(layer)
        self.src_embedding = nn.Embedding(src_vocab_size, embed_size)
        self.encoder = make_core(layer, embed_size, num_hiddens, num_layers, False, dropout,
                                 skip, name)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, embed_size)
        # The decoder reads a context next to each embedded token: the encoder's top state (H),
        # or with attention a weighted sum of its outputs (width: H, or L*H with dense skips).
        width = output_size(num_hiddens, num_layers, skip)
        context_size = width if attention else num_hiddens
        self.decoder = make_core(layer, embed_size + context_size, num_hiddens, num_layers,
                                 False, dropout, skip, name)
        if attention:
            self.attn = AdditiveAttention(width, num_hiddens, num_hiddens, dropout)
        self.output = nn.Linear(width, tgt_vocab_size)

    def begin_state(self, batch_size: int, device=None):
        h = torch.zeros(self.encoder.num_layers, batch_size, self.num_hiddens, device=device)
        return (h, torch.zeros_like(h)) if self.has_memory_cell else h

    def encode(self, src):
        """src (T_src, B) -> outputs (T_src, B, H), final state (L, B, H) or (h, c)."""
        x = self.src_embedding(src)  # (T_src, B, E)
        return self.encoder(x, self.begin_state(src.shape[1], src.device))

    def decode(self, tgt_in, state, memory):
        """One call of d2l's decoder forward. tgt_in (T, B); state: the decoder's state;
        memory: the fixed context (B, H) without attention, or (outputs (T_src, B, H),
        W_k(outputs), src_valid_len) with it. Returns logits (T, B, V), the new state and
        the attention weights (T, B, T_src) or None."""
        x = self.tgt_embedding(tgt_in)  # (T, B, E)
        if not self.attention:
            # d2l 0.17.6 takes the context from the state passed in, which is the encoder's
            # during training but the decoder's own latest state during its step-by-step
            # prediction; we keep the encoder's context at every step (as in training, and as
            # d2l 1.0 does).
            context = memory.unsqueeze(0).expand(x.shape[0], -1, -1)  # (T, B, H)
            out, state = self.decoder(torch.cat((x, context), dim=-1), state)  # (T, B, H)
            return self.output(out), state, None
        enc_out, keys_proj, src_valid_len = memory
        outs, weights = [], []
        for x_t in x:  # one step at a time: the query is the state the last step left
            context, w = self.attn(_top(state), keys_proj, enc_out, src_valid_len)
            step_in = torch.cat((context, x_t), dim=-1).unsqueeze(0)  # (1, B, H + E)
            out, state = self.decoder(step_in, state)  # (1, B, H)
            outs.append(out)
            weights.append(w.t())  # (B, T_src)
        return self.output(torch.cat(outs)), state, torch.stack(weights)

    def memory(self, enc_out, enc_state, src_valid_len):
        """What decode reads of the source: the encoder's top state, or with attention its
        outputs, their keys and the source's valid length."""
        if not self.attention:
            return _top(enc_state)  # (B, H)
        return enc_out, self.attn.W_k(enc_out), src_valid_len

    def forward(self, src, src_valid_len, tgt_in):
        """Teacher forcing: tgt_in (T_tgt, B) is <bos> then the target shifted right (built by
        the caller). Returns logits (T_tgt, B, V_tgt)."""
        enc_out, enc_state = self.encode(src)
        memory = self.memory(enc_out, enc_state, src_valid_len)
        logits, _, _ = self.decode(tgt_in, enc_state, memory)
        return logits

    @torch.no_grad()
    def translate(self, src: torch.Tensor, src_valid_len: int, bos: int, eos: int,
                  max_len: int) -> tuple[list[int], list | None]:
        """Greedy decoding of one sentence, src (T_src,) ids (d2l's predict_seq2seq): feed
        <bos>, then each step's argmax, until <eos> (left out of the output) or max_len tokens.
        Returns the ids and, with attention, one weight tensor (T_src,) per step (else None)."""
        was_training = self.training
        self.eval()
        try:
            src = src.reshape(-1, 1)  # (T_src, 1)
            valid = torch.tensor([src_valid_len], device=src.device)
            enc_out, state = self.encode(src)
            memory = self.memory(enc_out, state, valid)
            y = torch.tensor([[bos]], device=src.device)  # (1, 1)
            ids, attn = [], [] if self.attention else None
            for _ in range(max_len):
                logits, state, weights = self.decode(y, state, memory)  # (1, 1, V)
                if weights is not None:
                    attn.append(weights[0, 0].cpu())  # (T_src,)
                y = logits.argmax(dim=-1)  # (1, 1)
                token = int(y)
                if token == eos:
                    break
                ids.append(token)
            return ids, attn
        finally:
            self.train(was_training)


def masked_cross_entropy(logits, target, valid_len) -> tuple[torch.Tensor, torch.Tensor]:
    """logits (T, B, V), target (T, B), valid_len (B,) -> (sum of the token cross-entropies
    over valid positions, number of valid tokens), both tensors (no host sync); positions
    t >= valid_len[b] count for nothing. Unlike d2l's MaskedSoftmaxCELoss, which averages each
    sequence over all its T positions (padding as zeros), this sums per token, so that
    sum / count is the mean per valid token and training perplexity = exp(sum / count)."""
    T, B, V = logits.shape
    ce = F.cross_entropy(logits.reshape(T * B, V), target.reshape(T * B),
                         reduction="none").view(T, B)
    valid = torch.arange(T, device=logits.device)[:, None] < valid_len[None, :]  # (T, B)
    # where, not a product: a padded position's inf or nan must not leak into the sum.
    return torch.where(valid, ce, torch.zeros_like(ce)).sum(), valid.sum()
