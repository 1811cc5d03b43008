"""The regression task: the companion note's synthetic experiment, step for step.

Every step draws fresh a, b ~ N(0, 1) of shape (data.batch_size, data.num_steps, data.dim);
the input is concat([a, b], -1) and the target (a + 1)**2 + b. The loss is the note's
mean(0.5 * (y - target)**2), and so is every "MSE" here: the note's name for half the mean
squared error. An epoch is data.steps_per_epoch steps: the note's 1,000 steps are 10 epochs of
100, which sets the loss curve's, the checkpoints' and the progress bar's grain.

After training, data.eval_batches fresh batches are scored without updates: with the model
left in train mode (dropout on), as the note's program did, giving `mse`, the note's figure;
and in eval mode on the very same batches, giving `eval_mode_mse`. The data draws share
torch's global RNG with dropout and with the model's construction, as in the note's program:
a seed's run is the note's program run with that seed (tests/test_regression.py)."""
import torch
from omegaconf import OmegaConf

from models import EncoderRegressor
from runner.tasks.build import constructor_keys
from runner.tasks.loop import step


def note_loss(y, target):
    return (0.5 * (y - target) ** 2).mean()


class RegressionTask:
    train_curve = "train_mse"  # the per-epoch training figure (History's list)
    val_tokens_scored = None   # nothing held out: every batch is fresh
    evaluate = None            # no evaluation between epochs: outputs() scores, once

    @staticmethod
    def model_keys(model) -> list[str] | None:
        """The keys of conf/model/ the note's encoder takes (runner/run/keys.py); None for a
        recurrent model, which validation refuses here on its own."""
        if model.get("cell") != "transformer":
            return None
        return constructor_keys(EncoderRegressor, runtime=("in_features", "out_features"))

    @staticmethod
    def data_file(cfg) -> None:
        return None  # no file: the data is drawn

    @staticmethod
    def score(mean_loss: float) -> float:
        return mean_loss

    def __init__(self, cfg, path=None):
        d = cfg.data
        self.cfg, self.steps_per_epoch = cfg, d.steps_per_epoch
        self.provenance = {
            "name": "synthetic regression", "sha1": None,
            "draw": "a, b ~ N(0, 1); input concat([a, b], -1); target (a + 1)**2 + b",
            "shape": [d.batch_size, d.num_steps, d.dim], "eval_batches": d.eval_batches}

    def new_model(self, device):
        """The note's model on torch's global RNG (seeded by the caller), which then draws the
        data too: `generator` is what a checkpoint saves and restores."""
        self.generator, self.device = torch.default_generator, device
        kwargs = OmegaConf.to_container(self.cfg.model, resolve=True)
        d = self.cfg.data
        return EncoderRegressor(in_features=2 * d.dim, out_features=d.dim, **kwargs)

    def batch(self):
        """(input, target) of fresh data, drawn on the CPU (the note's device) and moved."""
        d = self.cfg.data
        a = torch.randn(d.batch_size, d.num_steps, d.dim)
        b = torch.randn(d.batch_size, d.num_steps, d.dim)
        x, target = torch.cat([a, b], -1), (a + 1) ** 2 + b
        return x.to(self.device), target.to(self.device)

    def train_epoch(self, model, optimizer, scheduler):
        """Returns (mean loss, positions) as device values: no host sync here."""
        params = [p for p in model.parameters() if p.requires_grad]
        clip, loss_sum = self.cfg.train.grad_clip, torch.zeros((), device=self.device)
        for _ in range(self.steps_per_epoch):
            x, target = self.batch()
            loss = note_loss(model(x), target)
            step(loss, params, optimizer, scheduler, clip)
            loss_sum += loss.detach()
        d = self.cfg.data
        return loss_sum / self.steps_per_epoch, self.steps_per_epoch * d.batch_size * d.num_steps

    def outputs(self, model, device) -> tuple[dict, dict]:
        """The note's evaluation (module docstring): each batch's loss summed in float64, as
        the note's Python float sum of loss.item(), with one host sync at the end."""
        n = self.cfg.data.eval_batches
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)
        with torch.no_grad():
            for _ in range(n):
                x, target = self.batch()
                model.train()  # dropout on: the note's figure
                sums[0] += note_loss(model(x), target).double()
                model.eval()
                sums[1] += note_loss(model(x), target).double()
        model.train()
        mse, eval_mode_mse = (sums / n).tolist()
        return {}, {"mse": mse, "eval_mode_mse": eval_mode_mse, "eval_batches": n}
