"""logger=mlflow: one MLflow run per runner run, in one experiment per sweep.

With `tracking_uri: null` the store is local, `mlruns/` beside the sweep's folder
(results/mlruns for results/<sweep>/...): an SQLite database, mlruns/mlflow.db (MLflow's own
default backend: its file store now refuses to open unless told to), and the artifacts in
mlruns/artifacts/. `mlflow ui --backend-store-uri sqlite:///results/mlruns/mlflow.db` browses
it, no server needed. Parallel jobs share the database (SQLite locks each write); a file lock
makes the first job create it (MLflow's schema migrations) while the others wait. Any other
URI (a server, another database) is MLflow's own. The experiment is the sweep folder's name
unless `experiment` says.

A run is named by its folder, shortened to tell a sweep's runs apart in MLflow's run list
(runner/loggers/naming.py: model.num_hiddens=16,seed=0 -> "nh=16 seed=0"); the folder's
name is the tag runner.folder. Parameters are the flattened config (MLflow keeps 100 per
call: sent in batches); metrics are logged at step = epoch; the end sets the run's status
(diverged runs FINISHED, tagged) and uploads result.json. A resumed run finds its MLflow run
by the runner run id (tag runner.run_id) and continues it; epochs its first try logged after
the checkpoint are logged again, with the same values (resume reproduces them)."""
import fcntl
from contextlib import contextmanager, nullcontext
from pathlib import Path

from runner.loggers import RunInfo, Tracker, timestamp_ms
from runner.loggers.naming import short_name

STATUS = {"completed": "FINISHED", "diverged": "FINISHED", "failed": "FAILED",
          "interrupted": "KILLED"}
BATCH = 100  # MLflow's limit of params per log_batch


class MLflowLogger(Tracker):
    requires, extra = "mlflow", "mlflow"

    def __init__(self, tracking_uri: str | None = None, experiment: str | None = None):
        self.tracking_uri, self.experiment = tracking_uri, experiment

    def start(self, info: RunInfo) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        uri, artifacts, lock = self.tracking_uri, None, nullcontext()
        if not uri:  # the local store, results/mlruns
            root = (info.folder.parent.parent / "mlruns").resolve()
            root.mkdir(parents=True, exist_ok=True)
            uri, artifacts, lock = (f"sqlite:///{root / 'mlflow.db'}",
                                    (root / "artifacts").as_uri(), locked(root / ".lock"))
        with lock:  # one job creates the database and the experiment, the others wait
            self.client = MlflowClient(tracking_uri=uri)
            experiment = self._experiment(self.experiment or info.group, artifacts)
        found = self.client.search_runs([experiment], f"tags.`runner.run_id` = '{info.run_id}'",
                                        max_results=1)
        if found:  # this run, resumed: the same MLflow run
            self.run = found[0].info.run_id
            self.client.update_run(self.run, status="RUNNING")
            return
        tags = {f"runner.{k}": str(v) for k, v in info.tags.items()} | {"runner.folder": info.name}
        # the run list shows ~15 characters of a name: "nh=16 seed=0", the folder as a tag
        name = short_name(info.name, list(info.varied))
        self.run = self.client.create_run(experiment, run_name=name, tags=tags).info.run_id
        params = [Param(k, str(v)[:6000]) for k, v in info.params.items()]
        for i in range(0, len(params), BATCH):
            self.client.log_batch(self.run, params=params[i:i + BATCH])

    def _experiment(self, name: str, artifacts: str | None) -> str:
        from mlflow.exceptions import MlflowException

        if found := self.client.get_experiment_by_name(name):
            return found.experiment_id
        try:
            location = f"{artifacts}/{name}" if artifacts else None
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException:  # another job of the sweep created it first
            return self.client.get_experiment_by_name(name).experiment_id

    def epoch(self, epoch: int, metrics: dict) -> None:
        from mlflow.entities import Metric

        now = timestamp_ms()
        self.client.log_batch(self.run, metrics=[Metric(k, float(v), now, epoch)
                                                 for k, v in metrics.items()])

    def end(self, status: str, metrics: dict, result_path) -> None:
        from mlflow.entities import Metric, RunTag

        now = timestamp_ms()
        self.client.log_batch(self.run, metrics=[Metric(f"final.{k}", float(v), now, 0)
                                                 for k, v in metrics.items()],
                              tags=[RunTag("runner.status", status)])
        self.client.log_artifact(self.run, str(result_path))
        self.client.set_terminated(self.run, STATUS[status])


@contextmanager
def locked(path: Path):
    """An exclusive lock on `path` (created), held for the block, across processes."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
