"""The exercises on the heads and the data (minibert/exercises/heads_and_data.py): that their checks pass
a correct function written another way, and that the project's functions, which the checks take as the
answer, keep their contracts.

tests/test_exercises.py checks every exercise the same way (the solution passes, the stub is not written,
each mistake fails where it says with its hint). Here:
  - masking and nsp_pairs are checked by fractions and means: the project's own against the rule's
    numbers (15%, 80/10/10, one half), a correct function that draws in another order passes, and
    functions that keep those numbers but break the rule otherwise fail (a "random" id that is always 7,
    a generator ignored, 4.5 rounded up, each sentence paired with the next);
  - the model exercises pass a function written another way (by hand, another kernel, another batch
    shape), at a stated fraction of the bound; run this file with ATEN_CPU_CAPABILITY=avx2 as well;
  - mean pooling gives sentence-transformers' embedding;
  - the new heads are the same on every run.
"""

import inspect
import math
import random
import warnings

import pytest
import torch
import torch.nn.functional as F

from conftest import assert_close, rounding_bound
from minibert.bert.losses import IGNORE_INDEX
from minibert.bert.model import BertForMaskedLM
from minibert.exercises import check
from minibert.exercises import heads_and_data as hd
from minibert.exercises.core import reference_results
from minibert.training import data as data_module
from minibert.training.data import Pair, mask_tokens, pairs_from_document, pick_positions, random_span, truncate_pair

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


def test_a_mean_is_its_value_and_remembers_its_spread():
    m = hd.Mean([1, 2, 3, 4])
    assert m == 2.5 and m.n == 4 and m.sd == pytest.approx(math.sqrt(5 / 3))
    assert math.isnan(hd.Mean([]))


def test_the_bound_of_a_mean():
    """Z standard errors of the difference, the reference's spread taken for both samples."""
    reference = hd.Mean([0.0, 1.0] * 5_000)  # sd 0.5, n 10,000
    bound = hd.Z * reference.sd * math.sqrt(2 / 10_000)  # 0.0354
    assert hd.compare(hd.Mean([0.0] * 4_900 + [1.0] * 5_100), reference) == pytest.approx(0.01 / bound)
    assert hd.compare(hd.Mean([0.0] * 4_600 + [1.0] * 5_400), reference) > 1  # 0.04 of 0.0354
    assert hd.compare(hd.Mean([]), reference) == math.inf  # nothing measured
    assert hd.compare(hd.Proportion(1, 2), reference) == math.inf  # not a mean at all
    assert hd.compare(hd.Mean([3, 3]), hd.Mean([3, 3, 3])) == 0.0  # no spread: equal or not
    assert hd.compare(hd.Mean([3, 4]), hd.Mean([3, 3, 3])) == math.inf


def test_rows_off_are_told_apart_by_their_lengths():
    """Against the project's rule (no row off) one row off fails; against a mistake, as many rows off at
    other lengths do not match it."""
    assert hd.compare(hd.RowsOff([30], 5_000), hd.RowsOff([], 5_000)) == math.inf
    short_rows = hd.RowsOff([1, 2, 3] * 60, 5_000)
    assert hd.compare(hd.RowsOff([1, 2, 3] * 60, 5_000), short_rows) == 0
    assert hd.compare(hd.RowsOff([30, 70, 110, 150, 190] * 36, 5_000), short_rows) > 10
    assert hd.compare(hd.Proportion(180, 5_000), short_rows) < 1  # the fraction alone cannot tell them apart


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
    assert results["random_upper_half"].n > 7_000 and sigmas_from(results["random_upper_half"], 0.5) < hd.Z
    assert results["random_most_common"].count <= 6  # 7,000 draws from 30,522 ids: a few come up 3 or 4 times
    assert results["same_seed_differs"].count == 0
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


def rounded(n, mask_prob, generator):
    return max(1, round(mask_prob * n))


def mask_tokens_vectorized(input_ids, special_ids, vocab_size, mask_id, generator, mask_prob=0.15,
                           word_starts=None, mask_rate=0.8, count=rounded, random_ids=None, seeded=True):
    """mask_tokens written another way: positions by sorting random keys, all the fates in one draw. The
    keywords make mistakes of it: mask_rate=0.1 (10% [MASK] and 80% random), count (the picks of a row of n
    tokens), random_ids (the replacements, (B, T)), seeded=False (torch's global generator)."""
    generator = generator if seeded else None
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    ordinary = ~torch.isin(input_ids, torch.tensor(sorted(special_ids)))  # (B, T)
    picked = torch.zeros_like(ordinary)
    for row in range(input_ids.shape[0]):
        candidates = ordinary[row].nonzero().flatten()
        target = count(len(candidates), mask_prob, generator)
        if word_starts is None:
            keys = torch.rand(len(candidates), generator=generator)
            picked[row, candidates[keys.argsort()[:target]]] = True
        else:
            picked[row, pick_positions(candidates.tolist(), target, generator, word_starts[row].tolist())] = True
    labels[picked] = input_ids[picked]
    u = torch.rand(input_ids.shape, generator=generator)  # (B, T): a fate for every position, used where picked
    if random_ids is None:
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


def masking_errors(fn) -> dict[str, float]:
    """Each result of `fn` against the project's, in units of its bound."""
    ours, reference = hd.MASKING.run(fn), reference_results(hd.MASKING)
    return {name: hd.compare(ours[name], reference[name]) for name in reference}


def always_7(input_ids, **options):
    """The "random" id of issue 24's review: torch.full(..., 7)."""
    return mask_tokens_vectorized(input_ids, **options, random_ids=torch.full(input_ids.shape, 7))


def from_the_lower_half(input_ids, **options):
    ids = torch.randint(options["vocab_size"] // 2, input_ids.shape, generator=options["generator"])
    return mask_tokens_vectorized(input_ids, **options, random_ids=ids)


WRONG_REPLACEMENTS = {"always 7": always_7, "the lower half": from_the_lower_half}


@pytest.mark.parametrize("case", WRONG_REPLACEMENTS)
def test_random_replacements_from_a_corner_of_the_vocabulary_fail(case):
    """Every fraction of the rule holds (80/10/10 of the picks), but the "random" id is not a draw from the
    whole vocabulary."""
    fn = WRONG_REPLACEMENTS[case]
    errors = masking_errors(fn)
    print(f"\nmasking, random ids {case}: random_upper_half {errors['random_upper_half']:.3g}, random_most_common "
          f"{errors['random_most_common']:.3g} times the bound")
    assert max(errors[name] for name in ("mask_fraction", "unchanged_fraction", "picks_off_target")) <= 1
    assert errors["random_upper_half"] >= 10
    result = check("masking", fn)
    assert not result.passed and result.tensor == "random_upper_half", result.message
    assert "torch.randint(vocab_size" in result.hint


def test_the_always_7_replacement_is_also_the_most_common_id():
    errors = masking_errors(always_7)
    assert errors["random_most_common"] >= 100


def test_a_function_that_ignores_the_generator_fails():
    """Its fractions are right (torch's global generator draws as well), but a seed no longer repeats it."""
    def unseeded(input_ids, **options):
        return mask_tokens_vectorized(input_ids, **options, seeded=False)

    errors = masking_errors(unseeded)
    assert max(error for name, error in errors.items() if name != "same_seed_differs") <= 1
    assert errors["same_seed_differs"] == math.inf
    result = check("masking", unseeded)
    assert not result.passed and result.tensor == "same_seed_differs", result.message
    assert "generator" in result.hint


def floored(n, mask_prob, generator):
    return max(1, int(mask_prob * n))


def unclamped(n, mask_prob, generator):
    return round(mask_prob * n)


def coin_flips(n, mask_prob, generator):
    return int((torch.rand(n, generator=generator) < mask_prob).sum())


def half_up(n, mask_prob, generator):
    return max(1, int(mask_prob * n + 0.5))


@pytest.mark.parametrize("count,mistake", [(floored, "floor instead of round"), (unclamped, "no pick in a short row"),
                                           (coin_flips, "each token by a coin flip"), (half_up, None)],
                         ids=["floor", "no pick in a short row", "coin flips", "half up"])
def test_each_count_of_picks_is_diagnosed_as_its_own_mistake(count, mistake):
    """Written another way than the table's mistakes, each count still gets its own hint; rounding 4.5 up,
    which the table does not list, gets the general one (off only in rows of 30, 70, 110, ... tokens)."""
    def fn(input_ids, **options):
        return mask_tokens_vectorized(input_ids, **options, count=count)

    result = check("masking", fn)
    assert not result.passed and result.tensor == "picks_off_target", result.message
    assert result.mistake == mistake, result.message
    if mistake is None:
        assert result.hint == hd.MASKING.hints["picks_off_target"] and "round(4.5) == 4" in result.hint
        assert set(hd.MASKING.run(fn)["picks_off_target"].lengths) == {30, 70, 110, 150, 190}


def test_the_masking_task_says_how_python_rounds():
    assert "round(4.5) == 4" in hd.MASKING.stub()


# -- next-sentence pairs -----------------------------------------------------------------------------

def test_the_project_makes_pairs_by_the_rule():
    results = reference_results(hd.NSP_PAIRS)
    assert results["random_next"].n > 10_000
    assert sigmas_from(results["random_next"], 0.5) < hd.Z
    assert results["next_follows"] == 1 and results["random_elsewhere"] == 1 and results["over_budget"] == 0
    # chunks packed to 45 tokens, but documents of 71 on average end the last one early
    assert 0.7 < results["pair_fill"] < 0.9
    assert 0.3 < results["a_of_several_sentences"] < 0.6
    # a next pair ends short inside its document only when its chunk aimed short: about short_seq_prob (0.1)
    assert 0.05 < results["next_cut_short"] < 0.15
    assert 2 < results["pairs_per_document"] < 3
    for name, value in results.items():
        print(f"\nnsp_pairs {name}: {float(value):.4f}")


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_nsp_pairs_passes_a_correct_function_that_draws_otherwise(seed):
    def reseeded(documents, index, max_tokens, rng, short_seq_prob):
        own = random.Random(seed * 100_003 + index)  # a draw sequence of its own for each document
        return pairs_from_document(documents, index, max_tokens, own, short_seq_prob)

    errors = nsp_errors(reseeded)
    print(f"\nnsp_pairs, seed {seed}: " + ", ".join(f"{name} {error:.3f}" for name, error in errors.items()))
    assert max(errors.values()) <= 1


def nsp_errors(fn) -> dict[str, float]:
    """Each result of `fn` against the project's, in units of its bound."""
    ours, reference = hd.NSP_PAIRS.run(fn), reference_results(hd.NSP_PAIRS)
    return {name: hd.compare(ours[name], reference[name]) for name in reference}


def sentence_after_sentence(documents, index, max_tokens, rng, short_seq_prob):
    """One sentence as A, the next as B (or, half the time, a random span): no chunks, no target length,
    no short_seq_prob, nothing put back. Half random, every next B follows its A, every random B from
    elsewhere, every pair within max_tokens: the four fractions of the labels hold."""
    document, pairs = documents[index], []
    for i in range(len(document) - 1):
        if rng.random() < 0.5:
            tokens_a, tokens_b, is_random_next = list(document[i]), random_span(documents, index, 1, rng), True
        else:
            tokens_a, tokens_b, is_random_next = list(document[i]), list(document[i + 1]), False
        truncate_pair(tokens_a, tokens_b, max_tokens, rng)
        pairs.append(Pair(tokens_a, tokens_b, is_random_next))
    return pairs


def test_pairing_each_sentence_with_the_next_fails():
    errors = nsp_errors(sentence_after_sentence)
    print("\nnsp_pairs, sentence after sentence: " + ", ".join(f"{name} {error:.3g}" for name, error in errors.items()))
    assert max(errors[name] for name in ("random_next", "next_follows", "random_elsewhere", "over_budget")) <= 1
    for name in ("pair_fill", "a_of_several_sentences", "next_cut_short", "pairs_per_document"):
        assert errors[name] >= 10, name
    result = check("nsp_pairs", sentence_after_sentence)
    assert not result.passed and result.tensor == "pair_fill", result.message
    assert "a pair is a chunk" in result.hint


def project_pairs_with(old: str, new: str):
    """pairs_from_document with `old` replaced by `new` in its source."""
    source = inspect.getsource(pairs_from_document)
    assert old in source
    namespace = {}
    exec(source.replace(old, new), dict(vars(data_module)), namespace)
    return namespace["pairs_from_document"]


# Other ways to keep the labels' fractions and make the pairs wrong, each with the statistic that shows it:
# how far past the bound they are is printed (pytest -s). Not in the table of mistakes, so no hint names them.
HALF_RIGHT = {
    "A always one sentence": (project_pairs_with("rng.randint(1, len(chunk) - 1)", "1"), "a_of_several_sentences"),
    "no short targets": (project_pairs_with("if rng.random() < short_seq_prob", "if False"), "next_cut_short"),
    "nothing put back": (project_pairs_with("i -= len(chunk) - a_end", "pass"), "pairs_per_document"),
}


@pytest.mark.parametrize("case", HALF_RIGHT)
def test_pairs_made_otherwise_wrong_fail(case):
    fn, statistic = HALF_RIGHT[case]
    errors = nsp_errors(fn)
    print(f"\nnsp_pairs, {case}: " + ", ".join(f"{name} {error:.3g}" for name, error in errors.items()))
    assert errors[statistic] > 2
    assert not check("nsp_pairs", fn).passed


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


# -- what a loss must be, what the activation is ---------------------------------------------------

def cross_entropy_as_float(logits, labels, ignore_index=IGNORE_INDEX):
    return float(cross_entropy_by_torch(logits, labels, ignore_index))


def cross_entropy_per_position(logits, labels, ignore_index=IGNORE_INDEX):
    return F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="none")


@pytest.mark.parametrize("fn,what", [(cross_entropy_as_float, "float"),
                                     (cross_entropy_per_position, "a tensor of shape (40,)")],
                         ids=["float", "per position"])
def test_a_loss_that_is_not_a_0_dim_tensor_is_one_line_and_no_warning(fn, what, capfd):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = check("mlm_loss", fn)
    assert not result.passed
    assert result.message == f"mlm_loss: cross_entropy() returned {what}; return a 0-dim tensor (the mean)"
    assert not caught and not capfd.readouterr().err


def test_a_loss_cut_off_from_the_logits_is_one_line():
    def detached(logits, labels, ignore_index=IGNORE_INDEX):
        return torch.tensor(float(cross_entropy_by_torch(logits.detach(), labels, ignore_index)))

    result = check("mlm_loss", detached)
    assert not result.passed and "backward cannot reach from the logits" in result.message
    assert "\n" not in result.message


def test_the_cross_encoder_task_unpacks_the_activation():
    from minibert.app.pipelines import cross_encoder_activation

    assert "_, activation = cross_encoder_activation(model.config)" in hd.CROSS_ENCODER.stub()
    _, activation = cross_encoder_activation(hd.cross_encoder_model().config)
    assert activation is torch.sigmoid  # this checkpoint names none


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
