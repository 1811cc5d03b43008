"""Each member's own gradient clipping and optimizer step over a pack's parameters
(models/packed.py): every tensor has a leading member dimension (P, ...), and nothing here
mixes members. `PackedSGD` and `PackedAdam` are torch.optim.SGD's and torch.optim.Adam's
single-tensor updates (same formulas, same ops, in the same order) with each member's own lr,
state and step count; `load_member`/`write_member` move a member's state from and to its run's
own torch optimizer (its checkpoint). `packed_optimizer` builds one from a run's `optim` config
(models/packed_optim_config.py)."""
import torch
from torch import nn
from torch.optim.optimizer import _get_scalar_dtype


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


class PackedOptimizer:
    """What both optimizers share: the parameters, one lr per member (`lr`: a number or a
    (P,) tensor, writable between steps: a schedule sets it), and `state`, torch.optim's
    layout: packed parameter -> {name: (P, ...) tensor}, member i's slice its own."""

    def __init__(self, params, lr, members: int):
        self.params, self.members = _params(params), members
        self.lr, self.state = lr, {}

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

    def _begin(self, active):
        """The step's lr and `active` on the parameters' device, once a step. `active` (P,)
        bools: the members that step; the others keep their parameters, state and step count
        exactly, as a run that did not step (one whose epoch has a batch fewer, as a random
        offset can give, or one that diverged)."""
        if active is not None and tuple(active.shape) != (self.members,):
            raise ValueError(f"active of shape {tuple(active.shape)} does not fit a pack of "
                             f"{self.members}: give ({self.members},) bools, one per member")
        device = self.params[0].device if self.params else None
        return self._lr.to(device), None if active is None else active.to(device, torch.bool)

    @staticmethod
    def _keep(active, new, old):
        """new where the member steps, old where it sits out (where, not a zero step: 0 x a
        NaN is NaN)."""
        if active is None:
            return new
        return torch.where(active.view(-1, *[1] * (new.dim() - 1)), new, old)

    def _pairs(self, params):
        if len(params) != len(self.params):
            raise ValueError(f"got {len(params)} parameters of a member for a pack of "
                             f"{len(self.params)}: give the member's own, in the pack's order")
        return zip(self.params, params)

    @torch.no_grad()
    def load_member(self, i: int, optimizer, params) -> None:
        """Member i's state from its run's own torch optimizer (fresh, or restored from its
        checkpoint); `params`: its own parameters, in the pack's order (same names)."""
        for p, q in self._pairs(params):
            self._load(i, p, optimizer.state.get(q, {}))

    @torch.no_grad()
    def write_member(self, i: int, optimizer, params) -> None:
        """Member i's state into its run's own torch optimizer, as the run alone would hold
        it after the same steps (what its checkpoint saves)."""
        for p, q in self._pairs(params):
            if (state := self._member_state(i, p)) is not None:
                optimizer.state[q] = state


class PackedSGD(PackedOptimizer):
    """torch.optim.SGD (momentum, dampening, nesterov, weight_decay, maximize) with each
    member's own lr: plain, p[m] <- p[m] - lr[m] grad[m]. With momentum each member keeps its
    buffer and whether it has one yet (torch's SGD starts it from the first gradient, and
    keeps no step count)."""

    def __init__(self, params, lr, members: int, momentum=0.0, dampening=0.0,
                 weight_decay=0.0, nesterov=False, maximize=False):
        super().__init__(params, lr, members)
        self.momentum, self.dampening, self.nesterov = momentum, dampening, nesterov
        self.weight_decay, self.maximize = weight_decay, maximize

    def _init(self, p):
        if p not in self.state:
            self.state[p] = {"momentum_buffer": torch.zeros_like(p),
                             "has_buffer": torch.zeros(p.shape[0], dtype=torch.bool,
                                                       device=p.device)}
        return self.state[p]

    @torch.no_grad()
    def step(self, active=None):
        """One update; `active` (P,) bools, if given: the members that step."""
        lr, active = self._begin(active)
        for p in self.params:
            if p.grad is None:
                continue
            grad = -p.grad if self.maximize else p.grad
            if self.weight_decay != 0:
                grad = grad.add(p, alpha=self.weight_decay)
            if self.momentum != 0:
                s = self._init(p)
                buf = torch.where(_per_member(s["has_buffer"], p).bool(),
                                  s["momentum_buffer"].mul(self.momentum)
                                  .add_(grad, alpha=1 - self.dampening), grad)
                grad = grad.add(buf, alpha=self.momentum) if self.nesterov else buf
                s["momentum_buffer"].copy_(self._keep(active, buf, s["momentum_buffer"]))
                if active is None:
                    s["has_buffer"].fill_(True)
                else:
                    s["has_buffer"].logical_or_(active)
            new = torch.addcmul(p, _per_member(lr, p), grad, value=-1)
            p.copy_(self._keep(active, new, p))

    def _load(self, i, p, own):
        if self.momentum == 0:
            return
        s, buf = self._init(p), own.get("momentum_buffer")
        s["has_buffer"][i] = buf is not None
        s["momentum_buffer"][i] = 0 if buf is None else buf

    def _member_state(self, i, p):
        if self.momentum == 0 or p not in self.state or not self.state[p]["has_buffer"][i]:
            return None  # torch's SGD holds nothing for it either
        return {"momentum_buffer": self.state[p]["momentum_buffer"][i].clone()}


class PackedAdam(PackedOptimizer):
    """torch.optim.Adam (betas, eps, weight_decay, amsgrad, maximize, and
    decoupled_weight_decay: AdamW) with each member's own lr and own step count: its bias
    corrections are its own, so members at different steps (resumed from different epochs,
    or one sitting a step out) each follow their run."""

    def __init__(self, params, lr, members: int, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.0, amsgrad=False, maximize=False,
                 decoupled_weight_decay=False):
        super().__init__(params, lr, members)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps, self.weight_decay, self.amsgrad = eps, weight_decay, amsgrad
        self.maximize, self.decoupled = maximize, decoupled_weight_decay

    def _init(self, p):
        if p not in self.state:  # float32 step counts, as torch's: exact to 2^24 steps
            self.state[p] = {"step": torch.zeros(p.shape[0], dtype=torch.float32,
                                                 device=p.device),
                             "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
            if self.amsgrad:
                self.state[p]["max_exp_avg_sq"] = torch.zeros_like(p)
        return self.state[p]

    @torch.no_grad()
    def step(self, active=None):
        """One update; `active` (P,) bools, if given: the members that step."""
        (lr, active), beta1, beta2 = self._begin(active), self.beta1, self.beta2
        for p in self.params:
            if p.grad is None:
                continue
            s = self._init(p)
            grad, param = (-p.grad if self.maximize else p.grad), p
            if self.weight_decay != 0:
                if self.decoupled:
                    param = p.mul(_per_member(1 - lr * self.weight_decay, p))
                else:
                    grad = grad.add(p, alpha=self.weight_decay)
            step = s["step"] + 1
            exp_avg = s["exp_avg"].lerp(grad, 1 - beta1)
            exp_avg_sq = s["exp_avg_sq"].mul(beta2).addcmul_(grad, grad, value=1 - beta2)
            n = step.to(torch.float64)  # torch: Python floats (doubles) from here to the step
            step_size = lr / (1 - beta1 ** n)
            bias_correction2_sqrt = (1 - beta2 ** n) ** 0.5
            second = exp_avg_sq
            if self.amsgrad:
                second = torch.maximum(s["max_exp_avg_sq"], exp_avg_sq)
                s["max_exp_avg_sq"].copy_(self._keep(active, second, s["max_exp_avg_sq"]))
            denom = (second.sqrt() / _per_member(bias_correction2_sqrt, p)).add_(self.eps)
            # param.addcdiv_(exp_avg, denom, value=-step_size): self + value * t1 / t2
            new = param + _per_member(-step_size, p) * exp_avg / denom
            # a member sitting out at step 0 divides by zero here: where drops it
            p.copy_(self._keep(active, new, p))
            s["exp_avg"].copy_(self._keep(active, exp_avg, s["exp_avg"]))
            s["exp_avg_sq"].copy_(self._keep(active, exp_avg_sq, s["exp_avg_sq"]))
            s["step"].copy_(self._keep(active, step, s["step"]))

    def _load(self, i, p, own):
        s = self._init(p)
        s["step"][i] = float(own["step"]) if own else 0.0
        for key in s:
            if key != "step":
                s[key][i] = own[key] if own else 0

    def _member_state(self, i, p):
        if p not in self.state or (n := float(self.state[p]["step"][i])) == 0:
            return None  # never stepped: torch's Adam holds no state for it yet
        state = {"step": torch.tensor(n, dtype=_get_scalar_dtype())}  # as torch makes it
        state.update((k, v[i].clone()) for k, v in self.state[p].items() if k != "step")
        return state
