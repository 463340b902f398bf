"""PCA against an independent computation (eigenvectors of the covariance matrix), and the PNG plot."""

import warnings

import numpy as np
import pytest

from glove import WordVectors
from glove.__main__ import main as glove_main

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


@pytest.mark.parametrize("n_components,error,message", [
    (-1, ValueError, "n_components must be at least 1, not -1"),
    (0, ValueError, "n_components must be at least 1, not 0"),
    (2.0, TypeError, "n_components must be a whole number, not 2.0 (float)"),
    (True, TypeError, "n_components must be a whole number, not True (bool)"),
])
def test_n_components_is_a_whole_number_of_at_least_1(store, n_components, error, message):
    with pytest.raises(error) as caught:
        store.pca(LESSON_WORDS, n_components=n_components)
    assert str(caught.value) == message


def test_no_more_components_than_the_svd_gives(store):
    words = ["king", "queen", "man", "woman"]
    coords, variance, total = eigh_pca(store[words].astype(np.float64), 3)
    np.testing.assert_allclose(store.pca(words, n_components=3).explained_variance_ratio, variance / total, rtol=1e-9)
    assert len(store.pca(words, n_components=4).explained_variance_ratio) == 4  # the 4th explains ~0, as in sklearn
    with pytest.raises(ValueError) as caught:  # was: silently 4 components for 5
        store.pca(words, n_components=5)
    assert str(caught.value) == "n_components=5 is more than the 4 principal axes that 4 words in 50 dimensions have"
    with pytest.raises(ValueError, match=r"more than the 50 principal axes that 300 words in 50 dimensions have"):
        store.pca(store.index_to_key[1000:1300], n_components=51)
    ratios = store.pca(["king", "queen"]).explained_variance_ratio  # two words still draw in 2-D
    np.testing.assert_allclose(ratios, [1.0, 0.0], atol=1e-9)


@pytest.mark.parametrize("words,what", [
    (["king"], "the words ['king'] have one vector between them"),
    (["king", "king", "king"], "the words ['king'] have one vector between them"),
    ([], "no words"),
])
def test_words_without_variance_are_refused(store, words, what):
    with pytest.raises(ValueError) as caught:
        store.pca(words)
    assert str(caught.value) == (f"PCA: {what}, so there is no variance to explain; give at least 2 words with "
                                 "different vectors")


def test_different_words_with_one_vector_are_refused_and_not_drawn(tmp_path):
    same = WordVectors(["a", "b", "c"], [[0.1, 0.7, 0.3]] * 3)  # three words, one vector: numpy gives NaN shares
    with pytest.raises(ValueError, match=r"the words \['a', 'b', 'c'\] have one vector between them"):
        same.pca(["a", "b", "c"])
    with pytest.raises(ValueError, match="no variance to explain"):
        same.plot(["a", "b", "c"], tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()


def test_cli_plot_of_one_word_thrice_is_one_error_line(tmp_path, capsys, gensim_test_glove):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value encountered in divide" on the way
        code = glove_main(["plot", "the", "the", "the", "-o", str(tmp_path / "p.png"),
                           "--model", str(gensim_test_glove)])
    assert code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["glove plot: error: PCA: the words ['the'] have one vector between them, so there is no variance "
                     "to explain; give at least 2 words with different vectors"]
    assert not (tmp_path / "p.png").exists()
