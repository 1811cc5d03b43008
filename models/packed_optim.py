"""Each member's own gradient clipping and SGD step over a pack's parameters (models/packed.py):
every tensor has a leading member dimension (P, ...), and nothing here mixes members."""
import torch
from torch import nn


def _params(packed):
    return list(packed.parameters()) if isinstance(packed, nn.Module) else list(packed)


def _per_member(values, like):
    """(P,) values shaped to scale a (P, ...) tensor member by member."""
    return values.view(-1, *[1] * (like.dim() - 1)).to(like.dtype)


@torch.no_grad()
def clip_per_member(packed, max_norm: float, eps: float = 1e-6):
    """torch.nn.utils.clip_grad_norm_ on each member alone: member m's global L2 norm over
    its slices of every gradient, and its gradients (only) scaled by min(1, max_norm /
    (norm + eps)). Clipping over the whole pack would let one member's large gradient shrink
    the others' steps. Returns the members' norms (P,), before clipping."""
    grads = [p.grad for p in _params(packed) if p.grad is not None]
    if not grads:
        raise ValueError("clip_per_member found no gradients: call backward() first")
    P = grads[0].shape[0]
    # as torch: the norm of the per-parameter norms
    norms = torch.stack([torch.linalg.vector_norm(g.reshape(P, -1), dim=1) for g in grads])
    total = torch.linalg.vector_norm(norms, dim=0)
    coef = (max_norm / (total + eps)).clamp(max=1.0)
    for g in grads:
        g.mul_(_per_member(coef, g))
    return total


class PackedSGD:
    """torch.optim.SGD's plain step (the study's: no momentum, no weight decay), with each
    member's own lr: p[m] <- p[m] - lr[m] grad[m]. `lr`: a number or a (P,) tensor, writable
    between steps (a schedule sets it)."""

    def __init__(self, params, lr, members: int):
        self.params, self.members = _params(params), members
        self.lr = lr

    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, lr):
        lr = torch.as_tensor(lr, dtype=torch.float64).clone()
        if lr.dim() == 0:
            lr = lr.expand(self.members).clone()
        if lr.shape != (self.members,):
            raise ValueError(f"lr of shape {tuple(lr.shape)} does not fit a pack of "
                             f"{self.members}: give one number or a ({self.members},) tensor, "
                             f"one lr per member")
        self._lr = lr

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, active=None):
        """One update; `active` (P,) bools, if given: the members that step, the others
        keep their parameters exactly (one whose epoch has a batch fewer, as a random offset
        can give, or one that diverged)."""
        if active is not None and tuple(active.shape) != (self.members,):
            raise ValueError(f"active of shape {tuple(active.shape)} does not fit a pack of "
                             f"{self.members}: give ({self.members},) bools, one per member")
        for p in self.params:
            if p.grad is None:
                continue
            new = torch.addcmul(p, _per_member(self._lr.to(p.device), p), p.grad, value=-1)
            if active is not None:  # where, not lr 0: 0 x a NaN gradient is NaN
                new = torch.where(_per_member(active.to(p.device), p).bool(), new, p)
            p.copy_(new)
