"""d2l's scratch models (models/scratch.py, model=*_scratch) packed: each member starts
bit-identical to its standalone scratch model, unpacks into its state_dict, and trains as it
does (tests/test_packed.py's runs: the runner's step, per-member lr and clip)."""
from functools import partial

import pytest
import torch

from models.cells import GRUFused
from models.lm import LanguageModel
from models.packed import PackedLM
from models.packed_scratch import PackedScratchLM
from models.scratch import GRUScratch, LSTMScratch, RNNScratch
from tests import test_packed
from tests.test_packed import LRS, SEEDS, H, V, batches, rel, train_alone, train_packed

dtype = test_packed.dtype  # the fixture: build and train in float64 unless parametrised

SCRATCH = {"rnn": RNNScratch, "gru": GRUScratch, "lstm": LSTMScratch}
# one-hot one layer, as d2l's; embedded two layers
FORMS = [(m, 1, None) for m in SCRATCH] + [(m, 2, 6) for m in SCRATCH]


def scratch(mode, layers, embed, seed):
    torch.manual_seed(seed)  # as runner/run/execute.py's model_and_optimizer
    return LanguageModel(V, SCRATCH[mode], H, layers, embed_size=embed)


@pytest.mark.parametrize("mode,layers,embed", FORMS)
def test_scratch_pack_starts_bit_identical_and_unpacks_into_its_runs(dtype, mode, layers,
                                                                     embed):
    models = [scratch(mode, layers, embed, s) for s in SEEDS]
    packed = PackedLM.pack(models)
    assert type(packed) is PackedScratchLM
    # the form decides, not the class asked: torch.nn's cells never get d2l's
    assert type(PackedScratchLM.pack([LanguageModel(V, GRUFused, H)])) is PackedLM
    first = {"rnn": "h", "gru": "z", "lstm": "i"}[mode]  # d2l's first gate
    assert getattr(packed.core, f"weight_x{first}_l0").shape == (3, embed or V, H)
    for i, m in enumerate(models):
        state = packed.unpack(i)
        assert list(state) == list(m.state_dict())  # d2l's names, in its order
        assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())
        twin = scratch(mode, layers, embed, 99)
        twin.load_state_dict(state)  # strict: a member's checkpoint is a standalone one
    assert not torch.equal(packed.unpack(0)["output.weight"], packed.unpack(1)["output.weight"])


@pytest.mark.parametrize("mode,layers,embed", FORMS)
def test_scratch_sgd_steps_match_each_standalone_run_float64(dtype, mode, layers, embed):
    models = [scratch(mode, layers, embed, s) for s in SEEDS]
    data = [batches(s) for s in SEEDS]
    # d2l's N(0, 0.01^2) weights give tiny gradients: a clip at the median of an unclipped
    # pass's norms clips some members' steps and not others'
    _, free = train_packed(PackedLM.pack(models), data, torch.tensor(LRS), clip=float("inf"))
    clip = float(free.median())
    packed = PackedLM.pack(models)
    curves, norms = train_packed(packed, data, torch.tensor(LRS), clip)
    assert (norms > clip * 1.01).any() and (norms < clip * 0.99).any()
    for i, m in enumerate(models):
        assert rel(curves[i], train_alone(m, data[i], LRS[i], clip)) < 1e-10
        assert max(rel(packed.unpack(i)[k], v) for k, v in m.state_dict().items()) < 1e-10


@pytest.mark.parametrize("dtype", [torch.float32], indirect=True)
@pytest.mark.parametrize("mode", SCRATCH)
def test_scratch_float32_curves_match_to_1e_4(dtype, mode):
    models = [scratch(mode, 1, None, s) for s in SEEDS]
    packed = PackedLM.pack(models)
    assert packed.output.weight.dtype == torch.float32
    data = [batches(s) for s in SEEDS]
    curves, _ = train_packed(packed, data, 1.0)
    for i, m in enumerate(models):
        assert rel(curves[i], train_alone(m, data[i], 1.0)) < 1e-4


def test_scratch_relu_rnn_packs_with_its_nonlinearity(dtype):
    torch.manual_seed(0)
    models = [LanguageModel(V, partial(RNNScratch, nonlinearity="relu"), H) for _ in SEEDS]
    packed = PackedLM.pack(models)
    assert packed.nonlinearity == "relu"
    data = [batches(s) for s in SEEDS]
    curves, _ = train_packed(packed, data, 1.0)
    for i, m in enumerate(models):
        assert rel(curves[i], train_alone(m, data[i], 1.0)) < 1e-10
