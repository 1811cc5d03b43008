"""Validation of a composed config, before any work starts.

Each rule names a key, what it allows, and an example fix; every broken rule is reported in
one message, one line per key. The rules the models' constructors enforce are written once, in
models/ (models.core.core_problems with a layer's own `problems`,
models.transformer.transformer_problems, models.seq2seq.bidirectional_problems), in this
module's form: validation gathers their lines with its own. The optimizer's arguments are
checked by torch itself: validation builds the optimizer on a dummy parameter and names the
key it refuses. A key nobody takes is named with the nearest known key (runner/run/keys.py).
"""
import logging
import math
import re

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from data.iterators import SAMPLINGS
from data.timemachine import TOKEN_KINDS, tokenize
from models.core import core_problems
from models.init import BIASES, SCHEMES
from models.seq2seq import bidirectional_problems
from models.transformer import SIZES, transformer_problems
from runner.config_dir import CONF_DIR
from runner.errors import ConfigError
from runner.loggers import logger_problems
from runner.result import RETIRED
from runner.run.bounds import bound_problem, bound_problems, size_problems
from runner.run.checks import (
    boolean,
    device,
    get,
    integer,
    missing_arguments,
    number,
    one_of,
    optional,
    rule_problems,
)
from runner.run.keys import primary_config, unknown_key_problems
from runner.run.objective import objective_problems
from runner.run.options import init_problems, optim_problems
from runner.tasks import task_class
from runner.tasks.build import NETWORK_PASSES, constructor_keys

log = logging.getLogger(__name__)
MODEL_DIR = CONF_DIR / "model"  # the package's models


# key, check, what is allowed, an example value
RULES = [
    # the model's name in results, reports and folders (conf/model/ registers the models); a
    # retired name passes here, for _model_problems to say what it is now
    ("model.cell", lambda v: isinstance(v, str) and v.strip() != "",
     "a name (the model's in results: transformer, or a recurrent cell's)", "gru"),
    ("model.dropout", number(0, 1), "a number in [0, 1)", "0.1"),
    ("data.batch_size", integer(1), "an integer >= 1", "32"),
    ("data.num_steps", integer(1), "an integer >= 1", "35"),
    ("init.scheme", one_of(SCHEMES), f"one of {', '.join(SCHEMES)}", "xavier_uniform"),
    ("optim.lr", number(0, lo_open=True), "a number > 0", "0.1"),
    ("train.num_epochs", integer(1), "an integer >= 1", "50"),
    ("train.grad_clip", optional(number(0, lo_open=True)), "null (off) or a number > 0", "1"),
    ("train.warmup", number(0, 1), "a fraction of all steps in [0, 1)", "0.05"),
    ("train.eval_every", integer(1), "an integer >= 1 (epochs)", "10"),
    ("train.checkpoint_every", optional(integer(1)),
     "null (about every 5 minutes) or an integer >= 1 (epochs)", "10"),
    ("train.keep_checkpoint", boolean, "true or false", "true"),
    ("seed", integer(0), "an integer >= 0", "1"),
    ("device", device, "auto, cpu, cuda or cuda:N", "cpu"),
    ("threads", optional(integer(1)), "null (torch's default) or an integer >= 1", "2"),
    ("quiet", boolean, "true or false", "true"),
    ("overwrite", boolean, "true or false", "true"),
    ("repeats", integer(1), "an integer >= 1 (a sweep's seeds per point)", "1"),
    ("store", optional(lambda v: isinstance(v, str) and v.strip() != ""),
     "null (off) or a folder for finished results", "results/store"),
]
# Keys only some config files carry (the defaults are the function's): checked when present.
OPTIONAL_RULES = [
    ("init.embeddings", boolean, "true or false (false: embedding tables keep their init)",
     "false"),
    ("init.biases", one_of(BIASES), f"one of {', '.join(BIASES)}", "keep"),
    ("launcher.jobs_per_device", integer(1), "an integer >= 1 (jobs sharing one device)", "1"),
    ("launcher.pack", integer(1), "an integer >= 1 (a sweep's runs of one point, differing only "
     "by seed, trained together in one process; 1: each alone)", "4"),
    ("hydra.sweeper.max_batch_size", optional(integer(1)),
     "null (every job launched at once) or an integer >= 1 (jobs launched together)", "4"),
]
_SHA1 = optional(lambda v: isinstance(v, str) and re.fullmatch("[0-9a-f]{40}", v))
FILE_RULES = [  # the tasks that read a data file
    ("data.min_freq", integer(0), "an integer >= 0", "0"),
    ("data.download", boolean, "true or false", "false"),
    ("data.sha1", _SHA1, "null or 40 lowercase hex digits", "null"),
]
TASK_RULES = {
    "language_model": [*FILE_RULES,
        ("data.token", one_of(TOKEN_KINDS), f"one of {', '.join(TOKEN_KINDS)}", "char"),
        ("data.max_tokens", optional(integer(1)), "null (whole corpus) or an integer >= 1",
         "10000"),
        ("data.val_tokens", integer(2), "an integer >= 2", "2000"),
        ("data.sampling", one_of(SAMPLINGS), f"one of {', '.join(SAMPLINGS)}", "random"),
        # the text generated after training: language models only
        ("sample.prefix", lambda v: isinstance(v, str) and v.strip() != "",
         "a non-empty string", "'time traveller'"),
        ("sample.num_preds", integer(0), "an integer >= 0", "50"),
    ],
    "translation": [*FILE_RULES,
        ("data.num_examples", integer(1), "an integer >= 1 (training: the pairs on file lines "
         "0..N, as d2l; 0 would leave nothing to hold out)", "600"),
        ("data.val_pairs", integer(1), "an integer >= 1 (held-out pairs, taken after the "
         "training lines)", "500"),
        ("data.zip_sha1", _SHA1, "null or 40 lowercase hex digits", "null"),
    ],
    "regression": [  # the companion note's synthetic task (conf/data/synthetic.yaml)
        ("data.dim", integer(1), "an integer >= 1 (features of a and of b)", "50"),
        ("data.steps_per_epoch", integer(1), "an integer >= 1 (optimizer steps)", "100"),
        ("data.eval_batches", integer(1), "an integer >= 1 (fresh batches scored)", "1000"),
    ],
}
# by model family (the transformer, or a recurrent cell), then by (task, family); the rules
# the models' constructors enforce are theirs (_model_problems)
FAMILY_RULES = {
    "recurrent": [
        ("model.num_hiddens", integer(1), "an integer >= 1", "256"),
        ("model.num_layers", integer(1), "an integer >= 1", "2"),
        ("model.bidirectional", boolean, "true or false", "false"),
        ("model.embed_size", optional(integer(1)), "null (one-hot) or an integer >= 1", "32"),
    ],
    "transformer": [
        ("model.norm_first", boolean, "true (pre-LN) or false (post-LN)", "true"),
    ],
    ("translation", "recurrent"): [
        ("model.attention", boolean, "true or false", "true"),
    ],
    ("regression", "recurrent"): [
        ("model.cell", one_of(("transformer",)), "transformer: data.task=regression trains "
         "the companion note's Transformer encoder (models.EncoderRegressor)", "transformer"),
    ],
    ("regression", "transformer"): [
        ("model.batch_first", boolean, "true or false (false: the note's layout, attention "
         "across the batch)", "false"),
    ],
}


def validate(cfg: DictConfig, primary: DictConfig | None = None) -> None:
    """Raise ConfigError naming every broken rule and every key nobody takes. `primary`: the
    config composed without its `+` overrides, whose keys are the known ones (runner/run/
    keys.py); by default recomposed under Hydra, and outside it only the model's are known."""
    problems = []
    task_cls = task_class(cfg)  # data._target_: a Task it can import, or one line why not
    task = cfg.data.get("task")
    family = "transformer" if get(cfg, "model.cell") == "transformer" else "recurrent"
    rules = (RULES + TASK_RULES.get(task, []) + FAMILY_RULES[family]
             + FAMILY_RULES.get((task, family), []))
    problems += missing_arguments("data", cfg.data, task_cls.__init__, skip=("cfg", "path"),
                                  covered={rule[0] for rule in rules})
    non_finite = dict(_non_finite(OmegaConf.to_container(cfg)))
    problems += [f"{key}={value!r} is not allowed: config numbers must be finite (e.g. "
                 f"{key}=1)" for key, value in non_finite.items()]
    bad = set(non_finite)
    problems += rule_problems(cfg, rules, bad)
    problems += rule_problems(cfg, OPTIONAL_RULES, bad, optional=True)
    problems += bound_problems(cfg, bad)  # values each rule allows, too large to run
    problems += _model_problems(cfg, task, family, bad)
    problems += init_problems(cfg, bad)
    problems += optim_problems(cfg, bad)
    problems += logger_problems(cfg.get("logger"))
    problems += objective_problems(cfg.get("objective"), task, task_cls)
    problems += unknown_key_problems(cfg, task_cls,
                                     primary if primary is not None else primary_config())
    if not problems and family == "transformer":  # it assumes each key valid on its own
        problems += _max_len_problems(cfg, task)
    if not problems:  # a network too large for the device's memory, with the estimate
        problems += size_problems(cfg, bad, family == "transformer")
    if problems:
        # the model's lines first, its own rules' among them (a stable sort keeps each order)
        problems.sort(key=lambda line: not line.startswith("model."))
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def rule_problem(key: str, value) -> str | None:
    """The line for `key=value` when it breaks the key's rule in RULES or OPTIONAL_RULES, for
    the checks made before a run's config exists (the sweeper's repeats, launcher settings)."""
    for rule_key, ok, allowed, example in RULES + OPTIONAL_RULES:
        if rule_key == key and not ok(value):
            return f"{key}={value!r} is not allowed: it must be {allowed} (e.g. {key}={example})"
    return bound_problem(key, value)


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


def _model_problems(cfg, task, family, bad) -> list[str]:
    """The rules of the model's own constructors (models/), for the keys the config sets (one
    left out takes the constructor's default). A recurrent core's: the layer `_target_` names
    (its signature and declarations, models/core.py), with the keys of the tables above that
    they read; a transformer's check their own keys."""
    m = cfg.model
    if family == "transformer":
        options = {key: m[key] for key in (*SIZES, "positional") if key in m}
        return transformer_problems(m.cell, **options)
    if m.cell in RETIRED:
        return [f"model.cell={m.cell!r} is now model.cell={RETIRED[m.cell]} model.impl=fused: "
                f"the same function, one cell name (e.g. model={m.cell}, whose config says so)"]
    if "_target_" not in m:
        return ["model._target_ is missing: a recurrent model's file names its layer class "
                "(e.g. _target_: models.cells.gru, as conf/model/gru.yaml)"]
    try:
        layer = get_object(m._target_)
    except Exception as e:  # what importing a user's module raises, whatever it is
        reason = str(e).split("\n")[0]
        return [f"model._target_={m._target_!r} is not allowed: it must name a recurrent layer "
                f"class, importable ({reason}) (e.g. model._target_=models.cells.gru, or "
                f"PYTHONPATH naming the folder of a module of your own)"]
    if mislabel := _mislabel(m.cell, m._target_):
        return [mislabel]
    if bad & {"model.cell", "model.num_hiddens", "model.bidirectional"}:
        return []
    own = {key: m[key] for key in constructor_keys(layer, NETWORK_PASSES) if key in m}
    options = {key: m[key] for key in ("bidirectional", "skip", "impl") if key in m}
    if task != "translation":  # models.LanguageModel
        return core_problems(m.cell, layer, m.num_hiddens, **options, **own)
    # models.Seq2Seq refuses a bidirectional encoder, then builds its cores one way
    return (bidirectional_problems(options.pop("bidirectional", False))
            + core_problems(m.cell, layer, m.num_hiddens, **options, **own))


def _mislabel(cell: str, target: str) -> str | None:
    """model.cell names the model in results; set alone (model.cell=lstm on model=gru) it
    would label one layer with another's name. A name of conf/model/ must come with its layer;
    any other name is the user's."""
    path = MODEL_DIR / f"{cell}.yaml"
    theirs = OmegaConf.load(path).get("_target_") if path.is_file() else None
    if theirs is None or theirs == target:
        return None
    return (f"model.cell={cell!r} is not allowed: it names conf/model/{cell}.yaml, whose layer is "
            f"{theirs}, and this model's is {target}; model.cell only labels results (e.g. "
            f"model.cell=my_{cell}, or model={cell}, which chooses the model)")


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
