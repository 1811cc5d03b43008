"""Sweeps: the sweeper's plan, manifest and summary (sweeper.py), one job of a sweep (job.py),
device slots for the parallel launcher (slots.py) and a fresh process per run (isolate.py,
child.py). The private Hydra API they use is behind one door: runner/hydra_private.py."""
