"""bench/roofline.py's FLOPs per training token, counted a second way: torch's FlopCounterMode
over one training step of d2l's from-scratch models, whose every product is a plain matmul
(torch.nn's fused oneDNN kernels and our in-place addmm_ escape the counter)."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.roofline import GATES, VOCAB, ceiling, flops_per_token
from models.lm import LanguageModel
from tests.helpers import layer

T, B, H = 7, 3, 16


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_flops_per_token_is_what_a_training_step_multiplies(kind):
    torch.manual_seed(0)
    model = LanguageModel(VOCAB, layer(f"{kind}_scratch"), H)
    x = torch.randint(VOCAB, (T, B))
    with FlopCounterMode(display=False) as counter:
        out, _ = model(x, model.begin_state(B))
        torch.nn.functional.cross_entropy(out.reshape(-1, VOCAB), x.reshape(-1)).backward()
    # The formula charges every step a dh_{t-1} product per gate block; the first step has no
    # h_0 gradient to make, except GRU's candidate block, whose input r * h_0 needs one for r.
    skipped = GATES[kind] - (kind == "gru")
    assert counter.get_total_flops() == T * B * flops_per_token(kind, H) - B * 2 * skipped * H * H


def test_the_ceiling_is_the_peak_when_the_step_product_runs_at_peak():
    assert ceiling(200.0, 200.0) == pytest.approx(200.0)
    assert ceiling(240.0, 120.0) == pytest.approx(6 / (4 / 120 + 2 / 240))
    assert flops_per_token("sru", 256) is None
