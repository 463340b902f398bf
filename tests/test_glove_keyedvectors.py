"""gensim's KeyedVectors tests, ported to glove's WordVectors, with gensim itself as the reference.

The tests of gensim/test/test_keyedvectors.py, and the word2vec-format, analogy-evaluation and Word Mover's
Distance (TestWMD) tests of gensim/test/test_word2vec.py, that apply to a word-vector store are written again
here, from what each one checks. Where gensim's test checks a number written into the test, this one also
checks gensim's own answer on the same vectors. gensim has no tests of intersect_word2vec_format and
resize_vectors: they are checked against gensim's own results. Then every method of the gensim surface is
compared with gensim on GloVe 6B 50d, on seeded random draws; each comparison records its largest difference
(printed at the end of the run, "glove vs gensim: ...").

gensim's tests that do not apply, and why, are listed in NOT_PORTED at the end.
"""

import functools
import warnings

import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.test.utils import datapath

from conftest import assert_close
from glove import UnknownWordError, WordVectors, formats
from glove.formats import TruncatedFileError

pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated `init_sims`:DeprecationWarning")


@pytest.fixture
def euclidean():
    """gensim's euclidean_vectors.bin (2747 words, 10 dimensions, word2vec binary): (ours, gensim's)."""
    path = datapath("euclidean_vectors.bin")
    return WordVectors.load(path), KeyedVectors.load_word2vec_format(path, binary=True)


@pytest.fixture(scope="module")
def glove_6b(glove_6b_50d_files):
    """GloVe 6B 50d from the shipped arrays, as glove and as gensim hold it: (ours, gensim's, rng)."""
    import pyarrow.parquet as pq

    npy, parquet = glove_6b_50d_files
    vectors = np.ascontiguousarray(np.load(npy))
    words = pq.read_table(parquet).column("index").to_pylist()
    kv = KeyedVectors(50)
    kv.add_vectors(words, vectors)
    return WordVectors(words, vectors), kv


def words_of(answers):
    return [word for word, _ in answers]


def compare(name, ours, theirs, atol=1e-6):
    """Same words in the same order, and scores within atol; the difference goes into the run's summary."""
    assert words_of(ours) == words_of(theirs), name
    assert_close(name, [s for _, s in ours], [float(s) for _, s in theirs], atol=atol, kind=f"glove vs gensim: {name}")


# ----- gensim's test_keyedvectors.py, TestKeyedVectors ------------------------------------------------------------


def test_most_similar(euclidean):
    ours, theirs = euclidean
    assert words_of(ours.most_similar("war", topn=5)) == ["conflict", "administration", "terrorism", "call", "israel"]
    compare("most_similar", ours.most_similar("war", topn=5), theirs.most_similar("war", topn=5), atol=0)


def test_most_similar_vector(euclidean):
    ours, theirs = euclidean
    positive = ours.vectors[0:5]  # a matrix: one vector per row
    compare("most_similar", ours.most_similar(positive=positive), theirs.most_similar(positive=positive), atol=0)


@pytest.mark.parametrize("method", ["most_similar", "most_similar_cosmul"])
def test_most_similar_parameter_types(euclidean, method):
    ours, theirs = euclidean
    call = functools.partial(getattr(ours, method), topn=5)
    position, position_list = call("war", "peace"), call(["war"], ["peace"])
    keyword, keyword_list = call(positive="war", negative="peace"), call(positive=["war"], negative=["peace"])
    assert position == position_list == keyword == keyword_list
    compare(method, position, getattr(theirs, method)("war", "peace", topn=5), atol=0)


def test_vectors_for_all_list(euclidean):
    ours, theirs = euclidean
    words = ["conflict", "administration", "terrorism", "an out-of-vocabulary word", "another out-of-vocabulary word"]
    subset = ours.vectors_for_all(words)
    assert len(subset) == 3 == len(theirs.vectors_for_all(words))
    assert np.array_equal(subset["conflict"], theirs["conflict"])
    assert subset.index_to_key == theirs.vectors_for_all(words).index_to_key
    same = ours.vectors_for_all(words, allow_inference=False, copy_vecattrs=True)  # gensim's keywords are taken
    assert same.index_to_key == theirs.vectors_for_all(words, allow_inference=False, copy_vecattrs=True).index_to_key


def test_most_similar_topn(euclidean):
    ours, theirs = euclidean
    assert len(ours.most_similar("war", topn=5)) == 5 and len(ours.most_similar("war", topn=10)) == 10
    assert len(ours.most_similar("war", topn=None)) == len(ours)
    assert np.array_equal(ours.most_similar("war", topn=None), theirs.most_similar("war", topn=None))
    assert ours.most_similar("war", topn=0) == [] == ours.most_similar("war", topn=np.uint8(0))


def test_relative_cosine_similarity(euclidean):
    ours, theirs = euclidean
    synonyms = ["good", "goodness", "commodity", "trade_good", "full", "estimable", "honorable", "respectable",
                "beneficial", "just", "upright", "adept", "expert", "practiced", "proficient", "skillful", "skilful",
                "dear", "near", "dependable", "safe", "secure", "right", "ripe", "well", "effective", "in_effect",
                "in_force", "serious", "sound", "salutary", "honest", "undecomposed", "unspoiled", "unspoilt",
                "thoroughly", "soundly"]  # WordNet's synonyms of "good", as in gensim's test
    cosines = sorted((ours.similarity("good", s) for s in synonyms if s in ours), reverse=True)
    by_wordnet = ours.similarity("good", "nice") / sum(cosines[:10])
    rcs = ours.relative_cosine_similarity("good", "nice", 10)
    assert by_wordnet >= rcs and np.isclose(by_wordnet, rcs, 0, 0.125)
    assert ours.relative_cosine_similarity("good", "worst", 10) < 0.10
    assert rcs == theirs.relative_cosine_similarity("good", "nice", 10)


def test_most_similar_raises_keyerror(euclidean):
    ours, _ = euclidean
    with pytest.raises(KeyError):
        ours.most_similar("not_in_vocab")


def test_most_similar_restrict_vocab(euclidean):
    ours, theirs = euclidean
    assert set(words_of(ours.most_similar("war", topn=5, restrict_vocab=5))) == set(ours.index_to_key[:5])
    compare("most_similar", ours.most_similar("war", topn=5, restrict_vocab=5),
            theirs.most_similar("war", topn=5, restrict_vocab=5), atol=0)


def test_most_similar_with_vector_input(euclidean):
    ours, theirs = euclidean
    expected = ["war", "conflict", "administration", "terrorism", "call"]
    assert words_of(ours.most_similar([ours["war"]], topn=5)) == expected
    assert words_of(ours.similar_by_vector(ours["war"], topn=5)) == expected
    compare("similar_by_vector", ours.similar_by_vector(ours["war"], topn=5), theirs.similar_by_vector(theirs["war"], topn=5), 0)


def test_most_similar_to_given(euclidean):
    ours, theirs = euclidean
    assert ours.most_similar_to_given("war", ["terrorism", "call", "waging"]) == "terrorism"
    assert theirs.most_similar_to_given("war", ["terrorism", "call", "waging"]) == "terrorism"


def test_similar_by_word(euclidean):
    ours, theirs = euclidean
    assert words_of(ours.similar_by_word("war", topn=5)) == ["conflict", "administration", "terrorism", "call", "israel"]
    assert ours.similar_by_word("war", topn=5) == ours.similar_by_key("war", topn=5) == ours.most_similar("war", topn=5)
    compare("similar_by_word", ours.similar_by_word("war", topn=5), theirs.similar_by_word("war", topn=5), atol=0)


def test_distance_and_similarity(euclidean):
    ours, theirs = euclidean
    assert np.isclose(ours.distance("war", "conflict"), 0.06694602) and ours.distance("war", "war") == 0
    assert np.isclose(ours.similarity("war", "war"), 1) and np.isclose(ours.similarity("war", "conflict"), 0.93305397)
    assert ours.similarity("war", "conflict") == theirs.similarity("war", "conflict")  # to the last bit
    assert ours.distance("war", "conflict") == theirs.distance("war", "conflict")
    assert ours.similarity(w1="war", w2="peace") == ours.similarity("war", "peace")  # gensim's keyword names


def test_closer_than_and_rank(euclidean):
    ours, theirs = euclidean
    assert ours.closer_than("war", "war") == [] == theirs.closer_than("war", "war")
    assert set(ours.closer_than("war", "terrorism")) == {"conflict", "administration"}
    assert ours.closer_than("war", "israel") == theirs.closer_than("war", "israel")
    assert ours.rank("war", "war") == 1 and ours.rank("war", "terrorism") == 3
    assert ours.rank("war", "peace") == theirs.rank("war", "peace")


def test_add_single(euclidean):
    ours, _ = euclidean
    entities = [f"___some_entity{i}_not_present_in_keyed_vectors___" for i in range(5)]
    vectors = [np.random.default_rng(i).standard_normal(ours.vector_size) for i in range(5)]
    for entity, vector in zip(entities, vectors):  # on a filled store
        ours.add_vectors(entity, vector)
    for entity, vector in zip(entities, vectors):
        assert np.allclose(ours[entity], vector)
    empty = WordVectors([], np.zeros((0, ours.vector_size)))  # on an empty store
    for entity, vector in zip(entities, vectors):
        empty.add_vectors(entity, vector)
    for entity, vector in zip(entities, vectors):
        assert np.allclose(empty[entity], vector)


def test_add_multiple(euclidean):
    ours, _ = euclidean
    entities = [f"___some_entity{i}_not_present_in_keyed_vectors___" for i in range(5)]
    vectors = [np.random.default_rng(i).standard_normal(ours.vector_size) for i in range(5)]
    size = len(ours)
    ours.add_vectors(entities, vectors, replace=False)
    assert len(ours) == size + len(entities)
    for entity, vector in zip(entities, vectors):
        assert np.allclose(ours[entity], vector)
    empty = WordVectors([], np.zeros((0, ours.vector_size)))
    empty[entities] = vectors
    assert len(empty) == len(entities)
    for entity, vector in zip(entities, vectors):
        assert np.allclose(empty[entity], vector)


def test_add_type():
    store = WordVectors([], np.zeros((0, 2)))
    assert store.vectors.dtype == np.float32
    store.add_vectors(["a"], np.array([1.0, 1.0], dtype=np.float64).reshape(1, -1))
    assert store.vectors.dtype == np.float32


def test_set_item(euclidean):
    ours, _ = euclidean
    rng = np.random.default_rng(0)
    size = len(ours)
    vector = rng.standard_normal(ours.vector_size)
    ours["___some_new_entity___"] = vector  # a new word
    assert len(ours) == size + 1 and np.allclose(ours["___some_new_entity___"], vector)
    vector = rng.standard_normal(ours.vector_size)
    ours["war"] = vector  # a word already there: replaced
    assert len(ours) == size + 1 and np.allclose(ours["war"], vector)
    entities = ["war", "___some_new_entity1___", "___some_new_entity2___", "terrorism", "conflict"]
    vectors = [rng.standard_normal(ours.vector_size) for _ in entities]
    ours[entities] = vectors  # several at once
    assert len(ours) == size + 3
    for entity, vector in zip(entities, vectors):
        assert np.allclose(ours[entity], vector)
    # Changed vectors are what the next query sees (gensim keeps stale norms here and fails on the shapes).
    assert ours.most_similar("war", topn=1)[0][0] == ours.similar_by_vector(ours["war"], topn=2)[1][0]


@pytest.mark.parametrize("errors,words", [("replace", ["ありがとう\ufffd", "どういたしまして\ufffd"]),
                                          ("ignore", ["ありがとう", "どういたしまして"])])
def test_load_model_with_decoding_errors(errors, words):
    path = datapath("w2v_keyedvectors_load_test.modeldata")  # words cut inside a UTF-8 character
    ours = WordVectors.load_word2vec_format(path, binary=False, unicode_errors=errors)
    assert ours.index_to_key == words == KeyedVectors.load_word2vec_format(path, unicode_errors=errors).index_to_key
    assert ours.key_to_index[words[0]] == 0 and ours.key_to_index[words[1]] == 1
    assert np.array_equal(ours.get_vector(words[0]), np.float32([0.6, 0.6, 0.6]))
    assert np.array_equal(ours.get_vector(words[1]), np.float32([0.1, 0.2, 0.3]))


def test_load_model_with_decoding_errors_strict():
    path = datapath("w2v_keyedvectors_load_test.modeldata")
    with pytest.raises(UnicodeDecodeError) as caught:  # what gensim raises, so gensim's handlers catch ours
        WordVectors.load_word2vec_format(path, binary=False, unicode_errors="strict")
    assert str(caught.value).startswith(f"{path}, line 2: is not UTF-8 (invalid continuation byte")
    with pytest.raises(UnicodeDecodeError):
        KeyedVectors.load_word2vec_format(path, binary=False, unicode_errors="strict")


def pseudorandom_store(count=20, size=100):
    rng = np.random.default_rng(20)
    return WordVectors([str(i) for i in range(count)], (rng.random((count, size), dtype=np.float32) - 0.5) / size)


@pytest.mark.parametrize("binary", [False, True])
def test_save_reload(tmp_path, binary):
    store = pseudorandom_store()
    path = tmp_path / "kv.txt"
    store.save_word2vec_format(path, binary=binary)
    for back in (WordVectors.load_word2vec_format(path, binary=binary), KeyedVectors.load_word2vec_format(path, binary=binary)):
        assert back.index_to_key == store.index_to_key and np.array_equal(back.vectors, store.vectors)


def test_no_header(tmp_path):
    store = pseudorandom_store()
    path = tmp_path / "kv.txt"
    store.save_word2vec_format(path, binary=False, write_header=False)
    for back in (WordVectors.load_word2vec_format(path, binary=False, no_header=True),
                 KeyedVectors.load_word2vec_format(path, binary=False, no_header=True)):
        assert back.index_to_key == store.index_to_key and np.array_equal(back.vectors, store.vectors)


def test_get_mean_vector(euclidean):
    ours, theirs = euclidean
    keys = ["conflict", "administration", "terrorism", "call", "an out-of-vocabulary word"]
    weights = [1, 2, 3, 1, 2]
    expected_1 = np.float32([0.02000151, -0.12685453, 0.09196121, 0.25514853, 0.25740655, -0.11134843, -0.0502661,
                             -0.19278568, -0.83346179, -0.12068878])  # the numbers of gensim's test
    expected_2 = np.float32([-0.0145228, -0.11530358, 0.1169825, 0.22537769, 0.29353586, -0.10458107, -0.05272481,
                             -0.17547795, -0.84245106, -0.10356515])
    expected_3 = np.float32([0.01343237, -0.47651053, 0.45645328, 0.98304356, 1.1840123, -0.51647933, -0.25308795,
                             -0.77931081, -3.55954733, -0.55429711])
    assert np.allclose(ours.get_mean_vector(keys), expected_1)
    assert np.allclose(ours.get_mean_vector(keys, weights), expected_2)
    assert np.allclose(ours.get_mean_vector(keys, pre_normalize=False), expected_3)
    for options in (dict(), dict(weights=weights), dict(pre_normalize=False), dict(post_normalize=True)):
        assert np.array_equal(ours.get_mean_vector(keys, **options), theirs.get_mean_vector(keys, **options))
    with pytest.raises(UnknownWordError, match="an out-of-vocabulary word"):
        ours.get_mean_vector(keys, ignore_missing=False)
    with pytest.raises(ValueError, match="cannot compute the mean of no words"):
        ours.get_mean_vector([])


# ----- gensim's test_keyedvectors.py, LoadWord2VecFormatTest: binary files, chunks and limits ----------------------


def write_binary(path, words_and_vectors):
    """A word2vec binary file as gensim's test writes it: the header, then 'word ' + float32s, no newlines."""
    with open(path, "wb") as f:
        f.write(f"{len(words_and_vectors)} {len(next(iter(words_and_vectors.values())))}\n".encode())
        for word, vector in words_and_vectors.items():
            f.write(word.encode() + b" " + np.float32(vector).tobytes())


@pytest.mark.parametrize("words_and_vectors", [
    {"abc": [1, 2, 3], "cde": [4, 5, 6], "def": [7, 8, 9]},
    {"abc": [1, 2, 3], "cdefg": [4, 5, 6], "d": [7, 8, 9]},
    {"\nabc": [1, 2, 3], "cdefdg": [4, 5, 6], "\n\ndef": [7, 8, 9]},  # newlines before words, stripped
])
@pytest.mark.parametrize("limit", [None, 1, 2])
def test_load_word2vec_binary_with_limit(tmp_path, words_and_vectors, limit):
    path = tmp_path / "w2v.bin"
    write_binary(path, words_and_vectors)
    ours = WordVectors.load_word2vec_format(path, binary=True, limit=limit)
    expected = {word.lstrip(): vector for word, vector in list(words_and_vectors.items())[:limit]}
    assert len(ours) == len(expected)
    for word, vector in expected.items():
        assert list(ours[word]) == vector
    theirs = KeyedVectors.load_word2vec_format(path, binary=True, limit=limit)
    assert ours.index_to_key == theirs.index_to_key and np.array_equal(ours.vectors, theirs.vectors)


def test_a_binary_file_whose_first_word_starts_with_a_newline_is_recognised(tmp_path):
    path = tmp_path / "w2v.bin"
    write_binary(path, {"\nabc": [1, 2, 3], "cde": [4, 5, 6]})
    assert WordVectors.load(path).index_to_key == ["abc", "cde"]  # recognised without binary=True too


# ----- gensim's test_word2vec.py: the word2vec-format tests that apply ------------------------------------------------


@pytest.fixture
def trained_like(euclidean):
    """Vectors to write and read back, as gensim's tests write a trained model's vectors."""
    return euclidean[0]


def test_persistence_word2vec_format(tmp_path, trained_like):
    path = tmp_path / "w2v.bin"
    trained_like.save_word2vec_format(path, binary=True)
    binary = WordVectors.load_word2vec_format(path, binary=True)
    assert np.allclose(trained_like["war"], binary["war"])
    normalised = WordVectors.load_word2vec_format(path, binary=True)
    normalised.unit_normalize_all()
    assert not np.allclose(trained_like["war"], normalised["war"])
    assert np.allclose(trained_like.get_vector("war", norm=True), normalised["war"])
    assert len(WordVectors.load_word2vec_format(path, binary=True, limit=3).vectors) == 3
    half = WordVectors.load_word2vec_format(path, binary=True, datatype=np.float16)
    assert binary.vectors.nbytes == half.vectors.nbytes * 2
    theirs = KeyedVectors.load_word2vec_format(path, binary=True, datatype=np.float16)
    assert np.array_equal(half.vectors, theirs.vectors) and half.vectors.dtype == theirs.vectors.dtype


def test_persistence_word2vec_format_non_binary(tmp_path, trained_like):
    path = tmp_path / "w2v.txt"
    trained_like.save_word2vec_format(path, binary=False)
    text = WordVectors.load_word2vec_format(path, binary=False)
    assert np.allclose(trained_like["war"], text["war"], atol=1e-6)
    text.unit_normalize_all()
    assert not np.allclose(trained_like["war"], text["war"], atol=1e-6)
    assert np.allclose(trained_like.get_vector("war", norm=True), text["war"], atol=1e-4)
    theirs = KeyedVectors.load_word2vec_format(path, binary=False)
    theirs.unit_normalize_all()
    assert np.array_equal(text.vectors, theirs.vectors)


@pytest.mark.parametrize("binary", [False, True])
def test_too_short_word2vec_format(tmp_path, trained_like, binary):
    path = tmp_path / "w2v"
    trained_like.save_word2vec_format(path, binary=binary)
    with open(path, "r+b") as f:
        f.write(b"9999")  # a header that announces more words than the file holds
    with pytest.raises(EOFError) as caught:  # the class gensim raises, and gensim's handlers catch
        WordVectors.load_word2vec_format(path, binary=binary)
    assert isinstance(caught.value, TruncatedFileError) and str(caught.value).startswith(f"{path}, ")
    with pytest.raises(EOFError):
        KeyedVectors.load_word2vec_format(path, binary=binary)


def test_similarities_and_similar_by(trained_like):
    ours = trained_like
    assert ours.n_similarity(["war", "peace"], ["peace", "war"])
    assert ours.n_similarity(["war"], ["peace"]) == pytest.approx(ours.similarity("war", "peace"), abs=1e-7)
    for empty in ((["war", "peace"], []), ([], ["war", "peace"]), ([], [])):
        with pytest.raises(ZeroDivisionError):
            ours.n_similarity(*empty)
    assert ours.similar_by_word("war", topn=10) == ours.most_similar(positive="war", topn=10)
    assert ours.similar_by_vector(ours["war"], topn=10) == ours.most_similar([ours["war"]], topn=10)


def test_glove2word2vec_conversion(tmp_path, gensim_test_glove):
    """gensim's test_glove2word2vec: a GloVe file written as word2vec text loads, and n_similarity works."""
    path = tmp_path / "converted.w2v"
    WordVectors.load(gensim_test_glove).save_word2vec_format(path)
    back = WordVectors.load_word2vec_format(path)
    assert np.allclose(back.n_similarity(["the", "and"], ["and", "the"]), 1.0)


# ----- the rest of the surface, against gensim ------------------------------------------------------------------------


def test_lookup_methods_match_gensim(euclidean):
    ours, theirs = euclidean
    for key in ("war", 0, 5, np.int64(7)):
        assert ours.get_index(key) == theirs.get_index(key)
        assert np.array_equal(ours.get_vector(key), theirs.get_vector(key))
        assert np.array_equal(ours.get_vector(key, norm=True), theirs.get_vector(key, norm=True))
    assert ours.get_index("nope", default=-1) == theirs.get_index("nope", default=-1) == -1
    assert ours.has_index_for("war") and not ours.has_index_for("nope") and ours.has_index_for(3)
    assert not ours.has_index_for(len(ours)) and not theirs.has_index_for(len(theirs))
    with pytest.raises(KeyError, match="word 'nope' is not in the vocabulary"):
        ours.get_index("nope")
    with pytest.raises(ValueError, match="read-only"):
        ours["war"][0] = 1.0  # as in gensim: a single vector is a read-only view
    ours.fill_norms()
    theirs.fill_norms()
    assert np.array_equal(ours.norms, theirs.norms)
    assert np.array_equal(ours.get_normed_vectors(), theirs.get_normed_vectors())


def test_vectors_are_writable_in_place_as_in_gensim(euclidean, tmp_path):
    ours, theirs = euclidean
    ours.vectors[0] *= 2
    theirs.vectors[0] *= 2
    ours.fill_norms(force=True)
    theirs.fill_norms(force=True)
    compare("most_similar", ours.most_similar(ours.index_to_key[0]), theirs.most_similar(theirs.index_to_key[0]), 0)
    ours.unit_normalize_all()
    theirs.unit_normalize_all()
    assert np.array_equal(ours.vectors, theirs.vectors) and np.array_equal(ours.norms, theirs.norms)
    compare("most_similar", ours.most_similar("war"), theirs.most_similar("war"), 0)


def test_memory_mapped_vectors_say_they_are_read_only(euclidean, tmp_path):
    ours, _ = euclidean
    path = tmp_path / "v.store"
    ours.save(path)
    mapped = WordVectors.load(path, mmap=True)
    with pytest.raises(ValueError, match="read-only"):  # numpy's own words
        mapped.vectors[0] = 0
    with pytest.raises(ValueError, match=rf"the vectors are memory-mapped read-only from {path} \(mmap=True\): "
                                         "load with mmap='c' to change them in memory, or without mmap"):
        mapped.unit_normalize_all()
    mapped["war"] = np.ones(10)  # adding or replacing copies the rows into memory, as gensim's add_vectors does
    assert np.array_equal(mapped["war"], np.ones(10, dtype=np.float32))
    cow = WordVectors.load(path, mmap="c")  # copy-on-write: writable in memory, the file unchanged
    cow.vectors[0] = 0
    cow.unit_normalize_all()
    assert np.array_equal(WordVectors.load(path).vectors, ours.vectors)
    again = WordVectors.load(path, mmap=True)
    again.vectors = np.array(again.vectors)  # a writable copy replaces the mapped rows: nothing is read-only now
    again.unit_normalize_all()
    assert np.allclose(np.linalg.norm(again.vectors, axis=1), 1, atol=1e-6)


def test_add_vectors_follows_gensim_where_it_is_sane():
    store = WordVectors(["a", "b"], [[1, 0], [0, 1]])
    store.add_vectors(["b", "c", "c"], [[5, 5], [1, 1], [2, 2]])  # b kept (no replace), c once: its first vector
    assert store.index_to_key == ["a", "b", "c"] and store["b"].tolist() == [0, 1] and store["c"].tolist() == [1, 1]
    store.add_vectors(["b", "d", "d"], [[5, 5], [1, 1], [2, 2]], replace=True)  # replace: the last vector wins
    assert store.index_to_key == ["a", "b", "c", "d"] and store["b"].tolist() == [5, 5] and store["d"].tolist() == [2, 2]
    assert store.add_vector("e", [3, 4]) == 4 and store.add_vector("a", [9, 9]) == 0 and store["a"].tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"2 keys need vectors of shape \(2, 2\), not \(2, 3\)"):
        store.add_vectors(["x", "y"], np.ones((2, 3)))
    with pytest.raises(ValueError, match="glove keeps no per-word attributes"):
        store.add_vectors(["x"], np.ones((1, 2)), extras={"count": np.ones(1)})
    assert store.most_similar("e", topn=1)[0][0] in ("b", "c", "d")


def test_most_similar_clip_and_indexer_like_gensim(euclidean):
    ours, theirs = euclidean
    for options in (dict(clip_start=10, clip_end=300), dict(clip_end=50), dict(clip_start=2000),
                    dict(clip_start=10, clip_end=300, restrict_vocab=100)):
        compare("most_similar", ours.most_similar("war", **options), theirs.most_similar("war", **options), 0)
        assert np.array_equal(ours.most_similar("war", topn=None, **options),
                              theirs.most_similar("war", topn=None, **options))

    class Indexer:  # gensim's approximate-neighbour interface: most_similar(vector, topn)
        def most_similar(self, vector, topn):
            return [("asked", float(vector[0]), topn)]

    assert ours.most_similar("war", indexer=Indexer()) == theirs.most_similar("war", indexer=Indexer())


def test_most_similar_cosmul_restrict_vocab_follows_gensim_unless_asked(euclidean):
    ours, theirs = euclidean
    with pytest.warns(UserWarning, match="most_similar_cosmul searches every word, as gensim 4.4 does"):
        default = ours.most_similar_cosmul("war", topn=5, restrict_vocab=50)
    compare("most_similar_cosmul", default, theirs.most_similar_cosmul("war", topn=5, restrict_vocab=50), 0)
    assert default == ours.most_similar_cosmul("war", topn=5)  # gensim 4.4 ignores restrict_vocab here
    restricted = ours.most_similar_cosmul("war", topn=5, restrict_vocab=50, apply_restrict_vocab=True)
    assert all(ours.get_index(word) < 50 for word in words_of(restricted)) and restricted != default


def test_distances_and_cosine_similarities_match_gensim(euclidean):
    ours, theirs = euclidean
    assert np.array_equal(ours.distances("war"), theirs.distances("war"))
    assert np.array_equal(ours.distances("war", ["peace", "call"]), theirs.distances("war", ["peace", "call"]))
    assert np.array_equal(ours.distances(ours["war"]), theirs.distances(theirs["war"]))
    assert np.array_equal(WordVectors.cosine_similarities(ours["war"], ours.vectors[:9]),
                          KeyedVectors.cosine_similarities(theirs["war"], theirs.vectors[:9]))


def test_rank_by_centrality_and_doesnt_match_match_gensim(euclidean):
    ours, theirs = euclidean
    group = ["war", "peace", "conflict", "terrorism", "call"]
    assert [(float(s), w) for s, w in theirs.rank_by_centrality(group)] == ours.rank_by_centrality(group)
    assert ours.doesnt_match(group) == theirs.doesnt_match(group)


# ----- every method on GloVe 6B 50d, on seeded draws, against gensim -----------------------------------------------

SEED = 20240605


@pytest.fixture(scope="module")
def draws(glove_6b):
    ours, _ = glove_6b
    rng = np.random.default_rng(SEED)
    common = [ours.index_to_key[i] for i in rng.choice(30000, 120, replace=False)]
    anywhere = [ours.index_to_key[i] for i in rng.choice(len(ours), 60, replace=False)]
    return common + anywhere


def test_pairwise_methods_match_gensim_on_glove_6b(glove_6b, draws):
    ours, theirs = glove_6b
    pairs = list(zip(draws, draws[1:] + draws[:1]))
    for name in ("similarity", "distance"):
        mine = [getattr(ours, name)(a, b) for a, b in pairs]
        reference = [float(getattr(theirs, name)(a, b)) for a, b in pairs]
        assert_close(name, mine, reference, atol=0, kind=f"glove vs gensim: {name}")
    groups = [(draws[i : i + 3], draws[i + 3 : i + 5]) for i in range(0, 150, 5)]
    assert_close("n_similarity", [ours.n_similarity(a, b) for a, b in groups],
                 [float(theirs.n_similarity(a, b)) for a, b in groups], atol=0, kind="glove vs gensim: n_similarity")
    for a, b in groups[:10]:
        assert_close("get_mean_vector", ours.get_mean_vector(a + b), theirs.get_mean_vector(a + b), atol=0,
                     kind="glove vs gensim: get_mean_vector")
        assert_close("distances", ours.distances(a[0], b), theirs.distances(a[0], b), atol=0,
                     kind="glove vs gensim: distances")
        assert ours.most_similar_to_given(a[0], a[1:] + b) == theirs.most_similar_to_given(a[0], a[1:] + b)
    assert_close("distances", ours.distances("king"), theirs.distances("king"), atol=0, kind="glove vs gensim: distances")


def test_ranking_methods_match_gensim_on_glove_6b(glove_6b, draws):
    ours, theirs = glove_6b
    for word in draws[:40]:
        compare("similar_by_word", ours.similar_by_word(word, topn=10), theirs.similar_by_word(word, topn=10), atol=0)
        compare("similar_by_vector", ours.similar_by_vector(ours[word] * 3, topn=10),
                theirs.similar_by_vector(theirs[word] * 3, topn=10), atol=0)
        compare("most_similar clip", ours.most_similar(word, clip_start=100, clip_end=50000),
                theirs.most_similar(word, clip_start=100, clip_end=50000), atol=0)
        assert ours.relative_cosine_similarity(word, "king") == theirs.relative_cosine_similarity(word, "king")
    for a, b in zip(draws[:8], draws[8:16]):
        assert ours.rank(a, b) == theirs.rank(a, b)
    assert ours.closer_than("king", "queen") == theirs.closer_than("king", "queen")


def test_rank_by_centrality_matches_gensim_on_glove_6b(glove_6b, draws):
    ours, theirs = glove_6b
    for i in range(0, 100, 5):
        group = draws[i : i + 5]
        mine, reference = ours.rank_by_centrality(group), theirs.rank_by_centrality(group)
        assert [w for _, w in mine] == [w for _, w in reference]
        assert_close("rank_by_centrality", [s for s, _ in mine], [float(s) for s, _ in reference], atol=0,
                     kind="glove vs gensim: rank_by_centrality")


def test_unit_normalize_all_matches_gensim_on_glove_6b(glove_6b_50d_files):
    import pyarrow.parquet as pq

    npy, parquet = glove_6b_50d_files
    vectors = np.ascontiguousarray(np.load(npy))[:50000]
    words = pq.read_table(parquet).column("index").to_pylist()[:50000]
    ours, theirs = WordVectors(words, np.array(vectors)), KeyedVectors(50)
    theirs.add_vectors(words, np.array(vectors))
    ours.unit_normalize_all()
    theirs.unit_normalize_all()
    assert np.array_equal(ours.vectors, theirs.vectors)
    compare("most_similar after unit_normalize_all", ours.most_similar("king"), theirs.most_similar("king"), atol=0)


# ----- gensim's test_word2vec.py, test_evaluate_word_analogies: similarity_function is taken and ignored -------------


def test_evaluate_word_analogies(glove_6b, tmp_path):
    """gensim's test, on GloVe 6B 50d (the first 30 questions of each section) instead of a model trained on the Lee
    corpus: similarity_function='most_similar_cosmul' gives the same score and sections (gensim never reads the
    argument), the score is a share, and each section has its three keys."""
    ours, theirs = glove_6b
    path = tmp_path / "questions.txt"
    lines, count = [], 0
    for line in open(datapath("questions-words.txt"), encoding="utf-8"):
        count = 0 if line.startswith(": ") else count + 1
        if count <= 30:
            lines.append(line)
    path.write_text("".join(lines), encoding="utf-8")
    score, sections = ours.evaluate_word_analogies(path, restrict_vocab=30000)
    with pytest.warns(UserWarning, match="similarity_function='most_similar_cosmul' is ignored, as gensim 4.4"):
        score_cosmul, sections_cosmul = ours.evaluate_word_analogies(path, restrict_vocab=30000,
                                                                     similarity_function="most_similar_cosmul")
    assert (score, sections) == (score_cosmul, sections_cosmul)
    assert 0.0 <= score <= 1.0 and len(sections) > 0
    assert {"section", "correct", "incorrect"} <= set(sections[0])
    assert (score, sections) == theirs.evaluate_word_analogies(path, restrict_vocab=30000,
                                                               similarity_function="most_similar_cosmul")


# ----- wmdistance: gensim's test_word2vec.py TestWMD, and gensim's own distances on GloVe 6B 50d ------------------

SENTENCE_1 = ["human", "interface", "computer"]
SENTENCE_2 = ["survey", "user", "computer", "system", "response", "time"]


def test_wmdistance_nonzero(glove_6b):
    ours, _ = glove_6b
    assert ours.wmdistance(SENTENCE_1, SENTENCE_2) != 0.0


def test_wmdistance_symmetry(glove_6b):
    ours, _ = glove_6b
    assert np.allclose(ours.wmdistance(SENTENCE_1, SENTENCE_2), ours.wmdistance(SENTENCE_2, SENTENCE_1))


def test_wmdistance_identical_sentences(glove_6b):
    ours, theirs = glove_6b
    assert ours.wmdistance(SENTENCE_2, SENTENCE_2) == 0.0 == theirs.wmdistance(SENTENCE_2, SENTENCE_2)


def wmd_bound(ours, documents, norm):
    """How far two correct WMDs of the same documents may be apart. gensim's costs are scipy's cdist, ours numpy's
    norm of the differences: the same float64 Euclidean distances of the same float32 rows, the D squares summed
    in another order, so each cost carries its own rounding of at most (D + 2) eps relative, and two costs differ by
    at most 2 (D + 2) eps times the largest. The transport value is the least sum of costs weighted by a plan whose
    weights add up to 1, so it moves by no more than the largest change of a cost; twice that leaves room for
    the rounding of the sum itself."""
    rows = np.array([ours.get_vector(w, norm=norm) for doc in documents for w in doc if w in ours], dtype=np.float64)
    largest = max(np.linalg.norm(a - b) for a in rows for b in rows)
    return 4 * (ours.vector_size + 2) * np.finfo(np.float64).eps * largest


def test_wmdistance_matches_gensim_on_glove_6b(glove_6b, draws):
    ours, theirs = glove_6b
    pairs = [(SENTENCE_1, SENTENCE_2), (["obama", "speaks", "media", "illinois"], ["president", "greets", "press", "chicago"]),
             (["the", "cat", "sat", "on", "the", "mat"], ["a", "dog", "lay", "on", "a", "rug", "rug"])]
    pairs += [(draws[i : i + 4] + draws[i : i + 2], draws[i + 4 : i + 11]) for i in range(0, 120, 12)]
    for norm in (True, False):
        for doc1, doc2 in pairs:
            reference = theirs.wmdistance(doc1, doc2, norm=norm)
            assert_close("wmdistance", ours.wmdistance(doc1, doc2, norm=norm), reference,
                         atol=wmd_bound(ours, (doc1, doc2), norm), kind="glove vs gensim: wmdistance")


def test_wmdistance_edge_cases_as_gensim(glove_6b):
    ours, theirs = glove_6b
    unknown = ["zzzznotaword", "qqqqnotaword"]
    with pytest.warns(UserWarning, match=r"^wmdistance: the first document is empty: the distance is inf, as in "
                                         r"gensim$"):
        assert ours.wmdistance([], SENTENCE_1) == float("inf") == theirs.wmdistance([], SENTENCE_1)
    with pytest.warns(UserWarning, match=r"^wmdistance: the second document has no word in the vocabulary: the "
                                         r"distance is inf, as in gensim$"):
        assert ours.wmdistance(SENTENCE_1, unknown) == float("inf") == theirs.wmdistance(SENTENCE_1, unknown)
    with pytest.warns(UserWarning, match=r"wmdistance ignores words not in the vocabulary: \['zzzznotaword'\]"):
        with_unknown = ours.wmdistance(SENTENCE_1 + unknown[:1], SENTENCE_2)
    assert with_unknown == ours.wmdistance(SENTENCE_1, SENTENCE_2)
    assert ours.wmdistance(["king", "king"], ["king"]) == 0.0 == theirs.wmdistance(["king", "king"], ["king"])
    repeated = ours.wmdistance(["king", "king", "queen"], ["man"])  # counts weigh the words, as in gensim
    assert repeated == pytest.approx((2 * ours.wmdistance(["king"], ["man"]) + ours.wmdistance(["queen"], ["man"])) / 3)


def test_wmdistance_refuses_what_gensim_would_misread():
    store = WordVectors(["a", "b", "c", "ab"], [[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    kv = KeyedVectors(2)
    kv.add_vectors(store.index_to_key, np.array(store.vectors))
    assert np.isfinite(kv.wmdistance("ab", "c"))  # gensim reads a string letter by letter: the words a and b
    with pytest.raises(TypeError, match=r"^wmdistance: document1 is the string 'ab'; a document is a list of words "
                                        r"\(split it first: 'ab'.split\(\)\)$"):
        store.wmdistance("ab", ["c"])
    # a and b have one direction: every cost between the documents is 0, and so is the distance (gensim: inf)
    assert kv.wmdistance(["a"], ["b"]) == float("inf")
    assert store.wmdistance(["a"], ["b"]) == 0.0
    assert store.wmdistance(["a"], ["b"], norm=False) == 1.0 == kv.wmdistance(["a"], ["b"], norm=False)


def test_wmdistance_without_pot_says_how_to_install_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ot", None)  # what `import ot` meets where POT is not installed
    store = WordVectors(["a", "b"], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ImportError) as caught:
        store.wmdistance(["a"], ["b"])
    assert str(caught.value) == ("wmdistance needs POT (Python Optimal Transport), which is not installed: "
                                 "pip install 'minibert[wmd]' (or pip install POT)")


# ----- the rest of gensim's KeyedVectors: intersect_word2vec_format, resize_vectors, and what needs word counts ------


@pytest.mark.parametrize("binary", [False, True])
def test_intersect_word2vec_format_matches_gensim(euclidean, tmp_path, binary):
    ours, theirs = euclidean
    rng = np.random.default_rng(11)
    words = ["war", "peace", "not_a_word_here", "conflict", "war"]  # war twice: the last one is merged, as in gensim
    other = KeyedVectors(10)
    other.add_vectors(words[:4], rng.standard_normal((4, 10)).astype(np.float32))
    path, text = tmp_path / "other.w2v", tmp_path / "other.txt"
    vectors = np.vstack([other.vectors, rng.standard_normal((1, 10))]).astype(np.float32)  # (5, 10)
    formats.write(path, words, vectors, format="word2vec-binary" if binary else "word2vec")  # war twice, as it is
    formats.write(text, words, vectors, format="word2vec")  # 9 digits: the same float32 values
    before = ours.most_similar("war")  # norms computed: the merge must make queries see the new vectors
    theirs.vectors_lockf = np.ones(len(theirs), dtype=np.float32)  # gensim's needs it (a trained model has one)
    theirs.intersect_word2vec_format(text)  # gensim 4.4's binary branch calls np.fromstring, gone in numpy 2
    with pytest.warns(UserWarning, match=r"words in the file more than once \(1, e.g. \['war'\]\): the last vector "
                                         "of each is taken, as gensim's intersect_word2vec_format takes it"):
        ours.intersect_word2vec_format(path, binary=binary, lockf=1.0)
    assert ours.index_to_key == theirs.index_to_key and "not_a_word_here" not in ours
    assert np.array_equal(ours.vectors, theirs.vectors)
    assert np.array_equal(ours["war"], vectors[4]) and np.array_equal(ours["peace"], vectors[1])
    fresh = WordVectors(ours.index_to_key, np.array(ours.vectors))
    assert ours.most_similar("war") == fresh.most_similar("war") != before  # gensim's norms stay stale here


def test_intersect_word2vec_format_refuses_another_dimension(euclidean, tmp_path):
    ours, _ = euclidean
    path = tmp_path / "other.w2v"
    WordVectors(["war"], np.ones((1, 3))).save_word2vec_format(path)
    with pytest.raises(ValueError) as caught:
        ours.intersect_word2vec_format(path)
    assert str(caught.value) == (f"{path}: its vectors have 3 dimensions, this store's have 10: they cannot be "
                                 "merged")


def test_resize_vectors_matches_gensim(euclidean):
    ours, theirs = euclidean
    for store in (ours, theirs):
        store.resize_vectors()  # the rows already match the words: nothing changes
    assert np.array_equal(ours.vectors, theirs.vectors)
    for store in (ours, theirs):  # gensim's way of growing a vocabulary: the words first, then rows for them
        store.index_to_key.extend(["new_word", "another_new_word"])
        store.key_to_index.update({"new_word": len(store.index_to_key) - 2, "another_new_word": len(store.index_to_key) - 1})
        store.resize_vectors(seed=5)
    assert ours.index_to_key == theirs.index_to_key and ours.vectors.shape == (2749, 10)
    assert np.array_equal(ours.vectors, theirs.vectors)  # gensim's seeded random rows, to the bit
    assert ours.most_similar("new_word", topn=3) == [(w, float(s)) for w, s in theirs.most_similar("new_word", topn=3)]


def test_resize_vectors_keeps_the_words_in_step(euclidean):
    ours, _ = euclidean
    ours.index_to_key.append("grown")  # key_to_index not updated: resize_vectors builds it again from the words
    ours.resize_vectors()
    assert ours.get_index("grown") == len(ours) - 1 and "grown" in ours
    del ours.index_to_key[-3:]
    with pytest.raises(ValueError) as caught:
        ours.resize_vectors()
    assert str(caught.value) == ("resize_vectors: index_to_key holds 2745 words but there are 2748 rows; it adds rows "
                                 "for words appended to index_to_key, and never drops rows (make a smaller store with "
                                 "vectors_for_all)")


@pytest.mark.parametrize("call", ["sort_by_descending_frequency", "get_vecattr", "set_vecattr"])
def test_what_needs_word_counts_says_why_it_is_not_here(euclidean, call):
    ours, theirs = euclidean
    arguments = {"sort_by_descending_frequency": (), "get_vecattr": ("war", "count"),
                 "set_vecattr": ("war", "count", 5)}[call]
    getattr(theirs, call)(*arguments)  # gensim made up counts for the file's words (N, N - 1, ...)
    with pytest.raises(ValueError) as caught:
        getattr(ours, call)(*arguments)
    assert str(caught.value).startswith(f"{call}: glove keeps no word counts or other per-word attributes")
    assert "index_to_key" in str(caught.value)


# ----- what was not ported, and why ----------------------------------------------------------------------------------

NOT_PORTED = {
    "test_keyedvectors.py::test_vectors_for_all_with_copy_vecattrs": "per-word attributes (word counts): glove keeps "
                                                                     "none (the keyword is taken, and copies nothing)",
    "test_keyedvectors.py::test_vectors_for_all_without_copy_vecattrs": "per-word attributes (word counts)",
    "test_keyedvectors.py::test_load_model_and_vocab_file_*": "the vocabulary file (fvocab) holds word counts; the "
                                                              "decoding half of these tests is ported above",
    "test_keyedvectors.py::Gensim320Test": "loads a pickled gensim 3.2 model; glove has its own store format",
    "test_word2vec.py::test_persistence_word2vec_format_with_vocab": "word counts (fvocab)",
    "test_word2vec.py::test_persistence_keyed_vectors_format_with_vocab": "word counts (fvocab)",
    "test_word2vec.py::test_persistence_word2vec_format_combination_with_standard_persistence":
        "gensim's pickled save()/load() of a whole model",
    "test_word2vec.py::test_load_pre_keyed_vector_model_c_format": "a model file from before gensim 1.0 (pickled)",
    "test_word2vec.py::test_no_training_c_format": "training a Word2Vec model",
    "test_fasttext.py::test_wm_distance": "FastText makes up vectors for unknown words from their letters; a "
                                          "store leaves unknown words out, as gensim's KeyedVectors does (checked "
                                          "in test_wmdistance_edge_cases_as_gensim)",
    "sort_by_descending_frequency, get_vecattr, set_vecattr (no test of gensim's own)": "they need word counts or "
        "other per-word attributes, which glove does not keep: each raises ValueError saying so "
        "(test_what_needs_word_counts_says_why_it_is_not_here)",
    "test_word2vec.py::test_evaluate_word_pairs(_from_file)": "trains a model; see test_glove_evaluation.py",
    "test_word2vec.py::test_similarities / test_similar_by": "ported above, on vectors read from a file instead of "
                                                             "a trained model",
    "test_word2vec.py (the rest)": "training, vocabulary building, callbacks, pickles, old model versions",
}


def test_the_list_of_tests_not_ported_names_a_reason_for_each():
    assert all(len(reason) > 10 for reason in NOT_PORTED.values())
