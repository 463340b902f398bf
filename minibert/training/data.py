"""Pre-training data, one idea per function: documents become sentence pairs, pairs become masked batches.

BERT learns from two made-up tasks (Devlin et al. 2018, section 3.1; google-research/bert
`create_pretraining_data.py`):

  1. next-sentence pairs   `make_pairs`: pack a document's sentences into segment A, then either the
                           text that really follows (label 0) or a span of another document (label 1)
  2. the pair as ids       `pair_to_ids`: [CLS] A [SEP] B [SEP], token types 0 for A and 1 for B
  3. masking               `mask_tokens`: hide 15% of the tokens; the model must say what they were

The sections below come in this order, the order they run in; last, `MaskedPairBatches` runs 2 and 3
on each batch the training loop draws.

    >>> g = torch.Generator().manual_seed(0)
    >>> ids = torch.tensor([[101, 2023, 2003, 1037, 2204, 6251, 2007, 2195, 2616, 1999, 2009, 1012, 102, 0, 0]])
    >>> masked, labels = mask_tokens(ids, special_ids={0, 101, 102}, vocab_size=30522, mask_id=103, generator=g)
    >>> masked          # 11 ordinary tokens, so round(0.15 * 11) = 2 are picked; both became [MASK] (103)
    tensor([[ 101,  103, 2003, 1037, 2204, 6251, 2007, 2195, 2616, 1999, 2009,  103,
              102,    0,    0]])
    >>> labels          # the original id where a token was picked, -100 (not predicted) elsewhere
    tensor([[-100, 2023, -100, -100, -100, -100, -100, -100, -100, -100, -100, 1012,
             -100, -100, -100]])

Every random choice comes from a generator the caller seeds, so a run can be repeated exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import torch

from ..bert.losses import IGNORE_INDEX
from ..bert.tokenizer import pad_batch


class CorpusError(ValueError):
    """A corpus that cannot be trained on: no documents, or none with enough text."""


# ---------------------------------------------------------------------------------------------
# 1. Next-sentence pairs: documents of sentences become (A, B) pairs, as google-research/bert's
#    create_instances_from_document makes them.
# ---------------------------------------------------------------------------------------------

def tokenize_documents(documents: Sequence[Sequence[str]], tokenizer) -> list[list[list[int]]]:
    """Documents of sentences (strings) -> documents of sentences of token ids, empty ones dropped.
    Raises CorpusError when nothing is left."""
    result = []
    for document in documents:
        sentences = [s for s in document if isinstance(s, str) and s.strip()]
        encoded = [e.ids for e in tokenizer.backend.encode_batch(sentences, add_special_tokens=False)] if sentences else []
        encoded = [ids for ids in encoded if ids]
        if encoded:
            result.append(encoded)
    if not result:
        raise CorpusError(f"none of the {len(documents)} documents has any text to train on")
    return result


@dataclass
class Pair:
    tokens_a: list[int]  # segment A: one or more whole sentences, as token ids (no [CLS]/[SEP])
    tokens_b: list[int]  # segment B: what follows A, or a span of another document
    is_random_next: bool  # the next-sentence label: False (0) = B follows A, True (1) = B is random


def make_pairs(documents: Sequence[Sequence[Sequence[int]]], max_seq_length: int, rng: random.Random,
               short_seq_prob: float = 0.1) -> list[Pair]:
    """Every document's (A, B) pairs. `documents` is a list of documents, each a list of sentences,
    each a list of token ids. Each pair fits max_seq_length once [CLS] and two [SEP] are added.

    Sentences are packed into a chunk up to a target length (max_seq_length - 3, or now and then,
    with probability `short_seq_prob`, a shorter random one so the model also sees short inputs).
    A takes the chunk's first sentences. Half the time B is the rest of the chunk (label 0); else B
    is a span from a random other document (label 1) and the chunk's unused sentences are put back.
    One deviation from Google's script: a chunk of a single sentence that draws "actually next" is
    split inside the sentence, instead of being forced to a random B, so the labels stay 50/50.

    Three tiny documents of token ids; max_seq_length 10 leaves 7 tokens for A and B:

    >>> documents = [[[1, 2, 3], [4, 5], [6, 7, 8]], [[11, 12], [13, 14, 15]], [[21, 22, 23], [24]]]
    >>> for pair in make_pairs(documents, max_seq_length=10, rng=random.Random(1)):
    ...     print(pair.tokens_a, pair.tokens_b, "random" if pair.is_random_next else "next")
    [1, 2, 3] [5, 6, 7, 8] next
    [11, 12] [13, 14, 15] next
    [21, 22, 23] [13, 14, 15] random
    [24] [4, 5, 6, 7, 8] random

    The first pair was 8 tokens, one too many, so truncate_pair took one from the longer segment, B.
    Each random B comes from another document than its A.
    """
    usable = [doc for doc in documents if sum(len(s) for s in doc) >= 2]
    if len(usable) < 2:
        raise CorpusError(f"the corpus has {len(usable)} usable document(s) (with at least 2 tokens); "
                          "next-sentence pairs need at least 2, one to draw random sentences from")
    max_tokens = max_seq_length - 3  # room for [CLS] A [SEP] B [SEP]
    pairs = []
    for index, document in enumerate(usable):
        pairs += pairs_from_document(usable, index, max_tokens, rng, short_seq_prob)
    return pairs


def pairs_from_document(documents, index: int, max_tokens: int, rng: random.Random,
                        short_seq_prob: float) -> list[Pair]:
    """The (A, B) pairs of documents[index], as make_pairs describes: its sentences packed into chunks of
    up to a target length (max_tokens, or with probability short_seq_prob a random shorter one); A the
    chunk's first sentences; B the rest (is_random_next False) or, half the time, a span of a random
    other document (True), the chunk's unused sentences then put back; each pair cut to max_tokens."""
    document = [s for s in documents[index] if s]
    target = rng.randint(2, max_tokens) if rng.random() < short_seq_prob else max_tokens
    pairs, chunk, length, i = [], [], 0, 0
    while i < len(document):
        chunk.append(document[i])
        length += len(document[i])
        if i == len(document) - 1 or length >= target:
            is_random_next = rng.random() < 0.5
            a_end = 1 if len(chunk) < 2 else rng.randint(1, len(chunk) - 1)  # sentences of A
            tokens_a = [t for sentence in chunk[:a_end] for t in sentence]
            if is_random_next:
                tokens_b = random_span(documents, index, max(1, target - len(tokens_a)), rng)
                i -= len(chunk) - a_end  # the sentences not used go back, for the next chunk
            elif len(chunk) >= 2:
                tokens_b = [t for sentence in chunk[a_end:] for t in sentence]
            else:  # one sentence: A is its beginning, B the rest (see the docstring)
                cut = rng.randint(1, len(tokens_a) - 1) if len(tokens_a) >= 2 else 1
                tokens_a, tokens_b = tokens_a[:cut], tokens_a[cut:]
            truncate_pair(tokens_a, tokens_b, max_tokens, rng)
            if tokens_a and tokens_b:
                pairs.append(Pair(tokens_a, tokens_b, is_random_next))
            chunk, length = [], 0
            target = rng.randint(2, max_tokens) if rng.random() < short_seq_prob else max_tokens
        i += 1
    return pairs


def random_span(documents, avoid: int, length: int, rng: random.Random) -> list[int]:
    """At least `length` tokens of consecutive sentences from a random document other than `avoid`."""
    other = rng.randrange(len(documents) - 1)
    other += other >= avoid  # skip the document A came from
    sentences = [s for s in documents[other] if s]
    start = rng.randrange(len(sentences))
    span: list[int] = []
    for sentence in sentences[start:]:
        span += sentence
        if len(span) >= length:
            break
    return span


def truncate_pair(tokens_a: list[int], tokens_b: list[int], max_tokens: int, rng: random.Random) -> None:
    """Trim the longer segment, one token at a time, from its front or back at random, until both fit.

    >>> a, b = [1, 2, 3, 4, 5], [6, 7]
    >>> truncate_pair(a, b, max_tokens=5, rng=random.Random(0))  # in place
    >>> a, b
    ([1, 2, 3], [6, 7])
    """
    while len(tokens_a) + len(tokens_b) > max_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        del longer[0 if rng.random() < 0.5 else -1]


# ---------------------------------------------------------------------------------------------
# 2. A pair as model input, and a batch of pairs padded to the longest.
# ---------------------------------------------------------------------------------------------

def pair_to_ids(pair: Pair, cls_id: int, sep_id: int) -> tuple[list[int], list[int]]:
    """[CLS] A [SEP] B [SEP], and its token types: 0 up to the first [SEP], 1 after.

    >>> pair_to_ids(Pair([7, 8], [9], False), cls_id=101, sep_id=102)
    ([101, 7, 8, 102, 9, 102], [0, 0, 0, 0, 1, 1])
    """
    ids = [cls_id, *pair.tokens_a, sep_id, *pair.tokens_b, sep_id]
    types = [0] * (len(pair.tokens_a) + 2) + [1] * (len(pair.tokens_b) + 1)
    return ids, types


def collate_pairs(pairs: Sequence[Pair], cls_id: int, sep_id: int, pad_id: int) -> dict[str, torch.Tensor]:
    """A batch of pairs, padded to the longest: input_ids, token_type_ids, attention_mask (B, T)
    and next_sentence_label (B,)."""
    batch = pad_batch([pair_to_ids(pair, cls_id, sep_id) for pair in pairs], pad_id)  # each (B, T)
    batch["next_sentence_label"] = torch.tensor([int(pair.is_random_next) for pair in pairs], dtype=torch.long)  # (B,)
    return batch


# ---------------------------------------------------------------------------------------------
# 3. Masking: 15% of the tokens are picked; of those 80% become [MASK], 10% a random token, 10% stay.
# ---------------------------------------------------------------------------------------------

def mask_tokens(input_ids: torch.Tensor, special_ids: set[int], vocab_size: int, mask_id: int,
                generator: torch.Generator, mask_prob: float = 0.15,
                word_starts: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick `mask_prob` of each row's ordinary tokens, never [CLS], [SEP] or padding (`special_ids`).

    Returns (masked input_ids, labels), both (B, T). labels hold the original id at every picked
    position and -100 elsewhere, so the loss is taken only where the model had to guess. Each row
    gets round(mask_prob * n) picks (at least one) among its n ordinary tokens, as Google's script
    does. Of the picks, 80% show [MASK], 10% a random token and 10% the token itself: the model
    cannot learn that only [MASK] positions matter, and it never sees [MASK] when fine-tuned.

    `word_starts` (B, T) bool, True where a word begins: whole-word masking, where a word's pieces
    ("flight", "##less") are picked together.
    """
    masked, labels = input_ids.clone(), torch.full_like(input_ids, IGNORE_INDEX)
    for row in range(input_ids.shape[0]):
        candidates = [i for i, t in enumerate(input_ids[row].tolist()) if t not in special_ids]
        if not candidates:
            continue
        target = max(1, round(mask_prob * len(candidates)))
        picked = pick_positions(candidates, target, generator,
                                None if word_starts is None else word_starts[row].tolist())
        labels[row, picked] = input_ids[row, picked]
        # One draw per picked position decides its fate: below 0.8 [MASK], 0.8-0.9 random, above stays.
        fate = torch.rand(len(picked), generator=generator)  # (n_picked,)
        for position, u in zip(picked, fate.tolist()):
            if u < 0.8:
                masked[row, position] = mask_id
            elif u < 0.9:
                masked[row, position] = int(torch.randint(vocab_size, (1,), generator=generator))
    return masked, labels


def pick_positions(candidates: list[int], target: int, generator: torch.Generator,
                   word_starts: list[bool] | None = None) -> list[int]:
    """`target` positions out of `candidates`, in a random order of tokens or, with `word_starts`,
    of whole words (a word is picked only if all its pieces still fit in the target)."""
    if word_starts is None:
        groups = [[i] for i in candidates]
    else:
        groups = []
        for i in candidates:
            if groups and not word_starts[i] and groups[-1][-1] == i - 1:
                groups[-1].append(i)  # a "##" piece joins the word before it
            else:
                groups.append([i])
    picked: list[int] = []
    for g in torch.randperm(len(groups), generator=generator).tolist():
        if len(picked) + len(groups[g]) <= target:
            picked += groups[g]
        if len(picked) == target:
            break
    return sorted(picked)


# ---------------------------------------------------------------------------------------------
# The batches the training loop draws: 2, then 3 on each row.
# ---------------------------------------------------------------------------------------------

class MaskedPairBatches:
    """The collate function for pre-training: pairs padded into a batch, then each row masked with
    its own generator (see StepData in loop.py), so the masks do not depend on how a batch is split.
    The batch carries `labels` (masked LM) and `next_sentence_label` for BertForPreTraining."""

    def __init__(self, cls_id: int, sep_id: int, pad_id: int, mask_id: int, vocab_size: int,
                 mask_prob: float = 0.15):
        self.cls_id, self.sep_id, self.pad_id, self.mask_id = cls_id, sep_id, pad_id, mask_id
        self.vocab_size, self.mask_prob = vocab_size, mask_prob

    @classmethod
    def for_tokenizer(cls, tokenizer, mask_prob: float = 0.15) -> "MaskedPairBatches":
        ids = {t: tokenizer.backend.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]", "[MASK]")}
        return cls(ids["[CLS]"], ids["[SEP]"], ids["[PAD]"], ids["[MASK]"], tokenizer.vocab_size, mask_prob)

    def __call__(self, pairs: Sequence[Pair], generators: Sequence[torch.Generator]) -> dict[str, torch.Tensor]:
        batch = collate_pairs(pairs, self.cls_id, self.sep_id, self.pad_id)
        special = {self.cls_id, self.sep_id, self.pad_id}
        labels = torch.empty_like(batch["input_ids"])
        for row, generator in enumerate(generators):
            masked, row_labels = mask_tokens(batch["input_ids"][row:row + 1], special, self.vocab_size,
                                             self.mask_id, generator, self.mask_prob)
            batch["input_ids"][row], labels[row] = masked[0], row_labels[0]
        batch["labels"] = labels
        return batch
