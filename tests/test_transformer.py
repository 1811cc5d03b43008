"""models.transformer: causality (the LM's and the decoder's), the LM's context state against
one long call, parameter counts in closed form, source padding, greedy translation, the
LanguageModel interface (detach, generate), errors, and that both models learn a small task."""
import math

import pytest
import torch
import torch.nn.functional as F

from models.lm import LanguageModel, detach, generate, num_params
from models.seq2seq import masked_cross_entropy
from models.transformer import TransformerLM, TransformerSeq2Seq
from tests.helpers import layer

V, T, B, D, F_, L = 11, 6, 2, 16, 32, 2  # vocab, steps, batch, d_model, ffn width, layers
SIZES = dict(num_hiddens=D, num_heads=2, ffn_num_hiddens=F_, num_layers=L)
PAD, BOS, EOS = 0, 1, 2


def lm(dropout=0.0, **kw):
    torch.manual_seed(0)
    return TransformerLM(V, **{**SIZES, "context": 8, "max_len": 64, "dropout": dropout, **kw})


def s2s(dropout=0.0, **kw):
    torch.manual_seed(0)
    return TransformerSeq2Seq(V, V + 2, **{**SIZES, "max_len": 64, "dropout": dropout, **kw})


def ids(*shape, seed=1):
    return torch.randint(3, V, shape, generator=torch.Generator().manual_seed(seed))


def changed_at(x, t):
    """x with the token at row t replaced by another one."""
    x = x.clone()
    x[t] = (x[t] - 3 + 1) % (V - 3) + 3
    return x


def assert_causal(logits_of, x):
    """Changing row t' leaves every earlier row's logits as they were, and changes row t'."""
    with torch.no_grad():
        ref = logits_of(x)
        for t in range(len(x)):
            out = logits_of(changed_at(x, t))
            torch.testing.assert_close(out[:t], ref[:t], rtol=0, atol=1e-5)
            assert not torch.allclose(out[t], ref[t], atol=1e-3), t  # row t does read x[t]


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("context_len", [0, 3])
def test_lm_is_causal(norm_first, context_len):
    model = lm(norm_first=norm_first).eval()
    state = ids(context_len, B, seed=2)
    assert_causal(lambda x: model(x, state)[0], ids(T, B))
    assert model.sees_future is False


@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_lm_sees_the_future_only_when_bidirectional(bidirectional):
    """Documents what the causality check catches: a bidirectional GRU reads later tokens."""
    torch.manual_seed(0)
    model = LanguageModel(V, layer("gru"), 8, bidirectional=bidirectional).eval()
    x = ids(T, B)
    with torch.no_grad():
        ref = model(x, model.begin_state(B))[0]
        out = model(changed_at(x, T - 1), model.begin_state(B))[0]
    assert model.sees_future is bidirectional
    assert torch.allclose(out[:T - 1], ref[:T - 1]) is not bidirectional


def test_lm_context_state_equals_one_long_call():
    model = lm().eval()  # context 8
    x1, x2, x3 = ids(4, B, seed=1), ids(3, B, seed=2), ids(5, B, seed=3)
    state = model.begin_state(B)
    assert state.shape == (0, B) and state.dtype == torch.long
    with torch.no_grad():
        whole, _ = model(torch.cat((x1, x2)), state)
        _, state = model(x1, state)
        assert state.shape == (4, B) and detach(state) is not None
        logits, state = model(x2, detach(state))
        torch.testing.assert_close(logits, whole[4:], rtol=0, atol=1e-5)
        assert state.shape == (7, B)
        _, state = model(x3, state)
    torch.testing.assert_close(state, torch.cat((x1, x2, x3))[-8:])  # the last `context` ids


def test_lm_without_context_keeps_an_empty_state():
    model = lm(context=0).eval()
    with torch.no_grad():
        logits, state = model(ids(T, B), model.begin_state(B))
        assert state.shape == (0, B)
        again, _ = model(ids(T, B), state)
    torch.testing.assert_close(again, logits)  # no memory of the first call


def test_lm_trains_through_every_parameter():
    model = lm(dropout=0.1, positional="learned")
    logits, state = model(ids(T, B), model.begin_state(B))
    assert logits.shape == (T, B, V) and not state.requires_grad
    F.cross_entropy(logits.reshape(-1, V), ids(T, B, seed=5).reshape(-1)).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_embedding_and_sinusoidal_table_are_d2ls():
    model = lm()
    table = model.embed.table  # (max_len, D)
    pos, j = 5, 3
    angle = pos / 10000 ** (2 * j / D)
    assert table[pos, 2 * j] == pytest.approx(math.sin(angle), abs=1e-6)
    assert table[pos, 2 * j + 1] == pytest.approx(math.cos(angle), abs=1e-6)
    assert not any("table" in k for k in model.state_dict())  # fixed: rebuilt, not saved
    x = ids(T, B)  # tokens scaled by sqrt(d) as d2l, so positions do not swamp them
    expected = model.embed.embedding(x) * math.sqrt(D) + table[:T, None]
    torch.testing.assert_close(model.embed(x), expected)


def encoder_layer(d, f):
    # self-attention in/out projections with biases, feed-forward, two LayerNorms
    return 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_parameter_counts(positional, norm_first):
    d, f, max_len, v_tgt = D, F_, 64, V + 2
    positions = max_len * d if positional == "learned" else 0
    final_norm = 2 * d if norm_first else 0
    expected_lm = V * d + positions + L * encoder_layer(d, f) + final_norm + d * V + V
    assert num_params(lm(positional=positional, norm_first=norm_first)) == expected_lm
    decoder_layer = encoder_layer(d, f) + 4 * d * d + 4 * d + 2 * d  # + cross-attention, LN
    expected_s2s = (V * d + v_tgt * d + 2 * positions + L * (encoder_layer(d, f) + decoder_layer)
                    + 2 * final_norm + d * v_tgt + v_tgt)
    assert num_params(s2s(positional=positional, norm_first=norm_first)) == expected_s2s


def test_seq2seq_shape_padding_and_causal_decoder():
    model = s2s().eval()
    src, valid, tgt_in = ids(5, B, seed=1), torch.tensor([3, 5]), ids(4, B, seed=2)
    with torch.no_grad():
        ref = model(src, valid, tgt_in)
        assert ref.shape == (4, B, V + 2)
        padded = src.clone()
        padded[3:, 0] = PAD + 7  # rows 3, 4 of sentence 0 are padding (valid_len 3)
        torch.testing.assert_close(model(padded, valid, tgt_in), ref, rtol=0, atol=1e-5)
        assert not torch.allclose(model(changed_at(src, 2), valid, tgt_in), ref, atol=1e-3)
    assert_causal(lambda y: model(src, valid, y), tgt_in)


def test_translate_stops_at_eos_and_at_max_len():
    model = s2s()
    src = ids(5, seed=1)
    with torch.no_grad():
        model.output.weight.zero_()
        model.output.bias.zero_()
        model.output.bias[EOS] = 10.0  # every step's argmax is <eos>
    assert model.translate(src, 3, BOS, EOS, max_len=6) == ([], None)
    with torch.no_grad():
        model.output.bias[7] = 20.0  # now never <eos>
    model.eval()
    assert model.translate(src, 3, BOS, EOS, max_len=6) == ([7] * 6, None)
    assert not model.training  # the flag is restored, eval as well as train
    assert model.train().translate(src, 3, BOS, EOS, max_len=2)[0] == [7, 7] and model.training


def test_generate_slides_a_window_of_context():
    """generate warms up on the prefix, then each step reads the last `context` ids plus the
    token it just produced: the same as a fresh call on that window."""
    model = lm(context=3).eval()
    prefix = ids(6, seed=4).tolist()
    out = generate(model, prefix, 5, "cpu")
    assert len(out) == 5 and not model.training
    seq = prefix + out
    with torch.no_grad():
        for k in range(1, 5):
            window = torch.tensor(seq[len(prefix) + k - 4:len(prefix) + k]).reshape(-1, 1)
            logits, _ = model(window, model.begin_state(1))
            assert int(logits[-1, 0].argmax()) == out[k]


@pytest.mark.parametrize("kw,match", [
    (dict(num_hiddens=32, num_heads=3),
     r"model.num_heads=3 is not allowed: it must divide model.num_hiddens=32 "
     r"\(e.g. model.num_heads=4\)"),
    (dict(positional="rotary"), r"model.positional='rotary'.*sinusoidal, learned"),
    (dict(cell="gru"), "model.cell='gru'"),
    (dict(num_layers=0), "model.num_layers=0"),
    (dict(context=-1), "model.context=-1"),
])
def test_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        lm(**kw)
    if "context" not in kw:
        with pytest.raises(ValueError, match=match):
            s2s(**kw)


def test_inputs_longer_than_max_len():
    model = lm(max_len=8, context=4)
    model(ids(8, B), model.begin_state(B))  # 8 positions: fits
    with pytest.raises(ValueError, match="10 positions but model.max_len=8"):
        model(ids(6, B), ids(4, B))  # 4 of context + 6 new
    with pytest.raises(ValueError, match="model.max_len=8"):
        s2s(max_len=8)(ids(9, B), torch.tensor([9, 9]), ids(3, B))


def test_lm_learns_a_periodic_sequence():
    torch.manual_seed(0)
    model = TransformerLM(V, **SIZES, dropout=0.0, context=0, max_len=32)
    series = torch.arange(3, 8).repeat(20)  # period 5
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        starts = torch.randint(0, len(series) - 9, (8,))
        window = torch.stack([series[s:s + 9] for s in starts.tolist()], dim=1)  # (9, 8)
        logits, _ = model(window[:-1], model.begin_state(8))
        loss = F.cross_entropy(logits.reshape(-1, V), window[1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1  # chance: log(11) = 2.4 nats


def test_seq2seq_learns_to_reverse():
    torch.manual_seed(0)
    model = TransformerSeq2Seq(V, V, **SIZES, dropout=0.0, max_len=16)
    g = torch.Generator().manual_seed(3)
    n, T_max = 24, 6  # sentences of 3..5 tokens, then <eos>, then padding
    lens = torch.randint(3, 6, (n,), generator=g)
    sents = [torch.randint(3, V, (int(k),), generator=g) for k in lens]

    def padded(rows):
        return torch.stack([F.pad(r, (0, T_max - len(r)), value=PAD) for r in rows], dim=1)
    eos = torch.tensor([EOS])
    src = padded([torch.cat((s, eos)) for s in sents])  # (T_max, n)
    tgt = padded([torch.cat((s.flip(0), eos)) for s in sents])
    tgt_in = torch.cat((torch.full((1, n), BOS), tgt[:-1]))
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(150):
        total, count = masked_cross_entropy(model(src, lens + 1, tgt_in), tgt, lens + 1)
        opt.zero_grad()
        (total / count).backward()
        opt.step()
    got = [model.translate(src[:, i], int(lens[i]) + 1, BOS, EOS, T_max)[0] for i in range(n)]
    correct = [out == s.flip(0).tolist() for out, s in zip(got, sents)]
    assert sum(correct) >= n - 2, got
