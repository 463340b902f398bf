"""minibert: a readable BERT that loads official checkpoints and matches Hugging Face transformers.

The folders are the table of contents (the README's "Reading the source" gives the reading order):

    bert/      the model, read first: model.py is the forward pass
    inside/    looking inside: trace.py (every intermediate, and a diff against transformers),
               explore.py (an HTML page of the attention), wordpiece.py (the tokenizer's rules),
               hooks.py, patching.py, lens.py, attribution.py (the interpretability toolkit)
    training/  pre-training data (masking, next-sentence pairs), the training loop, its log
    speed/     opt-in speed, tested against bert/: fast.py, encode.py, quantize.py, onnx.py
    app/       application code (the command line, the lesson's helpers): skip it on a first read

Everything a user needs is importable from here: `from minibert import BertModel, Tokenizer`.
"""

from .bert.config import BertConfig, ConfigError
from .bert.files import CheckpointError, CheckpointNotFoundError
from .bert.heads import (BertForMultipleChoice, BertForNextSentencePrediction, BertForPreTraining,
                         BertForQuestionAnswering, BertForSequenceClassification, BertForTokenClassification)
from .bert.loading import MissingHeadError
from .bert.model import BertForMaskedLM, BertModel
from .bert.tokenizer import Tokenizer
from .inside.explore import explore
from .inside.hooks import run_with_cache, run_with_hooks
from .inside.trace import diff, trace
from .speed.encode import SentenceEncoder
from .speed.fast import FastBertModel
from .speed.onnx import CheckedSession, export_onnx

__all__ = [
    "BertConfig", "ConfigError", "CheckpointError", "CheckpointNotFoundError", "MissingHeadError",
    "BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForNextSentencePrediction",
    "BertForSequenceClassification", "BertForTokenClassification", "BertForQuestionAnswering",
    "BertForMultipleChoice", "Tokenizer", "trace", "diff", "explore", "run_with_cache", "run_with_hooks", "FastBertModel", "SentenceEncoder",
    "export_onnx", "CheckedSession",
]
