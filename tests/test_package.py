"""The runner as a package: the `runner` command's tab completion, a built wheel that carries
its configs and runs from any folder, and the Python API (runner.api)."""
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.bash_completion import BashCompletion
from hydra._internal.utils import create_config_search_path

from runner.api import load_results, run
from runner.config_dir import CONF_DIR
from runner.errors import ConfigError
from tests.helpers import tiny_overrides, write_corpus
from tests.test_bad_input import UNKNOWN_KEY_CASES, the_line

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # .venv/bin: `make install` puts the `runner` command here


# Tab completion, as Hydra's own tests/test_completion.py query it: the completion plugin
# over a config loader searching the runner's config folder.
@pytest.mark.parametrize(("line", "expected"), [
    ("mod", {"model", "model."}),  # the group, then its keys
    ("model=", {"model=gru", "model=lstm", "model=rnn", "model=transformer"}),
    ("model.num_", {"model.num_hiddens=", "model.num_layers="}),
    ("model=gru model.num_", {"model.num_hiddens=", "model.num_layers="}),
    ("sweep=num_", {"sweep=num_hiddens", "sweep=num_layers", "sweep=num_steps"}),
    ("train.num", {"train.num_epochs="}),
])
def test_completion_offers_group_choices_and_keys(line, expected):
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONF_DIR)))
    offered = set(BashCompletion(loader)._query(config_name="config", line=line))
    assert expected <= offered, sorted(offered)


@pytest.mark.slow  # the command in a subprocess
def test_the_runner_command_answers_bash_completion(tmp_path):
    env = {**os.environ, "COMP_LINE": "runner model="}
    out = subprocess.run([BIN / "runner", "-sc", "query=bash"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert {"model=gru", "model=lstm", "model=rnn"} <= set(out.stdout.split())
    script = subprocess.run([BIN / "runner", "-sc", "install=bash"], capture_output=True,
                            text=True, timeout=120).stdout
    assert script.rstrip().endswith("-F hydra_bash_completion runner")


# The wheel: built from a copy of the checkout's files (a build in place leaves build/ there,
# whose stale files a later wheel would ship), installed with no index into a fresh venv
# that borrows this venv's dependencies through a .pth file, and run from another folder.
def build_wheel(tmp_path: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    src = tmp_path / "src"
    for name in filter(None, files):
        if (ROOT / name).is_file():  # a file deleted but not yet committed is listed too
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes((ROOT / name).read_bytes())
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
                    "--no-build-isolation", "-w", tmp_path / "dist", src], check=True,
                   capture_output=True, timeout=300)
    return next((tmp_path / "dist").glob("runner-*.whl"))


def install(wheel: Path, venv: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # this venv's packages, after the new venv's own: torch, hydra, ... but not the checkout
    # (a plain path line: the editable install's own .pth file there is not run)
    ours = dict.fromkeys(sysconfig.get_path(k) for k in ("purelib", "platlib"))
    Path(site, "runner_test_deps.pth").write_text("\n".join(ours) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-index",
                    "--no-deps", wheel], check=True, capture_output=True, timeout=300)


@pytest.mark.slow  # builds and installs a wheel, then trains one epoch: ~25 s on 2 cores
def test_the_wheel_ships_its_configs_and_runs_from_any_folder(tmp_path):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    conf = {f"runner/conf/{p.relative_to(ROOT / 'conf').as_posix()}"
            for p in (ROOT / "conf").rglob("*.yaml")}
    assert conf - names == set(), "conf/ files missing from the wheel"
    assert {"runner/result.schema.json", "runner/report/seed_study.csv",
            "runner/report/companion_note.csv", "hydra_plugins/runner_sweeper/runner_sweeper.py",
            "models/cells.py", "data/corpus.py", "runner/api.py"} <= names
    assert "hydra_plugins/__init__.py" not in names  # a namespace package, shared with Hydra's
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "runner = runner.__main__:cli" in zipfile.ZipFile(wheel).read(entry_points).decode()

    venv, work = tmp_path / "venv", tmp_path / "elsewhere"
    install(wheel, venv)
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([venv / "bin" / "python", "-c", "import runner.config_dir as c; "
                            "print(c.CONF_DIR)"], cwd=work, env=env, capture_output=True,
                           text=True, check=True).stdout.strip()
    # the wheel's configs, not the checkout's
    assert Path(where).is_relative_to(venv.resolve()), where
    job = subprocess.run([venv / "bin" / "runner", "--cfg", "job", "model=gru"], cwd=work,
                         env=env, capture_output=True, text=True, timeout=120)
    assert job.returncode == 0, job.stderr
    assert "num_hiddens: 512" in job.stdout and "cell: gru" in job.stdout
    write_corpus(work / "tiny.txt")
    one = subprocess.run([venv / "bin" / "runner", *tiny_overrides(work), "train.num_epochs=1",
                          "hydra.run.dir=out"], cwd=work, env=env, capture_output=True,
                         text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    result = json.loads((work / "out" / "result.json").read_text())
    assert result["status"] == "completed" and result["metrics"]["epochs_done"] == 1
    # an installed wheel has no commit: not the one of whatever repository holds the venv
    assert result["environment"]["git_commit"] is None


# The Python API
@pytest.mark.slow  # one epoch
def test_api_runs_one_config_and_loads_its_result(tmp_path):
    write_corpus(tmp_path / "tiny.txt")
    result = run([*tiny_overrides(tmp_path), "train.num_epochs=1", "model=gru"],
                 out_dir=tmp_path / "runs" / "one")
    assert result["status"] == "completed"
    on_disk = json.loads((tmp_path / "runs" / "one" / "result.json").read_text())
    assert on_disk["run_id"] == result["run_id"]
    assert on_disk["metrics"]["val_perplexity"] == result["metrics"]["val_perplexity"]

    df = load_results(tmp_path / "runs")
    assert len(df) == 1
    row = df.iloc[0]
    assert (row["model.cell"], row["status"], row["path"]) == ("gru", "completed", "one")
    knobs = {k: row[k] for k in ("num_hiddens", "num_layers", "num_steps", "batch_size", "lr",
                                 "num_epochs")}
    assert knobs == {"num_hiddens": 16, "num_layers": 1, "num_steps": 10, "batch_size": 8,
                     "lr": 1.0, "num_epochs": 1}
    assert row["val_perplexity"] == result["metrics"]["val_perplexity"]


@pytest.mark.slow  # a second one-epoch run
def test_api_default_folder_is_the_commands(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_corpus(tmp_path / "tiny.txt")
    result = run([*tiny_overrides(tmp_path), "train.num_epochs=1"])
    (folder,) = (tmp_path / "results" / "runs").iterdir()
    assert folder.name.endswith("_rnn")
    assert json.loads((folder / "result.json").read_text())["run_id"] == result["run_id"]


@pytest.mark.parametrize(("overrides", "says"), [
    (["model.num_hidden=16"], ["model.num_hidden=16 is not allowed", "model.num_hiddens=16"]),
    (["model=nosuch"], ["model=nosuch is not allowed", "gru"]),
    (["+model.foo=1"], ["model.foo=1 is not a key of model=rnn"]),
    (["train.num_epochs=0"], ["train.num_epochs=0 is not allowed", "integer >= 1"]),
    (["sweep=num_hiddens"], ["is a sweep", "runner -m sweep=num_hiddens"]),
    (["hydra.run.dir=x"], ["'hydra.run.dir=x' is not allowed", "out_dir="]),
    ("model=gru", ["must be a list", "run(['model=gru'])"]),
])
def test_api_refuses_bad_input_naming_it(overrides, says, tmp_path):
    with pytest.raises(ConfigError) as e:
        run(overrides, out_dir=tmp_path / "never")
    assert all(s in str(e.value) for s in says), str(e.value)
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("overrides, line", UNKNOWN_KEY_CASES.items(), ids=list(UNKNOWN_KEY_CASES))
def test_api_refuses_a_key_nobody_takes_as_the_command_does(overrides, line, tmp_path):
    # `+key=value` checked against the keys of the config files: the command's primary config
    with pytest.raises(ConfigError) as e:
        run(overrides.split(), out_dir=tmp_path / "never")
    assert the_line(str(e.value)).startswith(line), str(e.value)


def test_api_config_dir_adds_configs_of_ones_own(tmp_path):
    mine = tmp_path / "mine" / "model"
    mine.mkdir(parents=True)
    # an invalid width: refused by validation, so the file was found without training
    (mine / "wide_gru.yaml").write_text("defaults:\n  - gru\n  - _self_\nnum_hiddens: 0\n")
    with pytest.raises(ConfigError, match="model=wide_gru is not allowed"):
        run(["model=wide_gru"], out_dir=tmp_path / "never")
    with pytest.raises(ConfigError, match="model.num_hiddens=0 is not allowed"):
        run(["model=wide_gru"], out_dir=tmp_path / "never", config_dir=tmp_path / "mine")
    with pytest.raises(ConfigError, match="config_dir='nowhere' is not allowed"):
        run(["model=gru"], config_dir="nowhere")
