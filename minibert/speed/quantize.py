"""int8 inference: the encoder's Linear layers multiply 8-bit integers instead of 32-bit floats.

    >>> quantized = quantize_dynamic_int8(model)  # a copy; `model` keeps its float32 weights
    >>> quantized.encoder.layer[0].output.dense
    Int8Linear(in_features=1536, out_features=384, activations=per token, outlier_threshold=6.0)
    >>> from minibert.speed.encode import embedding_cosines
    >>> texts = ["The bat flew out of the cave at night.", "He swung the bat and hit a home run."]
    >>> cosines = embedding_cosines(model, quantized, tokenizer, texts)  # mean-pooled, against float32
    >>> bool(cosines.min() > 0.99)    # 0.9992 and 0.9993 here; tests/test_quantize.py holds 200 texts to 0.99
    True

The quantized model is a BertModel (or a FastBertModel: quantize_dynamic_int8(FastBertModel.from_model(m))
is the fast int8 path), so `encode` and `SentenceEncoder(quantized, tokenizer, pipeline)` take it as
it is. scripts/quantize_table.py prints every figure quoted below.

A scale. int8 holds the integers -128..127. A float tensor x is stored as q = round(x / s), with
one float s chosen so that the largest |x| lands on 127: s = max|x| / 127. Then x ~ q * s, and no
entry is off by more than s / 2. The larger the range a scale must cover, the coarser its steps.

    >>> weight = torch.tensor([[0.5, -1.27, 0.3], [0.01, 0.03, -0.04]])
    >>> q, scale = quantize_per_channel(weight)
    >>> q
    tensor([[  50, -127,   30],
            [  32,   95, -127]], dtype=torch.int8)
    >>> scale  # 1.27 / 127 and 0.04 / 127
    tensor([0.0100, 0.0003])

Symmetric: q = round(x / s), with no offset ("zero point"), so 0.0 is exactly 0 and the range is
-127..127 (-128 is left out so that -q is always a value too). Then a product of two quantized
numbers is the product of their integers times the product of their scales, and a dot product is
one integer sum times one float:

    y[m, n] = sum_k x[m, k] W[n, k]  ~  sx[m] * sw[n] * sum_k qx[m, k] qw[n, k]

The scales may depend on m (the token) and on n (the output channel), but not on k: k is summed
over, and the integer sum must not be interrupted by a float. This says which scales there are:

- Weights: one scale per output channel, sw[n] = max|W[n, :]| / 127, computed once. A row with
  one large weight then coarsens only itself, not the whole matrix.
- Activations: known only at run time, so their scales are computed then ("dynamic"), one per
  token: sx[m] = max|x[m, :]| / 127. One scale per tensor (what torch's quantize_dynamic does)
  lets the largest token of the batch coarsen every other one, padding included. Measured on 400
  texts (mean-pooled all-MiniLM-L6-v2 embeddings against float32, min / mean cosine): one scale per
  tensor 0.951 / 0.979, one per token 0.991 / 0.997.
- Outliers: a few hidden channels of BERT (99, 62, 157, 223 in this model) reach |x| = 10 to 30
  while most stay below 2. One scale per token stretched to cover them leaves the other channels a
  handful of steps each. So the entries above 6 (the threshold of LLM.int8, Dettmers et al. 2022)
  are taken out and multiplied in float with the weight columns they meet; everything else goes
  through int8. Over 400 texts, a batch had 3 such channels of 384 (at most 8), 1 of 1536 (at
  most 6): 0.03% of the entries. Measured: min / mean cosine
  0.9976 / 0.9990 with the split, 0.9912 / 0.9967 without. (torch's quantize_dynamic on the same
  texts: 0.844 / 0.932 with its default per-tensor weights, 0.931 / 0.972 per channel.)

The product. qx (M, K) int8 times qw^T (K, N) int8 is summed in int32, exactly: each term is at most
127 * 127, so K = 1536 terms stay under 25 million, far below 2**31. torch._int_mm runs it on the
CPU's int8 dot-product instructions (AVX512-VNNI here); where it is missing, an int32 matmul gives the
same integers, slowly. At 2048 tokens (32 texts of 64) on this 2-core machine it takes 0.3 to
1.3 ms where float32 F.linear takes 2.7 to 11 ms; with the quantizing, the outliers and the
rescaling around it, Int8Linear is 3.2 to 3.7 times faster than F.linear. (F.linear is torch's MKL
kernel; the fast path's float32 products run on oneDNN, about twice as fast here: speed/fast.py.)

What stays in float32, and why:
- the embeddings (a table lookup: no product to speed up) and every LayerNorm (a mean and a
  variance per token, cheap, and the place where the outliers above are made);
- attention's two products, q k^T and probs @ v, and the softmax between them: both operands are
  activations, so there is no weight to prepare once, and the probabilities span many orders of
  magnitude, which a linear int8 grid cannot hold. They run fused in scaled_dot_product_attention;
- the pooler and any head: they are not part of the mean-pooled embedding and see one row per text;
- the outlier entries (above).
No Linear layer of the encoder had to stay in float. Quantized one group at a time (min cosine over
400 texts; `layer_table`, in speed/encode.py), the most sensitive kind is ffn_out, the FFN's output
projection, whose input comes out of GELU with a long tail: 0.9990 alone; then ffn_in 0.9994, qkv
0.9995 and attention_output 0.99993. Without the outlier split qkv is the worst (0.9948): its input
is the LayerNorm output that carries the outlier channels. Layer by layer, with the split, every
layer alone keeps 0.9995 or more.

Rounding is not continuous. A change of 1e-7 in an activation that sits on a rounding boundary
moves its int8 value by a whole step, and every later layer rounds again: noise of 1e-7 added to
the embeddings moved the int8 model's sentence embeddings by up to 6.8e-4 in cosine (the float
model's: 2.4e-7). So a padded batch and the texts one by one, whose float parts differ by about
1e-7, mostly agree to the last bit but may differ by up to about 2e-3 in cosine for a short text.
The quantization itself never looks across rows: each token's scale and outliers are its own.

Speed, end to end: `encode` over the same 400 texts in batches of 32, 2 threads, the paths taking
turns. Against the fast path in float32, whose products now run on oneDNN, this path is slower:
2.82 s against 2.23 s (0.79 times the speed); without the outlier split 2.27 s (0.98 times, at 0.991
instead of 0.998). Part of it is memory: this path makes more fresh temporaries than the float32
one, and glibc hands large freed blocks back to the system, so each is faulted in again page by
page (677,000 page faults per pass over the texts). With MALLOC_MMAP_THRESHOLD_=1073741824 and
MALLOC_TRIM_THRESHOLD_=1073741824 in the environment (glibc reads them when a process starts) there
were none: int8 1.90 s against float32's 2.07 s (1.09 times; without the split 1.26 times). On the
2,000 shorter sentences of scripts/bench_peers.py, with the same setting, int8 stayed below float32
(0.91 times). The integer products themselves are not what limits it; the passes around them are.
docs/performance.md measures the routes tried: oneDNN's int8 kernel, a fixed scale, fused passes.
Memory: the encoder's Linear weights shrink from 42 MB to 11 MB; the 47 MB word-embedding table
stays float32.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable
from typing import NamedTuple

import torch
from torch import nn

from ..bert.model import BertLayer, BertModel
from .fast import FastBertLayer, FastBertModel

QMAX = 127  # int8 holds -128..127; symmetric quantization uses -127..127, so that -q is always a value too


# ---------------------------------------------------------------------------------------------
# 1. Scales: a float tensor becomes int8 numbers times a float scale.
# ---------------------------------------------------------------------------------------------

def max_abs(x: torch.Tensor, dim: int | None = None, keepdim: bool = False) -> torch.Tensor:
    """The largest |x| along `dim` (over everything when None).

    Written as max(max x, -min x): two reductions that read x in place, where x.abs().amax() would
    first write a temporary as large as x. On activations that temporary is several MB per call.
    """
    if dim is None:
        return torch.maximum(x.amax(), -x.amin())
    return torch.maximum(x.amax(dim=dim, keepdim=keepdim), -x.amin(dim=dim, keepdim=keepdim))


def to_int8(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """round(x / scale), clamped to [-127, 127], as int8. `scale` broadcasts against x.

    torch.round rounds halves to even, as Python's round does. The clamp only guards against
    rounding up past 127 (scale is chosen so that |x| / scale <= 127). After the division, the
    steps work in place on that one temporary, instead of making a new one each.
    """
    return torch.div(x, scale).round_().clamp_(-QMAX, QMAX).to(torch.int8)


def positive(scale: torch.Tensor) -> torch.Tensor:
    """A scale of 0 (a row of zeros) becomes the smallest positive float32: 0 / scale is then 0, not NaN."""
    return scale.float().clamp(min=torch.finfo(torch.float32).tiny)


def quantize_per_channel(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A Linear's (N, K) weight as int8, one scale per output channel (row):
    scale[n] = max|W[n]| / 127, q[n] = round(W[n] / scale[n]), which lies in [-127, 127].

    Returns (q, scale): (N, K) int8 and (N,) float32, with W ~ q * scale[:, None] and an error of at
    most scale / 2 per entry.
    """
    scale = positive(max_abs(weight, dim=1) / QMAX)  # (N,): each row's largest magnitude maps to 127
    return to_int8(weight, scale[:, None]), scale  # (N, K) int8, (N,)


def quantize_per_token(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations (M, K), one row per token, as int8 with one scale per row, computed now.

    Returns (q, scale): (M, K) int8 and (M, 1) float32, with x ~ q * scale.
    """
    scale = positive(max_abs(x, dim=1, keepdim=True) / QMAX)  # (M, 1)
    return to_int8(x, scale), scale  # (M, K) int8, (M, 1)


def quantize_per_tensor(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations (M, K) as int8 with one scale for the whole batch, computed now: what torch's
    quantize_dynamic does. Kept to measure against per-token scales (see the module docstring).

    Returns (q, scale): (M, K) int8 and a (1, 1) float32 scale.
    """
    scale = positive(max_abs(x) / QMAX).reshape(1, 1)  # (1, 1)
    return to_int8(x, scale), scale  # (M, K) int8, (1, 1)


ACTIVATION_SCALES = {"token": quantize_per_token, "tensor": quantize_per_tensor}


# ---------------------------------------------------------------------------------------------
# 2. The integer product: int8 x int8 -> int32, exact.
# ---------------------------------------------------------------------------------------------

@functools.cache
def int_mm_works() -> bool:
    """Whether torch._int_mm (a private but long-standing op) multiplies int8 matrices exactly here.

    It is checked once, against the same product in int64, on values across the whole int8 range:
    on a CPU without VNNI (oneDNN at AVX2, e.g. ONEDNN_MAX_CPU_ISA=AVX2) the kernel adds pairs of
    products in 16 bits, which saturate (it seems to take one side as unsigned, shifted by 128: then
    255 * 127 * 2 > 32767), so rows of 127 x 127 came out wrong (Int8Linear's outputs off by up to
    0.86) while small values, such as an earlier probe's |a| <= 60, and -127 x 127 were exact.
    """
    if not hasattr(torch, "_int_mm"):
        return False
    generator = torch.Generator().manual_seed(0)
    a = torch.randint(-127, 128, (32, 64), generator=generator, dtype=torch.int8)  # (32, 64)
    b = torch.randint(-127, 128, (64, 32), generator=generator, dtype=torch.int8)  # (64, 32)
    a[0], b[:, 0] = 127, 127  # pairs of 127 * 127: these came out wrong where the kernel saturates
    try:
        product = torch._int_mm(a, b)  # (32, 32) int32
    except (RuntimeError, NotImplementedError):
        return False
    return product.dtype == torch.int32 and torch.equal(product.long(), a.long() @ b.long())


def int8_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(M, K) int8 @ (K, N) int8 -> (M, N) int32, exact.

    Exact because no sum can overflow int32: each product is at most 127 * 127 = 16129, so even
    K = 1536 terms stay below 25 million, far under 2**31. (float32 would not be exact: it holds
    integers exactly only up to 2**24, about 16.7 million.)

    torch._int_mm runs it on the CPU's int8 dot-product instructions (VNNI where the CPU has them);
    where it is missing, the same product in int32 is just as exact, only slower.
    """
    if int_mm_works():
        return torch._int_mm(a, b)  # (M, N) int32
    return a.to(torch.int32) @ b.to(torch.int32)  # (M, N) int32


# ---------------------------------------------------------------------------------------------
# 3. Outliers: the few entries too large for a shared scale are multiplied in float instead.
# ---------------------------------------------------------------------------------------------

OUTLIER_THRESHOLD = 6.0  # |x| above this goes the float way (LLM.int8's value; see the module docstring)


class OutlierSplit(NamedTuple):
    """x = inliers + outliers, where `outliers` holds the entries above the threshold, gathered by column."""

    inliers: torch.Tensor  # (M, K): x with its outlier entries set to 0; quantized to int8
    columns: torch.Tensor  # (n,): the input channels that hold an outlier in any row
    outliers: torch.Tensor  # (M, n): x's outlier entries in those channels, 0 elsewhere; kept in float


def split_outliers(x: torch.Tensor, threshold: float) -> OutlierSplit:
    """Split activations (M, K) into the part int8 can hold and the few large entries.

    The choice is entry by entry, so each row's split depends on that row alone: a text's result
    does not change with the other texts in its batch. `columns` only gathers the outliers compactly.
    """
    columns = (max_abs(x, dim=0) > threshold).nonzero().squeeze(1)  # (n,) channels with an outlier somewhere
    if columns.numel() == 0:
        return OutlierSplit(x, columns, x.new_zeros(x.shape[0], 0))  # nothing to take out; no copy
    picked = x[:, columns]  # (M, n)
    is_outlier = picked.abs() > threshold  # (M, n) bool
    outliers = torch.where(is_outlier, picked, 0.0)  # (M, n): the outliers, 0 elsewhere
    inliers = x.clone()  # (M, K); the caller's x is left alone
    inliers[:, columns] = picked - outliers  # the outlier entries become 0
    return OutlierSplit(inliers, columns, outliers)


# ---------------------------------------------------------------------------------------------
# 4. The layer: quantize the input, multiply in integers, scale the result back to floats.
# ---------------------------------------------------------------------------------------------

class Int8Linear(nn.Module):
    """A Linear layer whose weight is stored as int8 with a scale per output channel.

    y = x W^T + b  is computed as  y[m, n] = sx[m] * sw[n] * sum_k qx[m, k] qw[n, k] + b[n],
    where qw, sw come from the weight once (here) and qx, sx from the input at every call. With an
    outlier_threshold, the entries of x above it are first taken out and multiplied in float with
    the (dequantized) weight columns they meet, and that product is added to y.

    Args:
        linear: the float layer; its weight is quantized now, its bias kept in float.
        activations: "token" (a scale per row of the input) or "tensor" (one scale per call).
        outlier_threshold: input entries with a larger magnitude go the float way; None: none do.

    Raises:
        ValueError: an unknown activations mode or a threshold that is not a positive number.
    """

    def __init__(self, linear: nn.Linear, activations: str = "token", outlier_threshold: float | None = OUTLIER_THRESHOLD):
        super().__init__()
        check_options(activations, outlier_threshold)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.activations = activations
        self.outlier_threshold = outlier_threshold
        weight_int8, weight_scale = quantize_per_channel(linear.weight.detach())
        self.register_buffer("weight_int8", weight_int8)  # (N, K) int8
        self.register_buffer("weight_scale", weight_scale)  # (N,) float32
        bias = linear.bias.detach().clone() if linear.bias is not None else None
        self.register_buffer("bias", bias)  # (N,) float32, or None; added in float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            raise RuntimeError("Int8Linear is for inference: rounding has no useful gradient; call .eval() first")
        *lead, K = x.shape  # (..., K), usually (B, T, K)
        rows = x.reshape(-1, K).float()  # (M, K), M = B * T: one row per token
        split = None
        if self.outlier_threshold is not None:
            split = split_outliers(rows, self.outlier_threshold)
            rows = split.inliers  # (M, K), every entry within the threshold
        x_int8, x_scale = ACTIVATION_SCALES[self.activations](rows)  # (M, K) int8, (M, 1) float32
        acc = int8_matmul(x_int8, self.weight_int8.t())  # (M, K) @ (K, N) -> (M, N) int32, exact
        # Back to floats: times the row's scale and the column's scale. In place on the float copy:
        # a fresh (M, N) buffer for each step would cost more than the step itself.
        y = acc.to(torch.float32).mul_(x_scale).mul_(self.weight_scale)  # (M, N) * (M, 1) * (N,)
        if split is not None and split.columns.numel() > 0:
            # The outliers' share, in float: (M, n) @ (n, N), with the n weight columns they meet.
            weight_columns = self.weight_int8[:, split.columns].float() * self.weight_scale[:, None]  # (N, n)
            y.addmm_(split.outliers, weight_columns.t())  # y += (M, n) @ (n, N)
        if self.bias is not None:
            y.add_(self.bias)  # (M, N) + (N,)
        return y.to(x.dtype).view(*lead, self.out_features)  # (..., N)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"activations=per {self.activations}, outlier_threshold={self.outlier_threshold}")


def check_options(activations: str, outlier_threshold: float | None) -> None:
    if activations not in ACTIVATION_SCALES:
        raise ValueError(f"activations must be one of {list(ACTIVATION_SCALES)}, got {activations!r}")
    if outlier_threshold is not None and (isinstance(outlier_threshold, bool)
                                          or not isinstance(outlier_threshold, (int, float))
                                          or not outlier_threshold > 0):
        raise ValueError(f"outlier_threshold must be a positive number or None, got {outlier_threshold!r}")


# ---------------------------------------------------------------------------------------------
# 5. Which layers: four kinds of Linear in each encoder layer.
# ---------------------------------------------------------------------------------------------

KINDS = ("qkv", "attention_output", "ffn_in", "ffn_out")


def linears_by_kind(layer: nn.Module) -> dict[str, list[tuple[nn.Module, str]]]:
    """Each kind's Linear layers in one encoder layer, as (parent module, attribute name) pairs, so
    that setattr(parent, name, new) swaps one. BertLayer holds q, k and v apart; FastBertLayer as one."""
    if isinstance(layer, BertLayer):
        return {
            "qkv": [(layer.attention.self, "query"), (layer.attention.self, "key"), (layer.attention.self, "value")],
            "attention_output": [(layer.attention.output, "dense")],
            "ffn_in": [(layer.intermediate, "dense")],
            "ffn_out": [(layer.output, "dense")],
        }
    if isinstance(layer, FastBertLayer):
        return {"qkv": [(layer, "qkv")], "attention_output": [(layer, "attention_output")],
                "ffn_in": [(layer, "intermediate")], "ffn_out": [(layer, "output")]}
    raise TypeError(f"expected a BertLayer or FastBertLayer, got {type(layer).__name__}")


def quantize_dynamic_int8(model: BertModel | FastBertModel, kinds: Iterable[str] = KINDS,
                          layers: Iterable[int] | None = None, activations: str = "token",
                          outlier_threshold: float | None = OUTLIER_THRESHOLD) -> BertModel | FastBertModel:
    """A copy of `model` whose chosen Linear layers run in int8 (Int8Linear); `model` is left as it was.

    Args:
        model: a BertModel (the readable path) or a FastBertModel built without compile or matmul_dtype.
        kinds: which Linear layers of each encoder layer, from KINDS.
        layers: which encoder layers, by index; None: all of them.
        activations: "token" (a scale per token, the default) or "tensor" (one per call).
        outlier_threshold: activation entries above this magnitude are multiplied in float; None:
            every entry goes through int8.

    Returns:
        A model of the same class, in eval mode, that `encode` and `SentenceEncoder` take as they are.

    Raises:
        TypeError: model is not a BertModel or FastBertModel (for a model with a head, pass model.bert).
        ValueError: an unknown kind, a layer index out of range, an unknown activations mode, a
            threshold that is not a positive number, a model that is not on the CPU, or a
            FastBertModel built with compile or matmul_dtype.
    """
    if not isinstance(model, (BertModel, FastBertModel)):
        raise TypeError(f"quantize_dynamic_int8 expects a BertModel or FastBertModel, got {type(model).__name__}; "
                        "for a model with a head, pass its encoder, model.bert")
    check_options(activations, outlier_threshold)
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; choose from {list(KINDS)}")
    if isinstance(model, FastBertModel) and getattr(model.run, "__func__", None) is not FastBertModel.run_layers:
        # The compiled function holds the original's layers: a copy of it would still run them in float.
        raise ValueError(f"this FastBertModel was built with compile={'frozen' if model.frozen else True!r}; "
                         "quantize one built without compile")
    if isinstance(model, FastBertModel) and any(getattr(layer, "matmul_dtype", None) for layer in model.layer):
        # Its Linear layers hold weights already rounded to bfloat16 and take inputs rounded to it.
        raise ValueError("this FastBertModel multiplies in a low dtype (matmul_dtype); quantize one built "
                         "without matmul_dtype, from the float32 weights")
    device = model.embeddings.word_embeddings.weight.device
    if device.type != "cpu":
        raise ValueError(f"the model is on {device}; the int8 path is written for the CPU (torch._int_mm's CPU "
                         "kernel, or an int32 matmul, which CUDA lacks): quantize model.to('cpu')")
    encoder_layers = model.encoder.layer if isinstance(model, BertModel) else model.layer
    n = len(encoder_layers)
    layers = list(range(n)) if layers is None else list(layers)
    outside = [i for i in layers if not isinstance(i, int) or not 0 <= i < n]
    if outside:
        raise ValueError(f"layer indices {outside} are not in range({n})")

    quantized = copy.deepcopy(model)  # the caller's model keeps its float weights
    if isinstance(quantized, FastBertModel):
        quantized.run = quantized.run_layers  # the copy's own layers, not the original's
    quantized_layers = quantized.encoder.layer if isinstance(quantized, BertModel) else quantized.layer
    for index in layers:
        by_kind = linears_by_kind(quantized_layers[index])
        for kind in kinds:
            for parent, name in by_kind[kind]:
                linear = getattr(parent, name)
                if isinstance(linear, nn.Linear):  # not one quantized already
                    setattr(parent, name, Int8Linear(linear, activations, outlier_threshold))
    return quantized.eval()
