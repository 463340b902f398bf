"""Word labels to word-piece labels, for token classification (named entities, parts of speech).

A labelled sentence comes as words, one label per word. BERT reads word pieces: one word may become
several pieces ("ringed" -> "ring", "##ed"), and [CLS], [SEP] and padding are pieces of no word.
The tokenizer says which word each piece came from (its *word ids*); from them each piece gets a label:

    words          Bats    ringed          in  Texas
    labels         O       O               O   B-LOC
    pieces  [CLS]  bats    ring   ##ed     in  texas  [SEP]
    word_ids None  0       1      1        2   3      None
    labels  -100   O       O      -100     O   B-LOC  -100

The first piece of a word carries the word's label; the other pieces and the special tokens carry
-100, the index the loss ignores (bert/losses.py), so that each word counts once in the loss and
the model is judged on the pieces a prediction is read from. With `label_all_pieces=True` every piece
of a word carries it, and a B- label's later pieces become I- (the piece after "B-LOC" is inside
the same entity, not the beginning of another): what transformers' token-classification example
does with `label_all_tokens`.

    >>> names = ["O", "B-LOC", "I-LOC"]
    >>> pieces_labels([None, 0, 1, 1, 2, 3, None], [0, 0, 0, 1])
    [-100, 0, 0, -100, 0, 1, -100]
    >>> pieces_labels([None, 0, 1, 1, 2, 3, 3, None], [0, 0, 0, 1], label_all_pieces=True,
    ...               inside=inside_labels(names))          # word 3 in two pieces: B-LOC, I-LOC
    [-100, 0, 0, 0, 0, 1, 2, -100]

`label_words` does it for a batch of sentences, through the tokenizer, padded:

    >>> batch = label_words(tokenizer, [["Bats", "ringed", "in", "Texas"]], [[0, 0, 0, 1]])
    >>> tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    ['[CLS]', 'bats', 'ring', '##ed', 'in', 'texas', '[SEP]']
    >>> batch["labels"]                                      # (B, T) int64, -100: no target
    tensor([[-100,    0,    0, -100,    0,    1, -100]])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

IGNORE_INDEX = -100  # the label the loss skips (torch's cross_entropy ignore_index)


def inside_labels(label_names: Sequence[str]) -> dict[int, int]:
    """For each label id, the label a word's later pieces get when every piece is labelled: B-X -> I-X.

    A label that does not start with "B-", or whose "I-" twin is not among the names, maps to itself.

    Args:
        label_names: the label of each id, e.g. ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"].

    Returns:
        {id: id of the inside label}, one entry per name.

    >>> inside_labels(["O", "B-PER", "I-PER", "B-MISC"])    # no I-MISC: B-MISC stays
    {0: 0, 1: 2, 2: 2, 3: 3}
    """
    index = {name: i for i, name in enumerate(label_names)}
    inside = {}
    for i, name in enumerate(label_names):
        twin = "I-" + name[2:] if name.startswith("B-") else None
        inside[i] = index.get(twin, i)
    return inside


def pieces_labels(word_ids: Sequence[int | None], labels: Sequence[int], label_all_pieces: bool = False,
                  inside: Mapping[int, int] | None = None) -> list[int]:
    """One label per piece, from one label per word and the piece -> word map of one encoding.

    Args:
        word_ids: for each piece, the index of its word in `labels`, or None for [CLS], [SEP] and
            padding (a `tokenizers.Encoding`'s `word_ids`; transformers' `encoding.word_ids(i)`).
        labels: one label id per word. Words that truncation cut off have no piece and so no say.
        label_all_pieces: label every piece of a word, not only its first.
        inside: with label_all_pieces, the label of a word's later pieces (`inside_labels`); None
            gives them the word's own label.

    Returns:
        One int per piece: a label id, or -100 where the loss should not look.

    Raises:
        ValueError: a word id that has no label (fewer labels than words).
    """
    piece_labels = []
    previous = None  # the word of the piece before: a new word starts where it changes
    for word in word_ids:
        if word is None:  # [CLS], [SEP], padding: no word, no label
            piece_labels.append(IGNORE_INDEX)
        elif word >= len(labels):
            raise ValueError(f"a piece of word {word} but only {len(labels)} labels: one label per word")
        elif word != previous:  # the first piece of a word carries the word's label
            piece_labels.append(labels[word])
        elif label_all_pieces:  # a later piece: inside the word, so B-X becomes I-X
            piece_labels.append(inside.get(labels[word], labels[word]) if inside else labels[word])
        else:
            piece_labels.append(IGNORE_INDEX)
        previous = word
    return piece_labels


def label_words(tokenizer, words: Sequence[Sequence[str]], labels: Sequence[Sequence[int]],
                max_length: int | None = None, label_all_pieces: bool = False,
                label_names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """A batch for token classification: sentences given as words, one label id per word.

    The words are tokenized as words (`is_split_into_words` in transformers: no splitting on
    spaces first, and each word's pieces numbered by its index), truncated to `max_length` pieces,
    and padded on the right to the longest; the labels follow `pieces_labels`, padding -100.

    Args:
        tokenizer: a minibert `Tokenizer` (its `tokenizers` backend does the work).
        words: B sentences, each a non-empty list of words (strings).
        labels: B lists of label ids, one per word.
        max_length: the most pieces per sentence with [CLS] and [SEP]; the tokenizer's maximum by default.
        label_all_pieces: label every piece of a word (see `pieces_labels`).
        label_names: the label of each id; with label_all_pieces, a B- label's later pieces become I-.

    Returns:
        input_ids, token_type_ids, attention_mask and labels, each (B, T) int64.

    Raises:
        TypeError: words is not a list of lists of strings.
        ValueError: a sentence whose labels are not one per word; max_length below 2.
    """
    if isinstance(words, str) or not words or not all(
            isinstance(sentence, (list, tuple)) and all(isinstance(w, str) for w in sentence) for sentence in words):
        raise TypeError("words must be a non-empty list of sentences, each a list of words (strings)")
    if len(labels) != len(words):
        raise ValueError(f"{len(words)} sentences but {len(labels)} lists of labels")
    for i, (sentence, sentence_labels) in enumerate(zip(words, labels)):
        if len(sentence) != len(sentence_labels):
            raise ValueError(f"sentence {i} has {len(sentence)} words but {len(sentence_labels)} labels")
    encodings = tokenizer.words(words, max_length)  # each with word_ids
    inside = inside_labels(label_names) if (label_all_pieces and label_names is not None) else None

    batch = tokenizer.pad(encodings)  # input_ids, token_type_ids, attention_mask: (B, T)
    B, T = batch["input_ids"].shape
    batch["labels"] = torch.full((B, T), IGNORE_INDEX, dtype=torch.long)  # (B, T), padding stays -100
    for row, (encoding, sentence_labels) in enumerate(zip(encodings, labels)):
        row_labels = pieces_labels(encoding.word_ids, sentence_labels, label_all_pieces, inside)
        batch["labels"][row, :len(row_labels)] = torch.tensor(row_labels, dtype=torch.long)
    return batch
