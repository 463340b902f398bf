"""BERT, written out: embeddings, self-attention, feed-forward, pooler, and the pre-training and
classification heads. Read it top to bottom; that is the order in which a forward pass runs.

Sources: Devlin et al. 2018, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding"; Vaswani et al. 2017, "Attention Is All You Need"; google-research/bert `modeling.py`;
Hugging Face transformers `modeling_bert.py`, whose parameter paths are kept here so that official
checkpoints load strictly, name for name.

Dimension letters used in the shape comments:
    B   batch size                 T   sequence length (tokens)
    H   hidden size                nh  number of attention heads
    hs  head size (H / nh)         I   intermediate (feed-forward) size
    V   vocabulary size            L   number of labels of a classifier

    >>> from minibert import BertModel, Tokenizer
    >>> model = BertModel.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")
    >>> batch = Tokenizer.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")(["The bat flew."])
    >>> out = model(**batch)
    >>> out.last_hidden_state.shape, out.pooler_output.shape
    (torch.Size([1, 6, 384]), torch.Size([1, 384]))
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .config import BertConfig
from .losses import IGNORE_INDEX, binary_cross_entropy_with_logits, cross_entropy, mean_squared_error
from .outputs import BaseModelOutput, LogitsOutput, PreTrainingOutput
from .pretrained import PreTrainedMixin


# ---------------------------------------------------------------------------------------------
# Activations. `hidden_act` in config.json names one; the names are Hugging Face's.
# ---------------------------------------------------------------------------------------------

def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """The tanh approximation of GELU used by the original BERT code and GPT ("gelu_new")."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACTIVATIONS = {
    "gelu": F.gelu,  # exact: x * Phi(x), with the erf
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": functools.partial(F.gelu, approximate="tanh"),  # gelu_new's formula, as one kernel
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}


def activation(name: str, x: torch.Tensor) -> torch.Tensor:
    """Apply the activation `hidden_act` names; BertConfig has already refused any other name."""
    return ACTIVATIONS[name](x)


# ---------------------------------------------------------------------------------------------
# 1. Embeddings: a vector per token, from its id, its position and its segment (A or B).
# ---------------------------------------------------------------------------------------------

class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        # Named "LayerNorm", capital L, after the TensorFlow variable, so checkpoints load by name.
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor | None, token_type_ids: torch.Tensor, position_ids: torch.Tensor,
                inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        # (B, T) -> (B, T, H): a row of the table per token, unless the caller brought the vectors
        words = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        segments = self.token_type_embeddings(token_type_ids)  # (B, T, H)
        positions = self.position_embeddings(position_ids)  # (1, T, H), or (B, T, H) if given per row
        embeddings = words + segments + positions  # (B, T, H), positions broadcast over the batch
        embeddings = self.LayerNorm(embeddings)
        return self.dropout(embeddings)  # (B, T, H)


# ---------------------------------------------------------------------------------------------
# 2. Self-attention. Every token looks at every other token; a padding mask hides the padding.
# ---------------------------------------------------------------------------------------------

class AttentionSteps(NamedTuple):
    """Every tensor attention() computes, by name. A debugger or a hook (see minibert/inside/trace.py)
    reads them here; nothing is computed twice."""

    query: torch.Tensor  # (B, nh, T, hs)
    key: torch.Tensor  # (B, nh, T, hs)
    value: torch.Tensor  # (B, nh, T, hs)
    scores: torch.Tensor  # (B, nh, T, T): q k^T / sqrt(hs)
    masked_scores: torch.Tensor  # (B, nh, T, T): plus the padding mask
    probs: torch.Tensor  # (B, nh, T, T): softmax over the keys
    context: torch.Tensor  # (B, nh, T, hs): probs @ v


def attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, additive_mask: torch.Tensor,
              dropout: nn.Dropout) -> AttentionSteps:
    """Scaled dot-product attention, one step per line.

    query, key, value: (B, nh, T, hs).  additive_mask: (B, 1, 1, T), 0 where a key may be attended
    to and a huge negative number where it is padding.  A breakpoint here shows the current
    layer's `scores` and `probs` as plain tensors.
    """
    head_size = query.size(-1)
    scores = query @ key.transpose(-2, -1)  # (B, nh, T, hs) @ (B, nh, hs, T) -> (B, nh, T, T)
    # Divide by sqrt(hs) so the logits' spread does not grow with the head size. Written as a product
    # with hs ** -0.5, as transformers does, so the two agree to the last bit; in place (mul_), as
    # the unscaled product is not needed again and a fresh (B, nh, T, T) buffer costs time.
    scores = scores.mul_(head_size**-0.5)
    # Additive, not a boolean fill: adding finfo.min sends a padded key's logit to -inf-ish, so its
    # softmax weight is exactly 0, and the same line works for every row of the batch.
    masked_scores = scores + additive_mask  # (B, nh, T, T) + (B, 1, 1, T)
    probs = torch.softmax(masked_scores, dim=-1)  # (B, nh, T, T): each query's weights over the keys sum to 1
    probs_dropped = dropout(probs)  # identity in eval mode
    context = probs_dropped @ value  # (B, nh, T, T) @ (B, nh, T, hs) -> (B, nh, T, hs)
    return AttentionSteps(query, key, value, scores, masked_scores, probs, context)


class BertSelfAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.hidden_size // config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, H = x.shape
        x = x.view(B, T, self.num_heads, self.head_size)  # (B, T, nh, hs)
        return x.transpose(1, 2)  # (B, nh, T, hs)

    def forward(self, hidden_states: torch.Tensor, additive_mask: torch.Tensor
                ) -> tuple[torch.Tensor, AttentionSteps]:
        q = self.split_heads(self.query(hidden_states))  # (B, T, H) -> (B, nh, T, hs)
        k = self.split_heads(self.key(hidden_states))  # (B, nh, T, hs)
        v = self.split_heads(self.value(hidden_states))  # (B, nh, T, hs)
        steps = attention(q, k, v, additive_mask, self.dropout)
        B, nh, T, hs = steps.context.shape
        context = steps.context.transpose(1, 2).reshape(B, T, nh * hs)  # heads side by side again: (B, T, H)
        return context, steps


class BertSelfOutput(nn.Module):
    """Project the heads' context back to H, then the residual and LayerNorm (post-LN)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, context: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.dense(context))  # (B, T, H)
        return self.LayerNorm(x + shortcut)  # residual first, then normalise


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)  # `self.self` is Hugging Face's path: attention.self.query
        self.output = BertSelfOutput(config)

    def forward(self, hidden_states: torch.Tensor, additive_mask: torch.Tensor, output_attentions: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        shortcut = hidden_states
        context, steps = self.self(hidden_states, additive_mask)
        probs = steps.probs if output_attentions else None  # (B, nh, T, T), kept only when asked for
        del steps  # release the steps' (B, nh, T, T) buffers before the next big allocations
        return self.output(context, shortcut), probs  # (B, T, H), (B, nh, T, T) or None


# ---------------------------------------------------------------------------------------------
# 3. Feed-forward: widen each token to I, apply the activation, narrow back to H.
# ---------------------------------------------------------------------------------------------

class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.hidden_act = config.hidden_act

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        x = self.dense(hidden_states)  # (B, T, H) -> (B, T, I)
        return activation(self.hidden_act, x)  # (B, T, I)


class BertOutput(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, intermediate: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.dense(intermediate))  # (B, T, I) -> (B, T, H)
        return self.LayerNorm(x + shortcut)  # residual, then LayerNorm


# ---------------------------------------------------------------------------------------------
# 4. One encoder layer = attention sub-layer + feed-forward sub-layer; the encoder stacks them.
# ---------------------------------------------------------------------------------------------

class BertLayer(nn.Module):
    """One encoder layer: two sub-layers, each wrapped in a residual sum and a LayerNorm (post-LN).

        x = LN(x + Attn(x))     attention.self    q, k, v and attention()      (BertSelfAttention)
                                attention.output  dense, dropout, + x, LN      (BertSelfOutput)
        x = LN(x + FFN(x))      intermediate      dense H -> I, activation     (BertIntermediate)
                                output            dense I -> H, dropout, + x, LN   (BertOutput)

    This is the one place the structure is stated. The residual sum and the LayerNorm sit inside
    the `output` modules because that is where the checkpoints keep the LayerNorm's weights.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, hidden_states: torch.Tensor, additive_mask: torch.Tensor, output_attentions: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # x = LN(x + Attn(x)): (B, T, H), and the probabilities (B, nh, T, T) if output_attentions
        attended, probs = self.attention(hidden_states, additive_mask, output_attentions)
        shortcut = attended
        widened = self.intermediate(attended)  # (B, T, I)
        return self.output(widened, shortcut), probs  # x = LN(x + FFN(x)): (B, T, H)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        # A ModuleList is what gives the checkpoint paths encoder.layer.0, encoder.layer.1, ...
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))
        # Off unless model.gradient_checkpointing_enable() (pretrained.py) switches it on, with these options.
        self.gradient_checkpointing = False
        self.checkpoint_kwargs = {"use_reentrant": False}

    def forward(self, hidden_states: torch.Tensor, additive_mask: torch.Tensor, output_attentions: bool = False,
                output_hidden_states: bool = False) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Run every layer. Each layer's hidden states and attention probabilities are kept only when
        asked for: a (B, nh, T, T) tensor per layer is a lot of memory to hold for nobody."""
        all_hidden = [hidden_states] if output_hidden_states else []  # the embeddings, then every layer's output
        all_probs = []
        for layer_index, layer in enumerate(self.layer):  # in a debugger, `layer_index` says which layer this is
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                # Gradient checkpointing: keep only this layer's input now, and run the layer again in the
                # backward pass for what its gradients need. The same numbers, for less memory and more time.
                hidden_states, probs = checkpoint(layer, hidden_states, additive_mask, output_attentions,
                                                  **self.checkpoint_kwargs)
            else:
                hidden_states, probs = layer(hidden_states, additive_mask, output_attentions)  # (B, T, H), probs or None
            if output_hidden_states:
                all_hidden.append(hidden_states)
            if output_attentions:
                all_probs.append(probs)  # (B, nh, T, T)
        return hidden_states, all_hidden, all_probs


# ---------------------------------------------------------------------------------------------
# 5. Pooler: the [CLS] vector through a dense layer and tanh, for sentence-level heads.
# ---------------------------------------------------------------------------------------------

class BertPooler(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        cls_vector = hidden_states[:, 0]  # (B, T, H) -> (B, H): the [CLS] token
        return torch.tanh(self.dense(cls_vector))  # (B, H)


# ---------------------------------------------------------------------------------------------
# The shared base: weight initialisation and from_pretrained.
# ---------------------------------------------------------------------------------------------

class BertPreTrainedModel(PreTrainedMixin, nn.Module):
    """BERT's initialisation, plus (from PreTrainedMixin, in pretrained.py) from_pretrained,
    save_pretrained and the rest of the surface that code written for transformers expects."""

    # Parameter paths of the encoder start with this inside a model with a head ("bert.encoder...").
    base_model_prefix = "bert"
    # Checkpoint tensors this class knowingly does not use: dropped on load and reported quietly.
    unused_checkpoint_prefixes: tuple[str, ...] = ()

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config

    def init_weights(self, module: nn.Module | None = None) -> None:
        """BERT's initialisation: normal(0, initializer_range) weights, zero biases, unit LayerNorm."""
        for m in (module or self).modules():
            if any(p.is_meta for p in m.parameters(recurse=False)):
                continue  # built on the meta device by from_pretrained: shapes only, weights come from the file
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=self.config.initializer_range)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
            if isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------------------------
# The inputs, checked once and completed with their defaults. BertModel and the fast path
# (minibert/speed/fast.py) both start here.
# ---------------------------------------------------------------------------------------------

class ModelInputs(NamedTuple):
    input_ids: torch.Tensor | None  # (B, T) token ids, or None when the caller gave inputs_embeds
    inputs_embeds: torch.Tensor | None  # (B, T, H) word vectors given directly, or None
    attention_mask: torch.Tensor  # (B, T): 1 for a real token, 0 for padding
    token_type_ids: torch.Tensor  # (B, T): 0 for sentence A, 1 for sentence B
    position_ids: torch.Tensor  # (1, T), the same for every row, or (B, T) when given per row


def prepare_inputs(config: BertConfig, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None = None,
                   token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                   inputs_embeds: torch.Tensor | None = None) -> ModelInputs:
    """Check what the caller passed, then fill in what they left out, as BERT's defaults say."""
    check_inputs(config, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds)
    # Embedding lookups take int64 (or int32) indices; ids held as int16 or uint8 are widened.
    input_ids, token_type_ids, position_ids = (
        t.long() if t is not None and t.dtype not in (torch.int64, torch.int32) else t
        for t in (input_ids, token_type_ids, position_ids))
    reference = input_ids if input_ids is not None else inputs_embeds
    B, T = reference.shape[:2]
    device = reference.device
    if attention_mask is None:
        attention_mask = torch.ones(B, T, device=device)  # attend to every token
    if token_type_ids is None:
        token_type_ids = torch.zeros(B, T, dtype=torch.long, device=device)  # all sentence A
    if position_ids is None:
        position_ids = torch.arange(T, device=device)[None, :]  # (1, T): 0, 1, ..., T-1 for every row
    return ModelInputs(input_ids, inputs_embeds, attention_mask, token_type_ids, position_ids)


def additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, T) of 1 = real token, 0 = padding  ->  (B, 1, 1, T) of 0 where attended, the most negative
    float where masked. Added to the scores, it sends a padded key's logit so low that its softmax
    weight is exactly 0; the two singleton axes broadcast over the heads and the queries."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min  # (B, 1, 1, T)


def can_read_values(tensor: torch.Tensor) -> bool:
    """Whether a check may look at the numbers in `tensor`, not only its shape.

    Value checks (`ids.max() >= vocab_size`) run in every ordinary call. They are skipped while
    torch.jit.trace, torch.compile or torch.export records the graph, and on the meta device: there
    the tensors hold no numbers yet, and a branch on their values would break the recording. Shape
    checks run everywhere.
    """
    recording = torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting()
    return not (recording or tensor.is_meta)


def check_inputs(config: BertConfig, input_ids, attention_mask, token_type_ids, position_ids,
                 inputs_embeds=None) -> None:
    """Refuse input that would otherwise fail deep inside, or silently read the wrong rows."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("give exactly one of input_ids and inputs_embeds")
    if inputs_embeds is not None:
        if not isinstance(inputs_embeds, torch.Tensor) or inputs_embeds.dim() != 3 \
                or inputs_embeds.shape[-1] != config.hidden_size:
            shape = tuple(inputs_embeds.shape) if isinstance(inputs_embeds, torch.Tensor) else type(inputs_embeds).__name__
            raise ValueError(f"inputs_embeds must be a (batch, length, {config.hidden_size}) tensor, got {shape}")
        B, T = inputs_embeds.shape[:2]
    else:
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
            raise ValueError(f"input_ids must be a (batch, length) tensor, got {shape}")
        if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
            raise TypeError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
        B, T = input_ids.shape
        # The comparisons are made in Python ints: in the ids' own dtype a vocabulary of 30522 would
        # wrap around (as uint8 it is 58), and every id would look out of range.
        if input_ids.numel() and can_read_values(input_ids) and (
                int(input_ids.min()) < 0 or int(input_ids.max()) >= config.vocab_size):
            wide = input_ids.long()
            bad = ((wide < 0) | (wide >= config.vocab_size)).nonzero()[0].tolist()
            raise ValueError(
                f"input_ids[{bad[0]}, {bad[1]}] = {input_ids[bad[0], bad[1]].item()} is outside the "
                f"vocabulary [0, {config.vocab_size})"
            )
    given = "input_ids" if input_ids is not None else "inputs_embeds"
    if T == 0:
        shape = tuple((input_ids if input_ids is not None else inputs_embeds).shape)
        raise ValueError(f"{given} has no tokens (shape {shape}); "
                         "a BERT input has at least [CLS] and [SEP]")
    if T > config.max_position_embeddings:
        raise ValueError(
            f"{given} has {T} tokens, more than max_position_embeddings="
            f"{config.max_position_embeddings}; truncate the input"
        )
    for name, tensor, limit in (
        ("attention_mask", attention_mask, None),
        ("token_type_ids", token_type_ids, config.type_vocab_size),
        ("position_ids", position_ids, config.max_position_embeddings),
    ):
        if tensor is None:
            continue
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(tensor).__name__}")
        if tuple(tensor.shape) != (B, T):
            raise ValueError(f"{name} has shape {tuple(tensor.shape)} but {given} has shape {(B, T)}")
        if limit is not None and (tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool):
            raise TypeError(f"{name} must hold integers, got dtype {tensor.dtype}")
        if not tensor.numel() or not can_read_values(tensor):
            continue
        if limit is not None and (int(tensor.min()) < 0 or int(tensor.max()) >= limit):  # ints: no wrap-around
            raise ValueError(f"{name} holds values outside [0, {limit}): min {tensor.min().item()}, "
                             f"max {tensor.max().item()}")
        if limit is None and ((tensor != 0) & (tensor != 1)).any():  # NaN, 0.5, 2 or -1 would bend the mask
            where = ((tensor != 0) & (tensor != 1)).nonzero()[0].tolist()
            raise ValueError(f"attention_mask{where} = {tensor[tuple(where)].item()}; the mask holds 1 for a real "
                             "token and 0 for padding, nothing else")


# ---------------------------------------------------------------------------------------------
# The encoder model: embeddings -> layers -> pooler.
# ---------------------------------------------------------------------------------------------

class BertModel(BertPreTrainedModel):
    base_model_prefix = ""  # this *is* the base model: its paths are "embeddings...", "encoder..."
    unused_checkpoint_prefixes = ("cls.", "classifier.")

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        if not add_pooling_layer:  # a checkpoint's pooler, if it has one, is then knowingly left unused
            self.unused_checkpoint_prefixes = (*self.unused_checkpoint_prefixes, "pooler.")
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        *,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutput | tuple:
        """input_ids (B, T), or inputs_embeds (B, T, H) to skip the word lookup. The output_* and
        return_dict switches default to the config's, as in transformers."""
        output_attentions, output_hidden_states, _ = self.switches(output_attentions, output_hidden_states, None)
        inputs = prepare_inputs(self.config, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds)
        hidden_states = self.embeddings(inputs.input_ids, inputs.token_type_ids, inputs.position_ids,
                                        inputs.inputs_embeds)  # (B, T, H)
        mask = additive_mask(inputs.attention_mask, hidden_states.dtype)  # (B, 1, 1, T)
        hidden_states, all_hidden, all_probs = self.encoder(hidden_states, mask, output_attentions,
                                                            output_hidden_states)  # (B, T, H)
        pooled = self.pooler(hidden_states) if self.pooler is not None else None  # (B, H)
        out = BaseModelOutput(
            last_hidden_state=hidden_states,
            pooler_output=pooled,
            hidden_states=tuple(all_hidden) if output_hidden_states else None,
            attentions=tuple(all_probs) if output_attentions else None,
        )
        return self.as_requested(out, return_dict)


# ---------------------------------------------------------------------------------------------
# Heads. Each wraps a BertModel named `bert`, so its paths read "bert.encoder.layer.0...".
# ---------------------------------------------------------------------------------------------

class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.hidden_act = config.hidden_act
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        x = self.dense(hidden_states)  # (B, T, H)
        x = activation(self.hidden_act, x)
        return self.LayerNorm(x)  # (B, T, H)


class BertLMPredictionHead(nn.Module):
    """Masked-LM scores for every token: transform, then the (tied) embedding matrix, plus a bias."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        # The weight is replaced by the word-embedding matrix itself (see the model classes below);
        # the bias is a separate vector, stored in checkpoints as `cls.predictions.bias`.
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        x = self.transform(hidden_states)  # (B, T, H)
        # x W^T + b in one call (one GEMM that adds the bias as it writes): the (B, T, V) scores are the
        # largest tensor of pre-training, 500 MB at 32 x 128, and "+ self.bias" would make a second one.
        return F.linear(x, self.decoder.weight, self.bias)  # (B, T, H) @ (H, V) + (V,) -> (B, T, V)


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)

    def forward(self, sequence_output: torch.Tensor) -> torch.Tensor:
        return self.predictions(sequence_output)  # (B, T, V)


class BertOnlyNSPHead(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, pooled_output: torch.Tensor) -> torch.Tensor:
        return self.seq_relationship(pooled_output)  # (B, H) -> (B, 2); index 0 = "B follows A"


class BertPreTrainingHeads(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, sequence_output: torch.Tensor, pooled_output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.predictions(sequence_output), self.seq_relationship(pooled_output)  # (B, T, V), (B, 2)


def check_class_labels(name: str, labels: torch.Tensor, expected_shape: tuple[int, ...], num_classes: int) -> None:
    """Labels for a cross-entropy: integers of the given shape, each a class or -100 (not predicted)."""
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(labels).__name__}")
    if tuple(labels.shape) != tuple(expected_shape):
        raise ValueError(f"{name} has shape {tuple(labels.shape)}, expected {tuple(expected_shape)}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class indices (or -100), got dtype {labels.dtype}")
    if labels.numel() and can_read_values(labels):
        bad = (labels != IGNORE_INDEX) & ((labels < 0) | (labels >= num_classes))
        if bad.any():
            where = bad.nonzero()[0].tolist()
            raise ValueError(f"{name}{where} = {labels[tuple(where)].item()} is not a class in [0, {num_classes}) "
                             f"nor {IGNORE_INDEX} (not predicted)")


class BertForPreTraining(BertPreTrainedModel):
    """Both pre-training tasks at once: masked LM over every token and next-sentence prediction.
    With `labels` (B, T) and `next_sentence_label` (B,), the loss is the sum of the two losses.

    `masked_only=True` (with labels) runs the vocabulary projection only where a token was picked:
    the same loss from about a sixth of the work, since only 15% of the positions are predicted.
    prediction_logits is then (n_picked, V), the picked positions in row-major order.
    """

    unused_checkpoint_prefixes = ("classifier.",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config)
        self.init_weights(self.cls)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight  # tied: one tensor

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None, *,
                inputs_embeds: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                next_sentence_label: torch.Tensor | None = None, output_attentions: bool | None = None,
                output_hidden_states: bool | None = None, return_dict: bool | None = None,
                masked_only: bool = False) -> PreTrainingOutput | tuple:
        if (labels is None) != (next_sentence_label is None):
            raise ValueError("BertForPreTraining's loss needs both labels (masked LM) and next_sentence_label; "
                             "for one task alone use BertForMaskedLM or BertForNextSentencePrediction")
        if masked_only and labels is None:
            raise ValueError("masked_only=True needs labels: they say which positions are predicted")
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                        return_dict=True)
        sequence_output = out.last_hidden_state  # (B, T, H)
        if masked_only:
            B, T, H = sequence_output.shape
            check_class_labels("labels", labels, (B, T), self.config.vocab_size)
            picked = labels != IGNORE_INDEX  # (B, T)
            sequence_output, labels = sequence_output[picked][None], labels[picked][None]  # (1, n, H), (1, n)
        prediction_logits, seq_relationship_logits = self.cls(sequence_output, out.pooler_output)
        loss = None
        if labels is not None:
            B, T, V = prediction_logits.shape
            check_class_labels("labels", labels, (B, T), V)
            check_class_labels("next_sentence_label", next_sentence_label, (seq_relationship_logits.shape[0],), 2)
            masked_lm_loss = cross_entropy(prediction_logits.view(B * T, V), labels.view(B * T))
            next_sentence_loss = cross_entropy(seq_relationship_logits, next_sentence_label)
            loss = masked_lm_loss + next_sentence_loss
        if masked_only:
            prediction_logits = prediction_logits[0]  # (n_picked, V)
        result = PreTrainingOutput(loss, prediction_logits, seq_relationship_logits, out.hidden_states, out.attentions)
        return self.as_requested(result, return_dict)


class BertForMaskedLM(BertPreTrainedModel):
    """Fill in [MASK]: a score for every vocabulary entry at every position. With `labels` (B, T),
    holding the original id where a token was masked and -100 elsewhere, also the loss."""

    # Masked LM reads every token, not [CLS]: no pooler, as in Hugging Face's class.
    unused_checkpoint_prefixes = ("bert.pooler.", "cls.seq_relationship.", "classifier.")

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.init_weights(self.cls)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight  # tied: one tensor

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None, *,
                inputs_embeds: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> LogitsOutput | tuple:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                        return_dict=True)
        logits = self.cls(out.last_hidden_state)  # (B, T, V)
        loss = None
        if labels is not None:
            B, T, V = logits.shape
            check_class_labels("labels", labels, (B, T), V)
            loss = cross_entropy(logits.view(B * T, V), labels.view(B * T))  # over the masked positions only
        return self.as_requested(LogitsOutput(loss, logits, out.hidden_states, out.attentions), return_dict)


class BertForNextSentencePrediction(BertPreTrainedModel):
    """Does sentence B follow sentence A? logits[:, 0] says yes, logits[:, 1] says B is random.
    With `labels` (B,) of 0 (B follows A) or 1 (B is random), also the loss."""

    unused_checkpoint_prefixes = ("cls.predictions.", "classifier.")

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.cls = BertOnlyNSPHead(config)
        self.init_weights(self.cls)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None, *,
                inputs_embeds: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> LogitsOutput | tuple:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                        return_dict=True)
        logits = self.cls(out.pooler_output)  # (B, 2)
        loss = None
        if labels is not None:
            check_class_labels("labels", labels, (logits.shape[0],), 2)
            loss = cross_entropy(logits, labels)
        return self.as_requested(LogitsOutput(loss, logits, out.hidden_states, out.attentions), return_dict)


class BertForSequenceClassification(BertPreTrainedModel):
    """A classifier on the pooled [CLS] vector. With a (question, passage) pair as input and one
    label, this is a cross-encoder: its single logit scores how well the passage answers.

    With `labels`, the loss follows `config.problem_type`; when that is None it is decided as
    transformers decides: one label is a regression (mean squared error), integer labels pick one
    class each (cross-entropy), float labels of shape (B, L) are multi-label (binary cross-entropy).
    """

    unused_checkpoint_prefixes = ("cls.",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights(self.classifier)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None, *,
                inputs_embeds: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> LogitsOutput | tuple:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                        return_dict=True)
        logits = self.classifier(self.dropout(out.pooler_output))  # (B, H) -> (B, L)
        loss = None if labels is None else self.loss(logits, labels)
        return self.as_requested(LogitsOutput(loss, logits, out.hidden_states, out.attentions), return_dict)

    def problem_type(self, labels: torch.Tensor) -> str:
        """config.problem_type, or the one transformers infers from num_labels and the labels' dtype."""
        if self.config.problem_type is not None:
            return self.config.problem_type
        if self.config.num_labels == 1:
            return "regression"
        if labels.dtype in (torch.long, torch.int):
            return "single_label_classification"
        return "multi_label_classification"

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        B, L = logits.shape
        if not isinstance(labels, torch.Tensor):
            raise TypeError(f"labels must be a tensor, got {type(labels).__name__}")
        problem = self.problem_type(labels)
        if problem == "regression":
            if labels.dtype.is_complex or not (labels.dtype.is_floating_point or labels.dtype in (torch.long, torch.int)):
                raise TypeError(f"regression labels must be numbers, got dtype {labels.dtype}")
            if labels.numel() != B * L:
                raise ValueError(f"labels has shape {tuple(labels.shape)}, expected ({B},) or ({B}, {L}) for regression")
            if L == 1:  # transformers squeezes both sides: (B, 1) and (B,) compare as (B,)
                return mean_squared_error(logits.squeeze(), labels.squeeze().to(logits.dtype))
            return mean_squared_error(logits, labels.view(B, L).to(logits.dtype))
        if problem == "single_label_classification":
            check_class_labels("labels", labels.view(-1) if labels.dim() == 2 and labels.shape[1] == 1 else labels,
                               (B,), L)
            return cross_entropy(logits, labels.view(-1))
        # multi-label: one yes/no per class
        if tuple(labels.shape) != (B, L):
            raise ValueError(f"labels has shape {tuple(labels.shape)}, expected ({B}, {L}) for multi-label")
        if not labels.dtype.is_floating_point:
            raise TypeError(f"multi-label labels must be floats (0.0 or 1.0 per class), got dtype {labels.dtype}")
        return binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
