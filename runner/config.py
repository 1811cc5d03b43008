"""Validation of a composed config, before any work starts.

Each rule names a key, what it allows, and an example fix; every broken rule is reported in
one message, one line per key.
"""
import re
from numbers import Real

from omegaconf import DictConfig, OmegaConf

from data.iterators import SAMPLINGS, min_tokens
from data.timemachine import TOKEN_KINDS
from models.core import CELLS, NONLINEARITIES
from models.init import SCHEMES
from runner.errors import ConfigError

_ABSENT = object()


def _int(lo):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _number(lo, hi=None, lo_open=False, hi_open=True):
    def ok(v):
        if isinstance(v, bool) or not isinstance(v, Real) or v != v:  # v != v: NaN
            return False
        above = v > lo if lo_open else v >= lo
        return above and (hi is None or (v < hi if hi_open else v <= hi))
    return ok


def _optional(check):
    return lambda v: v is None or check(v)


def _one_of(options):
    return lambda v: v in options


def _bool(v):
    return isinstance(v, bool)


def _device(v):
    return isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None


# key, check, what is allowed, an example value
RULES = [
    ("model.cell", _one_of(CELLS), f"one of {', '.join(CELLS)}", "gru"),
    ("model.num_hiddens", _int(1), "an integer >= 1", "256"),
    ("model.num_layers", _int(1), "an integer >= 1", "2"),
    ("model.bidirectional", _bool, "true or false", "false"),
    ("model.dropout", _number(0, 1), "a number in [0, 1)", "0.1"),
    ("model.embed_size", _optional(_int(1)), "null (one-hot) or an integer >= 1", "32"),
    ("data.min_freq", _int(0), "an integer >= 0", "0"),
    ("data.batch_size", _int(1), "an integer >= 1", "32"),
    ("data.num_steps", _int(1), "an integer >= 1", "35"),
    ("data.download", _bool, "true or false", "false"),
    ("data.sha1", _optional(lambda v: isinstance(v, str) and re.fullmatch("[0-9a-f]{40}", v)),
     "null or 40 lowercase hex digits", "null"),
    ("init.scheme", _one_of(SCHEMES), f"one of {', '.join(SCHEMES)}", "xavier_uniform"),
    ("optim.lr", _number(0, lo_open=True), "a number > 0", "0.1"),
    ("train.num_epochs", _int(1), "an integer >= 1", "50"),
    ("train.grad_clip", _optional(_number(0, lo_open=True)), "null (off) or a number > 0", "1"),
    ("train.warmup", _number(0, 1), "a fraction of all steps in [0, 1)", "0.05"),
    ("train.eval_every", _int(1), "an integer >= 1 (epochs)", "10"),
    ("sample.prefix", lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string",
     "'time traveller'"),
    ("sample.num_preds", _int(0), "an integer >= 0", "50"),
    ("seed", _int(0), "an integer >= 0", "1"),
    ("device", _device, "auto, cpu, cuda or cuda:N", "cpu"),
    ("threads", _optional(_int(1)), "null (torch's default) or an integer >= 1", "2"),
    ("quiet", _bool, "true or false", "true"),
    ("overwrite", _bool, "true or false", "true"),
]
TASK_RULES = {
    "language_model": [
        ("data.token", _one_of(TOKEN_KINDS), f"one of {', '.join(TOKEN_KINDS)}", "char"),
        ("data.max_tokens", _optional(_int(1)), "null (whole corpus) or an integer >= 1", "10000"),
        ("data.val_tokens", _int(2), "an integer >= 2", "2000"),
        ("data.sampling", _one_of(SAMPLINGS), f"one of {', '.join(SAMPLINGS)}", "random"),
    ],
    "translation": [
        ("data.num_examples", _int(0), "an integer >= 0 (0 = every pair)", "600"),
        ("data.val_fraction", _number(0, 1, lo_open=True), "a fraction in (0, 1)", "0.1"),
        ("data.split_seed", _int(0), "an integer >= 0", "0"),
        ("model.attention", _bool, "true or false", "true"),
        ("model.bidirectional", lambda v: v is False, "false (translation)", "false"),
    ],
}


def validate(cfg: DictConfig) -> None:
    problems = []
    task = OmegaConf.select(cfg, "data.task", default="language_model")
    if task not in TASK_RULES:
        raise ConfigError(f"invalid config:\n  data.task={task!r} is not allowed: it must be one "
                          f"of {', '.join(TASK_RULES)} (e.g. data=tatoeba)")
    for key, ok, allowed, example in RULES + TASK_RULES[task]:
        value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
        if value is _ABSENT:
            problems.append(f"{key} is missing: it must be {allowed} (add +{key}={example})")
        elif not ok(value):
            problems.append(f"{key}={value!r} is not allowed: it must be {allowed} "
                            f"(e.g. {key}={example})")
    nonlinearity = OmegaConf.select(cfg, "model.nonlinearity", default="tanh")
    if nonlinearity not in NONLINEARITIES:
        problems.append(f"model.nonlinearity={nonlinearity!r} is not allowed: it must be one "
                        f"of {', '.join(NONLINEARITIES)} (e.g. model.nonlinearity=relu)")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def check_fits_data(cfg: DictConfig, train_tokens: int, val_tokens: int) -> None:
    """The corpus must hold at least one full training batch and one held-out sequence."""
    b, t = cfg.data.batch_size, cfg.data.num_steps
    need = min_tokens(b, t)
    if train_tokens < need:
        raise ConfigError(
            f"data.num_steps={t} with data.batch_size={b} needs at least {need} training "
            f"tokens, but the corpus gives {train_tokens} (data.max_tokens="
            f"{cfg.data.max_tokens}): lower data.num_steps or data.batch_size, or raise "
            f"data.max_tokens")
    if val_tokens < t + 1:
        raise ConfigError(
            f"data.num_steps={t} needs at least {t + 1} held-out tokens, but there are "
            f"{val_tokens} (data.val_tokens={cfg.data.val_tokens}; the corpus has too few "
            f"tokens after the training slice): lower data.num_steps or data.max_tokens, or "
            f"raise data.val_tokens")
