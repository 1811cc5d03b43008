"""Hyperparameter search through Hydra's sweepers (conf/hparams_search/): the task function
returns the objective, a metric the task declares, as a float; Optuna's best trial is the best
of the trials' own result.json files."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runner.result import RESULT_FILE, validate_result
from runner.run.objective import objective_problems, objective_value
from runner.run.validate import validate
from runner.tasks import LanguageModelTask, task_class
from tests.helpers import OPTUNA, compose_config, needs, tiny_overrides

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # the CLI in a subprocess, 4 trials
def test_four_optuna_trials_report_the_best_of_their_results(corpus_dir, tmp_path):
    needs(OPTUNA, "optuna")
    sweep_dir = tmp_path / "search"
    cmd = [sys.executable, "-m", "runner", "-m", "hparams_search=optuna", "model=gru",
           *(o for o in tiny_overrides(corpus_dir) if not o.startswith("model.num_hiddens")),
           "train.num_epochs=2", "threads=1",
           "hydra.sweeper.n_trials=4", "model.num_hiddens=choice(8,16)",
           f"hydra.sweep.dir={sweep_dir}"]
    proc = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the runner's sweep progress (a manifest's) is not a search's: no line, no file
    assert "[sweep" not in proc.stdout and not (sweep_dir / ".progress").exists()
    trials = [json.loads(p.read_text()) for p in sweep_dir.glob(f"*/{RESULT_FILE}")]
    assert len(trials) == 4
    for result in trials:
        validate_result(result)
        assert result["status"] == "completed"
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    values = [r["metrics"]["val_perplexity"] for r in trials]
    assert best["best_value"] == min(values)  # the same float: read back, not recomputed
    winner = next(r for r in trials if r["metrics"]["val_perplexity"] == best["best_value"])
    assert best["best_params"]["model.num_hiddens"] == winner["config"]["model"]["num_hiddens"]
    assert best["best_params"]["optim.lr"] == winner["config"]["optim"]["lr"]
    assert 0.01 <= best["best_params"]["optim.lr"] <= 4  # the search space of the file


def test_the_search_optimises_the_datas_objective_in_its_direction():
    needs(OPTUNA, "optuna")
    cfg = compose_config("hparams_search=optuna", hydra_node=True)
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    assert (cfg.objective.metric, cfg.hydra.sweeper.direction) == ("val_perplexity", "minimize")
    mt = compose_config("hparams_search=optuna", "data=tatoeba", hydra_node=True)
    assert (mt.objective.metric, mt.hydra.sweeper.direction) == ("bleu", "maximize")
    grid = compose_config(hydra_node=True)  # no search: the runner's own sweeper
    assert grid.hydra.sweeper._target_.endswith("RunnerSweeper")


@pytest.mark.parametrize("data", ["timemachine", "tatoeba", "synthetic"])
def test_every_datas_objective_is_a_metric_its_task_declares(data):
    cfg = compose_config(f"data={data}")
    validate(cfg)
    declared = task_class(cfg).metric(cfg.objective.metric)
    assert declared.direction == cfg.objective.direction


@pytest.mark.parametrize("objective,fragment", [
    ({"metric": "bleu", "direction": "maximize"}, "objective.metric='bleu' is not a metric of "
     "data.task=language_model: it must be one of train_perplexity, val_perplexity, "
     "best_train_perplexity, best_val_perplexity, tokens_per_sec"),
    ({"metric": "val_perplexity", "direction": "up"}, "objective.direction='up' is not allowed"),
    ({"metric": "val_perplexity", "direction": "maximize"},
     "contradicts val_perplexity, which is better when lower: set objective.direction=minimize"),
])
def test_a_bad_objective_is_refused_naming_the_fix(objective, fragment):
    [line] = objective_problems(objective, "language_model", LanguageModelTask)
    assert fragment in line


def test_a_run_without_the_metric_is_a_failed_trial():
    assert objective_value({"metrics": {"val_perplexity": 7.5}}, "val_perplexity") == 7.5
    assert math.isnan(objective_value({"metrics": {"val_perplexity": None}}, "val_perplexity"))
    assert math.isnan(objective_value(None, "val_perplexity"))  # refused: no result at all
