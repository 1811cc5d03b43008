"""Sweeps: the sweeper's plan, manifest and summary (sweeper.py), one job of a sweep (job.py),
device slots for the parallel launcher (slots.py) and the private Hydra API they use, behind
one door (hydra_private.py)."""
