"""Low-rank fine-tuning (LoRA; Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models").

Fine-tuning changes each weight W (out, in) into W + dW. LoRA bets that dW has a low rank r and
learns it as a product of two thin matrices, while W itself stays frozen:

    dW = (alpha / r) * B @ A          A: (r, in), B: (out, r)
    y  = x @ W.T + b + (alpha / r) * (x @ A.T) @ B.T          x: (..., in) -> y: (..., out)

For one 384 x 384 attention projection at r = 8 that is 2 * 384 * 8 = 6,144 numbers to learn and
keep instead of 147,456. B starts at zero, so before the first step the model is exactly the
pre-trained one; A starts random, or B would never receive a gradient.

After training, `merge_low_rank` folds each update into its weight, W <- W + dW, and puts plain
nn.Linear layers back: the model is an ordinary BERT again, costs nothing extra per token, and
save_pretrained writes a checkpoint any BERT reader loads. (Before merging, save_pretrained refuses: the
file would hold A and B beside the frozen weights, which no BERT reader takes. The Trainer's checkpoints
keep them on purpose, keep_low_rank=True, to resume from; from_pretrained of one says to merge first.)
`low_rank_factors` gives A and B alone,
which is all that has to be kept to rebuild the fine-tuned model from the pre-trained one.

    >>> import torch, minibert
    >>> config = minibert.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
    ...                              num_attention_heads=2, intermediate_size=32)
    >>> model = minibert.BertModel(config).eval()
    >>> ids = torch.tensor([[1, 5, 7, 2]])
    >>> before = model(ids).last_hidden_state
    >>> names = add_low_rank(model, rank=4)
    >>> names[0], len(names)          # the six projections of the one layer
    ('encoder.layer.0.attention.self.query', 6)
    >>> torch.equal(model(ids).last_hidden_state, before)   # B = 0: nothing has changed yet
    True
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..bert.checks import positive_int
from ..bert.pretrained import encoder_of

# The Linear layers of a BERT layer, by the end of their module names: the attention's query, key,
# value and output projections and the feed-forward's two. The pooler and the heads are not in
# the encoder; a fine-tuning program trains those fully, or leaves them.
TARGETS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "intermediate.dense", "output.dense")


class LowRankLinear(nn.Linear):
    """A frozen nn.Linear plus a learned low-rank update. It keeps Linear's `weight` and `bias`
    (under the same names, so the pre-trained tensors load into it) and adds `lora_A`, `lora_B`."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        positive_int("rank", rank)
        if rank > min(base.in_features, base.out_features):
            raise ValueError(f"rank {rank} is not low for a {base.out_features} x {base.in_features} weight")
        super().__init__(base.in_features, base.out_features, bias=base.bias is not None, device="meta")  # shapes only
        self.weight, self.bias = base.weight, base.bias  # the very same tensors, frozen below
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        self.rank, self.alpha, self.scaling = rank, alpha, alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device, dtype=base.weight.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device, dtype=base.weight.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear initialises a (rank, in) weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        frozen = nn.functional.linear(x, self.weight, self.bias)
        update = (x @ self.lora_A.T) @ self.lora_B.T  # (..., r) -> (..., out): never builds dW
        return frozen + self.scaling * update

    def delta(self) -> torch.Tensor:
        """dW = (alpha / r) * B @ A, (out, in): what merging adds to the frozen weight."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def merged(self) -> nn.Linear:
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                           device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(self.weight + self.delta())
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rank={self.rank}, alpha={self.alpha}"


def _set(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def add_low_rank(model: nn.Module, rank: int = 8, alpha: float | None = None,
                 targets: tuple[str, ...] = TARGETS) -> list[str]:
    """Put a LowRankLinear in place of every encoder Linear whose name ends with one of `targets`,
    and freeze the rest of the encoder and the embeddings (the pooler and heads are left as they
    are: the caller decides whether they learn). alpha defaults to 2 * rank. Returns the module
    names, as seen from `model`.

    Raises:
        ValueError: a rank below 1, an alpha that is not a positive number, or a model that has low-rank
            updates already (merge them first).
        TypeError: a rank that is no whole number, or a model with no BERT encoder.
    """
    positive_int("rank", rank, type_error=TypeError, why="the inner size of B @ A, such as 8")
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float))
                              or not math.isfinite(alpha) or alpha <= 0):
        raise ValueError(f"alpha={alpha!r} must be a positive number (the update is scaled by alpha / rank)")
    alpha = 2.0 * rank if alpha is None else float(alpha)
    updated = [name for name, module in model.named_modules() if isinstance(module, LowRankLinear)]
    if updated:
        more = f" and {len(updated) - 1} more" if len(updated) > 1 else ""
        raise ValueError(f"the model already has low-rank updates ({updated[0]}{more}): call merge_low_rank(model) "
                         "first to fold them into their weights, then add new ones")
    bert = encoder_of(model)
    if not hasattr(bert, "encoder"):
        raise TypeError(f"{type(model).__name__} has no BERT encoder to add low-rank updates to")
    encoder = bert.encoder
    prefix = next(name for name, module in model.named_modules() if module is encoder)
    replaced = []
    for name, module in list(encoder.named_modules()):
        if type(module) is nn.Linear and name.endswith(targets):
            _set(encoder, name, LowRankLinear(module, rank, alpha))
            replaced.append(f"{prefix}.{name}" if prefix else name)
    if not replaced:
        raise ValueError(f"no encoder Linear ends with any of {targets}")
    for param in [*bert.embeddings.parameters(), *encoder.parameters()]:
        param.requires_grad = False
    for name in replaced:
        module = model.get_submodule(name)
        module.lora_A.requires_grad = module.lora_B.requires_grad = True
    return replaced


def low_rank_factors(model: nn.Module) -> dict[str, torch.Tensor]:
    """{"<module>.lora_A": (r, in), "<module>.lora_B": (out, r)} for every LowRankLinear in the model."""
    return {f"{name}.{part}": getattr(module, part).detach()
            for name, module in model.named_modules() if isinstance(module, LowRankLinear)
            for part in ("lora_A", "lora_B")}


def merge_low_rank(model: nn.Module) -> nn.Module:
    """Fold every update into its weight (W <- W + dW) and put plain nn.Linear layers back, in
    place. The merged Linear's weights are trainable again, as after from_pretrained."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LowRankLinear):
            _set(model, name, module.merged())
    return model


def apply_low_rank(model: nn.Module, factors: dict[str, torch.Tensor], alpha_over_rank: float) -> list[str]:
    """W <- W + (alpha / r) * B @ A for each pair of factors saved by `low_rank_factors`, into a
    plain model with the same module names: rebuilds the fine-tuned model from the pre-trained one.
    Every factor must be used, and its shapes must fit, or nothing is changed."""
    updates = {}
    for key in sorted(factors):
        if not key.endswith(".lora_A"):
            if not key.endswith(".lora_B") or key[:-len(".lora_B")] + ".lora_A" not in factors:
                raise KeyError(f"{key} has no matching lora_A/lora_B partner")
            continue
        name = key[:-len(".lora_A")]
        if name + ".lora_B" not in factors:
            raise KeyError(f"{key} has no matching {name}.lora_B")
        try:
            linear = model.get_submodule(name)
        except AttributeError:
            raise KeyError(f"{key}: the model has no module {name}") from None
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"{key}: {name} is a {type(linear).__name__}, not a Linear")
        a, b = factors[name + ".lora_A"], factors[name + ".lora_B"]
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1] or (b.shape[0], a.shape[1]) != tuple(linear.weight.shape):
            raise ValueError(f"{name}: lora_B {tuple(b.shape)} @ lora_A {tuple(a.shape)} does not make "
                             f"its weight's {tuple(linear.weight.shape)}")
        updates[name] = alpha_over_rank * (b.to(linear.weight) @ a.to(linear.weight))
    with torch.no_grad():
        for name, delta in updates.items():
            model.get_submodule(name).weight.add_(delta)
    return sorted(updates)
