"""A recurrent language model: token ids -> one-hot (as d2l) or embedding -> recurrent core ->
linear output layer over the vocabulary. Layout: time-major, inputs (T, B) -> logits (T, B, V).

The core is built from `layer`, the class conf/model/<name>.yaml names in `_target_` (or a
partial of it with its own options), by models.core.make_core. A layer may declare the output
layer it is drawn with: d2l's `_scratch` layers do, so that with one-hot input this is d2l's
RNNModelScratch, `output` its H W_hq + b_q with its init (models/scratch.py)."""
import torch
import torch.nn.functional as F
from torch import nn

from models.core import has_memory_cell, layer_class, make_core
from models.stack import output_size


class LanguageModel(nn.Module):
    def __init__(self, vocab_size: int, layer, num_hiddens: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0,
                 embed_size: int | None = None, skip: str = "none", name: str | None = None):
        """`name`: the model's (model.cell), for messages."""
        super().__init__()
        self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
        self.has_memory_cell = has_memory_cell(layer)
        self.num_state_layers = num_layers * (2 if bidirectional else 1)
        # A bidirectional core reads the tokens it is asked to predict: a misuse the study shows.
        self.sees_future = bidirectional
        if embed_size:
            self.embedding = nn.Embedding(vocab_size, embed_size)
        else:  # one-hot as a lookup into a fixed identity: one op, float output, no int64 copy
            self.register_buffer("one_hot", torch.eye(vocab_size), persistent=False)
        self.core = make_core(layer, embed_size or vocab_size, num_hiddens, num_layers,
                              bidirectional, dropout, skip, name)
        width = num_hiddens * (2 if bidirectional else 1)
        # d2l's W_hq, b_q belong to its scratch models' params, drawn with the rest: their init
        output = getattr(layer_class(layer), "output_layer", nn.Linear)
        self.output = output(output_size(width, num_layers, skip), vocab_size)

    def begin_state(self, batch_size: int, device=None):
        h = torch.zeros(self.num_state_layers, batch_size, self.num_hiddens, device=device)
        return (h, torch.zeros_like(h)) if self.has_memory_cell else h

    def forward(self, inputs, state):
        table = self.embedding.weight if hasattr(self, "embedding") else self.one_hot
        x = F.embedding(inputs, table)  # (T, B, E)
        out, state = self.core(x, state)  # (T, B, D*H)
        return self.output(out), state  # (T, B, V)


def detach(state):
    """Cut the graph at a batch boundary while keeping the state's values (tuple for LSTM)."""
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def generate(model: LanguageModel, prefix_ids: list[int], num_preds: int, device) -> list[int]:
    """Greedy continuation, as d2l's predict_ch8: warm the state up on the prefix, then feed
    back the argmax for `num_preds` steps."""
    was_training = model.training
    model.eval()
    state = model.begin_state(1, device)
    logits, state = model(torch.tensor(prefix_ids, device=device).reshape(-1, 1), state)
    out = []
    for _ in range(num_preds):
        out.append(int(logits[-1, 0].argmax()))
        logits, state = model(torch.tensor([[out[-1]]], device=device), state)
    model.train(was_training)
    return out
