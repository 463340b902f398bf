"""PCA against an independent computation (eigenvectors of the covariance matrix), and the PNG plot."""

import numpy as np
import pytest

from glove import WordVectors

LESSON_WORDS = "king princess monarch throne crown mountain ocean tv rainbow cloud queen".split()


@pytest.fixture(scope="module")
def store(glove_6b_50d_files):
    """GloVe 6B 50d straight from the shipped arrays (no text parsing involved)."""
    import pyarrow.parquet as pq

    npy, parquet = glove_6b_50d_files
    return WordVectors(pq.read_table(parquet).column("index").to_pylist(), np.ascontiguousarray(np.load(npy)))


def eigh_pca(x, n_components):
    """Principal axes as the eigenvectors of the covariance matrix, largest eigenvalue first."""
    centered = x - x.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(centered, rowvar=False))  # ascending
    order = np.argsort(eigenvalues)[::-1][:n_components]
    return centered @ eigenvectors[:, order], eigenvalues[order], eigenvalues.sum()


@pytest.mark.parametrize("n_components", [2, 3, 5])
def test_pca_matches_covariance_eigenvectors_up_to_sign(store, n_components):
    result = store.pca(LESSON_WORDS, n_components=n_components)
    coords, variance, total = eigh_pca(store[LESSON_WORDS].astype(np.float64), n_components)
    assert result.coords.shape == (len(LESSON_WORDS), n_components)
    np.testing.assert_allclose(result.explained_variance, variance, rtol=1e-9)
    np.testing.assert_allclose(result.explained_variance_ratio, variance / total, rtol=1e-9)
    for k in range(n_components):  # each axis is defined up to its sign
        sign = np.sign(coords[:, k] @ result.coords[:, k])
        np.testing.assert_allclose(result.coords[:, k], sign * coords[:, k], atol=1e-9)


def test_pca_of_many_words(store):
    words = store.index_to_key[1000:1300]  # more words than dimensions
    result = store.pca(words, n_components=4)
    coords, variance, _ = eigh_pca(store[words].astype(np.float64), 4)
    np.testing.assert_allclose(result.explained_variance, variance, rtol=1e-9)
    np.testing.assert_allclose(np.abs(result.coords), np.abs(coords), atol=1e-9)


def test_plot_writes_a_png(store, tmp_path):
    path = store.plot(LESSON_WORDS, tmp_path / "words.png")
    data = (tmp_path / "words.png").read_bytes()
    assert path == tmp_path / "words.png"
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (700, 500)
