"""What a run trains, by `data.task`: a language model on one token stream, an
encoder-decoder translator, or the companion note's synthetic regression. Each task loads and
checks its data, builds the model around the configured core, runs an epoch and scores what it
scores (held-out data, or fresh batches); loop.py is the loop they share."""
from data.download import sha1_of
from runner.tasks.language_model import LanguageModelTask
from runner.tasks.regression import RegressionTask
from runner.tasks.translation import TranslationTask

TASKS = {"language_model": LanguageModelTask, "translation": TranslationTask,
         "regression": RegressionTask}


def data_of(cfg):
    """(file, sha1) of the run's data: the task's file, downloaded first when missing and
    allowed; (None, None) for data that is drawn, not read."""
    path = TASKS[cfg.data.task].data_file(cfg)
    return path, (sha1_of(path) if path else None)


__all__ = ["TASKS", "data_of", "LanguageModelTask", "RegressionTask", "TranslationTask"]
