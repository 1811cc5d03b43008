"""logger=tensorboard: event files in the run's folder (`tensorboard/`), written by torch's
SummaryWriter, so `tensorboard --logdir results/<sweep>` shows every run of a sweep, named by
its folder, live: scalars are logged at step = epoch and flushed each epoch. A resumed run
writes to the same folder and purges the steps from the epoch it continues from, which its
first try may have logged."""
from runner.loggers import RunInfo, Tracker


class TensorBoardLogger(Tracker):
    requires, extra = "tensorboard", "tensorboard"  # torch's SummaryWriter imports it

    def __init__(self, dir: str = "tensorboard"):
        self.dir = dir  # in the run's folder

    def start(self, info: RunInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter

        folder = info.folder / self.dir
        self.writer = SummaryWriter(log_dir=str(folder),
                                    purge_step=info.first_epoch if info.first_epoch > 1 else None)
        tags = "\n".join(f"- {k}: `{v}`" for k, v in info.tags.items())
        params = "\n".join(f"| {k} | `{v}` |" for k, v in info.params.items())
        self.writer.add_text("run", f"{tags}\n\n| key | value |\n| --- | --- |\n{params}",
                             global_step=info.first_epoch)

    def epoch(self, epoch: int, metrics: dict) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, global_step=epoch)
        self.writer.flush()  # on disk each epoch (SummaryWriter's own: every 2 minutes): live

    def end(self, status: str, metrics: dict, result_path) -> None:
        self.writer.add_text("status", status)
        for key, value in metrics.items():
            self.writer.add_scalar(f"final/{key}", value)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
