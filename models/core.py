"""The recurrent core of a network: the layer conf/model/<name>.yaml names in `_target_`,
stacked plainly or with residual or dense connections between layers (models/stack.py).

The network knows a layer by what it declares, never by its name (the cell contract,
docs/extend-cell.md): it is called with `input_size` and `num_hiddens`; one whose constructor
takes `num_layers` (and `dropout`) stacks its own layers (torch.nn's, cuDNN; built once when
the layers are stacked plainly), any other is stacked here one layer at a time; one that takes
`bidirectional` can run both ways; `has_memory_cell` says its state is (h, c); `problems(
num_hiddens, **options)`, if any, gives the rules of its own options; `implementations` maps
model.impl's names to classes computing the same function (models/cells.py)."""
import functools
import inspect

from torch import nn

from models.stack import SKIPS, Stack, layer_input_sizes

IMPLS = ("auto", "nn", "fused")  # model.impl: how a layer is computed, never what
# what the network passes a layer: the rest of its constructor's arguments are its own options
PASSED = ("input_size", "num_hiddens", "num_layers", "bidirectional", "dropout")


def layer_class(layer):
    """The class (or factory) behind `layer`: itself, or what a partial (Hydra's `_partial_`)
    calls. Its attributes are the layer's declarations."""
    while isinstance(layer, functools.partial):
        layer = layer.func
    return layer


def takes(layer, argument: str) -> bool:
    return argument in inspect.signature(layer).parameters


def has_memory_cell(layer) -> bool:
    """Whether the layer's state is a tuple (h, c) rather than one tensor."""
    return getattr(layer_class(layer), "has_memory_cell", False)


def resolve_impl(layer, impl: str, device_type: str) -> str | None:
    """The implementation a run computes `layer` with: one of its `implementations`, or None
    for a layer with one. `auto` is the fastest measured on the device (docs/benchmarks.md):
    the fused layers on CPU where they exist, torch.nn (cuDNN) on GPU."""
    choices = getattr(layer_class(layer), "implementations", None)
    if not choices:
        return None
    if impl == "auto":
        return "fused" if device_type == "cpu" and "fused" in choices else "nn"
    return impl


def implementation(layer, impl: str | None):
    """`layer` computed by `impl` (resolve_impl's answer): the same options, another class."""
    if impl is None:
        return layer
    cls = layer_class(layer).implementations[impl]
    if isinstance(layer, functools.partial):
        return functools.partial(cls, *layer.args, **layer.keywords)
    return cls


def core_problems(name: str, layer, num_hiddens: int, bidirectional: bool = False,
                  skip: str = "none", impl: str = "auto", **options) -> list[str]:
    """The rules a recurrent core's options obey: each broken rule as one line in
    runner/run/validate.py's form, `model.X=<value> ...: it must be ... (e.g. ...)`; `name`
    is the model's (model.cell), `options` the layer's own. Validation reports them with the
    config's other problems before any work; make_core raises them. Empty: all fine."""
    cls = layer_class(layer)
    params = {key: p for key, p in inspect.signature(cls).parameters.items()
              if key not in PASSED and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    unknown = {key: options.pop(key) for key in list(options) if key not in params}
    problems = impl_problems(name, cls, impl)
    if skip not in SKIPS:
        problems.append(f"model.skip={skip!r} is not allowed: it must be one of "
                        f"{', '.join(SKIPS)} (e.g. model.skip=residual)")
    if bidirectional and not takes(layer, "bidirectional"):
        problems.append(f"model.bidirectional=true is not available for {name}, whose layers "
                        f"run one way (e.g. model.bidirectional=false, or model=gru)")
    if own := getattr(cls, "problems", None):  # an option left out: its default, or None
        defaults = {key: None if p.default is p.empty else p.default
                    for key, p in params.items()}
        problems += own(num_hiddens, **{**defaults, **options})
    problems += [f"model.{key}={value!r} is not a key of model={name}, whose layer "
                 f"{cls.__name__} takes {', '.join(params) or 'no options'} (e.g. ~model.{key})"
                 for key, value in unknown.items()]
    return problems


def impl_problems(name: str, cls: type, impl: str) -> list[str]:
    choices = getattr(cls, "implementations", {})
    if impl not in IMPLS:
        return [f"model.impl={impl!r} is not allowed: it must be one of {', '.join(IMPLS)} "
                f"(e.g. model.impl=auto, the fastest for the device)"]
    if impl != "auto" and not choices:
        return [f"model.impl={impl} does not apply: {name} has one implementation (e.g. "
                f"model.impl=auto)"]
    if impl != "auto" and impl not in choices:
        return [f"model.impl={impl} does not exist for {name}: it has {', '.join(choices)} "
                f"(e.g. model.impl=auto)"]
    return []


def make_core(layer, input_size: int, num_hiddens: int, num_layers: int = 1,
              bidirectional: bool = False, dropout: float = 0.0, skip: str = "none",
              name: str | None = None) -> nn.Module:
    """`layer`: a class or partial (its own options bound) building one recurrent layer, its
    implementation already chosen (`implementation`). `name`: the model's, for messages."""
    name = name or layer_class(layer).__name__
    options = layer.keywords if isinstance(layer, functools.partial) else {}
    problems = core_problems(name, layer, num_hiddens, bidirectional, skip, **options)
    if problems:
        raise ValueError("; ".join(problems))
    two_way = {"bidirectional": bidirectional} if takes(layer, "bidirectional") else {}
    stacks = takes(layer, "num_layers")
    if skip == "none" and stacks:  # it stacks its own layers (torch.nn's: cuDNN)
        return layer(input_size=input_size, num_hiddens=num_hiddens, num_layers=num_layers,
                     dropout=dropout, **two_way)
    one = {"num_layers": 1, "dropout": 0.0} if stacks else {}
    D = 2 if bidirectional else 1
    sizes = layer_input_sizes(input_size, D * num_hiddens, num_layers, skip)
    layers = [layer(input_size=size, num_hiddens=num_hiddens, **one, **two_way)
              for size in sizes]
    return Stack(layers, skip, dropout, D)
