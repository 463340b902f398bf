"""Reading and writing word vectors: GloVe text, word2vec text and binary, and the store's own format.

`read(path)` looks at the first bytes of a file and picks the format itself:

    first bytes                        format
    ---------------------------------  ----------------------------------------------------
    STORE_MAGIC                        the store's own: a JSON header, the words, raw float32
    "N D" (two integers), then text    word2vec text: the header, then one "word v1 .. vD" a line
    "N D", then raw bytes              word2vec binary: the header, then "word " + D float32s
    anything else                      GloVe text: "word v1 .. vD" on every line, no header

Text is UTF-8. A word is everything before the last D numbers of its line, so a token with spaces
(GloVe 840B has some) is kept whole. Every number is parsed as float64 and then rounded to float32,
the way gensim does it, so a text file loads bit for bit as gensim loads it. Anything malformed raises
`FormatError`, which names the file and the line.

Text is parsed by pyarrow's CSV reader when pyarrow is installed (1 s for GloVe 6B 50d), and by a
Python + numpy loop (4.5 s) otherwise, or whenever pyarrow cannot take a file as it is (tokens with
spaces, trailing spaces, a bad value): the loop then parses it, or says exactly what is wrong.

Every writer is atomic: it writes a temporary file beside the target, fsyncs it, and renames it over
the target, so an interrupted save leaves the previous file (or nothing) behind, never half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

# The store's own format starts with this line. 0x93 never starts UTF-8 text, so no text file is mistaken
# for a store. After it: one JSON line, the words joined by "\n", zero padding, then the (N, D) float32 rows.
STORE_MAGIC = b"\x93GLOVE-STORE\n"
FORMATS = ("store", "glove", "word2vec", "word2vec-binary")

_CHUNK_LINES = 20_000  # lines the fallback parser hands to numpy at once


class FormatError(ValueError):
    """A malformed word-vector file. The message names the file and the line (or, in binary, the record)."""

    def __init__(self, path, where, problem: str):
        where = f"line {where}" if isinstance(where, int) else where
        super().__init__(f"{path}, {where}: {problem}")
        self.path, self.where = path, where


# ---------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------


def detect_format(path) -> str:
    """One of FORMATS, from the first bytes of the file."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if not head.strip():
        raise FormatError(path, 1, "the file is empty")
    if head.startswith(STORE_MAGIC):
        return "store"
    header = _word2vec_header(head)
    if header is None:
        return "glove"
    # The first record of a text file is UTF-8 ending in a number; raw float32 bytes almost never are.
    record = head.split(b"\n", 2)[1] if b"\n" in head else b""
    try:
        tokens = record.decode("utf-8").split()
        if tokens:
            float(tokens[-1])
    except ValueError:  # not UTF-8 (UnicodeDecodeError is a ValueError) or not a number
        return "word2vec-binary"
    return "word2vec"


def _word2vec_header(head: bytes) -> tuple[int, int] | None:
    """(N, D) if the first line is a word2vec header, i.e. exactly two non-negative integers; else None."""
    fields = head.split(b"\n", 1)[0].split()
    if len(fields) == 2 and all(field.isdigit() for field in fields):
        return int(fields[0]), int(fields[1])
    return None


def read(path, limit: int | None = None, mmap: bool = False, parser: str = "auto"):
    """(words, vectors (N, D) float32, format) from a file in any of FORMATS; at most `limit` records.

    `mmap=True` maps the vectors of a store file instead of reading them. `parser` picks the text parser:
    "auto" (pyarrow if installed, else numpy), "pyarrow" or "numpy".
    """
    kind = detect_format(path)
    if mmap and kind != "store":
        raise ValueError(f"{path}: mmap=True needs the store's own format, this file is {kind}")
    if kind == "store":
        words, vectors = _read_store(path, limit, mmap)
    elif kind == "word2vec-binary":
        words, vectors = _read_word2vec_binary(path, limit)
    else:
        words, vectors = _read_text(path, limit, has_header=(kind == "word2vec"), parser=parser)
    return words, vectors, kind


def _read_text(path, limit, has_header: bool, parser: str):
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    lines = head.split(b"\n")
    if len(head) == 1 << 20:
        lines = lines[:-1]  # the last one may be cut short
    skip = 1 if has_header else 0
    count, dim = _word2vec_header(head) if has_header else (None, None)
    if count == 0:
        return [], np.empty((0, dim), dtype=np.float32)  # what gensim writes for no words
    sample = [line.rstrip() for line in lines[skip : skip + 100]]
    fields = [len(line.split(b" ")) if line else 0 for line in sample]  # word + D, in most lines
    # The commonest field count among the first lines gives D: a rare token with spaces or a ragged
    # row cannot mislead it.
    counts = Counter(n for n in fields if n)
    if not counts:
        raise FormatError(path, 1 + skip, "is empty")
    usual_dim = max(counts, key=lambda n: (counts[n], -n)) - 1  # on a tie, the fewer fields
    if not has_header:
        dim = usual_dim
    elif usual_dim != dim:
        line_no = 1 + skip + fields.index(usual_dim + 1)
        raise FormatError(path, line_no, f"has {usual_dim} values, but the header (line 1) says {dim}")
    if dim < 1:
        raise FormatError(path, 1 + skip, "has no numbers after the word")

    rows = _count_lines(path) - skip
    if has_header and rows < count:
        raise FormatError(path, rows + skip + 1, f"the file ends after {rows} words, but the header says {count}")
    if has_header:
        rows = count  # like gensim, read as many words as the header announces
    if limit is not None:
        rows = min(rows, limit)

    result = None
    if parser in ("auto", "pyarrow"):
        result = _parse_text_pyarrow(path, skip, dim, rows, required=(parser == "pyarrow"))
    if result is None:
        result = _parse_text_numpy(path, skip, dim, rows)
    return result


def _count_lines(path) -> int:
    """Lines in the file; a last line without its newline counts too."""
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def _parse_text_pyarrow(path, skip: int, dim: int, rows: int, required: bool):
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
    vectors = np.empty((rows, dim), dtype=np.float32)  # (N, D), filled block by block
    words: list[str] = []
    try:
        for batch in csv.open_csv(path, **reader_options):
            take = min(batch.num_rows, rows - len(words))
            start = len(words)
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


def _parse_text_numpy(path, skip: int, dim: int, rows: int):
    """The careful path: Python splits off each word, numpy parses the numbers a chunk at a time."""
    vectors = np.empty((rows, dim), dtype=np.float32)  # (N, D)
    words: list[str] = []
    numbers: list[str] = []  # the number part of each line in the current chunk
    first_line_of_chunk = skip + 1
    with open(path, "rb") as f:
        for _ in range(skip):
            f.readline()
        for line_no, raw in enumerate(f, start=skip + 1):
            if len(words) == rows:
                break
            try:
                line = raw.decode("utf-8").rstrip()
            except UnicodeDecodeError as e:
                raise FormatError(path, line_no, f"is not UTF-8 ({e.reason} at byte {e.start})") from None
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
        raise FormatError(path, skip + len(words) + 1, f"the file ends after {len(words)} of {rows} words")
    return words, vectors


def _parse_numbers(path, numbers: list[str], first_line: int, out: np.ndarray) -> None:
    """Parse lines of D numbers into `out` (n, D), or name the line and the value that is not a number."""
    try:
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


def _read_word2vec_binary(path, limit):
    """word2vec's binary format: "N D\\n", then per word: the word, a space, D little-endian float32s."""
    data = Path(path).read_bytes()
    header_end = data.index(b"\n") + 1
    count, dim = _word2vec_header(data)
    if limit is not None:
        count = min(count, limit)
    vectors = np.empty((count, dim), dtype=np.float32)  # (N, D)
    words = []
    record_bytes = 4 * dim
    pos = header_end
    for i in range(count):
        space = data.find(b" ", pos)
        if space < 0 or space + 1 + record_bytes > len(data):
            raise FormatError(path, f"word {i + 1} of {count} (byte {pos})", "the file ends inside this record")
        try:
            # The C tool ends each record with "\n"; gensim does not. Accept both.
            words.append(data[pos:space].decode("utf-8").lstrip("\n"))
        except UnicodeDecodeError as e:
            raise FormatError(path, f"word {i + 1} of {count} (byte {pos})", f"the word is not UTF-8 ({e.reason})") from None
        vectors[i] = np.frombuffer(data, dtype="<f4", count=dim, offset=space + 1)
        pos = space + 1 + record_bytes
    return words, vectors


def _read_store(path, limit, mmap: bool):
    with open(path, "rb") as f:
        f.readline()  # STORE_MAGIC
        try:
            header = json.loads(f.readline())
            rows, dim, words_bytes = header["rows"], header["dim"], header["words_bytes"]
        except (ValueError, KeyError) as e:
            raise FormatError(path, 2, f"the store header is damaged ({e})") from None
        words = f.read(words_bytes).decode("utf-8").split("\n") if rows else []
        offset = _align(f.tell())
    expected_size = offset + rows * dim * 4
    if os.path.getsize(path) != expected_size or len(words) != rows:
        raise FormatError(path, 2, f"the store is truncated or damaged: expected {expected_size} bytes, {rows} words")
    if mmap and rows:
        vectors = np.memmap(path, dtype="<f4", mode="r", offset=offset, shape=(rows, dim))  # (N, D), on disk
    else:
        vectors = np.fromfile(path, dtype="<f4", offset=offset).reshape(rows, dim)  # (N, D)
    if limit is not None:
        words, vectors = words[:limit], vectors[:limit]
    return words, vectors


def _align(offset: int) -> int:
    """The vectors start at the first multiple of 64 bytes after the words, so mapped rows are aligned."""
    return -(-offset // 64) * 64


# ---------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_write(path):
    """Open a temporary file beside `path` for writing; on success fsync it and rename it onto `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows: readers see the old file or the new one
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable (POSIX only: directories cannot be opened on Windows).
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write(path, words: list[str], vectors: np.ndarray, format: str = "store") -> None:
    """Write (words, vectors (N, D)) to `path` in one of FORMATS, atomically."""
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {FORMATS}")
    forbidden = "\n " if format == "word2vec-binary" else "\n"  # what would end the word early
    for word in words:
        if any(char in word for char in forbidden):
            raise ValueError(f"cannot write word {word!r} in {format} format: a word there cannot hold {forbidden!r}")
    vectors = np.ascontiguousarray(vectors, dtype="<f4")  # (N, D)
    rows, dim = vectors.shape
    with atomic_write(path) as f:
        if format == "store":
            word_bytes = "\n".join(words).encode("utf-8")
            header = {"version": 1, "rows": rows, "dim": dim, "dtype": "<f4", "words_bytes": len(word_bytes)}
            head = STORE_MAGIC + json.dumps(header).encode() + b"\n" + word_bytes
            f.write(head + b"\0" * (_align(len(head)) - len(head)))
            f.write(vectors.data)  # the (N, D) rows as they lie in memory, no copy
        elif format == "word2vec-binary":
            f.write(f"{rows} {dim}\n".encode())
            for word, row in zip(words, vectors):
                f.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")
        else:
            if format == "word2vec":
                f.write(f"{rows} {dim}\n".encode())
            # 9 significant digits are enough for any float32 to read back bit for bit.
            line_format = "%s" + " %.9g" * dim + "\n"
            for word, row in zip(words, vectors.tolist()):
                f.write((line_format % (word, *row)).encode("utf-8"))
