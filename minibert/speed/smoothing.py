"""SmoothQuant (Xiao et al. 2023): move part of each activation channel's range into the weights before int8.

BERT's hidden states have a few channels far larger than the rest (99, 62, 157 and 223 in all-MiniLM-L6-v2
reach |x| = 10 to 30 where most stay below 2; speed/quantize.py). An int8 activation with one scale per token
must stretch that scale to cover them, which leaves the other channels a handful of steps each. The weights
have no such channels. So divide input channel j of a Linear by a factor s[j] and multiply the weight's
column j by the same s[j]: the product is unchanged,

    y = x W^T = (x / s) (W * s)^T        (s broadcast over the rows of x and over the rows of W)

but x / s has a flatter range, and W * s takes up what x gave away. The factor balances the two ranges:

    s[j] = max|x[:, j]| ** alpha / max|W[:, j]| ** (1 - alpha)

with max|x[:, j]| measured once on calibration text. alpha = 0 leaves the activations alone; alpha = 1 flattens
them completely and moves every outlier into the weights. 0.6 gave the best min cosine on bench_peers.py's
2,000 generated sentences (torchao's int8 on all-MiniLM-L6-v2, run eagerly, calibrated on calibration_texts():
0.9902 with no factors, 0.9957 at 0.5, 0.9965 at 0.6, 0.9964 at 0.7, 0.9943 at 0.8). The compiled int8 package
(speed/engines.py) measured 0.9965 on them.

    >>> ranges = input_ranges(model, tokenizer, calibration_texts()[:64])   # model: all-MiniLM-L6-v2
    >>> ranges["encoder.layer.0.attention.self.query"].shape
    torch.Size([384])
    >>> smoothed = smooth(model, ranges)                  # a copy; `model` is left as it was
    >>> smoothed.encoder.layer[0].output.dense
    SmoothedLinear(
      in_features=1536, out_features=384
      (linear): Linear(in_features=1536, out_features=384, bias=True)
    )

In a pre-LayerNorm model (OPT, LLaMA) the division folds into the LayerNorm before the Linear and costs nothing.
In BERT the LayerNorm's output is also the residual that skips the block, so the division stays a multiply of
its own; inductor fuses it into the pass that quantizes the activations (speed/engines.py compiles it so).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence

import torch
from torch import nn

from ..bert.tokenizer import Tokenizer

ALPHA = 0.6
CALIBRATION = "lee_background.cor"  # 300 Australian news stories, one per line, shipped with gensim's tests


def calibration_texts(limit: int = 512) -> list[str]:
    """The first `limit` sentences of gensim's lee_background.cor: real English that a runtime dependency
    ships, so int8 calibrates offline on text unlike the texts it is tested on (bench.py's generated ones).

    Args:
        limit: how many sentences (split after ., ! or ? and a space).

    Returns:
        The sentences, in the file's order.
    """
    from gensim.test.utils import datapath

    sentences = []
    with open(datapath(CALIBRATION), encoding="utf-8") as stories:
        for story in stories:
            sentences += [s for s in re.split(r"(?<=[.!?])\s+", story.strip()) if s]
            if len(sentences) >= limit:
                break
    return sentences[:limit]


def _encoder_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """The Linear layers inside the encoder blocks, by name: what int8 quantizes (the pooler is not run)."""
    return {name: module for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and name.startswith("encoder.")}


def input_ranges(model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str]) -> dict[str, torch.Tensor]:
    """max |x| per input channel of each encoder Linear, over every token of `texts`.

    Each text runs alone, so no padding token enters a maximum.

    Args:
        model: a BertModel (its Linear layers under encoder. are measured).
        tokenizer: its Tokenizer.
        texts: the calibration texts.

    Returns:
        {Linear's name: (in_features,) float32 tensor}.

    Raises:
        ValueError: no texts.
    """
    if not texts:
        raise ValueError("calibration needs at least one text")
    ranges: dict[str, torch.Tensor] = {}

    def record(name):
        def hook(module, args):
            seen = args[0].detach().abs().flatten(0, -2).amax(0)  # (B, T, in) -> (in,)
            ranges[name] = torch.maximum(ranges[name], seen) if name in ranges else seen
        return hook

    handles = [linear.register_forward_pre_hook(record(name)) for name, linear in _encoder_linears(model).items()]
    try:
        with torch.inference_mode():
            for text in texts:
                model(**tokenizer([text]))
    finally:
        for handle in handles:
            handle.remove()
    return {name: r.float() for name, r in ranges.items()}


class SmoothedLinear(nn.Module):
    """A Linear whose input channels are divided by `factors` and whose weight columns are multiplied by them.

    `linear` is the Linear whose weight already holds W * s (smooth() does that); `inverse` holds 1 / s.
    """

    def __init__(self, linear: nn.Linear, factors: torch.Tensor):
        super().__init__()
        self.linear = linear
        self.register_buffer("inverse", 1 / factors)  # (in,): a multiply is cheaper than a divide
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x * self.inverse)  # (..., in) -> (..., out)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def smoothing_factors(x_range: torch.Tensor, weight: torch.Tensor, alpha: float = ALPHA) -> torch.Tensor:
    """s[j] = max|x[:, j]| ** alpha / max|W[:, j]| ** (1 - alpha), both ranges kept above 1e-5.

    Args:
        x_range: (in,) max |x| per input channel (input_ranges).
        weight: (out, in) the Linear's weight.
        alpha: how much of the activations' range moves into the weights (0 to 1).

    Returns:
        (in,) float32 factors.
    """
    w_range = weight.detach().abs().amax(0).float()  # (out, in) -> (in,)
    return x_range.clamp(min=1e-5) ** alpha / w_range.clamp(min=1e-5) ** (1 - alpha)


def smooth(model: nn.Module, ranges: dict[str, torch.Tensor], alpha: float = ALPHA) -> nn.Module:
    """A copy of `model` whose encoder Linear layers are SmoothedLinear, with factors from `ranges`.

    In exact arithmetic the copy computes what the model does; in float32 the outputs move by rounding only
    (tests/test_smoothing.py).

    Args:
        model: a BertModel (left as it is).
        ranges: input_ranges(model, ...).
        alpha: as smoothing_factors.

    Returns:
        The smoothed copy.

    Raises:
        ValueError: alpha outside [0, 1]; `ranges` lacks a Linear or has the wrong number of channels.
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha}")
    smoothed = copy.deepcopy(model)
    for name, linear in _encoder_linears(smoothed).items():
        if name not in ranges:
            raise ValueError(f"no calibration range for {name}: ranges come from input_ranges on the same model")
        if ranges[name].shape != (linear.in_features,):
            raise ValueError(f"the range of {name} has shape {tuple(ranges[name].shape)}; "
                             f"its Linear takes {linear.in_features} channels")
        factors = smoothing_factors(ranges[name], linear.weight, alpha).to(linear.weight.dtype)  # (in,)
        with torch.no_grad():
            linear.weight.mul_(factors)  # (out, in) * (in,): column j times s[j]
        parent_name, _, child = name.rpartition(".")
        setattr(smoothed.get_submodule(parent_name), child, SmoothedLinear(linear, factors))
    return smoothed
