"""The packed optimizer for a run's `optim` config (its `_target_` and options, as
conf/optim/*.yaml and the command line give them): torch.optim.SGD, Adam and AdamW step per
member (models/packed_optim.py); any other class, or an option the packed ones do not
compute, is refused in one line naming it and the fix."""
import inspect
from collections.abc import Mapping

import torch

from models.packed_optim import PackedAdam, PackedSGD

ADAM = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")
# torch's class name -> (the class, the packed one, the options it computes, options fixed)
PACKED = {
    "torch.optim.SGD": (torch.optim.SGD, PackedSGD,
                        ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"),
                        {}),
    "torch.optim.Adam": (torch.optim.Adam, PackedAdam, (*ADAM, "decoupled_weight_decay"), {}),
    "torch.optim.AdamW": (torch.optim.AdamW, PackedAdam, ADAM, {"decoupled_weight_decay": True}),
}
KERNEL_ONLY = ("foreach",)  # torch's choice of kernel, the same formula: any value packs
FIX = "train it unpacked (launcher.pack=1)"


def _off(value, default) -> bool:
    """An option left as torch's default (None and False both mean off for fused)."""
    return value == default or (value is False and default is None)


def packed_optimizer(optim: Mapping, params, members: int):
    """The packed optimizer that steps `members` runs of this `optim` config over `params`
    (the pack's), each member as its own torch optimizer; ValueError, one line, if none
    does. The lr given is the config's: the pack sets each member's before every step."""
    options = dict(optim)
    target = options.pop("_target_", None)
    options.pop("_partial_", None)
    if target not in PACKED:
        raise ValueError(f"optim._target_={target}: packs step {', '.join(PACKED)} per "
                         f"member, not another optimizer class; {FIX}")
    cls, packed, takes, fixed = PACKED[target]
    defaults = {k: v.default for k, v in inspect.signature(cls).parameters.items()}
    for key, value in options.items():
        if key not in takes and key not in KERNEL_ONLY and not _off(value, defaults.get(key)):
            raise ValueError(f"optim.{key}={value!r} with {target}: the packed optimizer "
                             f"computes {', '.join(f'optim.{k}' for k in takes)} only; "
                             f"{FIX}")
    kwargs = {k: options.get(k, defaults[k]) for k in takes}
    return packed(params, members=members, **kwargs, **fixed)
