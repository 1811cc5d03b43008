"""Errors raised before a run starts (Hydra composing the config, the sweeper's checks,
Hydra making the output folder), as bad input: one message in validation's form, where the
error names a key, and exit code 2 (runner/__main__.py)."""
import difflib
import re
import traceback

from hydra.core import utils as hydra_core_utils
from hydra.errors import (
    ConfigCompositionException,
    HydraException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from data import DataError
from runner.errors import ConfigError
from runner.run.output import folder_problem


def bad_input(e: Exception) -> str | None:
    """The one message for an error raised before any work that is the input's fault; None
    for any other. Hydra's own messages are put in validation's form where they name a key."""
    if isinstance(e, ConfigError | DataError):
        return str(e)
    if isinstance(e, MissingConfigException) and e.options and e.missing_cfg_file:
        group, _, value = e.missing_cfg_file.rpartition("/")  # model/nosuch
        return (f"invalid config:\n  {group}={value} is not allowed: it must be one of "
                f"{', '.join(e.options)} (e.g. {group}={e.options[0]})")
    if isinstance(e, ConfigCompositionException) and (line := unknown_key(e)):
        return f"invalid config:\n  {line}"
    if isinstance(e, HydraException | OmegaConfBaseException):
        text = str(e).split("Config search path:")[0]
        if isinstance(e.__cause__, OmegaConfBaseException):
            text += "\n" + str(e.__cause__).splitlines()[0]
        text = "; ".join(line.strip() for line in text.splitlines() if line.strip())
        if isinstance(e, OverrideParseException):
            text = f"cannot parse the override {e.override!r}: {text}"
        return f"invalid config: {text}"
    if isinstance(e, OSError) and raised_in(e, hydra_core_utils.run_job):  # making the folder
        return folder_problem(e.filename or "?", e.strerror or str(e))
    return None


def unknown_key(e: ConfigCompositionException) -> str | None:
    """`model.num_hidden=16`, a key the config lacks: the line naming it, the keys there are
    and the nearest one."""
    found = re.match(r"Could not override '([^']+)'\.\nTo append to your config use "
                     r"\+\1=(.*)", str(e))
    if not found:
        return None
    key, value = found.groups()
    missing = str(getattr(e.__cause__, "full_key", None) or key)  # model.num_hidden, or modle
    parent, _, leaf = missing.rpartition(".")
    node = getattr(e.__cause__, "parent_node", None)
    keys = [str(k) for k in node.keys() if parent or k != "hydra"] \
        if isinstance(node, DictConfig) else []
    if not keys:
        return (f"{key}={value} is not allowed: there is no key {missing} (e.g. +{key}={value} "
                f"to add it)")
    near = difflib.get_close_matches(leaf, keys, n=1)
    fixed = f"{parent + '.' if parent else ''}{near[0]}{key[len(missing):]}" if near else None
    instead = f"{fixed}={value}, or " if near else ""
    return (f"{key}={value} is not allowed: {parent or 'the config'} has no key {leaf}; it "
            f"must be one of {', '.join(keys)} (e.g. {instead}+{key}={value} to add a key)")


def raised_in(e: BaseException, function) -> bool:
    """Whether `function` is on the stack `e` was raised through."""
    return any(frame.f_code is function.__code__
               for frame, _ in traceback.walk_tb(e.__traceback__))
