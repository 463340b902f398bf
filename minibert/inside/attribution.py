"""Attribution: how much each input token's word vector contributed to one output number.

    a = attribute(model, tokenizer, "The capital of France is [MASK].", target="paris")   # a BertForMaskedLM
    print(a.format())       # a number per token by each method; integrated gradients sum to output - baseline

Two methods, both over the word embeddings (the `hook_embed` activation: the rows of the embedding table
the input picks, before positions, segments and LayerNorm are added):

    gradient x input        d output / d x  times  x, summed over the hidden size. One backward pass;
                            exact only for a linear model.
    integrated gradients    (x - x') times the average gradient along the straight line from a baseline x'
                            to x, the average taken by a quadrature rule over `steps` points
                            (Sundararajan et al. 2017). The attributions add up to output(x) - output(x'),
                            up to the quadrature's error: that gap is reported, as `completeness_gap`.

The baseline x' is the input with every token but [CLS] and [SEP] replaced by [PAD], the choice of captum's
BERT tutorials. The output is a logit, not a probability: the masked LM's score for a word at a position,
or a classifier's (or cross-encoder's) score for a label. The rule and its points are captum's: Gauss-Legendre
by default (`method="gausslegendre"`), or Riemann sums ("riemann_left", "_right", "_middle", "_trapezoid").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..bert.heads import BertForPreTraining, BertForSequenceClassification
from ..bert.model import BertForMaskedLM
from .hooks import evaluating, run_with_hooks
from .lens import mask_position, token_position, word_index

METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


def quadrature(method: str, steps: int) -> tuple[list[float], list[float]]:
    """The points alpha in [0, 1] and their weights for integrating from 0 to 1, by `method`.

        >>> alphas, weights = quadrature("riemann_trapezoid", 3)
        >>> alphas, weights
        ([0.0, 0.5, 1.0], [0.16666666666666666, 0.3333333333333333, 0.16666666666666666])
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < (1 if method == "gausslegendre" else 2):
        raise ValueError(f"steps must be an integer >= {1 if method == 'gausslegendre' else 2} for {method}, not {steps!r}")
    if method == "gausslegendre":
        # Legendre's nodes and weights are for [-1, 1]: moved to [0, 1], the weights halve.
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (0.5 * (1 + nodes)).tolist(), (0.5 * weights).tolist()
    kind = method.removeprefix("riemann_")
    n = steps
    alphas = {"left": torch.linspace(0, 1 - 1 / n, n), "right": torch.linspace(1 / n, 1, n),
              "middle": torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n), "trapezoid": torch.linspace(0, 1, n)}[kind]
    weights = [1 / n] * n
    if kind == "trapezoid":  # the two ends count half
        weights[0] /= 2
        weights[-1] /= 2
    return alphas.tolist(), weights


def output_of(model, target, batch: dict | None = None):
    """A function from the model's output to the attributed number, one per row (B,), and a description.
    The target is checked against the model (and, given the batch, its length) before anything runs."""
    if isinstance(model, (BertForMaskedLM, BertForPreTraining)):
        T, V = (batch["input_ids"].shape[1] if batch is not None else None), model.config.vocab_size
        if not (isinstance(target, tuple) and len(target) == 2 and all(_is_int(x) for x in target)):
            raise TypeError(f"for a masked LM the target is (position, word id), two integers, not {target!r}")
        position, word_id = target
        if T is not None and not 0 <= position < T:
            raise ValueError(f"the target's position {position} is outside the input's {T} tokens (0..{T - 1})")
        if not 0 <= word_id < V:
            raise ValueError(f"the target's word id {word_id} is outside the vocabulary (0..{V - 1})")
        field = "logits" if isinstance(model, BertForMaskedLM) else "prediction_logits"
        return lambda out: getattr(out, field)[:, position, word_id], f"the logit of id {word_id} at position {position}"
    if isinstance(model, BertForSequenceClassification):
        labels = model.config.num_labels
        if not (_is_int(target) and 0 <= target < labels):
            raise ValueError(f"the target is a label index in 0..{labels - 1}, not {target!r}")
        return lambda out: out.logits[:, target], f"the logit of label {target}"
    raise TypeError(f"attribution needs a model with an output to attribute: BertForMaskedLM, BertForPreTraining or "
                    f"BertForSequenceClassification (a cross-encoder), not {type(model).__name__}")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _repeat(batch: dict, times: int) -> dict:
    return {name: tensor.repeat(times, *([1] * (tensor.dim() - 1))) for name, tensor in batch.items()}


def _word_vectors(model, batch: dict) -> torch.Tensor:
    return model.bert.embeddings.word_embeddings(batch["input_ids"]).detach()  # (B, T, H)


def _forward_with(model, batch: dict, vectors: torch.Tensor, output) -> torch.Tensor:
    """The attributed number, with `vectors` (N, T, H) in place of the word embeddings of `batch` (N rows)."""
    out = run_with_hooks(model, batch, [("hook_embed", lambda activation, hook: vectors)])
    return output(out)  # (N,)


@dataclass
class Attributions:
    """attributions: (B, T, H) over the word vectors; per_token: (B, T), their sum over H. For integrated gradients,
    also the output at the input and at the baseline, and the completeness gap: per_token.sum(-1) - (output - baseline)."""

    attributions: torch.Tensor
    per_token: torch.Tensor
    output: torch.Tensor  # (B,)
    baseline_output: torch.Tensor | None = None
    completeness_gap: torch.Tensor | None = None


def gradient_x_input(model, batch: dict, target) -> Attributions:
    """The gradient of the target output with respect to the word vectors, times the word vectors."""
    output, _ = output_of(model, target, batch)
    with evaluating(model), torch.enable_grad():  # gradients, even when called under torch.no_grad()
        vectors = _word_vectors(model, batch).requires_grad_()
        value = _forward_with(model, batch, vectors, output)  # (B,)
        (grads,) = torch.autograd.grad(value.sum(), vectors)  # rows are independent: the sum's gradient is each row's
    attributions = grads * vectors.detach()
    return Attributions(attributions, attributions.sum(-1), value.detach())


def integrated_gradients(model, batch: dict, target, baseline_ids: torch.Tensor, *, steps: int = 50,
                         method: str = "gausslegendre") -> Attributions:
    """Integrated gradients over the word vectors, from those of `baseline_ids` (B, T) to those of the input.

    The `steps` interpolated inputs run as one batch of steps * B rows.
    """
    output, _ = output_of(model, target, batch)
    alphas, weights = quadrature(method, steps)
    if baseline_ids.shape != batch["input_ids"].shape:
        raise ValueError(f"baseline_ids has shape {tuple(baseline_ids.shape)}; the input_ids have "
                         f"{tuple(batch['input_ids'].shape)}")
    with evaluating(model), torch.enable_grad():  # gradients, even when called under torch.no_grad()
        x = _word_vectors(model, batch)  # (B, T, H)
        x0 = _word_vectors(model, {"input_ids": baseline_ids})
        B = x.shape[0]
        path = torch.cat([x0 + alpha * (x - x0) for alpha in alphas]).requires_grad_()  # (steps * B, T, H)
        value = _forward_with(model, _repeat(batch, len(alphas)), path, output)  # (steps * B,)
        (grads,) = torch.autograd.grad(value.sum(), path)
        weighted = grads.view(len(alphas), B, *x.shape[1:]) * torch.tensor(weights).view(-1, 1, 1, 1)
        attributions = weighted.sum(0) * (x - x0)  # (B, T, H)
        with torch.no_grad():
            at_input = _forward_with(model, batch, x, output)
            at_baseline = _forward_with(model, batch, x0, output)
    per_token = attributions.sum(-1)
    gap = per_token.sum(-1) - (at_input - at_baseline)
    return Attributions(attributions, per_token, at_input, at_baseline, gap)


def pad_baseline(tokenizer, input_ids: torch.Tensor) -> torch.Tensor:
    """The input with every token but [CLS] and [SEP] replaced by [PAD]."""
    keep = torch.isin(input_ids, torch.tensor([tokenizer.backend.token_to_id("[CLS]"),
                                               tokenizer.backend.token_to_id("[SEP]")]))
    return torch.where(keep, input_ids, torch.full_like(input_ids, tokenizer.pad_id))


@dataclass
class TokenAttribution:
    """attribute()'s answer for one text: a number per token by each method, and what they explain."""

    tokens: list[str]
    target: str
    integrated_gradients: list[float]
    gradient_x_input: list[float]
    steps: int
    method: str
    output: float
    baseline_output: float
    completeness_gap: float

    def format(self) -> str:
        width = max(len(token) for token in self.tokens)
        lines = [f"attributions to {self.target}", f"{'token':<{width}}  integrated gradients  gradient x input"]
        for token, ig, gx in zip(self.tokens, self.integrated_gradients, self.gradient_x_input):
            lines.append(f"{token:<{width}}  {ig:>20.4f}  {gx:>16.4f}")
        lines.append(f"output {self.output:.4f}, at the baseline {self.baseline_output:.4f}: integrated gradients sum to "
                     f"{sum(self.integrated_gradients):.4f}, a completeness gap of {self.completeness_gap:.2e} "
                     f"({self.steps} steps, {self.method})")
        return "\n".join(lines)


def attribute(model, tokenizer, text: str, pair: str | None = None, *, target=None, steps: int = 50,
              method: str = "gausslegendre") -> TokenAttribution:
    """Both methods on one text, with the [PAD] baseline.

    target: for a masked LM, a word (at the first [MASK]) or (position, word), the word as text ("paris") or as
    its id; default, the top word at the first [MASK]. For a classifier or cross-encoder, a label index; default, the predicted label (0 for a
    one-logit cross-encoder).
    """
    batch = tokenizer(text, pair)
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    if isinstance(model, (BertForMaskedLM, BertForPreTraining)):
        position, word = target if isinstance(target, tuple) else (None, target)
        position = mask_position(tokenizer, batch, text) if position is None else token_position(position, tokens, text)
        if word is None:
            with torch.no_grad(), evaluating(model):
                out = model(**batch)
            word_id = int(getattr(out, "logits", getattr(out, "prediction_logits", None))[0, position].argmax())
        else:
            word_id = word_index(tokenizer, word)
        word = tokenizer.backend.id_to_token(word_id)
        resolved, described = (position, word_id), f"the logit of {word!r} at {tokens[position]} (position {position})"
    else:
        output_of(model, 0 if target is None else target)  # the model's kind and the label are checked before it runs
        if target is None:
            with torch.no_grad(), evaluating(model):
                logits = model(**batch).logits[0]
            target = int(logits.argmax())
        resolved, described = target, f"the logit of label {target}"
    ig = integrated_gradients(model, batch, resolved, pad_baseline(tokenizer, batch["input_ids"]), steps=steps,
                              method=method)
    gx = gradient_x_input(model, batch, resolved)
    return TokenAttribution(tokens, described, ig.per_token[0].tolist(), gx.per_token[0].tolist(), steps, method,
                            ig.output[0].item(), ig.baseline_output[0].item(), ig.completeness_gap[0].item())
