"""Dropout in a pack (model.dropout between layers): each member draws its masks from its own
generator, seeded with dropout_seed(its seed), so its run does not depend on which or how many
members share its pack; its masks fall where its standalone model's do, with the same p."""
import copy

import pytest
import torch

from models.cells import GRUFused, RNNFused, lstm
from models.lm import LanguageModel
from models.packed import PackedLM, dropout_seed
from models.scratch import GRUScratch
from tests import test_packed
from tests.test_packed import B, H, T, V, batches, rel, train_packed

dtype = test_packed.dtype  # the fixture: build and train in float64 unless parametrised
# every way a core is built: the fused layers, torch.nn's (lstm), d2l's scratch cells
LAYERS = {"rnn": RNNFused, "gru": GRUFused, "lstm": lstm, "gru_scratch": GRUScratch}
P_DROP = 0.5


def member(cell, seed, dropout=P_DROP):
    torch.manual_seed(seed)  # as runner/run/execute.py's model_and_optimizer
    return LanguageModel(V, LAYERS[cell], H, num_layers=2, dropout=dropout, embed_size=6)


def trained(cell, seeds, watched):
    """Member `watched`'s loss curve and final state_dict, trained in a pack of `seeds`."""
    packed = PackedLM.pack([member(cell, s) for s in seeds]).seed_dropout(seeds)
    curves, _ = train_packed(packed, [batches(s) for s in seeds], 1.0)
    i = seeds.index(watched)
    return curves[i], packed.unpack(i)


@pytest.mark.parametrize("cell", LAYERS)
def test_a_members_run_does_not_depend_on_its_pack(dtype, cell):
    alone, alone_state = trained(cell, [1], 1)
    for seeds in ([0, 1, 2], [7, 5, 3, 1]):  # other members, another size, another place
        curve, state = trained(cell, seeds, 1)
        assert rel(curve, alone) < 1e-12
        assert max(rel(state[k], v) for k, v in alone_state.items()) < 1e-12
    # and dropout is on: without it the same member trains to another curve (by 1e-6 only
    # for d2l's N(0, 0.01^2) weights, whose small activations dropout barely moves)
    packed = PackedLM.pack([member(cell, 1, dropout=0.0)])
    assert rel(train_packed(packed, [batches(1)], 1.0)[0][0], alone) > 1e-9


@pytest.mark.parametrize("cell", LAYERS)
def test_members_with_different_seeds_draw_different_masks(dtype, cell):
    """One model twice: under seeds 0 and 1 its two copies' losses differ; under one seed
    twice they are equal; in eval mode no mask is drawn at all."""
    m = member(cell, 0)
    x = torch.randint(0, V, (T, B)).expand(2, T, B)  # the same batch for both

    def logits(seeds, train=True):
        packed = PackedLM.pack([m, copy.deepcopy(m)]).seed_dropout(seeds).train(train)
        return packed(x, packed.begin_state(B))[0]

    differ = logits([0, 1])
    assert (differ[0] - differ[1]).abs().max() > 1e-9
    assert torch.equal(*logits([3, 3]))
    assert torch.equal(*logits([0, 1], train=False))
    assert dropout_seed(0) != dropout_seed(1)


@pytest.mark.parametrize("cell", LAYERS)
@torch.no_grad()
def test_masks_fall_where_the_standalone_model_drops_them(dtype, cell):
    """The structural match: member s's masks are exactly those its standalone model draws
    (between layers, p = model.dropout, F.dropout's 1 / (1 - p) scaling) when the global
    generator is seeded with dropout_seed(s) just before its forward, for every kind of
    core. A standalone run's own global generator is elsewhere (after its init), so its
    masks, and its curve, are not the member's."""
    seeds = [4, 9]
    models = [member(cell, s) for s in seeds]
    packed = PackedLM.pack(models).seed_dropout(seeds)
    x = torch.randint(0, V, (2, T, B))
    # two forwards: each generator moves on as the global one does
    packs = [packed(x, packed.begin_state(B))[0] for _ in range(2)]
    for i, (m, s) in enumerate(zip(models, seeds)):
        torch.manual_seed(dropout_seed(s))
        for out in packs:
            assert rel(out[i], m(x[i], m.begin_state(B))[0]) < 1e-12
        assert rel(packs[0][i], packs[1][i]) > 1e-9  # the masks moved on: not a trivial match
    packed.eval()  # and in eval mode neither drops anything
    out, _ = packed(x, packed.begin_state(B))
    for i, m in enumerate(models):
        assert rel(out[i], m.eval()(x[i], m.begin_state(B))[0]) < 1e-12


def test_dropout_needs_one_seed_per_member():
    packed = PackedLM.pack([member("gru", s) for s in (0, 1)])
    with pytest.raises(RuntimeError, match=r"dropout 0.5: call seed_dropout\(seeds\)"):
        packed(torch.zeros(2, T, B, dtype=torch.long), packed.begin_state(B))
    with pytest.raises(ValueError, match="seed_dropout got 3 seeds for a pack of 2"):
        packed.seed_dropout([0, 1, 2])


@torch.no_grad()
def test_a_member_sitting_a_step_out_draws_no_masks(dtype):
    """`drawing` (the pack loop's active members): member 1 sitting out leaves its generator
    where it was and its layers unmasked; member 0 draws as ever, its logits those of the
    same forward with every member drawing."""
    models = [member("gru", s) for s in (0, 1)]
    x = torch.randint(0, V, (2, T, B))
    everyone = PackedLM.pack(models).seed_dropout([0, 1])
    both = everyone(x, everyone.begin_state(B))[0]
    packed = PackedLM.pack(models).seed_dropout([0, 1])
    before = [g.get_state() for g in packed.generators]
    packed.drawing = [True, False]
    out = packed(x, packed.begin_state(B))[0]
    assert torch.equal(packed.generators[1].get_state(), before[1])
    assert not torch.equal(packed.generators[0].get_state(), before[0])
    assert torch.equal(out[0], both[0])
    unmasked = packed.eval()(x, packed.begin_state(B))[0]
    assert torch.equal(out[1], unmasked[1])
