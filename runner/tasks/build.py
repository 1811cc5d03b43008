"""How a task builds its network from conf/model/, and which keys of it that takes: the
constructors' signatures decide, not a list. Validation asks the same question before any work
(runner/run/keys.py).

A recurrent model's file names its layer in `_target_` (the cell contract,
docs/extend-cell.md). Its keys split by who takes them: the network's constructor (LanguageModel,
Seq2Seq: num_hiddens, num_layers, bidirectional, dropout between layers, embed_size, skip,
attention), the layer's own (its constructor's arguments beyond what the network passes it:
nonlinearity, chunk_size, a user's option), and the task's: `cell` (the model's name in
results), `_target_` and `impl` (which implementation of the layer runs, for the device)."""
import inspect

import torch
from hydra.utils import get_object, instantiate
from omegaconf import OmegaConf

from models.core import PASSED as NETWORK_PASSES
from models.core import implementation, resolve_impl

_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
TASK_KEYS = ("cell", "_target_", "impl")


def constructor_keys(cls, runtime: tuple[str, ...] = ()) -> list[str]:
    """The keyword arguments `cls(...)` takes from a config, in the signature's order."""
    params = inspect.signature(cls).parameters.values()
    return [p.name for p in params if p.kind not in _VARIADIC and p.name not in runtime]


def recurrent_keys(network: type, runtime: tuple[str, ...], model) -> list[str]:
    """The keys a recurrent model's file may hold: the task's, the network's and the layer's
    own. Raises what get_object raises when `_target_` names no class."""
    own = constructor_keys(get_object(model["_target_"]), NETWORK_PASSES)
    mine = constructor_keys(network, (*runtime, "layer", "name"))
    return [*TASK_KEYS, *mine, *(key for key in own if key not in mine)]


def recurrent_network(network: type, model, device="cpu", **runtime):
    """`network` (LanguageModel, Seq2Seq) around the layer `model._target_` names, computed by
    model.impl's choice for the device, its own options bound; `runtime`: the vocabularies'
    sizes."""
    kwargs = OmegaConf.to_container(model, resolve=True)
    name, impl = kwargs.pop("cell"), kwargs.pop("impl", "auto")
    mine = constructor_keys(network, (*runtime, "layer", "name"))
    network_kwargs = {key: kwargs.pop(key) for key in list(kwargs) if key in mine}
    layer = instantiate(kwargs, _partial_=True)  # `_target_` and the layer's own options
    layer = implementation(layer, resolve_impl(layer, impl, torch.device(device).type))
    return network(layer=layer, name=name, **runtime, **network_kwargs)
