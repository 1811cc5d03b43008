"""models/packed.py: a pack of P seeds trains each member exactly as its standalone run does.

Each standalone run here is the runner's: seeded, built, then stepped by runner/tasks/loop.py's
`step` (backward, clip_grad_norm_, SGD); each member draws its own minibatches from its
own generator. The pack is built from those same models, before any step."""
import pytest
import torch
import torch.nn.functional as F

from data.iterators import epoch_batches
from models.cells import GRUFused, RNNFused, gru, lstm
from models.lm import LanguageModel, detach
from models.packed import PackedLM, PackedSGD, clip_per_member, member_losses
from models.scratch import GRUScratch
from models.transformer import TransformerLM, TransformerSeq2Seq
from runner.tasks.loop import step

V, H, T, B, SEEDS, STEPS = 10, 8, 5, 4, (0, 1, 2), 5
LAYERS = {"rnn": RNNFused, "gru": GRUFused, "lstm": lstm}  # lstm's torch.nn layer: no fused one
# (mode, num_layers, embed_size): one-hot one layer, as the study; embedded two layers
FORMS = [(m, 1, None) for m in LAYERS] + [(m, 2, 6) for m in LAYERS]
LRS = (1.0, 0.5, 2.0)  # one lr per member: the per-member update is proven, not assumed
CLIP = 1.0  # d2l's


@pytest.fixture
def dtype(request):
    """Build and train in the parametrised dtype (float64 unless said), then restore."""
    old, new = torch.get_default_dtype(), getattr(request, "param", torch.float64)
    torch.set_default_dtype(new)
    yield new
    torch.set_default_dtype(old)


def standalone(mode, layers, embed, seed):
    torch.manual_seed(seed)  # as runner/run/execute.py's model_and_optimizer
    return LanguageModel(V, LAYERS[mode], H, layers, embed_size=embed)


def batches(seed):
    """Member `seed`'s own minibatches, (x, y) of (T, B) ids each."""
    g = torch.Generator().manual_seed(100 + seed)
    return [(torch.randint(0, V, (T, B), generator=g), torch.randint(0, V, (T, B), generator=g))
            for _ in range(STEPS)]


def train_alone(model, data, lr, clip=CLIP, optim=torch.optim.SGD):
    """The runner's steps (fresh state each batch, as random sampling): the loss curve."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = optim(params, lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    curve = []
    for x, y in data:
        logits, _ = model(x, model.begin_state(B))
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        step(loss, params, opt, sched, clip)
        curve.append(loss.item())
    return curve


def train_packed(packed, data, lr, clip=CLIP, opt=None):
    """The same steps on the pack: (P, STEPS) losses and (P, STEPS) pre-clip grad norms."""
    opt = opt or PackedSGD(packed.parameters(), lr, packed.members)
    curves, norms = [], []
    for s in range(STEPS):
        x = torch.stack([d[s][0] for d in data])
        y = torch.stack([d[s][1] for d in data])
        logits, _ = packed(x, packed.begin_state(B))
        losses = member_losses(logits, y)
        opt.zero_grad()
        losses.sum().backward()  # no op mixes members: each gets its own gradient
        norms.append(clip_per_member(packed, clip))
        opt.step()
        curves.append(losses.detach())
    return torch.stack(curves, 1), torch.stack(norms, 1)


def rel(a, b):
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float(((a - b).abs() / b.abs().clamp(min=1e-30)).max())


def max_param_rel(packed, models, members):
    return max(rel(packed.unpack(i)[k], v) for i in members
               for k, v in models[i].state_dict().items())


@pytest.mark.parametrize("mode,layers,embed", FORMS)
def test_pack_starts_bit_identical_and_unpacks_into_its_runs(dtype, mode, layers, embed):
    models = [standalone(mode, layers, embed, s) for s in SEEDS]
    packed = PackedLM.pack(models)
    assert packed.core.weight_hh_l0.shape == (3, {"rnn": 1, "gru": 3, "lstm": 4}[mode] * H, H)
    for i, m in enumerate(models):
        state = packed.unpack(i)
        assert state.keys() == m.state_dict().keys()
        assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())
        twin = standalone(mode, layers, embed, 99)
        twin.load_state_dict(state)  # strict: a member's checkpoint is a standalone one
    assert not torch.equal(packed.unpack(0)["output.weight"], packed.unpack(1)["output.weight"])


@pytest.mark.parametrize("mode,layers,embed", FORMS)
def test_sgd_steps_with_clipping_match_each_standalone_run_float64(dtype, mode, layers, embed):
    models = [standalone(mode, layers, embed, s) for s in SEEDS]
    data = [batches(s) for s in SEEDS]
    # This tiny model's gradient norms (0.2-0.6) are under d2l's 1: clipping at the median of
    # an unclipped pass's clips some members' steps and not others', so a clip shared over the
    # pack, or a wrong one, would show.
    _, free = train_packed(PackedLM.pack(models), data, torch.tensor(LRS), clip=float("inf"))
    clip = float(free.median())
    packed = PackedLM.pack(models)
    curves, norms = train_packed(packed, data, torch.tensor(LRS), clip)
    assert (norms > clip * 1.01).any() and (norms < clip * 0.99).any()
    for i, m in enumerate(models):
        assert rel(curves[i], train_alone(m, data[i], LRS[i], clip)) < 1e-10
    assert max_param_rel(packed, models, range(3)) < 1e-10


@pytest.mark.parametrize("dtype", [torch.float32], indirect=True)
@pytest.mark.parametrize("mode", LAYERS)
def test_float32_curves_match_to_1e_4(dtype, mode):
    models = [standalone(mode, 1, None, s) for s in SEEDS]
    packed = PackedLM.pack(models)
    assert packed.output.weight.dtype == torch.float32
    data = [batches(s) for s in SEEDS]
    curves, _ = train_packed(packed, data, 1.0)
    for i, m in enumerate(models):
        assert rel(curves[i], train_alone(m, data[i], 1.0)) < 1e-4


@pytest.mark.parametrize("mode", LAYERS)
def test_clipping_is_per_member_not_over_the_pack(dtype, mode):
    """Member 1's gradient made a million times larger: it alone is scaled down; members 0
    and 2 are clipped exactly as clip_grad_norm_ clips their standalone models."""
    models = [standalone(mode, 1, None, s) for s in SEEDS]
    packed = PackedLM.pack(models)
    x, y = torch.randint(0, V, (3, T, B)), torch.randint(0, V, (3, T, B))
    member_losses(packed(x, packed.begin_state(B))[0], y).sum().backward()
    with torch.no_grad():
        for p in packed.parameters():
            p.grad[1] *= 1e6
    grads = {n: p.grad.clone() for n, p in packed.named_parameters()}
    norms = clip_per_member(packed, 1.0)
    assert norms[1] > 1e5 and norms[0] < 1e3 and norms[2] < 1e3
    for i, m in enumerate(models):
        for n, p in m.named_parameters():
            p.grad = grads[n][i].clone()
        alone = torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        assert rel(norms[i], alone) < 1e-12
        for n, p in m.named_parameters():
            assert rel(packed.get_parameter(n).grad[i], p.grad) < 1e-12
    clipped = torch.sqrt(sum(p.grad[1].pow(2).sum() for p in packed.parameters()))
    assert abs(float(clipped) - 1.0) < 1e-5  # the huge member clipped to norm 1
    # over the whole pack, members 0 and 2 would have been scaled by ~1e-6 too
    whole = torch.sqrt(sum(g.pow(2).sum() for g in grads.values()))
    assert float(1.0 / whole) < 1e-4 and all(float(min(1, 1 / norms[i])) > 1e-3 for i in (0, 2))


@pytest.mark.parametrize("mode", LAYERS)
def test_a_nan_member_leaves_the_others_unchanged(dtype, mode):
    models = [standalone(mode, 1, None, s) for s in SEEDS]
    packed = PackedLM.pack(models)
    with torch.no_grad():
        for p in packed.parameters():
            p[1] = float("nan")
    data = [batches(s) for s in SEEDS]
    curves, _ = train_packed(packed, data, 1.0)
    assert curves[1].isnan().all()
    assert all(p[1].isnan().all() for p in packed.parameters())
    for i in (0, 2):
        assert rel(curves[i], train_alone(models[i], data[i], 1.0)) < 1e-10
    assert max_param_rel(packed, models, (0, 2)) < 1e-10


@pytest.mark.parametrize("mode", LAYERS)
def test_torch_adam_on_the_pack_is_each_members_adam(dtype, mode):
    """Adam is elementwise, its step count the same for every member: torch.optim.Adam over
    the packed parameters is each member's own Adam, when the members share the lr."""
    models = [standalone(mode, 1, None, s) for s in SEEDS]
    packed = PackedLM.pack(models)
    data = [batches(s) for s in SEEDS]
    adam = torch.optim.Adam(packed.parameters(), lr=0.01)
    curves, _ = train_packed(packed, data, None, opt=adam)
    for i, m in enumerate(models):
        assert rel(curves[i], train_alone(m, data[i], 0.01, optim=torch.optim.Adam)) < 1e-10
    assert max_param_rel(packed, models, range(3)) < 1e-10


@pytest.mark.parametrize("mode", LAYERS)
def test_sequential_batches_carry_each_members_state(dtype, mode):
    """The study's sampling: each member's epoch from its own generator (its own random
    offset, as LanguageModelTask seeds it), the state carried from batch to batch."""
    corpus = torch.randint(0, V, (300,), generator=torch.Generator().manual_seed(7))
    models = [standalone(mode, 1, None, s) for s in SEEDS]
    packed = PackedLM.pack(models)
    epochs = [epoch_batches("sequential", corpus, B, T, torch.Generator().manual_seed(s))
              for s in SEEDS]
    n = min(len(X) for X, _ in epochs)
    data = [list(zip(X[:n], Y[:n])) for X, Y in epochs]
    assert not torch.equal(data[0][0][0], data[1][0][0])  # members read different batches
    opt, state, curves = PackedSGD(packed.parameters(), 1.0, 3), packed.begin_state(B), []
    for s in range(n):
        logits, state = packed(torch.stack([d[s][0] for d in data]), detach(state))
        losses = member_losses(logits, torch.stack([d[s][1] for d in data]))
        opt.zero_grad()
        losses.sum().backward()
        clip_per_member(packed, CLIP)
        opt.step()
        curves.append(losses.detach())
    for i, m in enumerate(models):
        alone, mstate = torch.optim.SGD(m.parameters(), lr=1.0), m.begin_state(B)
        sched = torch.optim.lr_scheduler.LambdaLR(alone, lambda s: 1.0)
        for s, (x, y) in enumerate(data[i]):
            logits, mstate = m(x, detach(mstate))
            loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
            step(loss, list(m.parameters()), alone, sched, CLIP)
            assert rel(curves[s][i], loss.item()) < 1e-10
    assert max_param_rel(packed, models, range(3)) < 1e-10


def test_a_member_sitting_out_a_step_keeps_its_parameters(dtype):
    """A member whose epoch has a batch fewer (a random offset can cut one) sits out the
    last step: it ends equal to its run on one batch fewer, the others to theirs."""
    models = [standalone("gru", 1, None, s) for s in SEEDS]
    packed = PackedLM.pack(models)
    data = [batches(s) for s in SEEDS]
    opt = PackedSGD(packed.parameters(), 1.0, 3)
    for s in range(STEPS):
        logits, _ = packed(torch.stack([d[s][0] for d in data]), packed.begin_state(B))
        opt.zero_grad()
        member_losses(logits, torch.stack([d[s][1] for d in data])).sum().backward()
        clip_per_member(packed, CLIP)
        opt.step(torch.tensor([True, s < STEPS - 1, True]))
    for i, m in enumerate(models):
        train_alone(m, data[i][:STEPS - 1] if i == 1 else data[i], 1.0)
    assert max_param_rel(packed, models, range(3)) < 1e-10


def test_torch_nn_and_fused_members_pack_alike(dtype):
    """rnn and gru run by torch.nn (model.impl=nn) have the fused layers' parameters and
    function: they pack the same way."""
    torch.manual_seed(0)
    models = [LanguageModel(V, gru, H) for _ in SEEDS]
    data = [batches(s) for s in SEEDS]
    curves, _ = train_packed(PackedLM.pack(models), data, 1.0)
    for i, m in enumerate(models):
        assert rel(curves[i], train_alone(m, data[i], 1.0)) < 1e-10


def test_what_cannot_be_packed_is_refused_with_the_fix():
    one = LanguageModel(V, GRUFused, H)
    with pytest.raises(ValueError, match="bidirectional=true.*model.bidirectional=false"):
        PackedLM.pack([LanguageModel(V, GRUFused, H, bidirectional=True)])
    with pytest.raises(ValueError, match=r"dropout 0.0.*differing only by seed"):
        PackedLM.pack([one, LanguageModel(V, RNNFused, H)])
    with pytest.raises(ValueError, match=r"dropout 0.5, the same impl"):  # not 0.3's form
        PackedLM.pack([LanguageModel(V, GRUFused, H, num_layers=2, dropout=p)
                       for p in (0.5, 0.3)])
    with pytest.raises(ValueError, match=r"models\[1\] is not of models\[0\]'s form"):
        PackedLM.pack([LanguageModel(V, GRUScratch, H), one])  # d2l's gru is another model
    with pytest.raises(ValueError, match=r"models\[1\] is not of models\[0\]'s form \(gru"):
        PackedLM.pack([one, LanguageModel(V, RNNFused, H)])
    with pytest.raises(ValueError, match="cannot pack a Stack core.*model.skip=none"):
        PackedLM.pack([LanguageModel(V, GRUFused, H, num_layers=2, skip="residual")])
    with pytest.raises(IndexError, match="member 3 is not in this pack of 1 \\(use 0 to 0\\)"):
        PackedLM.pack([one]).unpack(3)
    with pytest.raises(ValueError, match=r"lr of shape \(2,\) does not fit a pack of 3"):
        PackedSGD([], torch.ones(2), 3)
    with pytest.raises(ValueError, match=r"active of shape \(2,\) does not fit a pack of 3"):
        PackedSGD([], 1.0, 3).step(torch.ones(2, dtype=torch.bool))


@pytest.mark.parametrize("model", [
    TransformerLM(V, num_hiddens=8, num_heads=2, ffn_num_hiddens=8, num_layers=1),
    TransformerSeq2Seq(V, V, num_hiddens=8, num_heads=2, ffn_num_hiddens=8, num_layers=1)],
    ids=["transformer", "transformer-seq2seq"])
def test_the_transformer_is_refused_in_one_line(model):
    with pytest.raises(ValueError) as e:
        PackedLM.pack([model])
    name = type(model).__name__
    assert str(e.value) == (f"cannot pack models[0], a {name}: packs hold the recurrent "
                            f"LanguageModel and translation's encoder-decoder without "
                            f"attention, not the Transformer; train it unpacked "
                            f"(launcher.pack=1)")
