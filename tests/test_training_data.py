"""The pre-training data obeys BERT's rules, measured over many draws.

Masking: 15% of the ordinary tokens (+-0.5%), of which 80% [MASK], 10% random, 10% kept (+-1.5%);
never [CLS], [SEP] or padding. Next-sentence pairs: 50/50 (+-2%), a random B never from A's own
document, every pair within the length. The numbers come from the rules themselves, not from an
earlier run of this code.
"""

import random

import pytest
import torch

from minibert.training.data import (CorpusError, collate_pairs, make_pairs, mask_tokens, pair_to_ids,
                                    tokenize_documents)

CLS, SEP, PAD, MASK, V = 101, 102, 0, 103, 30522
SPECIAL = {CLS, SEP, PAD}


def random_batch(rows: int = 400, length: int = 64, seed: int = 0) -> torch.Tensor:
    """[CLS] tokens [SEP] [PAD]...: rows of different lengths, ids well away from the special ones."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, V, (rows, length), generator=g)
    lengths = torch.randint(8, length, (rows,), generator=g)
    for r, n in enumerate(lengths.tolist()):
        ids[r, 0], ids[r, n - 1], ids[r, n:] = CLS, SEP, PAD
    return ids


def test_masking_rates():
    ids = random_batch()
    masked, labels = mask_tokens(ids, SPECIAL, V, MASK, torch.Generator().manual_seed(1))
    ordinary = ~(ids == CLS) & ~(ids == SEP) & ~(ids == PAD)
    picked = labels != -100
    assert 0.145 <= picked.sum() / ordinary.sum() <= 0.155
    assert torch.equal(labels[picked], ids[picked]), "labels hold the original ids"
    assert not picked[~ordinary].any(), "[CLS], [SEP] and padding are never picked"
    assert torch.equal(masked[~picked], ids[~picked]), "tokens not picked are untouched"
    n = picked.sum()
    became_mask = (masked[picked] == MASK).sum() / n
    kept = (masked[picked] == ids[picked]).sum() / n
    replaced = 1 - became_mask - kept
    assert abs(became_mask - 0.8) <= 0.015 and abs(kept - 0.1) <= 0.015 and abs(replaced - 0.1) <= 0.015


def test_every_row_gets_round_15_percent_and_at_least_one():
    ids = random_batch(rows=50)
    _, labels = mask_tokens(ids, SPECIAL, V, MASK, torch.Generator().manual_seed(2))
    for row, label in zip(ids, labels):
        ordinary = sum(t not in SPECIAL for t in row.tolist())
        assert (label != -100).sum() == max(1, round(0.15 * ordinary))


def test_masking_is_reproducible_from_the_seed():
    ids = random_batch(rows=20)
    first = mask_tokens(ids, SPECIAL, V, MASK, torch.Generator().manual_seed(5))
    second = mask_tokens(ids, SPECIAL, V, MASK, torch.Generator().manual_seed(5))
    other = mask_tokens(ids, SPECIAL, V, MASK, torch.Generator().manual_seed(6))
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.equal(first[1], other[1])


def test_whole_word_masking_picks_every_piece_of_a_word():
    ids = random_batch(rows=200, seed=3)
    g = torch.Generator().manual_seed(0)
    word_starts = torch.rand(ids.shape, generator=g) < 0.6  # the rest are "##" pieces of the word before
    word_starts[:, 1] = True
    _, labels = mask_tokens(ids, SPECIAL, V, MASK, torch.Generator().manual_seed(4), word_starts=word_starts)
    picked = labels != -100
    assert picked.any()
    for r in range(ids.shape[0]):
        row = [t not in SPECIAL for t in ids[r].tolist()]
        for i in range(1, ids.shape[1]):
            if row[i] and row[i - 1] and not word_starts[r, i]:  # i continues the word of i - 1
                assert picked[r, i] == picked[r, i - 1], f"row {r}: a word was split at {i}"


def documents(n_docs: int = 60, seed: int = 0) -> list[list[list[int]]]:
    """Documents whose token ids say where they come from: document d's tokens are d * 1000 + k."""
    rng = random.Random(seed)
    return [[[d * 1000 + rng.randrange(1000) for _ in range(rng.randint(4, 20))] for _ in range(rng.randint(3, 30))]
            for d in range(n_docs)]


def test_next_sentence_pairs():
    docs = documents()
    pairs = []
    for seed in range(20):
        pairs += make_pairs(docs, max_seq_length=64, rng=random.Random(seed), short_seq_prob=0.1)
    assert len(pairs) > 5000  # the share of random Bs then has a standard error under 0.7%
    random_share = sum(p.is_random_next for p in pairs) / len(pairs)
    assert abs(random_share - 0.5) <= 0.02
    for pair in pairs:
        assert len(pair.tokens_a) + len(pair.tokens_b) + 3 <= 64, "every pair fits with [CLS] and two [SEP]"
        assert pair.tokens_a and pair.tokens_b
        doc_a = {t // 1000 for t in pair.tokens_a}
        doc_b = {t // 1000 for t in pair.tokens_b}
        assert len(doc_a) == 1, "segment A is from one document"
        if pair.is_random_next:
            assert doc_b.isdisjoint(doc_a), "a random B never comes from A's own document"
        else:
            assert doc_b == doc_a, "an actual next B continues A's document"


def test_actual_next_b_follows_a():
    """With label 0, A then B is a stretch of the document in order (after trimming its ends)."""
    docs = [[[1, 2, 3], [4, 5], [6, 7, 8, 9]], [[100, 101], [102, 103, 104]], [[200, 201, 202], [203]]]
    for seed in range(30):
        for pair in make_pairs(docs, max_seq_length=64, rng=random.Random(seed), short_seq_prob=0.0):
            if not pair.is_random_next:
                joined = pair.tokens_a + pair.tokens_b
                assert joined == list(range(joined[0], joined[0] + len(joined)))


def test_pair_to_ids_and_collate():
    from minibert.training.data import Pair

    ids, types = pair_to_ids(Pair([5, 6], [7, 8, 9], True), CLS, SEP)
    assert ids == [CLS, 5, 6, SEP, 7, 8, 9, SEP] and types == [0, 0, 0, 0, 1, 1, 1, 1]
    batch = collate_pairs([Pair([5], [6], False), Pair([5, 6], [7, 8, 9], True)], CLS, SEP, PAD)
    assert batch["input_ids"].tolist() == [[CLS, 5, SEP, 6, SEP, PAD, PAD, PAD], [CLS, 5, 6, SEP, 7, 8, 9, SEP]]
    assert batch["attention_mask"].tolist() == [[1] * 5 + [0] * 3, [1] * 8]
    assert batch["next_sentence_label"].tolist() == [0, 1]


def test_a_corpus_with_no_usable_documents(minilm_dir):
    from minibert import Tokenizer

    tokenizer = Tokenizer.from_pretrained(minilm_dir)
    with pytest.raises(CorpusError, match="none of the 3 documents has any text"):
        tokenize_documents([[], ["", "   "], [None]], tokenizer)
    with pytest.raises(CorpusError, match="1 usable document"):
        make_pairs(tokenize_documents([["One short document."]], tokenizer), 32, random.Random(0))
