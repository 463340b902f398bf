"""The exercises on the heads, the training data and sentence vectors: the masked-LM head and its loss,
the 80/10/10 masking, next-sentence pairs, the cross-encoder's score and mean pooling.

The heads run inside all-MiniLM-L6-v2 (shipped offline), as the model exercises of bert_parts.py do, and
are compared at core.py's tolerance. The checkpoint has no masked-LM head and no classifier, so each is
made once from a fixed seed (`masked_lm`, `cross_encoder_model`): a random head teaches the arithmetic as
well as a trained one.

The data exercises draw random numbers, and a correct function may draw them in another order than the
project's, so their results are fractions (`Proportion`) compared as binomial samples, and means (`Mean`)
compared by their standard errors (`compare`), never draw for draw. Besides the rule's fractions (15%,
80/10/10, one half) they measure what a function that keeps those fractions can still get wrong: the random
ids drawn from one corner of the vocabulary, a generator ignored, pairs of one sentence each.
"""

from __future__ import annotations

import functools
import math
import random
import types
from typing import Callable
from unittest import mock

import numpy as np
import torch

from ..app import pipelines
from ..bert import model as model_module
from ..bert.heads import BertForSequenceClassification
from ..bert.losses import IGNORE_INDEX, cross_entropy
from ..bert.model import BertForMaskedLM, BertLMPredictionHead
from ..bert.tokenizer import Tokenizer
from ..inside.trace import trace
from ..speed import encode as encode_module
from ..training import data as data_module
from .bert_parts import minilm, shipped_path
from .core import Exercise, ExerciseError, Mistake, error_in_bounds

SEED = 0  # the new heads' weights, and every batch of the data exercises, come from this seed


# ---------------------------------------------------------------------------------------------
# Comparing statistics: a fraction as a binomial sample, a mean by its standard error.
# ---------------------------------------------------------------------------------------------

class Proportion(float):
    """`count` of `n` trials, as a float (count / n, NaN when n is 0) that remembers both: the fraction of
    picked tokens that became [MASK], the fraction of pairs whose B is random."""

    def __new__(cls, count: int, n: int):
        proportion = super().__new__(cls, count / n if n else math.nan)
        proportion.count, proportion.n = int(count), int(n)
        return proportion

    def __repr__(self) -> str:
        return f"Proportion({self.count}, {self.n})"


class RowsOff(Proportion):
    """The rows whose number of picks is off, of `n` rows: a Proportion that keeps each such row's length
    (`lengths`, its number of ordinary tokens). Two mistakes can put about as many rows off, at different
    lengths: no pick at all in rows of 1 to 3 tokens, and 4.5 rounded up to 5 in rows of 30, 70, 110, ...
    tokens. The lengths tell them apart."""

    def __new__(cls, lengths: list[int], n: int):
        rows = super().__new__(cls, len(lengths), n)
        rows.lengths = tuple(int(length) for length in lengths)
        return rows

    def __repr__(self) -> str:
        return f"RowsOff({self.count}, {self.n})"


class Mean(float):
    """The mean of `n` values, as a float that remembers n and the values' standard deviation `sd`: the
    tokens of a pair, the pairs of a document."""

    def __new__(cls, values):
        values = [float(v) for v in values]
        n = len(values)
        mean = math.fsum(values) / n if n else math.nan
        result = super().__new__(cls, mean)
        result.n = n
        result.sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
        return result

    def __repr__(self) -> str:
        return f"Mean({float(self):.4g} of {self.n}, sd {self.sd:.3g})"


# The learner's fraction and the reference's are two independent samples. If the learner follows the same
# rule, with true rate p, their difference has standard deviation sqrt(p (1 - p) (1/n_learner + 1/n_ref)),
# p estimated by the reference's fraction. A difference beyond Z of these is a different rule: a correct
# function that draws in another order fails one statistic with probability 6e-7 (the normal tail at 5).
# A rule with a rate of exactly 0 or 1 ("never a special token", "every next B follows its A") has no
# spread: one exception fails it. A mean is held the same way: the learner's values, if they follow the
# rule, spread as the reference's do (sd), so the two means differ by sd * sqrt(1/n_learner + 1/n_ref) or
# so. (The pairs of one document are not independent draws; measured over 20 reseeded runs the means
# spread less than this, 0.6 of it, so the bound errs on the side of passing a correct function.)
# The same comparison tells which mistake a learner made: their results against a mistaken solution's.
# The samples are large enough that every mistake of the tables is ten bounds or more away
# (tests/test_exercises.py), so a mistake is 50 standard deviations off.
Z = 5.0


def compare(learner, reference) -> float:
    """A result's error in units of its bound (<= 1 passes): a Proportion by the binomial bound above, a Mean
    by its standard error, RowsOff by both (how many rows, then their mean length), anything else by
    core.py's tolerance."""
    if isinstance(reference, RowsOff):
        error = _binomial_error(learner, reference)
        if reference.count and isinstance(learner, RowsOff) and learner.count:  # which rows, when some are off
            error = max(error, _mean_error(Mean(learner.lengths), Mean(reference.lengths)))
        return error
    if isinstance(reference, Proportion):
        return _binomial_error(learner, reference)
    if isinstance(reference, Mean):
        return _mean_error(learner, reference)
    return error_in_bounds(learner, reference)


def _binomial_error(learner, reference: Proportion) -> float:
    if not isinstance(learner, Proportion) or not learner.n or not reference.n:
        return math.inf  # nothing measured (no picks at all, say) is never a pass
    p = float(reference)
    difference = abs(float(learner) - p)
    bound = Z * math.sqrt(p * (1 - p) * (1 / learner.n + 1 / reference.n))
    if bound == 0:
        return 0.0 if difference == 0 else math.inf
    return difference / bound


def _mean_error(learner, reference: Mean) -> float:
    if not isinstance(learner, Mean) or not learner.n or not reference.n:
        return math.inf
    difference = abs(float(learner) - float(reference))
    bound = Z * reference.sd * math.sqrt(1 / learner.n + 1 / reference.n)
    if bound == 0:
        return 0.0 if difference == 0 else math.inf
    return difference / bound


# ---------------------------------------------------------------------------------------------
# The masked-LM head: BertLMPredictionHead.forward inside BertForMaskedLM.
# ---------------------------------------------------------------------------------------------

def with_new_head(model_class, **options):
    """all-MiniLM-L6-v2 as `model_class`, its new head drawn from SEED (the same on every run), in eval mode;
    the warning that names the new head's tensors is left out (this head is asked for)."""
    import logging

    logger = logging.getLogger("minibert")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(SEED)
            return model_class.from_pretrained(shipped_path(), **options).eval()
    finally:
        logger.setLevel(level)


@functools.cache
def masked_lm() -> BertForMaskedLM:
    """all-MiniLM-L6-v2 with a new masked-LM head, the same on every run.

    BERT initialises a new head's bias to 0 and its LayerNorm to the identity (weight 1, bias 0); a head
    that left out the bias, or LayerNorm's scale, would then give the same logits. So these get random
    values too, and every part of the head shows in its output.
    """
    model = with_new_head(BertForMaskedLM, init_new_head=True)
    generator = torch.Generator().manual_seed(SEED)
    predictions = model.cls.predictions
    with torch.no_grad():
        for parameter, mean in ((predictions.bias, 0.0), (predictions.transform.LayerNorm.weight, 1.0),
                                (predictions.transform.LayerNorm.bias, 0.0)):
            parameter.copy_(mean + 0.5 * torch.randn(parameter.shape, generator=generator))
    return model


@functools.cache
def minilm_tokenizer() -> Tokenizer:
    return Tokenizer.from_pretrained(shipped_path())


def run_mlm_head(fn: Callable) -> dict[str, torch.Tensor]:
    """Every intermediate of BertForMaskedLM on bert_parts' batch, `fn` as the head's forward: the
    encoder's are the same whatever fn does, the last is the head's `logits` (B, T, V)."""
    model = masked_lm()
    _, batch = minilm()
    head = model.cls.predictions
    with torch.no_grad(), mock.patch.object(head, "forward", types.MethodType(fn, head)):
        with trace(model) as t:
            model(**batch)
    return dict(t.tensors)


MLM_HEAD = Exercise(
    name="mlm_head",
    title="the masked-LM head: transform, then the tied embedding matrix, plus a bias",
    task="""
        The forward of BertLMPredictionHead. hidden_states: (B, T, H), the encoder's last layer.
        self.transform: dense (H, H), the activation config.hidden_act names (exact GELU here), LayerNorm;
        call it as self.transform(hidden_states). self.decoder.weight: (V, H), the word-embedding matrix
        itself (tied). self.bias: (V,). Return the scores of every vocabulary entry at every position,
        (B, T, V): the transformed states times the decoder's weight, transposed, plus the bias.""",
    reference=BertLMPredictionHead.forward,
    run=run_mlm_head,
    imports="import torch\nimport torch.nn.functional as F",
    mistakes=(
        Mistake("no bias", "F.linear(x, self.decoder.weight, self.bias)", "F.linear(x, self.decoder.weight)",
                "logits", "the head adds a bias of its own to the scores, self.bias (V,): "
                          "F.linear(x, self.decoder.weight, self.bias)"),
        Mistake("no transform", "x = self.transform(hidden_states)", "x = hidden_states", "logits",
                "the decoder reads the transformed states: x = self.transform(hidden_states) (dense, activation, "
                "LayerNorm) first, then the tied matrix"),
        Mistake("only the transform's dense", "x = self.transform(hidden_states)",
                "x = self.transform.dense(hidden_states)", "logits",
                "the transform is three steps, dense, activation and LayerNorm: call self.transform(...), "
                "not only its dense layer"),
        Mistake("no LayerNorm in the transform", "x = self.transform(hidden_states)",
                "x = F.gelu(self.transform.dense(hidden_states))", "logits",
                "the transform ends with its LayerNorm, after the activation: self.transform(...) does all three"),
        Mistake("LayerNorm before the activation", "x = self.transform(hidden_states)",
                "x = F.gelu(self.transform.LayerNorm(self.transform.dense(hidden_states)))", "logits",
                "the transform's order is dense, then the activation, then LayerNorm (post-activation norm)"),
    ),
    hints={"logits": "logits = transform(hidden_states) @ word_embeddings^T + bias, shape (B, T, V)"},
)


# ---------------------------------------------------------------------------------------------
# The masked-LM loss: cross_entropy where BertForMaskedLM calls it.
# ---------------------------------------------------------------------------------------------

def mlm_labels(input_ids: torch.Tensor) -> torch.Tensor:
    """(B, T): the original id at five positions, as if those had been masked; -100 everywhere else."""
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    for row, positions in ((0, [2, 5, 9]), (1, [1, 4])):
        labels[row, positions] = input_ids[row, positions]
    return labels


def run_mlm_loss(fn: Callable) -> dict[str, torch.Tensor]:
    """The loss of BertForMaskedLM with `fn` as its cross_entropy, and the loss's gradient with respect to
    the logits (N, V), N = B * T: what training would push back into the head."""
    model = masked_lm()
    _, batch = minilm()
    labels = mlm_labels(batch["input_ids"])
    with torch.no_grad(), mock.patch.object(model_module, "cross_entropy", fn):
        out = model(**batch, labels=labels)
    _check_loss(out.loss)  # before the gradient, where a float would only say "'float' object is not iterable"
    logits = out.logits.reshape(-1, out.logits.shape[-1]).detach().requires_grad_()  # (N, V)
    loss = fn(logits, labels.reshape(-1))
    _check_loss(loss)
    if not loss.requires_grad:
        raise ExerciseError("cross_entropy() returned a tensor that backward cannot reach from the logits: keep "
                            "every step a torch operation on logits (no .detach(), .item() or numpy)")
    (gradient,) = torch.autograd.grad(loss, logits)
    return {"loss": out.loss, "logits_grad": gradient}


def _check_loss(loss) -> None:
    """One line, unless `loss` is what training needs: a 0-dim tensor, the mean."""
    if not isinstance(loss, torch.Tensor):
        raise ExerciseError(f"cross_entropy() returned {type(loss).__name__}; return a 0-dim tensor (the mean)")
    if loss.dim() != 0:
        raise ExerciseError(f"cross_entropy() returned a tensor of shape {tuple(loss.shape)}; return a 0-dim "
                            "tensor (the mean)")


MLM_LOSS = Exercise(
    name="mlm_loss",
    title="cross-entropy over the masked positions only (-100 elsewhere)",
    task="""
        logits: (N, C), a score per class at each of N positions (N = B * T, C = V for the masked LM).
        labels: (N,), the right class at a position that counts, ignore_index (-100) at every other one
        (the tokens that were not masked, padding). Return the mean over the positions that count of
        -log p(the right class), p = softmax(logits) over the classes: a 0-d tensor.""",
    reference=cross_entropy,
    run=run_mlm_loss,
    imports="import torch\n\nfrom minibert.bert.losses import IGNORE_INDEX",
    mistakes=(
        Mistake("-100 counted in the mean", "return -(picked * keep).sum() / keep.sum()",
                "return -(picked * keep).mean()", "loss",
                "average over the positions that count only: divide by keep.sum(), not by every position (-100 "
                "marks the ones that do not count)"),
        Mistake("-100 rows summed", "return -(picked * keep).sum() / keep.sum()",
                "return -picked.sum() / keep.sum()", "loss",
                "a -100 position's row must be left out of the sum, not only out of the count: multiply by keep "
                "(its label was replaced by 0 only to make gather work)"),
        Mistake("sum instead of mean", "return -(picked * keep).sum() / keep.sum()", "return -(picked * keep).sum()",
                "loss", "the loss is a mean: divide the sum by the number of positions that count, keep.sum()"),
        Mistake("softmax over the positions", "torch.log_softmax(logits, dim=-1)", "torch.log_softmax(logits, dim=0)",
                "loss", "the probabilities are over the classes, the last axis of (N, C): log_softmax(logits, dim=-1)"),
        Mistake("no minus sign", "return -(picked * keep).sum() / keep.sum()",
                "return (picked * keep).sum() / keep.sum()", "loss",
                "the loss is the negative log-probability: log p <= 0, so -log p >= 0 (yours is negative)"),
    ),
    hints={"loss": "loss = mean over the positions whose label is not -100 of -log_softmax(logits)[label]",
           "logits_grad": "the loss is right but its gradient is not: keep every step a torch operation on "
                          "logits (no .detach(), .item() or numpy), so that backward reaches them"},
)


# ---------------------------------------------------------------------------------------------
# The masking: mask_tokens on a large batch, checked by its fractions.
# ---------------------------------------------------------------------------------------------

PAD, CLS, SEP, MASK = 0, 101, 102, 103  # bert-base-uncased's ids, as in all-MiniLM-L6-v2's vocabulary
VOCAB_SIZE = 30522


def masking_batch(rows: int, longest: int, seed: int) -> torch.Tensor:
    """(rows, T) of pairs [CLS] A [SEP] B [SEP] [PAD]...: 1 to `longest` ordinary tokens a row (some rows
    with 1 to 6, where "at least one pick" matters), ids from the ordinary part of the vocabulary."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(1, longest + 1, (rows,), generator=g)  # ordinary tokens per row
    counts[: rows // 20] = torch.randint(1, 7, (rows // 20,), generator=g)
    ids = torch.full((rows, longest + 3), PAD, dtype=torch.long)  # (rows, T)
    for row, n in enumerate(counts.tolist()):
        a = int(torch.randint(0, n + 1, (1,), generator=g))  # tokens of A; B has the rest
        tokens = torch.randint(1000, VOCAB_SIZE, (n,), generator=g).tolist()
        ids[row, : n + 3] = torch.tensor([CLS, *tokens[:a], SEP, *tokens[a:], SEP])
    return ids


def word_pieces(ids: torch.Tensor, seed: int) -> torch.Tensor:
    """(B, T) bool: True where a word starts. About a third of the ordinary tokens continue a word ("##")."""
    g = torch.Generator().manual_seed(seed)
    starts = torch.rand(ids.shape, generator=g) > 0.35
    return starts | torch.isin(ids, torch.tensor([PAD, CLS, SEP]))


@functools.cache
def masking_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch (5000 rows, about 500,000 ordinary tokens, so about 75,000 picks) and a smaller one with
    word starts."""
    ids = masking_batch(rows=5000, longest=200, seed=SEED)
    whole = masking_batch(rows=400, longest=60, seed=SEED + 1)
    return ids, whole, word_pieces(whole, SEED + 2)


def run_masking(fn: Callable) -> dict[str, Proportion]:
    """Run `fn` on the batches, and measure what mask_tokens promises: never a special token; each row
    exactly max(1, round(0.15 n)) picks of its n ordinary tokens; labels the original id where picked and
    -100 elsewhere; of the picks 80% [MASK], 10% unchanged and 10% a random id, drawn from the whole
    vocabulary; whole words together; and the same output from the same seed."""
    ids, whole, starts = masking_inputs()
    special = {PAD, CLS, SEP}
    masked, labels = _masked(fn, ids, special, seed=SEED)
    is_special = torch.isin(ids, torch.tensor(sorted(special)))
    picked = labels != IGNORE_INDEX
    changed = masked != ids
    touched = picked | changed  # a position that was picked, as the labels or the input show it
    ordinary = ~is_special
    lengths = ordinary.sum(dim=1).tolist()  # n, each row's ordinary tokens
    picks = picked.sum(dim=1).tolist()
    chosen = picked & ordinary
    # The random replacements: picked, neither [MASK] nor the token itself (a draw of its own id, or of
    # [MASK], cannot be told apart; about 1 in 30,000 of them).
    random_ids = masked[chosen & changed & (masked != MASK)]
    _, repeats = random_ids.unique(return_counts=True)  # how often each random id came up
    results = {
        "special_picked": Proportion(int((touched & is_special).sum()), int(is_special.sum())),
        "picks_off_target": RowsOff([n for n, k in zip(lengths, picks) if k != max(1, round(0.15 * n))], len(picks)),
        "labels_wrong": Proportion(int((touched & (labels != ids)).sum()), int(touched.sum())),
        "mask_fraction": Proportion(int((chosen & (masked == MASK)).sum()), int(chosen.sum())),
        "unchanged_fraction": Proportion(int((chosen & (masked == ids)).sum()), int(chosen.sum())),
        # a uniform draw from [0, vocab_size): half of it in the upper half, and no id much more often than another
        "random_upper_half": Proportion(int((random_ids >= VOCAB_SIZE // 2).sum()), random_ids.numel()),
        "random_most_common": Proportion(int(repeats.max()) if repeats.numel() else 0, random_ids.numel()),
    }
    first = _masked(fn, whole, special, seed=SEED + 1, word_starts=starts)
    results["words_split"] = words_split(whole, starts, first[1] != IGNORE_INDEX, special)
    again = _masked(fn, whole, special, seed=SEED + 1, word_starts=starts)  # the same seed: the same output
    differs = ((first[0] != again[0]) | (first[1] != again[1])).any(dim=1)  # (rows,)
    results["same_seed_differs"] = Proportion(int(differs.sum()), len(differs))
    return results


def _masked(fn: Callable, ids: torch.Tensor, special: set[int], seed: int,
            word_starts: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """fn on a copy of `ids` with a generator seeded `seed`: (masked, labels), each checked to be (B, T)."""
    options = {} if word_starts is None else {"word_starts": word_starts.clone()}
    result = fn(ids.clone(), special_ids=set(special), vocab_size=VOCAB_SIZE, mask_id=MASK,
                generator=torch.Generator().manual_seed(seed), **options)
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise ExerciseError(f"mask_tokens() must return (masked input_ids, labels); it returned "
                            f"{type(result).__name__}")
    masked, labels = result
    if not (isinstance(masked, torch.Tensor) and isinstance(labels, torch.Tensor)) \
            or masked.shape != ids.shape or labels.shape != ids.shape:
        raise ExerciseError(f"mask_tokens() must return (masked input_ids, labels), both of shape "
                            f"{tuple(ids.shape)}; it returned {_shapes((masked, labels))}")
    return masked, labels


def _shapes(values) -> str:
    return ", ".join(str(tuple(v.shape)) if isinstance(v, torch.Tensor) else type(v).__name__ for v in values)


def words_split(ids: torch.Tensor, starts: torch.Tensor, picked: torch.Tensor, special: set[int]) -> Proportion:
    """Of the words of two or more pieces that have a piece picked, the fraction not picked whole."""
    split = touched = 0
    for row in range(ids.shape[0]):
        words: list[list[int]] = []
        for i, token in enumerate(ids[row].tolist()):
            if token in special:
                continue
            if words and not starts[row, i] and words[-1][-1] == i - 1:
                words[-1].append(i)
            else:
                words.append([i])
        for word in words:
            if len(word) > 1:
                hits = int(picked[row, word].sum())
                touched += hits > 0
                split += 0 < hits < len(word)
    return Proportion(split, touched)


MASKING = Exercise(
    name="masking",
    title="BERT's masking: 15% of the tokens, of those 80% [MASK], 10% random, 10% unchanged",
    task="""
        input_ids: (B, T) token ids. special_ids: the ids never to pick ([CLS], [SEP], [PAD]). In each row,
        pick max(1, round(mask_prob * n)) of its n other tokens (pick_positions(candidates, target,
        generator, word_starts_of_the_row) picks them, whole words together when word_starts is given).
        Return (masked, labels), both (B, T): labels hold the original id at every picked position and
        IGNORE_INDEX (-100) elsewhere; in masked, each picked token becomes mask_id with probability 0.8,
        a random id in [0, vocab_size) with 0.1 (drawn anew for each), and stays itself with 0.1. Draw
        every random number from `generator`, so that the same seed gives the same output.

        round() is Python's, which rounds halves to even: round(4.5) == 4, round(5.5) == 6 (the count of
        a row of 30 tokens is round(4.5) = 4, not 5).

        The check is statistical: on 5000 rows it measures the fractions, and compares them with the
        project's as binomial samples (5 standard deviations), so you may draw in any order. It also runs
        your function twice with the same seed.""",
    reference=data_module.mask_tokens,
    run=run_masking,
    imports=("import torch\n\nfrom minibert.bert.losses import IGNORE_INDEX\n"
             "from minibert.training.data import pick_positions"),
    compare=compare,
    mistakes=(
        Mistake("special tokens picked",
                "candidates = [i for i, t in enumerate(input_ids[row].tolist()) if t not in special_ids]",
                "candidates = list(range(input_ids.shape[1]))", "special_picked",
                "never pick a special token: [CLS], [SEP] and padding (special_ids) are not candidates, so they "
                "are never masked and their label stays -100"),
        Mistake("labels everywhere", "torch.full_like(input_ids, IGNORE_INDEX)", "input_ids.clone()",
                "special_picked",
                "labels are -100 (IGNORE_INDEX) wherever a token was not picked: start from torch.full_like("
                "input_ids, IGNORE_INDEX), and set the original id only at the picked positions"),
        Mistake("floor instead of round", "round(mask_prob * len(candidates))", "int(mask_prob * len(candidates))",
                "picks_off_target", "the number of picks is round(mask_prob * n), rounded to the nearest; int() "
                "rounds down"),
        Mistake("no pick in a short row", "max(1, round(mask_prob * len(candidates)))",
                "round(mask_prob * len(candidates))", "picks_off_target",
                "every row gets at least one pick, max(1, round(mask_prob * n)): a row of 3 tokens would "
                "otherwise teach nothing"),
        Mistake("each token by a coin flip",
                "picked = pick_positions(candidates, target, generator,\n"
                "                                None if word_starts is None else word_starts[row].tolist())",
                "picked = [i for i in candidates if float(torch.rand(1, generator=generator)) < mask_prob]",
                "picks_off_target",
                "each row gets exactly max(1, round(mask_prob * n)) picks (pick_positions chooses which); a coin "
                "flip per token gives 15% only on average"),
        Mistake("labels after masking",
                "            elif u < 0.9:\n"
                "                masked[row, position] = int(torch.randint(vocab_size, (1,), generator=generator))",
                "            elif u < 0.9:\n"
                "                masked[row, position] = int(torch.randint(vocab_size, (1,), generator=generator))\n"
                "        labels[row, picked] = masked[row, picked]", "labels_wrong",
                "the label is the token that was there before masking (input_ids), not what the model is shown "
                "([MASK] or a random id): take labels from input_ids"),
        Mistake("always [MASK]", "        labels[row, picked] = input_ids[row, picked]\n",
                "        labels[row, picked] = input_ids[row, picked]\n        masked[row, picked] = mask_id\n"
                "        continue\n", "mask_fraction",
                "not every pick becomes [MASK]: 80% do, 10% become a random token and 10% stay as they are, "
                "because [MASK] never appears when the model is fine-tuned"),
        Mistake("[MASK] and random swapped",
                "            if u < 0.8:\n"
                "                masked[row, position] = mask_id\n"
                "            elif u < 0.9:\n"
                "                masked[row, position] = int(torch.randint(vocab_size, (1,), generator=generator))",
                "            if u < 0.8:\n"
                "                masked[row, position] = int(torch.randint(vocab_size, (1,), generator=generator))\n"
                "            elif u < 0.9:\n"
                "                masked[row, position] = mask_id", "mask_fraction",
                "80% of the picks become [MASK] and 10% a random token, not the other way round"),
        Mistake("none left unchanged", "elif u < 0.9:", "else:", "unchanged_fraction",
                "10% of the picks keep their own token (and still have a label): 80% [MASK], 10% random, "
                "10% unchanged"),
        Mistake("whole words ignored", "None if word_starts is None else word_starts[row].tolist()", "None",
                "words_split",
                "with word_starts, a word's pieces are picked together: pass the row's word starts to "
                "pick_positions"),
    ),
    hints={"special_picked": "never pick [CLS], [SEP] or padding (special_ids); their labels stay -100",
           "picks_off_target": "each row: exactly max(1, round(0.15 * n)) picks among its n ordinary tokens, "
                               "round() as Python's, halves to even (round(4.5) == 4)",
           "labels_wrong": "labels: the original id at every picked position (whatever it became), -100 elsewhere",
           "mask_fraction": "of the picked tokens, 80% become mask_id",
           "unchanged_fraction": "of the picked tokens, 10% stay as they were (10% become a random id)",
           "random_upper_half": "a random replacement is any id of the vocabulary, torch.randint(vocab_size, (1,), "
                                "generator=generator), so about half of them are vocab_size // 2 or more",
           "random_most_common": "draw each random replacement anew from the whole vocabulary: no id should come "
                                 "up much more often than another",
           "words_split": "with word_starts, whole words are picked: pick_positions(..., word_starts[row])",
           "same_seed_differs": "the same seed must give the same output: draw every random number from "
                                "`generator` (torch.rand(..., generator=generator)), never from torch's global "
                                "one or Python's random"},
)


# ---------------------------------------------------------------------------------------------
# Next-sentence pairs: pairs_from_document inside make_pairs, checked by its fractions.
# ---------------------------------------------------------------------------------------------

NSP_MAX_SEQ_LENGTH = 48
DOCUMENT_STRIDE = 10_000  # token id = document * DOCUMENT_STRIDE + its place in the document


@functools.cache
def nsp_documents() -> list[list[list[int]]]:
    """5000 documents of 1 to 12 sentences of 2 to 20 tokens. A token's id says where it is: document
    index * DOCUMENT_STRIDE + its place in the document, so a pair shows where A and B came from."""
    rng = random.Random(SEED)
    documents = []
    for d in range(5000):
        sentences, place = [], d * DOCUMENT_STRIDE
        for _ in range(rng.randint(1, 12)):
            length = rng.randint(2, 20)
            sentences.append(list(range(place, place + length)))
            place += length
        documents.append(sentences)
    return documents


@functools.cache
def nsp_sentence_of() -> dict[int, int]:
    """Each token id of nsp_documents() -> the number of its sentence in its document."""
    return {token: s for document in nsp_documents() for s, sentence in enumerate(document) for token in sentence}


def run_nsp_pairs(fn: Callable) -> dict[str, Proportion | Mean]:
    """make_pairs over the documents with `fn` as its pairs_from_document, and what the pairs must be: half
    random; a "next" B the text after its A in the same document; a random B from another document; every
    pair within max_seq_length - 3 tokens. Then how the pairs are made, which a function that pairs each
    sentence with the next one gets wrong while keeping the four above: how full a pair is, how often A
    holds more than one sentence, how often a next pair stops short of max_tokens inside its document
    (short_seq_prob's shorter targets), and how many pairs a document gives (with the sentences put back
    after a random B)."""
    documents = nsp_documents()
    max_tokens = NSP_MAX_SEQ_LENGTH - 3
    with mock.patch.object(data_module, "pairs_from_document", fn):
        pairs = data_module.make_pairs(documents, NSP_MAX_SEQ_LENGTH, random.Random(SEED))
    if not pairs or not all(isinstance(p, data_module.Pair) for p in pairs):
        raise ExerciseError(f"pairs_from_document() must return a list of Pair; make_pairs got {len(pairs)} "
                            f"items, of types {sorted({type(p).__name__ for p in pairs})}")
    nexts = [p for p in pairs if not p.is_random_next]
    randoms = [p for p in pairs if p.is_random_next]
    inside = [p for p in nexts if p.tokens_b and not ends_its_document(p.tokens_b)]
    per_document = [0] * len(documents)
    for p in pairs:
        if p.tokens_a and 0 <= _doc(p.tokens_a[0]) < len(documents):
            per_document[_doc(p.tokens_a[0])] += 1
    return {
        "random_next": Proportion(len(randoms), len(pairs)),
        "next_follows": Proportion(sum(follows(p) for p in nexts), len(nexts)),
        "random_elsewhere": Proportion(sum(from_elsewhere(p) for p in randoms), len(randoms)),
        "over_budget": Proportion(sum(len(p.tokens_a) + len(p.tokens_b) > max_tokens for p in pairs), len(pairs)),
        "pair_fill": Mean([(len(p.tokens_a) + len(p.tokens_b)) / max_tokens for p in pairs]),
        "a_of_several_sentences": Proportion(sum(several_sentences(p.tokens_a) for p in pairs), len(pairs)),
        "next_cut_short": Proportion(sum(len(p.tokens_a) + len(p.tokens_b) < max_tokens for p in inside),
                                     len(inside)),
        "pairs_per_document": Mean(per_document),
    }


def _doc(token: int) -> int:
    return token // DOCUMENT_STRIDE


def from_elsewhere(pair) -> bool:
    """Whether B comes from another document than A."""
    return bool(pair.tokens_a and pair.tokens_b) and _doc(pair.tokens_a[0]) != _doc(pair.tokens_b[0])


def several_sentences(tokens) -> bool:
    """Whether a segment starts and ends in different sentences."""
    sentence_of = nsp_sentence_of()
    return bool(tokens) and sentence_of.get(tokens[0]) != sentence_of.get(tokens[-1])


def ends_its_document(tokens) -> bool:
    """Whether a segment ends with its document's last token."""
    documents, d = nsp_documents(), _doc(tokens[-1])
    return 0 <= d < len(documents) and tokens[-1] == documents[d][-1][-1]


def follows(pair) -> bool:
    """Whether B is text that comes after A in A's document, each a run of consecutive tokens (truncation
    takes tokens from their ends only)."""
    a, b = pair.tokens_a, pair.tokens_b
    consecutive = all(y == x + 1 for run in (a, b) for x, y in zip(run, run[1:]))
    return bool(a and b) and consecutive and _doc(a[0]) == _doc(b[0]) and b[0] > a[-1]


NSP_PAIRS = Exercise(
    name="nsp_pairs",
    title="next-sentence pairs: half the time the text that follows, half a random span",
    task="""
        documents: a list of documents, each a list of sentences, each a list of token ids. index: the
        document to make pairs from. max_tokens: the most tokens A and B may hold together (the model's
        max_seq_length less 3, for [CLS] A [SEP] B [SEP]). rng: a random.Random, to draw every choice
        from. short_seq_prob: how often a chunk aims at a shorter length.

        Walk through the document's sentences, adding each to a chunk until the chunk reaches its target
        length (max_tokens; with probability short_seq_prob, rng.randint(2, max_tokens) instead) or the
        document ends. A is the chunk's first sentences (rng.randint(1, len(chunk) - 1) of them; all of a
        one-sentence chunk). With probability 0.5, B is the rest of the chunk (is_random_next=False,
        label 0; a one-sentence chunk is cut in two inside the sentence); else B is
        random_span(documents, index, max(1, target - len(A)), rng), text of another document
        (is_random_next=True, label 1), and the chunk's sentences after A go back, to start the next
        chunk. Trim each pair with truncate_pair(A,
        B, max_tokens, rng). Return the list of Pair(tokens_a, tokens_b, is_random_next), one per chunk.

        The check runs make_pairs over 5000 documents and compares fractions as binomial samples, and
        means by their standard errors (5 standard deviations), so you may draw in any order: the
        labels, and how full the pairs are, how many sentences A holds, how many pairs a document gives.""",
    reference=data_module.pairs_from_document,
    run=run_nsp_pairs,
    imports="import random\n\nfrom minibert.training.data import Pair, random_span, truncate_pair",
    compare=compare,
    mistakes=(
        Mistake("never a random B", "is_random_next = rng.random() < 0.5", "is_random_next = False", "random_next",
                "half the pairs get a random B: is_random_next = rng.random() < 0.5, else the model only ever "
                "sees true continuations and learns nothing"),
        Mistake("labels swapped", "pairs.append(Pair(tokens_a, tokens_b, is_random_next))",
                "pairs.append(Pair(tokens_a, tokens_b, not is_random_next))", "next_follows",
                "is_random_next is True (label 1) when B is random, False (label 0) when B really follows A"),
        Mistake("random B from the same document",
                "tokens_b = random_span(documents, index, max(1, target - len(tokens_a)), rng)",
                "tokens_b = [t for sentence in document[rng.randrange(len(document)):] for t in sentence]",
                "random_elsewhere",
                "a random B comes from another document (random_span(documents, index, ...) skips document "
                "`index`): from A's own document it shares A's topic, and the task gets blurred"),
        Mistake("no truncation", "            truncate_pair(tokens_a, tokens_b, max_tokens, rng)\n", "",
                "over_budget",
                "a random B is drawn by whole sentences and can overshoot: trim each pair with truncate_pair("
                "tokens_a, tokens_b, max_tokens, rng)"),
    ),
    hints={"random_next": "is_random_next = rng.random() < 0.5, drawn once per chunk",
           "next_follows": "a pair labelled next (False) has B = the chunk's sentences after A",
           "random_elsewhere": "a random B: random_span(documents, index, length, rng), from another document",
           "over_budget": "len(tokens_a) + len(tokens_b) <= max_tokens: truncate_pair",
           "pair_fill": "a pair is a chunk, not two sentences: add sentences to the chunk until it reaches its "
                        "target (max_tokens, or with probability short_seq_prob rng.randint(2, max_tokens)); A is "
                        "its first rng.randint(1, len(chunk) - 1) sentences, B the rest or a random span (the "
                        "rest then goes back)",
           "a_of_several_sentences": "A is the chunk's first rng.randint(1, len(chunk) - 1) sentences, often more "
                                     "than one",
           "next_cut_short": "with probability short_seq_prob a chunk aims at rng.randint(2, max_tokens) tokens, "
                             "drawn anew for each chunk; else it ends at max_tokens or the document's end",
           "pairs_per_document": "after a random B, the chunk's sentences after A go back (i -= len(chunk) - "
                                 "a_end) to start the next chunk, so no text is lost"},
)


# ---------------------------------------------------------------------------------------------
# The cross-encoder's score: rerank with a one-label classifier on all-MiniLM-L6-v2.
# ---------------------------------------------------------------------------------------------

QUESTION = "Where do bats sleep during the day?"
ANSWERS = ["Bats spend the day hanging upside down in caves, hollow trees and attics.",
           "He swung the bat and hit a home run.",
           "Penguins are flightless birds.",
           "Most bats hunt at night and rest in dark, sheltered places by day."]


@functools.cache
def cross_encoder_model() -> BertForSequenceClassification:
    """all-MiniLM-L6-v2 with one output (num_labels=1): a cross-encoder of the ms-marco model's shape,
    untrained, the same on every run. A checkpoint that names no activation gets a sigmoid.

    BERT's initialisation (std 0.02) would leave every logit near 0 and every score near 0.5, where a
    wrong input moves the score little; a classifier of std 0.5 spreads the scores over (0, 1).
    """
    model = with_new_head(BertForSequenceClassification, num_labels=1)
    with torch.no_grad():
        model.classifier.weight.copy_(0.5 * torch.randn(model.classifier.weight.shape,
                                                        generator=torch.Generator().manual_seed(SEED)))
    return model


def run_cross_encoder(fn: Callable) -> dict[str, np.ndarray]:
    """rerank's answer: each answer's score (in the order of ANSWERS), then the order it ranks them in."""
    ranked = fn(cross_encoder_model(), minilm_tokenizer(), QUESTION, list(ANSWERS))
    try:
        ranked = [(answer, float(score)) for answer, score in ranked]
    except (TypeError, ValueError):
        raise ExerciseError("rerank() must return a list of (answer, score) pairs") from None
    if sorted(answer for answer, _ in ranked) != sorted(ANSWERS):
        raise ExerciseError(f"rerank() must return each of the {len(ANSWERS)} answers once, with its score")
    score = dict(ranked)
    return {"scores": np.array([score[answer] for answer in ANSWERS]),
            "ranking": np.array([ANSWERS.index(answer) for answer, _ in ranked])}


CROSS_ENCODER = Exercise(
    name="cross_encoder",
    title="the cross-encoder's score: (question, passage) as one pair, one logit, the activation",
    task="""
        model: a BertForSequenceClassification with one label (a cross-encoder); tokenizer: its Tokenizer;
        question: a string; answers: a list of A strings. Read each (question, answer) as one input, the
        question as sentence A and the answer as sentence B (tokenizer(list_a, list_b) makes the batch,
        with token types); the model gives logits (A, 1). The score is the logit through the activation
        the checkpoint names: cross_encoder_activation(model.config) returns (name, function), so
        `_, activation = cross_encoder_activation(model.config)`, then activation(logits[:, 0]) (a sigmoid
        when the checkpoint names none). Return [(answer, score), ...], best first.""",
    reference=pipelines.rerank,
    run=run_cross_encoder,
    imports=("import torch\n\nfrom minibert.app.pipelines import InputError, cross_encoder_activation\n"
             "from minibert.bert.heads import BertForSequenceClassification\nfrom minibert.bert.tokenizer import "
             "Tokenizer"),
    mistakes=(
        Mistake("passage first", "tokenizer([question] * len(answers), answers)",
                "tokenizer(answers, [question] * len(answers))", "scores",
                "the question is sentence A and the passage sentence B: tokenizer([question] * A, answers); a "
                "cross-encoder was trained on them in that order"),
        Mistake("one sentence, no pair", "tokenizer([question] * len(answers), answers)",
                "tokenizer([question + \" \" + answer for answer in answers])", "scores",
                "pass the question and the answer as a pair, tokenizer(questions, answers): [CLS] q [SEP] a "
                "[SEP], with token type 1 for the answer, not one joined sentence"),
        Mistake("no activation", "scores = activation(logits[:, 0]).tolist()", "scores = logits[:, 0].tolist()",
                "scores", "the score is the logit through the checkpoint's activation: _, activation = "
                          "cross_encoder_activation(model.config), then activation(logits[:, 0]) (a sigmoid here)"),
        Mistake("softmax over one logit", "scores = activation(logits[:, 0]).tolist()",
                "scores = torch.softmax(logits, dim=-1)[:, 0].tolist()", "scores",
                "a softmax over a single logit is always 1: the score is an activation of the one logit "
                "(cross_encoder_activation), not a softmax"),
        Mistake("softmax over the answers", "scores = activation(logits[:, 0]).tolist()",
                "scores = torch.softmax(logits[:, 0], dim=0).tolist()", "scores",
                "each pair is scored on its own: its logit through the activation, not a softmax across the "
                "answers (a score must not change when another answer is added)"),
        Mistake("worst first", "key=lambda pair: pair[1], reverse=True)", "key=lambda pair: pair[1])", "ranking",
                "best first: sort by score in descending order (reverse=True)"),
    ),
    hints={"scores": "score = activation(logit) for the pair (question as A, answer as B), one logit each",
           "ranking": "return the (answer, score) pairs sorted by score, highest first"},
)


# ---------------------------------------------------------------------------------------------
# Mean pooling: mean_pool inside encode.
# ---------------------------------------------------------------------------------------------

SENTENCES = ["Hi.", "The bat flew out of the cave at night.", "He swung the bat and hit a home run.",
             "Penguins are flightless birds, and they cannot fly however hard they try.", "A bat."]


def run_mean_pooling(fn: Callable) -> dict[str, torch.Tensor]:
    """encode's sentence vectors (N, H) for SENTENCES of different lengths, one padded batch, with `fn` as
    its mean pooling. Not normalized: a scale by the wrong count would vanish in a unit vector."""
    model, _ = minilm()
    with mock.patch.dict(encode_module.POOLERS, {"mean": fn}):
        embeddings = encode_module.encode(model, minilm_tokenizer(), SENTENCES, pooling="mean")
    return {"embeddings": embeddings}


MEAN_POOLING = Exercise(
    name="mean_pooling",
    title="the sentence vector: the mean of the real tokens' vectors, padding left out",
    task="""
        last_hidden_state: (B, T, H), the encoder's last layer for a padded batch. attention_mask: (B, T),
        1 for a real token, 0 for padding. Return (B, H): each text's mean over its real tokens only,
        [CLS] and [SEP] included, padding left out (sentence-transformers' "mean" pooling).""",
    reference=encode_module.mean_pool,
    run=run_mean_pooling,
    imports="import torch",
    mistakes=(
        Mistake("padding in the mean", "return summed / counts", "return last_hidden_state.mean(dim=1)",
                "embeddings", "leave the padding out: multiply by the mask (B, T, 1) before summing over T, and "
                              "divide by each text's number of real tokens"),
        Mistake("padding in the sum", "summed = (last_hidden_state * mask).sum(dim=1)",
                "summed = last_hidden_state.sum(dim=1)", "embeddings",
                "the padding's vectors are not zero: multiply by the mask before the sum, (h * mask).sum(dim=1)"),
        Mistake("divided by T", "counts = mask.sum(dim=1).clamp(min=1e-9)", "counts = mask.shape[1]",
                "embeddings", "divide by each text's number of real tokens, mask.sum(dim=1), not by the padded "
                              "length T"),
        Mistake("counted over the batch", "counts = mask.sum(dim=1).clamp(min=1e-9)",
                "counts = mask.sum().clamp(min=1e-9)", "embeddings",
                "count each text's real tokens on its own: mask.sum(dim=1), shape (B, 1), not the whole batch's"),
        Mistake("[CLS] instead of the mean", "return summed / counts", "return last_hidden_state[:, 0]",
                "embeddings", "mean pooling averages every real token; [CLS] alone is another pooling (the "
                              "checkpoint's pooling config asks for the mean)"),
    ),
    hints={"embeddings": "mean over the real tokens: (h * mask[:, :, None]).sum(1) / mask.sum(1)[:, None]"},
)

EXERCISES = (MLM_HEAD, MLM_LOSS, MASKING, NSP_PAIRS, CROSS_ENCODER, MEAN_POOLING)
