"""Log lines during training go through tqdm.write, above the progress bar, not into it."""
import logging
import sys

import tqdm.std

import runner.run.execute
from runner.run.execute import run


def test_a_log_line_during_an_epoch_goes_through_tqdm_write(tiny_cfg, tmp_path, monkeypatch,
                                                          request):
    written = []
    monkeypatch.setattr(tqdm.std.tqdm, "write", staticmethod(
        lambda s, file=None, end="\n", nolock=False: written.append((s, file))))
    console = logging.StreamHandler(sys.stderr)  # as Hydra's job logging configures the root
    console.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [console])
    level = root.level
    root.setLevel(logging.INFO)  # setLevel, not the attribute: it clears the loggers' caches
    request.addfinalizer(lambda: root.setLevel(level))
    fit = runner.run.execute.fit
    epoch_log = logging.getLogger("test.epoch")

    def logging_fit(*args):  # the real loop, whose every epoch logs a line
        *rest, on_epoch = args
        return fit(*rest, lambda h: (epoch_log.info("epoch %d done", h.epoch[-1]), on_epoch(h)))

    monkeypatch.setattr(runner.run.execute, "fit", logging_fit)
    result = run(tiny_cfg("train.num_epochs=2"), tmp_path)
    assert result["status"] == "completed"
    lines = [s for s, _ in written]
    assert "[test.epoch] epoch 1 done" in lines and "[test.epoch] epoch 2 done" in lines
    assert any(s.startswith("[runner.run.execute] run ") for s in lines), lines  # epoch 1 too
    assert {file for _, file in written} == {sys.stderr}  # the console handler's own stream
    # after training, the console handler is back and logs directly
    assert root.handlers == [console]
    written.clear()
    epoch_log.info("after training")
    assert written == []
