"""Our training step against d2l 0.17.6's, around the same torch.nn layer, in one process:
what the loop costs, apart from the kernel and from process-to-process noise.

    python -m bench.loop [--cells lstm] [--sizes 32,256,1024] [--threads 2] [--rounds 5]

`ours` is runner's step (runner/tasks/loop.py: models.LanguageModel's one-hot lookup,
cross-entropy, zero_grad, backward, clip_grad_norm_, SGD, the lr schedule); `d2l` is
train_epoch_ch8's, written out (d2l.RNNModel's F.one_hot and reshape, its grad_clipping, which
scales only above the norm, SGD). Both get the same layer weights and the same 20 batches of
(35, 32) random characters, with the state carried between batches as sequential sampling
does; rounds alternate the two, and each figure is the median over rounds of one pass's
tokens/sec.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from bench.roofline import VOCAB
from models import cells
from models.lm import LanguageModel, detach
from runner.tasks.loop import step

STEPS, BATCH, BATCHES = 35, 32, 20
NN_LAYERS = {"rnn": cells.rnn, "gru": cells.gru, "lstm": cells.lstm}  # torch.nn's (model.impl=nn)


class D2LModel(nn.Module):
    """d2l.RNNModel: one-hot inputs, the layer, a Linear head over (T*B, H)."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.rnn, self.linear = layer, nn.Linear(layer.hidden_size, VOCAB)

    def forward(self, inputs, state):
        y, state = self.rnn(F.one_hot(inputs.long(), VOCAB).to(torch.float32), state)
        return self.linear(y.reshape(-1, y.shape[-1])), state


def d2l_clip(params, theta: float = 1.0) -> None:
    """d2l.grad_clipping: the global norm, and a rescale only when it is above theta."""
    norm = torch.sqrt(sum(torch.sum(p.grad ** 2) for p in params))
    if norm > theta:
        for p in params:
            p.grad[:] *= theta / norm


def tokens_per_sec(model, ours: bool, X, Y, hidden: int, cell: str) -> float:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    h = torch.zeros(1, BATCH, hidden)
    state = (h, h.clone()) if cell == "lstm" else h
    start = time.perf_counter()
    for x, y in zip(X, Y):
        state = detach(state)
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
        if ours:
            step(loss, params, optimizer, scheduler, 1.0)
        else:
            optimizer.zero_grad()
            loss.backward()
            d2l_clip(params)
            optimizer.step()
    return X.numel() / (time.perf_counter() - start)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", default="lstm")
    p.add_argument("--sizes", default="32,256,1024")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}; tokens/sec, median of {args.rounds} alternating rounds")
    for cell in args.cells.split(","):
        for hidden in map(int, args.sizes.split(",")):
            torch.manual_seed(0)
            ours = LanguageModel(VOCAB, NN_LAYERS[cell], hidden)  # torch.nn's, as d2l's
            theirs = D2LModel({"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell](VOCAB, hidden))
            theirs.rnn.load_state_dict(ours.core.state_dict())
            theirs.linear.load_state_dict(ours.output.state_dict())
            X, Y = (torch.randint(VOCAB, (BATCHES, STEPS, BATCH)) for _ in range(2))
            rates = {"ours": [], "d2l": []}
            for _ in range(args.rounds):
                rates["ours"].append(tokens_per_sec(ours, True, X, Y, hidden, cell))
                rates["d2l"].append(tokens_per_sec(theirs, False, X, Y, hidden, cell))
            mid = {k: statistics.median(v) for k, v in rates.items()}
            print(f"{cell:5s} {hidden:5d}  ours {mid['ours']:>10,.0f}  d2l {mid['d2l']:>10,.0f}  "
                  f"ours/d2l {mid['ours'] / mid['d2l']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
