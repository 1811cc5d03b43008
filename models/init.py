"""Initialisation schemes, applied to every weight matrix of a model (embedding, recurrent and
output layers alike). Every scheme but `default` sets biases to zero, so that only the named
distribution differs between points of an `init` sweep."""
from functools import partial

import torch
from torch import nn

SCHEMES = {
    "default": None,  # keep PyTorch's own per-layer initialisation, biases included
    "xavier_uniform": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "kaiming_uniform": nn.init.kaiming_uniform_,
    "kaiming_normal": nn.init.kaiming_normal_,
    "normal": nn.init.normal_,
    "uniform": nn.init.uniform_,
    "orthogonal": nn.init.orthogonal_,
}


def init_weights(model: nn.Module, scheme: str, **params) -> nn.Module:
    """Apply `scheme` (with its params, e.g. std=0.01 for normal) to `model` in place.

    Params are passed to the matching torch.nn.init function, under its own names:
    gain (xavier_*, orthogonal), mode / nonlinearity / a (kaiming_*), mean / std (normal),
    a / b (uniform; `a` alone means U(-a, a)).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"init.scheme={scheme!r} is not a scheme; use one of {tuple(SCHEMES)}")
    if scheme == "default":
        if params:
            raise ValueError(f"init.scheme=default takes no parameters, got {sorted(params)}")
        return model
    if scheme == "uniform" and "b" not in params:
        params = {**params, "a": -params.get("a", 0.1), "b": params.get("a", 0.1)}
    fill = partial(SCHEMES[scheme], **params)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                fill(p)
            elif name.rsplit(".", 1)[-1].startswith("bias"):
                p.zero_()
    return model
