"""The reproduction plan: conf/experiment/*.yaml, one sweep command each, the combined page."""
import functools
import shutil
import subprocess
from pathlib import Path

import pytest

from runner.errors import ConfigError
from runner.plan import planned_runs
from runner.reproduce import (
    EXPERIMENT_DIR,
    Experiment,
    combined_report,
    command,
    load_experiment,
    load_experiments,
    main,
)
from runner.run.identity import Identity
from runner.run.validate import validate
from tests.helpers import CONF, compose_config

NAMES = sorted(p.stem for p in EXPERIMENT_DIR.glob("*.yaml"))
# runner/reproduce.py's Python list and epochs rule before the experiments became YAML files:
# their runs must stay the same runs (folders and identities), so old results resume.
OLD = {"impl_sampling": ["model=rnn,rnn_scratch", "data.sampling=sequential,random"],
       "num_hiddens": ["sweep=num_hiddens"], "num_steps": ["sweep=num_steps"],
       "batch_size": ["sweep=batch_size"], "lr": ["sweep=lr"], "num_epochs": ["sweep=num_epochs"],
       "models": ["sweep=models", "model=rnn,lstm,gru"],
       "num_layers": ["model=lstm", "sweep=num_layers"],
       "bidirectional": ["model=lstm", "model.num_layers=2", "model.num_hiddens=256",
                         "model.bidirectional=false,true"],
       "seq2seq": ["data=tatoeba", "model=gru"]}
OLD_QUICK = {"num_epochs": "train.num_epochs=5,10,20,40", "seq2seq": "train.num_epochs=50"}


def old_command(name: str, epochs: int, quick: bool) -> list[str]:
    epoch_args = ([OLD_QUICK[name]] if quick else []) if name in OLD_QUICK else [
        f"train.num_epochs={epochs}"]
    return [*OLD[name], *epoch_args, "repeats=1", "quiet=true"]


@functools.cache
def planned(args: tuple[str, ...]) -> dict[str, dict]:
    """What `python -m runner -m ARGS` runs, as the runner sweeper plans it (runner/plan.py):
    run folder -> the run's identity. Every run is validated."""
    runs = planned_runs("test", list(args), str(CONF))
    for r in runs:
        validate(r.cfg)  # raises ConfigError on a bad point
    return {r.folder: Identity.of(r.cfg, None).config for r in runs}


def new_command(name: str, epochs: int, quick: bool) -> tuple[str, ...]:
    exp = next(e for e in load_experiments() if e.name == name)
    return tuple(command(exp, Path("out"), 1, epochs, quick, [])[4:])


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_experiment_composes_and_every_point_validates(name):
    cfg = compose_config(f"experiment={name}", hydra_node=True)
    assert cfg.hydra.mode.name == "MULTIRUN" and cfg.sweep_name == name  # runs without -m
    runs = planned(new_command(name, 500, False))  # cached for the test below
    assert runs and all(r["model"]["cell"] for r in runs.values())
    assert not any("reproduce" in r or "experiment" in folder for folder, r in runs.items())


@pytest.mark.slow
@pytest.mark.parametrize("name,quick", [*((n, False) for n in OLD), ("num_epochs", True),
                                        ("seq2seq", True), ("lr", True)])
def test_experiments_plan_the_very_runs_of_the_old_commands(name, quick):
    epochs = 20 if quick else 500
    new = planned(new_command(name, epochs, quick))
    old = planned(("-m", *old_command(name, epochs, quick)))
    assert list(new) == list(old)  # the same run folders, in the same order
    assert new == old  # the same run identities: a result of either command resumes


# The companion note's tables (issue 13): 1,000 steps and 3 seeds of their own.
NOTE = ["note_lr", "note_init", "note_layers", "note_layers_lr", "note_batch"]


def test_the_plan_is_every_experiment_file_in_the_study_order():
    plan = load_experiments()
    assert [e.name for e in plan] == [*OLD, *NOTE]
    assert plan[0].title.startswith("Tables 9-10") and not plan[0].own_epochs
    assert {e.name for e in plan if e.own_epochs} == {*OLD_QUICK, *NOTE}
    assert {e.name: e.quick[0] for e in plan if e.quick} == OLD_QUICK | dict.fromkeys(
        NOTE, "data.steps_per_epoch=5")
    assert {e.name: e.repeats for e in plan if e.repeats} == dict.fromkeys(NOTE, 3)


def test_an_experiment_with_its_own_seeds_keeps_them_unless_quick(monkeypatch, tmp_path):
    full = commands_of(monkeypatch, "--repeats", "20", "--only", "lr,note_init")
    assert "repeats=20" in full[0] and "repeats=3" in full[1]
    assert not any(a.startswith("train.num_epochs") for a in full[1])  # the note's 1,000 steps
    quick = commands_of(monkeypatch, "--quick", "--only", "note_init")  # its own quick seeds
    assert quick[0][1:] == ["data.steps_per_epoch=5", "data.eval_batches=20", "repeats=1",
                            "quiet=true", f"hydra.sweep.dir={Path('results/reproduce')}/note_init"]


def test_commands_carry_seeds_epochs_folder_and_extra_overrides():
    lr = Experiment("lr", "Table 15", 50)
    cmd = command(lr, Path("out"), 20, 500, False, ["launcher=parallel"])
    assert cmd[1:4] == ["-m", "runner", "-m"]
    assert cmd[4:] == ["experiment=lr", "train.num_epochs=500", "repeats=20", "quiet=true",
                       "hydra.sweep.dir=out/lr", "launcher=parallel"]
    epochs = Experiment("num_epochs", "epochs", 60, True, ("train.num_epochs=5,10,20,40",))
    quick = command(epochs, Path("o"), 2, 20, True, [])
    assert "train.num_epochs=5,10,20,40" in quick and "train.num_epochs=20" not in quick
    full = command(epochs, Path("o"), 20, 500, False, [])
    assert not any(a.startswith("train.num_epochs") for a in full)  # the sweep's own values


def commands_of(monkeypatch, *argv, folder=EXPERIMENT_DIR) -> list[list[str]]:
    """The sweep commands main() would run (none is run)."""
    ran = []
    monkeypatch.setattr(subprocess, "run", lambda cmd: ran.append(cmd[4:])
                        or subprocess.CompletedProcess(cmd, 0))
    assert main(list(argv), folder=folder) == 0
    return ran


def test_quick_takes_its_seeds_epochs_and_overrides_from_yaml(monkeypatch, tmp_path):
    ran = commands_of(monkeypatch, "--quick", "--only", "num_epochs,lr", "--out", str(tmp_path))
    assert ran == [["experiment=lr", "train.num_epochs=20", "repeats=2", "quiet=true",
                    f"hydra.sweep.dir={tmp_path}/lr"],
                   ["experiment=num_epochs", "train.num_epochs=5,10,20,40", "repeats=2",
                    "quiet=true", f"hydra.sweep.dir={tmp_path}/num_epochs"]]


def test_a_new_yaml_file_joins_the_plan_without_python(monkeypatch, tmp_path):
    folder = tmp_path / "experiment"
    shutil.copytree(EXPERIMENT_DIR, folder)
    (folder / "dropout.yaml").write_text(
        "# @package _global_\nreproduce:\n  order: 55\n  title: Dropout\n"
        "hydra:\n  mode: MULTIRUN\n  sweeper:\n    params:\n      model.dropout: 0,0.2\n")
    names = [e.name for e in load_experiments(folder)]
    assert names.index("dropout") == names.index("lr") + 1
    ran = commands_of(monkeypatch, "--only", "dropout", "--out", str(tmp_path / "o"),
                      folder=folder)
    assert ran[0][:2] == ["experiment=dropout", "train.num_epochs=500"]
    assert "## Dropout" in (tmp_path / "o" / "report.md").read_text()


@pytest.mark.parametrize("text,says", [
    ("reproduce: {order: 1, title: x}\n", "the first line must be `# @package _global_`"),
    ("# @package _global_\nsweep_name: x\n", "reproduce is missing"),
    ("# @package _global_\nreproduce: {title: x}\n", "reproduce.order is missing"),
    ("# @package _global_\nreproduce: {order: ten, title: x}\n",
     "reproduce.order='ten' is not allowed: it must be an integer"),
    ("# @package _global_\nreproduce: {order: 1, titel: x}\n", "reproduce.titel is not a key"),
    ("# @package _global_\nreproduce: {order: 1, title: x, quick: [train.num_epochs=5,10]}\n",
     "quote those with commas"),
])
def test_a_malformed_experiment_file_is_named_with_its_key_and_fix(tmp_path, capsys, text, says):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError, match=str(tmp_path / "bad.yaml")) as info:
        load_experiment(tmp_path / "bad.yaml")
    assert says in str(info.value)
    assert main(["--only", "bad"], folder=tmp_path) == 2
    assert says in capsys.readouterr().err


def test_combined_report_puts_each_summary_under_its_title(tmp_path):
    (tmp_path / "lr").mkdir()
    (tmp_path / "lr" / "summary.md").write_text("# lr\n\n| metric | 0.1 |\n")
    page = combined_report(tmp_path, [("lr", "Table 15", 0), ("models", "Tables 16-19", 1)])
    text = page.read_text()
    assert "## Table 15\n\n`lr/`\n\n| metric | 0.1 |" in text
    assert "## Tables 16-19 (sweep exit code 1: see its manifest.json)" in text
    assert "(no report)" in text


def test_unknown_experiment_is_refused(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--only", "tables"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "no such experiment" in err and "'impl_sampling'" in err and "'seq2seq'" in err
