"""Deep recurrent stacks with a chosen connection between layers:

- "none": each layer reads the one below (torch.nn's stacking);
- "residual": each layer from the second on adds its input to its output (the first has no
  shortcut: its input, one-hot or embedding, has another width);
- "dense": each layer reads the model's input and every earlier layer's output, concatenated,
  and the stack returns every layer's output, concatenated, for the head to read.

Dropout falls between layers only, on what a layer passes up, as in torch.nn.

Layout: time-major, as torch.nn. Input (T, B, I); state (num_layers * D, B, H), a tuple (h, c)
for cells with a memory cell; output (T, B, D * H), or (T, B, num_layers * D * H) when dense.
"""
import torch
from torch import nn

SKIPS = ("none", "residual", "dense")


def layer_input_sizes(input_size: int, width: int, num_layers: int, skip: str) -> list[int]:
    """What each layer reads; `width` is one layer's output size, D * H."""
    if skip == "dense":
        return [input_size + k * width for k in range(num_layers)]
    return [input_size] + [width] * (num_layers - 1)


def output_size(width: int, num_layers: int, skip: str) -> int:
    return width * num_layers if skip == "dense" else width


class Stack(nn.Module):
    def __init__(self, layers: list[nn.Module], skip: str, dropout: float, num_directions: int):
        super().__init__()
        self.layers, self.skip = nn.ModuleList(layers), skip
        self.num_layers, self.num_directions = len(layers), num_directions
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, state):
        D, last = self.num_directions, self.num_layers - 1
        has_cell = isinstance(state, tuple)
        inputs, outputs, finals = x, [], []
        for k, layer in enumerate(self.layers):
            s = tuple(t[k * D:(k + 1) * D] for t in state) if has_cell else state[k * D:(k + 1) * D]
            y, s = layer(inputs, s)  # (T, B, D*H)
            if self.skip == "residual" and k > 0:
                y = y + inputs
            outputs.append(y)
            finals.append(s)
            if k < last:
                up = self.dropout(y)
                inputs = torch.cat((inputs, up), dim=-1) if self.skip == "dense" else up
        out = torch.cat(outputs, dim=-1) if self.skip == "dense" else outputs[-1]
        if has_cell:
            return out, tuple(torch.cat(parts) for parts in zip(*finals))
        return out, torch.cat(finals)
