"""The init scheme's and the optimizer's own options, checked against the torch functions
that take them: an init option must be a keyword of the scheme's torch.nn.init function, with
a value it accepts; the optimizer is built, as the run builds it, on a dummy parameter, and
the option torch refuses is named."""
import difflib
import inspect

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from models.init import SCHEMES
from runner.run.checks import number, one_of, rule_problems

# A scheme's own options (conf/init/): the keyword arguments of its torch.nn.init function,
# which models.init_weights passes on. Those below are checked when present; an option the
# function does not take is refused (init_problems). init.a of `uniform` is U(-a, a), unless
# init.b is given too: then U(a, b), a < b.
_GAIN = [("init.gain", number(0, lo_open=True), "a number > 0", "1.0")]
# torch.nn.init.calculate_gain's nonlinearities; kaiming's fan modes
NONLINEARITIES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                  "conv_transpose2d", "conv_transpose3d", "sigmoid", "tanh", "relu",
                  "leaky_relu", "selu")
_KAIMING = [("init.a", number(), "a number (leaky_relu's negative slope)", "0"),
            ("init.mode", one_of(("fan_in", "fan_out")), "fan_in or fan_out", "fan_in"),
            ("init.nonlinearity", one_of(NONLINEARITIES),
             f"one of {', '.join(NONLINEARITIES)}", "leaky_relu")]
INIT_RULES = {
    "normal": [("init.mean", number(), "a number", "0.0"),
               ("init.std", number(0, lo_open=True), "a number > 0", "0.01")],
    "uniform": [("init.a", number(0, lo_open=True), "a number > 0 (U(-a, a))", "0.1"),
                ("init.b", number(), "a number", "0.1")],
    "xavier_uniform": _GAIN, "xavier_normal": _GAIN, "orthogonal": _GAIN,
    "kaiming_uniform": _KAIMING, "kaiming_normal": _KAIMING,
}
# What an optimizer option must be, for the line that names it (torch's message says why);
# any option is checked by building the optimizer (optim_problems), listed here or not.
OPTIM_OPTIONS = {
    "momentum": "a number >= 0",
    "dampening": "a number",
    "weight_decay": "a number >= 0",
    "nesterov": "false unless optim.momentum > 0 and optim.dampening=0",
    "betas": "two numbers in [0, 1)",
    "eps": "a number >= 0",
    "amsgrad": "true or false",
    "maximize": "true or false",
}


def _init_options(scheme: str) -> tuple[str, ...]:
    """The options a scheme takes: its torch.nn.init function's keyword arguments."""
    fill = SCHEMES[scheme]
    if fill is None:  # default: PyTorch's own initialisation, no options
        return ()
    return tuple(name for name in inspect.signature(fill).parameters
                 if name not in ("tensor", "generator"))


def init_problems(cfg, bad) -> list[str]:
    """The init scheme's options (conf/init/, models/init.py): each one the scheme's torch
    function takes, with a value it accepts. Checked here, not when the model is built."""
    init = cfg.get("init")
    if not isinstance(init, DictConfig) or "init.scheme" in bad:
        return []
    scheme, problems = init.scheme, []
    takes = _init_options(scheme)
    for key in init:
        if key in ("_target_", "_partial_", "scheme", "embeddings", "biases") or key in takes:
            continue
        other = next((s for s in SCHEMES if key in _init_options(s)), None)
        instead = f", or init={other}, a scheme that takes it" if other else ""
        problems.append(f"init.{key}={init[key]!r} is not allowed: init.scheme={scheme} takes "
                        f"{', '.join(takes) or 'no options'} (e.g. ~init.{key}{instead})")
    if scheme == "default":
        for key, kept in (("embeddings", True), ("biases", "zero")):
            if key in init and f"init.{key}" not in bad and init[key] != kept:
                problems.append(f"init.{key}={init[key]!r} is not allowed: init.scheme=default "
                                f"keeps PyTorch's own initialisation and takes no options (e.g. "
                                f"~init.{key}, or init=xavier_uniform_d2l)")
        return problems
    rules = INIT_RULES.get(scheme, [])
    if scheme == "uniform" and "b" in init:  # U(a, b)
        rules = [("init.a", number(), "a number below init.b", "0")] + rules[1:]
    problems += rule_problems(cfg, rules, bad, optional=True)
    if (scheme == "uniform" and "b" in init and not {"init.a", "init.b"} & bad
            and not init.a < init.b):
        problems.append(f"init.b={init.b!r} is not allowed: it must be a number above "
                        f"init.a={init.a!r}, U(a, b) (e.g. init.b={init.a + 0.2:g})")
    return problems


def optim_problems(cfg, bad) -> list[str]:
    """The optimizer's arguments, as torch checks them: it is built, the way the run builds it,
    on a dummy parameter. An option torch refuses is named by building the optimizer with that
    option alone (the lr aside); one refused only with others names them all."""
    optim = cfg.get("optim")
    if not isinstance(optim, DictConfig) or "_target_" not in optim:
        return []
    given = OmegaConf.to_container(optim, resolve=True)
    target = given["_target_"]
    error = _build_error(given)
    if error is None:
        return []
    if isinstance(error, InstantiationException):
        reason = str(error).split("\n")[0].split(", set env var")[0]
        return [f"optim._target_={target!r} is not allowed: it must be an optimizer class "
                f"({reason}) (e.g. optim=sgd)"]
    options = [key for key in given if not key.startswith("_")]
    base = {key: given[key] for key in given if key.startswith("_")}
    if "lr" in given:
        base["lr"] = 0.1 if "optim.lr" in bad else given["lr"]
    problems, culprits = [], 0
    for key in options:
        if f"optim.{key}" in bad:
            continue
        alone = _build_error({**base, key: given[key]})
        if alone is None:
            continue
        culprits += 1
        problems.append(_optim_line(target, key, given[key], alone))
    if not culprits and not {f"optim.{key}" for key in options} & bad:  # only together
        named = " ".join(f"optim.{key}={given[key]!r}" for key in options if key != "lr")
        problems.append(f"{named} are not allowed together: {target} refuses them ({error}) "
                        f"(e.g. optim.{options[-1]}={_default_of(target, options[-1])})")
    return problems


def _build_error(optim: dict) -> Exception | None:
    """What building the optimizer on a dummy parameter raises, if anything."""
    try:
        instantiate(optim)(params=[torch.nn.Parameter(torch.zeros(1))])
    except Exception as e:  # whatever the class raises (betas=[0.9]: an IndexError) is a no
        return e
    return None


def _optim_line(target: str, key: str, value, error: Exception) -> str:
    reason = str(error).split("\n")[0]  # OmegaConf's errors add lines: full_key, object_type
    if isinstance(error, TypeError) and "unexpected keyword argument" in reason:
        takes = [name for name in _optim_signature(target) if name != "params"]
        near = difflib.get_close_matches(key, takes, n=1)  # a typo's nearest option
        fix = f"optim.{near[0]}={value!r}" if near else f"~optim.{key}"
        mean = f"; did you mean optim.{near[0]}?" if near else ""
        return (f"optim.{key}={value!r} is not allowed: {target} takes no option {key}; it "
                f"takes {', '.join(takes)}{mean} (e.g. {fix})")
    why = (f"it must be {OPTIM_OPTIONS[key]} ({target}: {reason})" if key in OPTIM_OPTIONS
           else f"{target} refuses it ({reason})")
    example = f"optim.{key}={_default_of(target, key)}"
    return f"optim.{key}={value!r} is not allowed: {why} (e.g. {example})"


def _optim_signature(target: str) -> dict:
    try:
        return dict(inspect.signature(get_class(target)).parameters)
    except (ValueError, TypeError, ImportError, InstantiationException):
        return {}


def _default_of(target: str, key: str) -> str:
    """The optimizer's own default for `key`, as an override's value."""
    param = _optim_signature(target).get(key)
    if param is None or param.default is inspect.Parameter.empty:
        return "..."
    value = param.default
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, tuple | list):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)
