"""bench/note_warmup.py's comparison (issue 26), on a runs.csv written here: its counts, its
Fisher test and the pairs it calls different. The bench's runs themselves are hours, not a test."""
import pytest

from bench.note_warmup import compare, main, write_rows


def rows(program, mses):
    return [{"program": program, "seed": s, "eval_batches": 100, "mse": m, "eval_mode_mse": "",
             "trained": m < 1.0, "seconds": 1.0} for s, m in enumerate(mses)]


def test_the_comparison_counts_trained_runs_tests_them_and_names_differing_seeds(tmp_path):
    program = [0.13, 3.5, 0.16, 3.5, 3.5, 3.5, 3.5, 3.5, 0.2, 3.5]       # 3 of 10
    runner = [3.505, 3.5, 3.504, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5]     # 0 of 10
    path = tmp_path / "runs.csv"
    write_rows(path, rows("runner", runner) + rows("program", program))
    text = compare(path)
    assert "program: 3 of 10 trained" in text and "runner: 0 of 10 trained" in text
    assert "p = 0.211" in text  # scipy.stats.fisher_exact([[3, 7], [0, 10]]), two-sided
    assert "seeds run by both: 10; MSE not bit-identical at: 0, 2, 8" in text
    assert path.read_text().splitlines()[1].startswith("program,0,100,0.13,")  # sorted


def test_a_bad_seed_range_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--seeds", "0..9"])
    assert e.value.code == 2
    assert "--seeds='0..9' is not allowed: it must be first-last (e.g. 0-9)" in \
        capsys.readouterr().err
