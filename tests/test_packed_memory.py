"""models/packed_memory.py's count of a pack's memory against an independent one: the bytes
of an actual pack's parameters, gradients, optimizer state and the tensors autograd saved
(torch.autograd.graph.saved_tensors_hooks, each storage once) over one training step."""
import pytest
import torch

from models.cells import GRUFused, RNNFused, lstm
from models.lm import LanguageModel
from models.packed import PackedLM, clip_per_member, member_losses, packed_bytes
from models.packed_memory import memory_parts
from models.packed_optim_config import packed_optimizer
from models.scratch import GRUScratch, LSTMScratch, RNNScratch

CELLS = {"rnn": RNNFused, "gru": GRUFused, "lstm": lstm, "rnn_scratch": RNNScratch,
         "gru_scratch": GRUScratch, "lstm_scratch": LSTMScratch}
# the pack's own optimizers, as the runner builds them (models/packed_optim_config.py)
OPTIMIZERS = {"sgd": {"_target_": "torch.optim.SGD", "lr": 0.1},
              "momentum": {"_target_": "torch.optim.SGD", "lr": 0.1, "momentum": 0.9},
              "adam": {"_target_": "torch.optim.Adam", "lr": 0.01},
              "adamw": {"_target_": "torch.optim.AdamW", "lr": 0.01}}
# (cell, num_layers, embed_size, dropout, optimizer): each way the count changes
CASES = [("rnn", 1, None, 0.0, "sgd"), ("gru", 1, None, 0.0, "sgd"),
         ("lstm", 1, None, 0.0, "adam"), ("gru", 2, 6, 0.5, "momentum"),
         ("rnn_scratch", 2, 6, 0.5, "sgd"), ("gru_scratch", 2, None, 0.0, "adam"),
         ("lstm_scratch", 2, 6, 0.5, "momentum"), ("lstm", 3, 6, 0.5, "adamw")]


def held(packed, members, optimizer, loss):
    """The bytes `packed` holds by part after one training step of `loss(packed)` (its members'
    losses): forward and loss under saved_tensors_hooks, backward, clip, packed optimizer step."""
    fixed = {t.untyped_storage().data_ptr() for t in [*packed.parameters(), *packed.buffers()]}
    saved = {}

    def keep(t):  # each storage once; parameters are counted as parameters
        if t.untyped_storage().data_ptr() not in fixed:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    opt = packed_optimizer(OPTIMIZERS[optimizer], packed.parameters(), members)
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        losses = loss(packed)
    losses.sum().backward()
    clip_per_member(packed, 1.0)
    opt.step()
    state = opt.state  # plain SGD keeps none (its lr: P numbers, not counted)

    def nbytes(tensors):
        return sum(t.numel() * t.element_size() for t in tensors)

    return {"parameters": nbytes(packed.parameters()),
            "gradients": nbytes(p.grad for p in packed.parameters()),
            "optimizer": nbytes(v for s in state.values() for v in s.values()),
            "activations": sum(saved.values())}


def counted(sizes, members):
    """The bytes an actual pack of `sizes` holds by part, after one training step."""
    models = []
    for seed in range(members):
        torch.manual_seed(seed)
        models.append(LanguageModel(sizes["vocab_size"], CELLS[sizes["cell"]],
                                    sizes["num_hiddens"], sizes["num_layers"],
                                    dropout=sizes["dropout"], embed_size=sizes["embed_size"]))
    packed = PackedLM.pack(models).seed_dropout(range(members))
    V, T, B = sizes["vocab_size"], sizes["num_steps"], sizes["batch_size"]
    x, y = (torch.randint(0, V, (members, T, B)) for _ in "xy")  # two storages, as a loop's
    return held(packed, members, sizes["optimizer"],
                lambda p: member_losses(p(x, p.begin_state(B))[0], y))


@pytest.mark.parametrize("cell,num_layers,embed_size,dropout,optimizer", CASES)
def test_packed_bytes_counts_what_an_actual_pack_holds(cell, num_layers, embed_size, dropout,
                                                       optimizer):
    sizes = {"cell": cell, "vocab_size": 11, "num_hiddens": 5, "num_layers": num_layers,
             "batch_size": 3, "num_steps": 4, "embed_size": embed_size, "dropout": dropout,
             "optimizer": optimizer, "dtype": "float32"}
    parts = memory_parts(sizes, 3)
    assert counted(sizes, 3) == {k: parts[k] for k in
                                 ("parameters", "gradients", "optimizer", "activations")}
    assert packed_bytes(sizes, 3) == parts["total"] == sum(
        v for k, v in parts.items() if k != "total")


def test_packed_bytes_grows_linearly_with_members_and_refuses_unknown_sizes():
    sizes = {"cell": "gru", "vocab_size": 28, "num_hiddens": 256, "num_layers": 1,
             "batch_size": 32, "num_steps": 35}
    one = packed_bytes(sizes, 1)
    assert packed_bytes(sizes, 5) == 5 * one - 4 * 4  # nll's one number is the pack's
    # the study's gru: N = 3 * 256 * (28 + 256 + 2) + 28 * 256 + 28 = 226,844 parameters
    assert memory_parts(sizes, 1)["parameters"] == 226_844 * 4
    with pytest.raises(ValueError, match="cell='sru' cannot be sized: it must be one of rnn, "
                                         "gru, lstm \\(or <cell>_scratch\\)"):
        packed_bytes({**sizes, "cell": "sru"}, 1)
    with pytest.raises(ValueError, match="optimizer='rmsprop' cannot be sized"):
        packed_bytes({**sizes, "optimizer": "rmsprop"}, 1)
