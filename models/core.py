"""The recurrent core of a model, chosen by name: torch.nn's layers (cuDNN on GPU), their
scratch twins, or fused twins of rnn and gru (hand-written BPTT, faster on CPU)."""
from torch import nn

from models.fused import FusedRNN
from models.scratch import ScratchRNN

CELLS = ("rnn", "lstm", "gru", "rnn_scratch", "lstm_scratch", "gru_scratch",
         "rnn_fused", "gru_fused")
NONLINEARITIES = ("tanh", "relu")


def cell_mode(cell: str) -> str:
    """The recurrence a cell name runs: "gru_fused" -> "gru"."""
    return cell.removesuffix("_scratch").removesuffix("_fused")


def make_core(cell: str, input_size: int, num_hiddens: int, num_layers: int = 1,
              bidirectional: bool = False, dropout: float = 0.0,
              nonlinearity: str = "tanh") -> nn.Module:
    if cell not in CELLS:
        raise ValueError(f"model.cell={cell!r} is not a recurrent cell; use one of {CELLS}")
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"model.nonlinearity={nonlinearity!r}; use one of {NONLINEARITIES}")
    mode = cell_mode(cell)
    if nonlinearity != "tanh" and mode != "rnn":
        raise ValueError(f"model.nonlinearity={nonlinearity!r} applies to rnn cells only, "
                         f"not {cell!r}; drop it")
    if cell != mode:  # a _scratch or _fused twin
        layer = ScratchRNN if cell.endswith("_scratch") else FusedRNN
        return layer(mode, input_size, num_hiddens, num_layers, nonlinearity, dropout,
                     bidirectional)
    kwargs = dict(num_layers=num_layers, dropout=dropout, bidirectional=bidirectional)
    if mode == "rnn":
        kwargs["nonlinearity"] = nonlinearity
    return {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[mode](input_size, num_hiddens,
                                                                  **kwargs)
