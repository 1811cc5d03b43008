"""How long the report takes for 1,000 result files: load, validate, tables, plots, page.

    python -m bench.report_speed [--runs 1000]

The results are copies of one real run (a 2-epoch GRU on a generated corpus), spread over
50 points (rnn/lstm/gru x num_hiddens, plus failed and diverged runs) x 20 seeds, with
perturbed metrics, in a temporary folder.
"""
import argparse
import copy
import random
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from runner.report import write_report
from runner.result import write_json_atomic
from runner.run.environment import CHECKOUT
from runner.run.execute import run

WORDS = "the time traveller said machine was a and of in".split()


def template(tmp: Path) -> dict:
    rng = random.Random(0)
    (tmp / "tiny.txt").write_text(" ".join(rng.choice(WORDS) for _ in range(1500)))
    overrides = [f"data.root={tmp}", "data.file=tiny.txt", "data.sha1=null",
                 "data.max_tokens=3000", "data.val_tokens=600", "data.batch_size=8",
                 "data.num_steps=10", "model=gru", "model.num_hiddens=16", "train.num_epochs=2",
                 "quiet=true", "device=cpu", "store=null"]
    with initialize_config_dir(str(CHECKOUT / "conf"), version_base="1.3"):
        return run(compose("config", overrides=overrides), tmp / "template")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=1000)
    args = p.parse_args(argv)
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        base = template(Path(tmp))
        folder = Path(tmp) / "sweep"
        for i in range(args.runs):
            r = copy.deepcopy(base)
            cell, size = ["rnn", "lstm", "gru"][i % 3], 2 ** (5 + (i // 3) % 6)
            r["config"]["model"].update(cell=cell, num_hiddens=size)
            r["config"]["seed"], r["run_id"] = i // 18, f"{i:012x}"
            r["metrics"]["train_perplexity"] *= rng.uniform(0.9, 1.1)
            r["metrics"]["tokens_per_sec"] *= rng.uniform(0.9, 1.1)
            if i % 97 == 0:
                r["status"], r["error"] = "failed", {"type": "RuntimeError", "message": "x",
                                                     "traceback_tail": ["x"]}
            write_json_atomic(folder / f"run{i:04d}" / "result.json", r)
        start = time.perf_counter()
        counts = write_report(folder)
        seconds = time.perf_counter() - start
    print(f"report over {counts['read']} result files ({len(counts['plots'])} plot files): "
          f"{seconds:.2f} s")


if __name__ == "__main__":
    main()
