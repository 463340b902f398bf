"""`WordVectors`: words, their vectors, and the queries gensim's KeyedVectors answers, in numpy.

Shapes: N words in the store, D dimensions, Q queries in a batch, k = topn.

Every query scores words by cosine similarity. A single query computes it the way gensim does,
`vectors @ mean / norms`, with gensim's float64 steps where gensim takes them (its `unitvec` measures a
vector with BLAS's dnrm2), so scores agree to the last bit and near-ties fall the same way. A batch of
queries multiplies the unit rows once by all of them, which agrees to about 1e-7.

A row whose length is 0 (or not finite) has no direction: it is never an answer, and asking about it is
an error that names the word. gensim returns such rows last, with a NaN score, or NaN answers. So is a query
that cannot be computed: a NaN or infinite weight, or weights and vectors whose float32 sum overflows (gensim
adds them in float32 and returns words scored NaN); the error names the word and its weight.

The methods come in the order a reader meets them: building and loading a store, looking words up, the
queries, the batched queries, changing the vectors, evaluations, pictures.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections import Counter
from functools import cached_property
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np

from . import formats
from .formats import check_count

_KEY_TYPES = (str, int, np.integer)  # what can name a row: a word, or the row's index


class UnknownWordError(KeyError):
    """A word that is not in the store. A KeyError, as in gensim, whose message names the word."""

    def __init__(self, word, size: int):
        super().__init__(word)
        self.word = word
        self.message = f"word {word!r} is not in the vocabulary ({size} words)"

    def __str__(self):
        return self.message


class PCA(NamedTuple):
    coords: np.ndarray  # (n_words, n_components): each word in the principal axes
    explained_variance: np.ndarray  # (n_components,): variance along each axis
    explained_variance_ratio: np.ndarray  # (n_components,): the share of the words' total variance


class WordVectors:
    """Words and their vectors: `index_to_key` (N words, in order), `key_to_index`, `vectors` (N, D).

    `WordVectors(words, vectors)` takes the array as it is (converted to `dtype`, float32 by default, without
    a copy where it already is). Repeated words keep their first row, as in gensim, and are listed in
    `duplicates`. A NaN or infinite value is refused (ValueError naming the word).
    """

    def __init__(self, words, vectors, source: str = "input", dtype=np.float32):
        vectors = np.asarray(vectors, dtype=formats.float_type(dtype))
        if vectors.ndim != 2 or len(words) != len(vectors):
            raise ValueError(f"{source}: {len(words)} words for vectors of shape {vectors.shape}")
        words = list(words)
        _refuse_non_finite(source, words, vectors)
        self._set_words(words, vectors, source)

    def _set_words(self, words: list, vectors: np.ndarray, source: str) -> None:
        """Keep the first row of each word (warning about the rest), then hold words and vectors."""
        self.source = source  # where the vectors came from, for error messages
        self._mapped = None  # the file, when the vectors are memory-mapped read-only
        key_to_index = dict(zip(words, range(len(words))))  # a repeated word maps to its last row here
        self.duplicates: list = []
        if len(key_to_index) < len(words):
            # Keep the first row of a repeated word, as gensim does, and say so.
            key_to_index = {}
            for i, word in enumerate(words):
                key_to_index.setdefault(word, i)
            self.duplicates = [word for i, word in enumerate(words) if key_to_index[word] != i]
            warnings.warn(
                f"{source}: {len(self.duplicates)} duplicate words ignored (the first of each is kept), "
                f"e.g. {self.duplicates[:5]}",
                stacklevel=3,
            )
            keep = np.array(sorted(key_to_index.values()))
            words, vectors = [words[i] for i in keep], vectors[keep]
            key_to_index = dict(zip(words, range(len(words))))
        self.index_to_key: list = words
        self.vectors = vectors
        self.key_to_index = key_to_index

    @property
    def vectors(self) -> np.ndarray:
        """The (N, D) rows. Writable in place, as in gensim, unless memory-mapped read-only; after changing
        rows in place, call `fill_norms(force=True)` (as in gensim) so that queries see the change."""
        return self._vectors

    @vectors.setter
    def vectors(self, value: np.ndarray) -> None:
        value = value if isinstance(value, np.ndarray) else np.asarray(value)
        if value.ndim != 2 or len(value) != len(self.index_to_key):
            raise ValueError(f"vectors must have shape ({len(self.index_to_key)}, D) for the "
                             f"{len(self.index_to_key)} words, not {value.shape}")
        self._vectors = value.view(np.ndarray)  # a plain array, also over a memmap: results stay plain arrays
        self._mapped = None  # new rows: whatever file they came from, it is the loader's to say (it sets this after)
        self._forget_norms()

    @cached_property
    def key_to_index(self) -> dict:
        """word -> row. Built on first use when a saved store is opened: hashing 400000 words takes
        longer than mapping the whole store. A word there twice is refused here (FormatError naming it):
        a store is saved with each word once, so the file is damaged."""
        key_to_index = dict(zip(self.index_to_key, range(len(self.index_to_key))))
        if len(key_to_index) < len(self.index_to_key):  # a repeated word: find it, to name it
            first: dict = {}
            for i, word in enumerate(self.index_to_key):
                if first.setdefault(word, i) != i:
                    raise formats.FormatError(self.source, "the words of the store", f"word {word!r} is there twice "
                                              f"(words {first[word] + 1} and {i + 1}); a store is saved with each "
                                              "word once, so it is damaged")
        return key_to_index

    # ----- loading, saving, converting -------------------------------------------------------------

    @classmethod
    def load(cls, path, limit: int | None = None, mmap=False, parser: str = "auto", *, binary: bool | None = None,
             no_header: bool | None = None, datatype=np.float32, unicode_errors: str = "strict",
             encoding: str = "utf-8") -> WordVectors:
        """A store from a GloVe/word2vec text file, a word2vec binary file, a saved store, or a gensim-data name.

        The format is recognised from the file's first bytes (see `glove.formats`); `binary` and `no_header`
        (gensim's names; None: recognise) say it where the bytes cannot. `limit` reads only the first words
        (None or 0: all of them, as gensim reads them). `mmap=True` maps a saved store's vectors from disk,
        read-only; `mmap="c"` maps them copy-on-write (changes stay in memory). `datatype` is the float type of
        the vectors (float16, float32, float64); `encoding` and `unicode_errors` decode the words, as in gensim.
        A name such as "glove-wiki-gigaword-100" that is not a file is fetched (and cached) by gensim's
        downloader.

        Raises FileNotFoundError, IsADirectoryError (a folder given); FormatError (a ValueError) for a
        malformed file, naming the file and the line: TruncatedFileError (also an EOFError), EncodingError
        (also a UnicodeDecodeError).
        """
        if not os.path.exists(path) and looks_like_gensim_data_name(str(path)):
            return cls._load_gensim_data(str(path), limit)
        return cls._load_file(path, limit, mmap, parser, binary=binary, no_header=no_header, datatype=datatype,
                              unicode_errors=unicode_errors, encoding=encoding)

    @classmethod
    def load_word2vec_format(cls, fname, fvocab=None, binary=False, encoding="utf8", unicode_errors="strict",
                             limit=None, datatype=np.float32, no_header=False) -> WordVectors:
        """gensim's loader, with gensim's arguments and defaults: a word2vec text file unless `binary`, with
        a header unless `no_header` (a GloVe file needs no_header=True, as in gensim). Word counts
        (`fvocab`) are not kept here."""
        if fvocab is not None:
            raise ValueError("glove keeps no word counts: load without fvocab")
        return cls._load_file(fname, limit, False, "auto", binary=binary, no_header=no_header, datatype=datatype,
                              unicode_errors=unicode_errors, encoding=encoding)

    @classmethod
    def _load_file(cls, path, limit, mmap, parser, **options) -> WordVectors:
        if os.path.isdir(path):
            raise IsADirectoryError(f"{path} is a folder; give a word-vector file in it (GloVe or word2vec text, "
                                    "word2vec binary, or a saved store)")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such word-vector file: {path}")
        words, vectors, kind = formats.read(path, limit=limit, mmap=mmap, parser=parser, **options)  # checked there
        store = cls.__new__(cls)
        if kind == "store":  # saved from a WordVectors, each word once: key_to_index checks that on first use
            store.source, store.duplicates, store.index_to_key = str(path), [], words
            store.vectors = vectors
            store._mapped = str(path) if mmap in (True, "r") and len(words) else None
        else:
            if kind in ("glove", "word2vec"):
                _refuse_empty_words(path, words, first_line=2 if kind == "word2vec" else 1)
            store._set_words(words, vectors, str(path))
        return store

    @classmethod
    def _load_gensim_data(cls, name: str, limit: int | None) -> WordVectors:
        import gensim.downloader

        try:
            kv = gensim.downloader.load(name)  # shows progress, caches in ~/gensim-data
        except ValueError as e:  # gensim: "Incorrect model/corpus name", or its list of names cannot be read
            if "Incorrect model/corpus name" not in str(e):  # offline, and the list was never downloaded
                raise ConnectionError(f"{name!r} is not a file, and gensim-data cannot tell whether it is one of its "
                                      f"models: {e}; fetch it where there is network with: glove download {name}") from None
            raise ValueError(f"{name!r} is neither a file nor a gensim-data model name ({e})") from None
        store = cls.from_gensim(kv)
        if not limit:  # None or 0: every word, as gensim's loaders read them
            return store
        return cls(store.index_to_key[:limit], store.vectors[:limit], source=name)

    def save(self, path, format: str | None = None) -> None:
        """Write the store atomically: "store" (its own format, loadable with mmap=True), "glove",
        "word2vec" (text with an "N D" header) or "word2vec-binary". Without `format`, the name says it:
        .txt is GloVe text, .bin word2vec binary, any other name the store; a format the name contradicts
        (the store into words.txt) is refused. A crash leaves the old file or none; a read-only file or a
        folder is refused (see `glove.atomic`)."""
        formats.write(path, self.index_to_key, self.vectors, format=formats.format_for(path, format))

    def save_word2vec_format(self, fname, fvocab=None, binary=False, total_vec=None, write_header=True, prefix="",
                             append=False, sort_attr="count") -> None:
        """gensim's writer, with gensim's arguments: word2vec text (or binary, or GloVe text without the
        header), atomically. There are no word counts here, so the words keep their order (as gensim does for
        vectors read from a file) and `fvocab` is refused."""
        if fvocab is not None:
            raise ValueError(f"cannot store vocabulary with {sort_attr!r}: glove keeps no word counts")
        if binary and not write_header:
            raise ValueError("a word2vec binary file needs its header: write_header=False is for text (GloVe)")
        format = "word2vec-binary" if binary else "word2vec" if write_header else "glove"
        total_vec = check_count("total_vec", total_vec, allow_none=True)
        formats.write(fname, self.index_to_key, self.vectors, format=format, header_count=total_vec, prefix=prefix,
                      append=append)

    @classmethod
    def from_gensim(cls, kv) -> WordVectors:
        """A copy of a gensim KeyedVectors."""
        # After dropping duplicates, gensim's reader leaves None placeholders (and zero rows) after the words.
        n = len(kv.key_to_index)
        return cls(list(kv.index_to_key[:n]), np.array(kv.vectors[:n], dtype=np.float32), source="gensim KeyedVectors")

    def to_gensim(self):
        """A gensim KeyedVectors holding a copy of these words and vectors."""
        from gensim.models import KeyedVectors

        kv = KeyedVectors(self.vector_size, dtype=self.vectors.dtype)
        kv.add_vectors(self.index_to_key, np.array(self.vectors))
        return kv

    # ----- the basics ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __repr__(self) -> str:
        return f"WordVectors({len(self)} words x {self.vector_size} dimensions)"

    @property
    def vector_size(self) -> int:
        return self.vectors.shape[1]

    def __contains__(self, word) -> bool:
        return self.has_index_for(word)

    def __getitem__(self, word_or_words) -> np.ndarray:
        """A word's vector (D,), read-only as in gensim; a list of words gives a matrix (n, D), a copy."""
        if isinstance(word_or_words, _KEY_TYPES):
            return self.get_vector(word_or_words)
        return self.vectors[[self.get_index(word) for word in word_or_words]]

    def get_index(self, key, default=None) -> int:
        """The row of a word; like gensim, an int that is not a word is taken as a row number, and `default`
        (when not None) is returned for anything else."""
        try:
            index = self.key_to_index.get(key)
        except TypeError:  # unhashable: a list, an array
            index = None
        if index is not None:
            return index
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= key < len(self):
            return int(key)
        if default is not None:
            return default
        raise UnknownWordError(key, len(self))

    def has_index_for(self, key) -> bool:
        """Whether `key` names a row (a word, or a row number)."""
        return self.get_index(key, -1) >= 0

    def get_vector(self, key, norm: bool = False) -> np.ndarray:
        """A word's vector (D,), read-only; `norm=True` divides it by its length (an error for a zero vector)."""
        index = self.get_index(key)
        vector = self._unit(index, key) if norm else self.vectors[index]
        vector.flags.writeable = False  # as in gensim: a write here would go around the cached norms
        return vector

    # ----- norms and unit vectors -----------------------------------------------------------------

    @cached_property
    def norms(self) -> np.ndarray:
        """The length of every row (N,), computed once, as gensim computes it (np.linalg.norm)."""
        return np.linalg.norm(self.vectors, axis=1)

    @cached_property
    def unit_vectors(self) -> np.ndarray:
        """Every row divided by its length (N, D), computed once, on first use; read-only. A row of length 0
        comes out NaN, as in gensim; such rows are never answers (see `_dead_rows`)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            unit = self.vectors / self.norms[:, None]
        unit.flags.writeable = False
        return unit

    @cached_property
    def _dead_rows(self) -> np.ndarray:
        """The rows without a direction: length 0, or a length that is not finite. Never an answer."""
        return np.flatnonzero(~(np.isfinite(self.norms) & (self.norms > 0)))

    def _forget_norms(self) -> None:
        for name in ("norms", "unit_vectors", "_dead_rows"):
            self.__dict__.pop(name, None)

    def fill_norms(self, force: bool = False) -> None:
        """Compute the norms now; `force=True` computes them again (after the vectors changed in place)."""
        if force:
            self._forget_norms()
        self.norms  # noqa: B018 (computed and cached by the property)

    def get_normed_vectors(self) -> np.ndarray:
        """Every row at unit length (N, D), as in gensim; the cached `unit_vectors`, read-only."""
        return self.unit_vectors

    def _unit(self, index: int, key) -> np.ndarray:
        """Row `index` divided by its length (D,), as gensim's get_vector(norm=True); a dead row is an error."""
        self._check_direction(index, key)
        return self.vectors[index] / self.norms[index]

    def _check_direction(self, index: int, key) -> None:
        """Raise ValueError naming `key` if its row has no direction (length 0, or not finite)."""
        length = self.norms[index]
        if not (np.isfinite(length) and length > 0):
            what = "an all-zero vector" if length == 0 else f"a vector of length {length}"
            raise ValueError(f"word {key!r} has {what}: it has no direction, so no cosine with it means anything")

    # ----- queries, with gensim's semantics ---------------------------------------------------------

    def similarity(self, w1, w2) -> float:
        """Cosine similarity of two words, as gensim: dot(unitvec(w1), unitvec(w2)); a zero vector gives 0."""
        return float(np.dot(unitvec(self[w1]), unitvec(self[w2])))

    def distance(self, w1, w2) -> float:
        """Cosine distance of two words: 1 - similarity, rounded to float32 as gensim's is (its similarity
        is a float32, and 1 minus it stays one)."""
        return float(np.float32(1) - np.float32(self.similarity(w1, w2)))

    @staticmethod
    def cosine_similarities(vector_1, vectors_all) -> np.ndarray:
        """The cosine of `vector_1` (D,) with each row of `vectors_all` (n, D), as gensim computes it.

        Raises ValueError for NaN or infinite values, and for a vector whose length overflows its float type
        (gensim then gives cosines of 0). A vector of length 0 gives NaN, with numpy's warning, as in gensim.
        """
        vector_1, vectors_all = np.asarray(vector_1), np.asarray(vectors_all)
        if not np.isfinite(vector_1).all():
            raise ValueError("vector_1 holds NaN or infinite values: no cosine with it means anything")
        finite_rows = np.isfinite(vectors_all).all(axis=1)  # (n,)
        if not finite_rows.all():
            raise ValueError(f"row {int(np.argmin(finite_rows))} of vectors_all holds NaN or infinite values: no "
                             "cosine with it means anything")
        with np.errstate(over="ignore"):  # a length that overflows is refused just below
            norm = np.linalg.norm(vector_1)
            all_norms = np.linalg.norm(vectors_all, axis=1)  # (n,)
        _check_length(norm, vector_1, "the vector given")
        for row in np.flatnonzero(~np.isfinite(all_norms))[:1].tolist():
            _check_length(all_norms[row], vectors_all[row], f"row {row} of vectors_all")
        return np.dot(vectors_all, vector_1) / (norm * all_norms)

    def distances(self, word_or_vector, other_words=()) -> np.ndarray:
        """Cosine distances (1 - cosine) from a word or a vector (D,) to `other_words`, or to every word (N,).

        As gensim computes them; but a word or vector without a direction (length 0, or a length that overflows)
        is refused, naming it. Against every word, a row without a direction is NaN away, never 1 (a cosine of
        0); named in `other_words`, a word of length 0 is NaN away (as in gensim) and one whose length
        overflows is refused, naming it.
        """
        if isinstance(word_or_vector, _KEY_TYPES):
            self._check_direction(self.get_index(word_or_vector), word_or_vector)
            vector = self.get_vector(word_or_vector)
        else:
            vector = self._query_vector(word_or_vector)
            with np.errstate(over="ignore"):  # a length that overflows is refused just below
                length = np.linalg.norm(vector)
            _check_length(length, vector, "the vector given")
            if length == 0:
                raise ValueError("the vector given is all zeros: it has no direction, so no cosine with it means "
                                 "anything")
        if len(other_words) == 0:
            with np.errstate(invalid="ignore", divide="ignore"):  # a zero row: NaN, as in gensim
                distances = 1 - np.dot(self.vectors, vector) / (np.linalg.norm(vector) * self.norms)  # (N,)
            distances[self._dead_rows] = np.nan  # also a row whose length overflows (gensim: 1)
            return distances
        rows = [self.get_index(word) for word in other_words]
        for row, word in zip(rows, other_words):
            if not np.isfinite(self.norms[row]):  # a length of 0 gives NaN, as in gensim
                self._check_direction(row, word)
        with np.errstate(invalid="ignore", divide="ignore"):
            return 1 - self.cosine_similarities(vector, self.vectors[rows])

    def n_similarity(self, ws1, ws2) -> float:
        """Cosine similarity of the means of two lists of words (their raw vectors, as in gensim).

        Like gensim, words not in the store are left out; unlike gensim, with a warning.
        """
        if not (len(ws1) and len(ws2)):
            raise ZeroDivisionError("n_similarity needs at least one word in each list")
        missing = [w for w in list(ws1) + list(ws2) if not isinstance(w, np.ndarray) and w not in self]
        if missing:
            warnings.warn(f"n_similarity ignores words not in the vocabulary: {missing}", stacklevel=2)
        mean1 = self.get_mean_vector(ws1, pre_normalize=False)
        mean2 = self.get_mean_vector(ws2, pre_normalize=False)
        return float(np.dot(unitvec(mean1), unitvec(mean2)))

    def get_mean_vector(self, keys, weights=None, pre_normalize: bool = True, post_normalize: bool = False,
                        ignore_missing: bool = True) -> np.ndarray:
        """The weighted mean (D,) of words and vectors, as gensim computes it: each word's vector (unit length
        if `pre_normalize`), weights 1 by default, divided by the sum of |weight|; unit length if
        `post_normalize`. Words not in the store are skipped if `ignore_missing`, else a KeyError."""
        if len(keys) == 0:
            raise ValueError("cannot compute the mean of no words")
        asked = weights  # to name a weight as it was given
        if isinstance(weights, list):
            with np.errstate(over="ignore", invalid="ignore"):  # a weight too large for the type is refused below
                weights = np.array(weights, dtype=self.vectors.dtype)  # as gensim: in the vectors' type
        if weights is None:
            weights = asked = np.ones(len(keys), dtype=self.vectors.dtype)
        if len(keys) != weights.shape[0]:
            raise ValueError(f"{len(keys)} keys but {weights.shape[0]} weights")
        for key, weight, given in zip(keys, weights, asked):
            if np.isfinite(given) and not np.isfinite(weight):
                raise ValueError(f"the weight of {_name(key)} is {given:g}, which {weights.dtype} (the vectors' "
                                 "type) cannot hold: only the ratios of the weights matter, so scale them down")
            _check_weight(key, given)
        mean = np.zeros(self.vector_size, self.vectors.dtype)  # (D,)
        total_weight = 0
        for key, weight in zip(keys, weights):
            if isinstance(key, np.ndarray):
                vector = self._query_vector(key)
            elif key in self:
                vector = self.get_vector(key, norm=pre_normalize)
            elif not ignore_missing:
                raise UnknownWordError(key, len(self))
            else:
                continue
            with np.errstate(over="ignore", invalid="ignore"):
                mean += weight * vector
            _check_sum(mean, key, weight)
            total_weight += abs(weight)
        if total_weight > 0:
            mean = mean / total_weight
        if post_normalize:
            mean = unitvec(mean).astype(np.float32)
        return mean

    def most_similar(self, positive=None, negative=None, topn=10, clip_start=0, clip_end=None, restrict_vocab=None,
                     indexer=None):
        """The `topn` words closest to the mean of `positive` minus `negative`, as (word, cosine) pairs.

        Words count by their unit vectors with weight +1 (positive) or -1 (negative); a (word, weight)
        pair sets the weight itself, sign included; a vector (D,) given directly counts as it is; one word,
        one vector or a matrix (n, D) stands for a list. The input words are never returned, nor rows of
        length 0. Rows [clip_start, clip_end) are searched; `restrict_vocab=n` means the first n (and
        overrides the clip). `topn=None` returns the scores of all searched rows, inputs included, as one
        array. `indexer` (gensim's approximate-neighbour interface) answers instead, if given.
        """
        topn = _check_topn(topn)
        if topn is not None and topn < 1:
            return []
        start, end = self._search_range(clip_start, clip_end, restrict_vocab)
        items = [(item, 1.0) for item in _as_list(positive)] + [(item, -1.0) for item in _as_list(negative)]
        if not items:
            raise ValueError("most_similar needs at least one word or vector")
        weighted = []
        for item, weight in items:
            if not isinstance(item, (*_KEY_TYPES, np.ndarray)):
                item, weight = _word_and_weight(item)
                _check_weight(item, weight)
            weighted.append((item, np.float64(weight)))  # float64 weights, as gensim keeps them
        mean, inputs = self._mean_of(weighted)
        if indexer is not None and isinstance(topn, int):
            return indexer.most_similar(mean, topn)
        with np.errstate(invalid="ignore", divide="ignore"):  # rows of length 0 score NaN, as in gensim
            scores = self.vectors[start:end] @ mean / self.norms[start:end]  # (end - start,) cosine with the mean
        if topn is None:
            return scores
        return self._best(scores, topn, inputs, start)

    def _mean_of(self, weighted, index=None) -> tuple[np.ndarray, list[int]]:
        """gensim's get_mean_vector(pre_normalize=True, post_normalize=True, ignore_missing=False) for
        (word or vector, float64 weight) pairs: the unit-length mean (D,) float32, and the words' rows.
        `index` maps a word to its row (default: get_index)."""
        index_of = index or self.get_index
        mean = np.zeros(self.vector_size, dtype=self.vectors.dtype)  # (D,)
        total_weight = 0
        inputs = []
        for item, weight in weighted:
            if isinstance(item, np.ndarray):
                vector = self._query_vector(item)
            else:
                index = index_of(item)
                vector = self._unit(index, item)
                inputs.append(index)
            with np.errstate(over="ignore", invalid="ignore"):
                mean += weight * vector  # in the vectors' type, as gensim adds them
            _check_sum(mean, item, weight)
            total_weight += abs(weight)
        if total_weight > 0:
            mean = mean / total_weight  # (D,) float64
        if not np.any(mean):
            raise ValueError("the query adds up to a zero vector (a word both positive and negative, weights that "
                             "cancel, or values too small for float32): it has no direction to rank words by")
        return unitvec(mean).astype(np.float32), inputs

    def _query_vector(self, vector) -> np.ndarray:
        """A vector given in a query: exactly (D,), and finite."""
        if vector.shape != (self.vector_size,):
            raise ValueError(f"a query vector must have shape ({self.vector_size},), not {vector.shape}")
        if not np.isfinite(vector).all():
            raise ValueError("a query vector holds NaN or infinite values")
        return vector

    def _search_range(self, clip_start=0, clip_end=None, restrict_vocab=None) -> tuple[int, int]:
        """gensim's rows to search: [clip_start, clip_end or N), or [0, restrict_vocab) when that is given."""
        clip_start = check_count("clip_start", clip_start)
        clip_end = check_count("clip_end", clip_end, allow_none=True) or len(self)
        restrict_vocab = check_count("restrict_vocab", restrict_vocab, allow_none=True)
        if restrict_vocab:
            return 0, min(restrict_vocab, len(self))
        return min(clip_start, len(self)), min(clip_end, len(self))

    def _best(self, scores, topn: int, inputs: list[int], start: int = 0):
        """The `topn` best (word, score) pairs of rows start.., skipping `inputs` and rows without a
        direction, ordered exactly as gensim orders them (argpartition, then argsort)."""
        dead = self._dead_rows
        dead = dead[(dead >= start) & (dead < start + len(scores))]
        skip = set(inputs).union(dead.tolist())
        k = topn + len(inputs) + len(dead)  # gensim: topn + the number of input words
        negated = -scores
        if k >= len(scores):
            order = np.argsort(negated)[:k]
        else:
            candidates = np.argpartition(negated, k)[:k]  # the k best, unordered
            order = candidates[np.argsort(negated[candidates])]
        best = [(self.index_to_key[i + start], float(scores[i])) for i in order.tolist() if i + start not in skip]
        return best[:topn]

    def similar_by_word(self, word, topn=10, restrict_vocab=None):
        """The `topn` words closest to `word` (gensim's alias of similar_by_key)."""
        return self.similar_by_key(word, topn, restrict_vocab)

    def similar_by_key(self, key, topn=10, restrict_vocab=None):
        """The `topn` words closest to `key`: most_similar(positive=[key])."""
        return self.most_similar(positive=[key], topn=topn, restrict_vocab=restrict_vocab)

    def similar_by_vector(self, vector, topn=10, restrict_vocab=None):
        """The `topn` words closest to a vector, which must have shape (D,)."""
        vector = np.asarray(vector)
        if vector.shape != (self.vector_size,):
            raise ValueError(f"similar_by_vector needs a vector of shape ({self.vector_size},), not {vector.shape}")
        return self.most_similar(positive=[vector], topn=topn, restrict_vocab=restrict_vocab)

    def most_similar_cosmul(self, positive=None, negative=None, topn=10, restrict_vocab=None, *,
                            apply_restrict_vocab: bool = False):
        """Levy and Goldberg's 3CosMul: rank words by prod((1 + cos(w, p)) / 2) / (prod((1 + cos(w, n)) / 2) + 1e-6).

        Words count by their unit vectors; a vector given directly counts as it is. Like gensim 4.4, every
        word is searched whatever `restrict_vocab` says (with a warning when it is given);
        `apply_restrict_vocab=True` searches only the first `restrict_vocab` words, as most_similar does.
        """
        topn = _check_topn(topn)
        if topn is not None and topn < 1:
            return []
        positive, negative = _as_list(positive), _as_list(negative)
        if not positive:
            raise ValueError("most_similar_cosmul needs at least one positive word or vector")
        for term in positive + negative:
            if not isinstance(term, (*_KEY_TYPES, np.ndarray)):
                raise TypeError(f"most_similar_cosmul takes words and vectors, not {term!r}")
        _, end = self._search_range(restrict_vocab=restrict_vocab)
        if restrict_vocab is not None and not apply_restrict_vocab:
            warnings.warn("most_similar_cosmul searches every word, as gensim 4.4 does, whatever restrict_vocab "
                          "says; pass apply_restrict_vocab=True to search only the first restrict_vocab words",
                          stacklevel=2)
            end = len(self)
        inputs = {self.get_index(term) for term in positive + negative if not isinstance(term, np.ndarray)}
        vectors, norms = self.vectors[:end], self.norms[:end]

        def shifted_cosines(term):  # (N,) cosine of every word with `term`, moved into [0, 1]
            if isinstance(term, np.ndarray):
                term = self._query_vector(term)
            else:
                term = self._unit(self.get_index(term), term)
            return (1 + vectors @ term / norms) / 2

        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # rows of length 0 score NaN, as in gensim
            scores = np.prod([shifted_cosines(t) for t in positive], axis=0) / (
                np.prod([shifted_cosines(t) for t in negative], axis=0) + 1e-6
            )  # (N,)
        live = np.ones(len(scores), dtype=bool)  # (N,)
        live[self._dead_rows[self._dead_rows < end]] = False
        if not np.isfinite(scores[live]).all():  # only a vector given (not at unit length) can do this
            largest = max(float(np.max(np.abs(t))) for t in positive + negative if isinstance(t, np.ndarray))
            raise ValueError(f"most_similar_cosmul: the scores overflow float64 with the vectors given (largest value "
                             f"{largest:g}): gensim takes a vector given as it is, not at unit length, so scale it "
                             "to length 1")
        if topn is None:
            return scores
        return self._best(scores, topn, sorted(inputs))

    def rank_by_centrality(self, words, use_norm: bool = True) -> list[tuple[float, str]]:
        """(cosine with the words' normalised mean, word) for each word, most central first, as in gensim.

        Like gensim, words not in the store are left out; unlike gensim, with a warning.
        """
        words = list(words)
        known = [word for word in words if word in self]
        if len(known) < len(words):
            warnings.warn(f"ignoring words not in the vocabulary: {[w for w in words if w not in self]}", stacklevel=3)
        if not known:
            raise ValueError("needs at least one word from the vocabulary")
        vectors = np.vstack([self.get_vector(word, norm=use_norm) for word in known]).astype(np.float32)  # (n, D)
        mean = np.zeros(self.vector_size, dtype=np.float32)
        for word, row in zip(known, vectors):  # gensim's get_mean_vector of the rows, in float32
            with np.errstate(over="ignore", invalid="ignore"):
                mean += np.float32(1) * row
            _check_sum(mean, word, 1)
        mean = mean / np.float32(len(known))
        mean = unitvec(mean).astype(np.float32)  # (D,)
        return sorted(zip((vectors @ mean).tolist(), known), reverse=True)

    def doesnt_match(self, words) -> str:
        """The word furthest from the normalised mean of the words' unit vectors (ties: the smaller word)."""
        return self.rank_by_centrality(words)[-1][1]

    def closer_than(self, key1, key2) -> list[str]:
        """Every word closer to `key1` than `key2` is (by cosine), `key1` itself left out."""
        distances = self.distances(key1)
        index1, index2 = self.get_index(key1), self.get_index(key2)
        return [self.index_to_key[i] for i in np.flatnonzero(distances < distances[index2]).tolist() if i != index1]

    def rank(self, key1, key2) -> int:
        """The rank of `key2` among the neighbours of `key1`: 1 + the number of words closer."""
        return len(self.closer_than(key1, key2)) + 1

    def most_similar_to_given(self, key1, keys_list):
        """The word of `keys_list` most similar to `key1`."""
        return keys_list[int(np.argmax([self.similarity(key1, key) for key in keys_list]))]

    def relative_cosine_similarity(self, wa, wb, topn=10) -> float:
        """similarity(wa, wb) divided by the sum of the similarities of wa's `topn` nearest words
        (Leeuwenberg et al., 2016); above 1/topn means closer than an average neighbour."""
        sims = self.similar_by_word(wa, topn)
        if not sims:
            raise ValueError("relative_cosine_similarity needs at least one similar word (topn >= 1)")
        return float(self.similarity(wa, wb)) / sum(score for _, score in sims)

    def analogy(self, a, b, c, restrict_vocab=None) -> tuple[str, float]:
        """a is to b as c is to ?: the best word for b - a + c, with its cosine.

        Raises ValueError when no word is left to answer with: most_similar then returns [] (as gensim's
        does), but one answer is what this asks for.
        """
        best = self.most_similar(positive=[b, c], negative=[a], topn=1, restrict_vocab=restrict_vocab)
        if not best:
            _, end = self._search_range(restrict_vocab=restrict_vocab)
            dead = int(np.count_nonzero(self._dead_rows < end))
            also = f" and {dead} word{'s' * (dead != 1)} without a direction (length 0)" if dead else ""
            raise ValueError(f"{a!r} : {b!r} :: {c!r} : ?: no word is left to answer with; the {end} words searched "
                             f"are only the question's own words{also}")
        return best[0]

    def wmdistance(self, document1, document2, norm: bool = True) -> float:
        """Word Mover's Distance (Kusner et al. 2015) between two documents (lists of words), as gensim computes it:
        the least total distance that the words of one must travel to become the words of the other.

        Each document is a bag of words: a word weighs its count / the document's length, so the weights add up
        to 1. Moving weight from a word of document1 to a word of document2 costs the Euclidean distance of their
        vectors (unit vectors with `norm`, gensim's default). POT's exact solver, ot.emd2 (as gensim calls it),
        finds the cheapest way to move all of it; that cost is the distance. Words not in the store are left out
        (with a warning); a document with no word left is inf away, as in gensim. Unlike gensim, words that lie in
        one direction are 0 apart (gensim: inf), and a string is refused (gensim reads it letter by letter).

        Needs POT: pip install 'minibert[wmd]'. Raises ImportError without it; TypeError for a document that is a
        string; ValueError for a word without a direction when `norm`.
        """
        try:
            import ot
        except ImportError:
            raise ImportError("wmdistance needs POT (Python Optimal Transport), which is not installed: "
                              "pip install 'minibert[wmd]' (or pip install POT)") from None
        documents = []
        for name, document in (("document1", document1), ("document2", document2)):
            if isinstance(document, str):
                raise TypeError(f"wmdistance: {name} is the string {document!r}; a document is a list of words "
                                f"(split it first: {document!r}.split())")
            documents.append(list(document))
        document1, document2 = ([word for word in document if word in self] for document in documents)
        for which, given, kept in (("first", documents[0], document1), ("second", documents[1], document2)):
            if not kept:
                problem = "is empty" if not given else "has no word in the vocabulary"
                warnings.warn(f"wmdistance: the {which} document {problem}: the distance is inf, as in gensim",
                              stacklevel=2)
                return float("inf")
        missing = [word for document in documents for word in document if word not in self]
        if missing:
            warnings.warn(f"wmdistance ignores words not in the vocabulary: {missing}", stacklevel=2)
        words1, weights1 = _bag_of_words(document1)  # n1 distinct words, their weights (n1,)
        words2, weights2 = _bag_of_words(document2)
        vectors1 = np.array([self.get_vector(word, norm=norm) for word in words1], dtype=np.float64)  # (n1, D)
        vectors2 = np.array([self.get_vector(word, norm=norm) for word in words2], dtype=np.float64)  # (n2, D)
        costs = np.empty((len(words1), len(words2)))  # (n1, n2): how far each word of document1 is from each of 2
        for i, vector in enumerate(vectors1):
            costs[i] = np.linalg.norm(vectors2 - vector, axis=1)
        return float(ot.emd2(weights1, weights2, costs))

    # ----- many queries at once -------------------------------------------------------------------

    def analogies(self, questions, topn=1, restrict_vocab=None, batch_size=64):
        """Answer many (a, b, c) questions at once; each answer is most_similar([b, c], [a], topn)."""
        topn = check_count("topn", topn)
        questions = list(questions)
        for i, question in enumerate(questions):
            # A string is a sequence too: "man" would be read as the three words m, a, n.
            if isinstance(question, (str, bytes)) or not hasattr(question, "__len__") or len(question) != 3:
                raise ValueError(f"questions[{i}] is {question!r}; each question is three words (a, b, c): "
                                 "a is to b as c is to ?")
        questions = [tuple(question) for question in questions]
        rows = np.array([[self.get_index(w) for w in question] for question in questions], dtype=np.int64)
        rows = rows.reshape(-1, 3)  # (Q, 3): a, b, c
        self._refuse_dead_inputs(rows, questions)
        unit = self.unit_vectors
        queries = unit[rows[:, 1]] + unit[rows[:, 2]] - unit[rows[:, 0]]  # (Q, D), a scaled mean
        return self._answers(*self._top_rows(queries, rows, topn, restrict_vocab, batch_size))

    def neighbours(self, words, topn=10, restrict_vocab=None, batch_size=64):
        """The nearest words of many words at once; each answer is most_similar(word, topn=topn)."""
        topn = check_count("topn", topn)
        words = list(words)
        rows = np.array([self.get_index(w) for w in words], dtype=np.int64).reshape(-1, 1)  # (Q, 1)
        self._refuse_dead_inputs(rows, [[w] for w in words])
        return self._answers(*self._top_rows(self.unit_vectors[rows[:, 0]], rows, topn, restrict_vocab, batch_size))

    def _refuse_dead_inputs(self, rows: np.ndarray, questions) -> None:
        dead = np.isin(rows, self._dead_rows)
        if dead.any():
            q, j = np.argwhere(dead)[0]
            self._unit(int(rows[q, j]), questions[q][j])  # raises, naming the word

    def _top_rows(self, queries, inputs, topn: int, restrict_vocab, batch_size):
        """(rows (Q, k), scores (Q, k)): the `topn` best rows for each query (Q, D), best first, skipping each
        query's input rows (Q, m) and rows without a direction; a row -1 marks "no more words"."""
        batch_size = check_count("batch_size", batch_size, minimum=1)
        _, end = self._search_range(restrict_vocab=restrict_vocab)
        with np.errstate(invalid="ignore", divide="ignore"):
            queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)  # (Q, D)
        unit = self.unit_vectors[:end]  # (N, D)
        dead = self._dead_rows[self._dead_rows < end]
        k = min(topn, end)
        best = np.full((len(queries), k), -1, dtype=np.int64)  # (Q, k)
        best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)  # (Q, k)
        # Batches bound the memory of the score matrix: batch_size * N floats.
        for start in range(0, len(queries), batch_size):
            stop = min(start + batch_size, len(queries))
            scores = queries[start:stop] @ unit.T  # (B, N): every query against every word
            batch = np.arange(len(scores))  # (B,)
            scores[:, dead] = -np.inf  # rows of length 0: NaN scores, which argmax would pick first
            skip = inputs[start:stop]  # (B, m): the question's own words are no answer
            searched = skip < end
            scores[np.broadcast_to(batch[:, None], skip.shape)[searched], skip[searched]] = -np.inf
            # k passes of argmax: far cheaper than partitioning all N scores when k is small.
            for j in range(k):
                best[start:stop, j] = scores.argmax(axis=1)
                best_scores[start:stop, j] = scores[batch, best[start:stop, j]]
                scores[batch, best[start:stop, j]] = -np.inf
        best[~np.isfinite(best_scores)] = -1  # fewer words to answer with than topn
        return best, best_scores

    def _answers(self, best, best_scores):
        words = self.index_to_key
        return [[(words[i], float(s)) for i, s in zip(row, row_scores) if i >= 0]
                for row, row_scores in zip(best.tolist(), best_scores.tolist())]

    # ----- changing the vectors --------------------------------------------------------------------

    def add_vector(self, key, vector) -> int:
        """Add one word and its vector (D,); returns its row. A word already there keeps its vector (as
        gensim's add_vectors does); assign with `wv[key] = vector` to replace it. Each call copies the array:
        add many words at once with add_vectors."""
        if key in self.key_to_index:
            return self.key_to_index[key]
        self.add_vectors([key], np.asarray(vector).reshape(1, -1))
        return len(self) - 1

    def add_vectors(self, keys, weights, extras=None, replace: bool = False) -> None:
        """Add words and their vectors (n, D); a word already there keeps its vector unless `replace`.

        As in gensim, but: NaN and infinite values are refused (naming the word), a repeated new word is added
        once (its first vector, or its last with `replace`), and the norms are recomputed on the next query.
        """
        if extras:
            raise ValueError("glove keeps no per-word attributes (extras)")
        if isinstance(keys, _KEY_TYPES):
            keys, weights = [keys], np.asarray(weights).reshape(1, -1)
        keys = list(keys)
        weights = np.asarray(weights, dtype=self.vectors.dtype)
        if weights.shape != (len(keys), self.vector_size):
            raise ValueError(f"{len(keys)} keys need vectors of shape ({len(keys)}, {self.vector_size}), "
                             f"not {weights.shape}")
        _refuse_non_finite("add_vectors", keys, weights)
        new_rows: dict = {}  # new key -> its position in `keys`
        replaced = []  # (row, position in `keys`)
        for position, key in enumerate(keys):
            if not isinstance(key, _KEY_TYPES) or isinstance(key, bool):
                raise TypeError(f"a key must be a string or an int, not {key!r}")
            if key in self.key_to_index:
                if replace:
                    replaced.append((self.key_to_index[key], position))
            elif key not in new_rows or replace:
                new_rows[key] = position
        vectors = self.vectors
        if new_rows:
            vectors = np.vstack([vectors, weights[list(new_rows.values())]])  # (N + n, D), a new array
        elif replaced and not vectors.flags.writeable:  # rows change: in a copy, where they are a read-only map
            vectors = np.array(vectors)
        for row, position in replaced:
            vectors[row] = weights[position]
        if new_rows:
            start = len(self.index_to_key)
            self.key_to_index.update(zip(new_rows, range(start, start + len(new_rows))))
            self.index_to_key.extend(new_rows)
        if vectors is not self.vectors:
            self._mapped = None
        self.vectors = vectors  # checks the shape, forgets the norms

    def __setitem__(self, keys, weights) -> None:
        """`wv["word"] = vector` or `wv[["a", "b"]] = matrix`: add or replace (gensim's add_vectors(replace=True))."""
        if not isinstance(keys, list):
            keys, weights = [keys], np.asarray(weights).reshape(1, -1)
        self.add_vectors(keys, weights, replace=True)

    def unit_normalize_all(self) -> None:
        """Scale every row to unit length, in place (as gensim). Rows of length 0 stay 0 (gensim makes them NaN)."""
        if self._mapped:
            raise ValueError(f"the vectors are memory-mapped read-only from {self._mapped} (mmap=True): load with "
                             "mmap='c' to change them in memory, or without mmap")
        if not self.vectors.flags.writeable:
            self.vectors = np.array(self.vectors)
        norms, dead = self.norms, self._dead_rows
        if len(dead):
            live = np.ones(len(self), dtype=bool)
            live[dead] = False
            self.vectors[live] /= norms[live, None]
        else:
            self.vectors /= norms[:, None]
        new_norms = np.ones(len(self))  # float64 ones, as gensim sets them
        new_norms[dead] = norms[dead]
        self._forget_norms()
        self.norms = new_norms

    def vectors_for_all(self, keys, allow_inference: bool = True, copy_vecattrs: bool = False) -> WordVectors:
        """A new store holding the given words that are here (each once, in the order given).

        gensim's two other arguments are taken, and have nothing to do here: `allow_inference` lets
        FastText make up vectors for unknown words (a plain store has none to make), and
        `copy_vecattrs` copies per-word attributes such as counts, which this store does not keep.
        """
        known = list(dict.fromkeys(key for key in keys if key in self))
        return WordVectors(known, self.vectors[[self.get_index(key) for key in known]], source=self.source,
                           dtype=self.vectors.dtype)

    def intersect_word2vec_format(self, fname, lockf=0.0, binary=False, encoding="utf8", unicode_errors="strict"):
        """Take the vectors of a word2vec file (text with its header, or binary) for the words this store shares
        with it, as gensim does: no word is added, the other words keep their vectors, and a word that is in the
        file twice takes its last vector. The next query sees the new vectors (gensim's keeps its old norms).

        `lockf` is gensim's lock factor for the training that follows; nothing trains a store, so it is taken and
        has no effect. Raises ValueError when the file's vectors have another dimension than the store's, and
        what load_word2vec_format raises for a malformed file (naming the file and the line or record).
        """
        words, vectors, kind = formats.read(fname, binary=binary, no_header=False, encoding=encoding,
                                            unicode_errors=unicode_errors)  # float32, as gensim reads them
        if kind == "word2vec":
            _refuse_empty_words(fname, words, first_line=2)
        if vectors.shape[1] != self.vector_size:
            raise ValueError(f"{fname}: its vectors have {vectors.shape[1]} dimensions, this store's have "
                             f"{self.vector_size}: they cannot be merged")
        shared = {}  # row here -> row in the file; a later row of a repeated word replaces the earlier one
        repeated = []
        for row_in_file, word in enumerate(words):
            row = self.key_to_index.get(word)
            if row is not None:
                if row in shared:
                    repeated.append(word)
                shared[row] = row_in_file
        if repeated:
            warnings.warn(f"{fname}: words in the file more than once ({len(repeated)}, e.g. {repeated[:5]}): the last "
                          "vector of each is taken, as gensim's intersect_word2vec_format takes it", stacklevel=2)
        if not shared:
            return
        merged = self.vectors if self.vectors.flags.writeable else np.array(self.vectors)  # a read-only map: copy
        merged[list(shared)] = vectors[list(shared.values())]
        self.vectors = merged  # forgets the norms

    def resize_vectors(self, seed: int = 0) -> None:
        """Give words appended to `index_to_key` rows of their own, as gensim does before training: values drawn
        uniformly from [-1/D, 1/D) by numpy's generator seeded with `seed`, gensim's draws to the bit. The rows
        already there do not change, and `key_to_index` is built again from the words.

        Raises ValueError when index_to_key holds fewer words than there are rows (rows are never dropped: make a
        smaller store with vectors_for_all), or a word twice.
        """
        rows, words = len(self._vectors), len(self.index_to_key)
        if words < rows:
            raise ValueError(f"resize_vectors: index_to_key holds {words} words but there are {rows} rows; it adds rows "
                             "for words appended to index_to_key, and never drops rows (make a smaller store with "
                             "vectors_for_all)")
        key_to_index = dict(zip(self.index_to_key, range(words)))
        if len(key_to_index) < words:
            word = next(word for row, word in enumerate(self.index_to_key) if key_to_index[word] != row)
            raise ValueError(f"resize_vectors: {word!r} is in index_to_key twice")
        self.key_to_index = key_to_index
        if words == rows:
            return
        fresh = np.random.default_rng(seed).random((words, self.vector_size), dtype=np.float32)  # (N', D) in [0, 1)
        fresh = (fresh * 2 - 1) / self.vector_size  # in [-1/D, 1/D), in float32 as gensim's prep_vectors
        grown = fresh.astype(self._vectors.dtype)  # (N', D)
        grown[:rows] = self._vectors
        self.vectors = grown

    def sort_by_descending_frequency(self) -> None:
        """gensim's sort of the words by their counts: not here (ValueError), as glove keeps no counts."""
        raise ValueError(_no_counts("sort_by_descending_frequency"))

    def get_vecattr(self, key, attr):
        """gensim's per-word attributes, such as "count": not here (ValueError), as glove keeps none."""
        raise ValueError(_no_counts("get_vecattr"))

    def set_vecattr(self, key, attr, val) -> None:
        """gensim's per-word attributes, such as "count": not here (ValueError), as glove keeps none."""
        raise ValueError(_no_counts("set_vecattr"))

    # ----- evaluations -----------------------------------------------------------------------------

    def evaluate_word_analogies(self, analogies, restrict_vocab=300000, case_insensitive=True, dummy4unknown=False,
                                similarity_function="most_similar"):
        """Accuracy on an analogy file such as gensim's questions-words.txt: gensim's figures, in batches.

        Returns (score, sections) as gensim does: the share answered right, and per section a dict with
        "section", "correct" and "incorrect" (lists of (a, b, c, expected), upper-cased when
        `case_insensitive`), then a "Total accuracy" section. See `glove.evaluation`.
        """
        from .evaluation import evaluate_word_analogies

        return evaluate_word_analogies(self, analogies, restrict_vocab, case_insensitive, dummy4unknown,
                                       similarity_function)

    def evaluate_word_pairs(self, pairs, delimiter="\t", encoding="utf8", restrict_vocab=300000, case_insensitive=True,
                            dummy4unknown=False):
        """Correlation with human similarity judgements, such as gensim's wordsim353.tsv: gensim's figures.

        Returns (pearson, spearman, oov_ratio) as gensim does: scipy's results (statistic, p-value) and the
        percentage of pairs with a word not in the first `restrict_vocab` words. See `glove.evaluation`.
        """
        from .evaluation import evaluate_word_pairs

        return evaluate_word_pairs(self, pairs, delimiter, encoding, restrict_vocab, case_insensitive, dummy4unknown)

    # ----- pictures -------------------------------------------------------------------------------

    def pca(self, words, n_components: int = 2) -> PCA:
        """Project the words' vectors onto their first principal axes, with numpy's SVD.

        Raises TypeError or ValueError for an `n_components` that is not a whole number of at least 1, and
        ValueError when the words have fewer than 2 different vectors (no variance to explain) or when
        `n_components` is more than min(words, dimensions), the axes the SVD gives (sklearn's limit too).
        Past the first k - 1 axes of k different vectors, the variance is 0 and the direction arbitrary.
        """
        n_components = check_count("n_components", n_components, minimum=1)
        words = list(words)
        x = np.asarray(self[words], dtype=np.float64)  # (n, D)
        distinct = len(np.unique(x, axis=0))  # identical rows add points, not directions
        if distinct < 2:
            what = f"the words {list(dict.fromkeys(words))} have one vector between them" if words else "no words"
            raise ValueError(f"PCA: {what}, so there is no variance to explain; give at least 2 words with "
                             "different vectors")
        most = min(len(words), self.vector_size)  # what the SVD gives, and what sklearn allows
        if n_components > most:
            raise ValueError(f"n_components={n_components} is more than the {most} principal axes that "
                             f"{len(words)} words in {self.vector_size} dimensions have")
        centered = x - x.mean(axis=0)
        _, singular_values, axes = np.linalg.svd(centered, full_matrices=False)  # axes: (min(n, D), D)
        variance = singular_values**2 / (len(x) - 1)  # of the data along each axis
        return PCA(
            coords=centered @ axes[:n_components].T,  # (n, n_components)
            explained_variance=variance[:n_components],
            explained_variance_ratio=variance[:n_components] / variance.sum(),
        )

    def plot(self, words, path, title: str | None = None):
        """A labelled 2-D PCA scatter of the words, written as a PNG to `path`."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        words = list(words)
        result = self.pca(words, n_components=2)
        figure = Figure(figsize=(7, 5))
        FigureCanvasAgg(figure)  # the Agg canvas: draws to a PNG, needs no display
        axes = figure.add_subplot()
        axes.scatter(result.coords[:, 0], result.coords[:, 1])
        for word, (x, y) in zip(words, result.coords):
            axes.annotate(word, (x, y), xytext=(4, 4), textcoords="offset points")
        share = result.explained_variance_ratio
        axes.set_xlabel(f"PC1 ({share[0]:.0%} of the variance)")
        axes.set_ylabel(f"PC2 ({share[1]:.0%} of the variance)")
        axes.set_title(title or f"{len(words)} words, PCA of {self.vector_size}-d vectors")
        figure.savefig(path, dpi=100)
        return path


def unitvec(vector: np.ndarray) -> np.ndarray:
    """gensim's matutils.unitvec for a dense vector: the float64 length by BLAS's dnrm2, the vector times
    1 / length, back in its own dtype; a vector of length 0 (or NaN) comes back unchanged."""
    vector = np.asarray(vector)
    as_float64 = vector.astype(np.float64)
    length = _dnrm2()(as_float64)
    if not length > 0.0:
        return vector
    return (as_float64 * (1.0 / length)).astype(vector.dtype)


@functools.lru_cache(maxsize=None)
def _dnrm2():
    """BLAS's dnrm2 (through scipy, as gensim takes it), whose rounding gensim's scores carry; without
    scipy, numpy's norm (which can differ from it in the last bit)."""
    try:
        from scipy.linalg.blas import dnrm2
    except ImportError:
        return lambda x: float(np.linalg.norm(x))
    return dnrm2


def _refuse_non_finite(source: str, words, vectors: np.ndarray) -> None:
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise ValueError(f"{source}: word {words[row]!r} (row {row}) has NaN or infinite values "
                         f"({vectors[row][~np.isfinite(vectors[row])][:3].tolist()}); they are refused, as no cosine "
                         "with them means anything")


def _refuse_empty_words(path, words: list, first_line: int) -> None:
    """A text line that starts with a space has no word before its numbers: gensim reads it as the word "",
    which then answers queries as a blank. Refuse it, naming the line (row 0 is on `first_line`)."""
    if "" in words:  # only "": a line that starts with two spaces is the word " ", which gensim writes
        raise formats.FormatError(path, first_line + words.index(""), "the word is empty (''): the line starts "
                                                                      "with a space")


def _bag_of_words(document: list) -> tuple[list, np.ndarray]:
    """A document's distinct words (in the order they come) and their weights (n,): count / length, adding up to 1."""
    counts = Counter(document)
    return list(counts), np.array(list(counts.values()), dtype=np.float64) / len(document)


def _no_counts(method: str) -> str:
    return (f"{method}: glove keeps no word counts or other per-word attributes (gensim makes up counts for the "
            "words of a file: N, N - 1, ..., 1); in GloVe and word2vec files the words come commonest first, so a "
            "word's place in index_to_key (get_index) is its rank")


def _name(item) -> str:
    """A word or a vector of a query, as an error message names it."""
    return "the vector given" if isinstance(item, np.ndarray) else repr(item)


def _check_weight(item, weight) -> None:
    """A query's weight must be finite: a NaN or infinite one makes every score NaN (gensim returns them)."""
    if not np.isfinite(weight):
        raise ValueError(f"the weight of {_name(item)} is {weight}: a weight must be a finite number")


def _check_sum(total: np.ndarray, item, weight) -> None:
    """After `item` (a word or a vector) times `weight` was added to a query's `total` (D,): raise ValueError
    naming them if the sum overflowed its float type (gensim goes on, and every score is NaN)."""
    if np.isfinite(total).all():
        return
    if isinstance(item, np.ndarray) and abs(weight) == 1:
        raise ValueError(f"the query overflows {total.dtype} when the vector given (largest value "
                         f"{float(np.max(np.abs(item))):g}) is added: only its direction matters, so scale it down")
    advice = ("only the ratios of the weights matter, so scale them down" if abs(weight) > 1
              else f"the vectors are too large to add up in {total.dtype}")
    raise ValueError(f"the query overflows {total.dtype} when {_name(item)} (weight {float(weight):g}) is added: "
                     f"{advice}")


def _check_length(length, vector: np.ndarray, what: str) -> None:
    """A vector's length that overflows its float type makes every cosine with it 0 (gensim returns them)."""
    if not np.isfinite(length):
        raise ValueError(f"the length of {what} overflows {np.result_type(vector, np.float32)} (largest value "
                         f"{float(np.max(np.abs(vector))):g}): its cosines would all be 0; only its direction "
                         "matters, so scale it down")


def _check_topn(topn):
    """topn as gensim takes it: a whole number (below 1: no answers) or None (every score); never a float
    or a bool, which gensim would misread."""
    if topn is None:
        return None
    if isinstance(topn, bool) or not isinstance(topn, Integral):
        raise TypeError(f"topn must be a whole number or None, not {topn!r} ({type(topn).__name__})")
    return int(topn)


def _word_and_weight(item):
    """A (word or vector, weight) pair of most_similar's arguments, checked."""
    try:
        item, weight = item
    except (TypeError, ValueError):
        raise TypeError(f"expected a word, a vector or a (word, weight) pair, not {item!r}") from None
    if isinstance(weight, bool) or not isinstance(weight, Real):
        raise TypeError(f"the weight of {item!r} must be a number, not {weight!r}")
    return item, weight


def _as_list(value) -> list:
    """gensim's argument forms: None, one word, one vector (D,), a matrix (n, D), or a list."""
    if value is None:
        return []
    if isinstance(value, _KEY_TYPES) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return [value]
    return list(value)


def looks_like_gensim_data_name(name: str) -> bool:
    """gensim-data names are like "glove-wiki-gigaword-100": no folder, no file extension."""
    return os.sep not in name and "/" not in name and not os.path.splitext(name)[1]
