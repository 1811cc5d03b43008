"""Corpora, vocabularies and minibatch iterators."""
from data.corpus import LMData, load_lm_data
from data.download import DataError, ensure_file
from data.tatoeba import NMTData, fra_file, load_nmt_data
from data.vocab import Vocab

__all__ = ["DataError", "LMData", "NMTData", "Vocab", "ensure_file", "fra_file", "load_lm_data",
           "load_nmt_data"]
