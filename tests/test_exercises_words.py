"""The word exercises (cosine, analogy, wordpiece) beyond the generic checks of test_exercises.py.

What a learner is checked against must itself be right: the reference results are set against independent
implementations (gensim's KeyedVectors for the cosines and the analogies, Hugging Face `tokenizers` for the
word pieces). And the check must pass a correct function written another way: a few such functions, as a
learner might write them, stay far inside the bound (< 0.1 of it), and no analogy's answer is so close to
the next best word that rounding could swap them.
"""

from __future__ import annotations

import numpy as np
import pytest
from gensim.models import KeyedVectors

from minibert.exercises import check
from minibert.exercises.core import error_in_bounds, reference_results
from minibert.exercises.words import (ANALOGY, COSINE, RESTRICT_VOCAB, WORDPIECE, WORDS, analogy_questions, compare,
                                      glove_6b_50d, minilm_vocab)


@pytest.fixture(scope="module")
def gensim_glove() -> KeyedVectors:
    """The same GloVe 6B 50d rows, held by gensim."""
    wv = glove_6b_50d()
    kv = KeyedVectors(wv.vector_size)
    kv.add_vectors(wv.index_to_key, np.array(wv.vectors))
    return kv


# -- the references are right ----------------------------------------------------------------------------

def test_the_cosines_are_gensims_to_the_bit(gensim_glove):
    wv = glove_6b_50d()
    first = wv.vectors[:5000]
    queen = wv["queen"]
    gensims = {"cosines of king with the first 5000 words": gensim_glove.cosine_similarities(wv["king"], first),
               "cosines of queen with its multiples": gensim_glove.cosine_similarities(
                   queen, np.stack([queen, 2 * queen, -queen, queen / 1000])),
               "cosines of king - man + woman with the first 5000 words": gensim_glove.cosine_similarities(
                   wv["king"] - wv["man"] + wv["woman"], first)}
    ours = reference_results(COSINE)
    assert list(ours) == list(gensims)
    for name, cosines in gensims.items():
        np.testing.assert_array_equal(ours[name], cosines, err_msg=name)


def test_the_analogies_are_gensims(gensim_glove):
    """Each answer is gensim's most_similar(positive=[b, c], negative=[a], topn=1, restrict_vocab=30000), its
    cosine within float32 rounding."""
    ours = reference_results(ANALOGY)
    questions = analogy_questions()
    gensims = [gensim_glove.most_similar(positive=[b, c], negative=[a], topn=1, restrict_vocab=RESTRICT_VOCAB)[0]
               for a, b, c in questions]
    assert [ours[f"answer to {a} : {b} :: {c} : ?"] for a, b, c in questions] == [word for word, _ in gensims]
    scores = np.array([score for _, score in gensims], dtype=np.float64)
    np.testing.assert_allclose(ours["scores"], scores, rtol=0, atol=1e-6)
    assert error_in_bounds(scores, ours["scores"]) < 0.1


def test_the_word_pieces_are_hugging_faces():
    """Each word's pieces are those of the WordPiece model of `tokenizers` (which minibert's tokenizer runs)."""
    from tokenizers.models import WordPiece

    ours = reference_results(WORDPIECE)
    for (word, max_chars), (name, pieces) in zip(WORDS, ours.items(), strict=True):
        model = WordPiece(minilm_vocab(), unk_token="[UNK]", max_input_chars_per_word=max_chars or 100)
        assert [token.value for token in model.tokenize(word)] == pieces, name


def test_the_questions_are_three_of_each_section():
    questions = analogy_questions()
    assert len(questions) == 3 * 14
    assert questions[0] == ("athens", "greece", "baghdad")
    assert all(word in glove_6b_50d() for question in questions for word in question)


def test_every_answer_is_clear_of_the_next_best_word():
    """A correct function rounds differently (float64, another order of sums): about 1e-7 on a cosine. The
    best word is ahead of the second by far more, so no correct function answers with another word."""
    wv = glove_6b_50d()
    unit = wv.unit_vectors[:RESTRICT_VOCAB].astype(np.float64)  # (N, D)
    for a, b, c in analogy_questions():
        rows = [wv.get_index(word) for word in (a, b, c)]
        query = wv.unit_vectors[rows[1]] - wv.unit_vectors[rows[0]] + wv.unit_vectors[rows[2]]  # (D,)
        scores = unit @ (query / np.linalg.norm(query))  # (N,)
        scores[[row for row in rows if row < RESTRICT_VOCAB]] = -np.inf
        second, best = np.sort(scores)[-2:]
        assert best - second > 5e-4, (a, b, c)


# -- a correct function written another way passes, far inside the bound ------------------------------------

def cosine_in_float64(vector_1, vectors_all):
    u, m = np.asarray(vector_1, np.float64), np.asarray(vectors_all, np.float64)
    return (m / np.sqrt((m * m).sum(axis=1))[:, None]) @ (u / np.sqrt(u @ u))


def cosine_unit_rows_first(vector_1, vectors_all):
    rows = vectors_all / np.linalg.norm(vectors_all, axis=1, keepdims=True)  # (n, D)
    return rows @ (vector_1 / np.linalg.norm(vector_1))


def cosine_by_einsum(vector_1, vectors_all):
    dots = np.einsum("nd,d->n", vectors_all, vector_1)
    return dots / np.linalg.norm(vector_1) / np.sqrt(np.einsum("nd,nd->n", vectors_all, vectors_all))


def analogies_one_at_a_time(self, questions, topn=1, restrict_vocab=None, batch_size=64):
    unit = self.unit_vectors[:restrict_vocab]  # (N, D)
    answers = []
    for question in questions:
        a, b, c = (self.get_index(word) for word in question)
        query = self.unit_vectors[b] - self.unit_vectors[a] + self.unit_vectors[c]  # (D,)
        scores = unit @ (query / np.linalg.norm(query))  # (N,)
        scores[[row for row in (a, b, c) if row < len(unit)]] = -np.inf
        best = np.argsort(-scores)[:topn]
        answers.append([(self.index_to_key[row], float(scores[row])) for row in best])
    return answers


def analogies_in_float64(self, questions, topn=1, restrict_vocab=None, batch_size=64):
    vectors = self.vectors.astype(np.float64)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)  # (N, D)
    rows = np.array([[self.key_to_index[word] for word in question] for question in questions])  # (Q, 3)
    queries = unit[rows[:, 1]] - unit[rows[:, 0]] + unit[rows[:, 2]]  # (Q, D)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    end = restrict_vocab or len(unit)
    scores = queries @ unit[:end].T  # (Q, end)
    for q, row in enumerate(rows):
        scores[q, row[row < end]] = -np.inf
    best = scores.argmax(axis=1)  # (Q,)
    return [[(self.index_to_key[row], scores[q, row])] for q, row in enumerate(best)]


def word_pieces_shrinking(word, vocab, unk_token="[UNK]", max_chars=100):
    if len(word) > max_chars:
        return [unk_token]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start and ("##" * (start > 0) + word[start:end]) not in vocab:
            end -= 1
        if end == start:
            return [unk_token]
        pieces.append("##" * (start > 0) + word[start:end])
        start = end
    return pieces


REWRITTEN = [(COSINE, cosine_in_float64), (COSINE, cosine_unit_rows_first), (COSINE, cosine_by_einsum),
             (ANALOGY, analogies_one_at_a_time), (ANALOGY, analogies_in_float64), (WORDPIECE, word_pieces_shrinking)]


@pytest.mark.parametrize("exercise,fn", REWRITTEN, ids=[fn.__name__ for _, fn in REWRITTEN])
def test_a_correct_function_written_another_way_passes_far_inside_the_bound(exercise, fn):
    theirs, reference = exercise.run(fn), reference_results(exercise)
    assert list(theirs) == list(reference)
    assert max(compare(theirs[name], expected) for name, expected in reference.items()) < 0.1
    result = check(exercise.name, fn)
    assert result.passed, result.message


# -- a learner's function that goes wrong in other ways: one line ----------------------------------------

def test_an_analogy_that_changes_the_vectors_in_place_gets_one_line_and_spoils_nothing():
    def normalises_in_place(self, questions, topn=1, restrict_vocab=None, batch_size=64):
        self.vectors /= np.linalg.norm(self.vectors, axis=1, keepdims=True)

    result = check("analogy", normalises_in_place)
    assert not result.passed and "raised ValueError" in result.message and "read-only" in result.message
    assert "\n" not in result.message
    assert check("analogy", analogies_one_at_a_time).passed


@pytest.mark.parametrize("name,fn,words", [
    ("analogy", lambda self, questions, **_: [("queen", 0.8) for _ in questions],
     "return one list of (word, cosine) pairs a question"),
    ("analogy", lambda self, questions, **_: [[("queen", 0.8)]], "gave 1 answers to 42 questions"),
    ("wordpiece", lambda word, vocab, unk_token="[UNK]", max_chars=100: word, "return a list of str"),
], ids=["analogy: flat pairs", "analogy: too few", "wordpiece: a str"])
def test_a_wrong_return_form_gets_one_line(name, fn, words):
    result = check(name, fn)
    assert not result.passed and words in result.message, result.message
    assert "\n" not in result.message


def test_a_wrong_word_is_shown_with_the_right_one():
    """Words and pieces have no difference to measure: the check shows what came and what was expected."""
    def a_minus_b_plus_c(self, questions, topn=1, restrict_vocab=None, batch_size=64):
        swapped = [(b, a, c) for a, b, c in questions]
        return analogies_one_at_a_time(self, swapped, topn, restrict_vocab, batch_size)

    result = check("analogy", a_minus_b_plus_c)
    assert result.message.startswith("analogy: answer to athens : greece :: baghdad : ? is 'kabul', expected 'iraq'")
    assert result.mistake == "a - b + c"
