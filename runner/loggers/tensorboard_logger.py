"""logger=tensorboard: event files in the run's folder (`tensorboard/`), written by torch's
SummaryWriter, so `tensorboard --logdir results/<sweep>` shows every run of a sweep, named by
its folder, live: scalars are logged at step = epoch and flushed each epoch. A resumed run
writes to the same folder and purges the steps from the epoch it continues from, which its
first try may have logged.

At the end the final metrics (`final/<metric>`) are logged at the run's last epoch, where its
curves end, and an HParams summary: the keys its sweep varies (with model.cell and seed) and
its final figures, so that TensorBoard's HParams view compares the runs of a sweep side by
side."""
from runner.loggers import RunInfo, Tracker
from runner.loggers.naming import named_keys


class TensorBoardLogger(Tracker):
    requires, extra = "tensorboard", "tensorboard"  # torch's SummaryWriter imports it

    def __init__(self, dir: str = "tensorboard"):
        self.dir = dir  # in the run's folder

    def start(self, info: RunInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter

        folder = info.folder / self.dir
        self.writer = SummaryWriter(log_dir=str(folder),
                                    purge_step=info.first_epoch if info.first_epoch > 1 else None)
        self.last_epoch = info.first_epoch - 1
        self.hparams = hparams_of(info)
        self.figures = [k for k in info.epoch_keys if k != "lr"]  # the HParams view's columns
        tags = "\n".join(f"- {k}: `{v}`" for k, v in info.tags.items())
        params = "\n".join(f"| {k} | `{v}` |" for k, v in info.params.items())
        self.writer.add_text("run", f"{tags}\n\n| key | value |\n| --- | --- |\n{params}",
                             global_step=info.first_epoch)

    def epoch(self, epoch: int, metrics: dict) -> None:
        self.last_epoch = epoch
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, global_step=epoch)
        self.writer.flush()  # on disk each epoch (SummaryWriter's own: every 2 minutes): live

    def end(self, status: str, metrics: dict, result_path) -> None:
        from torch.utils.tensorboard.summary import hparams

        step = int(metrics.get("epochs_done") or self.last_epoch)  # where the curves end
        self.writer.add_text("status", status, global_step=step)
        for key, value in metrics.items():
            self.writer.add_scalar(f"final/{key}", value, global_step=step)
        shown = {f"final/{k}": v for k, v in metrics.items()
                 if k in self.figures or k.removeprefix("best_") in self.figures}
        # into this run's own event file: add_hparams would make a run folder of its own
        for summary in hparams(self.hparams, shown):
            self.writer.file_writer.add_summary(summary, global_step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def hparams_of(info: RunInfo) -> dict:
    """The HParams view's columns for this run: model.cell, seed and the keys its sweep varies
    (those its folder name sets, outside a sweep), each value as HParams takes it (a number,
    text or bool; null and lists as text)."""
    keys = dict.fromkeys(["model.cell", *(info.varied or named_keys(info.name)), "seed"])
    return {key: value if isinstance(value, bool | int | float | str)
            else "null" if value is None else str(value)
            for key in keys if key in info.params
            for value in [info.params[key]]}
