"""torch.nn's recurrent layers under the cell contract (docs/extend-cell.md): the factories
that conf/model/rnn.yaml, gru.yaml and lstm.yaml name in `_target_`. They build torch.nn's own
modules (exactly: code that tests `type(m) is nn.GRU`, as d2l's xavier_init_weights does,
still recognises them) from the study's names (`num_hiddens`), and declare what the network
needs to know instead of a table of names:

- `has_memory_cell`: the state is a tuple (h, c) (lstm), not one tensor;
- `implementations`: what model.impl may pick to compute the same function (models/fused.py's
  hand-written BPTT for rnn and gru; none for lstm, whose torch.nn layer is one oneDNN kernel
  on CPU already, and a fused one written the same way lost);
- `problems`: the rules of the layer's own options, in validation's form.

The arguments `num_layers` (with `dropout` between layers) and `bidirectional` say that the
layer stacks its own layers and can run both ways (models/core.py reads the signature).
Layout: time-major. Input (T, B, I); state (L*D, B, H); output (T, B, D*H).
"""
from torch import nn

from models.fused import FusedRNN

NONLINEARITIES = ("tanh", "relu")


def nonlinearity_problems(num_hiddens: int, nonlinearity: str = "tanh") -> list[str]:
    """An rnn layer's own rule, the one place it is written (torch's, fused and d2l's)."""
    if nonlinearity in NONLINEARITIES:
        return []
    return [f"model.nonlinearity={nonlinearity!r} is not allowed: it must be one of "
            f"{', '.join(NONLINEARITIES)} (e.g. model.nonlinearity=relu)"]


class RNNFused(FusedRNN):
    """torch.nn.RNN's function with hand-written BPTT (model=rnn model.impl=fused)."""
    problems = staticmethod(nonlinearity_problems)

    def __init__(self, input_size: int, num_hiddens: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, nonlinearity: str = "tanh"):
        super().__init__("rnn", input_size, num_hiddens, num_layers, nonlinearity, dropout,
                         bidirectional)


class GRUFused(FusedRNN):
    """torch.nn.GRU's function with hand-written BPTT (model=gru model.impl=fused)."""

    def __init__(self, input_size: int, num_hiddens: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0):
        super().__init__("gru", input_size, num_hiddens, num_layers, "tanh", dropout,
                         bidirectional)


def rnn(input_size: int, num_hiddens: int, num_layers: int = 1, bidirectional: bool = False,
        dropout: float = 0.0, nonlinearity: str = "tanh") -> nn.RNN:
    return nn.RNN(input_size, num_hiddens, num_layers, nonlinearity=nonlinearity,
                  dropout=dropout, bidirectional=bidirectional)


def gru(input_size: int, num_hiddens: int, num_layers: int = 1, bidirectional: bool = False,
        dropout: float = 0.0) -> nn.GRU:
    return nn.GRU(input_size, num_hiddens, num_layers, dropout=dropout,
                  bidirectional=bidirectional)


def lstm(input_size: int, num_hiddens: int, num_layers: int = 1, bidirectional: bool = False,
         dropout: float = 0.0) -> nn.LSTM:
    return nn.LSTM(input_size, num_hiddens, num_layers, dropout=dropout,
                   bidirectional=bidirectional)


# The factories' declarations (a class would carry them as class attributes), written after
# the functions they describe; "nn" is the factory itself.
rnn.problems = nonlinearity_problems
rnn.implementations = {"nn": rnn, "fused": RNNFused}
gru.implementations = {"nn": gru, "fused": GRUFused}
lstm.has_memory_cell = True
lstm.implementations = {"nn": lstm}
