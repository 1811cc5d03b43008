"""Every ablation of the study, one sweep each, then one combined report.

    python -m runner.reproduce [--repeats 20] [--epochs 500] [--out results/reproduce] \
        [launcher=parallel launcher.jobs_per_device=4 ...]   # overrides for every sweep
    python -m runner.reproduce --quick         # reduced: every table's shape on a 2-core CPU

Each experiment is an ordinary sweep (`python -m runner ... hydra.sweep.dir=OUT/NAME`) in its
own process, so an interrupted reproduction resumes where it stopped when run again.
"""
import argparse
import subprocess
import sys
from pathlib import Path

from runner.result import write_text_atomic

# name, the study's table, overrides. Epochs and seeds come from the command line.
EXPERIMENTS = [
    ("impl_sampling", "Tables 9-10: from scratch vs nn.RNN, sequential vs random",
     ["model=rnn,rnn_scratch", "data.sampling=sequential,random"]),
    ("num_hiddens", "Table 12: nn.RNN over num_hiddens", ["sweep=num_hiddens"]),
    ("num_steps", "Table 13: nn.RNN over num_steps", ["sweep=num_steps"]),
    ("batch_size", "Table 14: nn.RNN over batch_size", ["sweep=batch_size"]),
    ("lr", "Table 15: nn.RNN over the learning rate", ["sweep=lr"]),
    ("num_epochs", "The epochs ablation: nn.RNN over num_epochs", ["sweep=num_epochs"]),
    ("models", "Tables 16-19: RNN, LSTM, GRU over num_hiddens",
     ["sweep=models", "model=rnn,lstm,gru"]),
    ("num_layers", "Table 20: deep LSTM over num_layers (num_hiddens 32)",
     ["model=lstm", "sweep=num_layers"]),
    ("bidirectional", "The bidirectional misuse: a 2-layer, 256-unit LSTM that sees the future",
     ["model=lstm", "model.num_layers=2", "model.num_hiddens=256",
      "model.bidirectional=false,true"]),
    ("seq2seq", "Seq2seq on Tatoeba English-French (the GRU preset, 300 epochs), with BLEU",
     ["data=tatoeba", "model=gru"]),
]
QUICK = {"repeats": 2, "epochs": 20, "num_epochs": "train.num_epochs=5,10,20,40",
         "seq2seq": "train.num_epochs=50"}


def command(overrides: list[str], name: str, out: Path, repeats: int, epochs: int,
            quick: bool, extra: list[str]) -> list[str]:
    if name in ("num_epochs", "seq2seq"):  # the sweep's own epochs, or the preset's 300
        epoch_args = [QUICK[name]] if quick else []
    else:
        epoch_args = [f"train.num_epochs={epochs}"]
    return [sys.executable, "-m", "runner", "-m", *overrides, *epoch_args, f"repeats={repeats}",
            "quiet=true", f"hydra.sweep.dir={out / name}", *extra]


def combined_report(out: Path, done: list[tuple[str, str, int]]) -> Path:
    """One page: each experiment's summary tables under its heading, in the study's order."""
    parts = ["# The study, reproduced\n", f"Experiments under `{out}`; each folder holds its "
             "runs, `runs.csv`, `summary.csv` and `summary.md`.\n"]
    for name, title, code in done:
        summary = out / name / "summary.md"
        body = summary.read_text().split("\n", 1)[1] if summary.exists() else "(no report)\n"
        status = "" if code == 0 else f" (sweep exit code {code}: see its manifest.json)"
        parts.append(f"## {title}{status}\n\n`{name}/`\n{body}")
    path = out / "report.md"
    write_text_atomic(path, "\n".join(parts))
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=20, help="seeds per point (the study: 20)")
    p.add_argument("--epochs", type=int, default=500, help="epochs per run (the study: 500)")
    p.add_argument("--out", type=Path, default=Path("results/reproduce"))
    p.add_argument("--quick", action="store_true", help=f"reduced: {QUICK}")
    p.add_argument("--only", help="comma-separated experiment names")
    p.add_argument("overrides", nargs="*", help="runner overrides for every sweep, e.g. "
                   "launcher=parallel launcher.jobs_per_device=4")
    args = p.parse_args(argv)
    repeats, epochs = ((QUICK["repeats"], QUICK["epochs"]) if args.quick
                       else (args.repeats, args.epochs))
    chosen = args.only.split(",") if args.only else [name for name, *_ in EXPERIMENTS]
    unknown = set(chosen) - {name for name, *_ in EXPERIMENTS}
    if unknown:
        p.error(f"--only {sorted(unknown)}: no such experiment; choose from "
                f"{[name for name, *_ in EXPERIMENTS]}")
    done = []
    for name, title, overrides in EXPERIMENTS:
        if name in chosen:
            print(f"== {title}", flush=True)
            code = subprocess.run(command(overrides, name, args.out, repeats, epochs,
                                          args.quick, args.overrides)).returncode
            done.append((name, title, code))
    print(f"combined report -> {combined_report(args.out, done)}")
    return max(code for *_, code in done)


if __name__ == "__main__":
    sys.exit(main())
