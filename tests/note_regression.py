"""The companion note's Transformer experiment, transcribed as its program is described
(issue 13; ../shared/reference/seed_study.md): plain torch, no runner code, the sizes as
arguments. tests/test_regression.py checks the runner's regression task against it."""
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, dim, d_model, heads, ffn, layers, dropout):
        super().__init__()
        self.fc_in = nn.Linear(2 * dim, d_model)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model, heads, ffn, dropout), layers,
            enable_nested_tensor=False)
        self.fc_out = nn.Linear(d_model, dim)

    def forward(self, x):  # (batch, length, 2 dim), into a sequence-first encoder: the quirk
        return self.fc_out(self.encoder(self.fc_in(x)))


def linear_warmup(i, warmup_steps):
    """The lr factor of update i (0-based), as runner/tasks/loop.py's warmup_factor: the first
    update gets 1/warmup_steps of the lr and update warmup_steps - 1 the full lr. LambdaLR
    applies factor(0) when built, so update i runs at factor(i)."""
    return 1.0 if i >= warmup_steps else (i + 1) / warmup_steps


def note_program(seed=0, batch=16, length=10, dim=50, d_model=256, heads=4, ffn=2048,
                 layers=6, dropout=0.1, lr=1e-3, steps=1000, warmup_steps=0,
                 eval_steps=1000, init=None):
    """(training losses, the note's "AVG Loss"): seed, build, (init), Adam with a linear
    warm-up over `warmup_steps`, `steps` updates on fresh batches, then `eval_steps` fresh
    batches scored with the model still in train mode, each loss.item() summed."""
    torch.manual_seed(seed)
    model = Net(dim, d_model, heads, ffn, layers, dropout)
    if init:
        init(model)
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: linear_warmup(i, warmup_steps))

    def draw():
        a = torch.randn(batch, length, dim)
        b = torch.randn(batch, length, dim)
        return torch.cat([a, b], -1), (a + 1) ** 2 + b

    losses = []
    for _ in range(steps):
        x, y = draw()
        loss = (0.5 * (model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    total = 0.0
    with torch.no_grad():
        for _ in range(eval_steps):
            x, y = draw()
            total += (0.5 * (model(x) - y) ** 2).mean().item()
    return losses, total / eval_steps
