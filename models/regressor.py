"""The companion note's Transformer regressor: Linear(in, d_model), torch.nn.TransformerEncoder
with torch's defaults, Linear(d_model, out). No embedding, no positional encoding, no mask.

The note's quirk, kept because its numbers depend on it: it passes (batch, length, features) to
an encoder built sequence-first (batch_first=False), so attention runs across the batch's 16
samples at each of the 10 positions, not along a sample's positions. `batch_first=True` is the
layout the note presumably meant; it is a different model.

nn.TransformerEncoder deep-copies its layer: every layer starts with the same weights, as in
the note (an init scheme then re-draws them layer by layer).
"""
from torch import nn

from models.transformer import transformer_problems


class EncoderRegressor(nn.Module):
    sees_future = False  # it predicts each target from its own input; nothing is hidden

    def __init__(self, in_features: int, out_features: int, num_hiddens: int = 256,
                 num_heads: int = 4, ffn_num_hiddens: int = 2048, num_layers: int = 6,
                 dropout: float = 0.1, norm_first: bool = False, batch_first: bool = False,
                 cell: str = "transformer", positional: str | None = None,
                 max_len: int | None = None):
        """`positional` and `max_len` come with conf/model/transformer.yaml, for the other
        tasks' Transformers; the note's model has no positions and reads neither. Named here,
        not swallowed by **kwargs, so that a key no constructor takes is refused (a typo)."""
        super().__init__()
        sizes = {"num_hiddens": num_hiddens, "num_heads": num_heads,
                 "ffn_num_hiddens": ffn_num_hiddens, "num_layers": num_layers}
        if problems := transformer_problems(cell, **sizes):
            raise ValueError("; ".join(problems))
        self.input = nn.Linear(in_features, num_hiddens)  # built first: the note's RNG order
        layer = nn.TransformerEncoderLayer(num_hiddens, num_heads, ffn_num_hiddens, dropout,
                                           norm_first=norm_first, batch_first=batch_first)
        # nested tensors only serve padding masks, which this model has none of
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.output = nn.Linear(num_hiddens, out_features)

    def forward(self, x):
        """x (batch, length, in_features) -> (batch, length, out_features)."""
        return self.output(self.encoder(self.input(x)))
