"""Hydra's own test suites for plugin authors (hydra.test_utils.launcher_common_tests), run
against the runner's sweeper (hydra/sweeper=runner) with each launcher the runner uses: basic,
joblib (launcher=parallel) and submitit_local. Hydra's test apps have none of the runner's keys
(seed, repeats, launcher), so the sweeper must behave there as Hydra's basic sweeper does.
Parametrized as Hydra's own plugins parametrize them (hydra: tests/test_basic_launcher.py,
plugins/hydra_joblib_launcher/tests, plugins/hydra_submitit_launcher/tests)."""
from pathlib import Path

import pytest
from hydra.test_utils.launcher_common_tests import (
    BatchedSweeperTestSuite,
    IntegrationTestSuite,
    LauncherTestSuite,
)

# hydra.job.chdir: Hydra's suites expect a job to change into its folder, Hydra 1.1's default,
# which a process keeps while nothing has set a version_base; the project's other tests compose
# with version_base="1.3" (no chdir), a setting of the whole process
SWEEPER, CHDIR = "hydra/sweeper=runner", "hydra.job.chdir=true"

# (launcher, its own overrides, slow): the basic launcher runs the jobs in this process; joblib
# and submitit start worker processes, over ~2 s a test
LAUNCHERS = [("basic", [], False), ("joblib", [], True),
             ("submitit_local", ["hydra.launcher.timeout_min=2"], True)]


def launcher_params(*extra: str) -> list:
    """(launcher_name, overrides) for each launcher; a fresh list each time, as
    BatchedSweeperTestSuite extends the `overrides` it is given."""
    return [pytest.param(name, [SWEEPER, CHDIR, *extra, *own], id=name,
                         marks=[pytest.mark.slow] if slow else [])
            for name, own, slow in LAUNCHERS]


def integration_params() -> list:
    """(task_launcher_cfg, extra_flags) for each launcher: the app selects the launcher in its
    defaults, the command line the sweeper. Every test starts the app in a subprocess: slow."""
    params = []
    for name, own, _ in LAUNCHERS:
        defaults = [{"override hydra/launcher": name},
                    {"override hydra/hydra_logging": "hydra_debug"},
                    {"override hydra/job_logging": "disabled"}]
        params.append(pytest.param({"defaults": defaults}, ["-m", SWEEPER, *own], id=name,
                                   marks=pytest.mark.slow))
    return params


@pytest.mark.parametrize("launcher_name, overrides", launcher_params())
class TestRunnerSweeperWithLaunchers(LauncherTestSuite):
    pass


@pytest.mark.parametrize("launcher_name, overrides",
                         launcher_params("hydra.sweeper.max_batch_size=2"))
class TestRunnerSweeperWithBatching(BatchedSweeperTestSuite):
    pass


@pytest.mark.parametrize("task_launcher_cfg, extra_flags", integration_params())
class TestRunnerSweeperIntegration(IntegrationTestSuite):
    pass


# ---------------------------------------------------------------- a foreign app, beyond the suites
def test_a_foreign_app_keeps_its_seed_and_gets_no_runner_bookkeeping(hydra_sweep_runner, tmpdir):
    """`+seed=0` on an app without `seed` or `repeats`: the user's seed goes to every job as
    typed, no seed axis is added, and the sweep folder holds no manifest or progress file."""
    sweep = hydra_sweep_runner(
        calling_file=None, calling_module="hydra.test_utils.a_module", task_function=None,
        config_path="configs", config_name="compose",
        overrides=[SWEEPER, "hydra/launcher=basic", "+seed=0", "+a=0,1"], temp_dir=tmpdir)
    with sweep:
        jobs = sweep.returns[0]
        assert [job.overrides for job in jobs] == [["+seed=0", "+a=0"], ["+seed=0", "+a=1"]]
        assert [job.cfg.seed for job in jobs] == [0, 0]
        assert [job.return_value for job in jobs] == [100, 100]
        names = {p.name for p in Path(sweep.temp_dir).iterdir()}
        assert names == {"0", "1", "multirun.yaml"}, names
