"""Errors raised before a run starts (Hydra composing the config, the sweeper's checks,
Hydra making the output folder), as bad input: one message in validation's form, where the
error names a key, and exit code 2 (runner/__main__.py). Classified by their types: Hydra's
exceptions, the OmegaConf error that caused one; an OSError, which Hydra gives no type of
its own, by where it was raised (runner/hydra_private.py)."""
import difflib

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import (
    ConfigCompositionException,
    HydraException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from data import DataError
from runner.errors import ConfigError
from runner.hydra_private import job_folder_error
from runner.run.output import folder_problem


def bad_input(e: Exception, overrides: list[str] = ()) -> str | None:
    """The one message for an error raised before any work that is the input's fault; None
    for any other. `overrides`: the command line's (an unknown key's message names the one
    that set it). Hydra's own messages are put in validation's form where they name a key."""
    if isinstance(e, ConfigError | DataError):
        return str(e)
    if isinstance(e, MissingConfigException) and e.options and e.missing_cfg_file:
        group, _, value = e.missing_cfg_file.rpartition("/")  # model/nosuch
        return (f"invalid config:\n  {group}={value} is not allowed: it must be one of "
                f"{', '.join(e.options)} (e.g. {group}={e.options[0]})")
    if isinstance(e, ConfigCompositionException) and (line := unknown_key(e, overrides)):
        return f"invalid config:\n  {line}"
    if isinstance(e, HydraException | OmegaConfBaseException):
        text = str(e).split("Config search path:")[0]
        if isinstance(e.__cause__, OmegaConfBaseException):
            text += "\n" + str(e.__cause__).splitlines()[0]
        text = "; ".join(line.strip() for line in text.splitlines() if line.strip())
        if isinstance(e, OverrideParseException):
            text = f"cannot parse the override {e.override!r}: {text}"
        return f"invalid config: {text}"
    if isinstance(e, OSError) and job_folder_error(e):  # Hydra making the job's folder
        return folder_problem(e.filename or "?", e.strerror or str(e))
    return None


def unknown_key(e: ConfigCompositionException, overrides: list[str]) -> str | None:
    """`model.num_hidden=16`, an override of a key the config lacks (Hydra: a composition
    error caused by OmegaConf's missing-key error): the line naming it, the keys there are
    and the nearest one."""
    cause = e.__cause__
    if not isinstance(cause, ConfigAttributeError | ConfigKeyError) or not cause.full_key:
        return None
    missing = str(cause.full_key)  # model.num_hidden, or modle
    override = next((o for o in parsed(overrides) if o.key_or_group == missing
                     or o.key_or_group.startswith(missing + ".")), None)
    if override is None:
        return None
    key, value = override.key_or_group, override.input_line.partition("=")[2]
    parent, _, leaf = missing.rpartition(".")
    node = cause.parent_node
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


def parsed(overrides: list[str]) -> list:
    """The command line's plain overrides (not its flags), each as Hydra parses it."""
    parser, found = OverridesParser.create(), []
    for arg in overrides:
        if "=" in arg and not arg.startswith("-"):
            try:
                found += parser.parse_overrides([arg])
            except OverrideParseException:
                continue
    return found
