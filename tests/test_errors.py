"""Bad input fails before any work, with one message naming the key, the value and the fix."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.errors import MissingConfigException

from runner.errors import ConfigError
from runner.result import RESULT_FILE
from runner.run.execute import run
from runner.run.validate import validate
from tests.helpers import cli_here, compose_config, tiny_overrides

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("override,expected", [
    ("model.num_hiddens=0", "model.num_hiddens=0 is not allowed: it must be an integer >= 1"),
    ("model.num_hiddens=abc", "model.num_hiddens='abc' is not allowed"),
    ("model.num_hiddens=true", "model.num_hiddens=True is not allowed"),
    ("optim.lr=-1", "optim.lr=-1 is not allowed: it must be a number > 0"),
    ("model.dropout=1.5", "model.dropout=1.5 is not allowed: it must be a number in [0, 1)"),
    ("model.cell=lstm", "model.cell='lstm' is not allowed: it names conf/model/lstm.yaml, whose "
                        "layer is models.cells.lstm, and this model's is models.cells.rnn"),
    ("model.skip=highway", "model.skip='highway' is not allowed: it must be one of none, residual"),
    ("data.sampling=shuffled", "data.sampling='shuffled' is not allowed"),
    ("train.grad_clip=0", "train.grad_clip=0 is not allowed: it must be null (off)"),
    ("train.warmup=1.0", "train.warmup=1.0 is not allowed"),
    ("init.scheme=he", "init.scheme='he' is not allowed: it must be one of default"),
    ("device=gpu", "device='gpu' is not allowed: it must be auto, cpu, cuda or cuda:N"),
    ("model.nonlinearity=sigmoid", "model.nonlinearity='sigmoid' is not allowed"),
])
def test_bad_value_is_named_with_what_is_allowed(override, expected):
    with pytest.raises(ConfigError) as info:
        validate(compose_config(override))
    message = str(info.value)
    assert expected in message
    key = override.split("=")[0]
    assert f"(e.g. {key}=" in message  # the fix
    assert message.count("\n") == 1  # one problem, one line


@pytest.mark.parametrize("overrides,expected", [
    (["model=transformer", "model.num_heads=3"],
     "model.num_heads=3 is not allowed: it must divide model.num_hiddens=256"),
    (["model=transformer", "model.positional=rotary"], "model.positional='rotary' is not allowed"),
    (["model=transformer", "model.max_len=40"],
     "model.max_len=40 is too short: it must be at least model.context + data.num_steps = 70"),
    (["model=transformer", "model.norm_first=maybe"], "model.norm_first='maybe' is not allowed"),
    (["model=onlstm", "model.chunk_size=7"],
     "model.chunk_size=7 is not allowed: it must be an integer >= 1 dividing "
     "model.num_hiddens=512"),
    (["model=onlstm", "model.chunk_size=512"], "into at least 2 chunks"),
    (["model=gru", "+model.chunk_size=8"], "model.chunk_size=8 is not a key of model=gru"),
    (["model=sru", "model.bidirectional=true"],
     "model.bidirectional=true is not available for sru"),
    (["model=gru", "+model.nonlinearity=relu"], "model.nonlinearity='relu' is not a key of "
                                                "model=gru"),
])
def test_bad_model_option_is_named_with_the_fix(overrides, expected):
    with pytest.raises(ConfigError) as info:
        validate(compose_config(*overrides))
    assert expected in str(info.value)
    assert "(e.g. " in str(info.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        validate(compose_config("model.num_hiddens=0", "optim.lr=-1"))
    assert "model.num_hiddens=0" in str(info.value) and "optim.lr=-1" in str(info.value)


def test_unknown_model_file_lists_the_models():
    with pytest.raises(MissingConfigException, match="gru_scratch"):
        compose_config("model=transformerx")


def test_num_steps_longer_than_the_corpus_fails_before_training(tiny_cfg, tmp_path):
    with pytest.raises(ConfigError, match="data.num_steps=5000 with data.batch_size=8 needs "
                                          "at least 45001 training tokens, but the corpus "
                                          "gives 3000"):
        run(tiny_cfg("data.num_steps=5000"), tmp_path)
    assert not (tmp_path / RESULT_FILE).exists()


def test_held_out_too_short_for_num_steps(tiny_cfg, tmp_path):
    with pytest.raises(ConfigError, match="needs at least 11 held-out tokens, but there are 5"):
        run(tiny_cfg("data.val_tokens=5"), tmp_path)


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_cli_bad_value_exits_2_with_one_message_and_no_result(corpus_dir, tmp_path):
    out = tmp_path / "run"
    proc = cli(*tiny_overrides(corpus_dir), "model.num_hiddens=0", f"hydra.run.dir={out}")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: invalid config:\n  model.num_hiddens=0 is not allowed")
    assert "Traceback" not in proc.stderr
    assert not (out / RESULT_FILE).exists()


def test_cli_unreachable_download_names_folder_url_and_setting(tmp_path):
    empty = tmp_path / "nothing-here"
    proc = cli_here("data.url=http://127.0.0.1:9/timemachine.txt",
                    f"hydra.run.dir={tmp_path / 'r'}", env={"RUNNER_DATA_DIR": str(empty)})
    assert proc.returncode == 2, proc.stderr
    assert "could not download http://127.0.0.1:9/timemachine.txt" in proc.stderr
    assert str(empty.resolve()) in proc.stderr and "RUNNER_DATA_DIR" in proc.stderr
    assert not list(empty.glob("*"))  # no partial download left behind


@pytest.mark.slow
def test_cli_run_leaves_exactly_one_json(corpus_dir, tmp_path):
    out = tmp_path / "run"
    proc = cli(*tiny_overrides(corpus_dir), "model=gru_scratch", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in out.rglob("*.json")] == [RESULT_FILE]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_fails_before_training(tiny_cfg, tmp_path):
    with pytest.raises(ConfigError, match="device='cuda' but torch .* sees no CUDA GPU here: "
                                          "use device=cpu or device=auto"):
        run(tiny_cfg("device=cuda"), tmp_path)
    assert not (tmp_path / RESULT_FILE).exists()


@pytest.mark.parametrize("override, key", [("optim.lr=inf", "optim.lr=inf"),
                                           ("train.warmup=nan", "train.warmup=nan"),
                                           ("+optim.weight_decay=-inf", "optim.weight_decay=-inf")])
def test_non_finite_numbers_are_refused(override, key):
    """inf would be accepted as an lr > 0, then recorded as null (JSON has no inf), and the
    run would refuse its own identical re-run."""
    with pytest.raises(ConfigError, match=f"{key} is not allowed: config numbers must be finite"):
        validate(compose_config(override))


def test_cli_lr_inf_exits_2_before_work(corpus_dir, tmp_path):
    out = tmp_path / "run"
    proc = cli_here(*tiny_overrides(corpus_dir), "optim.lr=inf", f"hydra.run.dir={out}")
    assert proc.returncode == 2
    assert "optim.lr=inf is not allowed" in proc.stderr and "Traceback" not in proc.stderr
    assert not (out / RESULT_FILE).exists()


def test_a_vocabulary_of_unk_alone_is_refused(tiny_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"data.min_freq=100000 leaves only <unk> in the "
                                          r"vocabulary \(the most frequent training token occurs "
                                          r"\d+ times\): lower data.min_freq"):
        run(tiny_cfg("data.min_freq=100000"), tmp_path)
    assert not (tmp_path / RESULT_FILE).exists()


def test_a_held_out_slice_shorter_than_asked_is_said(tiny_cfg, tmp_path, caplog):
    result = run(tiny_cfg("data.val_tokens=100000",
                          "train.num_epochs=1"), tmp_path)
    available = result["dataset"]["val_tokens"]
    assert 11 <= available < 100000
    assert (f"data.val_tokens=100000, but only {available} tokens follow the training slice"
            in caplog.text)


@pytest.mark.parametrize("override, expected", [
    ("init.biases=zeros", "init.biases='zeros' is not allowed: it must be one of zero, keep"),
    ("init.embeddings=maybe", "init.embeddings='maybe' is not allowed: it must be true or false"),
])
def test_init_options_are_checked_before_work(override, expected):
    """The d2l init's options are refused before any work, not when the model is built."""
    with pytest.raises(ConfigError, match=re.escape(expected)):
        validate(compose_config("data=tatoeba", override))
    validate(compose_config("init=normal"))  # a scheme without the options is fine


def test_the_sample_is_checked_for_language_models_only():
    """sample.* is the text a language model generates after training: translation has none."""
    with pytest.raises(ConfigError, match=re.escape(
            "sample.num_preds=-1 is not allowed: it must be an integer >= 0")):
        validate(compose_config("sample.num_preds=-1"))
    validate(compose_config("data=tatoeba", "sample.num_preds=-1", "sample.prefix=''"))
