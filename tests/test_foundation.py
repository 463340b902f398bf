"""The ground every other test stands on: offline mode, the shipped data, and the Hub-cache fixture."""

from pathlib import Path

import pytest
from huggingface_hub import constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError

from conftest import MINILM_REPO_ID, MINILM_TEST_COMMIT


def test_tests_run_offline():
    assert constants.HF_HUB_OFFLINE is True
    assert constants.is_offline_mode()


def test_shipped_model_folder(minilm_dir):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt"):
        assert (minilm_dir / name).is_file(), name


def test_shipped_glove_files(glove_6b_50d_files):
    import numpy as np
    import pyarrow.parquet as pq

    npy, parquet = glove_6b_50d_files
    vectors = np.load(npy, mmap_mode="r")
    words = pq.read_table(parquet).column("index")
    assert vectors.shape == (400000, 50) and vectors.dtype == np.float32
    assert len(words) == 400000
    assert words[0].as_py() == "the"


def test_snapshot_download_resolves_from_cache(hub_cache, minilm_dir):
    folder = Path(snapshot_download(MINILM_REPO_ID))
    assert folder == hub_cache / "models--sentence-transformers--all-MiniLM-L6-v2" / "snapshots" / MINILM_TEST_COMMIT
    assert (folder / "model.safetensors").read_bytes()[:64] == (minilm_dir / "model.safetensors").read_bytes()[:64]
    assert (folder / "config.json").read_text() == (minilm_dir / "config.json").read_text()


def test_hf_hub_download_resolves_from_cache(hub_cache, minilm_dir):
    config = Path(hf_hub_download(MINILM_REPO_ID, "config.json"))
    assert config.read_text() == (minilm_dir / "config.json").read_text()
    # An explicit revision that is the cached commit resolves too.
    pinned = Path(hf_hub_download(MINILM_REPO_ID, "vocab.txt", revision=MINILM_TEST_COMMIT))
    assert pinned.read_text() == (minilm_dir / "vocab.txt").read_text()


def test_missing_file_is_local_entry_not_found(hub_cache):
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(MINILM_REPO_ID, "pytorch_model.bin")
    assert issubclass(LocalEntryNotFoundError, FileNotFoundError)


def test_missing_repo_is_local_entry_not_found(hub_cache):
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download("google-bert/bert-base-uncased", "config.json")
    with pytest.raises(LocalEntryNotFoundError):
        snapshot_download("google-bert/bert-base-uncased")
