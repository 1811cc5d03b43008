"""logger=wandb: one W&B run per runner run, its files under the run's folder (`wandb/`).

W&B runs offline unless told otherwise (`mode`, or WANDB_MODE): nothing leaves the machine,
and `wandb sync <run folder>/wandb/offline-run-*` uploads it later. With `mode: online` and
`wandb login` done it is live. The project is the sweep folder's name unless `project` says;
the W&B run id is the runner run id, so a resumed run continues its W&B run."""
import os

from runner.loggers import RunInfo, Tracker


class WandbLogger(Tracker):
    requires, extra = "wandb", "wandb"

    def __init__(self, mode: str | None = None, project: str | None = None,
                 entity: str | None = None):
        self.mode, self.project, self.entity = mode, project, entity

    def start(self, info: RunInfo) -> None:
        import wandb

        self.run = wandb.init(
            project=self.project or info.group, entity=self.entity, name=info.name,
            id=info.run_id, resume="allow", group=info.group, dir=str(info.folder),
            mode=self.mode or os.environ.get("WANDB_MODE", "offline"),
            config=info.params, tags=[f"{k}={v}"[:64] for k, v in info.tags.items()],
            reinit="create_new", settings=wandb.Settings(console="off", silent=True))

    def epoch(self, epoch: int, metrics: dict) -> None:
        self.run.log({**metrics, "epoch": epoch}, step=epoch)

    def end(self, status: str, metrics: dict, result_path) -> None:
        self.run.summary.update({**metrics, "status": status})
        import wandb

        artifact = wandb.Artifact(f"result-{self.run.id}", type="result")
        artifact.add_file(str(result_path))
        self.run.log_artifact(artifact)
        self.run.finish(exit_code=0 if status in ("completed", "diverged") else 1)
