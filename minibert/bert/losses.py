"""The losses the heads train with, written out. Each is the mean over the positions that count.

They give transformers' numbers (tests/test_training_losses.py checks the loss to 1e-6 and every
gradient to 1e-5), but they are spelled out here, a line per step, to be read:

    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])   # (N, C): 2 positions, 3 classes
    >>> cross_entropy(logits, torch.tensor([0, -100]))     # the second position is not predicted
    tensor(0.1698)
    >>> -torch.log_softmax(logits[0], dim=-1)[0]            # the same number, by hand
    tensor(0.1698)
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100  # a label of -100 means "not predicted here": padding, or an unmasked token


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Mean of -log p(label) over the positions whose label is not `ignore_index`.

    logits (N, C), labels (N,) of class indices. With no position to predict the mean is 0/0, NaN,
    as in torch and transformers: a batch with nothing masked has nothing to learn from.
    """
    keep = labels != ignore_index  # (N,)
    log_probs = torch.log_softmax(logits, dim=-1)  # (N, C): log of the softmax, computed stably in one step
    safe_labels = labels.masked_fill(~keep, 0)  # any valid index where ignored; those rows are dropped below
    picked = log_probs.gather(-1, safe_labels[:, None]).squeeze(-1)  # (N,): log p(the right class)
    return -(picked * keep).sum() / keep.sum()


def mean_squared_error(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Regression (a classifier with one label): the mean of the squared differences."""
    return ((predictions - targets) ** 2).mean()


def binary_cross_entropy_with_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Multi-label classification: each label is its own yes/no, with p = sigmoid(logit).

    -[y log p + (1 - y) log(1 - p)] rewritten so that exp never overflows:
    max(x, 0) - x y + log(1 + exp(-|x|)).
    """
    return (logits.clamp(min=0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))).mean()
