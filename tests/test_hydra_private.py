"""The private Hydra API the runner uses (runner/sweep/hydra_private.py), checked against the
installed Hydra: if an upgrade moves or changes a piece, this fails and names it."""
import inspect

import hydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from runner.sweep import hydra_private
from runner.sweep.hydra_private import basic_sweeper, job_folder, sweep_params


def test_the_pinned_hydra_is_installed():
    major, minor = (int(p) for p in hydra.__version__.split(".")[:2])
    assert (major, minor) == (1, 3), (
        f"hydra-core {hydra.__version__}: runner/sweep/hydra_private.py is written against 1.3")


def test_job_folder_is_hydra_s_override_dirname():
    parser = OverridesParser.create()
    naming = OmegaConf.create({"exclude_keys": [], "item_sep": ",", "kv_sep": "="})
    overrides = parser.parse_overrides(["seed=1", "model=gru", "quiet=true",
                                        "model.num_hiddens=32"])
    # sorted by key, the excluded keys left out: the folder the job will get
    assert job_folder(overrides, ["quiet"], naming) == "model.num_hiddens=32,model=gru,seed=1"


def test_basic_sweeper_offers_what_the_runner_sweeper_calls():
    BasicSweeper = basic_sweeper()  # noqa: N806 (a class), looked up now as the plugin does
    # sweep: another Hydra app's whole sweep; the rest: the runner's own
    for name in ("setup", "sweep", "split_arguments", "validate_batch_is_legal"):
        assert callable(getattr(BasicSweeper, name, None)), f"BasicSweeper.{name} is gone"
    params = list(inspect.signature(BasicSweeper.__init__).parameters)
    assert params[1:] == ["max_batch_size", "params"], params
    sweeper = BasicSweeper(max_batch_size=2, params={"model": "rnn,gru", "seed": "0"})
    assert sweep_params(sweeper) == ["model=rnn,gru", "seed=0"]
    assert sweeper.max_batch_size == 2  # read by RunnerSweeper.sweep
    overrides = OverridesParser.create().parse_overrides(sweep_params(sweeper))
    jobs = BasicSweeper.split_arguments(overrides, None)
    assert jobs == [[["model=rnn", "seed=0"], ["model=gru", "seed=0"]]]
    assert BasicSweeper.split_arguments(overrides, 1) == [[["model=rnn", "seed=0"]],
                                                           [["model=gru", "seed=0"]]]


def test_a_completed_job_return_hands_over_its_value():
    ret = JobReturn(status=JobStatus.COMPLETED, _return_value="diverged")
    assert ret.return_value == "diverged"


def test_the_adapter_is_the_only_importer_of_hydra_internals():
    from pathlib import Path

    root = Path(hydra_private.__file__).parents[2]
    users = [p.relative_to(root).as_posix()
             for folder in ("runner", "hydra_plugins", "models", "data", "bench")
             for p in (root / folder).rglob("*.py") if "hydra._internal" in p.read_text()]
    assert users == ["runner/sweep/hydra_private.py"]
