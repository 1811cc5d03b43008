"""Unknown keys, refused before any work: `+model.foo=1` would otherwise pass validation and
fail in a constructor with a TypeError (exit 1, a traceback), or be silently ignored.

Who knows the keys: the model's are the arguments of the constructors the task builds
(its `model_keys`, from their signatures: a user's own cell included); every other section's
are the keys the config files give it, that is the keys of the config composed without the
`+` overrides that add keys (`primary`). data's are its task's constructor's arguments
(validate.py). optim, init and logger are left to their consumers,
which name what they take: torch's optimizer signature (`+optim.betas=[0.9,0.99]` is an
argument), the init scheme's torch function, the trackers (runner/run/options.py,
runner/loggers)."""
import difflib

from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from runner.tasks.build import constructor_keys

# model: the task's network's constructors; data: the task's (validate.py); optim, init and
# logger: their consumers'
CHECKED_ELSEWHERE = ("model", "data", "optim", "init", "logger", "hydra")


def unknown_key_problems(cfg: DictConfig, task_class, primary: DictConfig | None) -> list[str]:
    """One line per key nobody takes, naming the nearest known key. Without `primary` (a
    config composed outside Hydra's command line) only the model's keys are checked."""
    problems = []
    model = cfg.get("model")
    try:
        keys = task_class.model_keys(model) if isinstance(model, DictConfig) else None
    except Exception:  # no `_target_`, or one that cannot be imported: validation says so
        keys = None
    if keys is not None:
        owner = f"model={model.get('cell')}"
        problems += [_line(f"model.{key}", model._get_node(key), owner, keys)
                     for key in model if key not in keys]
    data = cfg.get("data")  # the task's constructor's arguments (the config and file aside)
    keys = constructor_keys(task_class, runtime=("cfg", "path"))
    problems += [_line(f"data.{key}", data._get_node(key), "data", keys)
                 for key in data if key not in (*keys, "_target_")]
    if primary is not None:
        problems += [_line(path, node, owner, known)
                     for path, node, owner, known in _added(cfg, primary)]
    return problems


def _added(node, primary, prefix=""):
    """(dotted key, its node, the section's name, the keys it knows) of every key of `node`
    that `primary` lacks; a section added whole is one key."""
    for key in node:
        if not prefix and key in CHECKED_ELSEWHERE:
            continue
        path = f"{prefix}{key}"
        if key not in primary:
            owner = prefix.rstrip(".") or "the config"
            yield path, node._get_node(key), owner, [str(k) for k in primary]
        elif isinstance(node[key], DictConfig) and isinstance(primary[key], DictConfig):
            yield from _added(node[key], primary[key], path + ".")


def _line(path: str, node, owner: str, keys: list[str]) -> str:
    value = OmegaConf.to_container(node) if isinstance(node, DictConfig) else node._value()
    section, _, key = path.rpartition(".")
    section = f"{section}." if section else ""
    near = difflib.get_close_matches(key, keys, n=1)
    if near:
        return (f"{path}={value!r} is not a key of {owner}: did you mean {section}{near[0]}? "
                f"(the keys: {', '.join(keys)}) (e.g. {section}{near[0]}={value!r})")
    return (f"{path}={value!r} is not a key of {owner}, which takes {', '.join(keys)} "
            f"(e.g. drop +{path})")


def primary_config() -> DictConfig | None:
    """The run's config composed again without the `+` overrides that add keys (a `+group=
    option` choice stays, and so do its keys): the keys the config files give. None outside
    a Hydra application (a test's compose() passes its own primary to validate)."""
    if not (HydraConfig.initialized() and GlobalHydra.instance().is_initialized()):
        return None
    hydra = HydraConfig.get()
    kept = without_added_keys(list(hydra.overrides.task), hydra.runtime.choices)
    return compose(hydra.job.config_name, overrides=kept)


def without_added_keys(overrides: list[str], choices) -> list[str]:
    """`overrides` less the `+key=value` ones that add a key; a `+group=option` (a group
    named in `choices`, Hydra's runtime.choices) stays: its keys are the config files'."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [o.input_line for o in parsed
            if not (o.is_add() or o.is_force_add()) or o.key_or_group in choices]
