"""A recurrent layer that fails on the GPU the way a real bug does: its forward indexes out of
range on the device, so the kernel raises a device-side assert (tests/test_cuda.py). On CUDA
that error is sticky: every later CUDA call in the process fails too, which is why the parallel
launcher runs each GPU job in a fresh process (runner/sweep/isolate.py)."""
import torch
from torch import nn


class AssertingRNN(nn.RNN):
    def forward(self, x, h=None):
        if x.is_cuda:  # index 7 of a 3-element tensor: the kernel's bounds check asserts
            torch.arange(3, device=x.device)[torch.full((1,), 7, device=x.device)].sum().item()
        return super().forward(x, h)


def asserting_rnn(input_size: int, num_hiddens: int, num_layers: int = 1,
                  bidirectional: bool = False, dropout: float = 0.0,
                  nonlinearity: str = "tanh") -> nn.RNN:
    """models.cells.rnn's signature, so model=rnn's options apply unchanged."""
    return AssertingRNN(input_size, num_hiddens, num_layers, nonlinearity=nonlinearity,
                        dropout=dropout, bidirectional=bidirectional)
