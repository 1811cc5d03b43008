"""One identity check behind every reuse (runner/run/identity.py): resume, a checkpoint, the
result store and the fresh-process launcher accept and refuse the same runs, for the same
reason. A finished run, then the same run asked for with one thing changed."""
import json
import re

import pytest
import torch

from runner.errors import ConfigError
from runner.result import RESULT_FILE, SCHEMA_VERSION
from runner.run import run
from runner.run.checkpoint import CHECKPOINT_FILE, load
from runner.run.identity import Identity
from runner.run.resume import previous_result
from runner.sweep.isolate import finished_already
from runner.tasks import data_of
from tests.helpers import compose_config, tiny_overrides, write_corpus

# one thing changed -> why the run is another (None: the same run)
CHANGES = {
    "the same": ([], None, None),
    "an execution setting": (["quiet=false", "threads=1", "store=null"], None, None),
    "a hyperparameter": (["optim.lr=0.5"], None, "is of a different config"),
    "a model size": (["model.num_hiddens=12"], None, "is of a different config"),
    "the data": ([], {"dataset": {"sha1": "f" * 40}}, "was trained on data with sha1 ffff"),
    "the result format": ([], {"schema_version": SCHEMA_VERSION - 1},
                          f"was made by an older runner (result schema_version "
                          f"{SCHEMA_VERSION - 1}, now {SCHEMA_VERSION})"),
    # a packed run with dropout (runner/run/pack.py): its members' own masks, another curve
    "the dropout masks": ([], {"environment": {"dropout_masks": "member"}},
                          "drew its dropout masks from each pack member's own dropout generator "
                          "(launcher.pack > 1), but this run draws them from torch's global "
                          "generator (trained unpacked), so its curves differ"),
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """(the config, with overrides; a finished run of it): one tiny run for every case."""
    corpora = tmp_path_factory.mktemp("corpora")
    write_corpus(corpora / "tiny.txt")

    def cfg(*extra):
        return compose_config(*tiny_overrides(corpora), "train.num_epochs=1", *extra)

    return cfg, run(cfg(), tmp_path_factory.mktemp("finished"))


@pytest.mark.parametrize("overrides, edit, why", CHANGES.values(), ids=CHANGES)
def test_resume_checkpoints_the_store_and_the_launcher_agree(finished, tmp_path, overrides,
                                                             edit, why):
    cfg_of, result = finished
    recorded = {**result, **{k: {**result[k], **v} if isinstance(v, dict) else v
                             for k, v in (edit or {}).items()}}
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / RESULT_FILE).write_text(json.dumps(recorded))
    torch.save({"identity": Identity.of_result(recorded).as_record()}, folder / CHECKPOINT_FILE)
    cfg = cfg_of(*overrides)
    data_sha1 = data_of(cfg)[1]
    assert Identity.of_result(result) == Identity.of(cfg_of(), data_sha1)  # computed twice
    current, found = Identity.of(cfg, data_sha1), Identity.of_result(recorded)
    assert (current.differs(found) is None) == (why is None)
    if why is None:
        assert previous_result(folder / RESULT_FILE, cfg, data_sha1) == recorded  # resume
        assert load(folder, cfg, data_sha1)["identity"] == current.as_record()  # checkpoint
        assert finished_already(cfg, folder) == recorded  # the launcher starts no process
    else:
        why = re.escape(why)
        with pytest.raises(ConfigError, match=f"holds a finished result .* that {why}"):
            previous_result(folder / RESULT_FILE, cfg, data_sha1)
        with pytest.raises(ConfigError, match=f"is a checkpoint of another run: it {why}"):
            load(folder, cfg, data_sha1)
        assert finished_already(cfg, folder) is None  # the run decides, and refuses
    # the store files a run under its identity: the same key exactly when the same run
    env = {**result["environment"], "threads": None}
    assert (current.store_key(env) == found.store_key(env)) == (why is None)
