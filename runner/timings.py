"""Shape-timing files: what runner/plan.py measured per model shape, kept so that a plan can be
made from another machine's figures (`make plan ARGS="--timings FILE"`). A GPU's come from
`make gpu-check` (bench/gpu_check.py), which times the study's shapes on the card:

    {"format": "runner-shape-timings/1", "device": "cuda", "device_name": "NVIDIA H100 ...",
     "torch": "2.11.0", "cuda": "13.0", "cores": 16, "jobs": 2, "written_at": "...",
     "parallel_timed": false,
     "shapes": [{"shape": {...the run's config, COST_FREE keys left out...},
                 "serial": {"setup": s, "epoch": s, "evaluation": s, "outputs": s,
                            "epoch_tokens": n},
                 "parallel": {...},
                 "pack": {"members": 20, "round": s, "epoch_tokens": n}}]}

"pack", where the plan was asked for packs (`--pack N`): one round of a pack of that many
seeds of the shape (runner/plan_pack.py).

A shape is matched by its config (runner/plan.py Run.shape), so a file serves every plan whose
runs have those shapes, whatever their seeds, epochs or learning rates. `parallel_timed` false:
the parallel column reuses the serial timing (on a GPU the run's CPU threads hardly matter),
and so assumes jobs sharing a GPU do not slow each other: throughput.csv says how far they do.
"""
import json
import os
from dataclasses import asdict

import torch

from runner.errors import ConfigError
from runner.result import now, write_json_atomic
from runner.run.environment import device_name

FORMAT = "runner-shape-timings/1"


def write_timings(path, timed: dict, device: str, jobs: int) -> None:
    """`timed`: shape (plan's JSON string) -> {"serial": Timing, "parallel": Timing}."""
    dev = torch.device(device)
    write_json_atomic(path, {
        "format": FORMAT, "device": device, "device_name": device_name(dev),
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "cores": len(os.sched_getaffinity(0)), "jobs": jobs,
        "written_at": now(), "parallel_timed": dev.type == "cpu",
        "shapes": [{"shape": json.loads(shape), **{m: asdict(t) for m, t in modes.items()}}
                   for shape, modes in timed.items()]})


def read_timings(path) -> tuple[dict, str]:
    """The file's timings by shape (as plan keys them), and a line saying where they are from."""
    from runner.plan import Timing  # plan imports this module
    from runner.plan_pack import PackTiming

    try:
        doc = json.loads(open(path).read())
    except (OSError, ValueError) as e:
        raise ConfigError(f"--timings {path}: cannot be read ({e})") from None
    if doc.get("format") != FORMAT:
        raise ConfigError(f"--timings {path}: not a shape-timing file (format "
                          f"{doc.get('format')!r}, expected {FORMAT!r}; make gpu-check writes one)")
    timed = {json.dumps(entry["shape"], sort_keys=True):
             {m: Timing(**entry[m]) for m in ("serial", "parallel")} for entry in doc["shapes"]}
    for entry in doc["shapes"]:  # a pack's round, where the plan timed one (--pack N)
        if "pack" in entry:
            timed[json.dumps(entry["shape"], sort_keys=True)]["pack"] = PackTiming(**entry["pack"])
    parallel = "" if doc["parallel_timed"] else ", parallel column = serial timings"
    return timed, f"{doc['device_name']} ({doc['device']}, {doc['written_at']}{parallel})"
