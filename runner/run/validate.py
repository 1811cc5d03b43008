"""Validation of a composed config, before any work starts.

Each rule names a key, what it allows, and an example fix; every broken rule is reported in
one message, one line per key. The rules the models' constructors enforce are written once, in
models/ (models.core.cell_problems, models.transformer.transformer_problems,
models.seq2seq.bidirectional_problems), in this module's form: validation gathers their lines
with its own.
"""
import logging
import math
import re
from numbers import Real

from omegaconf import DictConfig, OmegaConf

from data.iterators import SAMPLINGS
from data.timemachine import TOKEN_KINDS, tokenize
from models.core import CELLS, cell_problems
from models.init import BIASES, SCHEMES
from models.seq2seq import bidirectional_problems
from models.transformer import SIZES, transformer_problems
from runner.errors import ConfigError

log = logging.getLogger(__name__)
_ABSENT = object()
MODELS = (*CELLS, "transformer")  # model.cell names the model in results and reports


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
    ("model.cell", _one_of(MODELS), f"one of {', '.join(MODELS)}", "gru"),
    ("model.dropout", _number(0, 1), "a number in [0, 1)", "0.1"),
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
    ("seed", _int(0), "an integer >= 0", "1"),
    ("device", _device, "auto, cpu, cuda or cuda:N", "cpu"),
    ("threads", _optional(_int(1)), "null (torch's default) or an integer >= 1", "2"),
    ("quiet", _bool, "true or false", "true"),
    ("overwrite", _bool, "true or false", "true"),
]
# Keys only some config files carry (the defaults are the function's): checked when present.
OPTIONAL_RULES = [
    ("init.embeddings", _bool, "true or false (false: embedding tables keep their init)",
     "false"),
    ("init.biases", _one_of(BIASES), f"one of {', '.join(BIASES)}", "keep"),
]
TASK_RULES = {
    "language_model": [
        ("data.token", _one_of(TOKEN_KINDS), f"one of {', '.join(TOKEN_KINDS)}", "char"),
        ("data.max_tokens", _optional(_int(1)), "null (whole corpus) or an integer >= 1", "10000"),
        ("data.val_tokens", _int(2), "an integer >= 2", "2000"),
        ("data.sampling", _one_of(SAMPLINGS), f"one of {', '.join(SAMPLINGS)}", "random"),
        # the text generated after training: language models only
        ("sample.prefix", lambda v: isinstance(v, str) and v.strip() != "",
         "a non-empty string", "'time traveller'"),
        ("sample.num_preds", _int(0), "an integer >= 0", "50"),
    ],
    "translation": [
        ("data.num_examples", _int(1), "an integer >= 1 (training: the pairs on file lines "
         "0..N, as d2l; 0 would leave nothing to hold out)", "600"),
        ("data.val_pairs", _int(1), "an integer >= 1 (held-out pairs, taken after the "
         "training lines)", "500"),
        ("data.zip_sha1", _optional(lambda v: isinstance(v, str) and re.fullmatch("[0-9a-f]{40}",
                                                                                 v)),
         "null or 40 lowercase hex digits", "null"),
    ],
}
# by model family (the transformer, or a recurrent cell), then by (task, family); the rules
# the models' constructors enforce are theirs (_model_problems)
FAMILY_RULES = {
    "recurrent": [
        ("model.num_hiddens", _int(1), "an integer >= 1", "256"),
        ("model.num_layers", _int(1), "an integer >= 1", "2"),
        ("model.bidirectional", _bool, "true or false", "false"),
        ("model.embed_size", _optional(_int(1)), "null (one-hot) or an integer >= 1", "32"),
    ],
    "transformer": [
        ("model.norm_first", _bool, "true (pre-LN) or false (post-LN)", "true"),
    ],
    ("translation", "recurrent"): [
        ("model.attention", _bool, "true or false", "true"),
    ],
}


def validate(cfg: DictConfig) -> None:
    problems = []
    task = OmegaConf.select(cfg, "data.task", default="language_model")
    if task not in TASK_RULES:
        raise ConfigError(f"invalid config:\n  data.task={task!r} is not allowed: it must be one "
                          f"of {', '.join(TASK_RULES)} (e.g. data=tatoeba)")
    family = "transformer" if _get(cfg, "model.cell") == "transformer" else "recurrent"
    rules = (RULES + TASK_RULES[task] + FAMILY_RULES[family]
             + FAMILY_RULES.get((task, family), []))
    problems += [f"{key}={value!r} is not allowed: config numbers must be finite (e.g. "
                 f"{key}=1)" for key, value in _non_finite(OmegaConf.to_container(cfg))]
    optional, bad = {key for key, *_ in OPTIONAL_RULES}, set()
    for key, ok, allowed, example in rules + OPTIONAL_RULES:
        value = _get(cfg, key)
        if value is _ABSENT and key in optional:
            continue
        if value is _ABSENT:
            problems.append(f"{key} is missing: it must be {allowed} (add +{key}={example})")
            bad.add(key)
        elif not ok(value):
            problems.append(f"{key}={value!r} is not allowed: it must be {allowed} "
                            f"(e.g. {key}={example})")
            bad.add(key)
    problems += _model_problems(cfg, task, family, bad)
    if not problems and family == "transformer":  # it assumes each key valid on its own
        problems += _max_len_problems(cfg, task)
    if problems:
        # the model's lines first, its own rules' among them (a stable sort keeps each order)
        problems.sort(key=lambda line: not line.startswith("model."))
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def _non_finite(node, prefix=""):
    """(dotted key, value) of every inf or NaN in a config: a run would record them as null
    (JSON has neither), and then fail to recognise its own result."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, dict | list):
            yield from _non_finite(value, name + ".")
        elif isinstance(value, float) and not math.isfinite(value):
            yield name, value


def _get(cfg, key):
    return OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)


def _model_problems(cfg, task, family, bad) -> list[str]:
    """The rules of the model's own constructor (models/), for the keys the config sets (one
    left out takes the constructor's default). A recurrent core's rules wait for the keys of
    the tables above that they read; a transformer's check their own keys."""
    m = cfg.model
    if family == "transformer":
        options = {key: m[key] for key in (*SIZES, "positional") if key in m}
        return transformer_problems(m.cell, **options)
    if bad & {"model.cell", "model.num_hiddens", "model.bidirectional"}:
        return []
    options = {key: m[key] for key in ("bidirectional", "nonlinearity", "skip", "chunk_size")
               if key in m}
    if task != "translation":  # models.LanguageModel
        return cell_problems(m.cell, m.num_hiddens, **options)
    # models.Seq2Seq refuses a bidirectional encoder, then builds its cores one way
    return (bidirectional_problems(options.pop("bidirectional", False))
            + cell_problems(m.cell, m.num_hiddens, **options))


def _max_len_problems(cfg, task) -> list[str]:
    """A transformer's windows against model.max_len (runner/tasks/translation.py checks the
    held-out sentences once they are read). Without model.max_len (or, for a language model,
    model.context) the constructor's default holds, and the model refuses a longer input."""
    m, problems = cfg.model, []
    if "max_len" not in m or (task == "language_model" and "context" not in m):
        return []
    if task == "language_model":
        window = m.context + cfg.data.num_steps
        prefix = len(tokenize([cfg.sample.prefix], cfg.data.token))
        if m.max_len < max(window, prefix):
            problems.append(
                f"model.max_len={m.max_len} is too short: it must be at least model.context + "
                f"data.num_steps = {window} and the sample prefix's {prefix} tokens (e.g. "
                f"model.max_len={max(window, prefix)})")
    elif m.max_len < cfg.data.num_steps:
        problems.append(f"model.max_len={m.max_len} is too short: it must be at least "
                        f"data.num_steps={cfg.data.num_steps} (e.g. model.max_len=1024)")
    return problems
