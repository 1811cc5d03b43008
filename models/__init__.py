"""Sequence models and their initialisation schemes."""
from models.core import CELLS, make_core
from models.init import SCHEMES, init_weights
from models.lm import LanguageModel, detach, generate, num_params

__all__ = ["CELLS", "SCHEMES", "LanguageModel", "detach", "generate", "init_weights",
           "make_core", "num_params"]
