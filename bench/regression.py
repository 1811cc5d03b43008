"""What one run of the companion note's regression costs here (`data=synthetic`, the note's
6-layer encoder), timed step by step on the runner's own task, and what its tables cost.

    python -m bench.regression [--threads 1,2] [--steps 20] [--rounds 3]

For each thread count, in interleaved rounds (one round: each figure once, in turn), the
median over rounds of milliseconds per: training step (draw, forward, backward, Adam) with
torch's default Adam and with `+optim.fused=true`; evaluation batch in train mode (the note's
figure) and in eval mode. A run is 1,000 training steps and 1,000 batches scored both ways,
so its estimate is 1000 x (train + train-mode + eval-mode) ms; the init table is 33 runs (11
settings x 3 seeds), one at a time with T threads, or two at a time with 1 thread each.
Alone on the machine, please: two runs at once share the cores, and the estimate assumes they
slow each other no more than that. Saved to bench/out/regression.json.
"""
import argparse
import statistics
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from runner.result import write_json_atomic
from runner.run.execute import model_and_optimizer
from runner.tasks import build_task
from runner.tasks.loop import make_scheduler, step
from runner.tasks.regression import note_loss

INIT_TABLE_RUNS = 33
CONF = Path(__file__).resolve().parent.parent / "conf"


def timers(fused: bool):
    """(train step, train-mode batch, eval-mode batch) closures on a fresh note model."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["data=synthetic", "quiet=true", "device=cpu",
                                           *(["+optim.fused=true"] if fused else [])])
    task = build_task(cfg)
    model, optimizer = model_and_optimizer(cfg, task, torch.device("cpu"))
    scheduler = make_scheduler(optimizer, cfg, task.steps_per_epoch)
    params = list(model.parameters())

    def train():
        x, target = task.batch()
        step(note_loss(model(x), target), params, optimizer, scheduler, None)

    def score(mode):
        def once():
            x, target = task.batch()
            model.train(mode)
            with torch.no_grad():
                note_loss(model(x), target).item()
            model.train()
        return once

    return {"train" + ("_fused_adam" if fused else ""): train,
            **({} if fused else {"score_train_mode": score(True),
                                 "score_eval_mode": score(False)})}


def ms_per_call(fn, calls: int) -> float:
    fn()  # allocator and thread-pool warm-up
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1000


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    p.add_argument("--steps", type=int, default=20, help="calls per figure per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default="bench/out/regression.json")
    args = p.parse_args(argv)
    report = {}
    for threads in map(int, args.threads.split(",")):
        torch.set_num_threads(threads)
        fns = {**timers(False), **timers(True)}
        rounds = {name: [] for name in fns}
        for _ in range(args.rounds):
            for name, fn in fns.items():
                rounds[name].append(ms_per_call(fn, args.steps))
        ms = {name: statistics.median(v) for name, v in rounds.items()}
        run_s = (ms["train"] + ms["score_train_mode"] + ms["score_eval_mode"])  # x1000 / 1000
        report[threads] = {"ms": ms, "rounds": rounds, "run_seconds": run_s,
                           "init_table_minutes_serial": INIT_TABLE_RUNS * run_s / 60}
        print(f"threads {threads}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items())
              + f"; one run ~{run_s:.0f} s; init table (33 runs, one at a time) "
              f"~{INIT_TABLE_RUNS * run_s / 60:.0f} min")
    if 1 in report:
        two = INIT_TABLE_RUNS * report[1]["run_seconds"] / 2 / 60
        report["init_table_minutes_two_jobs_1_thread"] = two
        print(f"init table, two 1-thread runs at a time: ~{two:.0f} min")
    write_json_atomic(Path(args.out), report)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
