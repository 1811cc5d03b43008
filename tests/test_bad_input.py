"""Bad input, as a new user types it: one message naming the key, the value, what is allowed
and a fix; exit code 2; refused before any training; and nothing already on disk changed."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus

from data import DataError
from runner.__main__ import bad_input
from runner.errors import ConfigError
from runner.result import RESULT_FILE
from runner.run.execute import run
from runner.run.output import check_output_folder
from runner.run.validate import validate
from runner.sweep.job import progress
from runner.sweep.sweeper import MANIFEST, PROGRESS, Sweep, size_launcher, with_seed_axis
from tests.helpers import cli_here, compose_config, tiny_overrides

ROOT = Path(__file__).resolve().parent.parent
BINARY = b"The Time Traveller\n\xff\xfe\x00 not text"  # first bad byte at offset 19


def the_line(message: str) -> str:
    """The message's one problem line: validation's `invalid config:` header and one line,
    or a single line."""
    lines = message.rstrip("\n").split("\n")
    if lines[0] in ("invalid config:", "error: invalid config:"):
        assert len(lines) == 2 and lines[1].startswith("  "), message
        return lines[1].strip()
    assert len(lines) == 1, message
    return lines[0].removeprefix("error: ")


def refused(*overrides: str) -> str:
    with pytest.raises(ConfigError) as info:
        validate(compose_config(*overrides))
    return the_line(str(info.value))


# ---------------------------------------------------------------- 1. init options
# the scheme's option as set, and the start of the line validation gives for it
INIT_CASES = {
    "init=normal init.std=-1":
        "init.std=-1 is not allowed: it must be a number > 0 (e.g. init.std=0.01)",
    "init=normal init.std=abc": "init.std='abc' is not allowed: it must be a number > 0",
    "init=uniform init.a=-1":
        "init.a=-1 is not allowed: it must be a number > 0 (U(-a, a)) (e.g. init.a=0.1)",
    "init=uniform +init.b=-1":
        "init.b=-1 is not allowed: it must be a number above init.a=0.1, U(a, b) (e.g. "
        "init.b=0.3)",
    "init=xavier_normal init.gain=-2": "init.gain=-2 is not allowed: it must be a number > 0",
    "init=kaiming_uniform +init.a=abc": "init.a='abc' is not allowed: it must be a number",
    "init=kaiming_normal init.mode=bogus":
        "init.mode='bogus' is not allowed: it must be fan_in or fan_out (e.g. init.mode=fan_in)",
    "init=kaiming_uniform init.nonlinearity=gelu":
        "init.nonlinearity='gelu' is not allowed: it must be one of linear, conv1d,",
    "init=normal +init.gain=2": "init.gain=2 is not allowed: init.scheme=normal takes mean, "
                                "std (e.g. ~init.gain, or init=xavier_uniform",
    "+init.std=0.1": "init.std=0.1 is not allowed: init.scheme=default takes no options (e.g. "
                     "~init.std, or init=normal",
}


@pytest.mark.parametrize("overrides, line", INIT_CASES.items(), ids=list(INIT_CASES))
def test_init_options_are_refused_before_work(overrides, line):
    assert refused(*overrides.split()).startswith(line)


@pytest.mark.parametrize("overrides", [
    ["init=normal", "init.std=0.02", "init.mean=0.1"],
    ["init=uniform", "init.a=-0.2", "+init.b=0.1"],
    ["init=kaiming_normal", "+init.a=0.1"], ["init=orthogonal", "init.gain=2"],
    *([f"init={p.stem}"] for p in sorted((ROOT / "conf" / "init").glob("*.yaml"))),
])
def test_good_init_options_pass(overrides):
    validate(compose_config(*overrides))


# ---------------------------------------------------------------- 2. optimizer arguments
@pytest.mark.parametrize("overrides, line", [
    (["+optim.weight_decay=-1"], "optim.weight_decay=-1 is not allowed: it must be a number >= 0 "
                                 "(torch.optim.SGD: Invalid weight_decay value: -1) "
                                 "(e.g. optim.weight_decay=0)"),
    (["+optim.momentum=abc"], "optim.momentum='abc' is not allowed: it must be a number >= 0 "
                              "(torch.optim.SGD: "),
    (["+optim.nesterov=true"], "optim.nesterov=True is not allowed: it must be false unless "
                               "optim.momentum > 0 and optim.dampening=0"),
    (["optim=adam", "+optim.betas=[2,0.9]"],
     "optim.betas=[2, 0.9] is not allowed: it must be two numbers in [0, 1) (torch.optim.Adam: "
     "Invalid beta parameter at index 0: 2) (e.g. optim.betas=[0.9,0.999])"),
    (["+optim.foo=1"], "optim.foo=1 is not allowed: torch.optim.SGD takes no option foo; it takes "
                       "lr, momentum"),
    (["+optim.momentun=0.9"], "optim.momentun=0.9 is not allowed: torch.optim.SGD takes no "
                              "option momentun; it takes lr, momentum"),  # ...; did you mean
    (["optim._target_=torch.optim.Nope"], "optim._target_='torch.optim.Nope' is not allowed: it "
                                          "must be an optimizer class"),
])
def test_optimizer_arguments_are_checked_by_building_it(overrides, line):
    found = refused(*overrides)
    assert found.startswith(line)
    assert "(e.g. " in found


def test_an_optimizer_option_typo_is_given_the_nearest_option():
    assert refused("+optim.momentun=0.9").endswith(
        "; did you mean optim.momentum? (e.g. optim.momentum=0.9)")


def test_a_bad_lr_is_named_once():
    with pytest.raises(ConfigError) as info:
        validate(compose_config("optim.lr=-1", "+optim.weight_decay=-1"))
    lines = str(info.value).split("\n  ")[1:]
    assert [line.split(" ")[0] for line in lines] == ["optim.lr=-1", "optim.weight_decay=-1"]


@pytest.mark.parametrize("overrides", [
    ["+optim.momentum=0.9", "+optim.nesterov=true", "+optim.weight_decay=0.0001"],
    ["optim=adam", "+optim.betas=[0.8,0.99]", "+optim.amsgrad=true"],
])
def test_good_optimizer_arguments_pass(overrides):
    validate(compose_config(*overrides))


# ---------------------------------------------------------------- 2b. keys nobody takes
# The model's known keys are its constructors' arguments; every other section's, the keys of
# the config composed without `+` overrides (the primary config), which validation is given.
UNKNOWN_KEY_CASES = {
    "+model.num_hidden=64": "model.num_hidden=64 is not a key of model=rnn: did you mean "
                            "model.num_hiddens? (the keys: cell, _target_, impl, num_hiddens, ",
    "model=gru +model.foo=1": "model.foo=1 is not a key of model=gru, which takes cell, ",
    "data=tatoeba +model.attentoin=true": "model.attentoin=True is not a key of model=rnn: did "
                                          "you mean model.attention?",
    "model=transformer +model.num_head=2": "model.num_head=2 is not a key of model=transformer:"
                                           " did you mean model.num_heads?",
    "+train.num_epoch=3": "train.num_epoch=3 is not a key of train: did you mean "
                          "train.num_epochs? (the keys: num_epochs, ",
    "+data.foo=1": "data.foo=1 is not a key of data, which takes task, ",
    "+sample.prefx=a": "sample.prefx='a' is not a key of sample: did you mean sample.prefix?",
    "+sead=1": "sead=1 is not a key of the config: did you mean seed?",
}


@pytest.mark.parametrize("overrides, line", UNKNOWN_KEY_CASES.items(), ids=list(UNKNOWN_KEY_CASES))
def test_a_key_nobody_takes_is_refused_with_the_nearest_key(overrides, line):
    overrides = overrides.split()
    primary = compose_config(*[o for o in overrides if not o.startswith("+")])
    with pytest.raises(ConfigError) as info:
        validate(compose_config(*overrides), primary)
    found = the_line(str(info.value))
    assert found.startswith(line), found
    assert "(e.g. " in found


def test_keys_the_consumer_takes_pass():
    # optim's extra keys are the optimizer's arguments, +init.a the scheme's
    for overrides in (["optim=adam", "+optim.betas=[0.9,0.99]", "+optim.fused=true"],
                      ["init=kaiming_normal", "+init.a=0.1"]):
        validate(compose_config(*overrides), compose_config(*overrides[:1]))


# ---------------------------------------------------------------- 3. a corpus that is no text
def test_a_binary_language_model_corpus_is_a_data_error(tiny_cfg, corpus_dir, tmp_path):
    (corpus_dir / "tiny.txt").write_bytes(BINARY)
    with pytest.raises(DataError) as info:
        run(tiny_cfg(), tmp_path / "run")
    line = the_line(str(info.value))
    assert f"{corpus_dir / 'tiny.txt'} is not UTF-8 text (byte 19 is 0xff)" in line
    assert "data.root" in line and "RUNNER_DATA_DIR" in line and "data.sha1" in line
    assert not (tmp_path / "run" / RESULT_FILE).exists()
    assert not (tmp_path / "run" / ".hydra").exists()


def test_a_binary_translation_corpus_is_a_data_error(tmp_path):
    (tmp_path / "fra.txt").write_bytes(BINARY)
    cfg = compose_config("data=tatoeba", f"data.root={tmp_path}", "data.file=fra.txt",
                         "data.download=false", "device=cpu")
    with pytest.raises(DataError, match=r"fra.txt is not UTF-8 text \(byte 19 is 0xff\)"):
        run(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / RESULT_FILE).exists()


# ---------------------------------------------------------------- 4-5. the sweeper's settings
@pytest.mark.parametrize("repeats", [0, -1, "abc"])
def test_repeats_below_one_plans_nothing_and_is_refused(repeats):
    parser = OverridesParser.create()
    with pytest.raises(ConfigError) as info:
        with_seed_axis(parser.parse_overrides(["model.num_hiddens=8,16"]), 0, repeats, parser)
    assert the_line(str(info.value)) == (f"repeats={repeats!r} is not allowed: it must be an "
                                         f"integer >= 1 (a sweep's seeds per point) "
                                         f"(e.g. repeats=1)")
    assert refused(f"repeats={repeats}").startswith(f"repeats={repeats!r} is not allowed")


def test_jobs_per_device_below_one_is_refused_before_the_launcher_is_built():
    config = compose_config("launcher=parallel", "launcher.jobs_per_device=0", hydra_node=True)
    with pytest.raises(ConfigError) as info:
        size_launcher(config)
    assert the_line(str(info.value)) == (
        "launcher.jobs_per_device=0 is not allowed: it must be an integer >= 1 (jobs sharing "
        "one device) (e.g. launcher.jobs_per_device=1)")


def test_max_batch_size_below_one_is_refused_before_anything_is_planned(tmp_path):
    config = compose_config("hydra.sweeper.max_batch_size=0", f"hydra.sweep.dir={tmp_path}/s",
                            hydra_node=True)
    with pytest.raises(ConfigError) as info:
        Sweep(config, [], OverridesParser.create())
    assert the_line(str(info.value)) == (
        "hydra.sweeper.max_batch_size=0 is not allowed: it must be null (every job launched at "
        "once) or an integer >= 1 (jobs launched together) (e.g. hydra.sweeper.max_batch_size=4)")
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------- 6. Hydra's own errors
@pytest.mark.parametrize("override, line", [
    ("model=nosuch", "model=nosuch is not allowed: it must be one of gru, gru_fused, "),
    ("init=nosuch", "init=nosuch is not allowed: it must be one of default, kaiming_normal, "),
    ("sweep=nosuch", "sweep=nosuch is not allowed: it must be one of batch_size, "),
    ("launcher=nosuch", "launcher=nosuch is not allowed: it must be one of parallel, serial, "),
    ("model.num_hidden=16", "model.num_hidden=16 is not allowed: model has no key num_hidden; "
                            "it must be one of cell, num_hiddens, "),
    ("modle.num_hiddens=16", "modle.num_hiddens=16 is not allowed: the config has no key modle"),
    ("model.num_hiddens=[", "invalid config: cannot parse the override 'model.num_hiddens=['"),
])
def test_hydras_errors_become_one_line(override, line):
    with pytest.raises(Exception) as info:
        compose_config(override)
    message = bad_input(info.value, [override])
    assert message is not None and the_line(message).startswith(line)
    if "(e.g." in line or "not allowed" in line:
        assert "(e.g. " in message


def test_a_typo_key_is_given_the_nearest_one():
    with pytest.raises(Exception) as info:
        compose_config("model.num_hidden=16")
    assert "(e.g. model.num_hiddens=16, or +model.num_hidden=16 to add a key)" in \
        bad_input(info.value, ["-m", "model.num_hidden=16", "quiet=true"])


def test_an_error_that_is_no_bad_input_is_not_called_one():
    assert bad_input(RuntimeError("a bug")) is None
    assert bad_input(OSError(2, "No such file or directory", "/x")) is None  # not Hydra's mkdir


# ---------------------------------------------------------------- 7. the output folder
def test_an_output_folder_that_cannot_be_used_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=f"the output folder {tmp_path / 'file' / 'run'} "
                                          f"cannot be used: Not a directory; choose another "
                                          f"folder \\(e.g. hydra.run.dir="):
        check_output_folder(tmp_path / "file" / "run")
    (tmp_path / "a" / RESULT_FILE).mkdir(parents=True)
    with pytest.raises(ConfigError, match=f"{tmp_path / 'a' / RESULT_FILE} is a folder, where "
                                          f"the run writes its result.json file; move it away"):
        check_output_folder(tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / ".hydra").write_text("x")
    with pytest.raises(ConfigError, match="is a file, where the run writes its .hydra folder"):
        check_output_folder(tmp_path / "b")
    check_output_folder(tmp_path / "c" / "d")  # made
    assert [p.name for p in (tmp_path / "c" / "d").iterdir()] == []  # the probe is gone


def test_a_result_json_folder_is_refused_before_training(tiny_cfg, tmp_path):
    (tmp_path / "run" / RESULT_FILE).mkdir(parents=True)
    with pytest.raises(ConfigError, match="is a folder, where the run writes its result.json"):
        run(tiny_cfg(), tmp_path / "run")
    assert [p.name for p in (tmp_path / "run").iterdir()] == [RESULT_FILE]


# ---------------------------------------------------------------- 8. the run's snapshot
def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_the_snapshot_is_written_by_the_run_and_kept_by_a_refused_one(tiny_cfg, tmp_path):
    out = tmp_path / "run"
    run(tiny_cfg("train.num_epochs=1"), out)
    assert "num_epochs: 1" in (out / ".hydra" / "config.yaml").read_text()
    assert not (out / ".hydra" / "overrides.yaml").exists()  # outside Hydra: none
    before = files_of(out)
    with pytest.raises(ConfigError, match="holds a finished result"):
        run(tiny_cfg("train.num_epochs=1", "model.num_hiddens=8"), out)
    assert files_of(out) == before
    assert run(tiny_cfg("train.num_epochs=1"), out)["skipped"]
    assert files_of(out) == before  # a kept result keeps its snapshot too


# ---------------------------------------------------------------- 9. the manifest on resume
def test_the_manifest_keeps_a_skipped_runs_own_status(tmp_path, capsys):
    statuses = {"a": "completed", "b": "diverged", "c": None}
    for name, status in statuses.items():
        (tmp_path / name).mkdir()
        if status:
            (tmp_path / name / RESULT_FILE).write_text(json.dumps({"status": status}))
    sweep = Sweep.__new__(Sweep)
    sweep.dir, sweep.name, sweep.started = tmp_path, tmp_path.name, 0.0
    sweep.runs = [{"dir": name, "overrides": [], "status": status or "pending"}
                  for name, status in statuses.items()]
    (tmp_path / PROGRESS).write_text("a skipped\nb skipped\nc completed\n")
    done = SimpleNamespace(status=JobStatus.COMPLETED)
    sweep.finish([SimpleNamespace(**vars(done), return_value=r)
                  for r in ("skipped", "skipped", "completed")])
    runs = json.loads((tmp_path / MANIFEST).read_text())["runs"]
    assert [(r["status"], r.get("skipped")) for r in runs] == [
        ("completed", True), ("diverged", True), ("completed", None)]
    assert "3 runs: 1 completed, 0 failed, 0 diverged, 2 skipped" in capsys.readouterr().out
    assert progress(tmp_path).startswith(f"[sweep {tmp_path.name}] 3/3 done, 0 failed")


# ---------------------------------------------------------------- the command line
def cli(*args, corpus_dir: Path):  # refused before work: in this process (tests/helpers.py)
    return cli_here(*args, env={"RUNNER_DATA_DIR": str(corpus_dir)})


# (command-line arguments after the tiny corpus's, what the one line says); {out} is the run
# (or sweep) folder, {corpus} the corpus folder
CLI_CASES = {
    # (init and optimizer options reach the CLI as any validation line does: test_errors.py)
    "binary corpus": (["data.file=binary.txt"], "{corpus}/binary.txt is not UTF-8 text (byte 19 "
                                                "is 0xff): it is not the corpus. Point data.root"),
    "repeats": (["-m", "repeats=0"], "repeats=0 is not allowed: it must be an integer >= 1"),
    "jobs per device": (["-m", "launcher=parallel", "launcher.jobs_per_device=0"],
                        "launcher.jobs_per_device=0 is not allowed: it must be an integer >= 1"),
    "max batch size": (["-m", "hydra.sweeper.max_batch_size=0"],
                       "hydra.sweeper.max_batch_size=0 is not allowed: it must be null (every "
                       "job launched at once) or an integer >= 1"),
    "no such model": (["model=nosuch"], "model=nosuch is not allowed: it must be one of gru, "),
    "typo key": (["model.num_hidden=16"], "model.num_hidden=16 is not allowed: model has no key "
                                          "num_hidden"),
    "bad sweep point": (["-m", "model.num_hiddens=0,8"], "model.num_hiddens=0 is not allowed: "
                        "it must be an integer >= 1 (e.g. model.num_hiddens=256) (1 of the "
                        "sweep's 2 jobs)"),
    "unknown key in a sweep": (["-m", "+model.num_hidden=8"], "model.num_hidden=8 is not a "
                               "key of model=rnn: did you mean model.num_hiddens?"),
    "unknown model key": (["+model.num_hidden=16"], "model.num_hidden=16 is not a key of "
                                                    "model=rnn: did you mean model.num_hiddens?"),
    "unknown train key": (["+train.foo=1"], "train.foo=1 is not a key of train, which takes "),
    "unknown data key": (["+data.foo=1"], "data.foo=1 is not a key of data, which takes "),
    "folder in /proc": (["hydra.run.dir=/proc/x"], "the output folder /proc/x cannot be used: "
                                                   "No such file or directory; choose another"),
    "result.json a folder": ([], "the output folder {out} cannot be used: {out}/result.json is a "
                                 "folder"),
    "another config's result": (["model.num_hiddens=8"], "{out}/result.json holds a finished "
                                                         "result"),
    # issue 26's fault run (tests/test_fault_bounds.py): stray results, launcher settings,
    # a point listed twice, a value past its bound
    "run in a sweep folder": ([], "hydra.run.dir={out} is not allowed: it is inside the sweep "
                                  "folder {out} (it holds manifest.json)"),
    "sweep in a run folder": (["-m"], "hydra.sweep.dir={out} is not allowed: it is inside the "
                                      "run folder {out} (it holds result.json)"),
    "point twice": (["-m", "seed=0,0"], "seed=0,0 is not allowed: it lists seed=0 2 times"),
    "slurm memory": (["-m", "launcher=slurm", "launcher.mem_gb=-1"],
                     "launcher.mem_gb=-1 is not allowed: it must be an integer >= 1"),
}


@pytest.mark.parametrize("args, line", CLI_CASES.values(), ids=CLI_CASES)
def test_cli_bad_input_exits_2_with_one_line_and_touches_nothing(args, line, tiny_cfg,
                                                                 corpus_dir, tmp_path, request):
    out = tmp_path / "out"
    case = request.node.callspec.id
    (corpus_dir / "binary.txt").write_bytes(BINARY)
    if case == "result.json a folder":
        (out / RESULT_FILE).mkdir(parents=True)
    if case in ("run in a sweep folder", "sweep in a run folder"):
        out.mkdir()
        (out / ("manifest.json" if case.startswith("run") else RESULT_FILE)).write_text("{}")
    if case == "another config's result":  # a finished run, with Hydra's whole snapshot
        run(tiny_cfg("train.num_epochs=1"), out)
        for name in ("overrides.yaml", "hydra.yaml"):
            (out / ".hydra" / name).write_text(f"# the finished run's {name}\n")
        (out / "runner.log").write_text("the finished run's log\n")
    before = files_of(out) if out.exists() else None
    folder = "hydra.sweep.dir" if "-m" in args else "hydra.run.dir"
    proc = cli(*(["-m"] if "-m" in args else []), *tiny_overrides(corpus_dir),
               f"{folder}={out}", *[a for a in args if a != "-m"], corpus_dir=corpus_dir)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert the_line(proc.stderr).startswith(line.format(out=out, corpus=corpus_dir)), proc.stderr
    assert "(e.g. " in proc.stderr or "choose another" in proc.stderr or "Point data.root" in \
        proc.stderr or "overwrite=true" in proc.stderr  # the fix
    after = files_of(out) if out.exists() else {}
    assert {name: after.get(name) for name in before or {}} == (before or {})  # byte for byte
    new = {name: data for name, data in after.items() if name not in (before or {})}
    assert new in ({}, {"runner.log": b""})  # Hydra's log file, opened before the task starts
