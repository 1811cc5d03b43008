"""What a run measures about itself: peak memory of this run alone, CPU time beside wall time
over training, and the load on the machine around it."""
import pytest

from runner.run.execute import run


@pytest.mark.slow  # a large run, then a small one
def test_a_small_run_after_a_large_one_reports_its_own_peak_memory(tiny_cfg, tmp_path):
    """Several runs share one process in a serial sweep: each reports its own peak, not the
    process's maximum so far (which only ever rises)."""
    small = ["train.num_epochs=1", "threads=1"]
    large = [*small, "model.num_hiddens=2048", "data.batch_size=64", "data.val_tokens=60"]
    peaks = [run(tiny_cfg(*extra), tmp_path / str(i))["metrics"]
             for i, extra in enumerate([small, large, small])]
    assert {m["peak_memory_kind"] for m in peaks} == {"process_peak_rss"}
    first, big, after = (m["peak_memory_bytes"] / 2**20 for m in peaks)  # MiB
    assert big > first + 80  # the large run's weights, activations and gradients
    assert after < big - 80
    assert after == pytest.approx(first, abs=25)


def test_cpu_time_and_load_are_recorded_around_training(tiny_cfg, tmp_path):
    result = run(tiny_cfg("train.num_epochs=3", "threads=1"), tmp_path)
    m, env, curves = result["metrics"], result["environment"], result["curves"]
    assert len(curves["train_cpu_seconds"]) == 3
    assert m["train_cpu_seconds"] == pytest.approx(sum(curves["train_cpu_seconds"]))
    # one busy thread: CPU time is close to wall time, never far above it
    assert 0 < m["train_cpu_seconds"] <= 1.5 * m["train_seconds"] + 0.05
    assert env["threads"] == 1
    for key in ("load_avg_start", "load_avg_end"):
        assert isinstance(env[key], float) and env[key] >= 0
