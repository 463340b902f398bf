"""Which parts of the model matter for an output: head ablation and activation patching.

Ablation: take a head out (set its output z to zero, or to its mean) and see how a metric moves.
Patching: run a *corrupted* input, put in one activation from a *clean* input's run, and see how much
of the clean behaviour comes back. A grid of patches, one per layer and position (or per layer and
head), shows where the information that tells the two inputs apart lives (Vig et al. 2020, Meng et
al. 2022 "ROME", Wang et al. 2022; the names are TransformerLens's `patching` module's).

    metric = lambda out: out.logits[0, 0] - out.logits[0, 1]        # any function of the output: one number
    grid = patch_heads(model, clean_batch, corrupted_batch, metric)
    grid.normalized()                                               # (L, nh): 1 = as clean, 0 = as corrupted

docs/interpret.md works one example through: which heads make "bat" an animal.

Everything runs on minibert.inside.hooks: a patch is a hook on `blocks.L.attn.hook_z` (a head's output,
before the output projection mixes the heads) or `blocks.L.hook_resid_pre` (the residual stream entering
layer L: for L = 0 the embeddings, else hidden_states[L]).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from ..bert.pretrained import encoder_of
from .hooks import evaluating, run_with_cache, run_with_hooks

# The metric: a function of the model's output, or of the output and the batch it ran on (to find a token
# whose position differs between the two inputs, say), that gives one number.
Metric = Callable[..., torch.Tensor | float]


def _takes_batch(metric: Metric) -> bool:
    """Whether the metric asks for the batch: two or more positional parameters without a default."""
    try:
        parameters = inspect.signature(metric).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    required = [p for p in parameters if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(required) >= 2


def _measure(metric: Metric, output, batch: dict, what: str) -> float:
    """metric(output), or metric(output, batch) for a metric that asks for the batch: one number."""
    takes_batch = _takes_batch(metric)
    tensor = torch.as_tensor(metric(output, batch) if takes_batch else metric(output))
    if tensor.numel() != 1:
        raise ValueError(f"the metric must give one number, got a tensor of shape {tuple(tensor.shape)} {what}")
    return float(tensor)


def _shape(model) -> tuple[int, int]:
    config = encoder_of(model).config
    return config.num_hidden_layers, config.num_attention_heads


# ---------------------------------------------------------------------------------------------
# Ablation
# ---------------------------------------------------------------------------------------------

def head_means(model, batch: dict) -> torch.Tensor:
    """Each head's mean output z over every real token of `batch`: (L, nh, hs), for mean ablation."""
    layers, _ = _shape(model)
    with torch.no_grad(), evaluating(model):
        _, cache = run_with_cache(model, batch, names_filter=lambda name: name.endswith("attn.hook_z"))
    real = batch["attention_mask"].bool() if batch.get("attention_mask") is not None \
        else torch.ones(batch["input_ids"].shape, dtype=torch.bool)  # (B, T): no mask, every token is real
    return torch.stack([cache["z", layer][real].mean(0) for layer in range(layers)])  # (L, nh, hs)


def ablation_hooks(heads: Iterable[tuple[int, int]], means: torch.Tensor | None = None) -> list:
    """Hooks that set each (layer, head)'s output z to zero, or to means[layer, head] when means (L, nh, hs) is given."""
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)

    def hook_for(layer: int, chosen: list[int]):
        def ablate(z, hook):  # z: (B, T, nh, hs)
            z = z.clone()
            z[:, :, chosen] = 0.0 if means is None else means[layer, chosen].to(z.dtype)
            return z
        return ablate

    return [(f"blocks.{layer}.attn.hook_z", hook_for(layer, chosen)) for layer, chosen in sorted(by_layer.items())]


def _check_heads(model, heads) -> list[tuple[int, int]]:
    layers, nh = _shape(model)
    heads = list(heads)
    for entry in heads:
        if not (isinstance(entry, tuple) and len(entry) == 2 and 0 <= entry[0] < layers and 0 <= entry[1] < nh):
            raise ValueError(f"a head is (layer, head) with layer in 0..{layers - 1} and head in 0..{nh - 1}, "
                             f"not {entry!r}")
    return heads


def ablate_heads(model, batch: dict, heads: Iterable[tuple[int, int]], how: str = "zero",
                 reference: dict | None = None):
    """model(**batch) with the given (layer, head)s taken out: "zero", or "mean" (each head's mean output over
    the real tokens of `reference`, default `batch`). Returns the model's output."""
    heads = _check_heads(model, heads)
    if how not in ("zero", "mean"):
        raise ValueError(f'how must be "zero" or "mean", not {how!r}')
    means = head_means(model, reference or batch) if how == "mean" else None
    with evaluating(model):
        return run_with_hooks(model, batch, ablation_hooks(heads, means))


@dataclass
class Grid:
    """A metric per patch or ablation: `values` (rows, columns), with the metric of the two unpatched runs."""

    values: torch.Tensor
    clean: float  # the metric on the clean input (for ablation: with nothing ablated)
    corrupted: float  # the metric on the corrupted input (for ablation: the same, nothing ablated)
    rows: str
    columns: str

    def normalized(self) -> torch.Tensor:
        """(value - corrupted) / (clean - corrupted): 1 where a patch brings back all of the clean metric, 0 where none."""
        if self.clean == self.corrupted:
            raise ValueError(f"the metric is {self.clean} on both inputs: there is no difference to bring back")
        return (self.values - self.corrupted) / (self.clean - self.corrupted)

    def format(self, normalized: bool = False, decimals: int = 2) -> str:
        values = self.normalized() if normalized else self.values
        lines = [f"{self.rows} (rows) by {self.columns} (columns)" + (", normalised" if normalized else "")]
        lines.append("      " + "".join(f"{c:>{decimals + 5}}" for c in range(values.shape[1])))
        for r, row in enumerate(values.tolist()):
            lines.append(f"{r:>5} " + "".join(f"{v:>{decimals + 5}.{decimals}f}" for v in row))
        return "\n".join(lines)


@torch.no_grad()
def ablation_grid(model, batch: dict, metric: Metric, how: str = "zero") -> Grid:
    """The metric with each head ablated on its own: (L, nh). `clean` and `corrupted` both hold the unablated metric."""
    layers, nh = _shape(model)
    if how not in ("zero", "mean"):
        raise ValueError(f'how must be "zero" or "mean", not {how!r}')
    means = head_means(model, batch) if how == "mean" else None
    values = torch.empty(layers, nh, dtype=torch.float64)
    with evaluating(model):
        base = _measure(metric, model(**batch), batch, "on the unablated input")
        for layer in range(layers):
            for head in range(nh):
                out = run_with_hooks(model, batch, ablation_hooks([(layer, head)], means))
                values[layer, head] = _measure(metric, out, batch, f"with head {layer}.{head} ablated")
    return Grid(values, base, base, "layer", "head")


# ---------------------------------------------------------------------------------------------
# Activation patching
# ---------------------------------------------------------------------------------------------

def _positions(clean: dict, corrupted: dict, positions) -> list[tuple[int, int]] | None:
    """None (every position, same length required), or a list of (clean position, corrupted position)."""
    T_clean, T_corrupt = clean["input_ids"].shape[1], corrupted["input_ids"].shape[1]
    if clean["input_ids"].shape[0] != corrupted["input_ids"].shape[0]:
        raise ValueError(f"the clean batch has {clean['input_ids'].shape[0]} rows and the corrupted "
                         f"{corrupted['input_ids'].shape[0]}: patching pairs them row by row")
    if positions is None:
        if T_clean != T_corrupt:
            raise ValueError(f"the clean input has {T_clean} tokens and the corrupted {T_corrupt}: patch every position "
                             "only between inputs of one length, or pass positions=[(clean position, corrupted position)]")
        return None
    pairs = [positions] if isinstance(positions, tuple) and len(positions) == 2 and isinstance(positions[0], int) \
        else list(positions) if isinstance(positions, (list, tuple)) else None
    if not pairs or not all(isinstance(p, tuple) and len(p) == 2 and all(isinstance(i, int) for i in p) for p in pairs):
        raise ValueError(f"positions is a (clean position, corrupted position) pair of integers, or a list of them, "
                         f"not {positions!r}")
    for a, b in pairs:
        if not (0 <= a < T_clean and 0 <= b < T_corrupt):
            raise ValueError(f"position pair ({a}, {b}) is outside the clean input's {T_clean} tokens or the "
                             f"corrupted input's {T_corrupt}")
    return pairs


def _patch(source: torch.Tensor, pairs, head: int | None = None):
    """A hook that copies `source` (the clean run's activation) into the corrupted run: at every position when
    pairs is None, else at each (clean position, corrupted position) pair; only head `head`'s slice if given."""
    every_position = slice(None)  # source[:, every_position] is source[:, :]

    def patch(activation, hook):
        patched = activation.clone()
        for clean_at, corrupted_at in pairs or [(every_position, every_position)]:
            if head is None:  # the residual stream, (B, T, H): the whole vector at that position
                patched[:, corrupted_at] = source[:, clean_at]
            else:  # z, (B, T, nh, hs): this head's slice only
                patched[:, corrupted_at, head] = source[:, clean_at, head]
        return patched
    return patch


def _runs(model, clean: dict, corrupted: dict, metric: Metric, names) -> tuple[float, float, dict]:
    clean_out, cache = run_with_cache(model, clean, names_filter=names)
    return (_measure(metric, clean_out, clean, "on the clean input"),
            _measure(metric, model(**corrupted), corrupted, "on the corrupted input"), cache)


@torch.no_grad()
def patch_residual(model, clean: dict, corrupted: dict, metric: Metric, positions=None) -> Grid:
    """Patch the residual stream entering each layer at one position at a time: (L, positions).

    positions: None patches each position p of the clean run into the same p of the corrupted run (the
    inputs must have one length): the columns are the positions. A (clean position, corrupted position)
    pair, or a list of them, patches only those: one column per pair.
    """
    with evaluating(model):
        return _patch_residual(model, clean, corrupted, metric, positions)


def _patch_residual(model, clean: dict, corrupted: dict, metric: Metric, positions) -> Grid:
    layers, _ = _shape(model)
    pairs = _positions(clean, corrupted, positions)
    if pairs is None:
        pairs = [(p, p) for p in range(clean["input_ids"].shape[1])]
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(layers)]
    clean_metric, corrupted_metric, cache = _runs(model, clean, corrupted, metric, names)
    values = torch.empty(layers, len(pairs), dtype=torch.float64)
    for layer in range(layers):
        for column, pair in enumerate(pairs):
            hook = _patch(cache["resid_pre", layer], [pair])
            out = run_with_hooks(model, corrupted, [(f"blocks.{layer}.hook_resid_pre", hook)])
            values[layer, column] = _measure(metric, out, corrupted, f"with layer {layer}'s input patched at {pair}")
    return Grid(values, clean_metric, corrupted_metric, "layer", "position" if positions is None else "position pair")


@torch.no_grad()
def patch_heads(model, clean: dict, corrupted: dict, metric: Metric, positions=None) -> Grid:
    """Patch each head's output z from the clean run into the corrupted run, one head at a time: (L, nh).

    positions: None patches every position (the inputs must have one length); a (clean position, corrupted
    position) pair, or a list of them, patches only there: inputs of different lengths can then be compared,
    such as the same word in two sentences.
    """
    with evaluating(model):
        return _patch_heads(model, clean, corrupted, metric, positions)


def _patch_heads(model, clean: dict, corrupted: dict, metric: Metric, positions) -> Grid:
    layers, nh = _shape(model)
    pairs = _positions(clean, corrupted, positions)
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(layers)]
    clean_metric, corrupted_metric, cache = _runs(model, clean, corrupted, metric, names)
    values = torch.empty(layers, nh, dtype=torch.float64)
    for layer in range(layers):
        for head in range(nh):
            hook = _patch(cache["z", layer], pairs, head=head)
            out = run_with_hooks(model, corrupted, [(f"blocks.{layer}.attn.hook_z", hook)])
            values[layer, head] = _measure(metric, out, corrupted, f"with head {layer}.{head} patched")
    return Grid(values, clean_metric, corrupted_metric, "layer", "head")
