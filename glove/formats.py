"""Reading and writing word vectors: GloVe text, word2vec text and binary, and the store's own format.

`read(path)` looks at the first bytes of a file and picks the format itself:

    first bytes                        format
    ---------------------------------  ----------------------------------------------------
    STORE_MAGIC                        the store's own: a JSON header, the words, raw floats
    "N D" (two integers), then text    word2vec text: the header, then one "word v1 .. vD" a line
    "N D", then raw bytes              word2vec binary: the header, then "word " + D float32s
    anything else                      GloVe text: "word v1 .. vD" on every line, no header

`binary=` and `no_header=` (gensim's names) override the guess where it cannot be right: a binary file
whose first word starts with a newline, a GloVe file whose first line is two integers.

Text is UTF-8 unless told otherwise; a UTF-8 byte order mark at the start (which Windows' Notepad writes) is
not part of the first word or the header. A word is everything before the last D numbers of its line, so a
token with spaces (GloVe 840B has some) is kept whole. Every number is parsed as float64 and then rounded
to float32, the way gensim does it, so a text file loads bit for bit as gensim loads it.

Anything malformed raises `FormatError` (a ValueError), which names the file and the line, the record,
or the header field. Two kinds also carry the class gensim's readers raise, so that code written for
gensim catches them: `TruncatedFileError` is an EOFError, `EncodingError` a UnicodeDecodeError. Unlike
gensim, a NaN or infinite value is refused: no query on such a vector means anything.

Text is parsed by pyarrow's CSV reader when pyarrow is installed (1 s for GloVe 6B 50d), and by a
Python + numpy loop (4.5 s) otherwise, or whenever pyarrow cannot take a file as it is (tokens with
spaces, trailing spaces, a bad value): the loop then parses it, or says exactly what is wrong.

Every writer is atomic (see `glove.atomic`): an interrupted save leaves the previous file, or none.
"""

from __future__ import annotations

import codecs
import json
import os
from collections import Counter
from numbers import Integral
from pathlib import Path

import numpy as np

from .atomic import atomic_write

# The store's own format starts with this line. 0x93 never starts UTF-8 text, so no text file is mistaken
# for a store. After it: one JSON line, the words joined by "\n", zero padding up to a multiple of 64
# bytes, then the (N, D) rows as little-endian floats.
STORE_MAGIC = b"\x93GLOVE-STORE\n"
STORE_VERSION = 1
STORE_FIELDS = ("version", "rows", "dim", "dtype", "words_bytes")
STORE_DTYPES = {"<f2": np.float16, "<f4": np.float32, "<f8": np.float64}
FORMATS = ("store", "glove", "word2vec", "word2vec-binary")
# The formats a file's extension names; any other extension is the store's. A .txt file may hold either text
# format (GloVe's has no header line, word2vec's has one).
FORMATS_OF_EXTENSION = {".txt": ("glove", "word2vec"), ".bin": ("word2vec-binary",), ".store": ("store",)}


def format_for(path, asked: str | None = None, text: str = "glove") -> str:
    """The format to write `path` in: `asked` where given, else the one its extension names (`text` for .txt:
    "glove" or "word2vec"), else the store. A `asked` format that the extension contradicts (the store into
    words.txt, say) is refused: a reader goes by the name and would misread the file."""
    named = FORMATS_OF_EXTENSION.get(Path(path).suffix.lower())
    if asked is None:
        return (text if len(named) > 1 else named[0]) if named else "store"
    if named is not None and asked not in named:
        says = "text (glove or word2vec)" if len(named) > 1 else named[0]
        raise ValueError(f"format {asked!r} does not match the name {path}, whose {Path(path).suffix} says {says}; "
                         "rename the file or change the format")
    return asked

_CHUNK_LINES = 20_000  # lines the fallback parser hands to numpy at once


class FormatError(ValueError):
    """A malformed word-vector file. The message names the file and where in it: a line, a record, a field."""

    def __init__(self, path, where, problem: str):
        self._set(path, where, problem)
        super().__init__(self.message)

    def _set(self, path, where, problem: str) -> None:
        self.path, self.where = path, f"line {where}" if isinstance(where, int) else where
        self.message = f"{path}, {self.where}: {problem}"

    def __str__(self):
        return self.message


class TruncatedFileError(FormatError, EOFError):
    """The file ends before what its header (or its last record) promises. Also an EOFError, as in gensim."""


class EncodingError(FormatError, UnicodeDecodeError):
    """Bytes that are not text in the file's encoding. Also a UnicodeDecodeError (with its encoding, object,
    start, end and reason), as in gensim, but the message names the file and the line."""

    def __init__(self, path, where, error: UnicodeDecodeError, what: str = "is not"):
        UnicodeDecodeError.__init__(self, error.encoding, error.object, error.start, error.end, error.reason)
        encoding = "UTF-8" if error.encoding == "utf-8" else error.encoding
        self._set(path, where, f"{what} {encoding} ({error.reason} at byte {error.start}); "
                               "unicode_errors='replace' or 'ignore' reads it anyway")


# ---------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------


def detect_format(path, binary: bool | None = None, no_header: bool | None = None) -> str:
    """One of FORMATS: from `binary` and `no_header` where they are given, else from the first bytes."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if not head.strip():
        raise FormatError(path, 1, "the file is empty")
    if head.startswith(STORE_MAGIC):
        if binary is not None or no_header is not None:
            raise ValueError(f"{path} is a glove store: binary= and no_header= are for word2vec and GloVe files")
        return "store"
    if binary and no_header:
        raise ValueError(f"{path}: no_header=True is for text files; a word2vec binary file starts with its "
                         "'COUNT DIMENSIONS' header")
    if no_header:
        return "glove"
    header = _word2vec_header(head)
    if header is None:
        if binary or no_header is False:  # the caller said there is a header
            first = head.split(b"\n", 1)[0][:60].decode("utf-8", "replace")
            raise FormatError(path, 1, f"expected the header 'COUNT DIMENSIONS' of a word2vec file, found {first!r} "
                                       "(a GloVe file has no header: no_header=True)")
        return "glove"
    if binary is not None:
        return "word2vec-binary" if binary else "word2vec"
    return "word2vec" if _first_record_is_text(head) else "word2vec-binary"


def _first_record_is_text(head: bytes) -> bool:
    """Whether the line after a word2vec header reads as text ending in a number, as a text record does; raw
    float32 bytes almost never do. Some binary files start each word with a newline: those are skipped first."""
    record = head.split(b"\n", 1)[1].lstrip(b"\n").split(b"\n", 1)[0] if b"\n" in head else b""
    try:
        tokens = record.decode("utf-8").split()
        if tokens:
            float(tokens[-1])
    except ValueError:  # not UTF-8 (UnicodeDecodeError is a ValueError) or not a number
        return False
    return True


def _word2vec_header(head: bytes) -> tuple[int, int] | None:
    """(N, D) if the first line is a word2vec header, i.e. exactly two non-negative integers; else None."""
    fields = head.removeprefix(codecs.BOM_UTF8).split(b"\n", 1)[0].split()
    if len(fields) == 2 and all(field.isdigit() for field in fields):
        return int(fields[0]), int(fields[1])
    return None


def read(path, limit: int | None = None, mmap=False, parser: str = "auto", *, binary: bool | None = None,
         no_header: bool | None = None, datatype=np.float32, unicode_errors: str = "strict",
         encoding: str = "utf-8"):
    """(words, vectors (N, D), format) from a file in any of FORMATS; at most `limit` records (None or 0: all of
    them, as gensim's `if limit:` reads them).

    `mmap=True` (or "r") maps the vectors of a store file read-only instead of reading them; "c" maps them
    copy-on-write (writable in memory, the file unchanged). `parser` picks the text parser: "auto" (pyarrow
    if installed, else numpy), "pyarrow" or "numpy". `binary` and `no_header` (None: guess) say which word2vec
    or GloVe format the file is; `datatype` is the float type of the result (float16, float32 or float64);
    `encoding` and `unicode_errors` decode the words, as in gensim.
    """
    limit = check_count("limit", limit, allow_none=True) or None  # 0 reads every word, as in gensim
    datatype = float_type(datatype)
    if mmap not in (False, True, "r", "c"):
        raise ValueError(f"mmap must be False, True (or 'r': read-only) or 'c' (copy-on-write), not {mmap!r}")
    if parser not in ("auto", "pyarrow", "numpy"):
        raise ValueError(f"parser must be 'auto', 'pyarrow' or 'numpy', not {parser!r}")
    try:
        codecs.lookup_error(unicode_errors)
        encoding = codecs.lookup(encoding).name
    except LookupError as e:
        raise ValueError(f"{e} (encoding={encoding!r}, unicode_errors={unicode_errors!r})") from None
    kind = detect_format(path, binary, no_header)
    if mmap and kind != "store":
        raise ValueError(f"{path}: mmap=True needs the store's own format, this file is {kind}")
    if kind == "store":
        words, vectors = _read_store(path, limit, mmap, datatype)
    elif kind == "word2vec-binary":
        words, vectors = _read_word2vec_binary(path, limit, datatype, encoding, unicode_errors)
    else:
        words, vectors = _read_text(path, limit, kind == "word2vec", parser, datatype, encoding, unicode_errors)
    return words, vectors, kind


def check_count(name: str, value, allow_none: bool = False, minimum: int = 0):
    """`value` as an int of at least `minimum` (None passes if allowed); a float or a bool is a TypeError."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral):
        expected = "a whole number" + (" or None" if allow_none else "")
        raise TypeError(f"{name} must be {expected}, not {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return int(value)


def float_type(datatype) -> np.dtype:
    try:
        dtype = np.dtype(datatype)
    except TypeError:
        dtype = None
    if dtype not in (np.float16, np.float32, np.float64):
        raise TypeError(f"datatype must be np.float16, np.float32 or np.float64, not {datatype!r}")
    return dtype


def _refuse_non_finite(path, vectors: np.ndarray, words: list[str], where_of_row) -> None:
    """Raise FormatError at the first row holding a NaN or an infinity (or a number too big for the dtype)."""
    finite = np.isfinite(vectors).all(axis=1)  # (N,)
    if finite.all():
        return
    row = int(np.argmin(finite))
    column = int(np.argmin(np.isfinite(vectors[row])))
    where, value = where_of_row(row, column)
    raise FormatError(path, where, f"word {words[row]!r}: value {value} (dimension {column + 1}) is not a finite "
                                   f"{vectors.dtype.name}; NaN and infinite values are refused, as no cosine with "
                                   "them means anything")


def _read_text(path, limit, has_header: bool, parser: str, datatype, encoding: str, unicode_errors: str):
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    lines = head.split(b"\n")
    if len(head) == 1 << 20:
        lines = lines[:-1]  # the last one may be cut short
    skip = 1 if has_header else 0
    count, dim = _word2vec_header(head) if has_header else (None, None)
    if count == 0:
        return [], np.empty((0, dim), dtype=datatype)  # what gensim writes for no words
    sample = [line.rstrip().split(b" ") if line.strip() else [] for line in lines[skip : skip + 100]]
    fields = [len(tokens) for tokens in sample]  # word + D, in most lines; 0 for a blank line
    # The commonest field count among the first lines gives D: a rare token with spaces or a ragged
    # row cannot mislead it. On a tie, the fewer fields (the longer lines hold words with spaces),
    # unless what that would join into a word is only numbers: "a 1 2 3" beside "b 1 2" is a ragged
    # file, not the word "a 1", and the larger count then refuses line 2 by name.
    counts = Counter(n for n in fields if n)
    if not counts:
        raise FormatError(path, 1 + skip, "is empty")
    tied = sorted(n for n in counts if counts[n] == max(counts.values()))
    # With n fields a line of more reads tokens[1 : len - n + 1] as the rest of its word.
    plausible = [n for n in tied if not any(_only_numbers(tokens[1:len(tokens) - n + 1])
                                            for tokens in sample if len(tokens) > n)]
    usual_dim = (plausible[0] if plausible else tied[-1]) - 1
    if not has_header:
        dim = usual_dim
    elif usual_dim != dim:
        line_no = 1 + skip + fields.index(usual_dim + 1)
        raise FormatError(path, line_no, f"has {usual_dim} values, but the header (line 1) says {dim}")
    if dim < 1:
        raise FormatError(path, 1 + skip, "has no numbers after the word")

    rows = _count_lines(path) - skip
    if has_header and rows < count and (limit is None or rows < limit):
        raise TruncatedFileError(path, rows + skip + 1, f"the file ends after {rows} words, but the header says {count}")
    if has_header:
        rows = count  # like gensim, read as many words as the header announces
    if limit is not None:
        rows = min(rows, limit)

    result = None
    if parser in ("auto", "pyarrow") and encoding == "utf-8":
        result = _parse_text_pyarrow(path, skip, dim, rows, datatype, required=(parser == "pyarrow"))
    if result is None:
        result = _parse_text_numpy(path, skip, dim, rows, datatype, encoding, unicode_errors)
    words, vectors = result

    def where_of_row(row, column):
        line_no = skip + row + 1
        values = _read_line(path, line_no).rstrip().rsplit(b" ", dim)[1:]
        return line_no, values[column].decode("ascii", "replace")

    _refuse_non_finite(path, vectors, words, where_of_row)
    return words, vectors


def _only_numbers(tokens: list[bytes]) -> bool:
    """Whether every one of `tokens` reads as a float."""
    try:
        for token in tokens:
            float(token)
    except ValueError:
        return False
    return True


def _read_line(path, line_no: int) -> bytes:
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if number == line_no:
                return line
    return b""


def _count_lines(path) -> int:
    """Lines in the file; a last line without its newline counts too."""
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def _parse_text_pyarrow(path, skip: int, dim: int, rows: int, datatype, required: bool):
    """The fast path: pyarrow's multithreaded CSV reader, in small blocks so memory stays ~ the result.

    Returns None when pyarrow is missing (unless `required`) or rejects the file; the numpy parser
    then takes over, and it can say which line is wrong.
    """
    try:
        import pyarrow as pa
        import pyarrow.csv as csv
    except ImportError:
        if required:
            raise
        return None

    names = ["word"] + [f"v{i}" for i in range(dim)]
    reader_options = dict(
        read_options=csv.ReadOptions(column_names=names, skip_rows=skip, block_size=1 << 18),
        # No quoting: GloVe words include '"'. No escapes, no empty lines, no "NA"-style nulls.
        parse_options=csv.ParseOptions(delimiter=" ", quote_char=False, ignore_empty_lines=False),
        # float64 first, then float32: the rounding gensim does (pyarrow's own float32 rounds directly,
        # which differs for a few decimal strings).
        convert_options=csv.ConvertOptions(
            column_types={"word": pa.string(), **{name: pa.float64() for name in names[1:]}}, null_values=[]
        ),
        # Plain malloc: the blocks pyarrow frees go back to the heap that the words and the index use next,
        # instead of staying in a pool of its own (that saves ~40 MB of peak memory on GloVe 6B 50d).
        memory_pool=pa.system_memory_pool(),
    )
    vectors = np.empty((rows, dim), dtype=datatype)  # (N, D), filled block by block
    words: list[str] = []
    try:
        for batch in csv.open_csv(path, **reader_options):
            take = min(batch.num_rows, rows - len(words))
            start = len(words)
            with np.errstate(over="ignore"):  # a number too big for the dtype is refused by the caller
                for j in range(dim):
                    vectors[start : start + take, j] = batch.column(j + 1).to_numpy()[:take]
            words += batch.column(0).to_pylist()[:take]
            if len(words) == rows:
                break
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None  # a line pyarrow cannot take as it is; the numpy parser handles or names it
    if len(words) != rows:
        return None
    return words, vectors


def _parse_text_numpy(path, skip: int, dim: int, rows: int, datatype, encoding: str, unicode_errors: str):
    """The careful path: Python splits off each word, numpy parses the numbers a chunk at a time."""
    vectors = np.empty((rows, dim), dtype=datatype)  # (N, D)
    words: list[str] = []
    numbers: list[str] = []  # the number part of each line in the current chunk
    first_line_of_chunk = skip + 1
    with open(path, "rb") as f:
        for _ in range(skip):
            f.readline()
        for line_no, raw in enumerate(f, start=skip + 1):
            if len(words) == rows:
                break
            if line_no == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)  # as pyarrow's reader: not part of the first word
            try:
                line = raw.decode(encoding, unicode_errors).rstrip()
            except UnicodeDecodeError as e:
                raise EncodingError(path, line_no, e) from None
            if not line:
                raise FormatError(path, line_no, "is empty")
            parts = line.rsplit(" ", dim)  # [word, v1, .., vD]; the word may hold spaces
            if len(parts) != dim + 1:
                raise FormatError(path, line_no, f"has {len(parts) - 1} values, expected {dim}")
            words.append(parts[0])
            numbers.append(line[len(parts[0]) + 1 :])
            if len(numbers) == _CHUNK_LINES:
                _parse_numbers(path, numbers, first_line_of_chunk, vectors[len(words) - len(numbers) : len(words)])
                first_line_of_chunk, numbers = line_no + 1, []
    if numbers:
        _parse_numbers(path, numbers, first_line_of_chunk, vectors[len(words) - len(numbers) : len(words)])
    if len(words) != rows:
        raise TruncatedFileError(path, skip + len(words) + 1, f"the file ends after {len(words)} of {rows} words")
    return words, vectors


def _parse_numbers(path, numbers: list[str], first_line: int, out: np.ndarray) -> None:
    """Parse lines of D numbers into `out` (n, D), or name the line and the value that is not a number."""
    try:
        with np.errstate(over="ignore"):  # a number too big for float16/float32 is refused by the caller
            out[:] = np.loadtxt(numbers, dtype=np.float64, delimiter=" ", comments=None, quotechar=None, ndmin=2)
        return
    except ValueError:
        pass
    for line_no, text in enumerate(numbers, start=first_line):
        for value in text.split(" "):
            try:
                float(value)
            except ValueError:
                raise FormatError(path, line_no, f"value {value!r} is not a number") from None
    raise FormatError(path, first_line, f"numpy could not parse lines {first_line}-{first_line + len(numbers) - 1}")


def _read_word2vec_binary(path, limit, datatype, encoding: str, unicode_errors: str):
    """word2vec's binary format: "N D\\n", then per word: the word, a space, D little-endian float32s.

    A record may start with newlines (the C tool ends each record with one, gensim's writer does not); they are
    not part of the word. A word is never empty and holds no newline: the writer refuses both, and a reader that
    took them would return garbage words, the mark of a text file read as binary or of a header that is wrong.
    """
    data = Path(path).read_bytes()
    header_end = data.index(b"\n") + 1
    count, dim = _word2vec_header(data)
    if count and dim < 1:
        raise FormatError(path, 1, f"the header says {count} words of {dim} dimensions")
    wanted = count if limit is None else min(count, limit)
    _check_binary_records(path, data, header_end, count, dim, encoding, unicode_errors)
    # Each record takes at least a space and 4 * D bytes: check the header against the file's size
    # before allocating what it asks for.
    least = wanted * (1 + 4 * dim)
    if least > len(data) - header_end:
        raise TruncatedFileError(path, 1, f"the header says {count} words of {dim} dimensions, which take at least "
                                          f"{least:,} bytes, but the file has {len(data) - header_end:,} after it")
    vectors = np.empty((wanted, dim), dtype=datatype)  # (N, D)
    words = []
    record_bytes = 4 * dim
    pos = header_end
    for i in range(wanted):
        where = f"word {i + 1} of {count} (byte {pos})"
        space = data.find(b" ", pos)
        if space < 0 or space + 1 + record_bytes > len(data):
            raise TruncatedFileError(path, where, "the file ends inside this record")
        try:
            word = _binary_word(data[pos:space], encoding, unicode_errors)
        except UnicodeDecodeError as e:
            raise EncodingError(path, where, e, what="the word is not") from None
        if not word or "\n" in word:
            raise FormatError(path, where, _binary_word_problem(word))
        words.append(word)
        vectors[i] = np.frombuffer(data, dtype="<f4", count=dim, offset=space + 1)
        pos = space + 1 + record_bytes

    def where_of_row(row, column):
        start = header_end
        for _ in range(row):  # only on the error path: find the record again
            start = data.find(b" ", start) + 1 + record_bytes
        return f"word {row + 1} of {count} (byte {start})", repr(float(vectors[row, column]))

    _refuse_non_finite(path, vectors, words, where_of_row)
    return words, vectors


_RECORDS_AHEAD = 100  # records of a binary file read ahead, whatever `limit` asks for, to check its layout


def _check_binary_records(path, data: bytes, start: int, count: int, dim: int, encoding: str, unicode_errors: str):
    """Read the first records ahead, and where they do not read cleanly, say why if it can be told: a header
    whose dimension is not the records' (they read cleanly at exactly one other), or a text file read as binary.
    Other problems are left to the reader, which names them where they lie among the words asked for."""
    ahead = min(count, _RECORDS_AHEAD)
    to_the_end = count <= _RECORDS_AHEAD  # all the records: then nothing but newlines may follow them
    first_bad = _first_unreadable_record(data, start, ahead, dim, encoding, unicode_errors, to_the_end)
    if first_bad is None:
        return
    if _first_record_is_text(data[: 1 << 16]):  # first: pieces of text lines can pass for records of some size
        record, pos, problem = first_bad
        raise FormatError(path, f"word {record + 1} of {count} (byte {pos})",
                          f"{problem}; the file looks like word2vec text: load it with binary=False")
    fitting = []
    most = min((len(data) - start) // (4 * ahead), 1 << 16)  # each record holds at least 4 D bytes
    for other in range(1, most + 1):
        if other != dim and _first_unreadable_record(data, start, ahead, other, encoding, unicode_errors,
                                                     to_the_end) is None:
            fitting.append(other)
            if len(fitting) > 1:  # not one answer: say nothing about the dimension
                break
    if len(fitting) == 1:
        (found,) = fitting
        raise FormatError(path, f"word 1 of {count} (byte {start})", f"the header (line 1) says {dim} dimensions, "
                          f"but the records hold {found} ({4 * found} bytes of float32 after each word, not {4 * dim}); "
                          f"correct the header to '{count} {found}'")


def _first_unreadable_record(data: bytes, start: int, records: int, dim: int, encoding: str, unicode_errors: str,
                             to_the_end: bool):
    """(record, byte, problem) for the first of `records` binary records that does not read cleanly with `dim`
    dimensions (a word that is empty, holds a newline or cannot be decoded; a vector past the end of the file or
    not finite; bytes after the last record when `to_the_end`), or None if they all do."""
    pos = start
    vectors_at = []  # (record, byte where it starts, byte where its vector starts)
    for record in range(records):
        space = data.find(b" ", pos)
        if space < 0 or space + 1 + 4 * dim > len(data):
            return record, pos, "the file ends inside this record"
        try:
            word = _binary_word(data[pos:space], encoding, unicode_errors)
        except UnicodeDecodeError as e:
            return record, pos, f"the word is not {e.encoding} ({e.reason})"
        if not word or "\n" in word:
            return record, pos, _binary_word_problem(word)
        vectors_at.append((record, pos, space + 1))
        pos = space + 1 + 4 * dim
    if to_the_end and data[pos:].strip(b"\n"):
        return records, pos, f"{len(data) - pos} bytes follow the last record"
    for record, record_start, vector_start in vectors_at:  # last: the costliest check, and the rarest to fail
        if not np.isfinite(np.frombuffer(data, dtype="<f4", count=dim, offset=vector_start)).all():
            return record, record_start, "its vector holds NaN or infinite values"
    return None


def _binary_word(raw: bytes, encoding: str, unicode_errors: str) -> str:
    """The word of a binary record, without the newlines before it (UnicodeDecodeError if it is not text)."""
    return raw.decode(encoding, unicode_errors).lstrip("\n")


def _binary_word_problem(word: str) -> str:
    if not word:
        return "the word is empty (''): a record starts with its word, then a space"
    return (f"the word {word!r} holds a newline, which no word of a word2vec binary file can (a newline may only "
            "come before a word)")


def _read_store(path, limit, mmap, datatype):
    """The store's own format, every header field checked against its type, its range and the file's size."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.readline()  # STORE_MAGIC
        header = _store_header(path, f.readline(), size)
        header_end = f.tell()
        rows, dim, words_bytes = header["rows"], header["dim"], header["words_bytes"]
        dtype = np.dtype(STORE_DTYPES[header["dtype"]]).newbyteorder("<")
        if header_end + words_bytes > size:
            raise TruncatedFileError(path, "the store header (line 2)", f"words_bytes is {words_bytes}, but only "
                                     f"{size - header_end} bytes follow the header")
        offset = _align(header_end + words_bytes)
        expected = offset + rows * dim * dtype.itemsize
        if size < expected:
            raise TruncatedFileError(path, "the store header (line 2)", f"the store is truncated: {rows} x {dim} "
                                     f"{header['dtype']} vectors need {expected} bytes, the file has {size}")
        if size > expected:
            raise FormatError(path, "the store header (line 2)", f"the store is damaged: {rows} x {dim} "
                              f"{header['dtype']} vectors need {expected} bytes, the file has {size}")
        region = f.read(offset - header_end)
    word_bytes, padding = region[:words_bytes], region[words_bytes:]
    # The words hold no NUL and the padding is nothing else: a words_bytes that is off by even one shows.
    if padding.strip(b"\0") or b"\0" in word_bytes:
        raise FormatError(path, "the store header (line 2)", f"words_bytes ({words_bytes}) does not end where the "
                                                              "words end: the store is damaged")
    try:
        words = word_bytes.decode("utf-8").split("\n") if rows else []
    except UnicodeDecodeError as e:
        raise EncodingError(path, "the words of the store", e, what="are not") from None
    if len(words) != rows:
        raise FormatError(path, "the store header (line 2)", f"rows is {rows}, but the store holds {len(words)} words")
    if mmap and dtype != datatype:
        raise ValueError(f"{path}: the store holds {dtype.name} vectors; mmap=True maps them as they are, "
                         f"so pass datatype=np.{dtype.name}")
    if mmap and rows:
        mode = "c" if mmap == "c" else "r"
        vectors = np.memmap(path, dtype=dtype, mode=mode, offset=offset, shape=(rows, dim))  # (N, D), on disk
    else:
        vectors = np.fromfile(path, dtype=dtype, offset=offset).reshape(rows, dim).astype(datatype, copy=False)
        # A store is written only from finite vectors; a damaged one is caught here (a mapped one is not
        # read until it is used, so a mapped store is trusted).
        _refuse_non_finite(path, vectors, words, lambda row, column: (f"word {row + 1} of {rows}",
                                                                      repr(float(vectors[row, column]))))
    if limit is not None:
        words, vectors = words[:limit], vectors[:limit]
    return words, vectors


def _store_header(path, line: bytes, size: int) -> dict:
    where = "the store header (line 2)"
    try:
        header = json.loads(line)
    except ValueError as e:
        raise FormatError(path, where, f"is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise FormatError(path, where, f"is a JSON {type(header).__name__}, expected an object")
    missing = [field for field in STORE_FIELDS if field not in header]
    unknown = [field for field in header if field not in STORE_FIELDS]
    if missing or unknown:
        raise FormatError(path, where, f"missing fields {missing}, unknown fields {unknown}; "
                                       f"expected exactly {list(STORE_FIELDS)}")
    for field in ("version", "rows", "dim", "words_bytes"):
        value = header[field]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise FormatError(path, where, f"field {field!r} is {value!r}, expected a whole number of at least 0")
    if header["version"] != STORE_VERSION:
        newer = " (newer than this glove reads)" if header["version"] > STORE_VERSION else ""
        raise FormatError(path, where, f"field 'version' is {header['version']}{newer}; this glove reads "
                                       f"version {STORE_VERSION}")
    if header["dtype"] not in STORE_DTYPES:
        raise FormatError(path, where, f"field 'dtype' is {header['dtype']!r}, expected one of {list(STORE_DTYPES)}")
    if header["rows"] and not header["dim"]:
        raise FormatError(path, where, f"field 'dim' is 0 for {header['rows']} rows")
    if header["rows"] * header["dim"] > size or header["words_bytes"] > size:
        raise TruncatedFileError(path, where, f"rows x dim ({header['rows']} x {header['dim']}) and words_bytes "
                                              f"({header['words_bytes']}) are more than the file's {size} bytes")
    return header


def _align(offset: int) -> int:
    """The vectors start at the first multiple of 64 bytes after the words, so mapped rows are aligned."""
    return -(-offset // 64) * 64


# ---------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------


def write(path, words: list[str], vectors: np.ndarray, format: str = "store", *, header_count: int | None = None,
          prefix: str = "", append: bool = False) -> None:
    """Write (words, vectors (N, D)) to `path` in one of FORMATS, atomically.

    For the word2vec and GloVe formats, as gensim's save_word2vec_format: `header_count` is the count the
    header announces (default N), `prefix` goes before every word, and `append=True` adds to the end of the
    existing file (still atomically: the old content is copied into the new file first).
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {FORMATS}")
    if format == "store" and (header_count is not None or prefix or append):
        raise ValueError("header_count, prefix and append are for the word2vec and GloVe formats, not the store")
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or len(words) != len(vectors):
        raise ValueError(f"cannot write {len(words)} words with vectors of shape {vectors.shape}")
    forbidden = {"store": "\n\0", "word2vec-binary": "\n "}.get(format, "\n")  # what would end a word early
    for number, word in enumerate(words, start=1):
        if not isinstance(word, str):
            raise TypeError(f"cannot write the key {word!r} ({type(word).__name__}): words must be strings")
        if not prefix + word and format != "store":  # the store's words are separated by newlines: "" is fine
            raise ValueError(f"cannot write the empty word (word {number}) in {format} format: its line or record "
                             "would start with its numbers, which glove's readers refuse")
        if any(char in prefix + word for char in forbidden):
            raise ValueError(f"cannot write word {prefix + word!r} in {format} format: a word there cannot hold "
                             f"{forbidden!r}")
    dtype = vectors.dtype.newbyteorder("<") if vectors.dtype in (np.float16, np.float64) else np.dtype("<f4")
    if format == "word2vec-binary":
        dtype = np.dtype("<f4")  # the format's own: float32, whatever the vectors are
    vectors = np.ascontiguousarray(vectors, dtype=dtype)  # (N, D)
    rows, dim = vectors.shape
    with atomic_write(path, append_to_existing=append) as f:
        if format == "store":
            word_bytes = "\n".join(words).encode("utf-8")
            header = {"version": STORE_VERSION, "rows": rows, "dim": dim, "dtype": dtype.str,
                      "words_bytes": len(word_bytes)}
            head = STORE_MAGIC + json.dumps(header).encode() + b"\n" + word_bytes
            f.write(head + b"\0" * (_align(len(head)) - len(head)))
            f.write(vectors.data)  # the (N, D) rows as they lie in memory, no copy
        elif format == "word2vec-binary":
            f.write(f"{rows if header_count is None else header_count} {dim}\n".encode())
            for word, row in zip(words, vectors):
                f.write((prefix + word).encode("utf-8") + b" " + row.tobytes() + b"\n")
        else:
            if format == "word2vec":
                f.write(f"{rows if header_count is None else header_count} {dim}\n".encode())
            # 9 significant digits read back any float32 (or float16) bit for bit; float64 needs 17.
            digits = 17 if dtype == np.float64 else 9
            line_format = "%s" + f" %.{digits}g" * dim + "\n"
            for word, row in zip(words, vectors.tolist()):
                f.write((line_format % (prefix + word, *row)).encode("utf-8"))
