"""Every named sweep (conf/sweep/): composed in multirun mode, every point expanded, composed
and validated as the runner's sweeper plans it (runner/plan.py's fast composition checked
against Hydra's), and one cheap point of each trained."""
import json
import math
from functools import cache

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from runner.hydra_private import basic_sweeper, sweep_params
from runner.plan import compose_job
from runner.result import RESULT_FILE, validate_result
from runner.run import run
from runner.run.validate import validate
from runner.sweep.sweeper import with_seed_axis
from tests.helpers import CONF, TINY_REGRESSION, compose_config

SWEEPS = sorted(p.stem for p in (CONF / "sweep").glob("*.yaml"))


@pytest.mark.parametrize("name", SWEEPS)
def test_every_named_sweep_composes_in_multirun_mode(name):
    cfg = compose_config(f"sweep={name}", hydra_node=True)
    assert cfg.hydra.mode.name == "MULTIRUN"
    assert cfg.sweep_name == name and cfg.hydra.sweeper.params
    assert dict(cfg.hydra.sweeper.params) == sweep_params_of(name)


# ---------------------------------------------------------------- every point of every sweep
PARSER = OverridesParser.create()
# A config group's choice shows in the composed config (and a result's) as this key's value;
# a row of the note (conf/note/) as the values its file sets (note_values).
CHOICE_KEY = {"sweep": "sweep_name", "model": "model.cell", "init": "init.scheme"}


def note_values(choice: str) -> dict:
    """{dotted key: value} a conf/note/ row sets; its init choice (conf/init/<scheme>.yaml)
    as init.scheme."""
    doc = OmegaConf.to_container(OmegaConf.load(CONF / "note" / f"{choice}.yaml"))
    found = {}
    for entry in doc.pop("defaults", []):  # e.g. {"override /init": "normal"}
        for group, option in entry.items():
            if group.endswith("/init"):
                found["init.scheme"] = option

    def leaves(node, prefix=""):
        for k, v in node.items():
            if isinstance(v, dict):
                yield from leaves(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v
    return found | dict(leaves(doc))


def model_values(choice: str) -> dict:
    """{dotted key: value} a conf/model/ choice sets of its cell and implementation
    (gru_nn: model.cell gru, model.impl nn)."""
    doc = OmegaConf.load(CONF / "model" / f"{choice}.yaml")
    return {f"model.{k}": doc[k] for k in ("cell", "impl") if k in doc}


@cache
def _composed_groups(groups: tuple[str, ...]):
    return compose_config(*groups)


def sweep_params_of(name: str) -> dict[str, str]:
    """A named sweep's hydra.sweeper.params, from its file (test_every_named_sweep_composes_
    in_multirun_mode checks that Hydra composes the same ones)."""
    return dict(OmegaConf.load(CONF / "sweep" / f"{name}.yaml").hydra.sweeper.params)


@cache
def sweep_points(name: str) -> tuple[tuple[str, ...], ...]:
    """The jobs `python -m runner sweep=<name>` launches, expanded as the runner's sweeper
    does (RunnerSweeper.sweep): its params and the command line's overrides through Hydra's
    parser, the seed axis, then Hydra's cartesian product (BasicSweeper.split_arguments). The
    plugin's class itself is not built here: it subclasses the BasicSweeper of the moment the
    plugin was imported, which Hydra's plugin scan (in every compose) replaces."""
    sweeper = basic_sweeper()(max_batch_size=None, params=sweep_params_of(name))
    overrides = PARSER.parse_overrides([*sweep_params(sweeper), f"sweep={name}"])
    base = _composed_groups((f"sweep={name}",))
    overrides = with_seed_axis(overrides, base.seed, base.repeats, PARSER)
    return tuple(tuple(job) for job in sweeper.split_arguments(overrides, None)[0])


def values_of(point) -> dict:
    """{key: typed value} of a point's overrides, a group choice under its CHOICE_KEY."""
    return {CHOICE_KEY.get(o.key_or_group, o.key_or_group): o.value()
            for o in PARSER.parse_overrides(list(point))}


def compose_point(point):
    """The job's config. Composing costs ~0.2-0.4 s a time here, and models alone has 36
    points, so each distinct set of group choices is composed once by Hydra and the point's
    plain `key=value` overrides are then applied as Hydra applies them after composing
    (OmegaConf.update(cfg, key, value, merge=True)). test_fast_composition_is_hydras checks
    this against a full compose for one point of every sweep (runner/plan.py compose_job)."""
    return compose_job(PARSER.parse_overrides(list(point)), str(CONF), _composed_groups)


@pytest.mark.parametrize("name", SWEEPS)
def test_every_point_of_every_named_sweep_expands_composes_and_validates(name):
    params, points = sweep_params_of(name), sweep_points(name)
    # one job per combination of the params' values (and one seed: repeats=1)
    assert len(points) == math.prod(len(str(v).split(",")) for v in params.values())
    assert len(set(points)) == len(points)
    assert all(f"sweep={name}" in p and "seed=0" in p for p in points)
    for point in points:
        cfg = compose_point(point)
        validate(cfg)  # raises ConfigError, naming every bad key, on a point that cannot run
        for key, value in values_of(point).items():
            expected = (note_values(value) if key == "note" else model_values(value)
                        if key == "model.cell" else {key: value})
            for k, v in expected.items():
                assert OmegaConf.select(cfg, k) == v, (point, k)
    for key, listed in params.items():  # every value listed is some point's
        taken = {values_of(p)[CHOICE_KEY.get(key, key)] for p in points}
        assert len(taken) == len(str(listed).split(",")), (key, taken)


@pytest.mark.parametrize("name", SWEEPS)
def test_fast_composition_is_hydras(name):
    point = sweep_points(name)[-1]
    assert compose_point(point) == compose_config(*point)


# Keys whose value sets the cost of a run: a point's own values are run as they are; those it
# leaves alone are set after it, small (a shorter tiny corpus, one epoch, one layer: the
# transformer's 6 would make its run the slowest here).
SIZE_KEYS = {"model.num_hiddens", "model.num_layers", "data.batch_size", "data.num_steps",
             "train.num_epochs"}
SMALL = {"train.num_epochs": 1, "model.num_layers": 1, "data.max_tokens": 600,
         "data.val_tokens": 150}


def cheap_point(name: str) -> tuple[str, ...]:
    """The point of a sweep that one fast run exercises best: on a size axis its smallest
    value (num_hiddens 1024 would be slow, and batch_size 256 x 10 steps is more than the tiny
    corpus's training tokens), on any other axis its last value, the one furthest from the
    base config (model=transformer with its own preset, init=orthogonal, model.skip=dense,
    data.sampling=random, warm-up 0.1, lr 1, ...). The smallest point rather than a big one
    shrunk after it, so that the run is exactly a job the sweep launches: num_epochs's 50
    epochs included (a few seconds on the shortened corpus)."""
    points = sweep_points(name)
    axes = {k: [values_of(p)[k] for p in points] for k in values_of(points[0])}
    target = {k: min(v) if k in SIZE_KEYS else v[-1] for k, v in axes.items()}
    return next(p for p in points if values_of(p) == target)


@pytest.mark.slow
@pytest.mark.parametrize("name", SWEEPS)
def test_one_point_of_every_named_sweep_trains(name, tiny_cfg, tmp_path):
    point = cheap_point(name)  # it names its sweep: sweep=<name>
    values = values_of(point)
    regression = compose_point(point).data.task == "regression"
    if regression:  # the note's task: shrunk, the point's own values kept
        small = [o for o in TINY_REGRESSION if o.split("=")[0] not in values]
        cfg = compose_config(*point, *small)
    else:
        small = [f"{k}={v}" for k, v in SMALL.items() if k not in values]
        cfg = tiny_cfg(*point, *small, "train.eval_every=1000")  # evaluated after the last epoch
    result = run(cfg, tmp_path / "run")
    validate_result(json.loads((tmp_path / "run" / RESULT_FILE).read_text()))
    assert result["status"] == "completed"
    recorded = OmegaConf.create(result["config"])
    for key, value in values.items():
        expected = note_values(value) if key == "note" else {key: value}
        for k, v in expected.items():
            assert OmegaConf.select(recorded, k) == v, (key, result["config"])
    assert result["metrics"]["epochs_done"] == recorded.train.num_epochs
    assert math.isfinite(result["metrics"]["mse" if regression else "val_perplexity"])
