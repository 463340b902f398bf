"""minibert: a readable BERT that loads official checkpoints and matches Hugging Face transformers.

Read the source in this order: config.py, model.py (top to bottom, as a forward pass runs),
loading.py, tokenizer.py.
"""

from .config import BertConfig, ConfigError
from .loading import CheckpointError, CheckpointNotFoundError
from .model import (
    BertForMaskedLM,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
)
from .tokenizer import Tokenizer

__all__ = [
    "BertConfig", "ConfigError", "CheckpointError", "CheckpointNotFoundError", "BertModel",
    "BertForPreTraining", "BertForMaskedLM", "BertForNextSentencePrediction",
    "BertForSequenceClassification", "Tokenizer",
]
