"""Corpora, vocabularies and minibatch iterators."""
from data.corpus import LMData, load_lm_data
from data.download import DataError, ensure_file
from data.vocab import Vocab

__all__ = ["DataError", "LMData", "Vocab", "ensure_file", "load_lm_data"]
