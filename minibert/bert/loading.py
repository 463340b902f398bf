"""Loading a checkpoint into a model, strictly: map the names, check every tensor, copy them in.
And the other way: save_pretrained writes the layout and names transformers reads.

    >>> from minibert import BertModel
    >>> model = BertModel.from_pretrained(minilm_dir)     # a local checkpoint folder
    >>> model = BertModel.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")   # a Hub repo id
    >>> model.load_report.loaded, model.load_report.ignored_buffers
    (103, ['embeddings.position_ids'])

Checkpoint names differ from one era of BERT to the next, so they are mapped before loading:
  - the `bert.` prefix is added or stripped, as the class needs;
  - TensorFlow-era `LayerNorm.gamma` / `LayerNorm.beta` become `LayerNorm.weight` / `LayerNorm.bias`;
  - stale buffers (`embeddings.position_ids`, `embeddings.token_type_ids`) are ignored;
  - the masked-LM decoder weight *is* the word-embedding matrix, so it is never read twice.
Loading is strict: every missing, unexpected or wrongly shaped tensor is listed in one error.
The files themselves are found and read by files.py.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

from .config import BertConfig, ConfigError
from .files import CheckpointError, CheckpointSource, logger, read_weights, write_atomically

LEGACY_LAYER_NORM_NAMES = {"LayerNorm.gamma": "LayerNorm.weight", "LayerNorm.beta": "LayerNorm.bias"}
STALE_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
BASE_MODEL_PARTS = ("embeddings.", "encoder.", "pooler.")
POOLER_PATHS = ("pooler.", "bert.pooler.")
# The heads of transformers' fine-tuned classes, by their tensors' prefix: a classifier (of the sequence, of
# each token, or of each choice) and question answering's span scorer. A class that builds none of one
# leaves it unused, so that a fine-tuned checkpoint loads into BertModel or any other head; a class that
# builds one and finds it missing raises MissingHeadError, unless one was asked for (num_labels= or
# init_new_head=True).
TASK_HEADS = ("classifier.", "qa_outputs.")
# Tensors that some files store under a second name. They must equal the tensor they stand for.
TIED_ALIASES = {
    "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}


class MissingHeadError(CheckpointError):
    """The checkpoint has the encoder but not the head this class needs (and none was asked for)."""


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
    other_heads = tuple(head for head in TASK_HEADS if not any(n.startswith(head) for n in expected))
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
        elif name.startswith(model.unused_checkpoint_prefixes + other_heads):
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
    new_task_head = any(n.startswith(TASK_HEADS) for n, _ in missing) and \
        all(n.startswith(TASK_HEADS + POOLER_PATHS) for n, _ in missing)
    if missing and head_only and (init_new_head or labels_named and new_task_head):
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
    if any(n.startswith("qa_outputs.") for n, _ in missing):
        return ("Pass init_new_head=True to start the span scorer (qa_outputs: a start and an end score per token) "
                "from random weights; it then needs fine-tuning. Or load a checkpoint that has this head.")
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
    with torch.device("meta"), NoInitOnMeta():
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


class NoInitOnMeta(TorchFunctionMode):
    """While a model is built on the meta device, torch.nn.init's functions that go through torch's function
    dispatch (normal_, uniform_, kaiming_*, constant_: those the layers' constructors call) pass over its
    tensors, which hold no numbers to initialise. (On a meta tensor they would do nothing, but the first call imports
    torch._dynamo: a second of from_pretrained.) A torch function mode is scoped to the `with` block and
    to this thread; nothing else is changed."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensor = args[0] if args else kwargs.get("tensor")
        if getattr(func, "__module__", None) == "torch.nn.init" and isinstance(tensor, torch.Tensor) and tensor.is_meta:
            return tensor
        return func(*args, **kwargs)


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
