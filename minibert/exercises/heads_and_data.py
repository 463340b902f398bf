"""The exercises on the heads, the training data and sentence vectors: the masked-LM head and its loss,
the 80/10/10 masking, next-sentence pairs, the cross-encoder's score and mean pooling."""

from __future__ import annotations

EXERCISES = ()
