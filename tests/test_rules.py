"""Each rule on a model's options is written once, in models/: validation (before any work)
and the model's constructor report the same line for the same bad value."""
from pathlib import Path

import pytest

from models import Seq2Seq, TransformerLM, TransformerSeq2Seq, make_core
from models.onlstm import ONLSTM
from runner.errors import ConfigError
from runner.run.validate import validate
from runner.tasks.language_model import language_model
from runner.tasks.translation import seq2seq
from tests.helpers import compose_config, layer

ROOT = Path(__file__).resolve().parent.parent

# overrides, the smallest constructor that enforces the rule (given the config's model node)
CASES = {
    "onlstm chunks": (["model=onlstm", "model.chunk_size=7"],
                      lambda m: ONLSTM(3, m.num_hiddens, m.chunk_size)),
    "onlstm needs chunk_size": (["model=onlstm", "~model.chunk_size"],
                                lambda m: make_core(ONLSTM, 3, m.num_hiddens, name=m.cell)),
    "nonlinearity names": (["model=rnn", "model.nonlinearity=sigmoid"],
                           lambda m: make_core(layer("rnn", nonlinearity="sigmoid"), 3,
                                               m.num_hiddens, name=m.cell)),
    "sru one way": (["model=sru", "model.bidirectional=true"],
                    lambda m: make_core(layer("sru"), 3, m.num_hiddens, bidirectional=True,
                                        name=m.cell)),
    "onlstm one way": (["model=onlstm", "model.bidirectional=true"],
                       lambda m: make_core(layer("onlstm", chunk_size=m.chunk_size), 3,
                                           m.num_hiddens, bidirectional=True, name=m.cell)),
    "seq2seq one way": (["data=tatoeba", "model=sru", "model.bidirectional=true"],
                        lambda m: Seq2Seq(5, 6, layer(m.cell), m.num_hiddens,
                                          bidirectional=True)),
    "skip names": (["model=gru", "model.skip=highway"],
                   lambda m: make_core(layer("gru"), 3, m.num_hiddens, skip="highway",
                                       name=m.cell)),
    "heads divide num_hiddens": (["model=transformer", "model.num_heads=3"],
                                 lambda m: TransformerLM(5, num_hiddens=m.num_hiddens,
                                                         num_heads=3)),
    "heads divide (translation)": (["model=transformer", "data=tatoeba", "model.num_heads=5"],
                                   lambda m: TransformerSeq2Seq(5, 6, num_hiddens=m.num_hiddens,
                                                                num_heads=5)),
    "positional names": (["model=transformer", "model.positional=rotary"],
                         lambda m: TransformerLM(5, positional="rotary")),
    "transformer sizes": (["model=transformer", "model.num_layers=0"],
                          lambda m: TransformerLM(5, num_layers=0)),
    "transformer context": (["model=transformer", "model.context=-1"],
                            lambda m: TransformerLM(5, context=-1)),
}


def build(cfg):
    """The model the run builds from the config: the task's network around the cells."""
    if cfg.data.task == "language_model":
        return language_model(cfg.model, 5)
    return seq2seq(cfg.model, 5, 6)


@pytest.mark.parametrize("overrides, construct", CASES.values(), ids=CASES)
def test_validation_and_the_constructor_say_the_same_line(overrides, construct):
    cfg = compose_config(*overrides)
    with pytest.raises(ConfigError) as validated:
        validate(cfg)
    header, *lines = str(validated.value).split("\n  ")
    assert header == "invalid config:" and len(lines) == 1  # one problem, one line
    (line,) = lines
    assert " is not allowed: " in line or " applies to " in line or " is not available " in line
    assert "(e.g. " in line  # the fix
    with pytest.raises(ValueError) as built:
        construct(cfg.model)
    assert str(built.value) == line
    with pytest.raises(ValueError) as instantiated:
        build(cfg)
    assert str(instantiated.value) == line


@pytest.mark.parametrize("key, value", [("chunk_size", 8), ("nonlinearity", "relu")])
def test_an_option_the_layer_does_not_take_is_named_by_both(key, value):
    """Validation names the nearest key of all the model takes (runner/run/keys.py); the
    constructor the options its layer takes."""
    with pytest.raises(ConfigError) as validated:
        validate(compose_config("model=gru", f"+model.{key}={value}"))
    said = f"model.{key}={value!r} is not a key of model=gru"
    assert said in str(validated.value)
    with pytest.raises(ValueError) as built:
        make_core(layer("gru", **{key: value}), 3, 8, name="gru")
    assert str(built.value).startswith(f"{said}, whose layer gru takes no options")


def test_a_constructor_reports_every_broken_rule():
    with pytest.raises(ValueError) as e:
        make_core(layer("gru", nonlinearity="relu", chunk_size=4), 3, 8, skip="highway")
    assert [p.split("=")[0] for p in str(e.value).split("; ")] == [
        "model.skip", "model.nonlinearity", "model.chunk_size"]


@pytest.mark.parametrize("phrase", [
    "into at least 2 chunks",                # ON-LSTM's chunks
    "is not a key of model={name}, whose",   # a layer's options it does not take
    "is not available for",                  # sru and onlstm run one way
    "(translation) (e.g. model.bidirectional=false)",  # Seq2Seq's encoder
    "is not allowed: it must divide",        # heads dividing num_hiddens
    "One chunk makes both master gates constant",  # the comment once copied
])
def test_each_rule_is_written_once_in_models(phrase):
    counts = {p.relative_to(ROOT).as_posix(): p.read_text().count(phrase)
              for d in ("models", "runner") for p in (ROOT / d).rglob("*.py")}
    holders = {path: n for path, n in counts.items() if n}
    assert list(holders.values()) == [1] and next(iter(holders)).startswith("models/"), holders
