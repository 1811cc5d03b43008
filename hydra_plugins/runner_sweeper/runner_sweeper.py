"""Hydra sweeper plugin `runner`: Hydra's basic sweeper (cartesian product of the sweep
params and command-line sweeps) plus what a week-long ablation needs: a seed axis from
`repeats`, a manifest of every planned run, a summary line, the report, and a non-zero exit
when any run failed. The logic lives in runner/sweep/sweeper.py; this file only plugs it
into Hydra."""
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser

from runner.sweep.hydra_private import basic_sweeper, sweep_params

BasicSweeper = basic_sweeper()


@dataclass
class RunnerSweeperConf:
    _target_: str = "hydra_plugins.runner_sweeper.runner_sweeper.RunnerSweeper"
    params: dict[str, str] | None = None


ConfigStore.instance().store(group="hydra/sweeper", name="runner", node=RunnerSweeperConf,
                             provider="runner")


class RunnerSweeper(BasicSweeper):
    def __init__(self, params: dict[str, str] | None = None) -> None:
        # One batch always: every job is planned (and in the manifest) before any starts.
        BasicSweeper.__init__(self, max_batch_size=None, params=params)

    def setup(self, *, hydra_context, task_function, config) -> None:
        from runner.sweep.sweeper import size_launcher

        size_launcher(config)  # before the launcher is built from config.hydra.launcher
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]):
        from runner.sweep.sweeper import Sweep

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*sweep_params(self), *arguments])
        sweep = Sweep(self.config, overrides, parser)
        jobs = self.split_arguments(sweep.overrides, None)[0]  # one batch: no job waits on another
        self.validate_batch_is_legal(jobs)
        sweep.start(jobs)
        from runner.run.interrupt import interruptible

        try:
            with interruptible():  # Ctrl-C or SIGTERM anywhere in the sweep: one way out
                returns = self.launcher.launch(sweep.launched(jobs), initial_job_idx=0)
        except KeyboardInterrupt as e:
            sweep.stop(e)  # manifest, summary line, exit 130 (143 for SIGTERM)
        sweep.finish(returns)  # summary, manifest, report; exits 1 if any run failed
        return [returns]
