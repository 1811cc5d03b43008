"""Issue 26's faults 1, 2, 5, 11 and 12 (docs/faq.md, "Faults"): a store entry that is not
what was filed, a store that cannot be written, a result.json that is not an object or not
JSON, and values no run records in the report. Each is retrained, refused or left out, and
said so; none crashes a run or a sweep."""
import copy
import json
import logging
import math
import os
import re
import subprocess

import pandas as pd
import pytest

from runner.errors import ConfigError
from runner.report import write_report
from runner.result import RESULT_FILE
from runner.run import run, store
from runner.run.identity import Identity
from tests.report_results import make_result, write_runs
from tests.test_sweep import sweep_cli

# one epoch of a third of the tiny corpus: a dozen steps a run
TINIER = ("train.num_epochs=1", "data.max_tokens=1000", "data.val_tokens=200")


def filed(store_dir, result) -> str:
    """The store file of `result`'s run."""
    key = Identity.of_result(result).store_key(result["environment"])
    return store.entry(store_dir, key)


def as_filed(result: dict) -> dict:
    return {**result, store.CHECKSUM: store.checksum(result)}


def test_store_entries_not_as_filed_are_retrained_and_replaced(tiny_cfg, tmp_path, caplog):
    """Fault 1: an edited metric was copied with exit 0; a 32-unit result swapped in went into
    a 16-unit folder, which was then refused on every re-run. Each in turn: the run trains
    (the same numbers), warns naming the entry, and files a trusted one over it."""
    s = f"store={tmp_path / 'store'}"
    first = run(tiny_cfg(s, *TINIER), tmp_path / "first")
    path = filed(tmp_path / "store", first)
    assert json.loads(path.read_text()) == as_filed(first)
    wider = copy.deepcopy(first)  # another config's result, as filed under its own key
    wider["config"]["model"]["num_hiddens"] = 32
    tampered = {"edited": {**as_filed(first), "metrics": {**first["metrics"],
                                                           "train_perplexity": 1.2345}},
                "swapped": as_filed(wider)}
    trained = first
    for name, entry in tampered.items():
        path.write_text(json.dumps(entry))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="runner.run.store"):
            again = run(tiny_cfg(s, *TINIER), tmp_path / name)
        assert [r.getMessage() for r in caplog.records if str(path) in r.getMessage()], \
            f"{name}: no warning names the entry"
        assert "reused" not in again and again["run_id"] != trained["run_id"], name
        assert again["config"]["model"]["num_hiddens"] == 16
        assert again["metrics"]["train_perplexity"] == first["metrics"]["train_perplexity"]
        assert json.loads(path.read_text()) == as_filed(again)  # replaced
        trained = again
    copied = run(tiny_cfg(s, *TINIER), tmp_path / "copied")
    assert copied["reused"] is True and copied["run_id"] == trained["run_id"]
    assert json.loads((tmp_path / "copied" / RESULT_FILE).read_text()) == {
        **trained, "reused_from": str(path)}  # no checksum in the copy
    # the folder trained in is this run's: the same command skips it, never refuses it
    assert run(tiny_cfg(s, *TINIER), tmp_path / "swapped")["skipped"] is True


@pytest.mark.parametrize("text, why", [
    ("older", "has no checksum"), ("[1]", "is unreadable (it holds a JSON list ([1])"),
    ('"completed"', "is unreadable (it holds a JSON str"),
    ("unfinished", "is no finished result (status 'failed')"),
])
def test_an_entry_from_before_checksums_or_not_a_result_is_not_copied(tmp_path, caplog, text,
                                                                       why):
    result = make_result()
    key = Identity.of_result(result).store_key({**result["environment"], "git_commit": "c"})
    result["environment"]["git_commit"] = "c"  # a code version: stored at all
    path = store.entry(tmp_path, key)
    path.parent.mkdir()
    unfinished = as_filed({**result, "status": "failed"})
    path.write_text({"older": json.dumps(result), "unfinished": json.dumps(unfinished)}
                    .get(text, text))
    with caplog.at_level(logging.WARNING, logger="runner.run.store"):
        assert store.lookup(tmp_path, key) is None
    [said] = [r.getMessage() for r in caplog.records]
    assert said.startswith(f"store: {path} {why}")
    assert said.endswith("not reused; the run trains and replaces it")
    store.put(tmp_path, key, result)  # what the run does once it has trained
    assert store.lookup(tmp_path, key) == result


@pytest.fixture
def read_only(tmp_path):
    """A folder no one can write: a read-only tmpfs for root (whom permissions do not stop),
    else a folder without write permission; skipped where root cannot mount one."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("where", ["read-only", "file/store", "/proc/nostore"])
def test_a_store_that_cannot_be_written_is_refused_before_any_work(tiny_cfg, tmp_path, where,
                                                                   request):
    """Fault 2: the run trained, wrote `completed`, then failed with a traceback, exit 1."""
    if where == "read-only":
        request.getfixturevalue("read_only")
    (tmp_path / "file").write_text("a file, where the store's parent folder would be")
    folder = where if where.startswith("/") else tmp_path / where
    with pytest.raises(ConfigError, match=rf"store={re.escape(str(folder))} cannot be writ"):
        run(tiny_cfg(f"store={folder}"), tmp_path / "run")
    assert list((tmp_path / "run").iterdir()) == []  # nothing trained, nothing written


def test_a_store_write_that_fails_after_training_is_a_warning(tiny_cfg, tmp_path, caplog,
                                                              monkeypatch):
    """The store checked, then full (or taken away) when the run files its result: the run's
    own result stands, completed, and the store warns."""
    def full(path, obj):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "write_json_atomic", full)
    with caplog.at_level(logging.WARNING, logger="runner.run.store"):
        result = run(tiny_cfg(f"store={tmp_path / 'store'}", *TINIER),
                     tmp_path / "run")
    assert result["status"] == "completed"
    assert json.loads((tmp_path / "run" / RESULT_FILE).read_text())["run_id"] == \
        result["run_id"]
    assert any("could not file" in r.getMessage() and "No space left" in r.getMessage()
               for r in caplog.records)


@pytest.mark.slow  # the CLI in a subprocess
def test_a_sweep_with_a_store_that_cannot_be_written_stops_before_any_work(corpus_dir,
                                                                          tmp_path):
    (tmp_path / "file").write_text("")
    proc = sweep_cli(corpus_dir, tmp_path / "sweep", f"store={tmp_path / 'file' / 'store'}",
                     "model.num_hiddens=8,16")
    assert proc.returncode == 2, proc.stderr
    assert f"store={tmp_path / 'file' / 'store'} cannot be written" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "sweep" / "manifest.json").exists()


@pytest.mark.parametrize("text", ['"completed"', "42", "[1]", "{half a file"])
def test_a_result_json_not_an_object_is_retrained_with_a_warning(tiny_cfg, tmp_path, caplog,
                                                                  text):
    """Faults 5 and 11: valid JSON that is no object crashed the run with a traceback naming no
    file; a corrupt result was retrained without a word."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / RESULT_FILE).write_text(text)
    with caplog.at_level(logging.WARNING, logger="runner.run.resume"):
        result = run(tiny_cfg(*TINIER), tmp_path / "run")
    assert result["status"] == "completed" and "skipped" not in result
    assert json.loads((tmp_path / "run" / RESULT_FILE).read_text())["run_id"] == \
        result["run_id"]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and str(tmp_path / "run" / RESULT_FILE) in said[0]
    assert "unreadable" in said[0] and "trains again" in said[0]


@pytest.mark.slow  # two sweeps through the CLI
def test_a_sweep_with_a_result_json_not_an_object_retrains_that_run(corpus_dir, tmp_path):
    """Fault 5: one such file crashed the whole sweep (its manifest is read first)."""
    out = tmp_path / "sweep"
    first = sweep_cli(corpus_dir, out, "model.num_hiddens=8")
    assert first.returncode == 0, first.stderr
    [bad] = out.glob(f"*/{RESULT_FILE}")
    bad.write_text("[1]")
    again = sweep_cli(corpus_dir, out, "model.num_hiddens=8")
    assert again.returncode == 0, again.stderr
    assert "1 runs: 1 completed, 0 failed, 0 diverged, 0 skipped" in again.stdout
    assert f"{bad} is unreadable" in again.stdout + again.stderr
    assert json.loads(bad.read_text())["status"] == "completed"


def test_the_report_leaves_odd_values_out_and_names_their_runs(tmp_path, caplog):
    """Fault 12: a NaN training perplexity made n=6 with a mean over 5, silently; 1e308 was
    printed as a 300-digit number ± inf."""
    runs = [make_result(ppl=p, seed=s) for s, p in enumerate([2.0, 4.0, 6.0, 99.0, 98.0])]
    write_runs(tmp_path, runs)
    for i, odd in ((3, "NaN"), (4, "1e308")):  # as a file edited, or from another tool, holds
        path = tmp_path / "multirun" / str(i) / RESULT_FILE
        was = f'"train_perplexity": {runs[i]["metrics"]["train_perplexity"]}'
        path.write_text(path.read_text().replace(was, f'"train_perplexity": {odd}', 1))
        assert odd in path.read_text()
    with caplog.at_level(logging.WARNING, logger="runner.report"):
        write_report(tmp_path)
    said = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(said) == 2
    assert "multirun/3/result.json" in said[0] and "train_perplexity nan" in said[0]
    assert "multirun/4/result.json" in said[1] and "train_perplexity 1e+308" in said[1]
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary.loc[0, "n"] == 5
    assert summary.loc[0, "train_perplexity_mean"] == 4.0  # 2, 4 and 6 only
    assert math.isclose(summary.loc[0, "train_perplexity_std"], 2.0)
    assert summary.loc[0, "val_perplexity_mean"] == 6.0  # their other values still count
    page = (tmp_path / "report.md").read_text()
    assert "2 run(s) hold values no run records" in page
    assert "multirun/3 (train_perplexity nan)" in page
    assert "multirun/4 (train_perplexity 1e+308)" in page
    assert "| 4.00 ± 4.97 |" in (tmp_path / "summary.md").read_text()  # t(0.975, 2) * 2 / √3
    assert pd.read_csv(tmp_path / "runs.csv")["train_perplexity"].isna().sum() == 2
