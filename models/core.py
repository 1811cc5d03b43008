"""The recurrent core of a model, chosen by name: rnn, lstm and gru (torch.nn's functions), d2l's
from-scratch models (`_scratch`: another model, not torch.nn's written out; models/scratch.py),
SRU and ON-LSTM; stacked plainly, or with residual or dense connections between layers
(models/stack.py).

rnn, lstm and gru each have implementations that compute the same function (model.impl):
torch.nn's layers (cuDNN on GPU, oneDNN's LSTM on CPU) and, for rnn and gru, fused layers with
hand-written BPTT (models/fused.py), faster on CPU. `auto` picks the fastest for the device."""
import torch
from torch import nn

from models.fused import FusedRNN
from models.onlstm import ONLSTM, chunk_problems
from models.scratch import ScratchRNN
from models.sru import SRU
from models.stack import SKIPS, Stack, layer_input_sizes

CELLS = ("rnn", "lstm", "gru", "rnn_scratch", "lstm_scratch", "gru_scratch", "sru", "onlstm")
NONLINEARITIES = ("tanh", "relu")
ONE_WAY = ("sru", "onlstm")  # single-direction layers only
IMPLS = ("auto", "nn", "fused")  # model.impl: how rnn, lstm and gru are computed, not what
TORCH_CELLS = ("rnn", "lstm", "gru")  # the cells with a choice of implementation
FUSED = ("rnn", "gru")  # torch.nn's LSTM on CPU is one oneDNN kernel already; a fused one lost
RETIRED = {"rnn_fused": "rnn", "gru_fused": "gru"}  # cells now written model.impl=fused


def cell_mode(cell: str) -> str:
    """The recurrence a cell name runs: "gru_scratch" -> "gru"."""
    return cell.removesuffix("_scratch")


def resolve_impl(cell: str, impl: str, device_type: str) -> str | None:
    """The implementation a run computes `cell` with: "nn" or "fused" for rnn, lstm and gru,
    None for the cells with one implementation. `auto` is the fastest measured on the device
    (README.md, Benchmark): the fused layers on CPU where they exist, torch.nn (cuDNN) on GPU."""
    if cell not in TORCH_CELLS:
        return None
    if impl == "auto":
        return "fused" if device_type == "cpu" and cell in FUSED else "nn"
    return impl


def resolved(options: dict, device) -> dict:
    """A recurrent model's options (conf/model/) with model.impl resolved for `device`."""
    impl = resolve_impl(options["cell"], options.get("impl", "auto"), torch.device(device).type)
    return {**options, "impl": impl}


def has_memory_cell(cell: str) -> bool:
    """Whether the cell's state is a tuple (h, c) rather than one tensor."""
    return cell_mode(cell) in ("lstm", "onlstm")


def cell_problems(cell: str, num_hiddens: int, bidirectional: bool = False,
                  nonlinearity: str = "tanh", skip: str = "none",
                  chunk_size: int | None = None, impl: str = "auto") -> list[str]:
    """The rules a recurrent core's options obey, the one place they are written: each broken
    rule as one line in runner/run/validate.py's form, `model.X=<value> ...: it must be ...
    (e.g. ...)`. Validation reports them with the config's other problems before any work;
    make_core raises them. Empty: the options are fine."""
    if cell in RETIRED:
        return [f"model.cell={cell!r} is now model.cell={RETIRED[cell]} model.impl=fused: the "
                f"same function, one cell name (e.g. model={cell}, whose config says so)"]
    if cell not in CELLS:  # the other rules depend on the cell
        return [f"model.cell={cell!r} is not allowed: it must be a recurrent cell, one of "
                f"{', '.join(CELLS)} (e.g. model.cell=gru)"]
    problems = impl_problems(cell, impl)
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


def impl_problems(cell: str, impl: str) -> list[str]:
    if impl not in IMPLS:
        return [f"model.impl={impl!r} is not allowed: it must be one of {', '.join(IMPLS)} "
                f"(e.g. model.impl=auto, the fastest for the device)"]
    if impl == "fused" and cell not in FUSED:
        why = ("torch.nn's LSTM is one oneDNN kernel on CPU already" if cell == "lstm"
               else f"{cell} has one implementation")
        return [f"model.impl=fused exists for {' and '.join(FUSED)} only, not {cell}: {why} "
                f"(e.g. model.impl=auto)"]
    if impl == "nn" and cell not in TORCH_CELLS:
        return [f"model.impl=nn applies to {', '.join(TORCH_CELLS)} only: {cell} has one "
                f"implementation (e.g. model.impl=auto)"]
    return []


def make_core(cell: str, input_size: int, num_hiddens: int, num_layers: int = 1,
              bidirectional: bool = False, dropout: float = 0.0, nonlinearity: str = "tanh",
              skip: str = "none", chunk_size: int | None = None,
              impl: str | None = None) -> nn.Module:
    """`impl`: resolve_impl's answer for the device: "nn", "fused", or None (torch.nn's layer
    for rnn, lstm and gru; the one implementation of the other cells)."""
    problems = cell_problems(cell, num_hiddens, bidirectional, nonlinearity, skip, chunk_size,
                             impl or "auto")
    if impl == "auto":
        problems.append("make_core needs model.impl resolved for the device (resolve_impl)")
    if problems:
        raise ValueError("; ".join(problems))
    if skip == "none" and cell not in ONE_WAY:  # torch.nn stacks its own layers (cuDNN)
        return _layers(cell, input_size, num_hiddens, num_layers, bidirectional, dropout,
                       nonlinearity, chunk_size, impl)
    D = 2 if bidirectional else 1
    sizes = layer_input_sizes(input_size, D * num_hiddens, num_layers, skip)
    layers = [_layers(cell, size, num_hiddens, 1, bidirectional, 0.0, nonlinearity, chunk_size,
                      impl) for size in sizes]
    return Stack(layers, skip, dropout, D)


def _layers(cell, input_size, num_hiddens, num_layers, bidirectional, dropout, nonlinearity,
            chunk_size, impl) -> nn.Module:
    if cell == "sru":
        return SRU(input_size, num_hiddens)
    if cell == "onlstm":
        return ONLSTM(input_size, num_hiddens, chunk_size)
    mode = cell_mode(cell)
    if cell != mode or impl == "fused":  # d2l's _scratch model, or torch.nn's, fused
        layer = ScratchRNN if cell != mode else FusedRNN
        return layer(mode, input_size, num_hiddens, num_layers, nonlinearity, dropout,
                     bidirectional)
    kwargs = dict(num_layers=num_layers, dropout=dropout, bidirectional=bidirectional)
    if mode == "rnn":
        kwargs["nonlinearity"] = nonlinearity
    return {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[mode](input_size, num_hiddens,
                                                                  **kwargs)
