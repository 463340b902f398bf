"""glove under bad files, bad values and threads: each case ends in one clear error, or in the right answer.

Every malformed file is built here, in a temporary folder. Each error is checked by its class and by the
words of its message: the file, the line (or record, or header field), the shape or the word.
"""

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

from glove import FormatError, WordVectors
from glove import atomic, formats
from glove.__main__ import main as glove_main
from glove.formats import EncodingError, TruncatedFileError

from conftest import read_only_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small(gensim_test_glove):
    """gensim's test_glove.txt (76 words, 50 dimensions) as glove and as gensim load it."""
    return WordVectors.load(gensim_test_glove), KeyedVectors.load_word2vec_format(gensim_test_glove, no_header=True)


def with_rows(store, extra_words, extra_rows):
    return WordVectors(store.index_to_key + list(extra_words), np.vstack([store.vectors, extra_rows]))


# ----- 1. rows of length 0 are never answers, in single and batched queries --------------------------------


def test_zero_rows_never_crowd_out_answers_in_batched_queries(small):
    store, kv = small
    zeros = with_rows(store, ["zero1", "zero2"], np.zeros((2, 50)))
    for topn in (5, 10):
        expected = kv.most_similar("the", topn=topn)
        assert [w for w, _ in zeros.most_similar("the", topn=topn)] == [w for w, _ in expected]
        (batched,) = zeros.neighbours(["the"], topn=topn)
        assert len(batched) == topn and [w for w, _ in batched] == [w for w, _ in expected]
    answers = zeros.analogies([("the", "of", "and")], topn=5)[0]
    assert len(answers) == 5 and "zero1" not in dict(answers)


def test_zero_rows_are_not_returned_even_when_few_words_remain():
    store = WordVectors(["a", "b", "c", "zero"], [[1, 0], [1, 1], [0, 1], [0, 0]])
    for answers in (store.most_similar("a", topn=10), store.neighbours(["a"], topn=10)[0],
                    store.most_similar_cosmul("a", topn=10), store.similar_by_vector(np.float32([1, 0]), topn=10)):
        assert [w for w, _ in answers] == ["b", "c"] or [w for w, _ in answers] == ["a", "b", "c"]
        assert all(np.isfinite(score) for _, score in answers)
    scores = store.most_similar("a", topn=None)  # every score, as gensim: the zero row has none
    assert np.isnan(scores[3]) and np.isfinite(scores[:3]).all()


def test_a_nan_written_in_place_makes_a_dead_row_not_an_answer(small):
    store, kv = small
    copy = WordVectors(store.index_to_key, np.array(store.vectors))
    copy.vectors[5] = np.nan  # writable in place, as in gensim
    copy.fill_norms(force=True)
    (batched,) = copy.neighbours(["the"], topn=5)
    assert len(batched) == 5 and copy.index_to_key[5] not in dict(batched)
    assert len(copy.most_similar("the", topn=5)) == 5


def test_a_zero_vector_as_the_query_is_an_error_naming_it(small):
    store, kv = small
    zeros = with_rows(store, ["zero"], np.zeros((1, 50)))
    for call in (lambda: zeros.most_similar("zero"), lambda: zeros.neighbours(["the", "zero"]),
                 lambda: zeros.analogies([("the", "zero", "of")]), lambda: zeros.most_similar_cosmul("zero"),
                 lambda: zeros.get_vector("zero", norm=True), lambda: zeros.doesnt_match(["the", "zero", "of"])):
        with pytest.raises(ValueError, match="word 'zero' has an all-zero vector: it has no direction"):
            call()
    with pytest.raises(ValueError, match="the query adds up to a zero vector"):
        zeros.most_similar(positive=["the"], negative=["the"])
    with pytest.raises(ValueError, match="the query adds up to a zero vector"):
        zeros.similar_by_vector(np.zeros(50))
    # similarity follows gensim's unitvec, which leaves a zero vector as it is: the cosine is 0.
    reference = KeyedVectors(50)
    reference.add_vectors(zeros.index_to_key, np.array(zeros.vectors))
    assert zeros.similarity("the", "zero") == reference.similarity("the", "zero") == 0.0


# ----- 2. NaN and infinite values are refused: files, arrays, gensim ------------------------------------------


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # gensim reading 1e39
@pytest.mark.parametrize("parser", ["pyarrow", "numpy"])
@pytest.mark.parametrize("value,shown", [("nan", "nan"), ("inf", "inf"), ("-Infinity", "-Infinity"),
                                         ("1e39", "1e39")])  # 1e39 overflows float32
@pytest.mark.parametrize("header", ["", "3 2\n"])
def test_non_finite_text_values_are_refused_naming_file_line_and_word(tmp_path, parser, value, shown, header):
    path = tmp_path / "bad.txt"
    path.write_text(f"{header}a 1 2\nb 3 4\nc 5 {value}\n")
    with pytest.raises(FormatError) as caught:
        WordVectors.load(path, parser=parser)
    line = 3 + bool(header)
    assert str(caught.value) == (f"{path}, line {line}: word 'c': value {shown} (dimension 2) is not a finite float32; "
                                 "NaN and infinite values are refused, as no cosine with them means anything")
    assert KeyedVectors.load_word2vec_format(path, no_header=not header) is not None  # gensim takes it


def test_float16_overflow_is_refused(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("a 1 2\nb 70000 3\n")
    with pytest.raises(FormatError, match=r"line 2: word 'b': value 70000 \(dimension 1\) is not a finite float16"):
        WordVectors.load(path, datatype=np.float16)
    assert WordVectors.load(path)["b"][0] == 70000  # fine in float32


def test_non_finite_binary_values_are_refused_naming_the_record(tmp_path):
    kv = KeyedVectors(3)
    kv.add_vectors(["a", "b", "c"], np.float32([[1, 2, 3], [4, np.inf, 6], [7, 8, 9]]))
    path = tmp_path / "bad.bin"
    kv.save_word2vec_format(path, binary=True)
    with pytest.raises(FormatError, match=rf"{path.name}, word 2 of 3 \(byte 18\): word 'b': value inf \(dimension 2\) "
                                          "is not a finite float32"):
        WordVectors.load(path)


def test_non_finite_store_values_are_refused(tmp_path):
    path = tmp_path / "bad.store"
    WordVectors(["a", "b"], [[1, 2], [3, 4]]).save(path)
    data = bytearray(path.read_bytes())
    data[-4:] = np.float32(np.nan).tobytes()  # the last value
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=rf"{path.name}, word 2 of 2: word 'b': value nan \(dimension 2\) is not"):
        WordVectors.load(path)


def test_non_finite_arrays_and_gensim_vectors_are_refused_naming_the_word():
    with pytest.raises(ValueError, match=r"input: word 'b' \(row 1\) has NaN or infinite values \(\[nan\]\)"):
        WordVectors(["a", "b"], [[1, 2], [np.nan, 4]])
    kv = KeyedVectors(2)
    kv.add_vectors(["x", "y"], np.float32([[1, -np.inf], [3, 4]]))
    with pytest.raises(ValueError, match=r"gensim KeyedVectors: word 'x' \(row 0\) has NaN or infinite values \(\[-inf\]\)"):
        WordVectors.from_gensim(kv)
    store = WordVectors(["a"], [[1, 2]])
    with pytest.raises(ValueError, match=r"add_vectors: word 'z' \(row 0\) has NaN or infinite values"):
        store["z"] = np.float32([np.inf, 1])
    assert "z" not in store and len(store) == 1


# ----- 3. a query vector has exactly D values ---------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1,), (49,), (51,), (1, 50), ()])
def test_similar_by_vector_needs_exactly_d_values(small, shape):
    store, _ = small
    with pytest.raises(ValueError, match=rf"similar_by_vector needs a vector of shape \(50,\), not {re.escape(str(shape))}"):
        store.similar_by_vector(np.ones(shape, dtype=np.float32))


def test_vectors_in_other_queries_need_exactly_d_values(small):
    store, _ = small
    for call in (lambda v: store.most_similar(positive=[v]), lambda v: store.most_similar_cosmul(positive=[v]),
                 lambda v: store.distances(v), lambda v: store.get_mean_vector([v])):
        with pytest.raises(ValueError, match=r"a query vector must have shape \(50,\), not \(1,\)"):
            call(np.ones(1, dtype=np.float32))
    with pytest.raises(ValueError, match="a query vector holds NaN or infinite values"):
        store.most_similar(positive=[np.full(50, np.nan, dtype=np.float32)])


# ----- 4. a store header that lies ----------------------------------------------------------------------------------


def store_with_header(tmp_path, change):
    """A valid store whose JSON header line is then changed by `change(header) -> header`."""
    path = tmp_path / "lying.store"
    WordVectors(["alpha", "beta", "gamma"], np.arange(6, dtype=np.float32).reshape(3, 2)).save(path)
    data = path.read_bytes()
    magic_end = len(formats.STORE_MAGIC)
    line_end = data.index(b"\n", magic_end) + 1
    header = json.loads(data[magic_end:line_end])
    new_line = change(header)
    new_line = new_line if isinstance(new_line, bytes) else json.dumps(new_line).encode()
    # Keep the words and the vectors exactly where they were: pad or trim the JSON with spaces.
    padded = new_line.rstrip(b"\n").ljust(line_end - magic_end - 1) + b"\n"
    path.write_bytes(data[:magic_end] + padded + data[line_end:])
    return path


def change(**fields):
    return lambda header: {**header, **fields}


@pytest.mark.parametrize("name,edit,error,message", [
    ("words_bytes - 1", lambda h: {**h, "words_bytes": h["words_bytes"] - 1}, FormatError,
     r"words_bytes \(15\) does not end where the words end: the store is damaged"),
    ("words_bytes + 1", lambda h: {**h, "words_bytes": h["words_bytes"] + 1}, FormatError,
     r"words_bytes \(17\) does not end where the words end"),
    ("words_bytes past the end", change(words_bytes=10**9), TruncatedFileError,
     r"are more than the file's \d+ bytes"),
    ("dtype <f8", change(dtype="<f8"), TruncatedFileError, r"the store is truncated: 3 x 2 <f8 vectors need"),
    ("dtype unknown", change(dtype="float32"), FormatError, r"field 'dtype' is 'float32', expected one of \['<f2', '<f4', '<f8'\]"),
    ("version 2", change(version=2), FormatError, r"field 'version' is 2 \(newer than this glove reads\); this glove reads version 1"),
    ("version '1'", change(version="1"), FormatError, r"field 'version' is '1', expected a whole number"),
    ("rows a string", change(rows="3"), FormatError, r"field 'rows' is '3', expected a whole number of at least 0"),
    ("rows a bool", change(rows=True), FormatError, r"field 'rows' is True, expected a whole number"),
    ("rows negative", change(rows=-3), FormatError, r"field 'rows' is -3, expected a whole number of at least 0"),
    ("rows a float", change(rows=3.0), FormatError, r"field 'rows' is 3.0, expected a whole number"),
    ("rows too many", change(rows=4), TruncatedFileError, r"the store is truncated: 4 x 2 <f4 vectors need"),
    ("rows too few", change(rows=2), FormatError, r"the store is damaged: 2 x 2 <f4 vectors need"),
    ("rows huge", change(rows=2 * 10**9), TruncatedFileError, r"rows x dim \(2000000000 x 2\)"),
    ("dim wrong", change(dim=3), TruncatedFileError, r"3 x 3 <f4 vectors need"),
    ("dim 0", change(dim=0), FormatError, r"field 'dim' is 0 for 3 rows"),
    ("a list", lambda h: list(h.values()), FormatError, r"is a JSON list, expected an object"),
    ("not JSON", lambda h: b"{rows: 3", FormatError, r"is not JSON"),
    ("a field missing", lambda h: {k: v for k, v in h.items() if k != "dtype"}, FormatError,
     r"missing fields \['dtype'\], unknown fields \[\]"),
    ("a field unknown", change(order="C"), FormatError, r"missing fields \[\], unknown fields \['order'\]"),
])
@pytest.mark.parametrize("mmap", [False, True])
def test_store_header_is_checked_field_by_field(tmp_path, name, edit, error, message, mmap):
    path = store_with_header(tmp_path, edit)
    with pytest.raises(error) as caught:
        WordVectors.load(path, mmap=mmap)
    assert str(caught.value).startswith(f"{path}, the store header (line 2): ")
    assert re.search(message, str(caught.value)), str(caught.value)


def test_store_words_that_are_not_utf8(tmp_path):
    path = tmp_path / "x.store"
    WordVectors(["abc", "de"], np.ones((2, 2))).save(path)
    path.write_bytes(path.read_bytes().replace(b"abc\nde", b"a\xffc\nde"))
    with pytest.raises(EncodingError, match=rf"{path.name}, the words of the store: are not UTF-8"):
        WordVectors.load(path)


# ----- 5. a word2vec header that claims more than the file holds ---------------------------------------------------


def test_binary_header_claiming_two_billion_rows_is_checked_before_allocating(tmp_path):
    path = tmp_path / "huge.bin"
    path.write_bytes(b"2000000000 3\n" + b"a " + np.float32([1, 2, 3]).tobytes() + b"b " + np.float32([4, 5, 6]).tobytes())
    with pytest.raises(TruncatedFileError) as caught:
        WordVectors.load(path)
    assert str(caught.value) == (f"{path}, line 1: the header says 2000000000 words of 3 dimensions, which take at "
                                 "least 26,000,000,000 bytes, but the file has 28 after it")
    assert isinstance(caught.value, EOFError)
    assert WordVectors.load(path, limit=2).index_to_key == ["a", "b"]  # what limit asks for is there
    path.write_bytes(b"5 2000000000\na ")
    with pytest.raises(TruncatedFileError, match="5 words of 2000000000 dimensions, which take at least 40,000,000,005"):
        WordVectors.load(path, binary=True)


def test_text_header_claiming_more_rows_is_an_eof_error(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("2000000000 2\na 1 2\nb 3 4\n")
    with pytest.raises(TruncatedFileError, match=r"line 4: the file ends after 2 words, but the header says 2000000000"):
        WordVectors.load(path)


# ----- 6. saving where nothing can be saved -------------------------------------------------------------------------


def test_saving_into_a_read_only_folder_names_the_file(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    target = folder / "v.store"
    with read_only_folder(folder):
        with pytest.raises(PermissionError) as caught:
            WordVectors(["a"], [[1.0, 2.0]]).save(target)
        assert str(caught.value).startswith(f"cannot save {target} (creating a temporary file in {folder}): ")
        assert caught.value.errno is not None
    assert os.listdir(folder) == []


def test_saving_onto_a_folder_or_into_a_missing_one(tmp_path):
    store = WordVectors(["a"], [[1.0, 2.0]])
    with pytest.raises(IsADirectoryError, match=rf"^cannot save to {re.escape(str(tmp_path))}: it is a folder, not a file$"):
        store.save(tmp_path)
    missing = tmp_path / "no" / "such" / "v.store"
    with pytest.raises(FileNotFoundError, match=rf"^cannot save {re.escape(str(missing))}: the folder "
                                                rf"{re.escape(str(missing.parent))} does not exist$"):
        store.save(missing)
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(NotADirectoryError, match=rf"^cannot save {re.escape(str(afile / 'v.store'))}: {re.escape(str(afile))} is not a folder$"):
        store.save(afile / "v.store")


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs Linux's /sys")
def test_saving_into_sys_names_the_file():
    with pytest.raises(OSError) as caught:
        WordVectors(["a"], [[1.0, 2.0]]).save("/sys/kernel/glove-test.store")
    assert str(caught.value).startswith("cannot save /sys/kernel/glove-test.store (creating a temporary file in "
                                        "/sys/kernel): ")
    assert "Traceback" not in str(caught.value)


def test_a_full_disk_names_the_target_and_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "v.store"
    real_fsync = os.fsync

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match=rf"^cannot save {re.escape(str(target))}: No space left on device$") as caught:
        WordVectors(["a"], [[1.0, 2.0]]).save(target)
    assert caught.value.errno == 28
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert os.listdir(tmp_path) == []


# ----- 7. topn and the other counts are whole numbers ----------------------------------------------------------------


@pytest.mark.parametrize("bad", [2.0, True, False, "3", np.float32(2)])
def test_topn_must_be_a_whole_number(small, bad):
    store, _ = small
    calls = [lambda: store.most_similar("the", topn=bad), lambda: store.most_similar_cosmul("the", topn=bad),
             lambda: store.similar_by_word("the", topn=bad), lambda: store.similar_by_vector(store["the"], topn=bad),
             lambda: store.neighbours(["the"], topn=bad), lambda: store.analogies([("the", "of", "and")], topn=bad),
             lambda: store.relative_cosine_similarity("the", "of", topn=bad)]
    for call in calls:
        with pytest.raises(TypeError, match=rf"topn must be a whole number( or None)?, not {re.escape(repr(bad))}"):
            call()


def test_whole_numbers_of_numpy_types_are_fine_as_in_gensim(small):
    store, kv = small
    assert store.most_similar("the", topn=np.uint8(0)) == [] == kv.most_similar("the", topn=np.uint8(0))
    assert store.most_similar("the", topn=np.int64(3)) == kv.most_similar("the", topn=np.int64(3))
    assert store.most_similar("the", topn=-1) == []


@pytest.mark.parametrize("call,error,message", [
    (lambda s: s.most_similar("the", restrict_vocab=2.5), TypeError, "restrict_vocab must be a whole number or None, not 2.5"),
    (lambda s: s.most_similar("the", restrict_vocab=-1), ValueError, "restrict_vocab must be at least 0, not -1"),
    (lambda s: s.most_similar("the", clip_start=-2), ValueError, "clip_start must be at least 0, not -2"),
    (lambda s: s.most_similar("the", clip_end=1.5), TypeError, "clip_end must be a whole number or None, not 1.5"),
    (lambda s: s.neighbours(["the"], batch_size=0), ValueError, "batch_size must be at least 1, not 0"),
    (lambda s: s.most_similar(positive=[("the", "2")]), TypeError, "the weight of 'the' must be a number, not '2'"),
    (lambda s: s.most_similar(positive=[("the", 1, 2)]), TypeError, "expected a word, a vector or a \\(word, weight\\) pair"),
])
def test_other_counts_and_weights_are_checked(small, call, error, message):
    store, _ = small
    with pytest.raises(error, match=message):
        call(store)


@pytest.mark.parametrize("options,error,message", [
    (dict(limit=1.5), TypeError, "limit must be a whole number or None, not 1.5"),
    (dict(limit=-1), ValueError, "limit must be at least 0, not -1"),
    (dict(datatype=np.int32), TypeError, "datatype must be np.float16, np.float32 or np.float64"),
    (dict(unicode_errors="loud"), ValueError, "unknown error handler name 'loud'"),
    (dict(encoding="no-such-codec"), ValueError, "unknown encoding: no-such-codec"),
    (dict(mmap="w"), ValueError, "mmap must be False, True \\(or 'r': read-only\\) or 'c'"),
    (dict(parser="fast"), ValueError, "parser must be 'auto', 'pyarrow' or 'numpy'"),
    (dict(binary=True, no_header=True), ValueError, "no_header=True is for text files"),
])
def test_load_options_are_checked(gensim_test_glove, options, error, message):
    with pytest.raises(error, match=message):
        WordVectors.load(gensim_test_glove, **options)


# ----- 8. permissions: the umask for a new file, the old mode for a replaced one ------------------------------------


@pytest.fixture
def umask():
    previous = os.umask(0o022)
    os.umask(previous)

    def set_umask(mask):
        os.umask(mask)

    yield set_umask
    os.umask(previous)


@pytest.mark.parametrize("fmt", ["store", "glove", "word2vec-binary"])
@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_umask_mode(tmp_path, umask, fmt, mask, mode):
    umask(mask)
    target = tmp_path / "v.out"
    WordVectors(["a"], [[1.0, 2.0]]).save(target, format=fmt)
    assert stat.S_IMODE(target.stat().st_mode) == mode


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600, 0o664])
def test_a_replaced_file_keeps_its_mode(tmp_path, umask, mode):
    umask(0o077)
    target = tmp_path / "v.store"
    target.write_bytes(b"old")
    target.chmod(mode)
    WordVectors(["a"], [[1.0, 2.0]]).save(target)
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert WordVectors.load(target).index_to_key == ["a"]


def test_saving_through_a_symlink_replaces_its_file_and_keeps_the_link(tmp_path):
    real = tmp_path / "real.store"
    link = tmp_path / "link.store"
    WordVectors(["old"], [[1.0, 2.0]]).save(real)
    link.symlink_to(real)
    WordVectors(["new"], [[3.0, 4.0]]).save(link)
    assert link.is_symlink() and WordVectors.load(real).index_to_key == ["new"]


# ----- 9. overwrites that would destroy something --------------------------------------------------------------------


def test_a_read_only_file_is_not_replaced(tmp_path):
    target = tmp_path / "v.store"
    target.write_bytes(b"precious")
    target.chmod(0o444)
    with pytest.raises(PermissionError, match=rf"^cannot save to {re.escape(str(target))}: the file is read-only "
                                              r"\(mode 0444\); make it writable or save elsewhere$"):
        WordVectors(["a"], [[1.0, 2.0]]).save(target)
    assert target.read_bytes() == b"precious" and os.listdir(tmp_path) == ["v.store"]


@pytest.mark.parametrize("how", ["same path", "symlink", "hardlink", "another spelling"])
def test_convert_refuses_to_write_over_its_input(tmp_path, capsys, gensim_test_glove, how, monkeypatch):
    source = tmp_path / "in.txt"
    shutil.copy(gensim_test_glove, source)
    before = source.read_bytes()
    output = {"same path": source, "symlink": tmp_path / "link.txt", "hardlink": tmp_path / "hard.txt",
              "another spelling": tmp_path / "sub" / ".." / "in.txt"}[how]
    if how == "symlink":
        output.symlink_to(source)
    elif how == "hardlink":
        os.link(source, output)
    elif how == "another spelling":
        (tmp_path / "sub").mkdir()
    code = glove_main(["convert", str(source), str(output)])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"glove convert: error: {output} is the input file {source} itself (or a link to it): "
                          "writing it would destroy what is being read")
    assert source.read_bytes() == before


# ----- 10. temporary files: killed saves, concurrent saves, SIGTERM -------------------------------------------------


CHILD = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from glove import WordVectors
    target, how = sys.argv[1], sys.argv[2]
    # Each test says how the signal is to be handled; the parent may have left it ignored (nohup ignores SIGHUP).
    if how.endswith("-ignored"):
        how = how[:-len("-ignored")]
        signal.signal(getattr(signal, how), signal.SIG_IGN)
    elif how != "SIGKILL":
        signal.signal(getattr(signal, how), signal.SIG_DFL)
    real_fdopen = os.fdopen

    class Dying:  # the save's file: after its first write, the process gets the signal
        def __init__(self, f):
            self.f = f
        def write(self, data):
            n = self.f.write(data)
            self.f.flush()
            os.kill(os.getpid(), getattr(signal, how))
            return n
        def __getattr__(self, name):
            return getattr(self.f, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    os.fdopen = lambda *a, **k: Dying(real_fdopen(*a, **k))
    WordVectors([f"w{i}" for i in range(1000)], np.ones((1000, 50))).save(target)
    print("the save finished")
""")


def run_child(target, how):
    return subprocess.run([sys.executable, "-c", CHILD, str(target), how], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def temporaries(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


@pytest.mark.parametrize("how", ["SIGTERM", "SIGHUP"])
def test_sigterm_during_a_save_removes_the_temporary_file_and_keeps_the_old_file(tmp_path, how):
    target = tmp_path / "v.store"
    WordVectors(["old"], [[1.0, 2.0]]).save(target)
    before = target.read_bytes()
    result = run_child(target, how)
    assert result.returncode == -getattr(signal, how), result.stderr  # the signal still ends the process
    assert "the save finished" not in result.stdout
    assert temporaries(tmp_path) == [] and target.read_bytes() == before


def test_a_signal_the_program_ignores_stays_ignored_and_the_save_finishes(tmp_path):
    """glove takes over SIGTERM and SIGHUP during a save only where they have their default action. A program
    that ignores SIGHUP (as under nohup) keeps ignoring it: the save goes on, and the new file replaces the old."""
    target = tmp_path / "v.store"
    WordVectors(["old"], [[1.0, 2.0]]).save(target)
    result = run_child(target, "SIGHUP-ignored")
    assert result.returncode == 0 and "the save finished" in result.stdout, result.stderr
    assert temporaries(tmp_path) == [] and len(WordVectors.load(target).index_to_key) == 1000


def test_a_save_killed_by_sigkill_leaves_a_temporary_file_that_the_next_save_removes(tmp_path):
    target = tmp_path / "v.store"
    result = run_child(target, "SIGKILL")
    assert result.returncode == -signal.SIGKILL
    (left,) = temporaries(tmp_path)
    assert left.startswith(".v.store.") and not target.exists()
    WordVectors(["new"], [[1.0, 2.0]]).save(target)
    assert temporaries(tmp_path) == [] and WordVectors.load(target).index_to_key == ["new"]


def test_stale_temporaries_are_told_from_live_writers(tmp_path):
    target = tmp_path / "v.store"
    host = atomic._host_tag()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        files = {
            "live writer": f".v.store.{sleeper.pid}-{host}-00aa.tmp",
            "this process": f".v.store.{os.getpid()}-{host}-00bb.tmp",  # another thread may be saving
            "dead writer": f".v.store.{dead.stdout.strip()}-{host}-00cc.tmp",
            "other host, fresh": f".v.store.1-0badcafe-00dd.tmp",
            "other host, old": f".v.store.1-0badcafe-00ee.tmp",
            "live writer, old": f".v.store.{sleeper.pid}-{host}-00ff.tmp",
            "another target": f".w.store.1-{host}-0011.tmp",
            "not ours": ".v.store.abc.tmp",
        }
        for name in files.values():
            (tmp_path / name).write_bytes(b"partial")
        old = time.time() - atomic.STALE_AFTER_S - 60
        for key in ("other host, old", "live writer, old"):
            os.utime(tmp_path / files[key], (old, old))
        WordVectors(["a"], [[1.0, 2.0]]).save(target)
        kept = set(temporaries(tmp_path))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert kept == {files[k] for k in ("live writer", "this process", "other host, fresh", "another target", "not ours")}


def test_concurrent_saves_to_one_file_from_threads(tmp_path):
    target = tmp_path / "v.store"
    stores = [WordVectors([f"t{t}-{i}" for i in range(2000)], np.full((2000, 20), t, dtype=np.float32)) for t in range(4)]
    errors = []

    def save(store):
        try:
            for _ in range(5):
                store.save(target)
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=save, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = WordVectors.load(target)
    assert any(final.index_to_key == s.index_to_key and np.array_equal(final.vectors, s.vectors) for s in stores)
    assert temporaries(tmp_path) == []


def test_queries_from_threads_agree_with_one_thread(small):
    store, _ = small
    fresh = WordVectors(store.index_to_key, np.array(store.vectors))  # norms not computed yet: threads race for them
    words = store.index_to_key[:40]
    expected = [store.most_similar(w, topn=5) for w in words]
    results = [None] * 8

    def ask(t):
        results[t] = [fresh.most_similar(w, topn=5) for w in words]

    threads = [threading.Thread(target=ask, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result == expected for result in results)


# ----- 11. the command line: -o into a folder that is missing or read-only --------------------------------------------


def assert_one_error_line(err, command, *parts):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"glove {command}: error: "), err
    for part in parts:
        assert part in lines[0]


def test_cli_output_into_a_missing_folder(tmp_path, capsys, gensim_test_glove):
    missing = tmp_path / "missing" / "v.store"
    code = glove_main(["convert", str(gensim_test_glove), str(missing)])
    assert code == 1
    assert_one_error_line(capsys.readouterr().err, "convert",
                          f"cannot save {missing}: the folder {missing.parent} does not exist")
    code = glove_main(["plot", "the", "of", "and", "-o", str(tmp_path / "missing" / "p.png"),
                       "--model", str(gensim_test_glove)])
    assert code == 1
    assert_one_error_line(capsys.readouterr().err, "plot", "does not exist")


def test_cli_output_into_a_read_only_folder(tmp_path, capsys, gensim_test_glove):
    folder = tmp_path / "locked"
    folder.mkdir()
    with read_only_folder(folder):
        code = glove_main(["convert", str(gensim_test_glove), str(folder / "v.store")])
        assert code == 1
        assert_one_error_line(capsys.readouterr().err, "convert", f"cannot save {folder / 'v.store'}")
        code = glove_main(["plot", "the", "of", "and", "-o", str(folder / "p.png"), "--model", str(gensim_test_glove)])
        assert code == 1
        assert_one_error_line(capsys.readouterr().err, "plot", f"cannot write {folder / 'p.png'}")
    assert os.listdir(folder) == []


def test_cli_output_onto_a_read_only_file(tmp_path, capsys, gensim_test_glove):
    target = tmp_path / "v.store"
    target.write_bytes(b"keep")
    target.chmod(0o444)
    code = glove_main(["convert", str(gensim_test_glove), str(target)])
    assert code == 1
    assert_one_error_line(capsys.readouterr().err, "convert", "the file is read-only (mode 0444)")
    assert target.read_bytes() == b"keep"



# ----- 12. nothing left to answer with, a line without its word, a store with a word twice ------------------------


def test_an_analogy_with_no_word_left_is_an_error_though_most_similar_is_empty_as_in_gensim(tmp_path, capsys):
    path = tmp_path / "abc.txt"
    path.write_text("a 1 0\nb 0 1\nc 1 1\n")  # only the question's own words
    store, kv = WordVectors.load(path), KeyedVectors.load_word2vec_format(path, no_header=True)
    query = dict(positive=["b", "c"], negative=["a"], topn=1)
    assert store.most_similar(**query) == kv.most_similar(**query) == []
    with pytest.raises(ValueError) as caught:
        store.analogy("a", "b", "c")
    assert str(caught.value) == ("'a' : 'b' :: 'c' : ?: no word is left to answer with; the 3 words searched are "
                                 "only the question's own words")
    zero = WordVectors(["a", "b", "c", "zero", "d"], [[1, 0], [0, 1], [1, 1], [0, 0], [1, 2]])
    with pytest.raises(ValueError, match=r"the 4 words searched are only the question's own words and 1 word "
                                         r"without a direction \(length 0\)$"):
        zero.analogy("a", "b", "c", restrict_vocab=4)
    assert zero.analogy("a", "b", "c")[0] == "d"  # with every word searched, d is left
    assert glove_main(["analogy", "a", "b", "c", "--model", str(path)]) == 1
    assert_one_error_line(capsys.readouterr().err, "analogy", "'a' : 'b' :: 'c' : ?: no word is left to answer with")


@pytest.mark.parametrize("parser", ["pyarrow", "numpy"])
@pytest.mark.parametrize("header", ["", "3 3\n"])
def test_a_line_starting_with_a_space_is_refused_naming_file_and_line(tmp_path, capsys, parser, header):
    path = tmp_path / "blank.txt"
    path.write_text(f"{header}king 1 2 3\n 1 2 3.1\nqueen 1 2 2.9\n")
    # gensim reads it as the word "", which would then answer queries as a blank
    assert "" in KeyedVectors.load_word2vec_format(path, no_header=not header).key_to_index
    with pytest.raises(FormatError) as caught:
        WordVectors.load(path, parser=parser)
    line = 2 + bool(header)
    assert str(caught.value) == f"{path}, line {line}: the word is empty (''): the line starts with a space"
    assert glove_main(["similar", "king", "--model", str(path)]) == 1
    assert_one_error_line(capsys.readouterr().err, "similar", f"{path}, line {line}: the word is empty")


@pytest.mark.parametrize("parser", ["pyarrow", "numpy"])
def test_a_word_that_is_a_space_still_loads(tmp_path, parser):
    """Two spaces before the numbers: the word is " ", which gensim's save_word2vec_format writes for a
    tokenizer's space token (and cannot read back). A word is everything before the last D numbers."""
    path = tmp_path / "space.txt"
    path.write_text("king 1 2 3\n  1 2 3.1\nqueen 1 2 2.9\n")
    assert WordVectors.load(path, parser=parser).index_to_key == ["king", " ", "queen"]


@pytest.mark.parametrize("mmap", [False, True])
def test_a_store_holding_a_word_twice_is_refused_naming_the_word(tmp_path, capsys, mmap):
    path = tmp_path / "twice.store"
    formats.write(path, ["king", "queen", "king"], np.float32([[1, 0, 0], [1, 0.1, 0], [1, 0, 0.01]]))
    store = WordVectors.load(path, mmap=mmap)  # opened without hashing its words: checked on first use
    message = (f"{path}, the words of the store: word 'king' is there twice (words 1 and 3); a store is saved with "
               "each word once, so it is damaged")
    for call in (lambda: store.most_similar("king"), lambda: "queen" in store, lambda: store["king"]):
        with pytest.raises(FormatError) as caught:
            call()
        assert str(caught.value) == message
    assert glove_main(["similar", "king", "--model", str(path)]) == 1  # it answered "king" to itself
    assert_one_error_line(capsys.readouterr().err, "similar", message)


# ----- 13. non-finite weights, and queries that overflow: refused, naming the word and the weight -------------------
# gensim adds a query's weighted unit vectors in float32 (the vectors' type): a NaN or infinite weight, or one so
# large that the sum overflows, makes every score NaN, and gensim returns words with those scores.


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_weight_is_refused_naming_the_word(small, weight):
    store, kv = small
    with np.errstate(all="ignore"):
        assert np.isnan(kv.most_similar(positive=[("the", weight)], topn=1)[0][1])  # gensim: a word, scored NaN
    with pytest.raises(ValueError) as caught:
        store.most_similar(positive=[("the", weight)], negative=["of"])
    assert str(caught.value) == f"the weight of 'the' is {weight}: a weight must be a finite number"
    with pytest.raises(ValueError) as caught:
        store.get_mean_vector(["of", "the"], weights=[1.0, weight])
    assert str(caught.value) == f"the weight of 'the' is {weight}: a weight must be a finite number"


def test_a_weight_too_large_for_the_querys_float32_sum_is_refused_naming_it(small):
    store, kv = small
    with np.errstate(all="ignore"):
        assert np.isnan(kv.most_similar(positive=[("the", 1e300)], topn=1)[0][1])
    with pytest.raises(ValueError) as caught:
        store.most_similar(positive=[("of", 1.0), ("the", 1e300)])
    assert str(caught.value) == ("the query overflows float32 when 'the' (weight 1e+300) is added: only the ratios of "
                                 "the weights matter, so scale them down")
    with pytest.raises(ValueError, match=r"^the query overflows float32 when 'of' \(weight 3e\+38\) is added"):
        store.most_similar(positive=[("the", 3e38), ("of", 3e38)])  # each fits in float32, their sum does not
    with pytest.raises(ValueError, match=r"^the weight of 'the' is 1e\+300, which float32 \(the vectors' type\) "
                                         r"cannot hold: only the ratios of the weights matter, so scale them down$"):
        store.get_mean_vector(["the"], weights=[1e300])  # gensim turns the weights into float32 first: inf
    with pytest.raises(ValueError, match=r"^the query overflows float32 when 'the' \(weight 3e\+38\) is added"):
        store.get_mean_vector(["the", "of"], weights=[3e38, 3e38], pre_normalize=False)  # 'the' has values > 1.2
    assert np.isfinite(store.most_similar(positive=[("the", 1e30), ("of", 2e30)], topn=1)[0][1])  # large is fine


def test_a_vector_too_large_for_the_querys_float32_sum_is_refused(small):
    store, kv = small
    huge = np.full(50, 1e300)  # finite in float64, not in the float32 sum
    with np.errstate(all="ignore"):
        assert np.isnan(kv.similar_by_vector(huge, topn=1)[0][1])
    message = ("the query overflows float32 when the vector given (largest value 1e+300) is added: only its "
               "direction matters, so scale it down")
    for call in (lambda: store.similar_by_vector(huge), lambda: store.most_similar(positive=["the", huge]),
                 lambda: store.get_mean_vector([huge]), lambda: store.n_similarity([huge], ["the"])):
        with pytest.raises(ValueError) as caught:
            call()
        assert str(caught.value) == message


def test_distances_and_cosines_refuse_a_vector_whose_length_overflows(small):
    store, kv = small
    huge = np.full(50, 1e300)
    with np.errstate(all="ignore"):
        assert kv.distances(huge, ["the"]).tolist() == [1.0]  # gensim: its length is inf, every cosine 0
    for call in (lambda: store.distances(huge), lambda: store.distances(huge, ["the"]),
                 lambda: WordVectors.cosine_similarities(huge, store.vectors[:3])):
        with pytest.raises(ValueError) as caught:
            call()
        assert str(caught.value) == ("the length of the vector given overflows float64 (largest value 1e+300): its "
                                     "cosines would all be 0; only its direction matters, so scale it down")
    rows = np.vstack([store["the"], np.full(50, 1e300)])
    with pytest.raises(ValueError, match=r"^the length of row 1 of vectors_all overflows float64 \(largest value "
                                         r"1e\+300\)"):
        WordVectors.cosine_similarities(store["the"], rows)
    with pytest.raises(ValueError, match=r"^vector_1 holds NaN or infinite values"):
        WordVectors.cosine_similarities(np.full(50, np.nan), store.vectors[:3])


def test_distances_from_a_word_without_a_direction_is_an_error_naming_it(small):
    store, _ = small
    zeros = with_rows(store, ["zero"], np.zeros((1, 50)))
    for call in (lambda: zeros.distances("zero"), lambda: zeros.distances("zero", ["the"]),
                 lambda: zeros.closer_than("zero", "the"), lambda: zeros.rank("zero", "the")):
        with pytest.raises(ValueError, match="word 'zero' has an all-zero vector: it has no direction"):
            call()


def test_cosmul_refuses_a_vector_whose_scores_overflow(small):
    store, kv = small
    huge = np.full(50, 1e300)
    with np.errstate(all="ignore"):
        assert not np.isfinite(kv.most_similar_cosmul(positive=[huge, huge], topn=1)[0][1])  # gensim: inf scores
    with pytest.raises(ValueError) as caught:
        store.most_similar_cosmul(positive=[huge, huge])
    assert str(caught.value) == ("most_similar_cosmul: the scores overflow float64 with the vectors given (largest "
                                 "value 1e+300): gensim takes a vector given as it is, not at unit length, so scale "
                                 "it to length 1")


# ----- 14. a word2vec binary file that is not what its header says ----------------------------------------------------


def four_words(tmp_path, name="v.bin"):
    """king, queen, man, woman with 4 seeded random dimensions, written as word2vec binary (glove's writer, which
    ends each record with a newline as the C tool does): (path, store)."""
    store = WordVectors(["king", "queen", "man", "woman"], np.random.default_rng(22).standard_normal((4, 4)))
    path = tmp_path / name
    store.save_word2vec_format(path, binary=True)
    return path, store


@pytest.mark.parametrize("limit", [None, 1, 2])
def test_a_text_file_read_as_binary_is_refused_with_the_way_to_read_it(tmp_path, limit):
    path = tmp_path / "v.txt"
    WordVectors(["king", "queen", "man", "woman"], np.arange(16).reshape(4, 4) / 7 + 0.1).save_word2vec_format(path)
    # gensim reads each word's 16 bytes of text as 4 float32s, and then returns words such as '0000000\nqueen'.
    assert any("\n" in word for word in KeyedVectors.load_word2vec_format(path, binary=True).index_to_key)
    with pytest.raises(FormatError) as caught:
        WordVectors.load_word2vec_format(path, binary=True, limit=limit)  # even when asked for one word
    assert re.fullmatch(rf"{re.escape(str(path))}, word \d of 4 \(byte \d+\): the word '\d+\\n\w+' holds a newline, "
                        r"which no word of a word2vec binary file can \(a newline may only come before a word\); the "
                        r"file looks like word2vec text: load it with binary=False", str(caught.value)), caught.value
    assert WordVectors.load_word2vec_format(path, binary=False).index_to_key == ["king", "queen", "man", "woman"]


def test_a_long_text_file_read_as_binary_is_said_to_be_text_not_a_wrong_dimension(tmp_path):
    """Pieces of text lines can pass for binary records of some other size: the text is recognised first."""
    path = tmp_path / "v.txt"
    rng = np.random.default_rng(1)
    WordVectors([f"w{i}" for i in range(3000)], rng.standard_normal((3000, 50))).save_word2vec_format(path)
    with pytest.raises(FormatError, match=r"the file looks like word2vec text: load it with binary=False$"):
        WordVectors.load_word2vec_format(path, binary=True, limit=5)


def test_a_newline_inside_a_binary_word_is_refused_naming_the_record(tmp_path):
    path = tmp_path / "v.bin"
    path.write_bytes(b"2 1\nab " + np.float32([1]).tobytes() + b"\ncd\nef " + np.float32([2]).tobytes())
    assert KeyedVectors.load_word2vec_format(path, binary=True).index_to_key == ["ab", "cd\nef"]
    with pytest.raises(FormatError) as caught:
        WordVectors.load(path)
    assert str(caught.value) == (f"{path}, word 2 of 2 (byte 11): the word 'cd\\nef' holds a newline, which no word "
                                 "of a word2vec binary file can (a newline may only come before a word)")


@pytest.mark.parametrize("before", [b"", b"\n"])
def test_an_empty_word_in_a_binary_file_is_refused_naming_the_record(tmp_path, before):
    path = tmp_path / "v.bin"
    path.write_bytes(b"2 1\nab " + np.float32([1]).tobytes() + before + b" " + np.float32([2]).tobytes())
    assert KeyedVectors.load_word2vec_format(path, binary=True).index_to_key == ["ab", ""]  # gensim: the word ""
    with pytest.raises(FormatError) as caught:
        WordVectors.load(path, binary=True)
    assert str(caught.value) == (f"{path}, word 2 of 2 (byte 11): the word is empty (''): a record starts with its "
                                 "word, then a space")


@pytest.mark.parametrize("fmt", ["word2vec-binary", "word2vec", "glove"])
def test_the_writer_refuses_the_empty_word_that_the_readers_refuse(tmp_path, fmt):
    path = tmp_path / "v.out"
    with pytest.raises(ValueError) as caught:
        WordVectors(["a", ""], [[1.0, 2.0], [3.0, 4.0]]).save(path, format=fmt)
    assert str(caught.value) == (f"cannot write the empty word (word 2) in {fmt} format: its line or record would "
                                 "start with its numbers, which glove's readers refuse")
    assert not path.exists()
    store = tmp_path / "v.store"
    WordVectors(["a", ""], [[1.0, 2.0], [3.0, 4.0]]).save(store)  # the store's own format keeps it
    assert WordVectors.load(store).index_to_key == ["a", ""]


@pytest.mark.parametrize("claimed", [5, 3, 8])
@pytest.mark.parametrize("limit", [None, 2])
def test_a_binary_header_with_the_wrong_dimension_says_so(tmp_path, claimed, limit):
    path, _ = four_words(tmp_path)
    data = path.read_bytes()
    assert data.startswith(b"4 4\n")
    path.write_bytes(f"4 {claimed}\n".encode() + data[4:])
    with pytest.raises(FormatError) as caught:  # was: "the word is not UTF-8", "the file ends inside this record",
        WordVectors.load_word2vec_format(path, binary=True, limit=limit)  # or, with limit=2, the word 'en'
    assert str(caught.value) == (f"{path}, word 1 of 4 (byte 4): the header (line 1) says {claimed} dimensions, but "
                                 f"the records hold 4 (16 bytes of float32 after each word, not {4 * claimed}); "
                                 "correct the header to '4 4'")
    assert not isinstance(caught.value, UnicodeDecodeError)


def test_a_right_header_and_a_damaged_word_is_still_a_utf8_error(tmp_path):
    path, _ = four_words(tmp_path)
    data = path.read_bytes()
    start = data.index(b"man")
    path.write_bytes(data[:start] + b"m\xe9n" + data[start + 3:])  # latin-1 inside a UTF-8 file
    with pytest.raises(EncodingError, match=rf"{re.escape(str(path))}, word 3 of 4 \(byte {start - 1}\): the word is "
                                            r"not UTF-8"):
        WordVectors.load(path)
    assert WordVectors.load(path, limit=2).index_to_key == ["king", "queen"]  # the words asked for are whole
