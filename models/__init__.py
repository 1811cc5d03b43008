"""Sequence models and their initialisation schemes."""
from models.core import make_core, resolve_impl
from models.init import SCHEMES, init_weights
from models.lm import LanguageModel, detach, generate, num_params
from models.regressor import EncoderRegressor
from models.seq2seq import AdditiveAttention, Seq2Seq, masked_cross_entropy
from models.transformer import TransformerLM, TransformerSeq2Seq

__all__ = ["SCHEMES", "AdditiveAttention", "EncoderRegressor", "LanguageModel",
           "Seq2Seq", "TransformerLM", "TransformerSeq2Seq", "detach", "generate",
           "init_weights", "make_core", "masked_cross_entropy", "num_params", "resolve_impl"]
