"""Dropout in the runner's packs (launcher.pack, model.dropout between layers; docs/packing.md
"Dropout in the runner"): each member draws its masks from its own generator, which its
checkpoint keeps; every run of a packed dropout sweep is packed, even one alone; its identity,
store key and result say so, and nothing else's changes."""
import hashlib
import json

import pytest
import torch

import runner.tasks.language_model as language_model
from runner.errors import ConfigError
from runner.result import RESULT_FILE, SCHEMA_VERSION, validate_result, version_label
from runner.run import run
from runner.run.checkpoint import CHECKPOINT_FILE
from runner.run.identity import Identity
from runner.run.pack import run_pack
from runner.tasks import data_of
from tests import test_pack_runner
from tests.test_pack_runner import configs, rel, stopped_after_epoch_1

corpus, dtype = test_pack_runner.corpus, test_pack_runner.dtype  # the fixtures

# one thread: a 2-thread pack's many small ops crawl on a shared machine (docs/packing.md)
DROPOUT = ("model=gru", "model.num_layers=2", "model.dropout=0.5", "threads=1")
CURVES = ("train_perplexity", "val_perplexity", "lr", "train_tokens")
MEMBER = "each pack member's own dropout generator"


def curves(result: dict) -> dict:
    return {k: result["curves"][k] for k in CURVES}


@pytest.mark.parametrize("dtype", [torch.float64], indirect=True)
def test_a_stopped_dropout_pack_resumes_to_the_uninterrupted_pack(corpus, tmp_path,
                                                                  monkeypatch, dtype):
    cfgs = configs(corpus, (0, 1, 2), *DROPOUT, "train.checkpoint_every=1")
    clean = run_pack(cfgs, [tmp_path / f"clean{c.seed}" for c in cfgs])
    folders = [tmp_path / f"pack{c.seed}" for c in cfgs]
    stopped_after_epoch_1(monkeypatch, language_model.LanguageModelTask, len(cfgs),
                          lambda: run_pack(cfgs, folders))
    for folder in folders:
        stopped = json.loads((folder / RESULT_FILE).read_text())
        assert stopped["status"] == "interrupted" and stopped["checkpoint"]["epoch"] == 1
        assert "dropout_generator" in torch.load(folder / CHECKPOINT_FILE, weights_only=False)
    # the run alone draws other masks: it does not continue the member's checkpoint
    with pytest.raises(ConfigError, match=f"is a checkpoint of another run: it drew its "
                                          f"dropout masks from {MEMBER}"):
        run(cfgs[0], folders[0])
    resumed = run_pack(cfgs, folders)
    for again, uninterrupted in zip(resumed, clean):
        validate_result(again)
        assert again["resumed_from_epoch"] == [1] and again["status"] == "completed"
        assert again["environment"]["dropout_masks"] == "member"
        assert curves(again) == curves(uninterrupted)  # bit for bit, epoch 2 included
        assert again["metrics"]["val_perplexity"] == uninterrupted["metrics"]["val_perplexity"]
    # a finished packed result is not the unpacked run's either
    with pytest.raises(ConfigError, match=f"holds a finished result .* that drew its dropout "
                                          f"masks from {MEMBER} .*, so its curves differ"):
        run(cfgs[0], folders[0])


@pytest.mark.parametrize("dtype", [torch.float64], indirect=True)
def test_a_members_run_is_the_same_alone_in_its_pack_or_in_a_pack_of_three(corpus, tmp_path,
                                                                            dtype):
    # 1206 tokens: seed 0's offset cuts a batch from its first epoch, so in the pack of three
    # it sits the last step out, and must draw no masks there (its next epoch's would shift)
    cfgs = configs(corpus, (0, 1, 2), *DROPOUT, "data.max_tokens=1206")
    three = run_pack(cfgs, [tmp_path / f"three{c.seed}" for c in cfgs])
    assert three[0]["curves"]["train_tokens"][0] < three[1]["curves"]["train_tokens"][0]
    [lone] = run_pack(cfgs[:1], [tmp_path / "lone"])  # left alone: still its member stream
    assert lone["environment"]["packed"] == 1 and three[0]["environment"]["packed"] == 3
    for result in (lone, three[0]):
        validate_result(result)
        assert result["environment"]["dropout_masks"] == "member"
    for key in CURVES:
        assert rel(lone["curves"][key], three[0]["curves"][key]) <= 1e-12, key
    alone = run(cfgs[0], tmp_path / "alone")  # torch's global stream: other masks
    assert "dropout_masks" not in alone["environment"] and "packed" not in alone["environment"]
    assert rel(alone["curves"]["train_perplexity"], lone["curves"]["train_perplexity"]) > 1e-6


def test_the_store_keeps_the_two_streams_apart(corpus, tmp_path):
    store = f"store={tmp_path / 'store'}"

    def cfg(seed, *extra):
        return configs(corpus, (seed,), *extra, "train.num_epochs=1", store)[0]

    alone = run(cfg(0, *DROPOUT), tmp_path / "alone")
    [packed] = run_pack([cfg(0, *DROPOUT)], [tmp_path / "packed"])
    assert "reused" not in packed  # an unpacked result is not the packed command's
    assert packed["curves"]["train_perplexity"] != alone["curves"]["train_perplexity"]
    again = run(cfg(0, *DROPOUT), tmp_path / "alone2")  # nor the reverse: each its own
    assert again.get("reused") and again["run_id"] == alone["run_id"]
    [again] = run_pack([cfg(0, *DROPOUT)], [tmp_path / "packed2"])
    assert again.get("reused") and again["run_id"] == packed["run_id"]
    # without dropout a packed result is the run's, as before: reused either way
    plain = ("model=gru", "model.num_layers=2", "threads=1")
    first, _ = run_pack([cfg(1, *plain), cfg(2, *plain)], [tmp_path / "p1", tmp_path / "p2"])
    assert first["environment"]["packed"] == 2 and "dropout_masks" not in first["environment"]
    copied = run(cfg(1, *plain), tmp_path / "plain_alone")
    assert copied.get("reused") and copied["run_id"] == first["run_id"]


@pytest.mark.parametrize("extra", [
    ("model=gru",),
    ("model=gru", "model.num_layers=2"),
    ("model=lstm", "model.num_layers=1", "model.dropout=0.5"),  # no layer to drop between
])
def test_a_dropout_free_identity_and_store_key_are_unchanged(corpus, extra):
    cfg = configs(corpus, (3,), *extra)[0]
    sha1 = data_of(cfg)[1]
    env = {"git_commit": "c" * 40, "git_diff_sha1": None, "device_name": "cpu", "impl": "fused",
           "device": "cpu", "threads": 2}
    material = {"config": Identity.of(cfg, sha1).config, "data_sha1": sha1,
                "schema_version": SCHEMA_VERSION}  # the fields every earlier identity had
    old_key = hashlib.sha256(json.dumps(
        {"identity": material, "code": version_label(env), "device_name": "cpu",
         "impl": "fused", "threads": 2}, sort_keys=True, separators=(",", ":")).encode())
    for packed in (False, True):
        identity = Identity.of(cfg, sha1, packed)
        assert identity.as_record() == material
        assert identity.store_key(env) == old_key.hexdigest()
    # with dropout between layers, packed only: one field more, another key
    cfg = configs(corpus, (3,), *DROPOUT)[0]
    assert Identity.of(cfg, sha1).as_record().keys() == material.keys()
    packed = Identity.of(cfg, sha1, packed=True)
    assert packed.as_record()["dropout_masks"] == "member"
    assert packed.store_key(env) != Identity.of(cfg, sha1).store_key(env)
    assert "drew its dropout masks from torch's global generator" in packed.differs(
        Identity.of(cfg, sha1))
