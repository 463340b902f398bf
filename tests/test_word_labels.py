"""training/word_labels.py against transformers: the same pieces, the same word ids, the same labels.

The reference is transformers' own BertTokenizerFast on the shipped all-MiniLM-L6-v2 folder, called with
`is_split_into_words=True`, and the labelling rule of transformers' token-classification example
(run_ner.py) written out here from its description: first piece the word's label, later pieces -100, or
with label_all_tokens the word's label with B-X turned into I-X; special tokens and padding -100.
"""

import pytest
import torch

from minibert import Tokenizer
from minibert.training.word_labels import IGNORE_INDEX, inside_labels, label_words, pieces_labels

NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC"]  # no I-MISC: B-MISC's later pieces stay B-MISC
SENTENCES = [
    # words of several pieces, a name of many, an accent
    (["Ouagadougou", "bats", "ringed", "by", "Zürich", "biologists"], [3, 0, 0, 0, 3, 0]),
    # punctuation as words, and a word that is mostly punctuation (one word, several pieces)
    (["Dr.", "Smith", ",", "U.S.A.", "!"], [1, 2, 0, 3, 0]),
    # characters the vocabulary lacks ([UNK]), a CJK word (a piece per character), a control character
    # that normalisation removes (a word of no piece at all)
    (["☃", "東京", "\u0000", "Smithsonianesque"], [5, 3, 0, 5]),
    # one word
    (["bat"], [0]),
]


@pytest.fixture(scope="module")
def tokenizers(minilm_dir):
    from transformers import BertTokenizerFast

    return Tokenizer.from_pretrained(minilm_dir), BertTokenizerFast.from_pretrained(minilm_dir)


def reference_labels(word_ids, word_labels, label_all_tokens):
    """transformers' run_ner.py rule, from its description."""
    b_to_i = [NAMES.index("I-" + n[2:]) if n.startswith("B-") and "I-" + n[2:] in NAMES else i
              for i, n in enumerate(NAMES)]
    out, previous = [], None
    for word in word_ids:
        if word is None:
            out.append(-100)
        elif word != previous:
            out.append(word_labels[word])
        else:
            out.append(b_to_i[word_labels[word]] if label_all_tokens else -100)
        previous = word
    return out


@pytest.mark.parametrize("label_all_pieces", [False, True])
@pytest.mark.parametrize("max_length", [None, 6, 3])
def test_batch_equals_transformers(tokenizers, label_all_pieces, max_length):
    ours_tok, hf_tok = tokenizers
    words = [w for w, _ in SENTENCES]
    labels = [l for _, l in SENTENCES]
    batch = label_words(ours_tok, words, labels, max_length=max_length, label_all_pieces=label_all_pieces,
                        label_names=NAMES)
    hf = hf_tok(words, is_split_into_words=True, truncation=True, max_length=max_length or 512, padding=True,
                return_tensors="pt")
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert torch.equal(batch[key], hf[key]), key
    expected = torch.tensor([reference_labels(hf.word_ids(i), labels[i], label_all_pieces) for i in range(len(words))])
    assert batch["labels"].dtype == torch.long
    assert torch.equal(batch["labels"], expected)


def test_the_cases_are_the_ones_named(tokenizers):
    """The sentences do hold what the test means to cover: several pieces, [UNK], a word of no piece."""
    _, hf_tok = tokenizers
    enc = hf_tok([w for w, _ in SENTENCES], is_split_into_words=True)
    tokens = [enc.tokens(i) for i in range(len(SENTENCES))]
    assert tokens[0][1:4] == ["ou", "##aga", "##dou"]
    assert "[UNK]" in tokens[2]
    assert 2 not in enc.word_ids(2)  # "\u0000" has no piece
    assert sum(w == 3 for w in enc.word_ids(1)) > 1  # "U.S.A." is one word of several pieces


def test_truncation_keeps_the_first_piece_of_a_cut_word(tokenizers):
    ours_tok, _ = tokenizers
    batch = label_words(ours_tok, [["Ouagadougou", "bats"]], [[3, 0]], max_length=4, label_all_pieces=True,
                        label_names=NAMES)
    assert ours_tok.convert_ids_to_tokens(batch["input_ids"][0]) == ["[CLS]", "ou", "##aga", "[SEP]"]
    assert batch["labels"][0].tolist() == [-100, 3, 4, -100]  # B-LOC then I-LOC, "bats" cut off


def test_padding_is_ignored(tokenizers):
    ours_tok, _ = tokenizers
    batch = label_words(ours_tok, [["bat"], ["ringed", "bats"]], [[0], [1, 0]])
    assert batch["labels"].tolist() == [[-100, 0, -100, -100, -100], [-100, 1, -100, 0, -100]]
    assert batch["attention_mask"][0].tolist() == [1, 1, 1, 0, 0]


def test_inside_labels_and_all_pieces_without_names():
    assert inside_labels(NAMES) == {0: 0, 1: 2, 2: 2, 3: 4, 4: 4, 5: 5}
    assert pieces_labels([None, 0, 0, None], [1], label_all_pieces=True) == [-100, 1, 1, -100]
    assert IGNORE_INDEX == -100


def test_errors_name_what_is_wrong(tokenizers):
    ours_tok, _ = tokenizers
    with pytest.raises(ValueError, match="sentence 0 has 2 words but 1 labels"):
        label_words(ours_tok, [["a", "b"]], [[0]])
    with pytest.raises(TypeError, match="list of words"):
        label_words(ours_tok, ["a b"], [[0]])
    with pytest.raises(ValueError, match="one label per word"):
        pieces_labels([None, 0, 1, None], [0])
    with pytest.raises(ValueError, match="max_length"):
        label_words(ours_tok, [["a"]], [[0]], max_length=1)
