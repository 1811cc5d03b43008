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
from runner.tasks.task import Metric, Task


def note_loss(y, target):
    return (0.5 * (y - target) ** 2).mean()


class RegressionTask(Task):
    metrics = (Metric("train_mse", "minimize", "training MSE", "mse"),
               Metric("mse", "minimize", "MSE on fresh batches, train mode (the note's)"),
               Metric("eval_mode_mse", "minimize", "MSE on fresh batches, eval mode"))
    train_metric = "train_mse"  # nothing held out: outputs() scores fresh batches, once

    def model_keys(model) -> list[str] | None:
        """The keys of conf/model/ the note's encoder takes (runner/run/keys.py); None for a
        recurrent model, which validation refuses here on its own."""
        if model.get("cell") != "transformer":
            return None
        return constructor_keys(EncoderRegressor, runtime=("in_features", "out_features"))

    @staticmethod
    def train_score(mean_loss: float) -> float:
        return mean_loss

    def __init__(self, cfg, path=None, *, task: str, batch_size: int, num_steps: int, dim: int,
                 steps_per_epoch: int, eval_batches: int):
        """conf/data/synthetic.yaml's keys; `task` is the name results and reports give it."""
        self.cfg, self.steps_per_epoch, self.eval_batches = cfg, steps_per_epoch, eval_batches
        self.shape = (batch_size, num_steps, dim)  # of a and of b
        self.provenance = {
            "name": "synthetic regression", "sha1": None,
            "draw": "a, b ~ N(0, 1); input concat([a, b], -1); target (a + 1)**2 + b",
            "shape": list(self.shape), "eval_batches": eval_batches}

    def new_model(self, device):
        """The note's model on torch's global RNG (seeded by the caller), which then draws the
        data too: `generator` is what a checkpoint saves and restores."""
        self.generator, self.device = torch.default_generator, device
        kwargs = OmegaConf.to_container(self.cfg.model, resolve=True)
        dim = self.shape[2]
        return EncoderRegressor(in_features=2 * dim, out_features=dim, **kwargs)

    def batch(self):
        """(input, target) of fresh data, drawn on the CPU (the note's device) and moved."""
        a = torch.randn(*self.shape)
        b = torch.randn(*self.shape)
        x, target = torch.cat([a, b], -1), (a + 1) ** 2 + b
        return x.to(self.device), target.to(self.device)

    def train_batches(self):
        """Fresh batches, each drawn when the loop asks for it: the draws and dropout share
        torch's global RNG in the note's order."""
        return (self.batch() for _ in range(self.steps_per_epoch))

    def loss(self, model, batch):
        """The note's loss of one batch, and its batch_size * num_steps positions."""
        x, target = batch
        return note_loss(model(x), target), target.shape[0] * target.shape[1]

    def outputs(self, model, device) -> tuple[dict, dict]:
        """The note's evaluation (module docstring): each batch's loss summed in float64, as
        the note's Python float sum of loss.item(), with one host sync at the end."""
        n = self.eval_batches
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
