"""BERT, written out: embeddings, self-attention, feed-forward, pooler, and the masked-LM head. Read it
top to bottom; that is the order in which a forward pass runs. The other heads (pre-training,
next sentence, classifier) are in heads.py; the checks on the inputs, in checks.py.

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
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .checks import check_class_labels, check_inputs
from .config import BertConfig
from .losses import cross_entropy
from .outputs import BaseModelOutput, LogitsOutput, as_requested
from .pretrained import BertPreTrainedModel


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
    # q k^T, divided by sqrt(hs) so the logits' spread does not grow with the head size. Written as a
    # product with hs ** -0.5, as transformers does, so the two agree to the last bit.
    scores = (query @ key.transpose(-2, -1)) * head_size**-0.5  # (B, nh, T, hs) @ (B, nh, hs, T) -> (B, nh, T, T)
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
        """(B, T, H) -> (B, nh, T, hs): each head's slice of every token vector, heads first."""
        B, T, H = x.shape
        x = x.view(B, T, self.num_heads, self.head_size)  # (B, T, nh, hs)
        return x.transpose(1, 2)  # (B, nh, T, hs)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, nh, T, hs) -> (B, T, H): the heads side by side again, split_heads undone."""
        B, nh, T, hs = x.shape
        return x.transpose(1, 2).reshape(B, T, nh * hs)  # (B, T, nh, hs) -> (B, T, H)

    def forward(self, hidden_states: torch.Tensor, additive_mask: torch.Tensor
                ) -> tuple[torch.Tensor, AttentionSteps]:
        q = self.split_heads(self.query(hidden_states))  # (B, T, H) -> (B, nh, T, hs)
        k = self.split_heads(self.key(hidden_states))  # (B, nh, T, hs)
        v = self.split_heads(self.value(hidden_states))  # (B, nh, T, hs)
        steps = attention(q, k, v, additive_mask, self.dropout)
        return self.merge_heads(steps.context), steps  # (B, T, H), and every step by name


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
        if output_attentions is None:  # the caller did not say: the config decides, as in transformers
            output_attentions = self.config.output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
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
        return as_requested(out, return_dict, self.config)


# ---------------------------------------------------------------------------------------------
# The inputs, checked once (checks.py) and completed with their defaults. BertModel and the
# fast path (minibert/speed/fast.py) both start here.
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


# ---------------------------------------------------------------------------------------------
# The masked-LM head. Each head wraps a BertModel named `bert`, so its paths read
# "bert.encoder.layer.0..."; the other heads are in heads.py.
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
        # The weight is replaced by the word-embedding matrix itself (BertForMaskedLM below, heads.py's
        # BertForPreTraining);
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
        return as_requested(LogitsOutput(loss, logits, out.hidden_states, out.attentions), return_dict, self.config)
