"""models/packed_optim.py: the packed SGD (momentum, nesterov, weight decay) and Adam (weight
decay, amsgrad, AdamW's decoupled decay) step each member exactly as its own torch optimizer
steps its run, with its own lr and step count; a member sitting a step out keeps its
parameters, state and step count bit for bit; a member's state goes from and back to its
run's torch optimizer (its checkpoint) unchanged. float64, three members, lrs 0.1, 0.05, 0.2."""
import pytest
import torch
import torch.nn.functional as F

from models.cells import GRUFused
from models.lm import LanguageModel
from models.packed import PackedLM, clip_per_member, member_losses
from models.packed_optim_config import packed_optimizer

V, H, T, B, SEEDS, STEPS = 10, 8, 5, 4, (0, 1, 2), 5
LRS = (0.1, 0.05, 0.2)
CLIP = 1.0
CASES = {  # id -> the optim config, as conf/optim/*.yaml and the command line give it
    "sgd-momentum": {"_target_": "torch.optim.SGD", "momentum": 0.9},
    "sgd-nesterov-wd": {"_target_": "torch.optim.SGD", "momentum": 0.9, "nesterov": True,
                        "weight_decay": 0.01},
    "sgd-dampening-maximize": {"_target_": "torch.optim.SGD", "momentum": 0.5,
                               "dampening": 0.3, "weight_decay": 0.01, "maximize": True},
    "adam": {"_target_": "torch.optim.Adam"},
    "adam-wd-betas": {"_target_": "torch.optim.Adam", "weight_decay": 0.01,
                      "betas": [0.8, 0.99], "eps": 1e-6},
    "adam-amsgrad": {"_target_": "torch.optim.Adam", "amsgrad": True},
    "adamw": {"_target_": "torch.optim.AdamW", "weight_decay": 0.1},
}


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def model(seed):
    torch.manual_seed(seed)
    return LanguageModel(V, GRUFused, H)


def batches(seed, n=STEPS):
    g = torch.Generator().manual_seed(100 + seed)
    return [(torch.randint(0, V, (T, B), generator=g), torch.randint(0, V, (T, B), generator=g))
            for _ in range(n)]


def torch_optimizer(optim, m, lr):
    """The run's own: torch's class over its model, as hydra instantiates conf/optim."""
    options = {k: v for k, v in optim.items() if k != "_target_"}
    cls = getattr(torch.optim, optim["_target_"].rpartition(".")[2])
    return cls(m.parameters(), lr=lr, **options)


def step_alone(m, opt, x, y):
    """One of the runner's steps (runner/tasks/loop.py's step, schedule aside)."""
    logits, _ = m(x, m.begin_state(B))
    loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(list(m.parameters()), CLIP)
    opt.step()
    return loss.item()


def step_packed(packed, opt, data, s, active=None):
    """One pack step on each member's batch s (its last, if it has fewer); (P,) losses."""
    x = torch.stack([d[min(s, len(d) - 1)][0] for d in data])
    y = torch.stack([d[min(s, len(d) - 1)][1] for d in data])
    losses = member_losses(packed(x, packed.begin_state(B))[0], y)
    opt.zero_grad()
    losses.sum().backward()
    clip_per_member(packed, CLIP)
    opt.step(active)
    return losses.detach()


def rel(a, b):
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return float(((a - b).abs() / b.abs().clamp(min=1e-30)).max())


def assert_state_equal(packed_state, alone_state):
    """A member's state written back equals its run's optimizer's: same parameters, keys in
    the same order, step counts and their dtype exactly, tensors to 1e-10."""
    assert [len(s) for s in packed_state.values()] == [len(s) for s in alone_state.values()]
    for got, want in zip(packed_state.values(), alone_state.values()):
        assert list(got) == list(want)
        for key, value in want.items():
            if key == "step":
                assert got[key].dtype == value.dtype and float(got[key]) == float(value)
            else:
                assert got[key].shape == value.shape and rel(got[key], value) < 1e-10, key


def packed_and_alone(case):
    models = [model(s) for s in SEEDS]
    packed = PackedLM.pack(models)
    opt = packed_optimizer({**CASES[case], "_partial_": True}, packed.parameters(), 3)
    opt.lr = LRS
    return models, packed, opt, [torch_optimizer(CASES[case], m, lr) for m, lr in
                                 zip(models, LRS)]


@pytest.mark.parametrize("case", CASES)
def test_each_member_steps_as_its_own_torch_optimizer(case):
    models, packed, opt, alone = packed_and_alone(case)
    data = [batches(s) for s in SEEDS]
    curves = torch.stack([step_packed(packed, opt, data, s) for s in range(STEPS)], 1)
    for i, (m, o) in enumerate(zip(models, alone)):
        assert rel(curves[i], [step_alone(m, o, x, y) for x, y in data[i]]) < 1e-10
        for k, v in m.state_dict().items():
            assert rel(packed.unpack(i)[k], v) < 1e-10, k
        own = torch_optimizer(CASES[case], model(SEEDS[i]), LRS[i])  # a fresh one, written
        opt.write_member(i, own, list(own.param_groups[0]["params"]))
        assert_state_equal(own.state, o.state)


@pytest.mark.parametrize("case", ["sgd-nesterov-wd", "adam-wd-betas", "adam-amsgrad"])
def test_a_member_sitting_out_keeps_its_parameters_state_and_step_count(case):
    """Member 1 sits out steps 0 and 2 (at 0 it has no state yet: Adam's bias correction
    divides by zero there): it keeps everything bit for bit, and ends as its run on its other
    three batches."""
    models, packed, opt, alone = packed_and_alone(case)
    data = [batches(s) for s in SEEDS]
    for s in range(STEPS):
        sits_out = s in (0, 2)
        before = (packed.unpack(1), {p: {k: v[1].clone() for k, v in st.items()}
                                     for p, st in opt.state.items()})
        step_packed(packed, opt, data, s, torch.tensor([True, not sits_out, True]))
        if sits_out:
            after = packed.unpack(1)
            assert all(torch.equal(after[k], v) for k, v in before[0].items())
            for p, st in opt.state.items():
                kept = before[1].get(p)
                for k, v in st.items():  # state created now: zero, its step count 0
                    assert torch.equal(v[1], kept[k] if kept else torch.zeros_like(v[1])), k
    for i, (m, o) in enumerate(zip(models, alone)):
        for x, y in [d for s, d in enumerate(data[i]) if i != 1 or s not in (0, 2)]:
            step_alone(m, o, x, y)
        for k, v in m.state_dict().items():
            assert rel(packed.unpack(i)[k], v) < 1e-10, (i, k)
        own = torch_optimizer(CASES[case], model(SEEDS[i]), LRS[i])
        opt.write_member(i, own, list(own.param_groups[0]["params"]))
        assert_state_equal(own.state, o.state)  # member 1: 3 steps, the others 5


@pytest.mark.parametrize("case", ["sgd-momentum", "adam", "adamw"])
def test_members_resume_from_their_runs_optimizers_at_different_steps(case):
    """Runs stepped alone 2, 0 and 3 times (their checkpoints), then packed: each member's
    state loaded from its run's optimizer, its own step count (its own bias correction)
    continuing; after three packed steps each equals its run stepped on without a pack."""
    done, STEPS_AFTER = (2, 0, 3), 3
    data = [batches(s, k + STEPS_AFTER) for s, k in zip(SEEDS, done)]
    clean = [model(s) for s in SEEDS]
    clean_opts = [torch_optimizer(CASES[case], m, lr) for m, lr in zip(clean, LRS)]
    for m, o, d in zip(clean, clean_opts, data):
        for x, y in d:
            step_alone(m, o, x, y)
    runs = [model(s) for s in SEEDS]
    opts = [torch_optimizer(CASES[case], m, lr) for m, lr in zip(runs, LRS)]
    for m, o, d, k in zip(runs, opts, data, done):
        for x, y in d[:k]:
            step_alone(m, o, x, y)
    packed = PackedLM.pack(runs)
    opt = packed_optimizer(CASES[case], packed.parameters(), 3)
    opt.lr = LRS
    for i, (m, o) in enumerate(zip(runs, opts)):
        opt.load_member(i, o, list(m.parameters()))
    rest = [d[k:] for d, k in zip(data, done)]
    for s in range(STEPS_AFTER):
        step_packed(packed, opt, rest, s)
    for i, (m, o) in enumerate(zip(runs, opts)):
        m.load_state_dict(packed.unpack(i))
        opt.write_member(i, o, list(m.parameters()))
        for k, v in clean[i].state_dict().items():
            assert rel(m.state_dict()[k], v) < 1e-10, (i, k)
        assert_state_equal(o.state, clean_opts[i].state)
        o.load_state_dict(o.state_dict())  # torch takes it back as its own


@pytest.mark.parametrize("optim, says", [
    ({"_target_": "torch.optim.RMSprop", "lr": 0.01},
     "optim._target_=torch.optim.RMSprop: packs step torch.optim.SGD, torch.optim.Adam, "
     "torch.optim.AdamW per member"),
    ({"_target_": "torch.optim.Adam", "lr": 0.01, "fused": True},
     "optim.fused=True with torch.optim.Adam: the packed optimizer computes optim.lr"),
    ({"_target_": "torch.optim.SGD", "lr": 0.1, "differentiable": True}, "optim.differentiable"),
])
def test_what_the_packed_optimizers_do_not_compute_is_refused_with_the_fix(optim, says):
    with pytest.raises(ValueError) as e:
        packed_optimizer(optim, [], 2)
    assert says in str(e.value) and "launcher.pack=1" in str(e.value)
    assert "\n" not in str(e.value)
    for off in ({"fused": None}, {"fused": False}, {"foreach": True}, {"capturable": False}):
        assert packed_optimizer({"_target_": "torch.optim.Adam", **off}, [], 2) is not None
