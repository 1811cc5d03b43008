"""Hydra sweeper plugin `runner`: Hydra's basic sweeper (cartesian product of the sweep
params and command-line sweeps) plus what a week-long ablation needs: a seed axis from
`repeats`, a manifest of every planned run, a summary line, the report, and a non-zero exit
when any run failed. Those are for the runner's own app (runner/sweep/sweeper.py runner_app);
any other Hydra app is swept exactly as Hydra's basic sweeper sweeps it. The logic lives in
runner/sweep/sweeper.py; this file only plugs it into Hydra."""
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser

from runner.hydra_private import basic_sweeper, sweep_params

BasicSweeper = basic_sweeper()


@dataclass
class RunnerSweeperConf:
    _target_: str = "hydra_plugins.runner_sweeper.runner_sweeper.RunnerSweeper"
    # As Hydra's basic sweeper's: null launches every job at once (the launcher decides how
    # many run together); N launches batches of N, each after the last has ended. The runner's
    # sweeps plan every job (manifest, folder check) before the first batch starts either way.
    max_batch_size: int | None = None
    params: dict[str, str] | None = None


ConfigStore.instance().store(group="hydra/sweeper", name="runner", node=RunnerSweeperConf,
                             provider="runner")


class RunnerSweeper(BasicSweeper):
    def __init__(self, max_batch_size: int | None = None,
                 params: dict[str, str] | None = None) -> None:
        BasicSweeper.__init__(self, max_batch_size=max_batch_size, params=params)

    def setup(self, *, hydra_context, task_function, config) -> None:
        from runner.sweep.settings import check_launcher
        from runner.sweep.sweeper import runner_app, size_launcher

        if runner_app(config):
            check_launcher(config)  # bad launcher settings: exit 2, before anything is built
            size_launcher(config)  # before the launcher is built from config.hydra.launcher
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def validate_batch_is_legal(self, batch) -> None:
        """Hydra's check that every job composes; for the runner's own app, every job's config
        also validated as its run will validate it, so bad input stops the sweep before any
        job starts (runner/sweep/precheck.py)."""
        from runner.sweep.precheck import check_jobs
        from runner.sweep.sweeper import runner_app

        if not runner_app(self.config):
            return super().validate_batch_is_legal(batch)
        return check_jobs(self.hydra_context.config_loader, self.config, batch)

    def sweep(self, arguments: list[str]):
        from runner.sweep.sweeper import Sweep, runner_app

        if not runner_app(self.config):  # another Hydra app: Hydra's basic sweep, as it is
            return super().sweep(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*sweep_params(self), *arguments])
        sweep = Sweep(self.config, overrides, parser)
        batches = self.split_arguments(sweep.overrides, self.max_batch_size)
        jobs = [job for batch in batches for job in batch]
        self.validate_batch_is_legal(jobs)  # every job, and the manifest, before any starts
        sweep.start(jobs)
        from runner.run.interrupt import interruptible
        from runner.sweep.packs import plan_packs

        # launcher.pack: one job per pack of runs that differ only by seed (its first run's)
        batches = plan_packs(sweep, self.config, jobs, batches, self.max_batch_size)

        returns = []
        try:
            with interruptible():  # Ctrl-C or SIGTERM anywhere in the sweep: one way out
                for batch in batches:
                    first = sum(map(len, returns))  # job numbers run on across batches
                    returns.append(self.launcher.launch(sweep.launched(batch),
                                                        initial_job_idx=first))
        except KeyboardInterrupt as e:
            sweep.stop(e)  # manifest, summary line, exit 130 (143 for SIGTERM)
        sweep.finish([ret for batch in returns for ret in batch])  # exits 1 if a run failed
        return returns
