"""The exercises on words: GloVe's cosine and analogy in numpy, and WordPiece's greedy longest match."""

from __future__ import annotations

EXERCISES = ()
