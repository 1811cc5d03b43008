"""Transformers on torch.nn's layers (d2l's knob names: num_hiddens = d_model, ffn_num_hiddens =
dim_feedforward): a causal, decoder-only language model with the interface of
models.lm.LanguageModel, and d2l's encoder-decoder for translation with the interface of
models.seq2seq.Seq2Seq.

Layout: time-major everywhere (batch_first=False), as the rest of the repo. Token ids (T, B),
activations (T, B, H), logits (T, B, V). The language model's state is not a hidden vector but
the ids of the last `context` tokens, (C, B): each call re-reads them as a causal prefix.
"""
import math

import torch
from torch import nn

POSITIONALS = ("sinusoidal", "learned")
# The transformers' sizes: the smallest value, what else is asked, an example.
SIZES = {"num_hiddens": (1, "", 256), "num_heads": (1, " dividing model.num_hiddens", 4),
         "ffn_num_hiddens": (1, "", 1024), "num_layers": (1, "", 2), "max_len": (1, "", 1024),
         "context": (0, " (past tokens kept as state)", 35)}  # the language model's only


def transformer_problems(cell: str = "transformer", positional: str = "sinusoidal",
                         **sizes) -> list[str]:
    """The rules a transformer's options obey, the one place they are written: each broken
    rule as one line in runner/run/validate.py's form, `model.X=<value> is not allowed: it
    must be ... (e.g. ...)`. Validation reports them with the config's other problems before
    any work; TransformerLM and TransformerSeq2Seq raise them. `sizes`: any of SIZES; one not
    given is not checked (the constructor's default holds). Empty: the options are fine."""
    if cell != "transformer":
        return [f"model.cell={cell!r} is not allowed: it must be transformer; recurrent cells "
                f"are models.LanguageModel and models.Seq2Seq (e.g. model.cell=transformer)"]
    problems, valid = [], set()
    for key, value in sizes.items():
        lo, more, example = SIZES[key]
        if isinstance(value, int) and not isinstance(value, bool) and value >= lo:
            valid.add(key)
        else:
            problems.append(f"model.{key}={value!r} is not allowed: it must be an integer >= "
                            f"{lo}{more} (e.g. model.{key}={example})")
    hiddens, heads = sizes.get("num_hiddens"), sizes.get("num_heads")
    if {"num_hiddens", "num_heads"} <= valid and hiddens % heads:
        problems.append(f"model.num_heads={heads} is not allowed: it must divide "
                        f"model.num_hiddens={hiddens} (e.g. model.num_heads=4)")
    if positional not in POSITIONALS:
        problems.append(f"model.positional={positional!r} is not allowed: it must be one of "
                        f"{', '.join(POSITIONALS)} (e.g. model.positional=learned)")
    return problems


def _raise(problems: list[str]) -> None:
    if problems:
        raise ValueError("; ".join(problems))


class TokenEmbedding(nn.Module):
    """ids (T, B) -> embedding * sqrt(num_hiddens) + position, then dropout (as d2l). Positions
    count from 0 at the first row: the callers always pass a whole window."""

    def __init__(self, vocab_size: int, num_hiddens: int, positional: str, max_len: int,
                 dropout: float):
        super().__init__()
        self.scale, self.max_len = math.sqrt(num_hiddens), max_len
        self.embedding = nn.Embedding(vocab_size, num_hiddens)
        if positional == "learned":
            self.position = nn.Embedding(max_len, num_hiddens)
        else:  # d2l's PositionalEncoding: sin on even, cos on odd columns; fixed, not saved
            pos = torch.arange(max_len, dtype=torch.float32)[:, None]
            freq = torch.pow(10000, torch.arange(0, num_hiddens, 2) / num_hiddens)
            table = torch.zeros(max_len, num_hiddens)
            table[:, 0::2] = torch.sin(pos / freq)
            table[:, 1::2] = torch.cos(pos / freq)[:, :num_hiddens // 2]  # odd widths: one less
            self.register_buffer("table", table, persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids):
        T = ids.shape[0]
        if T > self.max_len:
            raise ValueError(f"the input has {T} positions but model.max_len={self.max_len}; "
                             f"raise model.max_len to at least {T}")
        table = self.position.weight if hasattr(self, "position") else self.table
        return self.dropout(self.embedding(ids) * self.scale + table[:T, None])  # (T, B, H)


def _layer_kw(num_hiddens, num_heads, ffn_num_hiddens, dropout, norm_first) -> dict:
    return dict(d_model=num_hiddens, nhead=num_heads, dim_feedforward=ffn_num_hiddens,
                dropout=dropout, norm_first=norm_first)


def _final_norm(num_hiddens, norm_first):
    # Pre-LN leaves the residual stream unnormalised after the last layer; post-LN ends in one.
    return nn.LayerNorm(num_hiddens) if norm_first else None


def _encoder(num_hiddens, num_heads, ffn_num_hiddens, num_layers, dropout, norm_first):
    layer = nn.TransformerEncoderLayer(**_layer_kw(num_hiddens, num_heads, ffn_num_hiddens,
                                                   dropout, norm_first))
    # No nested tensors: they only pay off with key padding, and torch warns for pre-LN.
    return nn.TransformerEncoder(layer, num_layers, _final_norm(num_hiddens, norm_first),
                                 enable_nested_tensor=False)


def _causal(n: int, device) -> torch.Tensor:
    return nn.Transformer.generate_square_subsequent_mask(n, device)  # (n, n), -inf above diag


class TransformerLM(nn.Module):
    """A causal language model: an encoder stack under a causal mask, and a linear output layer."""

    def __init__(self, vocab_size: int, cell: str = "transformer", num_hiddens: int = 256,
                 num_heads: int = 4, ffn_num_hiddens: int = 1024, num_layers: int = 6,
                 dropout: float = 0.1, positional: str = "sinusoidal", norm_first: bool = False,
                 context: int = 35, max_len: int = 1024):
        super().__init__()
        _raise(transformer_problems(cell, positional, num_hiddens=num_hiddens,
                                    num_heads=num_heads, ffn_num_hiddens=ffn_num_hiddens,
                                    num_layers=num_layers, max_len=max_len, context=context))
        self.cell, self.vocab_size, self.num_hiddens = cell, vocab_size, num_hiddens
        self.context = context
        self.sees_future = False  # the causal mask hides every later position
        self.embed = TokenEmbedding(vocab_size, num_hiddens, positional, max_len, dropout)
        self.encoder = _encoder(num_hiddens, num_heads, ffn_num_hiddens, num_layers, dropout,
                                norm_first)
        self.output = nn.Linear(num_hiddens, vocab_size)

    def begin_state(self, batch_size: int, device=None):
        return torch.zeros(0, batch_size, dtype=torch.long, device=device)  # no context yet

    def forward(self, inputs, state):
        """inputs (T, B) ids; state (C, B) ids of the tokens before them. Returns logits for
        the T inputs (T, B, V) and the last `context` ids of the window as the new state."""
        window = torch.cat((state, inputs))  # (C + T, B)
        h = self.embed(window)  # (C + T, B, H)
        h = self.encoder(h, mask=_causal(len(window), h.device), is_causal=True)
        logits = self.output(h[len(state):])  # (T, B, V): the context rows are only read
        # ids carry no graph, so models.lm.detach's .detach() is a no-op on this state.
        return logits, window[max(len(window) - self.context, 0):]  # (min(C + T, context), B)


class TransformerSeq2Seq(nn.Module):
    """d2l's Transformer for translation: an encoder stack over the padded source, a decoder
    stack (causal self-attention, cross-attention to the source), a linear output layer."""
    sees_future = False  # the decoder's causal mask hides every later target token

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, cell: str = "transformer",
                 num_hiddens: int = 32, num_heads: int = 4, ffn_num_hiddens: int = 64,
                 num_layers: int = 2, dropout: float = 0.1, positional: str = "sinusoidal",
                 norm_first: bool = False, max_len: int = 1024):
        super().__init__()
        _raise(transformer_problems(cell, positional, num_hiddens=num_hiddens,
                                    num_heads=num_heads, ffn_num_hiddens=ffn_num_hiddens,
                                    num_layers=num_layers, max_len=max_len))
        self.cell, self.num_hiddens = cell, num_hiddens
        # Each side has its own tokens, and with positional=learned its own positions.
        self.src_embed = TokenEmbedding(src_vocab_size, num_hiddens, positional, max_len, dropout)
        self.tgt_embed = TokenEmbedding(tgt_vocab_size, num_hiddens, positional, max_len, dropout)
        self.encoder = _encoder(num_hiddens, num_heads, ffn_num_hiddens, num_layers, dropout,
                                norm_first)
        layer = nn.TransformerDecoderLayer(**_layer_kw(num_hiddens, num_heads, ffn_num_hiddens,
                                                       dropout, norm_first))
        self.decoder = nn.TransformerDecoder(layer, num_layers,
                                             _final_norm(num_hiddens, norm_first))
        self.output = nn.Linear(num_hiddens, tgt_vocab_size)

    def encode(self, src, src_valid_len):
        """src (T_src, B), src_valid_len (B,) -> memory (T_src, B, H) and the padding mask
        (B, T_src), True at t >= src_valid_len[b], for the decoder's cross-attention."""
        t = torch.arange(src.shape[0], device=src.device)
        pad = t[None, :] >= src_valid_len.to(src.device)[:, None]  # (B, T_src)
        return self.encoder(self.src_embed(src), src_key_padding_mask=pad), pad

    def decode(self, tgt_in, memory, pad):
        """tgt_in (T, B) -> logits (T, B, V): causal self-attention, padded keys unseen."""
        y = self.tgt_embed(tgt_in)  # (T, B, H)
        y = self.decoder(y, memory, tgt_mask=_causal(len(y), y.device), tgt_is_causal=True,
                         memory_key_padding_mask=pad)
        return self.output(y)

    def forward(self, src, src_valid_len, tgt_in):
        """Teacher forcing: tgt_in (T_tgt, B) is <bos> then the target shifted right (built by
        the caller). Returns logits (T_tgt, B, V_tgt)."""
        return self.decode(tgt_in, *self.encode(src, src_valid_len))

    @torch.no_grad()
    def translate(self, src: torch.Tensor, src_valid_len: int, bos: int, eos: int,
                  max_len: int) -> tuple[list[int], None]:
        """Greedy decoding of one sentence, src (T_src,) ids, as Seq2Seq.translate: feed <bos>,
        then each step's argmax, until <eos> (left out) or max_len tokens. Each step re-runs the
        decoder over the whole prefix (no key/value cache: sentences are short). No attention
        weights are kept, so the second item is None."""
        was_training = self.training
        self.eval()
        try:
            src = src.reshape(-1, 1)  # (T_src, 1)
            memory, pad = self.encode(src, torch.tensor([src_valid_len], device=src.device))
            ys = torch.tensor([[bos]], device=src.device)  # (1, 1), grows by a row a step
            ids = []
            for _ in range(max_len):
                token = int(self.decode(ys, memory, pad)[-1, 0].argmax())
                if token == eos:
                    break
                ids.append(token)
                ys = torch.cat((ys, ys.new_tensor([[token]])))
            return ids, None
        finally:
            self.train(was_training)
