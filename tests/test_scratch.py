"""models/scratch.py is d2l 0.17.6's RNN, GRU and LSTM from scratch (the study's "from scratch"):
checked against d2l's own code, transcribed in tests/d2l_scratch.py, for outputs, final states,
gradients, parameter counts and initialisation; and shown not to be torch.nn's model, which is
what lets the study's from-scratch vs nn.RNN gap appear at all."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models import LanguageModel, init_weights, make_core, num_params
from models.scratch import ScratchRNN
from runner.report.reference import reference_for
from runner.run.execute import run
from tests.d2l_scratch import D2L, D2L_NAMES, MODES, D2LRNNModelScratch
from tests.helpers import layer as model_layer
from tests.test_reference import summary_of

# --------------------------------------------------------------------------------------------
# Between our parameters and d2l's


def ours(name: str, layer: int = 0, reverse: bool = False) -> str:
    """Our core's parameter holding d2l's `name`: W_xz -> weight_xz_l0, b_z -> bias_z_l0."""
    kind, gate = name.split("_")
    prefix = {"W": "weight_", "b": "bias_"}[kind]
    return f"{prefix}{gate}_l{layer}" + ("_reverse" if reverse else "")


def d2l_params(core: nn.Module, mode: str, head_w, head_b, layer=0, reverse=False) -> list:
    """d2l's params list holding copies of one layer and direction of `core` (fresh leaves, so
    d2l's gradients are its own), with W_hq = head_w (H, V) and b_q = head_b."""
    params = [getattr(core, ours(n, layer, reverse)) for n in D2L_NAMES[mode]] + [head_w, head_b]
    return [p.detach().clone().requires_grad_() for p in params]


def randomize(model: nn.Module, seed: int = 1, std: float = 0.5) -> nn.Module:
    """Every parameter, biases included, from N(0, std^2): at d2l's init (weights 0.01, biases
    0) every gate sits near 1/2 and a misplaced bias or reset gate would go unseen."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return model


def d2l_state(mode, batch_size, num_hiddens, seed=2, dtype=torch.float32):
    """A random state, as d2l's init_*_state tuple would hold one (zeros are too easy)."""
    g = torch.Generator().manual_seed(seed)
    n = 2 if mode == "lstm" else 1
    return tuple(torch.randn(batch_size, num_hiddens, generator=g, dtype=dtype) for _ in range(n))


def to_ours(state):
    """d2l's state tuple of (B, H) -> ours: (1, B, H), a tuple (h, c) for lstm."""
    state = tuple(s.unsqueeze(0) for s in state)
    return state if len(state) == 2 else state[0]


def to_d2l(state):
    return tuple(s.squeeze(0) for s in (state if isinstance(state, tuple) else (state,)))


V, H, T, B = 7, 5, 6, 3


# --------------------------------------------------------------------------------------------
# The same model as d2l's: outputs, final state, gradients, counts, init


@pytest.mark.parametrize("mode", MODES)
def test_lm_equals_d2l_rnn_model_scratch(mode):
    """Our LanguageModel with a _scratch cell against d2l's RNNModelScratch as d2l calls it
    (float32, one-hot of X.T), over two consecutive calls carrying the state, loss as d2l's
    train_epoch_ch8: outputs, final states and every parameter's gradient agree."""
    model = randomize(LanguageModel(V, model_layer(f"{mode}_scratch"), H))
    get_params, init_state, forward_fn = D2L[mode]
    net = D2LRNNModelScratch(V, H, "cpu", get_params, init_state, forward_fn)
    net.params = d2l_params(model.core, mode, model.output.weight.T, model.output.bias)
    assert [p.shape for p in net.params] == [p.shape for p in get_params(V, H, "cpu")]
    g = torch.Generator().manual_seed(3)
    Xs = [torch.randint(0, V, (B, T), generator=g) for _ in range(2)]  # d2l's batches: (B, T)
    Ys = [torch.randint(0, V, (B, T), generator=g) for _ in range(2)]

    start = d2l_state(mode, B, H)
    d2l_state_, ours_state, d2l_loss, ours_loss = start, to_ours(start), 0, 0
    for X, Y in zip(Xs, Ys):
        y_hat, d2l_state_ = net(X, d2l_state_)  # (T*B, V), time-major rows
        logits, ours_state = model(X.T, ours_state)  # (T, B, V)
        torch.testing.assert_close(logits.reshape(-1, V), y_hat, rtol=1e-6, atol=1e-6)
        for a, b in zip(to_d2l(ours_state), d2l_state_):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
        y = Y.T.reshape(-1)
        d2l_loss = d2l_loss + F.cross_entropy(y_hat, y.long()).mean()
        ours_loss = ours_loss + F.cross_entropy(logits.reshape(-1, V), y)
    d2l_loss.backward()
    ours_loss.backward()
    grads = [p.grad for p in model.core.parameters()] + [model.output.weight.grad.T,
                                                          model.output.bias.grad]
    assert len(grads) == len(net.params)
    for name, a, b in zip(D2L_NAMES[mode] + ["W_hq", "b_q"], grads, net.params):
        torch.testing.assert_close(a, b.grad, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("mode", MODES)
def test_core_equals_d2l_in_float64(mode):
    """The same in float64, calling d2l's forward function on the one-hot input directly
    (RNNModelScratch casts it to float32): agreement to rounding, 1e-12."""
    model = randomize(LanguageModel(V, model_layer(f"{mode}_scratch"), H).double())
    params = d2l_params(model.core, mode, model.output.weight.T, model.output.bias)
    X = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(4))
    state = d2l_state(mode, B, H, dtype=torch.float64)
    y_hat, d2l_final = D2L[mode][2](F.one_hot(X.T, V).double(), state, params)
    logits, final = model(X.T, to_ours(state))
    torch.testing.assert_close(logits.reshape(-1, V), y_hat, rtol=1e-12, atol=1e-12)
    for a, b in zip(to_d2l(final), d2l_final):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    (logits.square().sum() + sum(s.sum() for s in to_d2l(final))).backward()
    (y_hat.square().sum() + sum(s.sum() for s in d2l_final)).backward()
    for name, p in zip(D2L_NAMES[mode], params):
        torch.testing.assert_close(getattr(model.core, ours(name)).grad, p.grad, rtol=1e-12,
                                   atol=1e-12, msg=name)


def _d2l_hidden(mode, core, x, state, layer, reverse):
    """d2l's forward function as one layer: W_hq = I, b_q = 0 make its outputs Y the hidden
    states H themselves. x (T, B, I) -> H (T, B, H) and the final state."""
    eye, zero = torch.eye(H, dtype=x.dtype), torch.zeros(H, dtype=x.dtype)
    params = d2l_params(core, mode, eye, zero, layer, reverse)
    seq = x.flip(0) if reverse else x
    out, final = D2L[mode][2](seq, state, params)
    out = out.reshape(seq.shape[0], -1, H)
    return (out.flip(0) if reverse else out), final


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layers,bidir", [(2, False), (1, True), (2, True)])
def test_deep_and_bidirectional_are_d2l_layer_by_layer(mode, layers, bidir):
    """Beyond d2l: each layer (and direction) is d2l's function on the layer below's output
    (both directions' outputs side by side), each with its own initial state."""
    D = 2 if bidir else 1
    core = randomize(ScratchRNN(mode, 4, H, layers, bidirectional=bidir).double())
    g = torch.Generator().manual_seed(5)
    x = torch.randn(T, B, 4, generator=g, dtype=torch.float64)
    states = [d2l_state(mode, B, H, seed=10 + k, dtype=torch.float64) for k in range(layers * D)]
    full = tuple(torch.stack(s) for s in zip(*states))  # (L*D, B, H) each
    out, final = core(x, full if mode == "lstm" else full[0])
    finals = []
    for layer in range(layers):
        outs = []
        for d in range(D):
            o, f = _d2l_hidden(mode, core, x, states[layer * D + d], layer, bool(d))
            outs.append(o)
            finals.append(f)
        x = torch.cat(outs, -1)
    torch.testing.assert_close(out, x, rtol=1e-12, atol=1e-12)
    expected = tuple(torch.stack(s) for s in zip(*finals))
    got = final if mode == "lstm" else (final,)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_parameter_counts_are_d2ls(mode):
    for vocab, hidden in ((28, 512), (7, 5), (28, 256)):
        d2l_count = sum(p.numel() for p in D2L[mode][0](vocab, hidden, "cpu"))
        model = LanguageModel(vocab, model_layer(f"{mode}_scratch"), hidden)
        assert num_params(model) == d2l_count


def test_the_studys_rnn_from_scratch_has_fewer_parameters_than_nn_rnn():
    """28 characters, 512 hidden: d2l's 291,356 (one bias) against nn.RNN's 291,868 (two)."""
    assert num_params(LanguageModel(28, model_layer("rnn_scratch"), 512)) == 291_356
    assert num_params(LanguageModel(28, model_layer("rnn"), 512)) == 291_868
    assert num_params(LanguageModel(28, model_layer("gru_scratch"), 512)) == \
        num_params(LanguageModel(28, model_layer("gru"), 512)) - 3 * 512


@pytest.mark.parametrize("mode", MODES)
def test_init_draws_d2ls_numbers_at_the_same_seed(mode):
    """d2l's get_params and our LanguageModel draw the same tensors in the same order: at one
    seed a one-layer one-hot model starts from exactly d2l's parameters, W_hq and b_q too."""
    torch.manual_seed(7)
    model = LanguageModel(V, model_layer(f"{mode}_scratch"), H)
    torch.manual_seed(7)
    params = D2L[mode][0](V, H, "cpu")
    mine = [getattr(model.core, ours(n)) for n in D2L_NAMES[mode]] + [model.output.weight.T,
                                                                       model.output.bias]
    assert len(mine) == len(params) == len(list(model.parameters()))
    for name, a, b in zip(D2L_NAMES[mode] + ["W_hq", "b_q"], mine, params):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("mode", MODES)
def test_default_init_is_d2ls_and_a_named_scheme_replaces_it(mode):
    torch.manual_seed(0)
    model = LanguageModel(28, model_layer(f"{mode}_scratch"), 512)
    weights = {n: p for n, p in model.named_parameters() if p.dim() == 2}
    biases = {n: p for n, p in model.named_parameters() if p.dim() == 1}
    assert len(weights) == 2 * len(D2L_NAMES[mode]) // 3 + 1 and "output.weight" in weights
    for name, p in weights.items():  # N(0, 0.01^2): 512x512 or 28x512 draws
        assert abs(p.std().item() - 0.01) < 0.0005, name
        assert abs(p.mean().item()) < 0.0005, name
    assert all(not p.any() for p in biases.values()) and "output.bias" in biases
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert init_weights(model, "default") is model  # default: the model's own, d2l's
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    init_weights(model, "xavier_uniform")
    for name, p in weights.items():
        assert not torch.equal(p, before[name]), name
    w_h = getattr(model.core, ours(D2L_NAMES[mode][1]))  # 512x512: xavier std sqrt(2 / 1024)
    assert abs(w_h.std().item() - (2 / 1024) ** 0.5) < 0.002
    assert all(not p.any() for p in biases.values())


def test_relu_rnn_really_differs_from_tanh():
    torch.manual_seed(0)
    relu = randomize(ScratchRNN("rnn", 3, 4, nonlinearity="relu"))
    tanh = randomize(ScratchRNN("rnn", 3, 4))
    x, h = torch.randn(5, 2, 3) * 3, torch.zeros(1, 2, 4)
    out_relu, _ = relu(x, h)
    assert (out_relu >= 0).all() and not torch.allclose(out_relu, tanh(x, h)[0])


def test_unknown_mode_is_refused_by_name():
    with pytest.raises(ValueError, match=r"no scratch 'sru' layer.*'rnn', 'gru', 'lstm'"):
        ScratchRNN("sru", 3, 4)


# --------------------------------------------------------------------------------------------
# Not torch.nn's model: what makes the study's from-scratch vs nn.RNN gap possible


def test_gru_reset_gate_is_not_torch_nns():
    """With d2l's GRU weights copied into nn.GRU (one bias per gate: torch.nn's b_hh zero), the
    two still differ: d2l's reset gate scales H before W_hh, torch.nn's scales W_hn h. With
    W_hh = 0 the reset gate has nothing to act on, and then they agree (the copy is right)."""
    torch.manual_seed(0)
    mine = randomize(make_core(model_layer("gru_scratch"), 3, H))
    ref = nn.GRU(3, H)

    def stacked(names):  # d2l's (in, H) matrices -> torch.nn's (3H, in), gates r, z, n
        return torch.cat([getattr(mine, ours(n)) for n in names], dim=1).T

    with torch.no_grad():
        ref.weight_ih_l0.copy_(stacked(["W_xr", "W_xz", "W_xh"]))
        ref.weight_hh_l0.copy_(stacked(["W_hr", "W_hz", "W_hh"]))
        ref.bias_ih_l0.copy_(torch.cat([mine.bias_r_l0, mine.bias_z_l0, mine.bias_h_l0]))
        ref.bias_hh_l0.zero_()
        x, h = torch.randn(T, B, 3), torch.randn(1, B, H)
        assert (mine(x, h)[0] - ref(x, h)[0]).abs().max() > 1e-2
        mine.weight_hh_l0.zero_()
        ref.weight_hh_l0[2 * H:].zero_()
        torch.testing.assert_close(mine(x, h)[0], ref(x, h)[0])


def test_training_differs_from_nn_rnn(tiny_cfg, tmp_path):
    """Same seed, same data, default init: d2l's RNN from scratch and nn.RNN learn differently
    (they would coincide if rnn_scratch were nn.RNN written out, as it used to be)."""
    curves = {}
    for cell in ("rnn", "rnn_scratch"):
        result = run(tiny_cfg(f"model={cell}"), tmp_path / cell)
        assert result["status"] == "completed"
        curves[cell] = result["curves"]["train_perplexity"]
    gap = max(abs(a - b) / b for a, b in zip(curves["rnn_scratch"], curves["rnn"]))
    assert gap > 0.01, curves


def test_reference_rows_from_scratch_go_to_rnn_scratch_only():
    """Tables 9-10's "from scratch" numbers (1.26 sequential, 1.43 random) belong to d2l's
    RNN from scratch: in a model.cell x data.sampling sweep with nn.RNN's function and a model
    the tables never ran (gru), only rnn_scratch gets them; rnn gets its own 1.03; gru nothing."""
    cells = ["rnn", "rnn_scratch", "gru"]
    by = ["model.cell", "data.sampling"]
    points = [(c, m, 2.0, 1.0) for c in cells for m in ["sequential", "random"]]
    ref = reference_for(summary_of(by, points), by, cells)
    ppl = ref[ref["metric"] == "train_perplexity"]
    rows = set(zip(ppl["model.cell"], ppl["data.sampling"], ppl["reference"]))
    assert rows == {("rnn_scratch", "sequential", 1.26), ("rnn_scratch", "random", 1.43),
                    ("rnn", "sequential", 1.03)}
    assert "gru" not in set(ref["model.cell"])
