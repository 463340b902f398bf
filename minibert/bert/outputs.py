"""What the models return: dataclasses with named fields, that also index as transformers' outputs do.

Read the fields by name (`out.logits`). Code written for transformers indexes them instead, and
that works too: `out[0]` is the first field that is set, `out["logits"]` a field by name, and
`out.to_tuple()` every field that is set, in order. A field left at None does not count, exactly as
in transformers' ModelOutput, so `out[0]` is the loss when labels were given and the logits when not.

    >>> out = LogitsOutput(logits=torch.zeros(2, 3))
    >>> out[0].shape, list(out.keys()), len(out.to_tuple())
    (torch.Size([2, 3]), ['logits'], 1)
    >>> LogitsOutput(loss=torch.tensor(0.5), logits=torch.zeros(2, 3))[0]
    tensor(0.5000)

Each class is registered with torch's pytree, so torch.export, torch.compile and DDP can take
them apart into tensors and put them back together. Under torch.jit.trace, which takes dicts but not
dataclasses, a model returns a TracedOutput instead: a dict of the set fields, read the same ways.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.utils._pytree as pytree


class ModelOutput:
    """The indexing of transformers' ModelOutput, for a dataclass. Only fields that are not None count."""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        pytree.register_pytree_node(
            cls,
            lambda out: (list(out.values()), list(out.keys())),  # the set fields, and their names to rebuild
            lambda values, keys: cls(**dict(zip(keys, values))),
            serialized_type_name=f"{cls.__module__}.{cls.__qualname__}",
        )

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]

    def values(self) -> list[Any]:
        return [getattr(self, name) for name in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        return [(name, getattr(self, name)) for name in self.keys()]

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(self.values())

    def __getitem__(self, key: int | slice | str) -> Any:
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(f"{key!r} is not set in this {type(self).__name__}; set fields: {self.keys()}")
            return getattr(self, key)
        return self.to_tuple()[key]

    def __iter__(self) -> Iterator[str]:  # like a dict: the names, so dict(out) and **out work
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, key: object) -> bool:
        return key in self.keys()


class TracedOutput(dict):
    """An output under torch.jit.trace: a dict of its set fields, which the tracer returns as a plain dict, as
    transformers 5's traced models do (`traced(ids)["last_hidden_state"]`). Inside the trace, in a module that
    calls the model, it reads as the dataclass does: `out.last_hidden_state`, `out[0]`, None for a field not set.

        >>> out = TracedOutput(LogitsOutput(logits=torch.zeros(2, 3)))
        >>> list(out), out.logits.shape, out[0].shape, out.loss
        (['logits'], torch.Size([2, 3]), torch.Size([2, 3]), None)
    """

    def __init__(self, output: ModelOutput):
        super().__init__(output.items())
        self.field_names = [f.name for f in dataclasses.fields(output)]

    def __getattr__(self, name: str) -> Any:  # only called for what is not a real attribute
        if name in self:
            return self[name]
        if name in self.__dict__.get("field_names", ()):
            return None  # a field left unset, as on the dataclass
        raise AttributeError(f"{name!r} is not a field of this output; fields: {self.__dict__.get('field_names')}")

    def __getitem__(self, key: int | slice | str) -> Any:
        return super().__getitem__(key) if isinstance(key, str) else tuple(self.values())[key]

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(self.values())


@dataclass
class BaseModelOutput(ModelOutput):
    last_hidden_state: torch.Tensor | None = None  # (B, T, H)
    pooler_output: torch.Tensor | None = None  # (B, H); None for a model built without a pooler
    hidden_states: tuple[torch.Tensor, ...] | None = None  # embeddings + each layer: num_layers + 1 of (B, T, H)
    attentions: tuple[torch.Tensor, ...] | None = None  # each layer's probabilities: (B, nh, T, T)


@dataclass
class PreTrainingOutput(ModelOutput):
    loss: torch.Tensor | None = None  # masked-LM loss + next-sentence loss, when labels are given
    prediction_logits: torch.Tensor | None = None  # (B, T, V)
    seq_relationship_logits: torch.Tensor | None = None  # (B, 2)
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class MaskedPositionsOutput(ModelOutput):
    """BertForPreTraining.masked_positions_forward: the masked LM's scores at the picked positions only."""

    loss: torch.Tensor | None = None  # masked-LM loss + next-sentence loss
    prediction_logits: torch.Tensor | None = None  # (n, V): the n positions whose label is not -100, row by row
    seq_relationship_logits: torch.Tensor | None = None  # (B, 2)
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class LogitsOutput(ModelOutput):
    loss: torch.Tensor | None = None  # when labels are given
    logits: torch.Tensor | None = None  # (B, T, V) masked LM, (B, 2) next sentence, (B, L) classifier
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class QuestionAnsweringOutput(ModelOutput):
    loss: torch.Tensor | None = None  # (start loss + end loss) / 2, when the answers' positions are given
    start_logits: torch.Tensor | None = None  # (B, T): how likely the answer starts at each token
    end_logits: torch.Tensor | None = None  # (B, T): how likely it ends there
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


def as_requested(output: ModelOutput, return_dict: bool | None, config) -> ModelOutput | TracedOutput | tuple:
    """What forward returns: the output dataclass, or with return_dict=False (the caller's, else the
    config's, as transformers resolves it) its tuple of the set fields.

    Under torch.jit.trace, a call that does not pass return_dict gets a TracedOutput, a dict of the set
    fields, instead of the dataclass, which the tracer cannot take (it takes tensors, tuples, lists and
    dicts). The traced model then returns a plain dict, as transformers 5's traced models do:
    `traced(ids)["logits"]` works with both, and both need torch.jit.trace(..., strict=False) to return
    a dict. With return_dict=False in the config, the tuple, which strict tracing takes. (The heads call
    their encoder with return_dict=True, and so get the dataclass, traced or not.)
    """
    if return_dict is None:  # the caller did not say: the config decides
        if config.return_dict and torch.jit.is_tracing():
            return TracedOutput(output)
        return_dict = config.return_dict
    return output if return_dict else output.to_tuple()
