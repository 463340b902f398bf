"""The logit lens for the masked LM: what the model would guess for a [MASK] if it stopped after each layer.

    lens = logit_lens(model, tokenizer, "The capital of France is [MASK].", word="paris")   # a BertForMaskedLM
    print(lens.format())        # one row per layer: the top words at the [MASK], and where "paris" ranks

The masked-LM head (transform, then the tied word-embedding matrix, then softmax) is applied to the output
of the embeddings and of every layer: hidden_states[0], ..., hidden_states[L]. The last row is the model's
own prediction, the same numbers as its logits. BERT normalises after every sub-layer (post-LN), so each
layer's output is already what the head was trained to read; in a pre-LN model (GPT-2) the lens has to
apply the final LayerNorm first. The earlier rows are a probe, not a prediction: the head never saw them
in training, and early layers often give near-uniform or copy-the-input guesses (nostalgebraist 2020,
"interpreting GPT: the logit lens").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..bert.heads import BertForPreTraining
from ..bert.model import BertForMaskedLM
from .hooks import evaluating


@dataclass
class LogitLens:
    """What logit_lens found: for each layer, the top words at `position` and their probabilities."""

    tokens: list[str]
    position: int
    layers: list[str]  # "embeddings", "layer 0", ..., "layer L-1"
    top_words: list[list[str]]
    top_probs: list[list[float]]
    logits: torch.Tensor  # (L + 1, V): the head's scores at `position` from each layer's output
    word: str | None = None
    word_probs: list[float] | None = None
    word_ranks: list[int] | None = None  # 1 = the top word

    def format(self) -> str:
        """A text table, one row per layer."""
        width = max(len(name) for name in self.layers)
        head = f"{'':<{width}}  top words at {self.tokens[self.position]!r} (position {self.position})"
        if self.word is not None:
            head += f"  |  {self.word!r}: probability, rank"
        lines = [head]
        for i, name in enumerate(self.layers):
            words = "  ".join(f"{w} {p:.3f}" for w, p in zip(self.top_words[i], self.top_probs[i]))
            line = f"{name:<{width}}  {words}"
            if self.word is not None:
                line += f"  |  {self.word_probs[i]:.4f}, {self.word_ranks[i]}"
            lines.append(line)
        return "\n".join(lines)


def mlm_head(model):
    """The masked-LM head of `model` (BertForMaskedLM or BertForPreTraining), or TypeError saying why not."""
    if not isinstance(model, (BertForMaskedLM, BertForPreTraining)):
        raise TypeError(f"the logit lens needs a masked-LM head: a BertForMaskedLM or BertForPreTraining, "
                        f"not {type(model).__name__}")
    return model.cls.predictions  # (B, T, H) -> (B, T, V)


def word_index(tokenizer, word) -> int:
    """The vocabulary id of `word`, given as an id or as text the tokenizer makes one token of ("Paris" -> "paris")."""
    vocab = tokenizer.vocab_size
    if isinstance(word, int) and not isinstance(word, bool):
        if not 0 <= word < vocab:
            raise ValueError(f"word id {word} is outside the vocabulary (0..{vocab - 1})")
        return word
    if not isinstance(word, str):
        raise TypeError(f"a word is text or a vocabulary id, not {word!r}")
    pieces = tokenizer.tokenize(word)
    if len(pieces) != 1:
        raise ValueError(f"{word!r} is not one token of the vocabulary: the tokenizer makes {pieces} of it")
    return tokenizer.backend.token_to_id(pieces[0])


def token_position(position, tokens: list[str], text: str) -> int:
    """`position` as an index into `tokens` (negative counts from the end, as in Python), or ValueError."""
    if not (isinstance(position, int) and not isinstance(position, bool) and -len(tokens) <= position < len(tokens)):
        raise ValueError(f"position {position!r} is outside the {len(tokens)} tokens of {text!r}")
    return position % len(tokens)


def mask_position(tokenizer, batch: dict, text: str) -> int:
    """The first [MASK] of row 0, or ValueError naming the text."""
    positions = (batch["input_ids"][0] == tokenizer.mask_id).nonzero().flatten().tolist()
    if not positions:
        raise ValueError(f"no {tokenizer.mask_token} in {text!r}: write {tokenizer.mask_token} where a word is hidden, "
                         "or pass position=")
    return positions[0]


@torch.no_grad()
def logit_lens(model, tokenizer, text: str, pair: str | None = None, *, position: int | None = None, k: int = 5,
               word: str | None = None) -> LogitLens:
    """The top `k` words at `position` (default: the first [MASK]) from the output of each layer.

    With `word` (one token of the vocabulary, as text such as "Paris" or as its id), also its probability and
    rank at every layer. A negative position counts from the end, as in Python.
    """
    head = mlm_head(model)
    vocab = model.config.vocab_size
    if not 1 <= k <= vocab:
        raise ValueError(f"k must be between 1 and {vocab} (the vocabulary size), not {k}")
    word_id = None if word is None else word_index(tokenizer, word)
    batch = tokenizer(text, pair)
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    position = mask_position(tokenizer, batch, text) if position is None else token_position(position, tokens, text)

    with evaluating(model):
        out = model(**batch, output_hidden_states=True)
    # The head on each layer's whole (1, T, H) output, as the model runs it on the last: the same shapes, so the
    # last row is the model's logits bit for bit. Then the row at `position`: (L + 1, V).
    logits = torch.stack([head(hidden[:1])[0, position] for hidden in out.hidden_states])
    probs = torch.softmax(logits, dim=-1)
    top = torch.topk(probs, k, dim=-1)
    layers = ["embeddings", *(f"layer {i}" for i in range(len(logits) - 1))]
    lens = LogitLens(tokens, position, layers, [tokenizer.convert_ids_to_tokens(ids) for ids in top.indices],
                     top.values.tolist(), logits)
    if word_id is not None:
        lens.word = tokenizer.backend.id_to_token(word_id)
        lens.word_probs = probs[:, word_id].tolist()
        lens.word_ranks = (probs > probs[:, word_id:word_id + 1]).sum(dim=-1).add(1).tolist()
    return lens
