"""launcher.pack=N: runs of one point that differ only by seed, trained in one process as one
PackedLM, each member recorded as its run alone (runner/run/pack.py, runner/sweep/packs.py,
docs/packing.md). Each member's numbers equal its standalone run's: float64 to 1e-10, float32
to 1e-4 (relative), over whole results."""
import json
import math
import re
from pathlib import Path

import pytest
import torch

import runner.run.pack as pack_module
import runner.tasks.language_model as language_model
from models.packed import PackedLM
from runner.errors import ConfigError
from runner.result import RESULT_FILE, run_identity, validate_result
from runner.run import run
from runner.run.checkpoint import CHECKPOINT_FILE
from runner.run.pack import pack_problem, run_pack
from runner.run.validate import validate
from tests.helpers import cli_here, compose_config, tiny_overrides, write_corpus

# what a member must reproduce of its standalone run (timings aside)
CURVES = ("epoch", "train_perplexity", "val_perplexity", "val_epoch", "lr", "train_tokens")
METRICS = ("train_perplexity", "best_train_perplexity", "val_perplexity",
           "best_val_perplexity", "epochs_done", "diverged_epoch", "num_params", "train_tokens")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpora")
    write_corpus(root / "tiny.txt")
    return root


@pytest.fixture
def dtype(request):
    old = torch.get_default_dtype()
    torch.set_default_dtype(request.param)
    yield request.param
    torch.set_default_dtype(old)


def configs(corpus, seeds, *extra):
    # the tiny corpus cut to ~15 batches an epoch: each test trains several runs
    return [compose_config(*tiny_overrides(corpus), "data.max_tokens=1200", "data.val_tokens=300",
                           "train.num_epochs=2", f"seed={s}", *extra) for s in seeds]


def rel(a, b) -> float:
    """Largest relative difference of two numbers or lists of them (None where diverged)."""
    a, b = (a, b) if isinstance(a, list) else ([a], [b])
    assert len(a) == len(b) and [x is None for x in a] == [y is None for y in b]
    return max([abs(x - y) / abs(y) for x, y in zip(a, b) if y is not None and y != x] or [0])


def assert_same_run(packed: dict, alone: dict, tol: float) -> None:
    validate_result(packed)
    assert packed["status"] == alone["status"]
    assert run_identity(packed["config"]) == run_identity(alone["config"])  # launcher aside
    for key in CURVES:
        assert rel(packed["curves"][key], alone["curves"][key]) <= tol, key
    for key in METRICS:
        assert rel(packed["metrics"][key], alone["metrics"][key]) <= tol, key


def stopped_after_epoch_1(monkeypatch, task_class, runs: int, train) -> None:
    """train() (a pack of `runs` runs, or a run alone: 1) stopped by Ctrl-C as epoch 2 begins:
    task_class.train_batches raises once every run has had its epoch 1 (one call each), so
    each stops with its epoch 1 recorded and checkpointed."""
    real, calls = task_class.train_batches, []

    def train_batches(self):
        calls.append(1)
        if len(calls) == runs + 1:
            raise KeyboardInterrupt
        return real(self)

    with monkeypatch.context() as m:
        m.setattr(task_class, "train_batches", train_batches)
        with pytest.raises(KeyboardInterrupt):
            train()


# rnn/gru/lstm, fused, torch.nn and d2l's scratch layers, one-hot and embedded, both samplings
# and a warm-up (per-member schedules, epochs of unequal length under random offsets: members
# sitting steps out), both dtypes; plain SGD, SGD with momentum, and Adam with weight decay
@pytest.mark.parametrize("dtype, tol, seeds, extra", [
    (torch.float64, 1e-10, (0, 1, 2), ["model=gru", "model.impl=fused", "optim=adam",
                                       "optim.lr=0.01", "+optim.weight_decay=0.01",
                                       "data.sampling=random", "train.warmup=0.3"]),
    (torch.float64, 1e-10, (0, 1), ["model=rnn", "model.impl=nn", "model.num_layers=2",
                                    "model.embed_size=8", "train.warmup=0.3"]),
    (torch.float32, 1e-4, (0, 1), ["model=lstm", "data.sampling=random",
                                   "optim.lr=0.5", "+optim.momentum=0.9"]),
    (torch.float64, 1e-10, (0, 1), ["model=lstm_scratch"]),  # d2l's own cells
], indirect=["dtype"], ids=["gru-fused-adam-f64", "rnn-nn-f64", "lstm-momentum-f32",
                            "lstm-scratch-f64"])
def test_each_member_equals_its_run_alone(corpus, tmp_path, dtype, tol, seeds, extra):
    cfgs = configs(corpus, seeds, *extra)
    packed = run_pack(cfgs, [tmp_path / f"pack{c.seed}" for c in cfgs])
    alone = [run(c, tmp_path / f"alone{c.seed}") for c in cfgs]
    for p, a in zip(packed, alone):
        assert p["environment"]["packed"] == len(seeds) and "packed" not in a["environment"]
        assert_same_run(p, a, tol)
        assert p["run_id"] != a["run_id"] and p["sample"]["prefix"] == a["sample"]["prefix"]
    assert len({p["run_id"] for p in packed}) == len(seeds)  # runs of their own
    # a member's tokens/sec is its own tokens over its pack's round (every member's epoch), so
    # the members' sum is the pack's: all its tokens over the round, counted here
    for e in range(len(packed[0]["curves"]["epoch"])):
        [round_s] = {p["curves"]["train_seconds"][e] for p in packed}
        tokens = sum(p["curves"]["train_tokens"][e] for p in packed)
        assert sum(p["curves"]["tokens_per_sec"][e] for p in packed) == pytest.approx(
            tokens / round_s, rel=1e-12)
    written = json.loads((tmp_path / "pack1" / RESULT_FILE).read_text())
    assert written["curves"]["train_perplexity"] == packed[1]["curves"]["train_perplexity"]


class NaNInMember1(PackedLM):
    @classmethod
    def pack(cls, models):
        packed = PackedLM.pack(models)  # a PackedSeq2Seq where the models are Seq2Seq
        with torch.no_grad():
            packed.output.weight[1] = math.nan  # member 1 only: as a diverging lr would
        return packed


@pytest.mark.parametrize("dtype", [torch.float64], indirect=True)
def test_a_diverged_member_is_recorded_and_masked_the_others_go_on(corpus, tmp_path,
                                                                   monkeypatch, dtype):
    cfgs = configs(corpus, (0, 1, 2), "model=gru")
    monkeypatch.setattr(pack_module, "PackedLM", NaNInMember1)
    packed = run_pack(cfgs, [tmp_path / f"pack{c.seed}" for c in cfgs])
    validate_result(packed[1])
    assert packed[1]["status"] == "diverged"
    assert packed[1]["metrics"]["diverged_epoch"] == 1
    assert packed[1]["curves"]["train_perplexity"] == [None]
    for i in (0, 2):
        assert_same_run(packed[i], run(cfgs[i], tmp_path / f"alone{i}"), 1e-10)


@pytest.mark.parametrize("dtype", [torch.float64], indirect=True)
def test_checkpoints_are_the_members_own_either_way(corpus, tmp_path, monkeypatch, dtype):
    """A pack stopped after epoch 1 leaves each member a standalone checkpoint, its Adam state
    (moments, step counts) the one its run alone writes: a run alone resumes it; a pack
    resumes a run alone's checkpoint beside a member starting afresh (members at different
    epochs, so at different Adam steps)."""
    cfgs = configs(corpus, (0, 1), "model=gru", "train.num_epochs=3",
                   "train.checkpoint_every=1", "optim=adam", "optim.lr=0.01")
    clean = [run(c, tmp_path / f"clean{c.seed}") for c in cfgs]
    stopped_after_epoch_1(monkeypatch, language_model.LanguageModelTask, 2,
                          lambda: run_pack(cfgs, [tmp_path / f"pack{c.seed}" for c in cfgs]))
    packed_1 = torch.load(tmp_path / "pack1" / CHECKPOINT_FILE, weights_only=False)
    for c in cfgs:
        stopped = json.loads((tmp_path / f"pack{c.seed}" / RESULT_FILE).read_text())
        assert stopped["status"] == "interrupted" and stopped["checkpoint"]["epoch"] == 1
        resumed = run(c, tmp_path / f"pack{c.seed}")  # alone, from the member's checkpoint
        assert resumed["resumed_from_epoch"] == [1]
        assert_same_run(resumed, clean[c.seed], 1e-10)
    # the other way: seed 1 alone stopped after epoch 1, then packed with a fresh seed 0
    stopped_after_epoch_1(monkeypatch, language_model.LanguageModelTask, 1,
                          lambda: run(cfgs[1], tmp_path / "mixed1"))
    alone_1 = torch.load(tmp_path / "mixed1" / CHECKPOINT_FILE, weights_only=False)
    assert_same_checkpoint(packed_1, alone_1)  # seed 1 after epoch 1: packed, then alone
    both = run_pack(cfgs, [tmp_path / "mixed0", tmp_path / "mixed1"])
    assert both[1]["resumed_from_epoch"] == [1] and "resumed_from_epoch" not in both[0]
    for result, alone in zip(both, clean):
        assert result["environment"]["packed"] == 2
        assert_same_run(result, alone, 1e-10)
    assert not (tmp_path / "mixed1" / CHECKPOINT_FILE).exists()  # final: replaced
    # finished members are not trained again: both skipped
    again = run_pack(cfgs, [tmp_path / "mixed0", tmp_path / "mixed1"])
    assert [r.get("skipped") for r in again] == [True, True]


def assert_same_checkpoint(packed: dict, alone: dict) -> None:
    """The model and optimizer state a packed member's checkpoint holds are its run alone's:
    the same keys and shapes, step counts and dtypes exactly, numbers to 1e-10."""
    assert packed["epoch"] == alone["epoch"] and packed["scheduler"] == alone["scheduler"]
    for k, v in alone["model"].items():
        assert rel(packed["model"][k].flatten().tolist(), v.flatten().tolist()) <= 1e-10, k
    got, want = packed["optimizer"], alone["optimizer"]
    assert got["param_groups"] == want["param_groups"] and got["state"].keys() == want[
        "state"].keys()
    for i, state in want["state"].items():
        assert list(got["state"][i]) == list(state) == ["step", "exp_avg", "exp_avg_sq"]
        assert got["state"][i]["step"].dtype == state["step"].dtype
        assert float(got["state"][i]["step"]) == float(state["step"]) > 0
        for k in ("exp_avg", "exp_avg_sq"):
            assert rel(got["state"][i][k].flatten().tolist(), state[k].flatten().tolist()) \
                <= 1e-10, (i, k)


@pytest.mark.parametrize("value", ["0", "-1", "abc"])
def test_a_bad_pack_size_is_refused(corpus, value):
    with pytest.raises(ConfigError, match=rf"launcher\.pack='?{re.escape(value)}'? is not "
                                          rf"allowed: it must be an integer >= 1"):
        validate(compose_config(*tiny_overrides(corpus), f"launcher.pack={value}"))


@pytest.mark.parametrize("extra, says", [
    (["model=transformer"], "cannot pack model=transformer"),
    (["model.bidirectional=true"], "cannot pack model.bidirectional=true"),
    (["optim._target_=torch.optim.RMSprop"], "cannot pack optim._target_=torch.optim.RMSprop"),
    (["optim=adam", "+optim.fused=true"], "cannot pack optim.fused=True"),
    (["data=synthetic"], "cannot pack data.task=regression"),  # translation packs
    (["launcher=parallel", "launcher.fresh_process=true"], "fresh processes"),
])
def test_what_cannot_be_packed_is_named_with_the_fix(extra, says):
    cfg = compose_config("launcher.pack=2", *extra, hydra_node=True)
    line = pack_problem(cfg, cfg.hydra.launcher._target_)
    assert says in line and "launcher.pack=1" in line and "\n" not in line
    for packs in (["model=lstm", "model.impl=nn"], ["model=gru_scratch"],  # d2l's packs too
                  ["optim=adam", "+optim.weight_decay=0.1", "+optim.amsgrad=true"],
                  ["+optim.momentum=0.9", "+optim.nesterov=true"],
                  ["model.num_layers=2", "model.dropout=0.2"]):  # each member's own masks
        cfg = compose_config("launcher.pack=2", *packs, hydra_node=True)
        assert pack_problem(cfg, cfg.hydra.launcher._target_) is None
    for launcher in ("submitit_local", "slurm"):  # a requeued job resumes every member
        cfg = compose_config("launcher.pack=2", f"launcher={launcher}", hydra_node=True)
        assert pack_problem(cfg, cfg.hydra.launcher._target_) is None
    line = pack_problem(cfg, "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher")
    assert "not supported with launcher=slurm (RayLauncher)" in line and "pack=1" in line


def test_an_optimizer_the_pack_cannot_step_is_refused_before_any_work(corpus, tmp_path):
    """A user's own optimizer class (here torch's RMSprop, which packs do not compute): the
    sweep stops before any job, exit 2, one line naming it and the fix."""
    refused = cli_here("-m", *tiny_overrides(corpus), "optim._target_=torch.optim.RMSprop",
                       "optim.lr=0.01", "repeats=2", "launcher.pack=2",
                       f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert refused.returncode == 2
    [line] = [x for x in refused.stderr.splitlines() if "cannot pack" in x]
    assert "optim._target_=torch.optim.RMSprop" in line and "launcher.pack=1" in line
    assert not (tmp_path / "sweep").exists()
