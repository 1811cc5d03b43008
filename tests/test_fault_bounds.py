"""Issue 26's fault run, defects 6, 7, 8 and 10 (docs/faq.md): stray results in a sweep's
folder, launcher settings, values that pass their rule and then crash or hang, and the resume
hint after a signal. Each refusal is one line naming the key, before any work."""
import json
import shlex
import shutil
import subprocess

import pytest
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser

from runner.__main__ import resume_command
from runner.errors import ConfigError
from runner.report.runs import load_results
from runner.result import RESULT_FILE
from runner.run import bounds
from runner.run.output import check_not_nested
from runner.run.validate import validate
from runner.sweep.settings import check_launcher
from runner.sweep.sweeper import MANIFEST, Sweep, size_launcher, with_seed_axis
from runner.tasks.language_model import language_model
from tests.helpers import compose_config
from tests.report_results import make_result
from tests.test_bad_input import refused, the_line


# ---------------------------------------------------------------- 8. values past their bound
@pytest.mark.parametrize("override, line", [
    ("seed=18446744073709551616", "seed=18446744073709551616 is not allowed: it must be at most "
                                  "4,294,967,295 (2**32 - 1"),
    ("threads=1000000000000", "threads=1000000000000 is not allowed: it must be at most 1,024"),
    ("optim.lr=1e300", "optim.lr=1e+300 is not allowed: it must be at most 1e+38 (float32's "
                       "largest number is 3.4e38"),
    ("model.num_layers=1000000000000", "model.num_layers=1000000000000 is not allowed: it must "
                                       "be at most 1,024"),
    ("sample.num_preds=1000000000000", "sample.num_preds=1000000000000 is not allowed: it must "
                                       "be at most 100,000"),
    ("repeats=1000000000000", "repeats=1000000000000 is not allowed: it must be at most 1,000"),
    ("optim=adam +optim.betas=[0.9]", "optim.betas=[0.9] is not allowed: it must be two numbers "
                                      "in [0, 1) (torch.optim.Adam: list index out of range) "
                                      "(e.g. optim.betas=[0.9,0.999])"),
])
def test_a_value_past_its_bound_is_one_line_before_work(override, line):
    assert refused(*override.split()).startswith(line)


@pytest.mark.parametrize("override, key", [
    ("model.num_hiddens=1000000000000", "model.num_hiddens"),
    ("model.embed_size=1000000000000", "model.embed_size"),
    ("model=transformer model.num_hiddens=1000000000", "model.num_hiddens"),
    ("model.num_hiddens=512 data.batch_size=100000000", "data.batch_size"),
])
def test_a_network_too_large_for_memory_is_refused_with_the_estimate(override, key):
    line = refused(*override.split(), "device=cpu")
    assert line.startswith(f"{key}=") and " is too large: with " in line, line
    assert "training needs at least " in line and "this machine's RAM has " in line
    assert line.endswith(f"(e.g. {key}={bounds.SIZE_EXAMPLES[key]})")


def test_the_size_check_compares_the_estimate_with_the_device_memory(monkeypatch):
    cfg = compose_config("model.num_hiddens=1024", "data.batch_size=32", "data.num_steps=35",
                         "device=cpu")
    sizes = {key: cfg.model.get(key.split(".")[1]) if key.startswith("model.") else
             cfg.data[key.split(".")[1]] for key in bounds.SIZE_KEYS}
    needed = bounds.training_bytes(sizes, transformer=False)
    # 1 + 1024 + 1024 weights (embedding, input, output), twice, and 32 x 35 x 1024 states
    assert needed == 4 * (2 * (1 + 1024 + 1024) + 32 * 35 * 1024)
    monkeypatch.setattr(bounds, "device_memory", lambda device: (needed, "this machine's RAM"))
    validate(cfg)  # fits exactly
    monkeypatch.setattr(bounds, "device_memory", lambda device: (needed - 1, "this machine's RAM"))
    with pytest.raises(ConfigError, match="model.num_hiddens=1024 is too large: with model.nu"):
        validate(cfg)


@pytest.mark.parametrize("model, extra", [
    ("rnn", []), ("gru", ["model.embed_size=8", "model.num_layers=2", "model.bidirectional=true"]),
    ("lstm", ["model.embed_size=8", "model.num_layers=2"]), ("sru", ["model.num_layers=2"]),
    ("onlstm", []), ("gru_scratch", []), ("transformer", [])])
def test_the_parameter_estimate_is_a_lower_bound(model, extra):
    cfg = compose_config(f"model={model}", "model.num_hiddens=16", *extra)
    transformer = model == "transformer"
    sizes = {key: cfg.get(key.split(".")[0]).get(key.split(".")[1])
             for key in [*bounds.SIZE_KEYS, "model.bidirectional"]}
    if transformer:
        sizes["model.ffn_num_hiddens"] = cfg.model.ffn_num_hiddens = 32
    actual = sum(p.numel() for p in language_model(cfg.model, 1).parameters())
    assert 0 < bounds.parameters_at_least(sizes, transformer) <= actual


# ---------------------------------------------------------------- 7. launcher settings
@pytest.mark.parametrize("overrides, line", [
    (["launcher=slurm", "launcher.mem_gb=-1"], "launcher.mem_gb=-1 is not allowed: it must be "
                                              "an integer >= 1 (GiB per job)"),
    (["launcher=slurm", "launcher.timeout_min=0"], "launcher.timeout_min=0 is not allowed: it "
                                                  "must be an integer >= 1"),
    (["launcher=submitit_local", "launcher.timeout_min=-1"], "launcher.timeout_min=-1 is not "
                                                            "allowed: it must be an integer >= 1"),
    (["launcher=parallel", "launcher.jobs_per_device=1000000000000"],
     "launcher.jobs_per_device=1000000000000 is not allowed: it must be at most 256"),
    (["launcher=parallel", "launcher.fresh_process=maybe"], "launcher.fresh_process='maybe' is "
                                                           "not allowed: it must be auto"),
    (["launcher=parallel", "launcher.devices=abc"], "launcher.devices='abc' is not allowed: it "
                                                   "must be null (every visible GPU"),
    (["launcher=parallel", "launcher.devices=[cuda:99]"], "launcher.devices=[cuda:99] is not "
                                                         "allowed: it names cuda:99, and "),
])
def test_a_bad_launcher_setting_is_refused_before_the_launcher_is_built(overrides, line):
    config = compose_config(*overrides, hydra_node=True)
    with pytest.raises(ConfigError) as info:
        check_launcher(config)
    assert the_line(str(info.value)).startswith(line)
    assert "(e.g. launcher." in str(info.value)


def test_jobs_per_device_past_its_bound_never_reaches_joblib():
    config = compose_config("launcher=parallel", "launcher.jobs_per_device=1000000000000",
                            hydra_node=True)
    with pytest.raises(ConfigError, match="at most 256"):
        size_launcher(config)


def fake_slurm(folder, sinfo: str):
    """sbatch and sinfo in `folder`: sinfo runs the shell lines `sinfo`."""
    folder.mkdir()
    for name, body in (("sbatch", "exit 1"), ("sinfo", sinfo)):
        (folder / name).write_text(f"#!/bin/sh\n{body}\n")
        (folder / name).chmod(0o755)
    return str(folder)


@pytest.mark.parametrize("sinfo, overrides, line", [
    (None, [], "launcher=slurm is not allowed: sbatch and sinfo are not on PATH"),
    ("echo 'sinfo: fatal: Could not establish a configuration source' >&2; exit 1", [],
     "launcher=slurm is not allowed: SLURM is not reachable from this machine (sinfo: fatal: "
     "Could not establish a configuration source)"),
    ("printf 'cpu*\\ngpu\\n'", ["launcher.partition=gpu2"],
     "launcher.partition='gpu2' is not allowed: it must be one of cpu, gpu (e.g. "
     "launcher.partition=cpu)"),
    ("printf 'cpu*\\ngpu\\n'", ["launcher.partition=gpu"], None),
])
def test_launcher_slurm_needs_a_cluster_sbatch_can_reach(tmp_path, monkeypatch, sinfo,
                                                        overrides, line):
    path = fake_slurm(tmp_path / "bin", sinfo) if sinfo else str(tmp_path)
    monkeypatch.setenv("PATH", f"{path}:/usr/bin:/bin" if sinfo else path)
    if sinfo is None:
        assert shutil.which("sinfo") is None
    config = compose_config("launcher=slurm", *overrides, hydra_node=True)
    if line is None:
        check_launcher(config)
        return
    with pytest.raises(ConfigError) as info:
        check_launcher(config)
    assert the_line(str(info.value)).startswith(line)


@pytest.mark.parametrize("sweep, line", [
    (["seed=0,0"], "seed=0,0 is not allowed: it lists seed=0 2 times, one run planned twice; "
                   "list each value once (e.g. seed=0)"),
    (["model.num_hiddens=8,16,8"], "model.num_hiddens=8,16,8 is not allowed: it lists "
                                   "model.num_hiddens=8 2 times"),
])
def test_a_sweep_listing_one_point_twice_is_refused(tmp_path, sweep, line):
    config = compose_config(f"hydra.sweep.dir={tmp_path}/s", hydra_node=True)
    parser = OverridesParser.create()
    with pytest.raises(ConfigError) as info:
        Sweep(config, parser.parse_overrides(sweep), parser)
    assert the_line(str(info.value)).startswith(line)
    assert not (tmp_path / "s").exists()
    # a negative start of the seed axis: every one of its runs checked as its own (precheck)
    assert [o.input_line for o in with_seed_axis([], -1, 3, parser)] == ["seed=range(-1,2)"]


# ---------------------------------------------------------------- 6. stray results
def test_a_run_inside_a_sweep_or_a_sweep_inside_a_run_is_refused(tmp_path):
    sweep, single = tmp_path / "sweep", tmp_path / "single"
    sweep.mkdir()
    (sweep / MANIFEST).write_text('{"runs": []}')
    single.mkdir()
    (single / RESULT_FILE).write_text("{}")
    for folder in (sweep, sweep / "extra", sweep / "a" / "b"):
        with pytest.raises(ConfigError) as info:
            check_not_nested(folder, "hydra.run.dir")
        assert the_line(str(info.value)) == (
            f"hydra.run.dir={folder} is not allowed: it is inside the sweep folder {sweep} (it "
            f"holds manifest.json), whose runs would then include this single run; choose "
            f"another folder (e.g. hydra.run.dir=results/runs/mine)")
    for folder in (single, single / "sweep"):
        with pytest.raises(ConfigError, match=f"hydra.sweep.dir={folder} is not allowed: it is "
                                              f"inside the run folder {single} "):
            check_not_nested(folder, "hydra.sweep.dir")
    check_not_nested(tmp_path / "elsewhere", "hydra.run.dir")  # no error
    check_not_nested(sweep / "sub", "hydra.sweep.dir")


def test_the_report_reads_only_the_runs_its_manifest_lists(tmp_path, caplog):
    sweep = tmp_path / "sweep"
    for n, where in enumerate(["a", "b", ".", "stray/x"]):  # two listed runs, two strays
        (sweep / where).mkdir(parents=True, exist_ok=True)
        (sweep / where / RESULT_FILE).write_text(json.dumps({**make_result(),
                                                             "run_id": f"{n:012x}"}))
    (sweep / MANIFEST).write_text(json.dumps({"runs": [{"dir": "a"}, {"dir": "b"}]}))
    results, counts = load_results(sweep)
    assert sorted(r["_path"] for r in results) == ["a", "b"]
    assert counts["read"] == 2 and counts["strays"] == 2
    assert f"left out 2 result(s) that no manifest.json lists (e.g. {sweep / RESULT_FILE})" \
        in caplog.text
    results, counts = load_results(sweep / "stray")  # a folder without a manifest: every run
    assert counts["read"] == 1 and counts["strays"] == 0


# ---------------------------------------------------------------- 10. the resume hint
FOLDERS = ["/r/a=b,c", "/r/it's a run/x=1,y=2", "/r/quote\"d/[1] {a} $HOME", "/r/back\\'sl\\"]


@pytest.mark.parametrize("folder", FOLDERS)
def test_the_resume_hint_pastes_as_it_is(folder):
    argv = ["runner", "model.num_hiddens=16", "sample.prefix=time traveller",
            "hydra.run.dir=old"]
    hint = resume_command(folder, argv)
    args = shlex.split(hint)
    assert args[:3] == ["runner", "model.num_hiddens=16", "sample.prefix=time traveller"]
    override = OverridesParser.create().parse_override(args[-1])
    assert (override.key_or_group, override.value()) == ("hydra.run.dir", folder)
    assert len(args) == 4  # the old hydra.run.dir replaced, not kept beside
    # the shell reads it back as the same words
    echoed = subprocess.run(["bash", "-c", "printf '%s\\0' " + hint.split(" ", 1)[1]],
                            capture_output=True, text=True, check=True).stdout
    assert echoed.split("\0")[:-1] == args[1:]


def test_a_cuda_device_list_is_checked_against_this_machine():
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    config = compose_config("launcher=parallel", f"launcher.devices=[cuda:{n}]", hydra_node=True)
    with pytest.raises(ConfigError, match=f"it names cuda:{n}, and "):
        check_launcher(config)
    check_launcher(compose_config("launcher=parallel", "launcher.devices=[cpu]",
                                  hydra_node=True))
