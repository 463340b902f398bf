"""minibert: a readable BERT that loads official checkpoints and matches Hugging Face transformers.

Read the source in this order: config.py, model.py (top to bottom, as a forward pass runs),
loading.py, tokenizer.py (and wordpiece.py for the tokenizer's rules), then trace.py.
"""

from .config import BertConfig, ConfigError
from .encode import SentenceEncoder
from .fast import FastBertModel
from .loading import CheckpointError, CheckpointNotFoundError
from .model import (
    BertForMaskedLM,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
)
from .tokenizer import Tokenizer
from .trace import diff, trace

__all__ = [
    "BertConfig", "ConfigError", "CheckpointError", "CheckpointNotFoundError", "BertModel",
    "BertForPreTraining", "BertForMaskedLM", "BertForNextSentencePrediction",
    "BertForSequenceClassification", "Tokenizer", "trace", "diff",
]
__all__ += ["FastBertModel", "SentenceEncoder"]  # the fast path and batched sentence embeddings
