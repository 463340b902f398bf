"""The exercises, in the order the lesson meets what they teach."""

from __future__ import annotations

from . import bert_parts, heads_and_data, words
from .core import Exercise, ExerciseError

ORDER = ("cosine", "analogy", "wordpiece",  # static word vectors, then the tokenizer
         "embeddings", "heads", "merge_heads", "attention", "layer_norm", "gelu", "residual", "pooler",  # the encoder
         "mlm_head", "mlm_loss", "masking", "nsp_pairs", "cross_encoder", "mean_pooling")  # heads, data, sentences

EXERCISES: dict[str, Exercise] = {
    ex.name: ex for ex in sorted((*words.EXERCISES, *bert_parts.EXERCISES, *heads_and_data.EXERCISES),
                                 key=lambda ex: ORDER.index(ex.name) if ex.name in ORDER else len(ORDER))}


def exercise(name: str) -> Exercise:
    if name not in EXERCISES:
        raise ExerciseError(f"no exercise {name!r}; there are: {', '.join(EXERCISES)}")
    return EXERCISES[name]
