"""The guarantees of bench/supervise.py's two supervisors, each tried for real (`python -m
bench.supervise --check`): a hard death recorded, the run stopping with a killed parent, the
grace a stopped run gets, the pinned environment, how soon the parent learns a run ended."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.supervise import (
    ROOT,
    environment,
    heartbeat_job,
    pins,
    seen_env,
    submitit_job,
    tiny_config,
)


def child_pids(marker: str, name: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if name in cmdline and marker in cmdline:
            found.append(int(proc.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def hard_death(cfg, tmp: Path, how: str) -> None:
    """A run whose process dies hard once training starts, under each path."""
    from runner.sweep import isolate

    code = {"kill": "os.kill(os.getpid(), signal.SIGKILL)", "exit": "os._exit(3)",
            "segv": "os.kill(os.getpid(), signal.SIGSEGV)"}[how]
    script = ("import os, signal\nimport runner.run.execute as E\n"
              f"def fit(*a, **k):\n    {code}\nE.fit = fit\n"
              "from runner.sweep.child import main; main()\n")
    original = isolate.child_command
    isolate.child_command = lambda out_dir: [sys.executable, "-c", script, str(out_dir)]
    out = tmp / f"death-a-{how}"
    try:
        start = time.perf_counter()
        status = isolate.run_fresh(cfg, out, 1)
        took = time.perf_counter() - start
    finally:
        isolate.child_command = original
    result = json.loads((out / "result.json").read_text())
    print(f"  A ({how}): run_fresh -> {status!r} in {took:.1f} s (incl. the recording process);"
          f" result.json status={result['status']}, error={result['error']['type']}: "
          f"{result['error']['message']!r}, peak_memory_bytes="
          f"{result['metrics']['peak_memory_bytes']} ({result['metrics']['peak_memory_kind']}),"
          f" traceback_tail={result['error']['traceback_tail'][:2]}")

    import submitit
    from omegaconf import OmegaConf

    folder = tmp / f"death-b-{how}-submitit"
    executor = submitit.LocalExecutor(folder=folder)
    out = tmp / f"death-b-{how}"
    with environment(pins(1)):
        job = executor.submit(submitit_job, OmegaConf.to_container(cfg, resolve=True),
                              str(out), how)
    start = time.perf_counter()
    while job._process.poll() is None:
        time.sleep(0.01)
    ended = time.perf_counter()
    try:
        job.result()
        print("  B: no exception?!")
    except Exception as e:  # noqa: BLE001 (what submitit raises is the finding)
        raised = time.perf_counter()
        text = str(e).splitlines()
        print(f"  B ({how}): job.result() raised {type(e).__module__}.{type(e).__name__} "
              f"{raised - ended:.1f} s after the job's controller ended; message: "
              f"{' | '.join(text[:3])} ...; state={job.state!r}, controller exit code "
              f"{job._process.returncode} (the task's own code is reaped by the controller and "
              f"dropped); stderr log {len(job.stderr() or '')} chars, last line: "
              f"{(job.stderr() or '').strip().splitlines()[-1:]}")
    print(f"  B ({how}): result.json in the run's folder: {(out / 'result.json').exists()}; "
          f"files in submitit's folder: "
          f"{sorted(p.name for p in folder.iterdir() if p.is_file())}")


def parent(kind: str, config_json: str, out: str, folder: str) -> None:
    """The parent (a sweep's worker) as a process of its own, for the checks to kill."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(json.loads(config_json))
    if kind == "A":
        from runner.sweep.isolate import run_fresh

        print("A parent got", run_fresh(cfg, Path(out), 1), flush=True)
    elif kind == "B":
        import submitit

        executor = submitit.LocalExecutor(folder=folder)
        with environment(pins(1)):
            job = executor.submit(submitit_job, json.loads(config_json), out)
        print("B parent got", job.result(), flush=True)
    else:  # B-beat: a job that outlives signals, to see how long it is given
        import submitit

        executor = submitit.LocalExecutor(folder=folder)
        job = executor.submit(heartbeat_job, out)
        print("B-beat parent got", job.result(), flush=True)


def start_parent(kind: str, config: dict, out: Path, folder: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench.supervise", "--parent", kind,
                             json.dumps(config), str(out), str(folder)], cwd=ROOT,
                            start_new_session=True)


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def started(out: Path) -> bool:
    """The run has begun: it wrote its config snapshot (after torch's import and the data, a
    second or so before training)."""
    return (out / ".hydra" / "config.yaml").exists()


def parent_dies(config: dict, tmp: Path, kind: str, sig: int, group: bool) -> None:
    """Start a long run under a parent, stop the parent with `sig` (to its process group, as
    a terminal's Ctrl-C, when `group`), then see what became of the run's process."""
    out, folder = tmp / f"parent-{kind}-{sig}-{group}", tmp / f"parent-{kind}-{sig}-submitit"
    proc = start_parent(kind, config, out, folder)
    name = "runner.sweep.child" if kind == "A" else "submitit.core._submit"
    marker = str(out) if kind == "A" else str(folder)
    if not wait_for(lambda: started(out), 60):
        print(f"  {kind}: the long run never started")
    time.sleep(2)  # training
    pids = child_pids(marker, name)
    controllers = child_pids(str(folder), "submitit.local._local") if kind == "B" else []
    stopped = time.time()
    (os.killpg if group else os.kill)(proc.pid, sig)
    proc.wait()
    gone = wait_for(lambda: not any(alive(p) for p in pids), 15)
    took = time.time() - stopped
    result = json.loads((out / "result.json").read_text()) if (out / "result.json").exists() \
        else {}
    print(f"  {kind}, parent sent {signal.Signals(sig).name}{' (its group)' if group else ''}:"
          f" run process {pids} {'ended' if gone else 'STILL RUNNING'} after {took:.1f} s"
          f"{'' if gone else ' (waited 15 s)'}; controller {controllers} alive: "
          f"{[alive(p) for p in controllers]}; result.json: {result.get('status', 'none')}"
          f"{' (' + result['error']['message'] + ')' if result.get('error') else ''}")
    for pid in pids + controllers:  # clean up what outlived its parent
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def grace(tmp: Path, kind: str) -> None:
    """How long a run that keeps going after Ctrl-C (a big checkpoint being written) lives on
    after Ctrl-C to its parent's group, before its supervisor SIGKILLs it."""
    beat = tmp / f"beat-{kind}"
    folder = tmp / f"beat-{kind}-submitit"
    if kind == "A":  # isolate.child with a child that ignores the signal and beats
        script = ("import signal, time, sys\n"
                  "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                  "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                  f"while True:\n    open({str(beat)!r}, 'w').write(str(time.time()))\n"
                  "    time.sleep(0.02)\n")
        code = ("import os, sys, subprocess, time\n"
                "from pathlib import Path\nfrom runner.sweep import isolate\n"
                f"isolate.child_command = lambda out: [sys.executable, '-c', {script!r}]\n"
                f"isolate.child({{}}, {{}}, Path({str(tmp)!r}))\n")
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True)
    else:
        proc = start_parent("B-beat", {}, beat, folder)
    if not wait_for(beat.exists, 30):
        print(f"  {kind}: no heartbeat")
    time.sleep(0.5)
    sent = time.time()
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(35)
    last = float(beat.read_text())
    print(f"  {kind}: a child that goes on after Ctrl-C lived {last - sent:.2f} s more"
          f"{' (still beating)' if time.time() - last < 1 else ' then was killed'}")
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def env_checks(tmp: Path) -> None:
    import submitit

    executor = submitit.LocalExecutor(folder=tmp / "env")
    executor.update_parameters(setup=["export OMP_NUM_THREADS=1", "export MKL_NUM_THREADS=1"])
    print("  setup=[export ...] (a shell before the controller):",
          executor.submit(seen_env).result())
    executor = submitit.LocalExecutor(folder=tmp / "env")
    with environment({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                      "CUDA_VISIBLE_DEVICES": "2,3"}):
        job = executor.submit(seen_env)
    print("  the submitter's os.environ (CUDA_VISIBLE_DEVICES=2,3 there, no GPU asked):",
          job.result())
    executor.update_parameters(gpus_per_node=1, visible_gpus=[1])
    with environment({"CUDA_VISIBLE_DEVICES": "2,3"}):
        job = executor.submit(seen_env)
    print("  gpus_per_node=1, visible_gpus=[1] under the submitter's CUDA_VISIBLE_DEVICES=2,3"
          " (the runner's pin gives 3 for slot cuda:1):", job.result())
    try:
        executor.update_parameters(visible_gpus=["GPU-1f0e"])
        print("  visible_gpus=['GPU-1f0e'] accepted")
    except ValueError as e:
        print(f"  visible_gpus=['GPU-1f0e'] (a UUID): ValueError: {e}")


def checks(only: set[str]) -> None:
    from omegaconf import OmegaConf

    with tempfile.TemporaryDirectory(prefix="supervise-check-") as tmp:
        tmp = Path(tmp)
        (tmp / "corpora").mkdir()
        from data.tiny import write_corpus  # here: importing data loads torch

        write_corpus(tmp / "corpora" / "tiny.txt")
        cfg = tiny_config(tmp / "corpora", 1)
        if "death" in only:
            print("hard death once training starts:")
            for how in ("kill", "exit", "segv"):
                hard_death(cfg, tmp, how)
        long = OmegaConf.to_container(tiny_config(tmp / "corpora", 1, "train.num_epochs=100000",
                                                  "train.eval_every=1000"), resolve=True)
        if "parent" in only:
            print("the parent dies (SIGKILL), or is stopped (SIGTERM; Ctrl-C to its group):")
            for kind in "AB":
                parent_dies(long, tmp, kind, signal.SIGKILL, group=False)
                parent_dies(long, tmp, kind, signal.SIGTERM, group=False)
                parent_dies(long, tmp, kind, signal.SIGINT, group=True)
        if "grace" in only:
            print("grace after Ctrl-C for a child that is still busy:")
            for kind in "AB":
                grace(tmp, kind)
        if "env" in only:
            print("pinning a submitit job's environment:")
            env_checks(tmp)
        if "latency" in only:
            print("notice latency for a job that does nothing (submit -> result):")
            import submitit

            executor = submitit.LocalExecutor(folder=tmp / "noop")
            for _ in range(3):
                start = time.perf_counter()
                job = executor.submit(time.time)
                ended = job.result()
                print(f"  B: {time.perf_counter() - start:.2f} s; result known "
                      f"{time.time() - ended:.2f} s after the function returned")
