"""bench/packed.py --quick, in this process (its two peer processes spawned): one row per
shape in the table and both files, and the pack and its peer trained the same tokens."""
import csv
import json

import pytest
import torch

from bench import packed
from bench.packed_runs import Pack, Run, timed

# 3 runs split 2 + 1 between the 2 jobs; the pack on one thread (as one_thread, below)
QUICK = ["--quick", "--hiddens", "4", "--packs", "2,3", "--threads", "1"]


def test_quick_bench_rows_files_and_equal_tokens(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RUNNER_DATA_DIR", str(tmp_path))  # no corpus there: the synthetic ids
    rows = packed.main([*QUICK, "--out", str(tmp_path / "out" / "packed")])
    assert [(r["cell"], r["impl"], r["num_hiddens"], r["pack"]) for r in rows] == [
        ("gru", "fused", 4, 2), ("gru", "fused", 4, 3), ("lstm", "nn", 4, 2), ("lstm", "nn", 4, 3)]
    for r in rows:
        # 2 timed steps of every run, (32, 35) tokens each, on both sides
        assert r["packed_tokens"] == r["peer_tokens"] == r["pack"] * 2 * 32 * 35
        assert (r["threads"], r["jobs"]) == (1, 2)
        assert len(r["packed_rounds"]) == len(r["peer_rounds"]) == r["rounds"] == 2
        assert min(r["packed_rounds"] + r["peer_rounds"]) > 0
        assert r["ratio"] == pytest.approx(r["packed_tokens_per_sec"] / r["peer_tokens_per_sec"])
        assert r["ratio_min"] <= r["ratio"] <= r["ratio_max"]  # 2 rounds: the median between
        assert min(r["packed_cpu_rounds"] + r["peer_cpu_rounds"]) > 0
        assert r["cpu_ratio"] == pytest.approx(
            r["packed_tokens_per_cpu_sec"] / r["peer_tokens_per_cpu_sec"])
    with open(tmp_path / "out" / "packed.csv") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == list(packed.COLUMNS)
    assert [float(t["ratio"]) for t in table] == pytest.approx([r["ratio"] for r in rows])
    saved = json.loads((tmp_path / "out" / "packed.json").read_text())
    assert saved["rows"] == rows and saved["data"].startswith("synthetic")
    out = capsys.readouterr().out
    assert out.count("| gru | fused | 4 |") == 2 and out.count("| lstm | nn | 4 |") == 2


@pytest.mark.parametrize("argv,named", [
    (["--cells", "gru,tcn"], "--cells tcn: no such cell"),
    (["--packs", "4,1"], "--packs 4,1: it must be comma-separated integers >= 2"),
    (["--hiddens", "32,x"], "--hiddens 32,x"),
    (["--rounds", "0"], "--rounds 0: it must be an integer >= 1"),
])
def test_bad_options_are_refused_before_any_work(argv, named, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        packed.main([*argv, "--out", str(tmp_path / "packed")])
    assert e.value.code == 2
    assert named in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.fixture
def one_thread():
    """Tiny models on one thread: two threads beside a busy suite wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_pack_and_the_peers_runs_train_the_same_models_on_the_same_batches(cell, one_thread):
    """What the bench times on each side is the same work: after 3 timed steps, member i of the
    pack equals run i (seed i, its own offset into the same ids), to float32 rounding."""
    ids = torch.randint(28, (4000,), generator=torch.Generator().manual_seed(1))
    pack, runs = Pack(cell, 6, range(3), ids), [Run(cell, 6, seed, ids) for seed in range(3)]
    assert timed([pack], 1, 2)[3] == timed(runs, 1, 2)[3] == 3 * 2 * 32 * 35
    for i, run in enumerate(runs):
        member = pack.model.unpack(i)
        for name, value in run.model.state_dict().items():
            torch.testing.assert_close(member[name], value, rtol=1e-4, atol=1e-6)
