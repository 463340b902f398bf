"""The exercises on the heads and the data (minibert/exercises/heads_and_data.py): that their checks pass
a correct function written another way, and that the project's functions, which the checks take as the
answer, keep their contracts.

tests/test_exercises.py checks every exercise the same way (the solution passes, the stub is not written,
each mistake fails where it says with its hint). Here:
  - masking and nsp_pairs are checked by fractions: the project's own fractions against the rule's
    numbers (15%, 80/10/10, one half), and a correct function that draws in another order passes;
  - the model exercises pass a function written another way (by hand, another kernel, another batch
    shape), at a stated fraction of the bound; run this file with ATEN_CPU_CAPABILITY=avx2 as well;
  - mean pooling gives sentence-transformers' embedding;
  - the new heads are the same on every run.
"""

import math
import random

import pytest
import torch
import torch.nn.functional as F

from conftest import assert_close, rounding_bound
from minibert.bert.losses import IGNORE_INDEX
from minibert.bert.model import BertForMaskedLM
from minibert.exercises import check
from minibert.exercises import heads_and_data as hd
from minibert.exercises.core import reference_results
from minibert.training.data import mask_tokens, pairs_from_document, pick_positions

# A correct function written another way must stay this far inside the bound; rounding, measured, is far
# less (the numbers are printed: pytest -s).
MARGIN = 0.1


def error_of(exercise, fn) -> float:
    """The largest error, in units of the bound, over every result of `fn` against the reference's."""
    ours, reference = exercise.run(fn), reference_results(exercise)
    compare = exercise.compare or hd.error_in_bounds
    assert ours.keys() == reference.keys()
    return max(compare(ours[name], reference[name]) for name in reference)


# -- the comparison of fractions --------------------------------------------------------------------

def test_a_proportion_is_its_fraction_and_remembers_its_counts():
    p = hd.Proportion(3, 12)
    assert p == 0.25 and (p.count, p.n) == (3, 12)
    assert math.isnan(hd.Proportion(0, 0))


def test_the_binomial_bound():
    reference = hd.Proportion(8_000, 10_000)
    bound = hd.Z * math.sqrt(0.8 * 0.2 * (1 / 10_000 + 1 / 10_000))  # 0.0283: 283 of 10,000
    assert hd.compare(hd.Proportion(8_000 + 282, 10_000), reference) < 1 < hd.compare(hd.Proportion(8_000 - 283,
                                                                                                    10_000), reference)
    assert hd.compare(hd.Proportion(8_140, 10_000), reference) == pytest.approx(0.014 / bound)
    # a rule of "never" or "always" has no spread: one exception fails it, none passes
    assert hd.compare(hd.Proportion(1, 10_000), hd.Proportion(0, 500)) == math.inf
    assert hd.compare(hd.Proportion(0, 10_000), hd.Proportion(0, 500)) == 0.0
    assert hd.compare(hd.Proportion(500, 500), hd.Proportion(10, 10)) == 0.0
    # nothing measured (no picks at all) is never a pass
    assert hd.compare(hd.Proportion(0, 0), reference) == math.inf


def test_a_failing_statistic_is_one_line_with_its_hint(tmp_path):
    ex = hd.MASKING
    (tmp_path / "masking.py").write_text(ex.solution().replace("elif u < 0.9:", "else:", 1))
    result = check("masking", directory=tmp_path)
    assert not result.passed and result.tensor == "unchanged_fraction"
    first = result.message.splitlines()[0]
    assert first.startswith("masking: unchanged_fraction differs by up to 0.10") and "times the bound" in first


# -- masking: the project's function keeps the rule, and a correct function drawing otherwise passes --

def sigmas_from(proportion: hd.Proportion, p: float) -> float:
    """How many standard errors a fraction is from the rule's rate p (one sample of n trials)."""
    return abs(float(proportion) - p) / math.sqrt(p * (1 - p) / proportion.n)


def test_the_project_masks_by_the_rule():
    results = reference_results(hd.MASKING)
    assert results["mask_fraction"].n > 70_000  # so that each mistake is 10 bounds away
    for invariant in ("special_picked", "picks_off_target", "labels_wrong", "words_split"):
        assert results[invariant].count == 0, invariant
    assert sigmas_from(results["mask_fraction"], 0.8) < hd.Z
    assert sigmas_from(results["unchanged_fraction"], 0.1) < hd.Z
    random_fraction = hd.Proportion(results["mask_fraction"].n - results["mask_fraction"].count
                                    - results["unchanged_fraction"].count, results["mask_fraction"].n)
    assert sigmas_from(random_fraction, 0.1) < hd.Z
    for name in ("mask_fraction", "unchanged_fraction"):
        print(f"\nmasking {name}: {float(results[name]):.4f}")


def test_random_replacements_come_from_the_whole_vocabulary():
    ids, _, _ = hd.masking_inputs()
    masked, labels = mask_tokens(ids.clone(), {hd.PAD, hd.CLS, hd.SEP}, hd.VOCAB_SIZE, hd.MASK,
                                 torch.Generator().manual_seed(0))
    replaced = masked[(labels != IGNORE_INDEX) & (masked != hd.MASK) & (masked != ids)]
    assert replaced.numel() > 5000
    assert 0 <= int(replaced.min()) and int(replaced.max()) < hd.VOCAB_SIZE
    assert int(replaced.min()) < 1000  # the batch's own ids are 1000 and up: these are drawn, not copied


def mask_tokens_vectorized(input_ids, special_ids, vocab_size, mask_id, generator, mask_prob=0.15,
                           word_starts=None, mask_rate=0.8):
    """mask_tokens written another way: positions by sorting random keys, all the fates in one draw.
    (mask_rate=0.1 is a mistake: 10% [MASK] and 80% random.)"""
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    ordinary = ~torch.isin(input_ids, torch.tensor(sorted(special_ids)))  # (B, T)
    picked = torch.zeros_like(ordinary)
    for row in range(input_ids.shape[0]):
        candidates = ordinary[row].nonzero().flatten()
        target = max(1, round(mask_prob * len(candidates)))
        if word_starts is None:
            keys = torch.rand(len(candidates), generator=generator)
            picked[row, candidates[keys.argsort()[:target]]] = True
        else:
            picked[row, pick_positions(candidates.tolist(), target, generator, word_starts[row].tolist())] = True
    labels[picked] = input_ids[picked]
    u = torch.rand(input_ids.shape, generator=generator)  # (B, T): a fate for every position, used where picked
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    masked = torch.where(picked & (u < mask_rate), mask_id, input_ids)
    masked = torch.where(picked & (u >= mask_rate) & (u < 0.9), random_ids, masked)
    return masked, labels


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_masking_passes_a_correct_function_that_draws_otherwise(seed):
    def reseeded(input_ids, **options):
        return mask_tokens(input_ids, **{**options, "generator": torch.Generator().manual_seed(seed)})

    error = error_of(hd.MASKING, reseeded)
    print(f"\nmasking, the project's function with seed {seed}: {error:.3f} of the bound")
    assert error <= 1


def test_masking_passes_a_vectorized_function():
    error = error_of(hd.MASKING, mask_tokens_vectorized)
    print(f"\nmasking, vectorized: {error:.3f} of the bound")
    assert error <= 1
    assert check("masking", mask_tokens_vectorized).passed


def test_a_mistake_made_in_other_code_is_still_recognised():
    """The mistaken solution draws in the project's order, the learner's code in its own: the fractions
    match as samples, and the hint is the mistake's."""
    def swapped(input_ids, **options):
        return mask_tokens_vectorized(input_ids, **options, mask_rate=0.1)

    result = check("masking", swapped)
    assert not result.passed and result.mistake == "[MASK] and random swapped", result.message


# -- next-sentence pairs -----------------------------------------------------------------------------

def test_the_project_makes_pairs_by_the_rule():
    results = reference_results(hd.NSP_PAIRS)
    assert results["random_next"].n > 10_000
    assert sigmas_from(results["random_next"], 0.5) < hd.Z
    assert results["next_follows"] == 1 and results["random_elsewhere"] == 1 and results["over_budget"] == 0
    print(f"\nnsp_pairs random_next: {float(results['random_next']):.4f}")


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_nsp_pairs_passes_a_correct_function_that_draws_otherwise(seed):
    def reseeded(documents, index, max_tokens, rng, short_seq_prob):
        own = random.Random(seed * 100_003 + index)  # a draw sequence of its own for each document
        return pairs_from_document(documents, index, max_tokens, own, short_seq_prob)

    error = error_of(hd.NSP_PAIRS, reseeded)
    print(f"\nnsp_pairs, seed {seed}: {error:.3f} of the bound")
    assert error <= 1


# -- the model exercises pass a function written another way -----------------------------------------

def mlm_head_by_hand(self, hidden_states):
    t = self.transform
    x = hidden_states @ t.dense.weight.T + t.dense.bias  # (B, T, H)
    x = 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))  # exact GELU
    mean = x.mean(-1, keepdim=True)
    variance = ((x - mean) ** 2).mean(-1, keepdim=True)
    x = (x - mean) / torch.sqrt(variance + t.LayerNorm.eps) * t.LayerNorm.weight + t.LayerNorm.bias
    return torch.einsum("bth,vh->btv", x, self.decoder.weight) + self.bias  # (B, T, V)


def mlm_head_by_modules(self, hidden_states):
    return self.decoder(self.transform(hidden_states)) + self.bias  # two steps: the product, then the bias


def cross_entropy_by_torch(logits, labels, ignore_index=IGNORE_INDEX):
    return F.cross_entropy(logits, labels, ignore_index=ignore_index)


def cross_entropy_by_hand(logits, labels, ignore_index=IGNORE_INDEX):
    keep = (labels != ignore_index).nonzero().flatten()
    rows = logits[keep]  # (K, C)
    return (torch.logsumexp(rows, dim=-1) - rows[torch.arange(len(keep)), labels[keep]]).mean()


def rerank_one_by_one(model, tokenizer, question, answers):
    """Each pair on its own (no padding), the sigmoid written out, sorted by hand."""
    scored = []
    with torch.no_grad():
        for answer in answers:
            logit = model(**tokenizer(question, answer)).logits[0, 0]
            scored.append((answer, float(1 / (1 + torch.exp(-logit)))))
    return sorted(scored, key=lambda pair: -pair[1])


def mean_pool_masked_fill(last_hidden_state, attention_mask):
    padded = last_hidden_state.masked_fill(attention_mask[..., None] == 0, 0.0)
    return torch.einsum("bth->bh", padded) / attention_mask.sum(dim=1, keepdim=True)


def mean_pool_in_float64(last_hidden_state, attention_mask):
    """Each text's real tokens sliced out and averaged in float64: rounded once, at the end."""
    rows = [h[mask.bool()].double().mean(dim=0) for h, mask in zip(last_hidden_state, attention_mask)]
    return torch.stack(rows).float()


REWRITES = {"mlm_head": [mlm_head_by_hand, mlm_head_by_modules],
            "mlm_loss": [cross_entropy_by_torch, cross_entropy_by_hand],
            "cross_encoder": [rerank_one_by_one],
            "mean_pooling": [mean_pool_masked_fill, mean_pool_in_float64]}


@pytest.mark.parametrize("name,fn", [(name, fn) for name, fns in REWRITES.items() for fn in fns],
                         ids=[fn.__name__ for fns in REWRITES.values() for fn in fns])
def test_a_correct_function_written_another_way_passes(name, fn):
    exercise = next(ex for ex in hd.EXERCISES if ex.name == name)
    error = error_of(exercise, fn)
    print(f"\n{name}, {fn.__name__}: {error:.3g} of the bound (ATEN_CPU_CAPABILITY: "
          f"{torch.backends.cpu.get_cpu_capability()})")
    assert error <= MARGIN


# -- mean pooling is sentence-transformers' --------------------------------------------------------

def test_mean_pooling_gives_sentence_transformers_embedding(minilm_dir):
    """The exercise's answer, made unit length as all-MiniLM-L6-v2's pipeline does, is
    SentenceTransformer.encode's, within 4 times sentence-transformers' own float32 rounding error
    (tests/test_encode.py says why that bound)."""
    import copy

    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(minilm_dir), device="cpu")
    expected = reference.encode(hd.SENTENCES, convert_to_tensor=True)
    exact = copy.deepcopy(reference).double().encode(hd.SENTENCES, convert_to_tensor=True)
    ours = F.normalize(reference_results(hd.MEAN_POOLING)["embeddings"], dim=1)
    error = assert_close("mean_pooling", ours, expected, atol=rounding_bound(expected, exact),
                         kind="encode vs sentence-transformers")
    print(f"\nmean pooling vs sentence-transformers: max abs diff {error:.3g}")


# -- the new heads are the same on every run ---------------------------------------------------------

def test_the_new_heads_come_from_the_seed_and_leave_torchs_random_state_alone():
    state = torch.random.get_rng_state()
    first = hd.with_new_head(BertForMaskedLM, init_new_head=True).cls.state_dict()
    torch.rand(3)  # whatever ran before must not matter
    second = hd.with_new_head(BertForMaskedLM, init_new_head=True).cls.state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    torch.random.set_rng_state(state)
    hd.with_new_head(BertForMaskedLM, init_new_head=True)
    assert torch.equal(torch.random.get_rng_state(), state)
