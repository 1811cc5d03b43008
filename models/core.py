"""The recurrent core of a model, chosen by name: torch.nn's layers (cuDNN on GPU), d2l's
from-scratch models (`_scratch`: another model, not torch.nn's written out; models/scratch.py),
fused twins of rnn and gru (torch.nn's function with hand-written BPTT, faster on CPU), SRU and
ON-LSTM; stacked plainly, or with residual or dense connections between layers
(models/stack.py)."""
from torch import nn

from models.fused import FusedRNN
from models.onlstm import ONLSTM, chunk_problems
from models.scratch import ScratchRNN
from models.sru import SRU
from models.stack import SKIPS, Stack, layer_input_sizes

CELLS = ("rnn", "lstm", "gru", "rnn_scratch", "lstm_scratch", "gru_scratch",
         "rnn_fused", "gru_fused", "sru", "onlstm")
NONLINEARITIES = ("tanh", "relu")
ONE_WAY = ("sru", "onlstm")  # single-direction layers only


def cell_mode(cell: str) -> str:
    """The recurrence a cell name runs: "gru_fused" -> "gru"."""
    return cell.removesuffix("_scratch").removesuffix("_fused")


def has_memory_cell(cell: str) -> bool:
    """Whether the cell's state is a tuple (h, c) rather than one tensor."""
    return cell_mode(cell) in ("lstm", "onlstm")


def cell_problems(cell: str, num_hiddens: int, bidirectional: bool = False,
                  nonlinearity: str = "tanh", skip: str = "none",
                  chunk_size: int | None = None) -> list[str]:
    """The rules a recurrent core's options obey, the one place they are written: each broken
    rule as one line in runner/run/validate.py's form, `model.X=<value> ...: it must be ...
    (e.g. ...)`. Validation reports them with the config's other problems before any work;
    make_core raises them. Empty: the options are fine."""
    if cell not in CELLS:  # the other rules depend on the cell
        return [f"model.cell={cell!r} is not allowed: it must be a recurrent cell, one of "
                f"{', '.join(CELLS)} (e.g. model.cell=gru)"]
    problems = []
    if nonlinearity not in NONLINEARITIES:
        problems.append(f"model.nonlinearity={nonlinearity!r} is not allowed: it must be one "
                        f"of {', '.join(NONLINEARITIES)} (e.g. model.nonlinearity=relu)")
    elif nonlinearity != "tanh" and cell_mode(cell) != "rnn":
        problems.append(f"model.nonlinearity={nonlinearity!r} applies to rnn cells only, not "
                        f"{cell} (e.g. ~model.nonlinearity)")
    if skip not in SKIPS:
        problems.append(f"model.skip={skip!r} is not allowed: it must be one of "
                        f"{', '.join(SKIPS)} (e.g. model.skip=residual)")
    if bidirectional and cell in ONE_WAY:
        problems.append(f"model.bidirectional=true is not available for {cell}, whose layers "
                        f"run one way (e.g. model.bidirectional=false, or model=gru)")
    if cell == "onlstm":
        problems += chunk_problems(num_hiddens, chunk_size)
    elif chunk_size is not None:
        problems.append(f"model.chunk_size={chunk_size!r} applies to onlstm only: drop it "
                        f"(e.g. ~model.chunk_size)")
    return problems


def make_core(cell: str, input_size: int, num_hiddens: int, num_layers: int = 1,
              bidirectional: bool = False, dropout: float = 0.0, nonlinearity: str = "tanh",
              skip: str = "none", chunk_size: int | None = None) -> nn.Module:
    problems = cell_problems(cell, num_hiddens, bidirectional, nonlinearity, skip, chunk_size)
    if problems:
        raise ValueError("; ".join(problems))
    if skip == "none" and cell not in ONE_WAY:  # torch.nn stacks its own layers (cuDNN)
        return _layers(cell, input_size, num_hiddens, num_layers, bidirectional, dropout,
                       nonlinearity, chunk_size)
    D = 2 if bidirectional else 1
    sizes = layer_input_sizes(input_size, D * num_hiddens, num_layers, skip)
    layers = [_layers(cell, size, num_hiddens, 1, bidirectional, 0.0, nonlinearity, chunk_size)
              for size in sizes]
    return Stack(layers, skip, dropout, D)


def _layers(cell, input_size, num_hiddens, num_layers, bidirectional, dropout, nonlinearity,
            chunk_size) -> nn.Module:
    if cell == "sru":
        return SRU(input_size, num_hiddens)
    if cell == "onlstm":
        return ONLSTM(input_size, num_hiddens, chunk_size)
    mode = cell_mode(cell)
    if cell != mode:  # d2l's _scratch model or a _fused twin of torch.nn's
        layer = ScratchRNN if cell.endswith("_scratch") else FusedRNN
        return layer(mode, input_size, num_hiddens, num_layers, nonlinearity, dropout,
                     bidirectional)
    kwargs = dict(num_layers=num_layers, dropout=dropout, bidirectional=bidirectional)
    if mode == "rnn":
        kwargs["nonlinearity"] = nonlinearity
    return {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[mode](input_size, num_hiddens,
                                                                  **kwargs)
