"""models/packed_memory_seq2seq.py's count of a packed encoder-decoder's memory against the bytes
an actual PackedSeq2Seq holds after one training step (tests/test_packed_memory.py's `held`)."""
import pytest
import torch

from models.packed import PackedLM, packed_bytes
from models.packed_memory import memory_parts
from models.packed_seq2seq import member_masked_losses
from models.seq2seq import Seq2Seq
from runner.tasks import build_task
from tests.helpers import compose_config
from tests.test_packed_memory import CELLS, held
from tests.test_translation import overrides, write_fra

# (cell, num_layers, embed_size, dropout, optimizer): each way the count changes
CASES = [("gru", 1, 6, 0.0, "sgd"), ("lstm", 1, 6, 0.0, "adam"), ("rnn", 2, 6, 0.0, "sgd"),
         ("gru", 2, 6, 0.5, "adam"), ("lstm", 2, None, 0.5, "momentum"),
         ("gru_scratch", 2, 6, 0.5, "adam"), ("lstm_scratch", 1, 6, 0.0, "sgd"),
         ("rnn_scratch", 2, 6, 0.5, "adamw")]
SIZES = {"task": "translation", "src_vocab_size": 13, "tgt_vocab_size": 11, "num_hiddens": 5,
         "batch_size": 3, "num_steps": 4, "dtype": "float32"}


def counted(sizes, members):
    """The bytes an actual PackedSeq2Seq of `sizes` holds by part, after one training step
    on a batch shaped as TranslationTask.packed_loss stacks it."""
    models = []
    for seed in range(members):
        torch.manual_seed(seed)
        models.append(Seq2Seq(sizes["src_vocab_size"], sizes["tgt_vocab_size"],
                              CELLS[sizes["cell"]], sizes["num_hiddens"], sizes["num_layers"],
                              dropout=sizes["dropout"], embed_size=sizes["embed_size"]))
    packed = PackedLM.pack(models).seed_dropout(range(members))
    T, B = sizes["num_steps"], sizes["batch_size"]
    shape = (members, T, B)  # source and target alike, as the task pads or cuts them
    src, dec_in, y = (torch.randint(0, sizes[f"{v}_vocab_size"], shape)
                      for v in ("src", "tgt", "tgt"))
    src_len, y_len = (torch.randint(1, T + 1, (members, B)) for _ in "xy")
    return held(packed, members, sizes["optimizer"],
                lambda p: member_masked_losses(p(src, src_len, dec_in), y, y_len)[0])


@pytest.mark.parametrize("cell,num_layers,embed_size,dropout,optimizer", CASES)
def test_packed_bytes_counts_what_an_actual_seq2seq_pack_holds(cell, num_layers, embed_size,
                                                               dropout, optimizer):
    sizes = {**SIZES, "cell": cell, "num_layers": num_layers, "embed_size": embed_size,
             "dropout": dropout, "optimizer": optimizer}
    parts = memory_parts(sizes, 3)
    assert counted(sizes, 3) == {k: parts[k] for k in
                                 ("parameters", "gradients", "optimizer", "activations")}
    assert packed_bytes(sizes, 3) == parts["total"] == sum(
        v for k, v in parts.items() if k != "total")


def test_seq2seq_bytes_grow_linearly_with_members_and_refuse_what_is_not_packed():
    # the study's preset (conf/preset/recurrent/tatoeba.yaml, conf/data/tatoeba.yaml), with the
    # vocabularies the task builds from the local fra.txt's lines 0..600 (docs/packing.md)
    sizes = {"task": "translation", "cell": "gru", "src_vocab_size": 189,
             "tgt_vocab_size": 201, "num_hiddens": 32, "num_layers": 2, "embed_size": 32,
             "batch_size": 64, "num_steps": 10, "dropout": 0.1, "optimizer": "adam"}
    one = packed_bytes(sizes, 1)
    assert packed_bytes(sizes, 7) == 7 * one - 6 * 4  # nll's one number is the pack's
    # N: what the standalone model holds, each member once
    study = Seq2Seq(189, 201, CELLS["gru"], 32, 2, dropout=0.1, embed_size=32)
    assert memory_parts(sizes, 1)["parameters"] == 4 * sum(
        p.numel() for p in study.parameters()) == 4 * 47_529
    # the language model's vocab_size is not the translation's: the missing keys are named
    lm_keys = {k: v for k, v in sizes.items() if not k.endswith("_vocab_size")}
    with pytest.raises(ValueError, match="sizes lack src_vocab_size, tgt_vocab_size: a "
                                         "translation pack is sized from cell, "):
        packed_bytes({**lm_keys, "vocab_size": 201}, 1)
    with pytest.raises(ValueError, match="attention=True cannot be sized: packs hold the "
                                         "encoder-decoder without attention"):
        packed_bytes({**sizes, "attention": True}, 1)
    with pytest.raises(ValueError, match="task='regression' cannot be sized: it must be one "
                                         "of language_model, translation"):
        packed_bytes({**sizes, "task": "regression"}, 1)
    with pytest.raises(ValueError, match="cell='transformer' cannot be sized"):
        packed_bytes({**sizes, "cell": "transformer"}, 1)


def test_the_count_reads_the_sizes_a_translation_run_records(tmp_path):
    # the study's preset (Adam, 2 layers, dropout 0.1), shrunk; the task pads or cuts source
    # and target to data.num_steps, and its vocabularies are the ones result.json records
    cfg = compose_config(*overrides(write_fra(tmp_path)), "model.num_hiddens=6",
                         "model.embed_size=4", "data.batch_size=8", "data.num_steps=5")
    task = build_task(cfg)
    models = []
    for seed in range(2):
        torch.manual_seed(seed)
        models.append(task.new_model(torch.device("cpu")))
    packed = PackedLM.pack(models).seed_dropout(range(2))
    batches = [next(task.train_batches()) for _ in range(2)]
    assert batches[0][0].shape == batches[0][2].shape == (5, 8)  # (num_steps, batch_size)
    m, d = cfg.model, task.provenance
    sizes = {"task": "translation", "cell": m.cell, "src_vocab_size": d["src_vocab_size"],
             "tgt_vocab_size": d["tgt_vocab_size"], "num_hiddens": m.num_hiddens,
             "num_layers": m.num_layers, "embed_size": m.embed_size, "dropout": m.dropout,
             "batch_size": cfg.data.batch_size, "num_steps": cfg.data.num_steps,
             "optimizer": "adam"}
    parts = memory_parts(sizes, 2)
    assert held(packed, 2, "adam", lambda p: task.packed_loss(p, batches, None)[0]) == {
        k: parts[k] for k in ("parameters", "gradients", "optimizer", "activations")}
