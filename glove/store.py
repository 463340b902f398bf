"""`WordVectors`: words, their vectors, and the queries gensim's KeyedVectors answers, in numpy.

Shapes: N words in the store, D dimensions, Q queries in a batch, k = topn.

Every query scores words by cosine similarity. A single query computes it the way gensim does,
`vectors @ mean / norms`, so scores agree to the last bit and near-ties fall the same way; a batch of
queries multiplies the unit rows once by all of them, which agrees to about 1e-7.
"""

from __future__ import annotations

import os
import warnings
from functools import cached_property
from numbers import Integral
from typing import NamedTuple

import numpy as np

from glove import formats

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
    """Words and their vectors: `index_to_key` (N words, in order), `key_to_index`, `vectors` (N, D) float32."""

    def __init__(self, words, vectors, source: str = "input"):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(words) != len(vectors):
            raise ValueError(f"{source}: {len(words)} words for vectors of shape {vectors.shape}")
        words = list(words)
        key_to_index = dict(zip(words, range(len(words))))  # a repeated word maps to its last row here
        self.duplicates: list[str] = []
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
        self._set(words, vectors)
        self.key_to_index = key_to_index

    def _set(self, words: list[str], vectors: np.ndarray) -> None:
        self.index_to_key: list[str] = words
        # A plain read-only view (also of a memmap): the cached norms must stay true to the rows.
        self.vectors = vectors.view(np.ndarray)  # (N, D)
        self.vectors.flags.writeable = False

    @cached_property
    def key_to_index(self) -> dict[str, int]:
        """word -> row. Built on first use when a saved store is opened: hashing 400000 words takes
        longer than mapping the whole store."""
        return dict(zip(self.index_to_key, range(len(self.index_to_key))))

    # ----- loading, saving, converting -------------------------------------------------------------

    @classmethod
    def load(cls, path, limit: int | None = None, mmap: bool = False, parser: str = "auto") -> WordVectors:
        """A store from a GloVe/word2vec text file, a word2vec binary file, a saved store, or a gensim-data name.

        The format is recognised from the file's first bytes (see `glove.formats`). `limit` reads only the
        first words; `mmap=True` maps a saved store's vectors from disk instead of reading them. A name such
        as "glove-wiki-gigaword-100" that is not a file is fetched (and cached) by gensim's downloader.
        """
        if not os.path.exists(path) and _looks_like_gensim_data_name(str(path)):
            return cls._load_gensim_data(str(path), limit)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such word-vector file: {path}")
        words, vectors, kind = formats.read(path, limit=limit, mmap=mmap, parser=parser)
        if kind == "store":  # saved from a WordVectors: no duplicates to look for
            store = cls.__new__(cls)
            store._set(words, vectors)
            store.duplicates = []
            return store
        return cls(words, vectors, source=str(path))

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
        return store if limit is None else cls(store.index_to_key[:limit], store.vectors[:limit], source=name)

    def save(self, path, format: str = "store") -> None:
        """Write the store atomically: "store" (its own format, loadable with mmap=True), "glove",
        "word2vec" (text with an "N D" header) or "word2vec-binary"."""
        formats.write(path, self.index_to_key, self.vectors, format=format)

    @classmethod
    def from_gensim(cls, kv) -> WordVectors:
        """A copy of a gensim KeyedVectors."""
        # After dropping duplicates, gensim's reader leaves None placeholders (and zero rows) after the words.
        n = len(kv.key_to_index)
        return cls(list(kv.index_to_key[:n]), np.array(kv.vectors[:n], dtype=np.float32), source="gensim KeyedVectors")

    def to_gensim(self):
        """A gensim KeyedVectors holding a copy of these words and vectors."""
        from gensim.models import KeyedVectors

        kv = KeyedVectors(self.vector_size, dtype=np.float32)
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
        try:
            self._index(word)
        except (UnknownWordError, TypeError):
            return False
        return True

    def __getitem__(self, word_or_words) -> np.ndarray:
        """A word's vector (D,); a list of words gives a matrix (n, D)."""
        if isinstance(word_or_words, _KEY_TYPES):
            return self.vectors[self._index(word_or_words)]
        return self.vectors[[self._index(word) for word in word_or_words]]

    def _index(self, word) -> int:
        """The row of a word; like gensim, an int that is not a word is taken as a row number."""
        index = self.key_to_index.get(word)
        if index is not None:
            return index
        if isinstance(word, (int, np.integer)) and 0 <= word < len(self):
            return int(word)
        raise UnknownWordError(word, len(self))

    @cached_property
    def norms(self) -> np.ndarray:
        """The length of every row (N,), computed once."""
        return np.linalg.norm(self.vectors, axis=1)

    @cached_property
    def unit_vectors(self) -> np.ndarray:
        """Every row divided by its length (N, D), computed once, on first use."""
        return self.vectors / self.norms[:, None]

    def _unit(self, word) -> np.ndarray:
        index = self._index(word)
        return self.vectors[index] / self.norms[index]  # (D,)

    # ----- queries, with gensim's semantics ---------------------------------------------------------

    def similarity(self, word1, word2) -> float:
        """Cosine similarity of two words."""
        return float(np.dot(self._unit(word1), self._unit(word2)))

    def most_similar(self, positive=None, negative=None, topn=10, restrict_vocab=None):
        """The `topn` words closest to the mean of `positive` minus `negative`, as (word, cosine) pairs.

        Words count by their unit vectors with weight +1 (positive) or -1 (negative); a (word, weight)
        pair sets the weight itself, sign included; a vector given directly counts as it is. The input
        words are never returned. `restrict_vocab=n` searches the first n words only. `topn=None`
        returns the scores of all (searched) words, inputs included, as one array (N,).
        """
        if isinstance(topn, Integral) and topn < 1:
            return []
        items = [(item, 1.0) for item in _as_list(positive)] + [(item, -1.0) for item in _as_list(negative)]
        if not items:
            raise ValueError("most_similar needs at least one word or vector")
        mean = np.zeros(self.vector_size, dtype=np.float32)  # (D,)
        total_weight = np.float64(0.0)
        inputs = set()
        for item, weight in items:
            if not isinstance(item, (*_KEY_TYPES, np.ndarray)):
                item, weight = item  # a (word or vector, weight) pair
            weight = np.float64(weight)  # float64 weights, as gensim keeps them, so the mean rounds alike
            if isinstance(item, np.ndarray):
                vector = item
            else:
                vector = self._unit(item)
                inputs.add(self._index(item))
            mean += weight * vector
            total_weight += abs(weight)
        if total_weight > 0:
            mean = mean / total_weight  # (D,) float64
        length = np.linalg.norm(mean)
        if length > 0:
            mean = mean / length
        mean = mean.astype(np.float32)

        end = restrict_vocab or len(self)
        scores = self.vectors[:end] @ mean / self.norms[:end]  # (N,) cosine of every word with the mean
        if not topn:
            return scores
        return self._best(scores, topn, inputs)

    def most_similar_cosmul(self, positive=None, negative=None, topn=10, restrict_vocab=None):
        """Levy and Goldberg's 3CosMul: rank words by prod((1 + cos(w, p)) / 2) / (prod((1 + cos(w, n)) / 2) + 1e-6).

        Words count by their unit vectors; a vector given directly counts as it is. `restrict_vocab=n`
        searches the first n words (gensim 4.4 accepts the argument here but searches every word).
        """
        if isinstance(topn, Integral) and topn < 1:
            return []
        positive, negative = _as_list(positive), _as_list(negative)
        if not positive:
            raise ValueError("most_similar_cosmul needs at least one positive word or vector")
        inputs = {self._index(w) for w in positive + negative if not isinstance(w, np.ndarray)}
        end = restrict_vocab or len(self)
        vectors, norms = self.vectors[:end], self.norms[:end]

        def shifted_cosines(term):  # (N,) cosine of every word with `term`, moved into [0, 1]
            term = term if isinstance(term, np.ndarray) else self._unit(term)
            return (1 + vectors @ term / norms) / 2

        scores = np.prod([shifted_cosines(t) for t in positive], axis=0) / (
            np.prod([shifted_cosines(t) for t in negative], axis=0) + 1e-6
        )  # (N,)
        if not topn:
            return scores
        return self._best(scores, topn, inputs)

    def similar_by_vector(self, vector, topn=10, restrict_vocab=None):
        """The `topn` words closest to a vector (D,)."""
        return self.most_similar(positive=[vector], topn=topn, restrict_vocab=restrict_vocab)

    def doesnt_match(self, words) -> str:
        """The word furthest from the normalised mean of the words' unit vectors.

        Like gensim, words not in the store are left out, with a warning.
        """
        words = list(words)
        known = [word for word in words if word in self]
        if len(known) < len(words):
            warnings.warn(f"doesnt_match ignores words not in the vocabulary: {[w for w in words if w not in self]}")
        if not known:
            raise ValueError("doesnt_match needs at least one word from the vocabulary")
        unit = np.vstack([self._unit(word) for word in known])  # (n, D)
        mean = np.zeros(self.vector_size, dtype=np.float32)
        for row in unit:
            mean += row
        mean = mean / np.float32(len(known))
        mean = mean / np.linalg.norm(mean)  # (D,)
        cosines = unit @ mean  # (n,)
        return min(zip(cosines, known))[1]  # gensim's tie-break: the smaller word

    def analogy(self, a, b, c, restrict_vocab=None) -> tuple[str, float]:
        """a is to b as c is to ?: the best word for b - a + c, with its cosine."""
        return self.most_similar(positive=[b, c], negative=[a], topn=1, restrict_vocab=restrict_vocab)[0]

    # ----- many queries at once -------------------------------------------------------------------

    def analogies(self, questions, topn=1, restrict_vocab=None, batch_size=64):
        """Answer many (a, b, c) questions at once; each answer is most_similar([b, c], [a], topn)."""
        rows = np.array([[self._index(w) for w in question] for question in questions], dtype=np.int64)
        rows = rows.reshape(-1, 3)  # (Q, 3): a, b, c
        unit = self.unit_vectors
        queries = unit[rows[:, 1]] + unit[rows[:, 2]] - unit[rows[:, 0]]  # (Q, D), a scaled mean
        return self._best_batch(queries, rows, topn, restrict_vocab, batch_size)

    def neighbours(self, words, topn=10, restrict_vocab=None, batch_size=64):
        """The nearest words of many words at once; each answer is most_similar(word, topn=topn)."""
        rows = np.array([self._index(w) for w in words], dtype=np.int64).reshape(-1, 1)  # (Q, 1)
        return self._best_batch(self.unit_vectors[rows[:, 0]], rows, topn, restrict_vocab, batch_size)

    def _best_batch(self, queries, inputs, topn, restrict_vocab, batch_size):
        """Top `topn` words for each query (Q, D), skipping each query's input rows (Q, m)."""
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)  # (Q, D)
        end = restrict_vocab or len(self)
        unit = self.unit_vectors[:end]  # (N, D)
        topn = min(topn, end)
        answers = []
        # Batches bound the memory of the score matrix: batch_size * N floats.
        for start in range(0, len(queries), batch_size):
            scores = queries[start : start + batch_size] @ unit.T  # (B, N): every query against every word
            batch = np.arange(len(scores))  # (B,)
            skip = inputs[start : start + batch_size]  # (B, m): the question's own words are no answer
            searched = skip < end
            scores[np.broadcast_to(batch[:, None], skip.shape)[searched], skip[searched]] = -np.inf
            # k passes of argmax: far cheaper than partitioning all N scores when k is small.
            best = np.empty((len(scores), topn), dtype=np.int64)  # (B, k)
            best_scores = np.empty((len(scores), topn), dtype=np.float32)  # (B, k)
            for j in range(topn):
                best[:, j] = scores.argmax(axis=1)
                best_scores[:, j] = scores[batch, best[:, j]]
                scores[batch, best[:, j]] = -np.inf
            answers += [
                [(self.index_to_key[i], float(s)) for i, s in zip(row, row_scores) if s > -np.inf]
                for row, row_scores in zip(best.tolist(), best_scores)
            ]
        return answers

    def _best(self, scores, topn, inputs):
        """The `topn` best (word, score) pairs, skipping `inputs`, ordered exactly as gensim orders them."""
        k = topn + len(inputs)
        negated = -scores
        if k >= len(scores):
            order = np.argsort(negated)[:k]
        else:
            candidates = np.argpartition(negated, k)[:k]  # the k best, unordered
            order = candidates[np.argsort(negated[candidates])]
        return [(self.index_to_key[i], float(scores[i])) for i in order if i not in inputs][:topn]

    # ----- pictures -------------------------------------------------------------------------------

    def pca(self, words, n_components: int = 2) -> PCA:
        """Project the words' vectors onto their first principal axes, with numpy's SVD."""
        x = np.asarray(self[list(words)], dtype=np.float64)  # (n, D)
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


def _as_list(value) -> list:
    """gensim's argument forms: None, one word, one vector (D,), a matrix (n, D), or a list."""
    if value is None:
        return []
    if isinstance(value, _KEY_TYPES) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return [value]
    return list(value)


def _looks_like_gensim_data_name(name: str) -> bool:
    """gensim-data names are like "glove-wiki-gigaword-100": no folder, no file extension."""
    return os.sep not in name and "/" not in name and not os.path.splitext(name)[1]
