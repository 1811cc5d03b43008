"""The recurrent encoder-decoder: shapes and gradients on every kind of core, the masked loss,
greedy translation, attention masking, and that it learns a small task."""
import math
import random
import time

import pytest
import torch
from torch import nn

from models.seq2seq import Seq2Seq, masked_cross_entropy
from runner.tasks.bleu import corpus_bleu
from tests.helpers import layer

V_SRC, V_TGT, T_SRC, T_TGT, B = 7, 9, 5, 4, 3
PAD, BOS, EOS = 0, 1, 2


def tiny(cell="gru", attention=False, num_layers=1, impl=None, **kw):
    torch.manual_seed(0)
    return Seq2Seq(V_SRC, V_TGT, layer(cell, impl), num_hiddens=8, num_layers=num_layers,
                   embed_size=6, attention=attention, **kw)


def batch():
    g = torch.Generator().manual_seed(1)
    src = torch.randint(3, V_SRC, (T_SRC, B), generator=g)
    tgt = torch.randint(3, V_TGT, (T_TGT, B), generator=g)
    return src, torch.tensor([5, 2, 3]), tgt, torch.tensor([4, 1, 2])


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.parametrize("cell, impl", [("rnn", "nn"), ("lstm", "nn"), ("gru", "nn"),
                                        ("rnn_scratch", None), ("gru", "fused")])
def test_logits_shape_and_backward(cell, impl, attention, num_layers):
    model = tiny(cell, attention, num_layers, dropout=0.1 if num_layers > 1 else 0.0,
                 impl=impl)
    src, src_vl, tgt, tgt_vl = batch()
    tgt_in = torch.cat([torch.full((1, B), BOS), tgt[:-1]])  # <bos>, then shifted right
    logits = model(src, src_vl, tgt_in)
    assert logits.shape == (T_TGT, B, V_TGT)
    total, count = masked_cross_entropy(logits, tgt, tgt_vl)
    (total / count).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in model.encoder.parameters())


def test_options():
    with pytest.raises(ValueError, match="model.bidirectional=True is not allowed"):
        tiny(bidirectional=True)
    model = Seq2Seq(V_SRC, V_TGT, layer("gru"), num_hiddens=8, embed_size=None)
    assert model.src_embedding.embedding_dim == 8  # None: the embedding is num_hiddens wide


def test_masked_cross_entropy_exact_values():
    T, Bm, V = 2, 2, 5
    logits = torch.zeros(T, Bm, V, requires_grad=True)
    target = torch.tensor([[1, 2], [3, 4]])
    valid_len = torch.tensor([2, 1])
    total, count = masked_cross_entropy(logits, target, valid_len)
    # Uniform logits: log V per valid token; 2 + 1 valid tokens.
    assert total.item() == pytest.approx(3 * math.log(V))
    assert count.item() == 3 and count.item() == valid_len.sum().item()
    assert isinstance(total, torch.Tensor) and isinstance(count, torch.Tensor)
    # The padded position (t=1, b=1) counts for nothing, however wrong its logits are.
    huge = torch.zeros(T, Bm, V)
    huge[1, 1, 0] = 1e4  # cross-entropy 1e4 there, against target 4
    huge.requires_grad_()
    total, count = masked_cross_entropy(huge, target, valid_len)
    assert total.item() == pytest.approx(3 * math.log(V)) and count.item() == 3
    total.backward()
    assert (huge.grad[1, 1] == 0).all() and (huge.grad[0, 1] != 0).any()


class Scripted(nn.Module):
    """An output layer that ignores its input and emits one scripted token per call."""

    def __init__(self, tokens, vocab_size):
        super().__init__()
        self.tokens, self.vocab_size, self.calls = tokens, vocab_size, 0

    def forward(self, out):  # out (1, 1, H) -> (1, 1, V), the scripted token winning
        logits = torch.zeros(*out.shape[:-1], self.vocab_size)
        logits[..., self.tokens[min(self.calls, len(self.tokens) - 1)]] = 10.0
        self.calls += 1
        return logits


@pytest.mark.parametrize("attention", [False, True])
def test_translate_stops_at_eos_and_feeds_back_the_argmax(attention):
    model = tiny(attention=attention)
    model.output = Scripted([4, 6, EOS, 5], V_TGT)  # <eos> wins at step 3
    fed = []
    model.tgt_embedding.register_forward_hook(lambda m, inp, out: fed.append(inp[0].item()))
    model.train()
    ids, attn = model.translate(torch.tensor([3, 4, 5, PAD]), 3, BOS, EOS, max_len=10)
    assert ids == [4, 6]  # <eos> ends it and is left out
    assert fed == [BOS, 4, 6]  # <bos>, then each step's argmax
    assert model.training  # the training mode is restored
    assert (attn is None) != attention and (attention is False or len(attn) == 3)


@pytest.mark.parametrize("attention", [False, True])
def test_translate_with_a_rigged_output_bias(attention):
    model = tiny(attention=attention).eval()
    with torch.no_grad():
        model.output.weight.zero_()
        model.output.bias.zero_()
        model.output.bias[EOS] = 5.0  # <eos> wins at once: an empty translation
    src = torch.tensor([3, 4, 5])
    assert model.translate(src, 3, BOS, EOS, max_len=10)[0] == []
    with torch.no_grad():
        model.output.bias[5] = 10.0  # token 5 always wins: only max_len stops it
    ids, _ = model.translate(src, 3, BOS, EOS, max_len=7)
    assert ids == [5] * 7 and not model.training


def test_attention_weights_ignore_padding_and_sum_to_one():
    model = tiny(attention=True, num_layers=2)
    src, src_vl, tgt, _ = batch()
    enc_out, enc_state = model.encode(src)
    memory = model.memory(enc_out, enc_state, src_vl)
    _, _, w = model.decode(tgt, enc_state, memory)  # (T_tgt, B, T_src)
    assert w.shape == (T_TGT, B, T_SRC)
    assert torch.allclose(w.sum(-1), torch.ones(T_TGT, B))
    for b, n in enumerate(src_vl.tolist()):
        assert (w[:, b, n:] < 1e-6).all() and (w[:, b, :n] > 0).all()
    _, steps = model.translate(src[:, 1], 2, BOS, EOS, max_len=4)  # valid length 2 of 5
    for step in steps:
        assert step.shape == (T_SRC,) and step.sum().item() == pytest.approx(1.0)
        assert (step[2:] < 1e-6).all()


def reverse_data(seqs, steps=6, first=3):
    """src: tokens + <eos>; target: reversed tokens + <eos>; tgt_in: <bos> + target[:-1]."""
    src, tgt_in, tgt = (torch.full((steps, len(seqs)), PAD) for _ in range(3))
    for b, s in enumerate(seqs):
        rev = list(reversed(s)) + [EOS]
        src[:len(s) + 1, b] = torch.tensor(list(s) + [EOS])
        tgt[:len(rev), b] = torch.tensor(rev)
        tgt_in[:len(rev), b] = torch.tensor([BOS] + rev[:-1])
    return src, torch.tensor([len(s) + 1 for s in seqs]), tgt_in, tgt


@pytest.mark.slow  # trains until it learns
def test_learns_to_reverse_sequences():
    """gru with attention, 200 pairs of 3-5 tokens over an 8-token vocabulary, 25 epochs of
    Adam (about 2 s on one CPU thread): greedy translations of 20 unseen sequences."""
    first, num_tokens = 3, 8
    rng = random.Random(0)
    seen, seqs = set(), []
    while len(seqs) < 220:
        s = tuple(rng.randrange(first, first + num_tokens) for _ in range(rng.randint(3, 5)))
        if s not in seen:
            seen.add(s)
            seqs.append(s)
    train, held_out = seqs[:200], seqs[200:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, and the CPU is shared
    try:
        torch.manual_seed(0)
        vocab = first + num_tokens
        model = Seq2Seq(vocab, vocab, layer("gru"), num_hiddens=32, embed_size=16, attention=True)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        start = time.perf_counter()
        for _ in range(25):
            order = torch.randperm(len(train)).tolist()
            for i in range(0, len(train), 25):
                src, src_vl, tgt_in, tgt = reverse_data([train[j] for j in order[i:i + 25]])
                # The target (reversed tokens + <eos>) is as long as the source: same lengths.
                total, count = masked_cross_entropy(model(src, src_vl, tgt_in), tgt, src_vl)
                opt.zero_grad()
                (total / count).backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
        elapsed = time.perf_counter() - start
        hyps, refs = [], []
        for s in held_out:
            # Padded to the training length, as d2l's predict_seq2seq does (truncate_pad):
            # the encoder's final state, the decoder's first, has read the padding too.
            src, src_vl, _, _ = reverse_data([s])
            ids, _ = model.translate(src[:, 0], int(src_vl[0]), BOS, EOS, 10)
            hyps.append(" ".join(map(str, ids)))
            refs.append(" ".join(map(str, reversed(s))))
    finally:
        torch.set_num_threads(threads)
    bleu = corpus_bleu(hyps, refs)["score"]
    print(f"reverse task: BLEU {bleu:.1f} after {elapsed:.2f} s of training")
    assert bleu >= 60, list(zip(hyps, refs))
    assert elapsed < 12  # ~2 s alone; a loose bound for a shared CPU
