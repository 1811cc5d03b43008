"""The private Hydra API the runner uses (runner/hydra_private.py), one test per use, checked
against the installed Hydra: if an upgrade moves or changes a piece, its test fails and names
it."""
import os
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from runner import hydra_private
from runner.hydra_private import (
    basic_sweeper,
    hydra_raises,
    hydra_reports,
    job_folder,
    job_folder_error,
    sweep_params,
)

ROOT = Path(__file__).resolve().parent.parent
PRIVATE = ("hydra._internal", "HydraConfig.instance()", "HYDRA_FULL_ERROR", "._fmt")


def test_the_pinned_hydra_is_installed():
    major, minor = (int(p) for p in hydra.__version__.split(".")[:2])
    assert (major, minor) == (1, 3), (
        f"hydra-core {hydra.__version__}: runner/hydra_private.py is written against 1.3")


def test_1_basic_sweeper_offers_what_the_runner_sweeper_calls():
    BasicSweeper = basic_sweeper()  # noqa: N806 (a class), looked up now as the plugin does
    # sweep: another Hydra app's whole sweep; the rest: the runner's own
    for name in ("setup", "sweep", "split_arguments", "validate_batch_is_legal"):
        assert callable(getattr(BasicSweeper, name, None)), f"BasicSweeper.{name} is gone"
    params = list(inspect_parameters(BasicSweeper.__init__))
    assert params[1:] == ["max_batch_size", "params"], params
    sweeper = BasicSweeper(max_batch_size=2, params={"model": "rnn,gru", "seed": "0"})
    assert sweep_params(sweeper) == ["model=rnn,gru", "seed=0"]
    assert sweeper.max_batch_size == 2  # read by RunnerSweeper.sweep
    overrides = OverridesParser.create().parse_overrides(sweep_params(sweeper))
    jobs = BasicSweeper.split_arguments(overrides, None)
    assert jobs == [[["model=rnn", "seed=0"], ["model=gru", "seed=0"]]]
    assert BasicSweeper.split_arguments(overrides, 1) == [[["model=rnn", "seed=0"]],
                                                           [["model=gru", "seed=0"]]]
    # a completed job hands its task function's value back to the sweeper
    assert JobReturn(status=JobStatus.COMPLETED, _return_value="diverged").return_value == \
        "diverged"


def inspect_parameters(function):
    import inspect

    return inspect.signature(function).parameters


def test_2_job_folder_is_hydra_s_override_dirname():
    parser = OverridesParser.create()
    naming = OmegaConf.create({"exclude_keys": [], "item_sep": ",", "kv_sep": "="})
    overrides = parser.parse_overrides(["seed=1", "model=gru", "quiet=true",
                                        "model.num_hiddens=32"])
    # sorted by key, the excluded keys left out: the folder the job will get
    assert job_folder(overrides, ["quiet"], naming) == "model.num_hiddens=32,model=gru,seed=1"


def run_app(argv: list[str], monkeypatch) -> None:
    """A Hydra app with no config file, run in this process with `argv`; it never starts."""
    @hydra.main(config_path=None, config_name=None, version_base="1.3")
    def app(cfg):
        raise AssertionError("the task function was not to start")

    monkeypatch.setattr(sys, "argv", ["app", *argv])
    try:
        app()
    finally:
        GlobalHydra.instance().clear()


def test_3_hydra_raises_hands_hydra_s_error_to_the_caller(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(hydra_private, "USER_FULL_ERROR", None)
    argv = ["nosuch.key=1", f"hydra.run.dir={tmp_path}"]
    hydra_raises()
    try:
        with pytest.raises(ConfigCompositionException) as info:
            run_app(argv, monkeypatch)
    finally:
        hydra_reports()
    assert "HYDRA_FULL_ERROR" not in os.environ
    # by its type, what hydra_errors.unknown_key reads: OmegaConf's missing-key error, naming it
    assert isinstance(info.value.__cause__, ConfigAttributeError | ConfigKeyError)
    assert info.value.__cause__.full_key == "nosuch"
    with pytest.raises(SystemExit) as exit_info:  # Hydra's own way: its message, exit 1
        run_app(argv, monkeypatch)
    assert exit_info.value.code == 1
    assert "Could not override 'nosuch.key'" in capsys.readouterr().err


def test_4_an_os_error_making_the_job_s_folder_is_raised_through_run_job(monkeypatch):
    hydra_raises()
    try:
        with pytest.raises(OSError) as info:
            run_app(["hydra.run.dir=/proc/runner-test/x"], monkeypatch)
        assert job_folder_error(info.value), info.value
        assert not job_folder_error(OSError(2, "No such file or directory", "/elsewhere"))
    finally:
        hydra_reports()
    assert not job_folder_error(info.value)  # once the task function started: the run's error


CHILD = """
import logging, sys
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from runner.hydra_private import enter_job, job_hydra
with initialize_config_dir(sys.argv[1], version_base="1.3"):
    cfg = compose("config", return_hydra_config=True)
settings = OmegaConf.to_container(cfg.hydra, resolve=False)
settings["runtime"]["output_dir"] = sys.argv[2]
GlobalHydra = __import__("hydra.core.global_hydra", fromlist=["GlobalHydra"]).GlobalHydra
GlobalHydra.instance().clear()
enter_job(settings)  # as a fresh process does with its worker's settings
logging.getLogger("runner.child").info("logged by the child")
print(job_hydra()["runtime"]["output_dir"], job_hydra()["job"]["name"])
"""


def test_5_enter_job_gives_a_fresh_process_the_job_s_settings_and_log(tmp_path):
    proc = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "conf"), str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].split() == [str(tmp_path), "runner"]
    assert "logged by the child" in proc.stdout  # Hydra's console handler
    log = (tmp_path / "runner.log").read_text()  # Hydra's file handler: <output_dir>/<name>.log
    assert "[runner.child][INFO] - logged by the child" in log


def test_the_one_door_is_the_only_user_of_private_hydra():
    users = sorted({p.relative_to(ROOT).as_posix()
                    for folder in ("runner", "hydra_plugins", "models", "data", "bench")
                    for p in (ROOT / folder).rglob("*.py")
                    for marker in PRIVATE if marker in p.read_text()})
    assert users == ["runner/hydra_private.py"]
