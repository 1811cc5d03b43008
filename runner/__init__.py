"""Config-driven experiment runner for ablation studies of recurrent sequence models.

From Python, use runner.api (docs/python-api.md):

    from runner.api import run, load_results
    result = run(["model=gru", "train.num_epochs=5"], out_dir="results/gru")
    df = load_results("results")

`runner.run` is the subpackage of one run's internals (a module, not a function): it takes a
config already composed; runner.api.run composes one from overrides, as the command does."""
