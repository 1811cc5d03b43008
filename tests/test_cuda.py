"""The runner on a CUDA GPU: each test is marked `cuda` and skips without one (conftest.py);
`make gpu-check` (bench/gpu_check.py) runs them on a lent GPU. They check what the CPU suite
cannot: model.impl=auto picking cuDNN, the fused layers against cuDNN, resume bit-identical on
the GPU, several parallel jobs sharing one GPU, and a device-side assert kept to its own run."""
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from models.fused import FusedRNN
from runner.result import RESULT_FILE, validate_result
from runner.run import run
from runner.run.checkpoint import CHECKPOINT_FILE
from runner.run.interrupt import Interrupted
from tests.helpers import compose_config, tiny_overrides
from tests.test_checkpoint import SETTINGS, outcome, signal_during

# cuBLAS reads this when it makes its first handle, so before any test touches CUDA: without
# it, torch.use_deterministic_algorithms reports cuBLAS matmuls as non-deterministic.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
pytestmark = pytest.mark.cuda
ROOT = Path(__file__).resolve().parent.parent


def on_cuda(corpus_dir: Path, *extra: str) -> list[str]:
    """The tests' tiny run, on the GPU (tiny_overrides says device=cpu)."""
    return [o for o in tiny_overrides(corpus_dir) if o != "device=cpu"] + ["device=cuda",
                                                                           *extra]


@pytest.fixture
def exact_fp32():
    """cuDNN's RNNs use TF32 tensor cores by default on Ampere and later (10 mantissa bits):
    off here, so float32 means float32 in the comparison with the fused layers."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.fixture
def deterministic():
    """What a bit-identical resume on CUDA needs: cuDNN's deterministic algorithms and no
    autotuning (benchmark=False, else each process may time and pick another algorithm),
    CUBLAS_WORKSPACE_CONFIG (set above), and torch's deterministic mode, which warns about
    any op left without a deterministic kernel (collected: the failure message lists them)."""
    before = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
              torch.are_deterministic_algorithms_enabled())
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[:2]
    torch.use_deterministic_algorithms(before[2])


def test_a_run_on_cuda_computes_with_cudnn(corpus_dir, tmp_path):
    """device=cuda, model.impl=auto: torch.nn's layer (cuDNN), the GPU's memory measured."""
    result = run(compose_config(*on_cuda(corpus_dir, "model=rnn", "model.impl=auto")),
                 tmp_path / "run")
    validate_result(result)
    env = result["environment"]
    assert result["status"] == "completed"
    assert env["impl"] == "nn" and env["device"].startswith("cuda")
    assert env["cudnn"] == torch.backends.cudnn.version() and env["cudnn"]
    assert env["device_name"] == torch.cuda.get_device_name(0)
    assert result["metrics"]["peak_memory_kind"] == "cuda_max_allocated"
    assert result["metrics"]["peak_memory_bytes"] > 0


@pytest.mark.parametrize("mode", ["rnn", "gru"])
def test_fused_matches_cudnn_to_float32_tolerance(mode, exact_fp32):
    """Our fused layers on the GPU against cuDNN, one state_dict: outputs, final state and
    every gradient, at a study's shape (35 steps, batch 32, 2 layers of 256)."""
    torch.manual_seed(0)
    T, B, IN, H, L = 35, 32, 28, 256, 2
    ref = getattr(nn, mode.upper())(IN, H, L).cuda()
    fused = FusedRNN(mode, IN, H, num_layers=L).cuda()
    fused.load_state_dict(ref.state_dict())
    x, h0 = torch.randn(T, B, IN, device="cuda"), torch.randn(L, B, H, device="cuda")
    w_out, w_state = torch.randn(T, B, H, device="cuda"), torch.randn(L, B, H, device="cuda")

    def outputs_and_grads(model):
        xs, hs = x.clone().requires_grad_(), h0.clone().requires_grad_()
        out, h = model(xs, hs)
        ((out * w_out).sum() + (h * w_state).sum()).backward()
        return out, h, xs.grad, hs.grad, {n: p.grad for n, p in model.named_parameters()}

    # float32, summed in other orders (weight gradients over T*B = 1,120 rows): measured
    # by each tensor's relative error in norm, not element by element, where an entry that
    # sums to near zero has a large relative error and means nothing
    got, expected = outputs_and_grads(fused), outputs_and_grads(ref)
    pairs = [*zip(("output", "state", "input grad", "state grad"), got[:4], expected[:4]),
             *((f"{n} grad", got[4][n], expected[4][n]) for n in expected[4])]
    errors = {name: ((a - b).norm() / b.norm()).item() for name, a, b in pairs}
    assert max(errors.values()) < 1e-5, errors


# cuDNN's multi-layer RNN draws its dropout masks from an RNG state buffer of its own, kept by
# torch per device, not from the CUDA generator that a checkpoint saves: it is re-seeded from
# that generator after torch.manual_seed or set_rng_state, so a resumed run's later epochs draw
# other masks than the uninterrupted run's. Expected to fail until the runner keeps it (or
# uses its own dropout between cuDNN layers); non-strict, so a pass (XPASS) is reported too.
CUDNN_DROPOUT = pytest.mark.xfail(strict=False, reason="cuDNN's dropout RNG state is in no "
                                  "checkpoint (test_cuda.py, CUDNN_DROPOUT)")


@pytest.mark.parametrize("dropout", ["0.0", pytest.param("0.3", marks=CUDNN_DROPOUT)])
def test_resume_on_cuda_is_bit_identical(corpus_dir, tmp_path, monkeypatch, deterministic,
                                         dropout):
    """Stopped by SIGTERM in epoch 4 and resumed: the same curves, metrics and sample to the
    last bit as the run never stopped (2 cuDNN layers, random minibatches, evaluations)."""
    settings = [s if not s.startswith("model.dropout=") else f"model.dropout={dropout}"
                for s in SETTINGS]

    def cfg():
        return compose_config(*on_cuda(corpus_dir, *settings))

    clean = outcome(run(cfg(), tmp_path / "clean"))
    folder = tmp_path / "stopped"
    with monkeypatch.context() as m:
        signal_during(m, "train_batches", 4)
        with pytest.raises(Interrupted):
            run(cfg(), folder)
    assert (folder / CHECKPOINT_FILE).exists()
    resumed = run(cfg(), folder)
    assert resumed["resumed_from_epoch"] == [3]
    nondeterministic = sorted({str(w.message).split(".")[0] for w in deterministic})
    assert outcome(resumed) == {**clean, "run_id": resumed["run_id"]}, (
        f"ops without a deterministic CUDA kernel: {nondeterministic}")


def sweep(corpus_dir: Path, out: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    """A launcher=parallel sweep of the tiny run on GPU 0: its process and results by seed."""
    cmd = [sys.executable, "-m", "runner", "-m", *on_cuda(corpus_dir), "train.eval_every=1000",
           "launcher=parallel", "launcher.devices=[cuda:0]", f"hydra.sweep.dir={out}", *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    results = {}
    for path in out.rglob(RESULT_FILE):
        result = json.loads(path.read_text())
        validate_result(result)
        results[path.parent.name] = result
    return proc, results


def test_parallel_jobs_share_one_gpu_each_in_its_own_pinned_process(corpus_dir, tmp_path):
    proc, results = sweep(corpus_dir, tmp_path / "sweep", "launcher.jobs_per_device=3",
                          "seed=0,1,2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(results) == 3 and {r["status"] for r in results.values()} == {"completed"}
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
    pids = set()
    for r in results.values():
        process = r["environment"]["fresh_process"]
        assert process["CUDA_VISIBLE_DEVICES"] == visible  # slot cuda:0, the worker's first GPU
        assert process["slot"] == "cuda:0" and r["environment"]["device"] == "cuda:0"
        assert r["environment"]["concurrent_jobs"] == 3
        pids.add(process["pid"])
    assert len(pids) == 3


def test_a_device_side_assert_fails_its_run_alone(corpus_dir, tmp_path):
    """Two of four runs sharing the GPU have a kernel that asserts (tests/cuda_cells.py);
    CUDA's error is sticky in a process, so those two are failed (recorded by their own
    process, or by the worker when it died) and the other two complete."""
    proc, results = sweep(corpus_dir, tmp_path / "sweep", "launcher.jobs_per_device=3",
                          "model._target_=models.cells.rnn,tests.cuda_cells.asserting_rnn",
                          "model.cell=rnn_or_asserting",  # a label: rnn names models.cells.rnn
                          "seed=0,1")
    assert proc.returncode == 1, proc.stderr[-3000:]  # a failed run
    assert len(results) == 4
    status = {name: r["status"] for name, r in results.items()}
    bad = {name for name in status if "asserting_rnn" in name}
    assert len(bad) == 2 and {status[n] for n in bad} == {"failed"}, status
    assert {s for n, s in status.items() if n not in bad} == {"completed"}, status
    for name in bad:
        error = results[name]["error"]
        message = error["message"] + "".join(error.get("traceback_tail") or [])
        assert "device-side assert" in message or error["type"] == "ProcessDied", error


def test_packed_members_equal_their_standalone_runs_on_cuda():
    """models/packed.py on the GPU: a pack of 3 gru seeds (float32; the fused gru standing
    alone, the pack's batched products) starts bit-identical and trains each member as its own
    run does, to 1e-4 relative over five clipped SGD steps (on the CPU: 2e-7)."""
    from models.packed import PackedLM
    from tests.test_packed import LRS, SEEDS, batches, rel, standalone, train_alone, train_packed

    models = [standalone("gru", 1, None, seed).cuda() for seed in SEEDS]
    packed = PackedLM.pack(models)
    for i, model in enumerate(models):
        for key, value in model.state_dict().items():
            assert torch.equal(packed.unpack(i)[key], value), key
    data = [[(x.cuda(), y.cuda()) for x, y in batches(seed)] for seed in SEEDS]
    curves, _ = train_packed(packed, data, torch.tensor(LRS, device="cuda"))
    for i, model in enumerate(models):
        assert rel(curves[i].cpu(), train_alone(model, data[i], LRS[i])) < 1e-4


@pytest.mark.parametrize("extra", [
    ("model=gru", "optim=adam", "optim.lr=0.01"),  # the note's and translation's optimizer
    ("model=lstm", "model.num_layers=2", "+optim.momentum=0.9"),
], ids=["gru-adam", "lstm-2-layers-momentum"])
def test_runner_packs_equal_their_runs_alone_on_cuda(corpus_dir, tmp_path, exact_fp32, extra):
    """runner/run/pack.py on the GPU: a pack of 2 seeds (the pack's batched products and its
    per-member optimizer) against each run alone on cuDNN (model.impl=auto), float32 with TF32
    off: every curve and metric to 1e-4 relative over 2 epochs."""
    from runner.run.pack import run_pack
    from tests.test_pack_runner import assert_same_run

    cfgs = [compose_config(*on_cuda(corpus_dir, *extra, "train.num_epochs=2", f"seed={s}"))
            for s in (0, 1)]
    packed = run_pack(cfgs, [tmp_path / f"pack{c.seed}" for c in cfgs])
    for cfg, member in zip(cfgs, packed):
        alone = run(cfg, tmp_path / f"alone{cfg.seed}")
        assert alone["environment"]["impl"] == "nn" and member["environment"]["packed"] == 2
        assert member["environment"]["device"].startswith("cuda")
        assert_same_run(member, alone, 1e-4)
