"""One recurrent layer's forward + backward alone, torch.nn's against our fused one: the
measurement that decides model.impl=auto (models/core.py) and guides work on models/fused.py.

    python -m bench.kernels [--cells rnn,gru,lstm] [--sizes 32,256,1024] [--threads T]
                            [--rounds R]

A step is the layer over a (35, 32, 28) input (the study's num_steps, batch_size and The Time
Machine's one-hot characters), then the backward of sum(output * g) for a fixed g: every
weight's gradient, as training needs. Rounds interleave the implementations; each figure is
the median over rounds of one round's median step. GFLOP/s counts the layer's products only:
2kHV + 2kH^2 forward, 2kHV + 4kH^2 backward (bench/roofline.py's formula without the output
layer), per token.
"""
import argparse
import time

import torch
from torch import nn

from bench.roofline import GATES, VOCAB
from models.fused import FusedRNN

STEPS, BATCH = 35, 32
NN = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def layers(cell: str, hidden: int) -> dict:
    """The implementations of `cell` that exist, with the same weights."""
    made = {"nn": NN[cell](VOCAB, hidden)}
    if cell in FusedRNN.GATES:
        made["fused"] = FusedRNN(cell, VOCAB, hidden)
        made["fused"].load_state_dict(made["nn"].state_dict())
    return made


def step_seconds(layer: nn.Module, cell: str, hidden: int, seconds: float) -> float:
    x = nn.functional.one_hot(torch.randint(VOCAB, (STEPS, BATCH)), VOCAB).float()
    h0 = torch.zeros(1, BATCH, hidden)
    state = (h0, h0.clone()) if cell == "lstm" else h0
    g = torch.randn(STEPS, BATCH, hidden)
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 5:
        t = time.perf_counter()
        out, _ = layer(x, state)
        (out * g).sum().backward()
        times.append(time.perf_counter() - t)
    return sorted(times[2:])[len(times[2:]) // 2]


def gflops(cell: str, hidden: int, seconds: float) -> float:
    k = GATES[cell]
    return STEPS * BATCH * (4 * k * hidden * VOCAB + 6 * k * hidden ** 2) / seconds / 1e9


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", default="rnn,gru,lstm")
    parser.add_argument("--sizes", default="32,256,1024")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per implementation, round")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"threads {args.threads}; ms per forward+backward step (GFLOP/s), median of "
          f"{args.rounds} interleaved rounds")
    for cell in args.cells.split(","):
        for hidden in map(int, args.sizes.split(",")):
            made, rounds = layers(cell, hidden), {}
            for _ in range(args.rounds):
                for impl, layer in made.items():
                    rounds.setdefault(impl, []).append(
                        step_seconds(layer, cell, hidden, args.seconds))
            medians = {impl: sorted(times)[len(times) // 2] for impl, times in rounds.items()}
            cols = [f"{impl} {s * 1e3:7.2f} ms ({gflops(cell, hidden, s):5.1f})"
                    for impl, s in medians.items()]
            if "fused" in medians:
                cols.append(f"fused {medians['nn'] / medians['fused']:.2f}x nn")
            print(f"{cell:5s} {hidden:5d}  " + "  ".join(cols), flush=True)

if __name__ == "__main__":
    main()
