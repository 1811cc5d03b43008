"""Initialisation schemes, applied to a model's weight matrices (embedding, recurrent, attention
and output layers alike). By default every scheme but `default` also sets biases to zero, so
that only the named distribution differs between points of an `init` sweep.

Two options narrow what a scheme touches: `embeddings=False` leaves nn.Embedding tables alone
and `biases="keep"` leaves biases at PyTorch's own values. Together (conf/init/
xavier_uniform_d2l.yaml) they give d2l 0.17.6's `xavier_init_weights`, which its seq2seq
training applies: Xavier-uniform on nn.Linear weights and on the GRU's weights, nothing else.
"""
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
BIASES = ("zero", "keep")


def init_weights(model: nn.Module, scheme: str, embeddings: bool = True, biases: str = "zero",
                 **params) -> nn.Module:
    """Apply `scheme` (with its params, e.g. std=0.01 for normal) to `model` in place.

    Every parameter of >= 2 dimensions is filled, except nn.Embedding tables when
    `embeddings` is false; biases are zeroed (`biases="zero"`) or kept (`"keep"`).
    Params are passed to the matching torch.nn.init function, under its own names:
    gain (xavier_*, orthogonal), mode / nonlinearity / a (kaiming_*), mean / std (normal),
    a / b (uniform; `a` alone means U(-a, a)).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"init.scheme={scheme!r} is not a scheme; use one of {tuple(SCHEMES)}")
    if biases not in BIASES:
        raise ValueError(f"init.biases={biases!r} is not allowed; use one of {BIASES}")
    if not isinstance(embeddings, bool):
        raise ValueError(f"init.embeddings={embeddings!r} is not allowed; use true or false")
    if scheme == "default":
        if params or not embeddings or biases != "zero":
            raise ValueError("init.scheme=default keeps PyTorch's own initialisation and takes "
                             "no options; drop them, or pick another scheme")
        return model
    if scheme == "uniform" and "b" not in params:
        params = {**params, "a": -params.get("a", 0.1), "b": params.get("a", 0.1)}
    fill = partial(SCHEMES[scheme], **params)
    done = set()  # a tied parameter is filled once
    with torch.no_grad():
        # Module by module, in registration order: the order named_parameters() and d2l's
        # net.apply visit the weights in, so the same RNG state gives the same values.
        for module in model.modules():
            if isinstance(module, nn.Embedding) and not embeddings:
                continue
            for name, p in module.named_parameters(recurse=False):
                if id(p) in done:
                    continue
                done.add(id(p))
                if p.dim() >= 2:
                    fill(p)
                elif name.startswith("bias") and biases == "zero":
                    p.zero_()
    return model
