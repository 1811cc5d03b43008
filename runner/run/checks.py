"""The checks validation's rules are made of, and the lines a broken rule gives: `key=value is
not allowed: it must be ... (e.g. key=...)`, or `key is missing`."""
import inspect
import math
import re
from numbers import Real

from omegaconf import OmegaConf

ABSENT = object()


def integer(lo):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo


def number(lo=-math.inf, hi=None, lo_open=False, hi_open=True):
    def ok(v):
        if isinstance(v, bool) or not isinstance(v, Real) or v != v:  # v != v: NaN
            return False
        above = v > lo if lo_open else v >= lo
        return above and (hi is None or (v < hi if hi_open else v <= hi))
    return ok


def optional(check):
    return lambda v: v is None or check(v)


def one_of(options):
    return lambda v: v in options


def boolean(v):
    return isinstance(v, bool)


def device(v):
    return isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None


def get(cfg, key):
    return OmegaConf.select(cfg, key, default=ABSENT, throw_on_missing=False)


def rule_problems(cfg, rules, bad: set, optional=False) -> list[str]:
    """The lines of the rules `cfg` breaks; their keys are added to `bad`. A key an optional
    rule names is checked only when present."""
    problems = []
    for key, ok, allowed, example in rules:
        value = get(cfg, key)
        if value is ABSENT and optional:
            continue
        if value is ABSENT:
            problems.append(f"{key} is missing: it must be {allowed} (add +{key}={example})")
            bad.add(key)
        elif key not in bad and not ok(value):
            problems.append(f"{key}={value!r} is not allowed: it must be {allowed} "
                            f"(e.g. {key}={example})")
            bad.add(key)
    return problems


def missing_arguments(prefix: str, node, fn, skip=(), covered=()) -> list[str]:
    """A config node whose keys are `fn`'s arguments (a `_target_`'s constructor): each
    argument it needs and lacks (but those in `covered`, whose own rules say so). A key it
    does not take is runner/run/keys.py's."""
    params = {name: p for name, p in inspect.signature(fn).parameters.items()
              if name not in ("self", *skip)
              and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    keys = [k for k in node if k != "_target_"]
    problems = []
    for name, p in params.items():
        if p.default is p.empty and name not in keys and f"{prefix}.{name}" not in covered:
            problems.append(f"{prefix}.{name} is missing: {node.get('_target_')} needs it "
                            f"(e.g. +{prefix}.{name}=...)")
    return problems
