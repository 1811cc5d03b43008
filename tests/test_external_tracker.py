"""A tracker from outside the package (docs/extend-tracker.md): its class and its YAML in the
user's own folder, found with --config-dir and PYTHONPATH; no file of runner edited."""
import json
import os
import subprocess
import sys

import pytest

from runner.result import RESULT_FILE
from tests.helpers import tiny_overrides
from tests.tracker_stores import by_epoch, csv_curves

# The two files a tracker needs: docs/extend-tracker.md shows these.
TRACKER = '''"""logger=mytracker: each event a line of JSON in the run's folder."""
import json

from runner.loggers import Tracker


class MyTracker(Tracker):
    def __init__(self, file: str = "events.jsonl"):
        self.file = file

    def start(self, run):
        self.path = run.folder / self.file
        self.write(event="start", run_id=run.run_id, first_epoch=run.first_epoch)

    def epoch(self, epoch, metrics):
        self.write(event="epoch", epoch=epoch, **metrics)

    def end(self, status, metrics, result_path):
        self.write(event="end", status=status, metrics=metrics)

    def write(self, **record):
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\\n")
'''
YAML = """mytracker:
  _target_: mytracker.MyTracker
  file: events.jsonl
"""


def events(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def assert_tracked(folder) -> None:
    """The tracker got the run's start, every epoch with result.json's values, and its end."""
    result = json.loads((folder / RESULT_FILE).read_text())
    assert "logger_errors" not in result, result["logger_errors"]
    got = events(folder)
    assert got[0] == {"event": "start", "run_id": result["run_id"], "first_epoch": 1}
    assert got[-1]["event"] == "end" and got[-1]["status"] == result["status"] == "completed"
    assert got[-1]["metrics"]["train_perplexity"] == result["metrics"]["train_perplexity"]
    epochs = {e["epoch"]: e for e in got[1:-1]}
    assert [e["event"] for e in got[1:-1]] == ["epoch"] * 3 and sorted(epochs) == [1, 2, 3]
    for name in ("train_perplexity", "tokens_per_sec", "lr"):
        assert {k: e[name] for k, e in epochs.items()} == by_epoch(result, name), name
    assert {k: e["val_perplexity"] for k, e in epochs.items() if "val_perplexity" in e} == \
        by_epoch(result, "val_perplexity")


@pytest.mark.slow  # the CLI in subprocesses: a run and a refusal (the sweep of a user's cell,
# task and tracker: tests/test_external_task.py)
def test_a_tracker_from_the_users_folder_gets_every_epoch_beside_csv(corpus_dir, tmp_path):
    user = tmp_path / "user"
    (user / "conf" / "logger").mkdir(parents=True)
    (user / "conf" / "logger" / "mytracker.yaml").write_text(YAML)
    (user / "mytracker.py").write_text(TRACKER)
    tiny = [o for o in tiny_overrides(corpus_dir) if not o.startswith("model.num_hiddens=")]
    tiny += ["model=gru", "train.num_epochs=3", "train.eval_every=2", "threads=1"]
    path = os.pathsep.join(p for p in (str(user), os.environ.get("PYTHONPATH")) if p)

    def cli(*args, pythonpath=path):
        env = {**os.environ, "PYTHONPATH": pythonpath, "OMP_NUM_THREADS": "1"}
        return subprocess.run([sys.executable, "-m", "runner", "--config-dir", user / "conf",
                               *args, *tiny], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)

    single = tmp_path / "single"
    proc = cli("logger=[csv,mytracker]", f"hydra.run.dir={single}")
    assert proc.returncode == 0, proc.stderr
    assert_tracked(single)
    assert csv_curves(single)["train_perplexity"].to_dict() == by_epoch(
        json.loads((single / RESULT_FILE).read_text()))

    # its folder not on PYTHONPATH: refused before any work, in one line naming the target
    proc = cli("logger=mytracker", f"hydra.run.dir={tmp_path / 'refused'}",
               pythonpath=os.environ.get("PYTHONPATH", ""))
    assert proc.returncode == 2, proc.stderr
    assert "logger=mytracker: its _target_ mytracker.MyTracker cannot be imported (No module " \
           "named 'mytracker'): fix the class path, or put its folder on PYTHONPATH" \
           in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "refused" / RESULT_FILE).exists()
