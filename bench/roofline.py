"""What a recurrent language model's training step costs in FLOPs, and what this machine's fp32
GEMM does, measured with torch in the bench's own sitting: the ceiling a cell's GFLOP/s is
read against.

FLOPs per training token of a one-layer recurrent LM (one-hot input over V characters, H
hidden units, k gate blocks: rnn 1, gru 3, lstm 4), counting the matrix products only (the
element-wise work is O(kH), under 1% at H >= 256):

    forward    2kHV (input projection) + 2kH^2 (recurrence) + 2HV (output layer)
    backward   2kHV (dW_ih; one-hot input needs no dx) + 4kH^2 (dh_{t-1} and dW_hh)
               + 4HV (output layer: dW and dh)
    total      6kH^2 + 4kHV + 6HV

Of the 6kH^2, 4kH^2 are (B x H) @ (H x kH) products that the recurrence forces one time step
at a time (forward h_t and backward dh_{t-1}); only dW_hh's 2kH^2 can be one large
(H x T*B) @ (T*B x kH) product. So a cell's ceiling is not the big-GEMM peak: it is
6kH^2 / (4kH^2 / step_rate + 2kH^2 / peak), with step_rate the GFLOP/s of the per-step shape.
"""
import time

import torch

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
VOCAB = 28  # The Time Machine's characters (d2l's vocabulary)


def flops_per_token(kind: str, hidden: int, vocab: int = VOCAB) -> int | None:
    """The formula above; None for cells it does not describe (sru, onlstm)."""
    k = GATES.get(kind)
    if k is None:
        return None
    return 6 * k * hidden ** 2 + 4 * k * hidden * vocab + 6 * hidden * vocab


def gemm_gflops(m: int, k: int, n: int, seconds: float = 0.3) -> float:
    """Median GFLOP/s of torch.mm (m x k) @ (k x n) in fp32 over about `seconds`, in the
    current thread setting, after a warm-up."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    for _ in range(3):
        torch.mm(a, b, out=out)
    calls, times, start = max(1, int(2e8 / (m * k * n))), [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 5:
        t = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b, out=out)
        times.append((time.perf_counter() - t) / calls)
    times.sort()
    return 2 * m * k * n / times[len(times) // 2] / 1e9


def step_shape(kind: str, hidden: int, batch: int = 32) -> tuple[int, int, int]:
    """The per-step product (batch x H) @ (H x kH)."""
    return batch, hidden, GATES[kind] * hidden


PEAK_SHAPES = ((1120, 512, 512), (1120, 1024, 1024), (1120, 1024, 3072), (2048, 2048, 2048))


def machine_peak() -> dict:
    """The best fp32 GEMM rate over large shapes (1120 = 35 steps x 32: a hoisted product)."""
    rates = {"x".join(map(str, s)): gemm_gflops(*s) for s in PEAK_SHAPES}
    return {"gflops": max(rates.values()), "by_shape": rates}


def ceiling(peak: float, step_rate: float) -> float:
    """GFLOP/s a cell could reach with every product at its measured rate: 6kH^2 FLOPs, 4kH^2
    of them at step_rate and 2kH^2 at peak (k and H cancel)."""
    return 6 / (4 / step_rate + 2 / peak)
