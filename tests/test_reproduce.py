"""The reproduction plan: one sweep command per experiment, and the combined page."""
from pathlib import Path

import pytest

from runner.reproduce import EXPERIMENTS, QUICK, combined_report, command, main
from tests.helpers import compose_config


def test_every_experiment_composes():
    for name, _, overrides in EXPERIMENTS:
        cfg = compose_config(*[o for o in overrides if "," not in o], hydra_node=True)
        assert cfg.model.cell in {"rnn", "lstm", "gru"}, name


def test_commands_carry_seeds_epochs_folder_and_extra_overrides():
    cmd = command(["sweep=lr"], "lr", Path("out"), 20, 500, False, ["launcher=parallel"])
    assert cmd[1:4] == ["-m", "runner", "-m"]
    assert cmd[4:] == ["sweep=lr", "train.num_epochs=500", "repeats=20", "quiet=true",
                       "hydra.sweep.dir=out/lr", "launcher=parallel"]
    quick = command(["sweep=num_epochs"], "num_epochs", Path("o"), 2, 20, True, [])
    assert QUICK["num_epochs"] in quick and "train.num_epochs=20" not in quick
    full = command(["sweep=num_epochs"], "num_epochs", Path("o"), 20, 500, False, [])
    assert not any(a.startswith("train.num_epochs") for a in full)  # the sweep's own values


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
    assert "no such experiment" in capsys.readouterr().err
