"""Pure helpers: lr warm-up, perplexity, steady-state throughput, atomic result writing."""
import json
import math

import pytest

from runner.result import finite_or_none, write_json_atomic
from runner.run.metrics import steady_state_median
from runner.tasks.loop import perplexity, warmup_factor


def test_warmup_is_linear_then_flat():
    assert [warmup_factor(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0  # no warm-up


def test_perplexity_is_exp_and_overflow_is_inf():
    assert perplexity(math.log(28)) == pytest.approx(28)
    assert perplexity(0.0) == 1.0
    assert perplexity(800.0) == math.inf


def test_steady_state_median_leaves_out_the_first_epoch():
    assert steady_state_median([1.0, 10.0, 30.0, 20.0]) == 20.0
    assert steady_state_median([5.0]) == 5.0
    assert steady_state_median([]) is None


def test_non_finite_numbers_become_null():
    assert finite_or_none({"a": [1.0, math.inf, math.nan], "b": (2, -math.inf)}) == {
        "a": [1.0, None, None], "b": [2, None]}


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path):
    path = tmp_path / "result.json"
    write_json_atomic(path, {"status": "failed"})
    write_json_atomic(path, {"status": "completed", "x": math.inf})
    assert json.loads(path.read_text()) == {"status": "completed", "x": None}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "result.json"
    write_json_atomic(path, {"status": "completed"})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"status": object()})  # not serialisable, mid-write
    assert json.loads(path.read_text()) == {"status": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
