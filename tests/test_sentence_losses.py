"""minibert/training/sentence_losses.py against sentence-transformers' own losses, on the same embeddings.

The reference is sentence-transformers' `MultipleNegativesRankingLoss` / `CoSENTLoss`, called through
`compute_loss_from_embeddings(embeddings, labels)`: the part of its forward that runs after the model
has embedded each column, so both sides see the very same float32 tensors and no model is needed.

Bounds, in float32 (the dtype a sentence encoder trains in):
- the loss to 1e-6 times max(1, |loss|): both sides compute the same formula in another order
  (sentence-transformers subtracts a logsumexp, minibert takes a log_softmax; its CoSENT sorts the
  scores and sums suffixes with logcumsumexp, minibert masks the B x B matrix of differences), which
  moves a float32 result of size L by a few ulp, eps * L = 1.2e-7 * L each. Measured: 8e-8 * L.
- the gradients with respect to every embedding to 1e-5 times max(1, the reference's largest entry):
  a logit is a cosine times `scale`, so a difference of two logits, up to 2 * scale = 100 for scale
  50, carries a float32 error of eps * 100 = 1.2e-5, and the softmax weights built from it (and so
  the gradient) carry that relative error. CoSENT's loss is a sum, not a mean, so its gradients reach
  7 at scale 50: a bound of 1e-6 absolute would ask for less than float32's own rounding there.
  Measured: 2.5e-6 of the largest entry (CoSENT, scale 50), 1e-7 absolute at scale 1.
"""

import pytest
import torch

from conftest import assert_close
from minibert.training import cosent_loss, multiple_negatives_ranking_loss

KIND_LOSS = "sentence loss vs sentence-transformers"
KIND_GRAD = "sentence loss gradients vs sentence-transformers"
SCALES = [1.0, 20.0, 50.0]


def reference_losses():
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss, MultipleNegativesRankingLoss

    return MultipleNegativesRankingLoss, CoSENTLoss


def leaves(*shapes, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g).requires_grad_() for shape in shapes]


def compare(name: str, ours_fn, theirs_fn, inputs: list[torch.Tensor]) -> tuple[float, float]:
    """Loss and gradients wrt every input, ours against theirs; returns the two largest differences."""
    ours, theirs = ours_fn(*inputs), theirs_fn(*inputs)
    ours_grads = torch.autograd.grad(ours, inputs)
    theirs_grads = torch.autograd.grad(theirs, inputs)
    loss_error = assert_close(f"{name}: loss", ours, theirs, atol=1e-6 * max(1.0, abs(theirs.item())), kind=KIND_LOSS)
    largest = max(1.0, max(g.abs().max().item() for g in theirs_grads))
    grad_error = max(assert_close(f"{name}: grad of input {i}", mine, expected, atol=1e-5 * largest, kind=KIND_GRAD)
                     for i, (mine, expected) in enumerate(zip(ours_grads, theirs_grads))) / largest
    assert all(torch.isfinite(g).all() for g in ours_grads)
    print(f"\n{name}: loss {ours.item():.6g}, loss diff {loss_error:.3g}, max grad diff {grad_error:.3g} of the largest entry")
    return loss_error, grad_error


# -- multiple negatives ranking ----------------------------------------------------------------

@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("B,k", [(1, 0), (8, 0), (1, 1), (8, 1), (8, 3)])
def test_multiple_negatives_ranking_loss_matches_sentence_transformers(B, k, scale):
    MultipleNegativesRankingLoss, _ = reference_losses()
    reference = MultipleNegativesRankingLoss(model=None, scale=scale)
    D = 16
    inputs = leaves((B, D), (B, D), *([(B, k, D)] if k else []), seed=B * 10 + k)  # anchors, positives[, negatives]

    def ours(anchors, positives, negatives=None):
        return multiple_negatives_ranking_loss(anchors, positives, scale=scale, hard_negatives=negatives)

    def theirs(anchors, positives, negatives=None):
        # sentence-transformers takes hard negatives as more columns of the batch, one (B, D) tensor each.
        columns = list(negatives.unbind(1)) if negatives is not None else []
        return reference.compute_loss_from_embeddings([anchors, positives, *columns], None)

    compare(f"MNRL B={B} k={k} scale={scale}", ours, theirs, inputs)


def test_one_hard_negative_as_two_or_three_dimensions():
    anchors, positives, negatives = leaves((4, 8), (4, 8), (4, 8), seed=3)
    as_matrix = multiple_negatives_ranking_loss(anchors, positives, hard_negatives=negatives)
    as_one_per_row = multiple_negatives_ranking_loss(anchors, positives, hard_negatives=negatives[:, None, :])
    assert as_matrix.item() == as_one_per_row.item()


def test_a_batch_of_one_without_negatives_has_nothing_to_learn():
    anchors, positives = leaves((1, 8), (1, 8), seed=4)
    loss = multiple_negatives_ranking_loss(anchors, positives)
    loss.backward()
    assert loss.item() == 0.0  # one candidate: softmax is 1 whatever the cosine
    assert anchors.grad.abs().max().item() == 0.0


def test_hard_negatives_make_the_task_harder():
    anchors, positives = leaves((4, 8), (4, 8), seed=5)
    easy = multiple_negatives_ranking_loss(anchors, positives)
    near_copies = positives.detach() + 0.01 * torch.randn(4, 8, generator=torch.Generator().manual_seed(6))
    assert multiple_negatives_ranking_loss(anchors, positives, hard_negatives=near_copies) > easy + 0.5


@pytest.mark.parametrize("call,message", [
    (lambda a: multiple_negatives_ranking_loss(a, a[:2]), r"anchors and positives must be \(B, D\)"),
    (lambda a: multiple_negatives_ranking_loss(a, a, scale=0.0), "scale must be positive"),
    (lambda a: multiple_negatives_ranking_loss(a, a, hard_negatives=a[:2]), r"hard_negatives must be .* B=3"),
    (lambda a: cosent_loss(a, a[:, :2], torch.zeros(3)), r"a and b must be \(B, D\)"),
    (lambda a: cosent_loss(a, a, torch.zeros(4)), "one score per pair, 3"),
])
def test_shapes_that_do_not_line_up_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call(torch.randn(3, 4))


# -- CoSENT ------------------------------------------------------------------------------------

def score_cases(B: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(B)
    return {
        "distinct": torch.rand(B, generator=g) * 5,
        "ties": torch.randint(0, 3, (B,), generator=g).float(),  # three values among B pairs: many ties
        "all tied": torch.full((B,), 2.5),
        "bool": torch.arange(B) % 2 == 0,
        "int": torch.randint(0, 6, (B,), generator=g),
    }


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("case", ["distinct", "ties", "all tied", "bool", "int"])
@pytest.mark.parametrize("B", [1, 2, 16])
def test_cosent_loss_matches_sentence_transformers(B, case, scale):
    _, CoSENTLoss = reference_losses()
    reference = CoSENTLoss(model=None, scale=scale)
    scores = score_cases(B)[case]
    a, b = leaves((B, 16), (B, 16), seed=B)
    loss_error, _ = compare(f"CoSENT B={B} {case} scale={scale}", lambda a, b: cosent_loss(a, b, scores, scale),
                            lambda a, b: reference.compute_loss_from_embeddings([a, b], scores.clone()), [a, b])
    if B == 1 or case == "all tied":
        assert cosent_loss(a, b, scores, scale).item() == 0.0  # no pair to order: log(1) exactly


def test_cosent_counts_only_the_order_of_the_scores():
    a, b = leaves((6, 8), (6, 8), seed=7)
    scores = torch.tensor([0.1, 0.5, 0.2, 0.9, 0.3, 0.3])
    assert cosent_loss(a, b, scores).item() == cosent_loss(a, b, scores * 10 - 3).item()
