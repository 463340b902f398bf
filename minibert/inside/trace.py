"""Look inside a forward pass: record every named intermediate, and diff them against transformers.

    >>> batch = tokenizer("He swung the bat.")
    >>> with minibert.trace(model) as t:
    ...     out = model(**batch)
    >>> t.names()[:6]
    ['embeddings.word', 'embeddings.token_type', 'embeddings.position', 'embeddings.sum', 'embeddings.LayerNorm', 'encoder.layer.0.attention.query']
    >>> t["encoder.layer.3.attention.probs"].shape          # (B, nh, T, T)
    torch.Size([1, 12, 7, 7])

The trace is made of forward hooks, put on when the `with` block starts and taken off when it ends:
the model code has no tracing branches, and a model outside a trace runs exactly as before. The
steps inside attention come from what `attention()` returns (`AttentionSteps`), so nothing is
computed twice.

Names, in the order the forward pass makes them (i is the layer):
    embeddings.word | .token_type | .position     the three lookups, (B, T, H)
    embeddings.sum                                 their sum, before LayerNorm
    embeddings.LayerNorm                           the encoder's input
    encoder.layer.i.attention.query | .key | .value    split into heads, (B, nh, T, hs)
    encoder.layer.i.attention.scores               q k^T / sqrt(hs), (B, nh, T, T)
    encoder.layer.i.attention.masked_scores        plus the padding mask
    encoder.layer.i.attention.probs                softmax over the keys
    encoder.layer.i.attention.context              probs @ v, (B, nh, T, hs)
    encoder.layer.i.attention.output               after the output projection, residual and LayerNorm
    encoder.layer.i.intermediate.dense             before the activation, (B, T, I)
    encoder.layer.i.intermediate.act               after it
    encoder.layer.i.output                         the layer's output, (B, T, H)
    pooler                                         tanh(dense([CLS])), (B, H)
    logits (or prediction_logits, seq_relationship_logits)   the head's output
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..bert.pretrained import encoder_of

ATTENTION_STEPS = ("query", "key", "value", "scores", "masked_scores", "probs", "context")
HEAD_OUTPUTS = ("logits", "prediction_logits", "seq_relationship_logits")


class Trace:
    """Recorded tensors by name, in the order they were made. With `copies`, each is a copy, safe from code
    that changes a tensor in place after it was recorded; else the tensor itself, detached (no memory)."""

    def __init__(self, copies: bool = False):
        self.tensors: dict[str, torch.Tensor] = {}
        self.copies = copies

    def record(self, name: str, tensor: torch.Tensor) -> None:
        self.tensors[name] = tensor.detach().clone() if self.copies else tensor.detach()

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self.tensors[name]
        except KeyError:
            raise KeyError(f"{name!r} was not recorded; recorded names: t.names()") from None

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def names(self) -> list[str]:
        return list(self.tensors)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(t.shape) for name, t in self.tensors.items()}


def hook_points(model, attention_steps):
    """(module, name, how) for every recorded point. `how` says what to take from the module:
    "output", "input" (a pre-hook), "first" (first item of an output tuple) or a function."""
    bert = encoder_of(model)
    emb = bert.embeddings
    points = [
        (emb.word_embeddings, "embeddings.word", "output"),
        (emb.token_type_embeddings, "embeddings.token_type", "output"),
        (emb.position_embeddings, "embeddings.position", "output"),
        (emb.LayerNorm, "embeddings.sum", "input"),
        (emb.LayerNorm, "embeddings.LayerNorm", "output"),
    ]
    for i, layer in enumerate(bert.encoder.layer):
        prefix = f"encoder.layer.{i}"
        points.append((layer.attention.self, f"{prefix}.attention", attention_steps))
        points += [
            (layer.attention.output, f"{prefix}.attention.output", "output"),
            (layer.intermediate.dense, f"{prefix}.intermediate.dense", "output"),
            (layer.intermediate, f"{prefix}.intermediate.act", "output"),
            (layer, f"{prefix}.output", "first"),
        ]
    if bert.pooler is not None:
        points.append((bert.pooler, "pooler", "output"))
    return points


def minibert_attention_steps(t: Trace, name: str, output) -> None:
    """minibert's self-attention returns (context, AttentionSteps): record each step by name."""
    steps = output[1]
    for step in ATTENTION_STEPS:
        t.record(f"{name}.{step}", getattr(steps, step))


@contextmanager
def trace(model, attention_steps=minibert_attention_steps, points=None, copies: bool = False):
    """Record the named intermediates of every forward pass run inside the block (the last pass wins).
    `copies=True` records copies (see Trace): the exercises run learners' code, which may write in place."""
    t = Trace(copies)
    handles = []

    def hook_for(name, how):
        def hook(module, inputs, output):
            if how == "output":
                t.record(name, output)
            elif how == "first":
                t.record(name, output[0] if isinstance(output, tuple) else output)
            else:
                how(t, name, output)
        return hook

    try:
        for module, name, how in points or hook_points(model, attention_steps):
            if how == "input":
                handles.append(module.register_forward_pre_hook(lambda m, args, name=name: t.record(name, args[0])))
            else:
                handles.append(module.register_forward_hook(hook_for(name, how)))

        def record_head(module, inputs, output):
            for field in HEAD_OUTPUTS:
                if hasattr(output, field):
                    t.record(field, getattr(output, field))

        handles.append(model.register_forward_hook(record_head))
        yield t
    finally:
        for handle in handles:
            handle.remove()


# ---------------------------------------------------------------------------------------------
# The layer-by-layer diff against transformers
# ---------------------------------------------------------------------------------------------

@dataclass
class DiffRow:
    name: str
    shape: tuple[int, ...]
    max_abs_diff: float | None  # None: transformers does not expose this step
    status: str  # OK, DIFF, SHAPE, or "-" when there is nothing to compare


def transformers_attention_steps(num_heads: int):
    """transformers' self-attention gives (context (B, T, H), probs). Record what can be compared."""
    def record(t: Trace, name: str, output) -> None:
        context, probs = output[0], output[1]
        B, T, H = context.shape
        t.record(f"{name}.probs", probs)
        t.record(f"{name}.context", context.view(B, T, num_heads, H // num_heads).transpose(1, 2))
    return record


def transformers_points(hf_model, num_heads: int):
    """transformers' modules have minibert's paths, so the same hook points apply; q, k and v come
    from the projection layers, split into heads the same way."""
    points = hook_points(hf_model, transformers_attention_steps(num_heads))
    bert = encoder_of(hf_model)
    for i, layer in enumerate(bert.encoder.layer):
        for step in ("query", "key", "value"):
            def split(t, name, output, num_heads=num_heads):
                B, T, H = output.shape
                t.record(name, output.view(B, T, num_heads, H // num_heads).transpose(1, 2))
            points.append((getattr(layer.attention.self, step), f"encoder.layer.{i}.attention.{step}", split))
    return points


def compare(ours: Trace, reference: Trace, atol: float = 1e-5) -> list[DiffRow]:
    try:
        tolerance = float(atol)  # numpy and 0-d tensor numbers too
    except (TypeError, ValueError):
        tolerance = math.nan
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"atol must be a number >= 0, got {atol!r}")
    rows = []
    for name, tensor in ours.tensors.items():
        if name not in reference:
            rows.append(DiffRow(name, tuple(tensor.shape), None, "-"))
            continue
        other = reference[name]
        if tensor.shape != other.shape:
            rows.append(DiffRow(name, tuple(tensor.shape), None, "SHAPE"))
            continue
        error = (tensor.double() - other.double()).abs().max().item() if tensor.numel() else 0.0
        rows.append(DiffRow(name, tuple(tensor.shape), error, "OK" if error <= atol else "DIFF"))
    return rows


def diff(model, hf_model, batch: dict, atol: float = 1e-5) -> list[DiffRow]:
    """Run minibert `model` and transformers `hf_model` (same checkpoint, eager attention) on `batch`
    and compare every named intermediate. Returns one row per name, in forward order."""
    num_heads = encoder_of(model).config.num_attention_heads
    with torch.no_grad():
        with trace(model) as ours:
            model(**batch)
        with trace(hf_model, points=transformers_points(hf_model, num_heads)) as theirs:
            hf_model(**batch)
    return compare(ours, theirs, atol)


def first_divergence(rows: list[DiffRow]) -> DiffRow | None:
    return next((row for row in rows if row.status in ("DIFF", "SHAPE")), None)


def format_rows(rows: list[DiffRow], atol: float) -> str:
    width = max(len(row.name) for row in rows)
    lines = [f"{'name':<{width}}  {'shape':<18}  {'max |diff|':>10}  status (tolerance {atol:g})"]
    for row in rows:
        error = "-" if row.max_abs_diff is None else f"{row.max_abs_diff:.2e}"
        lines.append(f"{row.name:<{width}}  {str(row.shape):<18}  {error:>10}  {row.status}")
    first = first_divergence(rows)
    if first is None:
        compared = sum(row.status == "OK" for row in rows)
        lines.append(f"All {compared} compared intermediates agree within {atol:g} "
                     f"({len(rows) - compared} have no transformers counterpart: '-').")
    else:
        lines.append(f"First divergence: {first.name} ({first.status}). Everything before it agrees; look there.")
    return "\n".join(lines)
