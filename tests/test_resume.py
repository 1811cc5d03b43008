"""Resume reuses a finished result only when the current command would produce it: the same
config, the same data file (by sha1) and the same result format. Results made by another
code version are kept, but said so."""
import json
import subprocess

import pytest

import runner.run.environment as environment
from runner.errors import ConfigError
from runner.result import RESULT_FILE, version_label
from runner.run.execute import run
from runner.sweep.notes import summary_notes
from tests.helpers import write_corpus
from tests.test_sweep import sweep_cli


def test_same_command_same_file_is_skipped(tiny_cfg, tmp_path):
    first = run(tiny_cfg("train.num_epochs=1"), tmp_path)
    again = run(tiny_cfg("train.num_epochs=1"), tmp_path)
    assert again["skipped"] and again["run_id"] == first["run_id"]


def test_a_result_of_another_data_file_is_refused_then_replaced(tiny_cfg, corpus_dir, tmp_path):
    """data.sha1=null accepts any file: the result records which one, and a finished result
    of another file is never passed off as this command's."""
    first = run(tiny_cfg("train.num_epochs=1"), tmp_path)
    write_corpus(corpus_dir / "tiny.txt", seed=1)  # another text under the same name
    with pytest.raises(ConfigError, match=f"was trained on data with sha1 "
                                          f"{first['dataset']['sha1']}, but tiny.txt"):
        run(tiny_cfg("train.num_epochs=1"), tmp_path)
    assert json.loads((tmp_path / RESULT_FILE).read_text())["run_id"] == first["run_id"]
    redone = run(tiny_cfg("train.num_epochs=1", "overwrite=true"), tmp_path)
    assert not redone.get("skipped") and redone["run_id"] != first["run_id"]
    assert redone["dataset"]["sha1"] != first["dataset"]["sha1"]


def test_a_result_of_an_older_schema_is_refused(tiny_cfg, tmp_path):
    run(tiny_cfg("train.num_epochs=1"), tmp_path)
    path = tmp_path / RESULT_FILE
    old = json.loads(path.read_text())
    path.write_text(json.dumps({**old, "schema_version": 1}))
    with pytest.raises(ConfigError, match="older runner \\(result schema_version 1, now 2\\)"):
        run(tiny_cfg("train.num_epochs=1"), tmp_path)


@pytest.mark.slow  # the CLI in a subprocess
def test_sweep_says_when_kept_results_come_from_another_code_version(corpus_dir, tmp_path):
    out = tmp_path / "sweep"
    args = ["model.num_hiddens=8"]  # a sweep of one run
    assert sweep_cli(corpus_dir, out, *args).returncode == 0
    path = next(out.rglob(RESULT_FILE))
    result = json.loads(path.read_text())
    result["environment"].update(git_commit="0" * 40, git_diff_sha1=None)
    path.write_text(json.dumps(result))
    proc = sweep_cli(corpus_dir, out, *args)
    assert proc.returncode == 0, proc.stderr
    assert ("1 runs: 0 completed, 0 failed, 0 diverged, 1 skipped (1 results from another "
            "code version kept; overwrite=true re-runs them)") in proc.stdout
    assert "made by code version 0000000000; overwrite=true re-runs it" in proc.stdout


def test_the_note_counts_only_results_of_other_versions(tmp_path, monkeypatch):
    """The summary's count, with the checkout's version pinned (the CLI test above cannot pin
    it: a tree edited while it runs is another version)."""
    current = {"git_commit": "a" * 40, "git_dirty": True, "git_diff_sha1": "b" * 40}
    monkeypatch.setattr(environment, "code_version", lambda: current)
    versions = {"same": current, "other-commit": {**current, "git_commit": "c" * 40},
                "other-diff": {**current, "git_diff_sha1": "d" * 40},
                "clean": {**current, "git_dirty": False, "git_diff_sha1": None},
                "ran-now": {**current, "git_commit": "e" * 40}}
    runs = []
    for name, env in versions.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / RESULT_FILE).write_text(json.dumps({"environment": env}))
        runs.append({"dir": name, "status": "completed" if name == "ran-now" else "skipped"})
    note = summary_notes(tmp_path, runs, started_at="")
    assert note == " (3 results from another code version kept; overwrite=true re-runs them)"
    assert summary_notes(tmp_path, runs[:1], started_at="") == ""


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_code_version_tells_dirty_states_apart(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    git(repo, "add", "a.py")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    monkeypatch.setattr(environment, "CHECKOUT", repo)
    clean = environment.code_version()
    assert clean["git_dirty"] is False and clean["git_diff_sha1"] is None
    assert len(clean["git_commit"]) == 40
    (repo / "a.py").write_text("x = 2\n")
    two = environment.code_version()
    (repo / "a.py").write_text("x = 3\n")
    three = environment.code_version()
    (repo / "untracked.py").write_text("y = 1\n")  # untracked files are not part of it
    assert environment.code_version() == three
    assert two["git_dirty"] and three["git_dirty"]
    assert two["git_commit"] == three["git_commit"] == clean["git_commit"]
    assert len({two["git_diff_sha1"], three["git_diff_sha1"]}) == 2
    assert version_label(three) == (f"{clean['git_commit'][:10]}+dirty "
                                                f"{three['git_diff_sha1'][:8]}")


def test_a_result_written_with_retired_keys_is_still_this_experiment(tiny_cfg, tmp_path):
    """data.name and model._target_ left the config without changing any result: a result that
    still carries them is resumed, and any real difference is still refused."""
    first = run(tiny_cfg("train.num_epochs=1"), tmp_path)
    path = tmp_path / RESULT_FILE
    old = json.loads(path.read_text())
    old["config"]["data"]["name"] = "timemachine"
    old["config"]["model"]["_target_"] = "models.LanguageModel"
    path.write_text(json.dumps(old))
    again = run(tiny_cfg("train.num_epochs=1"), tmp_path)
    assert again["skipped"] and again["run_id"] == first["run_id"]
    old["config"]["model"]["num_hiddens"] += 1
    path.write_text(json.dumps(old))
    with pytest.raises(ConfigError, match="is of a different config"):
        run(tiny_cfg("train.num_epochs=1"), tmp_path)
