"""Process supervision: the runner's own fresh process per run (runner/sweep/isolate.py and
child.py: a pipe, os.wait4, prctl) against submitit's LocalExecutor (what
launcher=submitit_local runs on), on the same tiny run.

    python -m bench.supervise --rounds 5 --threads 1     # timing, then the table
    python -m bench.supervise --check [death parent grace env latency]   # the guarantees,
                                                          # each tried for real (~4 min)

Timing: rounds alternate A, B, C on one tiny config (a 16-wide rnn on a 1,500-word corpus this
script writes into a temporary folder, train.num_epochs=1, device=cpu, threads=--threads):
  A  runner.sweep.isolate.run_fresh(cfg, out, sharing=1), launcher.fresh_process=true;
  B  submitit.LocalExecutor: submit(job) then job.result(), the job calling
     runner.sweep.job.run_here(cfg, out, 1) in submitit's task process, with the same pins
     (OMP_NUM_THREADS, MKL_NUM_THREADS; CUDA_VISIBLE_DEVICES="" is what submitit itself sets
     for a job with no GPU) placed in the submitting process's environment, which submitit
     copies when it starts the job;
  C  run_here in this process (no process start: the floor).
Each figure is wall seconds per run, from the call to its return; `notice` is the time from
the run's result.json being written (its mtime) to the call returning, i.e. how long after
the run's end the parent knows; CPU seconds (user + system) of the runs' processes (reaped
children: the run's interpreter, and submitit's controller) and of this process. Run it alone
on the machine (no tests meanwhile); the table prints the load average it ran under.

Nothing here imports torch at module level: submitit's task process unpickles `submitit_job`
by importing this module, and the job checks that torch was not loaded before it ran.
"""
import argparse
import json
import os
import resource
import signal
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PINNED = ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def tiny_config(root: Path, threads: int, *extra: str):
    """tests/helpers.tiny_overrides on the corpus in `root`, one epoch, forced fresh process."""
    from hydra import compose, initialize_config_dir

    overrides = [f"data.root={root}", "data.file=tiny.txt", "data.sha1=null",
                 "data.download=false", "data.max_tokens=3000", "data.val_tokens=600",
                 "data.batch_size=8", "data.num_steps=10", "model.num_hiddens=16",
                 "train.num_epochs=1", "train.eval_every=1", "quiet=true", "device=cpu",
                 "sample.num_preds=10", "store=null", f"threads={threads}",
                 "launcher=parallel", "launcher.fresh_process=true", *extra]
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides)


def pins(threads: int) -> dict:
    from runner.sweep.isolate import pin

    return pin("cpu", threads, os.environ)[0]


@contextmanager
def environment(values: dict):
    """`values` in os.environ while inside (submitit copies os.environ at submit)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---- what runs inside submitit's task process --------------------------------------------

def submitit_job(config: dict, out_dir: str, die: str | None = None) -> dict:
    """B's job: what it sees before any import, then the run (run_here). `die`: "kill" sends
    itself SIGKILL, "segv" SIGSEGV, "exit" calls os._exit(3), each as training would start."""
    seen = {"pid": os.getpid(), "ppid": os.getppid(), "torch_loaded": "torch" in sys.modules,
            "env": {v: os.environ.get(v) for v in PINNED}}
    from omegaconf import OmegaConf

    if die:
        die_at_fit(die)
    from runner.sweep.job import run_here

    status = run_here(OmegaConf.create(config), Path(out_dir), 1)
    return {**seen, "status": status, "ended": time.time()}


def die_at_fit(how: str) -> None:
    """Replace the training loop by a hard death: the model is built, the data loaded."""
    import runner.run.execute as execute

    def fit(*args, **kwargs):
        if how in ("kill", "segv"):
            os.kill(os.getpid(), signal.SIGKILL if how == "kill" else signal.SIGSEGV)
        os._exit(3)

    execute.fit = fit


def seen_env() -> dict:
    """What a submitit job sees of the pinned variables, and whether torch is loaded."""
    return {**{v: os.environ.get(v) for v in PINNED}, "torch_loaded": "torch" in sys.modules}


def heartbeat_job(path: str) -> None:
    """Ignores SIGINT and SIGTERM (a run still writing its checkpoint), and writes the time
    every 20 ms: the last beat says how long it lived after the first signal."""
    def note(signum, frame):
        with open(path + ".signals", "a") as f:
            f.write(f"{signal.Signals(signum).name} {time.time()}\n")
    signal.signal(signal.SIGINT, note)
    signal.signal(signal.SIGTERM, note)
    while True:
        Path(path).write_text(str(time.time()))
        time.sleep(0.02)


# ---- A, B, C ---------------------------------------------------------------------------

def run_a(cfg, out: Path) -> dict:
    from runner.sweep.isolate import run_fresh

    start = time.perf_counter()
    status = run_fresh(cfg, out, 1)
    known = time.time()
    wall = time.perf_counter() - start
    result = json.loads((out / "result.json").read_text())
    return {"wall": wall, "status": status, "notice": known - mtime(out / "result.json"),
            "pid": result["environment"]["fresh_process"]["pid"],
            "env": {v: result["environment"]["fresh_process"][v] for v in PINNED}}


def run_b(cfg, out: Path, folder: Path, threads: int) -> dict:
    import submitit
    from omegaconf import OmegaConf

    executor = submitit.LocalExecutor(folder=folder)
    executor.update_parameters(timeout_min=60)
    config = OmegaConf.to_container(cfg, resolve=True)
    start = time.perf_counter()
    with environment(pins(threads)):
        job = executor.submit(submitit_job, config, str(out))
    got = job.result()
    known = time.time()
    wall = time.perf_counter() - start
    files = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
    return {"wall": wall, "status": got["status"], "notice": known - mtime(out / "result.json"),
            "after_return": known - got["ended"], "pid": got["pid"], "env": got["env"],
            "torch_loaded": got["torch_loaded"], "files": files}


def run_c(cfg, out: Path) -> dict:
    from runner.sweep.job import run_here

    start = time.perf_counter()
    status = run_here(cfg, out, 1)
    known = time.time()
    return {"wall": time.perf_counter() - start, "status": status,
            "notice": known - mtime(out / "result.json")}


def measured(run, *args) -> dict:
    """run(*args), with the CPU seconds (user + system) it cost: this process's own, and its
    children's (the run's process, and submitit's controller, reaped)."""
    self0, kids0 = resource.getrusage(resource.RUSAGE_SELF), \
        resource.getrusage(resource.RUSAGE_CHILDREN)
    got = run(*args)
    self1, kids1 = resource.getrusage(resource.RUSAGE_SELF), \
        resource.getrusage(resource.RUSAGE_CHILDREN)
    got["cpu_self"] = self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime
    got["cpu_kids"] = kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime
    got["load"] = os.getloadavg()[0]
    return got


def mtime(path: Path) -> float:
    return os.stat(path).st_mtime_ns / 1e9


def timing(rounds: int, threads: int, in_process: bool) -> None:
    import torch

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="supervise-") as tmp:
        tmp = Path(tmp)
        (tmp / "corpora").mkdir()
        from data.tiny import write_corpus  # here: importing data loads torch

        write_corpus(tmp / "corpora" / "tiny.txt")
        cfg = tiny_config(tmp / "corpora", threads)
        runs = {"A": [], "B": [], "C": []}
        for r in range(rounds):
            runs["A"].append(measured(run_a, cfg, tmp / f"a{r}"))
            runs["B"].append(measured(run_b, cfg, tmp / f"b{r}", tmp / f"submitit{r}", threads))
            if in_process:
                runs["C"].append(measured(run_c, cfg, tmp / f"c{r}"))
            print(f"round {r + 1}/{rounds}: " + ", ".join(
                f"{k} {v[-1]['wall']:.2f}s {v[-1]['status']}" for k, v in runs.items() if v),
                flush=True)
    names = {"A": "A runner (run_fresh: pipe, wait4, prctl)",
             "B": "B submitit LocalExecutor (submit, result)",
             "C": "C in-process run_here (no process start)"}
    floor = statistics.median(x["wall"] for x in runs["C"]) if runs["C"] else None
    print(f"\n{rounds} rounds (A, B{', C' if in_process else ''} interleaved), threads="
          f"{threads}, {os.cpu_count()} cores, one tiny run each (num_epochs=1)\n")
    print("| path | median s/run | min | max | over in-process | notice s | CPU s: runs' "
          "processes | CPU s: parent |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for key, results in runs.items():
        if not results:
            continue
        walls = [x["wall"] for x in results]
        med = statistics.median(walls)
        over = f"+{med - floor:.2f} s" if floor is not None and key != "C" else "-"
        print(f"| {names[key]} | {med:.2f} | {min(walls):.2f} | {max(walls):.2f} | {over} | "
              f"{statistics.median(x['notice'] for x in results):.2f} | "
              f"{statistics.median(x['cpu_kids'] for x in results):.2f} | "
              f"{statistics.median(x['cpu_self'] for x in results):.2f} |")
    a, b = statistics.median(x["wall"] for x in runs["A"]), \
        statistics.median(x["wall"] for x in runs["B"])
    cpu_a, cpu_b = (statistics.median(x["cpu_kids"] for x in runs[k]) for k in "AB")
    paired = [y["wall"] - x["wall"] for x, y in zip(runs["A"], runs["B"])]
    print(f"\nB - A: {b - a:+.2f} s per run ({(b - a) / a:+.0%}); paired by round: median "
          f"{statistics.median(paired):+.2f} s, min {min(paired):+.2f}, max {max(paired):+.2f};"
          f" B's processes used {cpu_b - cpu_a:+.2f} CPU s more than A's (medians)")
    loads = [x["load"] for v in runs.values() for x in v]
    print(f"1-min load average over the runs: {min(loads):.1f} to {max(loads):.1f} "
          f"(on {os.cpu_count()} cores)")
    for key in "AB":
        pids = [x["pid"] for x in runs[key]]
        envs = {json.dumps(x["env"], sort_keys=True) for x in runs[key]}
        print(f"{key}: {len(set(pids))} distinct pids over {len(pids)} runs (this process "
              f"{os.getpid()}); env seen by the run: {' / '.join(envs)}")
    print("B: torch already loaded when the job started:",
          {x["torch_loaded"] for x in runs["B"]}, "; after the job function returned, the "
          "parent knew after (median s):",
          f"{statistics.median(x['after_return'] for x in runs['B']):.2f}")
    print("B: submitit's files per job (bytes):", runs["B"][-1]["files"])


# ---- the guarantees, tried ------------------------------------------------------------

def main() -> None:
    os.chdir(ROOT)  # submitit's processes find bench.supervise from their working directory
    from bench.supervise_checks import checks, parent

    if len(sys.argv) > 1 and sys.argv[1] == "--parent":
        parent(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-in-process", action="store_true", help="skip C")
    parser.add_argument("--check", nargs="*",
                        choices=["death", "parent", "grace", "env", "latency"],
                        help="try the guarantees (all when none is named) instead of timing")
    args = parser.parse_args()
    if args.check is not None:
        checks(set(args.check or ["death", "parent", "grace", "env", "latency"]))
    else:
        timing(args.rounds, args.threads, not args.no_in_process)


if __name__ == "__main__":
    main()
