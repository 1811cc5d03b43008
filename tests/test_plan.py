"""runner/plan.py: what `python -m runner.reproduce --plan` counts (runs, distinct runs,
training tokens) and how it adds the timed parts up. Its estimates against real wall time are
measured, not tested: docs/reports.md, "What the study costs"."""
import json
import re
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from runner.errors import ConfigError
from runner.plan import RUN_OVERHEAD, Timing, makespan, plan, planned_runs
from runner.plan_pack import PackTiming, packed_costs
from runner.reproduce import main
from runner.run import run
from tests.helpers import CONF, compose_config, tiny_overrides


def test_makespan_hands_jobs_in_order_to_the_first_free_worker():
    assert makespan([3, 1, 1, 1], 2) == 3  # 3 | 1+1+1
    assert makespan([1, 1, 1, 3], 2) == 4  # 1+1 | 1+3
    assert makespan([2.0, 5.0], 1) == 7.0
    assert makespan([], 3) == 0


@pytest.mark.parametrize("epochs, every", [(10, 4), (8, 4), (1, 50), (500, 50)])
def test_a_run_costs_its_parts(epochs, every):
    cfg = OmegaConf.create({"train": {"num_epochs": epochs, "eval_every": every}})
    t = Timing(setup=2.0, epoch=0.5, evaluation=0.25, outputs=1.0, epoch_tokens=100)
    # evaluations as runner/tasks/loop.py's fit() makes them: every `every` epochs and last
    evaluations = sum(e % every == 0 or e == epochs for e in range(1, epochs + 1))
    expected = 2.0 + epochs * 0.5 + evaluations * 0.25 + 1.0 + RUN_OVERHEAD
    assert t.run_seconds(cfg) == pytest.approx(expected)
    no_eval = Timing(2.0, 0.5, 0.0, 1.0, 100)  # a task without held-out evaluation
    assert no_eval.run_seconds(cfg) == pytest.approx(2.0 + epochs * 0.5 + 1.0 + RUN_OVERHEAD)


def test_runs_two_experiments_share_are_trained_once_and_tokens_are_the_runs(corpus_dir,
                                                                             tmp_path):
    tiny = [*tiny_overrides(corpus_dir), "train.num_epochs=2", "threads=1"]
    commands = {"a": ["-m", *tiny, "model.num_hiddens=16,24"],
                "b": ["-m", *tiny, "data.batch_size=8,4"]}  # (16, 8) is in both
    experiments = [SimpleNamespace(name=n) for n in commands]
    runs = {n: planned_runs(n, c, str(CONF)) for n, c in commands.items()}
    assert ["model.num_hiddens=16," in r.folder for r in runs["a"]] == [True, False]
    assert runs["a"][0].identity == runs["b"][0].identity != runs["b"][1].identity
    lines = plan(experiments, commands, 2, str(CONF), say=lambda _: None)
    table = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:5]]
    assert [row[:3] for row in table] == [["a", "2", "2"], ["b", "2", "1"], ["total", "4", "3"]]
    # training tokens, counted a second way: what the three runs record they trained on
    trained = [compose_config(*tiny, "model.num_hiddens=16"),
               compose_config(*tiny, "model.num_hiddens=24"),
               compose_config(*tiny, "data.batch_size=4")]
    tokens = sum(run(cfg, tmp_path / str(i))["metrics"]["train_tokens"]
                 for i, cfg in enumerate(trained))
    assert int(table[2][3].replace(",", "")) == tokens
    assert re.fullmatch(r"\d+ s|\d+\.\d min", table[2][4])  # serial, at 2 threads...
    assert "4 runs, 3 trained: 1 asked for again by a later experiment" in lines[-1]


def test_plan_prints_and_runs_nothing(capsys, corpus_dir, tmp_path):
    code = main(["--plan", "--quick", "--only", "lr", "--out", str(tmp_path / "out"),
                 *tiny_overrides(corpus_dir), "train.num_epochs=1"])  # one shape to time
    out = capsys.readouterr().out
    assert code == 0 and "| lr | 10 | 10 |" in out and "timing 1 of 1 model shapes" in out
    assert not (tmp_path / "out").exists()  # nothing written, nothing trained


def test_a_timing_file_replaces_the_measuring(corpus_dir, tmp_path):
    """make gpu-check saves a GPU's shape timings; make plan ARGS="--timings FILE" estimates
    from them, timing nothing here."""
    commands = {"a": ["-m", *tiny_overrides(corpus_dir), "train.num_epochs=2", "threads=1",
                      "model.num_hiddens=16,24"]}
    experiments, file, said = [SimpleNamespace(name="a")], tmp_path / "timings.json", []
    measured = plan(experiments, commands, 2, str(CONF), say=said.append, save=str(file))
    doc = json.loads(file.read_text())
    assert doc["format"] == "runner-shape-timings/1" and doc["device"] == "cpu"
    assert len(doc["shapes"]) == 2 and doc["shapes"][0]["shape"]["model"]["num_hiddens"] == 16
    for entry in doc["shapes"]:  # a slow device: an hour an epoch
        entry["serial"]["epoch"] = entry["parallel"]["epoch"] = 3600.0
    file.write_text(json.dumps(doc))
    said.clear()
    lines = plan(experiments, commands, 2, str(CONF), say=said.append, timings=str(file))
    assert said[0].startswith("timing 0 of 2 model shapes here on cpu")
    assert f"2 read from {file} ({doc['device_name']} (cpu, {doc['written_at']}))" in said[0]
    total = [c.strip() for c in lines[3].strip("|").split("|")]
    assert total[3] == [c.strip() for c in measured[3].strip("|").split("|")][3]  # tokens
    assert total[4:] == ["4.0 h", "2.0 h"]  # 2 runs x 2 epochs x 1 h; 2 jobs: half
    file.write_text("{}")
    with pytest.raises(ConfigError, match="not a shape-timing file"):
        plan(experiments, commands, 2, str(CONF), timings=str(file))


def test_packed_costs_charge_a_pack_its_members_parts_and_one_round_per_epoch():
    """launcher.pack in the plan (runner/plan_pack.py): a point's 5 trained runs in packs of
    2 launch 3 jobs, [2, 2, 1]; a pack pays each member's own set-up, evaluations and outputs
    and one round per epoch; the lone last run costs what it costs alone."""
    cfg = OmegaConf.create({"train": {"num_epochs": 10, "eval_every": 5}})
    solo = Timing(setup=2.0, epoch=0.5, evaluation=0.25, outputs=1.0, epoch_tokens=100)
    timed = {"s": {"serial": solo, "pack": PackTiming(members=2, round=0.75, epoch_tokens=200)},
             "t": {"serial": solo}}  # a shape that cannot pack: no pack timing
    runs = [SimpleNamespace(shape="s", point="p", cfg=cfg) for _ in range(5)]
    alone = 2.0 + 10 * 0.5 + 2 * 0.25 + 1.0 + RUN_OVERHEAD
    member = 2.0 + 2 * 0.25 + 1.0  # evaluations after epochs 5 and 10
    assert packed_costs(runs, timed, 2) == pytest.approx(
        [2 * member + 10 * 0.75 + RUN_OVERHEAD] * 2 + [alone])
    other = [SimpleNamespace(shape="s", point="q", cfg=cfg)]  # another point: its own pack
    assert len(packed_costs(runs[:2] + other, timed, 4)) == 2
    unpackable = [SimpleNamespace(shape="t", point="r", cfg=cfg) for _ in range(3)]
    assert packed_costs(unpackable, timed, 2) == pytest.approx([alone] * 3)


def test_a_pack_is_timed_as_a_round_of_every_members_tokens(corpus_dir, tmp_path):
    """The plan's --pack column, end to end on the tiny corpus: each shape timed as a pack of
    its point's 3 seeds, one round holding 3 runs' epoch tokens (counted a second way: the
    shape timed alone), saved with the shape timings and read back, timing nothing again."""
    commands = {"a": ["-m", *tiny_overrides(corpus_dir), "train.num_epochs=2", "threads=1",
                      "repeats=3"]}
    experiments, file, said = [SimpleNamespace(name="a")], tmp_path / "timings.json", []
    lines = plan(experiments, commands, 2, str(CONF), say=said.append, save=str(file), pack=4)
    assert "timing 1 model shapes as packs of up to 4" in said[1]
    entry = json.loads(file.read_text())["shapes"][0]
    assert entry["pack"]["members"] == 3  # the point has 3 seeds: a pack of 3, not 4
    assert entry["pack"]["epoch_tokens"] == 3 * entry["serial"]["epoch_tokens"]
    assert entry["pack"]["round"] > 0
    assert lines[0].endswith("| launcher.pack=4, serial |")
    doc = json.loads(file.read_text())
    doc["shapes"][0]["pack"]["round"] = 3600.0  # a slow pack: an hour a round
    file.write_text(json.dumps(doc))
    said.clear()
    lines = plan(experiments, commands, 2, str(CONF), say=said.append, timings=str(file),
                 pack=4)
    assert "timing 0 model shapes as packs" in said[1]
    packed = [c.strip() for c in lines[3].strip("|").split("|")][-1]
    assert packed == "2.0 h"  # one pack of 3, 2 epochs x 1 h, and seconds besides


def test_plan_pack_below_one_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--plan", "--pack", "0"])
    said = capsys.readouterr().err
    assert e.value.code == 2 and "--pack 0: a pack holds at least one run" in said
