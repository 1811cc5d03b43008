"""Translation's encoder-decoder (models/seq2seq.py, without attention) packed: each member
starts bit-identical to its standalone Seq2Seq, unpacks into its state_dict, and trains as the
translation task trains it (masked cross-entropy per valid target token, runner's step)."""
import pytest
import torch

from models.cells import GRUFused, RNNFused, lstm
from models.packed import PackedLM, PackedSGD, clip_per_member
from models.packed_seq2seq import PackedScratchSeq2Seq, PackedSeq2Seq, member_masked_losses
from models.scratch import GRUScratch
from models.seq2seq import Seq2Seq, masked_cross_entropy
from runner.tasks.loop import step
from tests import test_packed
from tests.test_packed import rel

dtype = test_packed.dtype  # the fixture: build and train in float64 unless parametrised
VS, VT, H, E, TS, TT, B, SEEDS, STEPS, LRS = 9, 11, 8, 6, 5, 4, 3, (0, 1, 2), 4, (1.0, .5, 2.)
LAYERS = {"rnn": RNNFused, "gru": GRUFused, "lstm": lstm, "gru_scratch": GRUScratch}
FORMS = [(c, 1) for c in LAYERS] + [("gru", 2), ("lstm", 2)]


def standalone(cell, layers, seed, dropout=0.0, attention=False):
    torch.manual_seed(seed)  # as runner/run/execute.py's model_and_optimizer
    return Seq2Seq(VS, VT, LAYERS[cell], H, layers, dropout, E, attention)


def batches(seed):
    """Member `seed`'s batches: (src, src_len, tgt_in, y, y_len), targets partly padding."""
    g = torch.Generator().manual_seed(100 + seed)
    return [(torch.randint(0, VS, (TS, B), generator=g), torch.randint(1, TS + 1, (B,),
             generator=g), torch.randint(0, VT, (TT, B), generator=g),
             torch.randint(0, VT, (TT, B), generator=g),
             torch.randint(1, TT + 1, (B,), generator=g)) for _ in range(STEPS)]


def train_alone(model, data, lr, clip):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    sched, curve = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0), []
    for src, src_len, tgt_in, y, y_len in data:  # runner/tasks/translation.py's loss
        total, n = masked_cross_entropy(model(src, src_len, tgt_in), y, y_len)
        step(total / n, list(model.parameters()), opt, sched, clip)
        curve.append((total / n).item())
    return curve


def train_packed(packed, data, lr, clip):
    opt, curves = PackedSGD(packed.parameters(), lr, packed.members), []
    for s in range(STEPS):
        src, src_len, tgt_in, y, y_len = (torch.stack([d[s][j] for d in data])
                                          for j in range(5))
        losses, _ = member_masked_losses(packed(src, src_len, tgt_in), y, y_len)
        opt.zero_grad()
        losses.sum().backward()
        clip_per_member(packed, clip)
        opt.step()
        curves.append(losses.detach())
    return torch.stack(curves, 1)


@pytest.mark.parametrize("cell,layers", FORMS)
def test_seq2seq_pack_matches_each_standalone_run_float64(dtype, cell, layers):
    models = [standalone(cell, layers, s) for s in SEEDS]
    packed = PackedLM.pack(models)
    assert type(packed) is (PackedScratchSeq2Seq if "scratch" in cell else PackedSeq2Seq)
    for i, m in enumerate(models):
        state = packed.unpack(i)
        assert list(state) == list(m.state_dict())
        assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())
        standalone(cell, layers, 99).load_state_dict(state)  # strict
    data = [batches(s) for s in SEEDS]
    curves = train_packed(packed, data, torch.tensor(LRS), 0.5)
    for i, m in enumerate(models):
        assert rel(curves[i], train_alone(m, data[i], LRS[i], 0.5)) < 1e-10
        assert max(rel(packed.unpack(i)[k], v) for k, v in m.state_dict().items()) < 1e-10


@pytest.mark.parametrize("dtype", [torch.float32], indirect=True)
def test_seq2seq_float32_curves_match_to_1e_4(dtype):
    models = [standalone("gru", 1, s) for s in SEEDS]
    data = [batches(s) for s in SEEDS]
    curves = train_packed(PackedLM.pack(models), data, 1.0, 1.0)
    for i, m in enumerate(models):
        assert rel(curves[i], train_alone(m, data[i], 1.0, 1.0)) < 1e-4


def test_seq2seq_dropout_member_does_not_depend_on_its_pack(dtype):
    def member_curve(seeds):
        models = [standalone("gru", 2, s, dropout=0.5) for s in seeds]
        packed = PackedLM.pack(models).seed_dropout(seeds)
        return train_packed(packed, [batches(s) for s in seeds], 1.0, 1.0)[seeds.index(1)]

    assert rel(member_curve([1]), member_curve([0, 1, 2])) < 1e-12


def test_seq2seq_with_attention_is_refused_in_one_line():
    with pytest.raises(ValueError) as e:
        PackedLM.pack([standalone("gru", 1, 0, attention=True)])
    assert str(e.value) == (
        "cannot pack models[0], a Seq2Seq with attention (model.attention=true): packs hold "
        "the recurrent LanguageModel and translation's encoder-decoder without attention, "
        "not the Transformer; train it unpacked (launcher.pack=1)")
