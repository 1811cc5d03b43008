"""What a run trains, by `data.task`: a language model on one token stream, or an
encoder-decoder translator. Each task loads and checks its data, builds the model around the
configured core, runs an epoch and scores held-out data; loop.py is the loop they share."""
from runner.tasks.language_model import LanguageModelTask
from runner.tasks.translation import TranslationTask

TASKS = {"language_model": LanguageModelTask, "translation": TranslationTask}

__all__ = ["TASKS", "LanguageModelTask", "TranslationTask"]
