"""The two losses that train a sentence embedding model, written out a line per step.

A sentence encoder (speed/encode.py: BERT, then pooling) turns each text into one vector. Training
it means pulling the vectors of texts that belong together closer, in cosine, than those that do not.

    multiple_negatives_ranking_loss   pairs (anchor, positive): a question and its passage, a title
                                      and its article. Every other positive in the batch is a
                                      negative for free ("in-batch negatives"), so the loss is a
                                      B-way classification: which column is my positive?
    cosent_loss                       pairs with a graded score (0 to 5 for "how similar"): each pair
                                      whose score is lower must get the lower cosine.

They give sentence-transformers' numbers (`MultipleNegativesRankingLoss` and `CoSENTLoss` on the same
embeddings; tests/test_sentence_losses.py checks the loss to 1e-6 and the gradients to 1e-5 of their
largest entry, float32's rounding of logits up to 2 * scale apart), but are spelled out here to be read.
Dimension letters: B texts per column, D the embedding's width, k hard negatives per anchor.

    >>> anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])      # (B, D): 2 questions
    >>> positives = torch.tensor([[1.0, 0.5], [0.5, 1.0]])    # (B, D): each one's passage, cosine 0.89
    >>> multiple_negatives_ranking_loss(anchors, positives)   # near 0: each anchor picks its own column
    tensor(0.0001)
    >>> multiple_negatives_ranking_loss(anchors, positives.flip(0))   # swapped: each picks the wrong one
    tensor(8.9444)
    >>> b = torch.tensor([[1.0, 0.0], [1.0, 1.0]])            # cosines with anchors: 1.0, then 0.71
    >>> cosent_loss(anchors, b, scores=torch.tensor([5.0, 1.0]))   # gold order = cosine order: near 0
    tensor(0.0029)
    >>> cosent_loss(anchors, b, scores=torch.tensor([1.0, 5.0]))   # the order reversed: 20 * (1 - 0.71)
    tensor(5.8607)
"""

from __future__ import annotations

import torch

from ..bert.losses import cross_entropy


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Each row over its length, so that a dot product of two rows is their cosine: (N, D) -> (N, D).

    The length is clamped at 1e-12 (as torch.nn.functional.normalize does) so a zero row stays zero
    instead of becoming NaN.
    """
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)  # (N, D)


def multiple_negatives_ranking_loss(anchors: torch.Tensor, positives: torch.Tensor, scale: float = 20.0,
                                    hard_negatives: torch.Tensor | None = None) -> torch.Tensor:
    """In-batch negatives: anchor i must pick positive i out of every candidate in the batch.

    The scores are cosines times `scale` (20: a cosine lives in [-1, 1], too narrow a range of logits
    for a softmax to be confident; times 20 it spans [-20, 20]). The loss is the cross-entropy of
    each anchor's row of scores, with its own positive (the diagonal) as the target. Hard negatives
    (a passage that looks right and is not) are extra candidates that every anchor must rank below its
    positive; anchor i's own hard negatives are never its target.

    Args:
        anchors: (B, D) embeddings, one per pair.
        positives: (B, D): positives[i] belongs with anchors[i].
        scale: multiplies every cosine before the softmax (1 / temperature); must be positive.
        hard_negatives: None, (B, D) (one per anchor) or (B, k, D) (k per anchor).

    Returns:
        The mean over anchors of -log softmax(scores)[own positive], a 0-dim tensor.

    Raises:
        ValueError: shapes that do not line up, or a scale that is not positive.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    if anchors.ndim != 2 or positives.shape != anchors.shape:
        raise ValueError(f"anchors and positives must be (B, D) of one shape, got {tuple(anchors.shape)} "
                         f"and {tuple(positives.shape)}")
    B, D = anchors.shape
    candidates = positives  # (B, D): column j is anchor j's positive
    if hard_negatives is not None:
        if hard_negatives.ndim == 2:
            hard_negatives = hard_negatives[:, None, :]  # (B, 1, D)
        if hard_negatives.ndim != 3 or hard_negatives.shape[0] != B or hard_negatives.shape[2] != D:
            raise ValueError(f"hard_negatives must be (B, D) or (B, k, D) with B={B}, D={D}, "
                             f"got {tuple(hard_negatives.shape)}")
        # One block of B columns per negative: column B + n*B + i is anchor i's n-th hard negative.
        negatives = hard_negatives.transpose(0, 1).reshape(-1, D)  # (k*B, D)
        candidates = torch.cat([candidates, negatives], dim=0)  # (B + k*B, D)

    cosines = unit_rows(anchors) @ unit_rows(candidates).T  # (B, C): C = B(1 + k) candidates per anchor
    logits = scale * cosines  # (B, C)
    targets = torch.arange(B, device=anchors.device)  # (B,): anchor i's positive is column i, the diagonal
    return cross_entropy(logits, targets)  # mean of -log softmax(logits[i])[i]


def cosent_loss(a: torch.Tensor, b: torch.Tensor, scores: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """CoSENT (Su 2022): every pair whose gold score is lower must get the lower cosine.

    With s_i = scale * cos(a_i, b_i), the loss is

        log(1 + sum over pairs (i, j) with scores[i] < scores[j] of exp(s_i - s_j))

    Each term is a pair the model should order; it is near 0 when s_i is well below s_j and grows
    linearly once s_i rises above s_j. Only the order of the gold scores matters, not their values;
    pairs with equal scores (ties) are no constraint. The 1 (exp(0)) keeps the loss at 0 or above,
    and at exactly 0 when there is nothing to order (one pair, or all scores tied).

    Args:
        a, b: (B, D) embeddings; (a[i], b[i]) is pair i.
        scores: (B,) gold similarity of each pair (any scale; bools are read as 0 and 1).
        scale: multiplies every cosine (1 / temperature).

    Returns:
        A 0-dim tensor.

    Raises:
        ValueError: shapes that do not line up.
    """
    if a.ndim != 2 or b.shape != a.shape:
        raise ValueError(f"a and b must be (B, D) of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if scores.numel() != a.shape[0]:
        raise ValueError(f"scores must hold one score per pair, {a.shape[0]}, got shape {tuple(scores.shape)}")
    scores = scores.reshape(-1)  # (B,)
    if scores.dtype == torch.bool:
        scores = scores.to(torch.int64)  # bools cannot be compared with <; False < True as 0 < 1

    cosines = (unit_rows(a) * unit_rows(b)).sum(dim=-1)  # (B,): cos(a_i, b_i)
    s = scale * cosines.float()  # (B,): in float32 at least, as a half-precision logsumexp would be coarse
    differences = s[:, None] - s[None, :]  # (B, B): s_i - s_j
    should_be_below = scores[:, None] < scores[None, :]  # (B, B): pair i scored strictly lower than pair j
    terms = differences.masked_fill(~should_be_below, float("-inf"))  # (B, B): exp(-inf) = 0, no term
    with_one = torch.cat([s.new_zeros(1), terms.flatten()])  # (1 + B*B,): exp(0) = 1 is the "1 +"
    return torch.logsumexp(with_one, dim=0)  # log(1 + sum exp(s_i - s_j)), computed without overflow
