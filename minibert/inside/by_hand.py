"""LayerNorm and the exact GELU, written out: the formulas torch's kernels (`F.layer_norm`, `F.gelu`)
compute, one step per line, so that a reader can see them and a breakpoint can stop inside them.

bert/model.py calls torch's kernels, which give the same numbers to float32 rounding
(tests/test_by_hand.py measures it, on random inputs and on all-MiniLM-L6-v2's own activations);
the exercises `layer_norm` and `gelu` check a learner's version against these.

    >>> import torch, torch.nn.functional as F
    >>> x = torch.tensor([[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]])  # mean 5, variance 4
    >>> layer_norm(x, weight=torch.ones(8), bias=torch.zeros(8), eps=1e-12)
    tensor([[-1.5000, -0.5000, -0.5000, -0.5000,  0.0000,  0.0000,  1.0000,  2.0000]])
    >>> layer_norm(x, torch.ones(8), torch.zeros(8), 1e-12).allclose(F.layer_norm(x, (8,), eps=1e-12))
    True
    >>> gelu(torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0]))
    tensor([-0.0040, -0.1587,  0.0000,  0.8413,  2.9960])
"""

from __future__ import annotations

import math

import torch


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """Normalise each vector of `x` (the last axis, H features) to mean 0 and variance 1, then scale and
    shift it feature by feature: (x - mean) / sqrt(variance + eps) * weight + bias, as nn.LayerNorm(H).

    Args:
        x: (..., H), e.g. (B, T, H): one vector per token.
        weight, bias: (H,), the learned scale and shift (nn.LayerNorm's `weight` and `bias`).
        eps: added to the variance inside the square root (BERT: 1e-12), so that a vector whose features
            are all equal gives 0, not 0 / 0.

    Returns:
        (..., H), the shape of `x`.
    """
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1): each vector's mean over its H features
    centered = x - mean  # (..., H)
    variance = (centered * centered).mean(dim=-1, keepdim=True)  # (..., 1): divided by H, not H - 1 (biased)
    normalized = centered / torch.sqrt(variance + eps)  # (..., H): mean 0, variance 1
    return normalized * weight + bias  # (..., H): weight and bias broadcast over every vector


def gelu(x: torch.Tensor) -> torch.Tensor:
    """The exact GELU: x * Phi(x), Phi being the standard normal's CDF, 0.5 * (1 + erf(x / sqrt(2))).

    A smooth ReLU: near x for large x, near 0 for very negative x, and slightly negative in between
    (its minimum is -0.17, at x = -0.75). BERT's `hidden_act = "gelu"`; "gelu_new" is the tanh
    approximation (bert/model.py's gelu_tanh), which differs from this by up to 5e-4.

    Args:
        x: a tensor of any shape, e.g. (B, T, I), the feed-forward's widened vectors.

    Returns:
        The shape of `x`.
    """
    phi = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))  # the probability that a standard normal is below x
    return x * phi
