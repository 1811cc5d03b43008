"""launcher.pack=N for data.task=translation: the seeds of a point trained as one
PackedSeq2Seq (runner/run/pack.py, runner/tasks/pack_loop.py, TranslationTask.packed_loss),
each member recorded as its run alone: curves, held-out perplexity, BLEU and translations equal
its standalone run's (float64, 1e-10 relative), with SGD or Adam (the study's optimizer for
translation). With dropout (the study's preset) a member draws its own masks: the same in any
pack, not its unpacked run's (docs/packing.md)."""
import json

import pytest
import torch

import runner.run.pack as pack_module
import runner.tasks.translation as translation
from runner.result import RESULT_FILE
from runner.run import run
from runner.run.checkpoint import CHECKPOINT_FILE
from runner.run.pack import pack_problem, run_pack
from tests import test_pack_runner
from tests.helpers import cli_here, compose_config
from tests.test_pack_runner import NaNInMember1, assert_same_run, rel, stopped_after_epoch_1
from tests.test_translation import overrides, write_fra

dtype = test_pack_runner.dtype  # the fixture: the default dtype, for a test's duration


@pytest.fixture(scope="module")
def fra(tmp_path_factory):
    return write_fra(tmp_path_factory.mktemp("fra"))


def configs(fra, seeds, *extra):
    # 300 training pairs in batches of 16: 19 steps an epoch, enough for a BLEU above 0 on
    # the 14 held-out pairs after 2 epochs
    return [compose_config(*overrides(fra), "optim=sgd", "optim.lr=2", "model.dropout=0",
                           "model.num_hiddens=16", "model.embed_size=8", "data.batch_size=16",
                           "train.num_epochs=2", "train.eval_every=1", f"seed={s}", *extra)
            for s in seeds]


def assert_same_translation(packed: dict, alone: dict, tol: float) -> None:
    """assert_same_run (its curves and metrics, perplexity per target token) and BLEU, the
    held-out corpus's and each study sentence's, with the translations themselves."""
    assert_same_run(packed, alone, tol)
    assert rel(packed["metrics"]["bleu"], alone["metrics"]["bleu"]) <= tol
    p, a = packed["translations"], alone["translations"]
    assert rel(p["corpus_bleu"]["score"], a["corpus_bleu"]["score"]) <= tol
    assert [s["translation"] for s in p["study_sentences"]] == [
        s["translation"] for s in a["study_sentences"]]
    assert rel([s["study_bleu"] for s in p["study_sentences"]],
               [s["study_bleu"] for s in a["study_sentences"]]) <= tol


@pytest.mark.parametrize("dtype, seeds, extra", [
    (torch.float64, (0, 1, 2), ["model=gru", "model.impl=fused", "model.num_layers=2"]),
    (torch.float64, (0, 1), ["model=lstm", "model.impl=nn", "model.num_layers=1",
                             "optim._target_=torch.optim.Adam", "optim.lr=0.02"]),  # the study's
], indirect=["dtype"], ids=["gru-fused-2-layers-f64", "lstm-nn-adam-f64"])
def test_each_translation_member_equals_its_run_alone(fra, tmp_path, dtype, seeds, extra):
    cfgs = configs(fra, seeds, *extra)
    packed = run_pack(cfgs, [tmp_path / f"pack{c.seed}" for c in cfgs])
    alone = [run(c, tmp_path / f"alone{c.seed}") for c in cfgs]
    for p, a in zip(packed, alone):
        assert p["status"] == "completed" and p["task"] == "translation"
        assert p["metrics"]["bleu"] > 0  # so that its equality says something
        assert p["environment"]["packed"] == len(seeds) and "packed" not in a["environment"]
        assert_same_translation(p, a, 1e-10)
        assert p["model_class"] == "models.Seq2Seq"  # each evaluated by its standalone model
    # the members trained on their own batches: their curves differ from each other's
    assert len({p["curves"]["train_perplexity"][0] for p in packed}) == len(seeds)
    # tokens: every training target token (<eos> included, padding not) once an epoch
    assert packed[0]["curves"]["train_tokens"] == [packed[0]["dataset"]["train_tgt_tokens"]] * 2
    on_disk = json.loads((tmp_path / "pack1" / RESULT_FILE).read_text())
    assert on_disk["environment"]["packed"] == len(seeds)
    assert on_disk["metrics"]["bleu"] == packed[1]["metrics"]["bleu"]


@pytest.mark.parametrize("dtype", [torch.float64], indirect=True)
def test_a_diverged_translation_member_is_recorded_the_others_go_on(fra, tmp_path,
                                                                    monkeypatch, dtype):
    cfgs = configs(fra, (0, 1, 2), "model=gru")
    monkeypatch.setattr(pack_module, "PackedLM", NaNInMember1)
    packed = run_pack(cfgs, [tmp_path / f"pack{c.seed}" for c in cfgs])
    assert packed[1]["status"] == "diverged"
    assert packed[1]["metrics"]["diverged_epoch"] == 1
    assert packed[1]["curves"]["train_perplexity"] == [None]
    for i in (0, 2):
        assert packed[i]["status"] == "completed"
        assert_same_translation(packed[i], run(cfgs[i], tmp_path / f"alone{i}"), 1e-10)


@pytest.mark.parametrize("extra, says", [
    (["model.attention=true"], "cannot pack model.attention=true"),
    (["model=transformer"], "cannot pack model=transformer"),
])
def test_attention_and_the_transformer_are_refused_in_one_line(fra, tmp_path, extra, says):
    args = [*configs_args(fra), *extra]
    cfg = compose_config("launcher.pack=2", *args, hydra_node=True)
    line = pack_problem(cfg, cfg.hydra.launcher._target_)
    assert says in line and "launcher.pack=1" in line and "\n" not in line
    refused = cli_here("-m", *args, "repeats=2", "launcher.pack=2",
                       f"hydra.sweep.dir={tmp_path / 'refused'}")
    assert refused.returncode == 2  # before any work: that line alone, no traceback
    assert refused.stderr == f"error: invalid config:\n  {line}\n"
    assert not (tmp_path / "refused").exists()


def configs_args(fra):
    return [*overrides(fra), "optim=sgd", "model.dropout=0"]


def test_translation_without_attention_packs(fra):
    for model in ("gru", "lstm", "rnn", "gru_scratch"):
        cfg = compose_config("launcher.pack=2", *configs_args(fra), f"model={model}",
                             hydra_node=True)
        assert pack_problem(cfg, cfg.hydra.launcher._target_) is None, model
    # the study's own preset too: Adam, 2 layers, dropout 0.1
    cfg = compose_config("launcher.pack=2", *overrides(fra), hydra_node=True)
    assert pack_problem(cfg, cfg.hydra.launcher._target_) is None


@pytest.mark.parametrize("dtype", [torch.float64], indirect=True)
def test_the_study_preset_packs_each_member_on_its_own_masks_and_resumes(fra, tmp_path,
                                                                         monkeypatch, dtype):
    """The study's translation (Adam, 2 layers, dropout; here 0.5 so that masks matter):
    a member's run is the same in a pack of two as alone in a pack of one (its masks are its
    own generator's, docs/packing.md "Dropout in the runner"), and a pack stopped after epoch
    1 resumes to the uninterrupted pack, Adam's state and the generators from the
    checkpoints."""
    cfgs = [compose_config(*overrides(fra), "model.dropout=0.5", "model.num_hiddens=16",
                           "model.embed_size=8", "data.batch_size=16", "train.num_epochs=2",
                           "train.eval_every=1", "train.checkpoint_every=1", "threads=1",
                           f"seed={s}") for s in (0, 1)]
    assert cfgs[0].model.num_layers == 2 and cfgs[0].optim._target_ == "torch.optim.Adam"
    two = run_pack(cfgs, [tmp_path / f"two{c.seed}" for c in cfgs])
    for i, c in enumerate(cfgs):
        [lone] = run_pack([c], [tmp_path / f"lone{c.seed}"])
        assert lone["environment"]["packed"] == 1 and two[i]["environment"]["packed"] == 2
        assert lone["environment"]["dropout_masks"] == "member"
        assert_same_translation(lone, two[i], 1e-12)
    alone = run(cfgs[0], tmp_path / "alone")  # torch's global stream: other masks, so the
    assert rel(alone["curves"]["train_perplexity"],  # masks above were drawn and mattered
               two[0]["curves"]["train_perplexity"]) > 1e-6
    folders = [tmp_path / f"pack{c.seed}" for c in cfgs]
    stopped_after_epoch_1(monkeypatch, translation.TranslationTask, len(cfgs),
                          lambda: run_pack(cfgs, folders))
    for c in cfgs:
        stopped = json.loads((tmp_path / f"pack{c.seed}" / RESULT_FILE).read_text())
        assert stopped["status"] == "interrupted" and stopped["checkpoint"]["epoch"] == 1
    for again, uninterrupted, folder in zip(run_pack(cfgs, folders), two, folders):
        assert again["resumed_from_epoch"] == [1] and again["status"] == "completed"
        assert_same_translation(again, uninterrupted, 1e-12)
        assert not (folder / CHECKPOINT_FILE).exists()  # the final result replaced it
