"""model.impl: how rnn, lstm and gru are computed (torch.nn's layers, or our fused ones), never
what. auto picks per device; a result records the choice; validation, resume, sweeps and
reports treat the implementations as one function. (That the function is the same, to 1e-15
in float64 with every gradient: tests/test_fused.py.)"""
import copy
import json

import pytest
from torch import nn

from models.fused import FusedRNN
from runner.errors import ConfigError
from runner.report.runs import swept_params, tidy
from runner.result import RESULT_FILE, run_identity
from runner.run import run
from runner.run.interrupt import Interrupted
from runner.tasks.language_model import language_model
from runner.tasks.translation import seq2seq
from tests.helpers import compose_config, tiny_overrides, write_corpus
from tests.test_checkpoint import SETTINGS, signal_during
from tests.test_sweep import sweep_cli

# model config -> what computes its cells on cpu, and on cuda
CHOICES = [("rnn", "fused", "nn"), ("gru", "fused", "nn"), ("lstm", "nn", "nn"),
           ("rnn_nn", "nn", "nn"), ("gru_fused", "fused", "fused"), ("rnn_scratch", None, None),
           ("sru", None, None)]


@pytest.mark.parametrize("model, cpu, cuda", CHOICES)
def test_auto_is_the_fused_layer_on_cpu_and_torch_nn_on_gpu(tiny_cfg, model, cpu, cuda):
    """Built for each device type (no GPU needed to build): the layer class says what runs."""
    cfg = tiny_cfg(f"model={model}")
    for device, impl in (("cpu", cpu), ("cuda", cuda)):
        for core in (language_model(cfg.model, 11, device).core,
                     seq2seq(cfg.model, 11, 13, device).encoder):
            is_torch_nn = type(core) in (nn.RNN, nn.LSTM, nn.GRU)
            assert (isinstance(core, FusedRNN), is_torch_nn) == (impl == "fused", impl == "nn")


@pytest.mark.parametrize("model, impl", [("gru", "fused"), ("lstm", "nn"), ("rnn_nn", "nn"),
                                         ("rnn_scratch", None)])
def test_a_result_records_the_implementation_that_ran(tiny_cfg, tmp_path, model, impl):
    result = run(tiny_cfg(f"model={model}", "train.num_epochs=1"), tmp_path)
    assert result["environment"]["impl"] == impl
    written = json.loads((tmp_path / RESULT_FILE).read_text())
    assert written["environment"]["impl"] == impl  # and the schema admits it (run validates)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """gru trained by each implementation, 3 epochs of random minibatches with dropout."""
    root = tmp_path_factory.mktemp("corpora")
    write_corpus(root / "tiny.txt")
    out = {}
    for impl in ("nn", "fused"):
        cfg = compose_config(*tiny_overrides(root), "model=gru", f"model.impl={impl}",
                             "model.num_layers=2", "model.dropout=0.2", "data.sampling=random",
                             "threads=1")
        out[impl] = run(cfg, tmp_path_factory.mktemp(impl))
    return out


def test_both_implementations_train_to_the_same_numbers(pair):
    """One experiment: the same identity, and in float32 the same curves to rounding."""
    nn_run, fused = pair["nn"], pair["fused"]
    assert run_identity(nn_run["config"]) == run_identity(fused["config"])
    assert nn_run["config"]["model"]["impl"] == "nn" and fused["environment"]["impl"] == "fused"
    for key in ("train_perplexity", "val_perplexity"):
        assert fused["curves"][key] == pytest.approx(nn_run["curves"][key], rel=1e-4)
    assert fused["metrics"]["num_params"] == nn_run["metrics"]["num_params"]


def test_a_run_stopped_under_one_implementation_resumes_under_the_other(tiny_cfg, tmp_path,
                                                                        monkeypatch):
    """Moving a run from CPU (auto: fused) to a GPU (auto: cuDNN) is a resume, not a new run;
    here model.impl=nn stands in for the GPU."""
    folder, clean = tmp_path / "moved", run(tiny_cfg(*SETTINGS), tmp_path / "clean")
    with monkeypatch.context() as m:
        signal_during(m, "train_batches", 4)
        with pytest.raises(Interrupted):
            run(tiny_cfg(*SETTINGS), folder)  # model=rnn: fused on cpu
    moved = run(tiny_cfg(*SETTINGS, "model.impl=nn"), folder)
    assert moved["resumed_from_epoch"] == [3] and moved["environment"]["impl"] == "nn"
    assert moved["curves"]["train_perplexity"][:3] == clean["curves"]["train_perplexity"][:3]
    assert moved["curves"]["train_perplexity"] == pytest.approx(
        clean["curves"]["train_perplexity"], rel=1e-4)


@pytest.mark.parametrize("overrides, line", [
    # the layer declares its implementations (models/cells.py: none fused for lstm)
    (["model=lstm", "model.impl=fused"], "model.impl=fused does not exist for lstm: it has nn "
     "(e.g. model.impl=auto)"),
    (["model=sru", "model.impl=nn"], "model.impl=nn does not apply: sru has one "
     "implementation (e.g. model.impl=auto)"),
    (["model.impl=cudnn"], "model.impl='cudnn' is not allowed: it must be one of auto, nn, "
     "fused (e.g. model.impl=auto, the fastest for the device)"),
    (["model.cell=rnn_fused"], "model.cell='rnn_fused' is now model.cell=rnn model.impl=fused: "
     "the same function, one cell name (e.g. model=rnn_fused, whose config says so)"),
])
def test_a_bad_implementation_is_refused_before_any_work(tiny_cfg, tmp_path, overrides, line):
    with pytest.raises(ConfigError) as refused:
        run(tiny_cfg(*overrides), tmp_path / "run")
    assert line in str(refused.value)
    assert not (tmp_path / "run").exists()


def test_reports_name_what_computed_each_run_old_results_included(pair):
    """model.impl in a report is the implementation that ran (environment.impl), not auto;
    a result from before model.impl (cell rnn_fused or gru_fused, or torch.nn's cell with no
    environment.impl) reads as the cell and implementation it was."""
    old_fused, old_nn = copy.deepcopy(pair["fused"]), copy.deepcopy(pair["nn"])
    for old, cell in ((old_fused, "gru_fused"), (old_nn, "gru")):
        old["run_id"] = old["run_id"][::-1]
        old["config"]["model"] = {k: v for k, v in old["config"]["model"].items() if k != "impl"}
        old["config"]["model"]["cell"] = cell
        del old["environment"]["impl"]
    df = tidy([pair["nn"], pair["fused"], old_fused, old_nn])
    assert list(df["model.cell"]) == ["gru"] * 4
    assert sorted(df["model.impl"]) == ["fused", "fused", "nn", "nn"]
    assert list(df.columns[df.columns.get_loc("model.cell") + 1:][:1]) == ["model.impl"]
    assert swept_params(df) == ["model.impl"]
    grouped = df.groupby("model.impl")["val_perplexity"].nunique()
    assert grouped.to_dict() == {"fused": 1, "nn": 1}  # an old copy reads as its twin


@pytest.mark.slow  # the CLI in a subprocess
def test_a_sweep_over_model_impl_alone_is_refused_with_the_fix(corpus_dir, tmp_path):
    """model.impl is left out of folder names (a resume on another device finds its folder),
    so two points differing only there would share one folder: refused, nothing written."""
    done = sweep_cli(corpus_dir, tmp_path / "sw", "model=gru", "model.impl=nn,fused")
    assert done.returncode == 2, done.stderr
    assert "differ only in execution settings" in done.stderr
    assert "sweep the models that pin it (e.g. model=gru_nn,gru_fused)" in done.stderr
    assert not (tmp_path / "sw").exists()
    done = sweep_cli(corpus_dir, tmp_path / "ok", "model=gru_nn,gru_fused", "train.num_epochs=1")
    assert done.returncode == 0, done.stderr
    impls = {json.loads(p.read_text())["environment"]["impl"]: p.parent.name
             for p in (tmp_path / "ok").rglob(RESULT_FILE)}
    assert ",model=gru_nn," in impls["nn"] and ",model=gru_fused," in impls["fused"]

