"""Helpers the tests import: a tiny generated corpus, the real config composed (and shrunk),
and Markdown tables read back. Fixtures built on them are in conftest.py."""
import contextlib
import functools
import importlib.util
import io
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.singleton import Singleton
from hydra.utils import get_object
from omegaconf import OmegaConf

import runner.__main__ as entry
from data.tiny import WORDS, write_corpus  # noqa: F401 (the tests' tiny corpus)
from models.core import implementation
from runner.tasks.build import NETWORK_PASSES, constructor_keys

CONF = Path(__file__).resolve().parent.parent / "conf"


def tiny_overrides(root: Path) -> list[str]:
    return [f"data.root={root}", "data.file=tiny.txt", "data.sha1=null", "data.download=false",
            "data.max_tokens=3000", "data.val_tokens=600", "data.batch_size=8",
            "data.num_steps=10", "model.num_hiddens=16", "train.num_epochs=3",
            "train.eval_every=1", "quiet=true", "device=cpu", "sample.num_preds=10",
            "store=null"]  # no test reuses another's run, unless it names a store


# The companion note's regression task (data=synthetic), shrunk: a few steps of a 2-layer,
# 8-wide encoder on 4 features; it reads no file.
TINY_REGRESSION = ["data=synthetic", "data.dim=4", "data.steps_per_epoch=3",
                   "data.eval_batches=4", "model.num_hiddens=8", "model.num_heads=2",
                   "model.ffn_num_hiddens=16", "model.num_layers=2", "train.num_epochs=2",
                   "quiet=true", "device=cpu", "store=null"]


def compose_config(*overrides: str, hydra_node: bool = False):
    """The real config; with hydra_node, Hydra's own settings under `hydra` too."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra_node)


def tables_in(text: str) -> list[list[list[str]]]:
    """Markdown tables as lists of rows of stripped cells (the separator row dropped)."""
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                tables.append(current)
            if not line.startswith("| ---"):
                current.append([c.strip() for c in line.strip("|").split("|")])
        else:
            current = None
    return tables


def layer(name: str, impl: str | None = None, **own):
    """The recurrent layer conf/model/<name>.yaml names in `_target_`, as the task builds it: a
    partial with the file's own options, then `own`; computed by `impl` (default: the file's
    model.impl, and torch.nn's layer where the file says auto)."""
    file = OmegaConf.to_container(OmegaConf.load(CONF / "model" / f"{name}.yaml"))
    cls = get_object(file["_target_"])
    options = {key: file[key] for key in constructor_keys(cls, NETWORK_PASSES) if key in file}
    built = functools.partial(cls, **{**options, **own})
    if not getattr(cls, "implementations", None):
        return built
    impl = impl or file.get("impl", "auto")
    return implementation(built, "nn" if impl == "auto" else impl)
OPTUNA = "hydra_plugins.hydra_optuna_sweeper"  # hparams_search=optuna's sweeper: an extra


def needs(package: str, extra: str | None = None) -> None:
    """Skip without `package`, an optional extra's (pip install -e '.[extra]', the extra
    named as the package by default); fail instead under RUNNER_EXTRAS=required, which CI sets
    once it has installed them all (make install-extras)."""
    if importlib.util.find_spec(package) is None:
        if os.environ.get("RUNNER_EXTRAS") == "required":
            pytest.fail(f"{package} is not installed (make install-extras)")
        pytest.skip(f"{package} not installed: pip install -e '.[{extra or package}]'")


def cli_here(*args: str, env: dict | None = None):
    """`python -m runner ARGS` in this process, through the same entry point
    (runner.__main__.cli): its exit code, stdout and stderr as a CompletedProcess, without the
    ~3 s of CPU a new interpreter spends importing torch and Hydra. For commands that stop
    before any training (bad input, exit 2); what must cross a process boundary (a signal, a
    dead process, the installed command) keeps a subprocess. Hydra's globals (its singletons:
    HydraConfig stays set after a job), the logging it configures, the environment, sys.argv,
    the cwd, torch's threads and the signal handlers are put back."""
    singletons = Singleton.get_state()  # HydraConfig's, the config loader's: as Hydra's tests
    root, saved_env, cwd = logging.getLogger(), dict(os.environ), os.getcwd()
    threads = torch.get_num_threads()  # a run sets its own (threads=)
    handlers, level = root.handlers[:], root.level
    signals = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    out, err, code = io.StringIO(), io.StringIO(), 0
    os.environ.update(env or {})
    GlobalHydra.instance().clear()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                pytest.MonkeyPatch.context() as mp:
            mp.setattr(sys, "argv", [entry.__file__, *args])  # as `python -m runner` sets it
            entry.cli()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        GlobalHydra.instance().clear()
        Singleton.set_state(singletons)
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:], root.level = handlers, level
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(cwd)
        for s, handler in signals.items():
            signal.signal(s, handler)
        torch.set_num_threads(threads)
    return subprocess.CompletedProcess(["runner", *args], code, out.getvalue(), err.getvalue())
