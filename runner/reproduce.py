"""Every ablation of the study, one sweep each, then one combined report.

    python -m runner.reproduce [--repeats 20] [--epochs 500] [--out results/reproduce] \
        [launcher=parallel launcher.jobs_per_device=4 ...]   # overrides for every sweep
    python -m runner.reproduce --quick         # reduced: every table's shape on a 2-core CPU

The experiments are conf/experiment/*.yaml, in their `reproduce.order`; seeds and epochs are in
conf/reproduce.yaml. Each is an ordinary sweep (`python -m runner -m experiment=NAME ...
hydra.sweep.dir=OUT/NAME`) in its own process, so an interrupted reproduction resumes where it
stopped when run again. A new experiment is a new YAML file there: no Python to change.
"""
import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from runner.config_dir import CONF_DIR
from runner.errors import ConfigError
from runner.result import write_text_atomic

CONF = CONF_DIR
EXPERIMENT_DIR = CONF / "experiment"
SETTINGS_FILE = CONF / "reproduce.yaml"
HEADER = "# @package _global_"
EXAMPLE = 'reproduce: {order: 110, title: "Table 21: ..."}'


@dataclass(frozen=True)
class Experiment:
    """One conf/experiment/<name>.yaml's `reproduce` block: what this script needs to know."""
    name: str
    title: str                 # the combined report's heading
    order: int                 # its place in the study (then by name)
    own_epochs: bool = False   # keep the sweep's or preset's train.num_epochs: no --epochs
    quick: tuple[str, ...] = ()  # overrides added under --quick (repeats=N: its seeds then)
    repeats: int | None = None  # its own seeds per point in the full study: no --repeats


# key: (check, what is allowed, example); order and title are required
FIELDS = {
    "order": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer", "110"),
    "title": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string",
              '"Table 21: nn.RNN over dropout"'),
    "own_epochs": (lambda v: isinstance(v, bool), "true or false", "true"),
    "repeats": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                "an integer >= 1", "3"),
    "quick": (lambda v: isinstance(v, list) and all(isinstance(o, str) and "=" in o for o in v),
              'a list of override strings (quote those with commas)',
              '["train.num_epochs=5,10"]'),
}


def load_experiment(path: Path) -> Experiment:
    """Read one experiment file's `reproduce` block; a malformed one raises ConfigError naming
    the file, the key, what is allowed and the fix."""
    def bad(msg):
        return ConfigError(f"{path}: {msg}")

    text = path.read_text()
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if first != HEADER:
        raise bad(f"the first line must be `{HEADER}` (an experiment sets keys anywhere in the "
                  f"config, as conf/sweep/*.yaml do), not {first!r}")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise bad(f"not valid YAML: {e}") from None
    block = doc.get("reproduce") if isinstance(doc, dict) else None
    if not isinstance(block, dict):
        raise bad(f"reproduce is missing or not a mapping: add e.g. `{EXAMPLE}`")
    if unknown := sorted(set(block) - set(FIELDS)):
        raise bad(f"reproduce.{unknown[0]} is not a key: the keys are {', '.join(FIELDS)} "
                  f"(remove it or fix its spelling)")
    for key, (ok, allowed, example) in FIELDS.items():
        if key not in block and key in ("order", "title"):
            raise bad(f"reproduce.{key} is missing: it must be {allowed} (add "
                      f"`reproduce.{key}: {example}`)")
        if key in block and not ok(block[key]):
            raise bad(f"reproduce.{key}={block[key]!r} is not allowed: it must be {allowed} "
                      f"(e.g. `{key}: {example}`)")
    return Experiment(path.stem, block["title"], block["order"], block.get("own_epochs", False),
                      tuple(block.get("quick", [])), block.get("repeats"))


def load_experiments(folder: Path = EXPERIMENT_DIR) -> list[Experiment]:
    """Every <name>.yaml in `folder`, in the study's order."""
    return sorted(map(load_experiment, folder.glob("*.yaml")), key=lambda e: (e.order, e.name))


def load_settings(path: Path = SETTINGS_FILE) -> dict:
    """{"full": {"repeats": R, "epochs": E}, "quick": {...}} from conf/reproduce.yaml."""
    doc = yaml.safe_load(path.read_text())
    for mode in ("full", "quick"):
        for key in ("repeats", "epochs"):
            value = (doc.get(mode) or {}).get(key) if isinstance(doc, dict) else None
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ConfigError(f"{path}: {mode}.{key}={value!r} is not allowed: it must be an "
                                  f"integer >= 1 (e.g. `{mode}: {{{key}: 2}}`)")
    return doc


def command(exp: Experiment, out: Path, repeats: int, epochs: int, quick: bool,
            extra: list[str]) -> list[str]:
    epoch_args = [] if exp.own_epochs else [f"train.num_epochs={epochs}"]
    quick_args = list(exp.quick) if quick else []
    if exp.repeats and not quick:
        repeats = exp.repeats
    if own := [a for a in quick_args if a.startswith("repeats=")]:  # --quick's own seeds
        quick_args.remove(own[-1])
        repeats = int(own[-1].split("=", 1)[1])
    return [sys.executable, "-m", "runner", "-m", f"experiment={exp.name}", *epoch_args,
            *quick_args, f"repeats={repeats}", "quiet=true", f"hydra.sweep.dir={out / exp.name}",
            *extra]


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


def main(argv=None, folder: Path = EXPERIMENT_DIR, settings: Path = SETTINGS_FILE) -> int:
    try:
        experiments, study = load_experiments(folder), load_settings(settings)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    full, reduced = study["full"], study["quick"]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=full["repeats"],
                   help="seeds per point (%(default)s: conf/reproduce.yaml)")
    p.add_argument("--epochs", type=int, default=full["epochs"],
                   help="epochs per run (%(default)s: conf/reproduce.yaml)")
    p.add_argument("--out", type=Path, default=Path("results/reproduce"))
    p.add_argument("--quick", action="store_true", help=f"reduced: {reduced} and each "
                   "experiment's reproduce.quick overrides")
    p.add_argument("--only", help="comma-separated experiment names")
    p.add_argument("--plan", action="store_true", help="print the runs, training tokens and "
                   "estimated wall time (serial, and parallel with --jobs), then stop")
    p.add_argument("--jobs", type=int, default=2, help="--plan: jobs of launcher=parallel")
    p.add_argument("--timings", help="--plan: shape timings from this file (make gpu-check "
                   "writes a GPU's: gpu-check/shape_timings.json), not measured here")
    p.add_argument("--device", default="cpu", help="--plan: time the shapes on this device")
    p.add_argument("--save-timings", help="--plan: write the shape timings to this file")
    p.add_argument("--budget", type=float, help="--plan: seconds to spend timing shapes")
    p.add_argument("--pack", type=int, default=1, help="--plan: also estimate the study with "
                   "launcher.pack=N (each point's seeds trained in packs of N; docs/packing.md)")
    p.add_argument("overrides", nargs="*", help="runner overrides for every sweep, e.g. "
                   "launcher=parallel launcher.jobs_per_device=4")
    args = p.parse_args(argv)
    repeats, epochs = ((reduced["repeats"], reduced["epochs"]) if args.quick
                       else (args.repeats, args.epochs))
    if args.pack < 1:
        p.error(f"--pack {args.pack}: a pack holds at least one run; give an integer >= 1 "
                f"(1: each run alone)")
    names = [e.name for e in experiments]
    chosen = args.only.split(",") if args.only else names
    if unknown := set(chosen) - set(names):
        p.error(f"--only {sorted(unknown)}: no such experiment; choose from {names} "
                f"(or add {folder}/<name>.yaml)")
    commands = {e.name: command(e, args.out, repeats, epochs, args.quick, args.overrides)[4:]
                for e in experiments if e.name in chosen}
    if args.plan:
        from runner.plan import plan

        print("\n".join(plan([e for e in experiments if e.name in chosen], commands, args.jobs,
                             str(CONF), timings=args.timings, device=args.device,
                             save=args.save_timings, budget=args.budget, pack=args.pack)))
        return 0
    done = []
    for exp in experiments:
        if exp.name in chosen:
            print(f"== {exp.title}", flush=True)
            code = subprocess.run(command(exp, args.out, repeats, epochs, args.quick,
                                          args.overrides)).returncode
            done.append((exp.name, exp.title, code))
    print(f"combined report -> {combined_report(args.out, done)}")
    return max(code for *_, code in done)


if __name__ == "__main__":
    sys.exit(main())
