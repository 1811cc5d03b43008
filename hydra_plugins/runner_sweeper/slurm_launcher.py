"""launcher=slurm's Hydra launcher: hydra-submitit-launcher's SlurmLauncher, whose collection
of the jobs (j.results(), which raises on a job SLURM ended without a result and waits forever
where sacct cannot answer) is made safe by runner/sweep/slurm.py. Hydra instantiates launchers
from the hydra_plugins package only, so the class lives here; submitit is imported lazily, as
the plugin itself does, to keep plugin discovery fast."""
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
    SlurmLauncher as SubmititSlurmLauncher,
)


class SlurmLauncher(SubmititSlurmLauncher):
    def launch(self, job_overrides, initial_job_idx):
        from runner.sweep.slurm import collecting

        with collecting():
            return super().launch(job_overrides, initial_job_idx)
