"""Checkpoint files: where they are (a local folder or the Hub), reading their tensors, and writing
files atomically.

A repo id goes through huggingface_hub: its cache, its progress bar, and HF_HUB_OFFLINE. The files
read are `config.json`, then `model.safetensors`, a sharded `model.safetensors.index.json`, or as a
last resort `pytorch_model.bin` (through `torch.load(weights_only=True)`, which runs no pickled code).
What the tensors' names mean, and how they are loaded into a model, is loading.py's part.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import stat
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

logger = logging.getLogger("minibert")

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as it is: what is wrong, and in which file."""


class CheckpointNotFoundError(FileNotFoundError):
    """No checkpoint where the caller pointed: says where it looked and how to get one."""


# ---------------------------------------------------------------------------------------------
# Where the files are: a local folder, or a Hub repo resolved through huggingface_hub.
# ---------------------------------------------------------------------------------------------

@dataclass
class CheckpointSource:
    name: str  # as the caller wrote it
    folder: Path | None = None  # a local checkpoint folder ...
    repo_id: str | None = None  # ... or a Hub repo id
    revision: str | None = None

    @classmethod
    def resolve(cls, name_or_path: str | Path, revision: str | None = None) -> "CheckpointSource":
        path = Path(name_or_path).expanduser()
        if path.is_symlink() and not path.exists():
            raise CheckpointNotFoundError(f"{path} is a symbolic link that leads nowhere (a loop, or a removed target)")
        if path.is_dir():
            return cls(str(name_or_path), folder=path)
        if path.exists():
            raise CheckpointNotFoundError(f"{path} is a file; from_pretrained expects a checkpoint folder "
                                          "(with config.json) or a Hub repo id")
        if isinstance(name_or_path, Path) or not REPO_ID.match(str(name_or_path)):
            raise CheckpointNotFoundError(f"no checkpoint folder at {path.resolve()}")
        return cls(str(name_or_path), repo_id=str(name_or_path), revision=revision)

    def describe(self) -> str:
        if self.folder is not None:
            return f"folder {self.folder}"
        from huggingface_hub import constants

        rev = f" at revision {self.revision}" if self.revision else ""
        return f"Hub repo {self.repo_id}{rev} (cache {constants.HF_HUB_CACHE})"

    def find(self, filename: str) -> Path | None:
        """The local path of `filename`, downloading it if need be; None if the checkpoint lacks it."""
        if self.folder is not None:
            path = self.folder / filename
            if path.is_dir():  # else "it has no config.json", which is not what is wrong
                raise CheckpointError(f"{path} is a folder, not a file: the checkpoint's {filename} must be a file")
            return path if path.is_file() else None
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

        try:
            return Path(hf_hub_download(self.repo_id, filename, revision=self.revision))
        except (RepositoryNotFoundError, RevisionNotFoundError) as err:
            raise CheckpointNotFoundError(f"{self.describe()}: {type(err).__name__}: {err}") from None
        except EntryNotFoundError:
            # Either the repo has no such file, or (offline) it was never downloaded.
            return None

    def missing(self, what: str) -> CheckpointNotFoundError:
        """The error for a file the checkpoint must have: where we looked, and how to get it."""
        if self.folder is not None:
            return CheckpointNotFoundError(f"{self.folder} is not a checkpoint folder: it has no {what}")
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            why = "HF_HUB_OFFLINE=1 is set, so the Hub was not asked"
        else:
            why = "and the Hub could not be reached or has no such file"
        return CheckpointNotFoundError(
            f"{self.repo_id} is not in the Hugging Face cache at {constants.HF_HUB_CACHE}: no {what} "
            f"({why}). Fetch it where there is network with `hf download {self.repo_id}`, "
            "or pass the path of a local checkpoint folder."
        )

    def require_config(self) -> Path:
        path = self.find("config.json")
        if path is None:
            raise self.missing("config.json")
        return path


def read_bytes(path: Path) -> bytes:
    """A checkpoint file's bytes; an unreadable file is a CheckpointError that says why, not a traceback."""
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise CheckpointError(f"{path}: cannot be read ({err.strerror or err})") from None


def read_json_object(path: Path) -> dict:
    """A JSON file that must hold an object (a dict), such as tokenizer_config.json or an index."""
    try:
        values = json.loads(read_bytes(path).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(values, dict):
        raise CheckpointError(f"{path}: expected a JSON object, found {type(values).__name__}")
    return values


# ---------------------------------------------------------------------------------------------
# Reading tensors.
# ---------------------------------------------------------------------------------------------

def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The file's tensors, memory-mapped: no bytes are read until a tensor is used, and the pages
    come from the OS file cache, so loading makes no copy of the weights."""
    from safetensors.torch import load_file

    check_readable(path)
    try:
        return load_file(str(path))  # mmap is safetensors' default; writes stay private to this process
    except Exception as err:  # safetensors raises its own SafetensorError (and OSError) on bad files
        raise CheckpointError(f"{path}: not a readable safetensors file ({err}); "
                              "it may be truncated or corrupt, download it again") from None


def read_torch_bin(path: Path) -> dict[str, torch.Tensor]:
    """A pytorch_model.bin, through torch.load(weights_only=True): tensors only, no pickled code runs."""
    check_readable(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        # torch's own message suggests weights_only=False, which would run whatever the file holds:
        # never pass that advice on. Say what is wrong instead.
        message = str(err)
        if "Unsupported global" in message:
            why = "it holds Python objects besides tensors, and minibert never unpickles those (they can run code)"
        else:
            detail = message.split("WeightsUnpickler error:")[-1].strip().splitlines()[0][:200] if message else ""
            why = f"it is not a PyTorch checkpoint, or it is corrupt ({type(err).__name__}: {detail})"
        raise CheckpointError(f"{path}: cannot be read with torch.load: {why}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(state).__name__}")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: {key!r} is a {type(value).__name__}, not a tensor")
    return state


def check_readable(path: Path) -> None:
    """Say "permission denied" (or whatever the OS says) for a file that exists but cannot be opened."""
    try:
        with open(path, "rb"):
            pass
    except OSError as err:
        raise CheckpointError(f"{path}: cannot be read ({err.strerror or err})") from None


def read_weights(source: CheckpointSource) -> tuple[dict[str, torch.Tensor], dict[str, Path]]:
    """All tensors of the checkpoint, and for each tensor the file it came from."""
    path = source.find("model.safetensors")
    if path is not None:
        if source.find("pytorch_model.bin") is not None:
            logger.info("%s has both model.safetensors and pytorch_model.bin: reading model.safetensors",
                        source.describe())
        state = read_safetensors(path)
        return state, dict.fromkeys(state, path)

    index_path = source.find("model.safetensors.index.json")
    if index_path is not None:
        return read_shards(source, index_path)

    path = source.find("pytorch_model.bin")
    if path is not None:
        state = read_torch_bin(path)
        return state, dict.fromkeys(state, path)
    raise CheckpointNotFoundError(f"{source.describe()} has config.json but no weights: looked for "
                                  f"{', '.join(WEIGHT_FILES)}")


def read_shards(source: CheckpointSource, index_path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Path]]:
    """A sharded checkpoint: model.safetensors.index.json maps each tensor to the shard that holds it."""
    weight_map = read_json_object(index_path).get("weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(f"{index_path}: weight_map must be an object of tensor name -> shard file name, "
                              f"found {type(weight_map).__name__}")
    state: dict[str, torch.Tensor] = {}
    origins: dict[str, Path] = {}
    for shard in sorted(set(weight_map.values())):
        if Path(shard).name != shard or shard in (".", ".."):  # "../other/x.safetensors" would read elsewhere
            raise CheckpointError(f"{index_path}: shard {shard!r} is not a file name inside the checkpoint folder")
        shard_path = source.find(shard)
        if shard_path is None:
            raise CheckpointError(f"{index_path} lists shard {shard}, which {source.describe()} does not have")
        for key, tensor in read_safetensors(shard_path).items():
            listed = weight_map.get(key)
            if key in state or (listed is not None and listed != shard):
                other = origins.get(key) or shard_path.with_name(listed)
                raise CheckpointError(f"{key} is stored twice: in {other} and in {shard_path}; "
                                      f"{index_path} lists it in {listed}. Which copy is meant is not clear")
            state[key], origins[key] = tensor, shard_path
    listed_but_absent = sorted(set(weight_map) - set(state))
    if listed_but_absent:
        raise CheckpointError(f"{index_path} lists tensors that no shard holds: {listed_but_absent[:5]}")
    return state, origins


# ---------------------------------------------------------------------------------------------
# Writing files: atomically, so a crash leaves the old file or none, never half of one.
# ---------------------------------------------------------------------------------------------

def write_atomically(path: Path, content: bytes | Callable[[Path], None]) -> None:
    """Write `content` (bytes, or a function that writes a given path) to a temporary file beside
    `path`, flush it to disk, then rename it over `path`. The rename is atomic on POSIX and Windows,
    so a crash, Ctrl-C or SIGTERM leaves the old file or the new one, never half of one.

    A file being replaced keeps its permissions; a new one gets the umask's. A read-only target is
    refused rather than replaced. Temporary files left by a writer that was killed (SIGKILL) are
    removed on the next write to the same place.
    """
    path = Path(path)
    if not path.parent.is_dir():  # else the error would name the temporary file, not `path`
        if path.parent.exists():
            raise NotADirectoryError(f"cannot write {path}: {path.parent} is a file, not a folder")
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    old_mode = None
    if path.exists():
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder; cannot write a file over it")
        old_mode = stat.S_IMODE(path.stat().st_mode)
        if not old_mode & stat.S_IWUSR:
            raise PermissionError(f"{path} is read-only (mode {old_mode:o}); make it writable or remove it first")
    _remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with _sigterm_as_interrupt():
            if callable(content):
                content(tmp)
            else:
                tmp.write_bytes(content)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            # Some writers (safetensors) create their file 0600; give it the mode it would have had.
            os.chmod(tmp, old_mode if old_mode is not None else 0o666 & ~_umask())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_folder_atomically(path: Path, fill: Callable[[Path], None]) -> None:
    """Write a folder as write_atomically writes a file: `fill` writes the files into an empty temporary
    folder beside `path`, which is then renamed to `path`. A reader sees the previous folder or the new
    one, never half of one; a crash leaves at worst a temporary folder, removed by the next write.

    A folder cannot replace another in one rename, so the previous one is first renamed to `.NAME.old`,
    and removed once the new one is in place. A reader that finds no `path` but a `.NAME.old` has come in
    that instant, or after a crash in it: the previous folder is whole there.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} is a file; cannot write a folder over it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    _remove_stale_temporaries(path)
    tmp, old = path.with_name(f".{path.name}.tmp-{os.getpid()}"), path.with_name(f".{path.name}.old")
    try:
        with _sigterm_as_interrupt():
            _remove(tmp)  # this process id's, left by a dead process that had the same number
            tmp.mkdir()
            fill(tmp)
            if path.exists():
                _remove(old)
                path.rename(old)
            tmp.rename(path)
    finally:
        _remove(tmp)
    _remove(old)


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows (os.umask sets while reading)."""
    try:
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def _remove_stale_temporaries(path: Path) -> None:
    """Remove `.NAME.tmp-PID` files (or folders) beside `path` whose writer (PID) no longer runs."""
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_exists(int(pid)):
            _remove(stale)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, and belongs to someone else
    return True


@contextmanager
def _sigterm_as_interrupt():
    """While a file is written, SIGTERM (a polite kill) interrupts like Ctrl-C, so the temporary
    file is cleaned up; signals can only be handled in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"terminated by signal {signum} while writing")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
