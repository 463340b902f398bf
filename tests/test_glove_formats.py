"""Reading and writing every format, checked against gensim's own reader and writer; messy and malformed
files; atomic saves; gensim-data names routed to gensim's downloader."""

import os
import sys
import warnings

import numpy as np
import pytest
from gensim.models import KeyedVectors

from glove import FormatError, WordVectors
from glove import formats

PARSERS = ["pyarrow", "numpy"]


def gensim_text(path, **kwargs):
    return KeyedVectors.load_word2vec_format(path, binary=False, no_header=True, **kwargs)


def assert_same(ours, theirs):
    """Same words in the same order, and the same float32 bits."""
    # gensim 4.4 leaves a None in index_to_key (and a zero row) for each duplicate it dropped: go by key_to_index.
    words = sorted(theirs.key_to_index, key=theirs.key_to_index.get)
    assert list(ours.index_to_key) == words
    expected = np.asarray(theirs.vectors)[[theirs.key_to_index[w] for w in words]]
    assert ours.vectors.shape == expected.shape
    assert np.array_equal(np.asarray(ours.vectors).view(np.uint32), expected.view(np.uint32))


@pytest.fixture
def reference(gensim_test_glove):
    """A gensim KeyedVectors with awkward words and full-precision float32 values (not just 5 digits)."""
    words = KeyedVectors.load_word2vec_format(gensim_test_glove, binary=False, no_header=True).index_to_key
    words = words + ['"', '"quoted"', "it's", "naïve", "日本", "a,b", "#hash", "NA", "null", "nan"]
    rng = np.random.default_rng(7)
    vectors = (rng.standard_normal((len(words), 13)) * 10.0 ** rng.integers(-6, 4, (len(words), 1)))
    vectors = vectors.astype(np.float32)
    vectors[3, :4] = [0.0, -0.0, 1e-38, -3.4e38]
    kv = KeyedVectors(13)
    kv.add_vectors(words, vectors)
    return kv


# ----- round trips through every format ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["glove", "word2vec", "word2vec-binary", "store"])
def test_our_writer_then_gensim_and_our_reader(reference, tmp_path, fmt):
    path = tmp_path / f"vectors.{fmt}"
    WordVectors.from_gensim(reference).save(path, format=fmt)
    assert formats.detect_format(path) == fmt
    assert_same(WordVectors.load(path), reference)
    if fmt != "store":  # gensim cannot read the store's own format
        theirs = KeyedVectors.load_word2vec_format(
            path, binary=(fmt == "word2vec-binary"), no_header=(fmt == "glove")
        )
        assert_same(theirs, reference)


@pytest.mark.parametrize("binary,header", [(False, False), (False, True), (True, True)])  # binary has a header
def test_gensims_writer_then_our_reader(reference, tmp_path, binary, header):
    path = tmp_path / "by-gensim.txt"
    reference.save_word2vec_format(path, binary=binary, write_header=header)
    expected = {(False, False): "glove", (False, True): "word2vec", (True, True): "word2vec-binary"}
    assert formats.detect_format(path) == expected[binary, header]
    for parser in PARSERS:
        assert_same(WordVectors.load(path, parser=parser), reference)


@pytest.mark.parametrize("fmt", ["word2vec", "word2vec-binary", "store"])  # an empty GloVe file is just empty
def test_no_words_round_trip(tmp_path, fmt):
    path = tmp_path / "empty.out"
    WordVectors([], np.zeros((0, 3))).save(path, format=fmt)
    ours = WordVectors.load(path)
    assert len(ours) == 0 and ours.vectors.shape == (0, 3)
    if fmt != "store":
        assert len(KeyedVectors.load_word2vec_format(path, binary=(fmt == "word2vec-binary"))) == 0


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the norm of the -3.4e38 row
@pytest.mark.parametrize("name,fmt", [("v.txt", "glove"), ("v.bin", "word2vec-binary"), ("v.store", "store"),
                                      ("v.kv", "store"), ("v", "store")])
def test_save_takes_the_format_from_the_name(reference, tmp_path, name, fmt):
    """save("words.txt") wrote the store's binary format into a .txt; the name says the format, as in
    `glove convert`, and gensim reads what the name promises."""
    WordVectors.from_gensim(reference).save(tmp_path / name)
    assert formats.detect_format(tmp_path / name) == fmt
    if fmt != "store":
        theirs = KeyedVectors.load_word2vec_format(tmp_path / name, binary=fmt == "word2vec-binary",
                                                   no_header=fmt == "glove")
        assert theirs.index_to_key == reference.index_to_key and np.array_equal(theirs.vectors, reference.vectors)


@pytest.mark.parametrize("name,fmt", [("v.txt", "store"), ("v.txt", "word2vec-binary"), ("v.bin", "glove"),
                                      ("v.store", "word2vec")])
def test_save_refuses_a_format_the_name_contradicts(reference, tmp_path, name, fmt):
    with pytest.raises(ValueError, match=rf"format '{fmt}' does not match the name .*{name}, whose"):
        WordVectors.from_gensim(reference).save(tmp_path / name, format=fmt)
    assert not (tmp_path / name).exists()
    WordVectors.from_gensim(reference).save(tmp_path / "words.txt", format="word2vec")  # a .txt holds either text
    assert formats.detect_format(tmp_path / "words.txt") == "word2vec"


def test_store_opens_with_mmap(reference, tmp_path):
    path = tmp_path / "vectors.store"
    WordVectors.from_gensim(reference).save(path)
    mapped = WordVectors.load(path, mmap=True)
    assert isinstance(mapped.vectors.base, np.memmap)  # the rows stay on disk
    assert_same(mapped, reference)
    assert_same(WordVectors.load(path, mmap=True, limit=10), _first(reference, 10))
    assert mapped.most_similar("the", topn=5) == reference.most_similar("the", topn=5)


def test_mmap_needs_the_store_format(tmp_path):
    path = _write(tmp_path / "x.txt", "a 1 2\n")
    with pytest.raises(ValueError, match="x.txt: mmap=True needs the store's own format, this file is glove"):
        WordVectors.load(path, mmap=True)


def _first(kv, n):
    return WordVectors(kv.index_to_key[:n], kv.vectors[:n])


def _write(path, text, encoding="utf-8"):
    data = text if isinstance(text, bytes) else text.encode(encoding)
    path.write_bytes(data)
    return path


# ----- messy input that must load -----------------------------------------------------------------------


@pytest.mark.parametrize("parser", PARSERS)
def test_tokens_with_spaces_are_kept_whole(tmp_path, parser):
    path = _write(tmp_path / "840b-like.txt", "the 1 2 3\nnew york 4 5 6\n. . . 7 8 9\nat 0.5 -1e-3 2\n")
    store = WordVectors.load(path, parser=parser)
    assert store.index_to_key == ["the", "new york", ". . .", "at"]
    assert np.array_equal(store["new york"], np.float32([4, 5, 6]))
    assert np.array_equal(store[". . ."], np.float32([7, 8, 9]))


def test_quotes_load_on_the_fast_path(tmp_path, monkeypatch):
    path = _write(tmp_path / "quotes.txt", 'the 1 2\n" 3 4\n"hello 5 6\nsay" 7 8\n\'\' 9 10\n')

    def no_fallback(*args):
        raise AssertionError("the pyarrow path should have read this file")

    monkeypatch.setattr(formats, "_parse_text_numpy", no_fallback)
    assert_same(WordVectors.load(path, parser="pyarrow"), gensim_text(path))


@pytest.mark.parametrize("parser", PARSERS)
def test_float_parsing_rounds_like_gensim(tmp_path, parser):
    # Just above the midpoint of two float32s: rounding directly to float32 gives 1.0000001, rounding
    # first to float64 (as gensim does) gives 1.0.
    path = _write(tmp_path / "midpoint.txt", "a 1.00000005960464477539062500001 0.1 -2.5e-3\nb 3.4028235e38 1e-45 -0\n")
    ours, theirs = WordVectors.load(path, parser=parser), gensim_text(path)
    assert ours["a"][0] == np.float32(1.0)
    assert_same(ours, theirs)


@pytest.mark.parametrize("parser", PARSERS)
def test_duplicates_keep_the_first_like_gensim_and_say_so(tmp_path, parser):
    path = _write(tmp_path / "dups.txt", "a 1 1\nb 2 2\na 3 3\nc 4 4\nb 5 5\na 6 6\n")
    with pytest.warns(UserWarning, match=r"dups.txt: 3 duplicate words ignored .*\['a', 'b', 'a'\]"):
        ours = WordVectors.load(path, parser=parser)
    assert ours.duplicates == ["a", "b", "a"]
    assert_same(ours, gensim_text(path))


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    "text",
    [
        "a 1 2\r\nb 3 4\r\n",  # Windows line ends
        "a 1 2\nb 3 4",  # no newline at the end
        "a 1 2 \nb 3 4 \n",  # a space at the end of each line, as the C word2vec tool writes
        "2 2\na 1 2 \nb 3 4 \n",
    ],
)
def test_line_endings_and_trailing_spaces_like_gensim(tmp_path, parser, text):
    path = _write(tmp_path / "ends.txt", text)
    header = text.startswith("2 2")
    theirs = KeyedVectors.load_word2vec_format(path, binary=False, no_header=not header)
    assert_same(WordVectors.load(path, parser=parser), theirs)


def test_parser_falls_back_to_numpy_without_pyarrow(gensim_test_glove, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.csv", None)
    assert_same(WordVectors.load(gensim_test_glove), gensim_text(gensim_test_glove))
    with pytest.raises(ImportError):
        WordVectors.load(gensim_test_glove, parser="pyarrow")


# ----- malformed files: each error names the file and the line -----------------------------------------


MALFORMED_TEXT = [
    ("ragged.txt", "a 1 2 3\nb 1 2\nc 1 2 3\n", "line 2: has 2 values, expected 3"),
    # Two lines, one ragged: a tie between 4 and 3 fields. Taking 3 read line 1 as the word "a 1" (a word
    # with a space) and two values, silently; gensim refuses this file too.
    ("ragged-tie.txt", "a 1 2 3\nb 1 2\n", "line 2: has 2 values, expected 3"),
    ("not-a-number.txt", "a 1 2 3\nb 1 x 3\nc 1 2 3\n", "line 2: value 'x' is not a number"),
    ("empty-value.txt", "a 1 2 3\nb 1  3\nc 1 2 3\n", "line 2: value '' is not a number"),
    ("header-dim.txt", "2 4\na 1 2 3\nb 1 2 3\n", "line 2: has 3 values, but the header (line 1) says 4"),
    ("header-ragged.txt", "3 3\na 1 2 3\nb 1 2\nc 1 2 3\n", "line 3: has 2 values, expected 3"),
    ("header-count.txt", "3 3\na 1 2 3\nb 1 2 3\n", "line 4: the file ends after 2 words, but the header says 3"),
    ("empty.txt", "", "line 1: the file is empty"),
    ("blank.txt", "\n\n  \n", "line 1: the file is empty"),
    ("blank-line.txt", "a 1 2\n\nb 1 2\n", "line 2: is empty"),
    ("no-numbers.txt", "a\nb\n", "line 1: has no numbers after the word"),
    ("latin-1.txt", "a 1 2\nna\xefve 1 2\n".encode("latin-1"), "line 2: is not UTF-8"),
]


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("name,text,message", MALFORMED_TEXT, ids=[case[0] for case in MALFORMED_TEXT])
def test_malformed_text_names_file_and_line(tmp_path, parser, name, text, message):
    path = _write(tmp_path / name, text)
    with pytest.raises(FormatError) as caught:
        WordVectors.load(path, parser=parser)
    assert str(caught.value).startswith(f"{path}, ")
    assert message in str(caught.value)


def test_truncated_word2vec_binary_names_the_record(reference, tmp_path):
    path = tmp_path / "cut.bin"
    reference.save_word2vec_format(path, binary=True)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(FormatError, match=rf"{path.name}, word {len(reference)} of {len(reference)} \(byte \d+\): "
                       "the file ends inside this record"):
        WordVectors.load(path)


def test_truncated_store_is_an_error(reference, tmp_path):
    path = tmp_path / "cut.store"
    WordVectors.from_gensim(reference).save(path)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(FormatError, match=rf"{path.name}, the store header \(line 2\): the store is truncated: "
                       r"86 x 13 <f4 vectors need 4984 bytes, the file has 4980") as caught:
        WordVectors.load(path, mmap=True)
    assert isinstance(caught.value, EOFError)  # as gensim's readers raise for a file that ends early


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.txt"):
        WordVectors.load(tmp_path / "nothere.txt")


def test_writers_refuse_words_they_cannot_hold(tmp_path):
    store = WordVectors(["new york", "ok"], np.ones((2, 3)))
    with pytest.raises(ValueError, match="'new york' in word2vec-binary"):
        store.save(tmp_path / "x.bin", format="word2vec-binary")
    store.save(tmp_path / "x.txt", format="glove")  # in text, a word is everything before the last D numbers
    assert WordVectors.load(tmp_path / "x.txt").index_to_key == ["new york", "ok"]
    with pytest.raises(ValueError, match="line\\\\nbreak"):
        WordVectors(["line\nbreak"], np.ones((1, 3))).save(tmp_path / "y.store")
    assert not (tmp_path / "x.bin").exists() and not (tmp_path / "y.store").exists()


# ----- atomic saves ----------------------------------------------------------------------------------------


class Interrupted(BaseException):
    """Stands in for Ctrl-C or a kill in the middle of a save."""


@pytest.fixture
def interrupt_writes(monkeypatch):
    """Make the next file opened by os.fdopen raise Interrupted after writing `budget` bytes."""

    def arm(budget):
        real_fdopen = os.fdopen

        class Exploding:
            def __init__(self, f):
                self.f, self.written = f, 0

            def write(self, data):
                data = bytes(data)
                if self.written + len(data) > budget:
                    self.f.write(data[: budget - self.written])
                    raise Interrupted
                self.written += len(data)
                return self.f.write(data)

            def __getattr__(self, name):
                return getattr(self.f, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return self.f.__exit__(*exc)

        monkeypatch.setattr(os, "fdopen", lambda *a, **k: Exploding(real_fdopen(*a, **k)))

    return arm


@pytest.mark.parametrize("where", ["at the start", "in the header", "near the end"])
@pytest.mark.parametrize("fmt", ["store", "glove", "word2vec", "word2vec-binary"])
def test_interrupted_save_keeps_the_previous_file(reference, tmp_path_factory, interrupt_writes, fmt, where):
    scratch = tmp_path_factory.mktemp("scratch") / "full"
    WordVectors.from_gensim(reference).save(scratch, format=fmt)
    budget = {"at the start": 0, "in the header": 30, "near the end": scratch.stat().st_size - 10}[where]
    tmp_path = tmp_path_factory.mktemp("target")
    target = tmp_path / "vectors.out"
    old = _first(reference, 20)
    old.save(target, format=fmt)
    before = target.read_bytes()
    interrupt_writes(budget=budget)
    with pytest.raises(Interrupted):
        WordVectors.from_gensim(reference).save(target, format=fmt)
    assert sorted(os.listdir(tmp_path)) == ["vectors.out"]  # no temporary file left behind
    assert target.read_bytes() == before
    assert_same(WordVectors.load(target), old)


@pytest.mark.parametrize("fmt", ["store", "glove", "word2vec", "word2vec-binary"])
def test_interrupted_first_save_leaves_nothing(reference, tmp_path, interrupt_writes, fmt):
    interrupt_writes(budget=300)
    with pytest.raises(Interrupted):
        WordVectors.from_gensim(reference).save(tmp_path / "vectors.out", format=fmt)
    assert os.listdir(tmp_path) == []


# ----- gensim-data names ------------------------------------------------------------------------------------


@pytest.fixture
def offline_gensim_data(tmp_path, monkeypatch, gensim_test_glove):
    """gensim's downloader, run for real but offline: its catalogue and one model sit in a local gensim-data
    folder laid out as the downloader leaves it, and any attempt to reach the network fails at once."""
    import json

    import gensim.downloader as api

    def no_network(*args, **kwargs):
        raise OSError("no network in tests")

    base = tmp_path / "gensim-data"
    model = base / "tiny-glove-test"
    model.mkdir(parents=True)
    catalogue = {"corpora": {}, "models": {"tiny-glove-test": {"file_name": "tiny-glove-test.txt", "parts": 1}}}
    (base / "information.json").write_text(json.dumps(catalogue))
    (model / "__init__.py").write_text(
        "from gensim.models import KeyedVectors\n"
        "def load_data():\n"
        f"    return KeyedVectors.load_word2vec_format({str(gensim_test_glove)!r}, no_header=True)\n"
    )
    monkeypatch.setattr(api, "BASE_DIR", str(base))
    monkeypatch.setattr(api, "urlopen", no_network)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the downloader prepends its folder
    monkeypatch.delitem(sys.modules, "tiny-glove-test", raising=False)
    yield api
    sys.modules.pop("tiny-glove-test", None)


def test_gensim_data_name_goes_through_gensims_downloader(offline_gensim_data, gensim_test_glove, monkeypatch):
    monkeypatch.chdir(gensim_test_glove.parent.parent)  # no file named like the model here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        store = WordVectors.load("tiny-glove-test")
    assert_same(store, gensim_text(gensim_test_glove))
    assert len(WordVectors.load("tiny-glove-test", limit=10)) == 10


def test_load_passes_the_name_to_gensim_downloader(monkeypatch, gensim_test_glove):
    import gensim.downloader as api

    asked = []
    monkeypatch.setattr(api, "load", lambda name: asked.append(name) or gensim_text(gensim_test_glove))
    store = WordVectors.load("glove-wiki-gigaword-100")
    assert asked == ["glove-wiki-gigaword-100"]
    assert_same(store, gensim_text(gensim_test_glove))


def test_unknown_gensim_data_name_is_a_clear_error(offline_gensim_data):
    with pytest.raises(ValueError, match="'glove-nonexistent-7' is neither a file nor a gensim-data model name"):
        WordVectors.load("glove-nonexistent-7")


# ----- gensim's loader options: binary, no_header, datatype, encoding, unicode_errors -------------------------------


def test_no_header_loads_a_one_dimensional_glove_file_whose_first_line_looks_like_a_header(tmp_path):
    path = _write(tmp_path / "years.txt", "2010 5\n2011 6\n1999 -7\n")  # words that are numbers, 1 dimension
    with pytest.raises(FormatError):  # read as word2vec: a header of 2010 words of 5 dimensions
        WordVectors.load(path)
    for parser in PARSERS:
        ours = WordVectors.load(path, no_header=True, parser=parser)
        assert_same(ours, gensim_text(path))
        assert ours.vectors.shape == (3, 1)


@pytest.mark.parametrize("binary,no_header,expected", [(None, None, "glove"), (False, None, "glove"),
                                                       (None, True, "glove"), (False, True, "glove")])
def test_explicit_options_on_a_glove_file(gensim_test_glove, binary, no_header, expected):
    assert formats.detect_format(gensim_test_glove, binary, no_header) == expected
    assert_same(WordVectors.load(gensim_test_glove, binary=binary, no_header=no_header), gensim_text(gensim_test_glove))


@pytest.mark.parametrize("binary,no_header", [(False, False), (None, False), (True, None), (True, False)])
def test_options_that_promise_a_header_a_glove_file_lacks(gensim_test_glove, binary, no_header):
    with pytest.raises(FormatError, match=r"line 1: expected the header 'COUNT DIMENSIONS' of a word2vec file, found "
                                          r"'the 0.418 .*' \(a GloVe file has no header: no_header=True\)"):
        WordVectors.load(gensim_test_glove, binary=binary, no_header=no_header)
    with pytest.raises(ValueError):  # gensim fails too, less clearly
        KeyedVectors.load_word2vec_format(gensim_test_glove, binary=bool(binary))


def test_explicit_options_on_word2vec_files(reference, tmp_path):
    text, binary = tmp_path / "v.txt", tmp_path / "v.bin"
    reference.save_word2vec_format(text, binary=False)
    reference.save_word2vec_format(binary, binary=True)
    assert_same(WordVectors.load(text, binary=False, no_header=False), reference)
    assert_same(WordVectors.load(binary, binary=True), reference)
    assert_same(WordVectors.load_word2vec_format(binary, binary=True), reference)
    store = tmp_path / "v.store"
    WordVectors.from_gensim(reference).save(store)
    with pytest.raises(ValueError, match="is a glove store: binary= and no_header= are for word2vec and GloVe files"):
        WordVectors.load(store, binary=True)


def test_load_word2vec_format_has_gensims_defaults(gensim_test_glove, reference, tmp_path):
    with pytest.raises(FormatError, match="expected the header"):  # binary=False, no_header=False, as in gensim
        WordVectors.load_word2vec_format(gensim_test_glove)
    assert_same(WordVectors.load_word2vec_format(gensim_test_glove, no_header=True), gensim_text(gensim_test_glove))
    path = tmp_path / "v.txt"
    reference.save_word2vec_format(path)
    assert_same(WordVectors.load_word2vec_format(path, limit=5), _first(reference, 5))
    with pytest.raises(ValueError, match="glove keeps no word counts"):
        WordVectors.load_word2vec_format(path, fvocab=str(tmp_path / "vocab.txt"))


@pytest.mark.parametrize("datatype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("binary", [False, True])
def test_datatype_like_gensim(tmp_path, datatype, binary):
    rng = np.random.default_rng(3)
    kv = KeyedVectors(7)
    kv.add_vectors([f"w{i}" for i in range(30)], rng.standard_normal((30, 7)).astype(np.float32))
    path = tmp_path / "v"
    kv.save_word2vec_format(path, binary=binary)
    ours = WordVectors.load_word2vec_format(path, binary=binary, datatype=datatype)
    theirs = KeyedVectors.load_word2vec_format(path, binary=binary, datatype=datatype)
    assert ours.vectors.dtype == theirs.vectors.dtype == datatype
    assert np.array_equal(ours.vectors, theirs.vectors)
    store = tmp_path / "v.store"
    ours.save(store)  # the store keeps the dtype
    assert WordVectors.load(store, datatype=datatype).vectors.dtype == datatype
    assert np.array_equal(WordVectors.load(store, mmap=True, datatype=datatype).vectors, ours.vectors)
    if datatype != np.float32:
        with pytest.raises(ValueError, match=f"the store holds {np.dtype(datatype).name} vectors; mmap=True maps them "
                                             f"as they are, so pass datatype=np.{np.dtype(datatype).name}"):
            WordVectors.load(store, mmap=True)


def test_float64_vectors_round_trip_through_text_and_store(tmp_path):
    vectors = np.random.default_rng(5).standard_normal((4, 3))
    store = WordVectors(["a", "b", "c", "d"], vectors, dtype=np.float64)
    for fmt in ("store", "glove", "word2vec"):
        store.save(tmp_path / f"v.{fmt}", format=fmt)
        assert np.array_equal(WordVectors.load(tmp_path / f"v.{fmt}", datatype=np.float64).vectors, vectors)


def test_encoding_like_gensim(tmp_path):
    path = _write(tmp_path / "latin.txt", "1 2\nna\xefve 0.5 1.5\n", encoding="latin-1")
    ours = WordVectors.load_word2vec_format(path, encoding="latin-1")
    theirs = KeyedVectors.load_word2vec_format(path, encoding="latin-1")
    assert ours.index_to_key == theirs.index_to_key == ["naïve"]
    with pytest.raises(UnicodeDecodeError):
        WordVectors.load_word2vec_format(path)


@pytest.mark.parametrize("errors", ["replace", "ignore"])
def test_unicode_errors_in_binary_words_like_gensim(tmp_path, errors):
    path = tmp_path / "cut.bin"
    path.write_bytes(b"2 2\n" + b"ab\xe3\x81 " + np.float32([1, 2]).tobytes() + b"cd " + np.float32([3, 4]).tobytes())
    with pytest.raises(UnicodeDecodeError) as caught:
        WordVectors.load(path)
    assert str(caught.value).startswith(f"{path}, word 1 of 2 (byte 4): the word is not UTF-8")
    ours = WordVectors.load(path, unicode_errors=errors)
    theirs = KeyedVectors.load_word2vec_format(path, binary=True, unicode_errors=errors)
    assert ours.index_to_key == theirs.index_to_key and np.array_equal(ours.vectors, theirs.vectors)


def test_save_word2vec_format_takes_gensims_arguments(reference, tmp_path):
    ours = WordVectors.from_gensim(reference)
    for binary, header in ((False, True), (True, True), (False, False)):
        path = tmp_path / f"v-{binary}-{header}"
        ours.save_word2vec_format(path, binary=binary, write_header=header, prefix="pre_")
        theirs = KeyedVectors.load_word2vec_format(path, binary=binary, no_header=not header)
        assert theirs.index_to_key == ["pre_" + w for w in reference.index_to_key]
        assert np.array_equal(theirs.vectors, reference.vectors)
    # total_vec and append: gensim's way of writing one file in two parts
    path = tmp_path / "two-parts.txt"
    first, second = _first(reference, 10), WordVectors(reference.index_to_key[10:], reference.vectors[10:])
    first.save_word2vec_format(path, total_vec=len(reference))
    second.save_word2vec_format(path, write_header=False, append=True)
    assert_same(WordVectors.load(path), reference)
    assert_same(KeyedVectors.load_word2vec_format(path), reference)
    with pytest.raises(ValueError, match="cannot store vocabulary with 'count': glove keeps no word counts"):
        ours.save_word2vec_format(tmp_path / "x", fvocab=tmp_path / "vocab")
    with pytest.raises(ValueError, match="a word2vec binary file needs its header"):
        ours.save_word2vec_format(tmp_path / "x", binary=True, write_header=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two-parts.txt", "v-False-False", "v-False-True", "v-True-True"]


@pytest.mark.parametrize("fmt", ["word2vec", "word2vec-binary", "glove", "store"])
def test_limit_0_reads_every_word_as_gensim_does(reference, tmp_path, fmt):
    path = tmp_path / f"v.{fmt}"
    WordVectors.from_gensim(reference).save(path, format=fmt)
    assert_same(WordVectors.load(path, limit=0), reference)  # was: no words at all
    if fmt.startswith("word2vec"):  # gensim: `if limit: vocab_size = min(vocab_size, limit)`, so 0 and None read all
        binary = fmt == "word2vec-binary"
        assert_same(WordVectors.load_word2vec_format(path, binary=binary, limit=0), reference)
        assert_same(KeyedVectors.load_word2vec_format(path, binary=binary, limit=0), reference)
    if fmt == "glove":  # gensim's no_header reader counts 0 lines for limit=0, then fails: TypeError
        with pytest.raises(TypeError):
            KeyedVectors.load_word2vec_format(path, binary=False, no_header=True, limit=0)
        assert_same(WordVectors.load_word2vec_format(path, no_header=True, limit=0), reference)


def test_limit_0_of_a_gensim_data_model_reads_every_word(offline_gensim_data, gensim_test_glove, monkeypatch):
    monkeypatch.chdir(gensim_test_glove.parent.parent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert len(WordVectors.load("tiny-glove-test", limit=0)) == len(gensim_text(gensim_test_glove))


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("header", ["", "2 2\n"])
def test_a_utf8_byte_order_mark_is_not_part_of_the_first_word(tmp_path, parser, header):
    path = _write(tmp_path / "bom.txt", "\ufeff" + header + "king 1 2\nqueen 3 4\n")  # as Notepad saves UTF-8
    # was: the word '\ufeffking' with the numpy parser (pyarrow's dropped the mark), and a header not recognised
    assert WordVectors.load(path, parser=parser).index_to_key == ["king", "queen"]
