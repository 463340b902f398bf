"""Loading official checkpoints: find the files, read the tensors, map the names, copy them in.

    >>> from minibert import BertModel
    >>> model = BertModel.from_pretrained(minilm_dir)     # a local checkpoint folder
    >>> model = BertModel.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")   # a Hub repo id
    >>> model.load_report.loaded, model.load_report.ignored_buffers
    (103, ['embeddings.position_ids'])

A repo id goes through huggingface_hub: its cache, its progress bar, and HF_HUB_OFFLINE. The files
read are `config.json`, then `model.safetensors`, a sharded `model.safetensors.index.json`, or as a
last resort `pytorch_model.bin` (through `torch.load(weights_only=True)`, which runs no pickled code).

Checkpoint names differ from one era of BERT to the next, so they are mapped before loading:
  - the `bert.` prefix is added or stripped, as the class needs;
  - TensorFlow-era `LayerNorm.gamma` / `LayerNorm.beta` become `LayerNorm.weight` / `LayerNorm.bias`;
  - stale buffers (`embeddings.position_ids`, `embeddings.token_type_ids`) are ignored;
  - the masked-LM decoder weight *is* the word-embedding matrix, so it is never read twice.
Loading is strict: every missing, unexpected or wrongly shaped tensor is listed in one error.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import re
import signal
import stat
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .config import BertConfig, ConfigError
from .outputs import TracedOutput

logger = logging.getLogger("minibert")

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
LEGACY_LAYER_NORM_NAMES = {"LayerNorm.gamma": "LayerNorm.weight", "LayerNorm.beta": "LayerNorm.bias"}
STALE_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
BASE_MODEL_PARTS = ("embeddings.", "encoder.", "pooler.")
POOLER_PATHS = ("pooler.", "bert.pooler.")
# Tensors that some files store under a second name. They must equal the tensor they stand for.
TIED_ALIASES = {
    "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as it is: what is wrong, and in which file."""


class MissingHeadError(CheckpointError):
    """The checkpoint has the encoder but not the head this class needs (and none was asked for)."""


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
# Mapping checkpoint names onto the model's parameter paths.
# ---------------------------------------------------------------------------------------------

@dataclass
class LoadReport:
    """What from_pretrained did with each tensor of the file, kept on the model as `load_report`."""

    source: str = ""
    files: list[str] = field(default_factory=list)
    loaded: int = 0
    renamed_legacy: list[str] = field(default_factory=list)  # gamma/beta keys renamed
    ignored_buffers: list[str] = field(default_factory=list)  # position_ids and the like
    tied_aliases: list[str] = field(default_factory=list)  # second names of a tied tensor
    unused: list[str] = field(default_factory=list)  # tensors of a head this class does not have
    initialised: list[str] = field(default_factory=list)  # parameters freshly initialised on request


def checkpoint_name_to_model_name(key: str, base_model_prefix: str, report: LoadReport) -> str:
    """Rename one checkpoint key to the parameter path this class uses."""
    name = key
    for old, new in LEGACY_LAYER_NORM_NAMES.items():  # TensorFlow-era names, only inside a LayerNorm
        if name.endswith(old):
            name = name.removesuffix(old) + new
            report.renamed_legacy.append(key)
    has_prefix = name.startswith("bert.")
    if base_model_prefix == "bert" and not has_prefix and name.startswith(BASE_MODEL_PARTS):
        name = "bert." + name  # a bare BertModel file loaded into a model with a head
    elif base_model_prefix == "" and has_prefix:
        name = name.removeprefix("bert.")  # a file with heads loaded into the bare BertModel
    return name


def map_checkpoint(state: dict[str, torch.Tensor], model, report: LoadReport, init_new_head: bool = False,
                   origins: dict[str, Path] | None = None, allow_non_finite: bool = False,
                   labels_named: bool = False) -> dict[str, torch.Tensor]:
    """Checkpoint keys -> model parameter paths. Raises one CheckpointError listing every problem.

    `labels_named`: the caller gave num_labels or id2label, so a classifier the file lacks (and the pooler
    it reads, which a masked-LM file lacks too) is asked for, as in transformers.
    """
    origins = origins or {}
    expected = dict(model.named_parameters())  # shared tensors (the tied decoder) appear once
    mapped: dict[str, torch.Tensor] = {}
    key_of: dict[str, str] = {}  # parameter path -> the checkpoint key it was read from
    aliases: dict[str, torch.Tensor] = {}
    unexpected: list[tuple[str, tuple]] = []
    for key, tensor in state.items():
        if key.endswith(STALE_BUFFERS):
            report.ignored_buffers.append(key)
            continue
        name = checkpoint_name_to_model_name(key, model.base_model_prefix, report)
        if name in key_of:  # "bert.X" and "X", or "LayerNorm.gamma" and "LayerNorm.weight": which one?
            first = key_of[name]
            raise CheckpointError(f"{first} (in {origins.get(first, report.source)}) and {key} (in "
                                  f"{origins.get(key, report.source)}) are both {name}; a checkpoint must hold "
                                  "each tensor once")
        key_of[name] = key
        if name in expected:
            mapped[name] = tensor
        elif name.startswith(model.unused_checkpoint_prefixes):
            report.unused.append(key)
        elif TIED_ALIASES.get(name) in expected:
            aliases[TIED_ALIASES[name]] = tensor
            report.tied_aliases.append(key)
        else:
            unexpected.append((key, tuple(tensor.shape)))

    refuse_unmerged_low_rank(unexpected, report.source)

    # A tensor stored under two names must say the same thing twice.
    for target, tensor in aliases.items():
        if target not in mapped:
            mapped[target] = tensor
        elif mapped[target].shape != tensor.shape or not torch.equal(mapped[target], tensor):
            raise CheckpointError(f"{report.source}: {target} and its tied copy in the file disagree")

    missing = [(n, tuple(p.shape)) for n, p in expected.items() if n not in mapped]
    wrong_shape = [(n, tuple(expected[n].shape), tuple(t.shape)) for n, t in mapped.items()
                   if tuple(t.shape) != tuple(expected[n].shape)]
    # A head may be new; so may the pooler, which a masked-LM checkpoint (no pooler) lacks.
    def in_head(name: str) -> bool:
        return not name.startswith(("bert.",) + BASE_MODEL_PARTS) or name.startswith(POOLER_PATHS)

    head_only = all(in_head(n) for n, _ in missing)
    if init_new_head:
        # A classifier asked for with another number of labels: its head starts fresh too.
        resized = [n for n, _, _ in wrong_shape if in_head(n)]
        for name in resized:
            del mapped[name]
        wrong_shape = [row for row in wrong_shape if row[0] not in resized]
        missing += [(n, tuple(expected[n].shape)) for n in resized]
    new_classifier = any(n.startswith("classifier.") for n, _ in missing) and \
        all(n.startswith(("classifier.",) + POOLER_PATHS) for n, _ in missing)
    if missing and head_only and (init_new_head or labels_named and new_classifier):
        report.initialised.extend(n for n, _ in missing)
        missing = []

    if missing and head_only and not unexpected and not wrong_shape:
        raise MissingHeadError(
            f"{report.source} has no weights for the head of {type(model).__name__} "
            f"(missing {', '.join(n for n, _ in missing)}). {how_to_start(model, missing)}"
        )
    if missing or unexpected or wrong_shape:
        lines = [f"{report.source}: the checkpoint does not fit {type(model).__name__}:"]
        lines += at_most(20, [f"  missing     {line}" for line in
                              by_layer([(n, f"expected {shape}, found nothing") for n, shape in missing])])
        lines += at_most(20, [f"  unexpected  {line}" for line in
                              by_layer([(n, f"expected nothing, found {shape}") for n, shape in unexpected])])
        lines += at_most(20, [f"  wrong shape {n}: expected {exp}, found {got}" for n, exp, got in wrong_shape])
        raise CheckpointError("\n".join(lines))
    check_values(mapped, key_of, origins, report.source, allow_non_finite)
    return mapped


def refuse_unmerged_low_rank(unexpected: list[tuple[str, tuple]], source: str) -> None:
    """A file saved from a model with low-rank updates in place (minibert/training/lowrank.py) holds their
    factors, lora_A and lora_B, beside the frozen weights: the fine-tuned model is neither, and a plain BERT
    cannot hold it. Say that in one line, rather than list every factor as an unexpected tensor.

    (Such files are written on purpose: a training checkpoint keeps the factors to resume from.)"""
    updated = low_rank_layers(key for key, _ in unexpected)
    if updated:
        raise CheckpointError(
            f"{source} holds low-rank updates that were never merged into their weights (lora_A and lora_B of "
            f"{len(updated)} Linear layers, the first {updated[0]}): it was saved before merge_low_rank. Load it "
            "into the model it was saved from (add_low_rank, then load_state_dict), call merge_low_rank(model) and "
            "save again; that file loads as a plain BERT")


def low_rank_layers(names) -> list[str]:
    """The Linear layers, in order, that tensor names show holding low-rank factors (NAME.lora_A, NAME.lora_B)."""
    return list(dict.fromkeys(name.rsplit(".", 1)[0] for name in names if name.endswith((".lora_A", ".lora_B"))))


def refuse_to_save_unmerged_low_rank(model) -> None:
    """save_pretrained's side of refuse_unmerged_low_rank: say so before a file is written, not when it is read."""
    updated = low_rank_layers(model.state_dict())
    if updated:
        raise ValueError(
            f"the model holds low-rank updates not yet merged into their weights ({len(updated)} Linear layers, the "
            f"first {updated[0]}): call merge_low_rank(model) before save_pretrained, and the file loads as a plain "
            "BERT anywhere; to keep the factors (to go on training), save low_rank_factors(model) instead")


def how_to_start(model, missing: list[tuple[str, tuple]]) -> str:
    """What to pass to from_pretrained when the checkpoint lacks the head (or pooler) a class builds."""
    if model.base_model_prefix == "" and all(n.startswith(POOLER_PATHS) for n, _ in missing):
        return ("A checkpoint saved without a pooler (a masked-LM one) loads with add_pooling_layer=False, as in "
                "transformers; init_new_head=True starts a pooler from random weights instead.")
    if any(n.startswith("classifier.") for n, _ in missing):
        return ("Pass num_labels=N (or id2label) to start a classifier of N labels from random weights, as in "
                "transformers, or init_new_head=True to start it with the config's labels; it then needs "
                "fine-tuning. Or load a checkpoint that has this head.")
    return ("Pass init_new_head=True to start the head from random weights (it then needs fine-tuning), or load "
            "a checkpoint that has this head.")


LAYER_TENSOR = re.compile(r"^(.*encoder\.layer\.)(\d+)\.(.+)$")  # prefix, layer index, name within the layer


def by_layer(rows: list[tuple[str, str]]) -> list[str]:
    """"name: what is wrong" per tensor, except that an encoder layer with several tensors in `rows` gets
    one line, shared by the next layers when they hold the same tensors: a missing or extra layer is
    "encoder.layer.2-3: 16 tensors each (attention.self.query.weight, attention.self.query.bias, ...)",
    not sixteen lines each."""
    layers: dict[tuple[str, int], list[str]] = {}  # (prefix, layer index) -> its tensors' names within the layer
    for name, _ in rows:
        if match := LAYER_TENSOR.match(name):
            layers.setdefault((match[1], int(match[2])), []).append(match[3])
    lines, summarised = [], set()
    for name, problem in rows:
        match = LAYER_TENSOR.match(name)
        key = (match[1], int(match[2])) if match else None
        if key is None or len(layers[key]) == 1:
            lines.append(f"{name}: {problem}")
            continue
        if key in summarised:
            continue
        prefix, first = key
        last = first
        while sorted(layers.get((prefix, last + 1), [])) == sorted(layers[key]):
            last += 1
        summarised.update((prefix, i) for i in range(first, last + 1))
        names = layers[key]
        shown = ", ".join(names[:2]) + (", ..." if len(names) > 2 else "")
        if last == first:
            lines.append(f"{prefix}{first}: {len(names)} tensors ({shown})")
        else:
            lines.append(f"{prefix}{first}-{last}: {len(names)} tensors each ({shown})")
    return lines


def at_most(n: int, lines: list[str]) -> list[str]:
    """The first n lines, and one that says how many more there were: an error stays readable."""
    return lines if len(lines) <= n else lines[:n] + [f"  ... and {len(lines) - n} more"]


WEIGHT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)  # what a plain checkpoint holds


def check_values(mapped: dict[str, torch.Tensor], key_of: dict[str, str], origins: dict[str, Path], source: str,
                 allow_non_finite: bool) -> None:
    """Refuse weights that would load and then answer with confidence: integers or booleans (cast to
    float they are another model), 8-bit floats (a quantized checkpoint: its values mean something only
    with scales stored beside them), and NaN or infinity (every output would be NaN)."""
    for name, tensor in mapped.items():
        where = f"{key_of[name]} in {origins.get(key_of[name], source)}"
        if tensor.dtype not in WEIGHT_DTYPES:
            raise CheckpointError(f"{where} holds {tensor.dtype} values; a weight must be float32, float16 or "
                                  "bfloat16 (float64 is read too)")
        # A NaN or an infinity makes the sum NaN or infinite, so a finite sum clears the tensor in one cheap
        # pass (17x faster than isfinite().all() here). A sum may also overflow from finite values alone;
        # only then is every value looked at.
        if not allow_non_finite and not bool(torch.isfinite(tensor.sum())) and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(f"{where} holds {bad} NaN or infinite value(s). Pass allow_non_finite=True to "
                                  "load it anyway, to look at it")


# ---------------------------------------------------------------------------------------------
# from_pretrained
# ---------------------------------------------------------------------------------------------

def load_pretrained(model_class, name_or_path, revision=None, init_new_head=False, dtype=None,
                    allow_non_finite=False, model_kwargs=None, **config_changes):
    dtype = weight_dtype(dtype)
    source = CheckpointSource.resolve(name_or_path, revision)
    config_path = source.require_config()
    config = BertConfig.from_json_file(config_path)
    if config_changes:
        config = config_with(config, config_changes, str(config_path))
    check_size(config, str(config_path))
    state, origins = read_weights(source)
    check_layer_count(config, state, str(config_path))
    report = LoadReport(source=source.describe(), files=sorted({str(f) for f in origins.values()}))

    # Built on the meta device: shapes only, no memory and no random numbers. The file's tensors
    # then become the parameters themselves, so the weights exist once, in the memory-mapped file.
    with torch.device("meta"), _normal_init_skips_meta_tensors():
        model = model_class(config, **(model_kwargs or {}))
    labels_named = "num_labels" in config_changes or "id2label" in config_changes
    mapped = map_checkpoint(state, model, report, init_new_head, origins, allow_non_finite, labels_named)
    if report.initialised:
        initialise_new_parameters(model, report.initialised)
    assign_parameters(model, mapped)
    report.loaded = len(mapped)

    if report.unused:
        logger.info("%s: %d tensors of heads that %s does not have were not used: %s", report.source,
                    len(report.unused), model_class.__name__, ", ".join(report.unused[:8]))
    if report.initialised:
        logger.warning("%s: newly initialised, not from the checkpoint: %s", report.source,
                       ", ".join(report.initialised))
    model.load_report = report
    if dtype == "auto":
        dtype = checkpoint_dtype(config, mapped)
    if dtype is not None:
        model.to(dtype)
    return model.eval()  # dropout off: inference is deterministic


DTYPE_NAMES = {str(dtype).removeprefix("torch."): dtype for dtype in WEIGHT_DTYPES}  # "bfloat16": torch.bfloat16


def weight_dtype(dtype) -> torch.dtype | str | None:
    """from_pretrained's dtype, checked: None (float32), a dtype of weights, its name as transformers takes it
    ("bfloat16"), or "auto" (the checkpoint's own, see checkpoint_dtype)."""
    if dtype is None or dtype == "auto" or dtype in WEIGHT_DTYPES:
        return dtype
    if isinstance(dtype, str) and dtype in DTYPE_NAMES:
        return DTYPE_NAMES[dtype]
    error = ValueError if isinstance(dtype, (str, torch.dtype)) else TypeError
    raise error(f"dtype={dtype!r} is not a dtype for weights: give torch.float32, torch.float16, torch.bfloat16 "
                f"or torch.float64, a name of one ({', '.join(map(repr, DTYPE_NAMES))}), or 'auto' for the "
                "checkpoint's own")


def checkpoint_dtype(config: BertConfig, tensors: dict[str, torch.Tensor]) -> torch.dtype:
    """dtype="auto": the dtype config.json names (transformers 5 writes `dtype`, earlier versions and
    minibert `torch_dtype`), else that of the first floating-point weight, as transformers decides."""
    for key in ("dtype", "torch_dtype"):
        name = config.extra.get(key)
        if isinstance(name, str) and name.removeprefix("torch.") in DTYPE_NAMES:
            return DTYPE_NAMES[name.removeprefix("torch.")]
    return next((t.dtype for t in tensors.values() if t.dtype.is_floating_point), torch.float32)


def check_size(config: BertConfig, source: str) -> None:
    """Refuse a config whose weights could not fit in this machine's memory, before building it."""
    parameters = config.num_parameters_estimate()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
    if memory and parameters * 4 > memory:
        raise ConfigError(f"{source}: this config describes about {parameters / 1e9:.1f} billion parameters "
                          f"({parameters * 4 / 2**30:.0f} GiB in float32), more than this machine's "
                          f"{memory / 2**30:.0f} GiB of memory (num_hidden_layers={config.num_hidden_layers}, "
                          f"hidden_size={config.hidden_size}, vocab_size={config.vocab_size})")


def check_layer_count(config: BertConfig, state: dict, source: str) -> None:
    """Refuse a config whose layer count is not the weights', in one line, before building anything.

    More layers than the weights: strict loading would refuse it too, but only after building every
    claimed layer (20,000 took 21 s). Fewer, where the weights hold layers 0 to N - 1 in full: strict
    loading would list every tensor of the extra layers.
    """
    found = {int(m.group(1)) for key in state if (m := re.search(r"encoder\.layer\.(\d+)\.", key))}
    if not found:
        return
    held = max(found) + 1
    if config.num_hidden_layers > held or (config.num_hidden_layers < held and found == set(range(held))):
        raise ConfigError(f"{source}: num_hidden_layers={config.num_hidden_layers}, but the weights hold {held} "
                          f"layers (encoder.layer.0 to encoder.layer.{held - 1}); set num_hidden_layers to {held}")


def config_with(config: BertConfig, changes: dict, source: str) -> BertConfig:
    """The checkpoint's config with the caller's changes (num_labels=, id2label=, problem_type=, ...).

    num_labels alone gives fresh labels LABEL_0..; id2label gives names and the count; label2id
    follows id2label unless given too.
    """
    values = config.to_dict()
    if "id2label" in changes or "num_labels" in changes:
        values.pop("label2id", None)
        values.pop("id2label", None)
    values.update({k: v for k, v in changes.items() if v is not None})
    return BertConfig.from_dict(values, source=f"{source} with {sorted(changes)}")


@contextmanager
def _normal_init_skips_meta_tensors():
    """Let nn.init.normal_ pass over meta tensors, which hold no numbers to initialise.

    nn.Embedding calls it in its constructor; on a meta tensor it would do nothing, yet the first
    call imports torch._dynamo, about a second of from_pretrained. Nothing else is changed.
    """
    normal = torch.nn.init.normal_

    def normal_unless_meta(tensor, *args, **kwargs):
        return tensor if tensor.is_meta else normal(tensor, *args, **kwargs)

    torch.nn.init.normal_ = normal_unless_meta
    try:
        yield
    finally:
        torch.nn.init.normal_ = normal


def assign_parameters(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Make each loaded tensor a parameter of the model, without copying it.

    A tied parameter (the masked-LM decoder weight, which is the word-embedding matrix) has two
    paths but one tensor: named_parameters(remove_duplicate=False) lists both, and both get the same
    new Parameter, so the tie survives.
    """
    new_params: dict[int, torch.nn.Parameter] = {}  # id of the meta parameter -> its loaded tensor
    names_of: dict[int, str] = {}  # id of the meta parameter -> the first path that holds it
    # A list, so every meta parameter stays alive (and its id unique) until the loop ends.
    for name, param in list(model.named_parameters(remove_duplicate=False)):
        first = names_of.setdefault(id(param), name)
        if first not in tensors:
            continue  # freshly initialised on request: already a real tensor
        if id(param) not in new_params:
            tensor = tensors[first].to(param.dtype)  # a no-op unless the file has another dtype (float16)
            new_params[id(param)] = torch.nn.Parameter(tensor, requires_grad=param.requires_grad)
        module_path, _, attribute = name.rpartition(".")
        setattr(model.get_submodule(module_path), attribute, new_params[id(param)])


def initialise_new_parameters(model: torch.nn.Module, names: list[str]) -> None:
    """Give the parameters the checkpoint lacks (a new head) real memory and BERT's initialisation."""
    params = dict(model.named_parameters())
    for name in names:
        module_path, _, attribute = name.rpartition(".")
        param = params[name]
        setattr(model.get_submodule(module_path), attribute,
                torch.nn.Parameter(torch.zeros(param.shape, dtype=param.dtype), requires_grad=param.requires_grad))
    model.init_weights()  # initialises the real tensors; the rest are still on the meta device


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
    """Remove `.NAME.tmp-PID` files beside `path` whose writer (PID) no longer runs."""
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_exists(int(pid)):
            stale.unlink(missing_ok=True)


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


def save_pretrained(model, folder: str | Path, tokenizer=None, keep_low_rank: bool = False) -> Path:
    """Write `config.json` and `model.safetensors` in Hugging Face's layout and key names.

    The tied masked-LM decoder is the word-embedding matrix: it is stored once, under the
    embedding's name, as transformers stores it. A model with low-rank updates not yet merged
    (minibert/training/lowrank.py) is refused before anything is written: its factors are no tensors
    of BERT, and the file would load nowhere as the fine-tuned model. `keep_low_rank=True` writes them
    anyway, for the Trainer's checkpoints, which resume training with the factors in place.
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    if not keep_low_rank:
        refuse_to_save_unmerged_low_rank(model)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():  # mkdir would say only "[Errno 17] File exists"
        raise NotADirectoryError(f"{folder} is a file; save_pretrained writes config.json and model.safetensors "
                                 "into a folder: give a folder's path")
    folder.mkdir(parents=True, exist_ok=True)
    stored: set[int] = set()  # the memory addresses already written
    tensors = {}
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() in stored:
            continue  # the second name of a tied tensor: the same memory, written once
        stored.add(tensor.data_ptr())
        tensors[name] = tensor.detach().contiguous()
    config = model.config.to_dict()
    config["architectures"] = [type(model).__name__]
    config["torch_dtype"] = str(model.dtype).removeprefix("torch.")
    if "dtype" in config:  # transformers 5's name for it, kept from the file the model came from: make it true
        config["dtype"] = config["torch_dtype"]

    def write_weights(tmp: Path) -> None:
        try:
            save_file(tensors, str(tmp), metadata={"format": "pt"})
        except SafetensorError as err:  # a full disk comes as "... os error 28", naming no file
            raise OSError(f"cannot write {folder / 'model.safetensors'}: {err}") from None

    write_atomically(folder / "model.safetensors", write_weights)
    write_atomically(folder / "config.json", (json.dumps(config, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


# ---------------------------------------------------------------------------------------------
# What code written for transformers expects of a model, beside the forward pass.
# ---------------------------------------------------------------------------------------------

class PreTrainedMixin:
    """from_pretrained and save_pretrained, and transformers' small conveniences: device, dtype,
    the input embeddings, resize_token_embeddings, num_parameters. Mixed into BertPreTrainedModel."""

    main_input_name = "input_ids"  # what transformers' utilities read to find the model's main input
    supports_gradient_checkpointing = True  # what transformers' Trainer checks before it switches it on

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, revision: str | None = None, init_new_head: bool = False,
                        *, dtype: torch.dtype | str | None = None, num_labels: int | None = None,
                        id2label: dict | None = None, label2id: dict | None = None, problem_type: str | None = None,
                        add_pooling_layer: bool | None = None, allow_non_finite: bool = False):
        """Load a checkpoint from a local folder or a Hugging Face Hub repo id, strictly, in eval mode.

        A head that the checkpoint lacks is an error, unless asked for: `num_labels` (or `id2label`) asks
        for a classifier, as in `BertForSequenceClassification.from_pretrained(base, num_labels=5)`;
        `init_new_head=True` for any head (and for a classifier of another size than the file's). A new
        head starts from random weights, and a warning names its tensors.

        num_labels, id2label, label2id and problem_type change the config before the model is built.
        `add_pooling_layer=False` (BertModel only, as in transformers) builds no pooler, for a checkpoint
        saved without one. `dtype` converts the weights after loading: torch.bfloat16, its name "bfloat16",
        or "auto" for the checkpoint's own; the default is float32. A weight holding NaN or infinity is an
        error unless `allow_non_finite=True` (to look at a broken checkpoint).
        """
        changes = dict(num_labels=num_labels, id2label=id2label, label2id=label2id, problem_type=problem_type)
        changes = {k: v for k, v in changes.items() if v is not None}
        model_kwargs = {}
        if add_pooling_layer is not None:
            if "add_pooling_layer" not in inspect.signature(cls.__init__).parameters:
                raise TypeError(f"add_pooling_layer is an argument of BertModel; {cls.__name__} builds its encoder "
                                "with the pooler its head reads, or without one")
            model_kwargs["add_pooling_layer"] = add_pooling_layer
        return load_pretrained(cls, name_or_path, revision=revision, init_new_head=init_new_head, dtype=dtype,
                               allow_non_finite=allow_non_finite, model_kwargs=model_kwargs, **changes)

    def save_pretrained(self, folder: str | Path, tokenizer=None, safe_serialization: bool = True,
                        keep_low_rank: bool = False) -> Path:
        """Write config.json and model.safetensors (and the tokenizer's files when given) into `folder`,
        in the layout transformers' from_pretrained reads. Each file is written atomically.
        `safe_serialization` is transformers' switch; only safetensors (True) is written here.
        Unmerged low-rank updates are refused unless `keep_low_rank` (see the function save_pretrained)."""
        if not safe_serialization:
            raise ValueError("minibert saves weights as safetensors only; pytorch_model.bin is not written")
        return save_pretrained(self, folder, tokenizer, keep_low_rank=keep_low_rank)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def base_model(self):
        return getattr(self, self.base_model_prefix) if self.base_model_prefix else self

    def get_input_embeddings(self) -> torch.nn.Embedding:
        return self.base_model().embeddings.word_embeddings

    def set_input_embeddings(self, embeddings: torch.nn.Embedding) -> None:
        """Use `embeddings` as the word embeddings, and as the masked-LM decoder's weight too. transformers
        leaves its decoder on the old matrix until tie_weights() is called; here the tie holds at once,
        as a masked-LM head whose decoder reads another matrix than its input is not BERT's."""
        self.base_model().embeddings.word_embeddings = embeddings
        self.tie_weights()

    def get_output_embeddings(self) -> torch.nn.Linear | None:
        """The masked-LM decoder, whose weight is the input embeddings' (None for a model without one)."""
        predictions = getattr(getattr(self, "cls", None), "predictions", None)
        return predictions.decoder if predictions is not None else None

    def tie_weights(self) -> None:
        """Make the decoder's weight the word-embedding matrix again: one tensor, two uses."""
        decoder = self.get_output_embeddings()
        if decoder is not None:
            decoder.weight = self.get_input_embeddings().weight
            decoder.out_features = decoder.weight.shape[0]

    def resize_token_embeddings(self, new_num_tokens: int) -> torch.nn.Embedding:
        """Grow or shrink the vocabulary to `new_num_tokens` rows. Old rows keep their vectors, new
        rows get BERT's initialisation, the decoder stays tied and its bias is resized with it."""
        if isinstance(new_num_tokens, bool) or not isinstance(new_num_tokens, int) or new_num_tokens < 1:
            raise ValueError(f"new_num_tokens must be a positive integer, got {new_num_tokens!r}")
        old = self.get_input_embeddings()
        keep = min(old.num_embeddings, new_num_tokens)
        pad = self.config.pad_token_id if self.config.pad_token_id < new_num_tokens else None
        new = torch.nn.Embedding(new_num_tokens, old.embedding_dim, padding_idx=pad, device=old.weight.device,
                                 dtype=old.weight.dtype)
        with torch.no_grad():
            new.weight.normal_(mean=0.0, std=self.config.initializer_range)
            new.weight[:keep] = old.weight[:keep]
        self.base_model().embeddings.word_embeddings = new
        predictions = getattr(getattr(self, "cls", None), "predictions", None)
        if predictions is not None:
            bias = torch.zeros(new_num_tokens, device=predictions.bias.device, dtype=predictions.bias.dtype)
            bias[:keep] = predictions.bias.detach()[:keep]
            predictions.bias = torch.nn.Parameter(bias)
        self.config.vocab_size = new_num_tokens
        self.tie_weights()
        return new

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """How many numbers the model learns; a tied tensor counts once."""
        embeddings = {id(m.weight) for m in self.modules() if isinstance(m, torch.nn.Embedding)}
        return sum(p.numel() for p in self.parameters()
                   if (p.requires_grad or not only_trainable) and not (exclude_embeddings and id(p) in embeddings))

    # -- gradient checkpointing, under transformers' names -----------------------------------------

    CHECKPOINT_OPTIONS = ("use_reentrant", "preserve_rng_state", "context_fn", "determinism_check", "debug")

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        """Trade compute for memory in training: each encoder layer keeps only its input during the forward
        pass, and runs again in the backward pass to get what its gradients need (torch.utils.checkpoint).
        About one more forward pass of work; the activations inside the layers are never all held at once.
        Active in training mode only; the gradients are the same as without (the random state is restored
        before a layer runs again, so dropout repeats its masks).

        `gradient_checkpointing_kwargs` go to torch.utils.checkpoint.checkpoint, as in transformers, on top
        of use_reentrant=False. use_reentrant=True is refused: that variant gives no gradient to a layer
        whose input needs none (frozen embeddings, as add_low_rank leaves them), and trains nothing there.
        """
        kwargs = {"use_reentrant": False}
        if gradient_checkpointing_kwargs is not None:
            if not isinstance(gradient_checkpointing_kwargs, dict):
                raise TypeError(f"gradient_checkpointing_kwargs must be a dict of torch.utils.checkpoint's "
                                f"options, got {type(gradient_checkpointing_kwargs).__name__}")
            unknown = sorted(set(gradient_checkpointing_kwargs) - set(self.CHECKPOINT_OPTIONS))
            if unknown:
                raise TypeError(f"gradient_checkpointing_kwargs: {', '.join(unknown)} is not an option of "
                                f"torch.utils.checkpoint; it takes {', '.join(self.CHECKPOINT_OPTIONS)}")
            if gradient_checkpointing_kwargs.get("use_reentrant", False) is not False:
                raise ValueError("gradient_checkpointing_kwargs: minibert checkpoints with use_reentrant=False only; "
                                 "the reentrant variant gives no gradient to a layer whose input needs none "
                                 "(frozen embeddings, as add_low_rank leaves them)")
            kwargs.update(gradient_checkpointing_kwargs)
        encoder = self.base_model().encoder
        encoder.gradient_checkpointing, encoder.checkpoint_kwargs = True, kwargs

    def gradient_checkpointing_disable(self) -> None:
        self.base_model().encoder.gradient_checkpointing = False

    @property
    def is_gradient_checkpointing(self) -> bool:
        return self.base_model().encoder.gradient_checkpointing

    # transformers 5.24 renamed the three (the old names still work there, with a FutureWarning).
    def activation_checkpointing_enable(self, activation_checkpointing_kwargs: dict | None = None) -> None:
        self.gradient_checkpointing_enable(activation_checkpointing_kwargs)

    def activation_checkpointing_disable(self) -> None:
        self.gradient_checkpointing_disable()

    @property
    def is_activation_checkpointing(self) -> bool:
        return self.is_gradient_checkpointing

    def switches(self, output_attentions: bool | None, output_hidden_states: bool | None,
                 return_dict: bool | None) -> tuple[bool, bool, bool]:
        """forward's output switches: the caller's, else the config's, as transformers resolves them."""
        config = self.config
        return (config.output_attentions if output_attentions is None else output_attentions,
                config.output_hidden_states if output_hidden_states is None else output_hidden_states,
                config.return_dict if return_dict is None else return_dict)

    def as_requested(self, output, return_dict: bool | None):
        """The output dataclass, or with return_dict=False (here or in the config) its tuple.

        Under torch.jit.trace, a call that does not pass return_dict gets a TracedOutput (outputs.py), a
        dict of the set fields, instead of the dataclass, which the tracer cannot take (it takes tensors,
        tuples, lists and dicts). The traced model then returns a plain dict, as transformers 5's traced
        models do, its outputs being dicts: `traced(ids)["logits"]` works with both, and both need
        torch.jit.trace(..., strict=False) to return a dict. With return_dict=False in the config, the
        tuple, which strict tracing takes. (The heads call their encoder with return_dict=True, and so
        get the dataclass, traced or not.)
        """
        if return_dict is None:  # the caller did not say: the config decides
            if self.config.return_dict and torch.jit.is_tracing():
                return TracedOutput(output)
            return_dict = self.config.return_dict
        return output if return_dict else output.to_tuple()
