"""Hooks by TransformerLens's names: read any activation of a forward pass, cache them all, or replace one.

    >>> batch = tokenizer("He swung the bat.")
    >>> out, cache = minibert.run_with_cache(model, batch)
    >>> cache["pattern", 3].shape          # shorthand for cache["blocks.3.attn.hook_pattern"]: (B, nh, T, T)
    torch.Size([1, 12, 7, 7])
    >>> cache["z", 3].shape                # each head's context vector, before the output projection: (B, T, nh, hs)
    torch.Size([1, 7, 12, 32])
    >>> def silence_head_5(z, hook):       # z: (B, T, nh, hs); returning nothing keeps the (changed) tensor
    ...     z[:, :, 5] = 0
    >>> out = minibert.run_with_hooks(model, batch, fwd_hooks=[("blocks.2.attn.hook_z", silence_head_5)])

A hook function is called as `fn(activation, hook)`, where `hook.name` is the name and `hook.layer()` the
layer. It may change the tensor in place and return None, or return a tensor of the same shape, which then
takes the activation's place: everything after it is computed from the new tensor.

The names, for layer L, in the order a forward pass makes them (TransformerLens's, where BERT has them):

    hook_embed, hook_token_type_embed, hook_pos_embed    the three lookups: (B, T, H), (B, T, H), (1, T, H)
    hook_full_embed                                      their sum after LayerNorm: the encoder's input
    blocks.L.hook_resid_pre                              the layer's input, (B, T, H)
    blocks.L.attn.hook_q, hook_k, hook_v                 (B, T, nh, hs): each head's slice of the projections
    blocks.L.attn.hook_attn_scores                       q k^T / sqrt(hs) plus the padding mask, (B, nh, T, T)
    blocks.L.attn.hook_pattern                           the softmax of those: the attention probabilities
    blocks.L.attn.hook_z                                 pattern @ v, (B, T, nh, hs): each head's output
    blocks.L.hook_attn_out                               z through the output projection, (B, T, H)
    blocks.L.hook_resid_mid                              resid_pre + attn_out, before the first LayerNorm
    blocks.L.hook_normalized_resid_mid                   after it (minibert's name: the feed-forward's input)
    blocks.L.mlp.hook_pre, hook_post                     the feed-forward before and after the activation, (B, T, I)
    blocks.L.hook_mlp_out                                narrowed back to H
    blocks.L.hook_resid_post                             normalized_resid_mid + mlp_out, before the second LayerNorm
    blocks.L.hook_normalized_resid_post                  after it: the layer's output, hidden_states[L + 1]

BERT normalises after each residual sum (post-LN), so its residual stream is `hook_normalized_resid_post`,
not `hook_resid_post` as in GPT-2. The weights are the checkpoint's own: nothing is folded into anything,
so every cached number is the number transformers computes.

How it works: each name is a forward hook (or pre-hook) on the module that makes the tensor, the modules
`trace` hooks too. The model code has no hook branches; a model outside run_with_hooks runs as before.
The attention scores and pattern are read from the `AttentionSteps` that attention() returns; a hook
that replaces one of them, or changes it in place, has the rest of attention() computed again from it
(softmax, then @ v). So a `trace` around run_with_hooks records the steps attention() first computed,
not the replaced ones; run_with_cache records what the hooks left.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..bert.model import BertModel
from ..bert.pretrained import encoder_of

HookFn = Callable[[torch.Tensor, "HookPoint"], torch.Tensor | None]

# TransformerLens's short names, as its utils.get_act_name reads them: cache["pattern", 3].
ATTENTION_NAMES = ("q", "k", "v", "attn_scores", "pattern", "z")
MLP_NAMES = ("pre", "post")
BLOCK_NAMES = ("resid_pre", "attn_out", "resid_mid", "normalized_resid_mid", "mlp_out", "resid_post",
               "normalized_resid_post")
ALIASES = {"attn": "pattern", "attn_logits": "attn_scores", "scores": "attn_scores", "query": "q", "key": "k",
           "value": "v", "mlp_pre": "pre", "mlp_post": "post"}


class HookPoint:
    """What a hook function gets as its second argument: the name, and the layer it belongs to."""

    def __init__(self, name: str):
        self.name = name

    def layer(self) -> int:
        if not self.name.startswith("blocks."):
            raise ValueError(f"{self.name} belongs to no layer")
        return int(self.name.split(".")[1])

    def __repr__(self) -> str:
        return f"HookPoint({self.name!r})"


@dataclass(frozen=True)
class Point:
    """Where a name's tensor is found: what `module` returns ("output"), its first argument ("input"), or a
    field of the AttentionSteps it returns ("steps"). `heads`: the last axis is shown split into heads."""

    module: nn.Module
    where: str
    field: str | None = None
    heads: int | None = None


def act_name(name: str, layer: int | None = None) -> str:
    """The full name from TransformerLens's shorthand: act_name("pattern", 3) == "blocks.3.attn.hook_pattern".

        >>> act_name("resid_post", 0), act_name("post", 5), act_name("embed")
        ('blocks.0.hook_resid_post', 'blocks.5.mlp.hook_post', 'hook_embed')
    """
    short = ALIASES.get(name, name)
    if layer is None:
        return short if short.startswith(("hook_", "blocks.")) else f"hook_{short}"
    if short in ATTENTION_NAMES:
        return f"blocks.{layer}.attn.hook_{short}"
    if short in MLP_NAMES:
        return f"blocks.{layer}.mlp.hook_{short}"
    return f"blocks.{layer}.hook_{short}"


def hook_points(model) -> dict[str, Point]:
    """Every name, in forward order, with where its tensor is found in `model` (a BertModel or a head)."""
    bert = encoder_of(model)
    if not isinstance(bert, BertModel):
        raise TypeError(f"hooks need minibert's BertModel or a model with one as .bert, not {type(bert).__name__} "
                        "(a FastBertModel has no attention steps: use the BertModel it was built from)")
    emb = bert.embeddings
    nh = bert.config.num_attention_heads
    points = {
        "hook_embed": Point(emb.word_embeddings, "output"),
        "hook_token_type_embed": Point(emb.token_type_embeddings, "output"),
        "hook_pos_embed": Point(emb.position_embeddings, "output"),
        "hook_full_embed": Point(emb.LayerNorm, "output"),
    }
    for i, layer in enumerate(bert.encoder.layer):
        attention = layer.attention
        points |= {
            f"blocks.{i}.hook_resid_pre": Point(layer, "input"),
            f"blocks.{i}.attn.hook_q": Point(attention.self.query, "output", heads=nh),
            f"blocks.{i}.attn.hook_k": Point(attention.self.key, "output", heads=nh),
            f"blocks.{i}.attn.hook_v": Point(attention.self.value, "output", heads=nh),
            f"blocks.{i}.attn.hook_attn_scores": Point(attention.self, "steps", "masked_scores"),
            f"blocks.{i}.attn.hook_pattern": Point(attention.self, "steps", "probs"),
            f"blocks.{i}.attn.hook_z": Point(attention.output, "input", heads=nh),
            f"blocks.{i}.hook_attn_out": Point(attention.output.dense, "output"),
            f"blocks.{i}.hook_resid_mid": Point(attention.output.LayerNorm, "input"),
            f"blocks.{i}.hook_normalized_resid_mid": Point(attention.output.LayerNorm, "output"),
            f"blocks.{i}.mlp.hook_pre": Point(layer.intermediate.dense, "output"),
            f"blocks.{i}.mlp.hook_post": Point(layer.intermediate, "output"),
            f"blocks.{i}.hook_mlp_out": Point(layer.output.dense, "output"),
            f"blocks.{i}.hook_resid_post": Point(layer.output.LayerNorm, "input"),
            f"blocks.{i}.hook_normalized_resid_post": Point(layer.output.LayerNorm, "output"),
        }
    return points


def resolve(name, points: dict[str, Point]) -> str:
    """A full name, from a full name or TransformerLens's shorthand (a tuple such as ("pattern", 3))."""
    full = act_name(*name) if isinstance(name, tuple) else name
    if full not in points:
        close = difflib.get_close_matches(str(full), points, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; the names are in minibert.inside.hooks' docstring"
        raise KeyError(f"no hook named {full!r}{hint}")
    return full


def _split(x: torch.Tensor, heads: int | None) -> torch.Tensor:
    """(..., H) -> (..., nh, hs) for the names TransformerLens shows per head. A view, not a copy: a hook that
    writes into it in place writes into the tensor the model goes on with."""
    return x if heads is None else x.view(*x.shape[:-1], heads, x.shape[-1] // heads)


def _call(name: str, fn: HookFn, activation: torch.Tensor) -> torch.Tensor:
    """fn's replacement for `activation`, or `activation` itself (perhaps changed in place) if fn returned None or it."""
    result = fn(activation, HookPoint(name))
    if result is None or result is activation:
        return activation
    if not isinstance(result, torch.Tensor) or result.shape != activation.shape or result.dtype != activation.dtype:
        got = (f"{tuple(result.shape)} {result.dtype}" if isinstance(result, torch.Tensor) else type(result).__name__)
        raise ValueError(f"the hook on {name} returned {got}; it must return None or a tensor of shape "
                         f"{tuple(activation.shape)} and dtype {activation.dtype}")
    return result


def _module_hook(group: list[tuple[str, Point, HookFn]]):
    """One torch hook for every hook function on the same module and place, run in order: a forward pre-hook
    for an input, a forward hook for an output. Returns (the hook, whether it is a pre-hook)."""
    where = group[0][1].where

    def run(activation):  # each function sees what the one before it left
        for name, point, fn in group:
            shown = _split(activation, point.heads)
            new = _call(name, fn, shown)
            if new is not shown:
                activation = new.reshape(activation.shape)  # back to (..., H) for a per-head name
        return activation

    if where == "input":
        def pre_hook(module, args):
            new = run(args[0])
            return None if new is args[0] else (new, *args[1:])  # torch takes a tuple as the new arguments
        return pre_hook, True
    if where == "output":
        def hook(module, args, output):
            new = run(output)
            return None if new is output else new  # torch takes a returned value as the new output
        return hook, False

    def steps_hook(module, args, output):
        # attention() has already run: its scores and pattern are fields of the AttentionSteps it returned. A hook
        # that replaces one, or changes it in place, has what comes after it in attention() computed again.
        context, steps = output
        for name, point, fn in group:  # the scores' hooks before the pattern's: forward order
            before = getattr(steps, point.field)
            version = before._version  # torch counts in-place writes to a tensor
            new = _call(name, fn, before)
            if new is before and before._version == version:
                continue  # untouched: the context attention() computed stands
            # The last lines of attention() (minibert/bert/model.py), from the new scores or pattern on.
            probs = torch.softmax(new, dim=-1) if point.field == "masked_scores" else new
            steps = steps._replace(**{point.field: new, "probs": probs, "context": module.dropout(probs) @ steps.value})
            context = module.merge_heads(steps.context)
        return context, steps
    return steps_hook, False


@contextmanager
def hooks(model, fwd_hooks: Iterable[tuple[str | tuple, HookFn]]):
    """Put the hook functions on `model` for the `with` block; they come off at its end, even on an error.

        >>> seen = []
        >>> with hooks(model, [("blocks.0.attn.hook_pattern", lambda pattern, hook: seen.append(hook.name))]):
        ...     _ = model(**tokenizer("He swung the bat."))
        >>> seen
        ['blocks.0.attn.hook_pattern']
    """
    points = hook_points(model)
    encoder = encoder_of(model).encoder
    if encoder.gradient_checkpointing and model.training and torch.is_grad_enabled():
        raise ValueError("hooks and gradient checkpointing do not mix in training: the backward pass runs the layers "
                         "again after the hooks have come off. Call model.eval(), run under torch.no_grad(), or "
                         "model.gradient_checkpointing_disable() first")
    order = list(points)
    named = []
    for entry in fwd_hooks:
        if not (isinstance(entry, tuple) and len(entry) == 2 and callable(entry[1])):
            raise TypeError(f"each hook is a (name, fn) pair with fn(activation, hook), got {entry!r}")
        name = resolve(entry[0], points)
        named.append((name, points[name], entry[1]))
    named.sort(key=lambda item: order.index(item[0]))  # stable: two functions on one name run in the given order
    groups: dict[tuple[int, str], list] = {}
    for item in named:
        groups.setdefault((id(item[1].module), item[1].where), []).append(item)
    handles = []
    try:
        for group in groups.values():
            fn, pre = _module_hook(group)
            module = group[0][1].module
            handles.append(module.register_forward_pre_hook(fn) if pre else module.register_forward_hook(fn))
        yield model
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def evaluating(model):
    """Dropout off for the block, as inference runs; the model's own mode comes back after it."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _no_word_lookup(batch: dict, kwargs: dict, names: Iterable[str]) -> None:
    """With inputs_embeds the model looks up no word vectors: a hook on hook_embed would never run."""
    if batch.get("inputs_embeds", kwargs.get("inputs_embeds")) is not None and "hook_embed" in names:
        raise ValueError("hook_embed is the word-vector lookup, which inputs_embeds skips: hook hook_full_embed, "
                         "or pass input_ids")


def run_with_hooks(model, batch: dict, fwd_hooks: Iterable[tuple[str | tuple, HookFn]] = (), **kwargs):
    """model(**batch, **kwargs) with the hook functions on; they come off afterwards. Returns the output."""
    fwd_hooks = list(fwd_hooks)
    _no_word_lookup(batch, kwargs, [resolve(name, hook_points(model)) for name, _ in fwd_hooks
                                    if isinstance(name, (str, tuple))])
    with hooks(model, fwd_hooks):
        return model(**batch, **kwargs)


class ActivationCache:
    """The activations of one forward pass by name. cache["blocks.3.attn.hook_pattern"] or cache["pattern", 3]."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors = tensors

    def __getitem__(self, name) -> torch.Tensor:
        full = act_name(*name) if isinstance(name, tuple) else name
        if full not in self.tensors:
            close = difflib.get_close_matches(str(full), self.tensors, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; cached: {len(self.tensors)} names (.keys())"
            raise KeyError(f"{full!r} is not in the cache{hint}")
        return self.tensors[full]

    def __contains__(self, name) -> bool:
        return (act_name(*name) if isinstance(name, tuple) else name) in self.tensors

    def __len__(self) -> int:
        return len(self.tensors)

    def __iter__(self):
        return iter(self.tensors)

    def keys(self):
        return self.tensors.keys()

    def items(self):
        return self.tensors.items()

    def stack(self, name: str) -> torch.Tensor:
        """One short name across every layer, stacked: cache.stack("pattern") is (L, B, nh, T, T)."""
        layers = sorted({int(key.split(".")[1]) for key in self.tensors if key.startswith("blocks.")})
        return torch.stack([self[name, layer] for layer in layers])

    def __repr__(self) -> str:
        return f"ActivationCache({len(self.tensors)} tensors)"


def _wanted(names_filter, points: dict[str, Point]) -> Callable[[str], bool]:
    """names_filter as a function of the full name; a name or a list of names (full or shorthand) is checked."""
    if names_filter is None:
        return lambda name: True
    if callable(names_filter):
        return names_filter
    given = [names_filter] if isinstance(names_filter, (str, tuple)) else list(names_filter)
    wanted = {resolve(name, points) for name in given}  # a misspelt name is an error, not an empty cache
    return wanted.__contains__


def run_with_cache(model, batch: dict, names_filter=None, fwd_hooks=(), **kwargs
                   ) -> tuple[object, ActivationCache]:
    """Run model(**batch, **kwargs) and keep every named activation (detached): returns (output, cache).

    names_filter: None (every name), a name, a list of names (full, or shorthand such as ("pattern", 3)), or a
    function name -> bool. fwd_hooks: hook functions to run too; the cache holds what they made (a cached
    name is recorded after its own hooks have run). With inputs_embeds there is no hook_embed to cache.

    The cache holds the tensors themselves, detached, not copies (as TransformerLens's does): a hook that
    later writes into one in place changes what the cache shows. Some names share one tensor (a layer's
    hook_normalized_resid_post is the next layer's hook_resid_pre).
    """
    points = hook_points(model)
    keep = _wanted(names_filter, points)
    fwd_hooks = list(fwd_hooks)
    asked = [resolve(name, points) for name, _ in fwd_hooks if isinstance(name, (str, tuple))]
    if names_filter is not None and not callable(names_filter):
        asked += [name for name in points if keep(name)]
    _no_word_lookup(batch, kwargs, asked)  # hook_embed asked for by name, with inputs_embeds: refused
    no_lookup = batch.get("inputs_embeds", kwargs.get("inputs_embeds")) is not None
    tensors: dict[str, torch.Tensor] = {}

    def record(activation, hook):
        tensors[hook.name] = activation.detach()

    recorders = [(name, record) for name in points if keep(name) and not (no_lookup and name == "hook_embed")]
    with hooks(model, [*fwd_hooks, *recorders]):
        output = model(**batch, **kwargs)
    return output, ActivationCache({name: tensors[name] for name in points if name in tensors})
