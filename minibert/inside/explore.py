"""Look at attention interactively: one self-contained HTML page of every layer and head.

    >>> page = minibert.explore(model, tokenizer, "He swung the bat.", path=tmp / "bat.html")
    >>> page.path.name, page.tokens
    ('bat.html', ['[CLS]', 'he', 'swung', 'the', 'bat', '.', '[SEP]'])
    >>> page.nbytes < 300_000          # 7 tokens on all-MiniLM-L6-v2: about 0.2 MB, numbers and code
    True

Open the file in a browser (no network needed), or leave `page` as the last line of a Jupyter cell
to see it inline. From the command line: `minibert attention "He swung the bat." --html bat.html`.

The page has five views:
    Head view    the tokens twice, queries on the left and keys on the right, joined by lines as
                 opaque as their attention probability, for one layer and the heads you pick.
                 Hover over, tab to or click a token to see only its lines.
    Model view   every layer and head as a small heatmap; click one to open it in the head view.
    Steps view   for one layer, head and query token, the numbers a debugger shows at a breakpoint
                 in `attention()` (minibert/bert/model.py): the query vector q, every key vector
                 k_j, the products q_d * k_j,d and their sum, the scaled score, the mask, the
                 softmax probability, and the context vector with the value vectors it mixes.
    Attribution  the input tokens as chips coloured by how much each moved the output (red up, blue
                 down): integrated gradients and gradient x input, from minibert.inside.attribution,
                 with the target, the output, the baseline's output and the completeness gap.
                 Models with a head only (masked LM or classifier): a bare BertModel has no output.
    Logit lens   masked-LM models only: the top words the masked-LM head reads at [MASK] from every
                 layer's output (minibert.inside.lens); the last row is the model's own prediction.

What the page holds, and how it is rounded. The numbers come from one forward pass run under
`minibert.trace` (minibert/inside/trace.py): `probs`, `scores`, `query`, `key`, `value` and
`context` of every layer, only at real tokens (padding is never shown). Each tensor is rounded to
the finest power of ten that lets it be stored as 16-bit integers (probabilities to 4 decimals;
all-MiniLM-L6-v2's vectors and scores to 3) and written as base64 inside the page, which says so in
its footer. The vectors dominate the size: 4 tensors of (layers, heads, T, head size) numbers, 2
bytes each plus a third for base64; for all-MiniLM-L6-v2 and 20 tokens that is about 0.5 MB of the
page's 0.68 MB (probs and scores add 0.15 MB, the code 35 kB).
The attribution and lens numbers are few (T per method, k per layer) and stored as
plain JSON numbers: attributions to 4 significant digits of the largest |value|, probabilities
to 4 decimals.
A text of more than MAX_TOKENS tokens is refused: the page grows with T squared, and 64 lines per
token are already more than an eye can follow.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..bert.heads import BertForPreTraining, BertForSequenceClassification
from ..bert.model import BertForMaskedLM, BertModel
from ..bert.files import write_atomically
from ..bert.pretrained import encoder_of
from .trace import trace

MAX_TOKENS = 64  # the most tokens a page shows (as the PNG pictures of minibert/app/plots.py)
TEMPLATE = Path(__file__).with_name("explore.html")  # the page's HTML, CSS and JavaScript
DEFAULT_PATH = Path("out") / "explore.html"  # beside the lesson's pictures
STORED = ("probs", "scores", "query", "key", "value", "context")  # what the page holds, from the trace
INT16_MAX = 32767
MASKED_LM_CLASSES = (BertForMaskedLM, BertForPreTraining)  # the models with a masked-LM head, for the lens
ATTRIBUTED_CLASSES = (*MASKED_LM_CLASSES, BertForSequenceClassification)  # the models attribute() explains
ATTRIBUTION_STEPS = 50  # integrated gradients' default number of points, as attribute()'s
LENS_K = 5  # words per layer in the logit-lens view
QUADRATURE_NAMES = {"gausslegendre": "Gauss-Legendre", "riemann_left": "left Riemann sum",  # attribute()'s methods
                    "riemann_right": "right Riemann sum", "riemann_middle": "midpoint Riemann sum",
                    "riemann_trapezoid": "trapezoid rule"}


class TooManyTokensError(ValueError):
    """The text has more tokens than a page shows (MAX_TOKENS, or the max_tokens asked for)."""


@dataclass
class Explorer:
    """The page explore() made: `html` (the whole file), `tokens` (as the page shows them) and
    `path` (where it was written). In Jupyter it shows itself inline."""

    html: str
    tokens: list[str]
    path: Path | None = None

    @property
    def nbytes(self) -> int:
        return len(self.html.encode("utf-8"))

    def save(self, path: str | Path) -> Path:
        """Write the page to `path` (its folder must exist) and return the path. Atomically: a full
        disk or Ctrl-C leaves the old page, not half a new one; a read-only file is refused."""
        path = Path(path)
        write_atomically(path, self.html.encode("utf-8"))
        self.path = path
        return path

    def _repr_html_(self) -> str:
        # An iframe with the page as its srcdoc: its own document, so its script and styles cannot
        # touch the notebook's, and the notebook needs no file to be served.
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" title="minibert attention explorer" '
                'style="width: 100%; height: 780px; border: 1px solid #ccc"></iframe>')

    def __repr__(self) -> str:
        return f"Explorer(path={str(self.path)!r}, tokens={len(self.tokens)}, nbytes={self.nbytes})"


def pack(x: torch.Tensor) -> dict:
    """`x` rounded to the finest power-of-ten step whose integers fit 16 bits, as base64 of
    little-endian int16. The page reads value = integer * 10**-decimals.

        >>> packed = pack(torch.tensor([0.25, -1.5]))
        >>> packed["decimals"], packed["shape"]
        (4, [2])
        >>> raw = base64.b64decode(packed["data"])
        >>> [int.from_bytes(raw[i:i + 2], "little", signed=True) for i in (0, 2)]   # in steps of 0.0001
        [2500, -15000]
    """
    largest = x.abs().max().item() if x.numel() else 0.0
    decimals = 4 if largest == 0 else min(4, math.floor(math.log10(INT16_MAX / largest)))
    integers = torch.round(x.double() * 10.0**decimals).to(torch.int16)  # |integers| <= INT16_MAX
    data = integers.numpy().astype("<i2").tobytes()
    return {"decimals": decimals, "shape": list(x.shape), "data": base64.b64encode(data).decode("ascii")}


def _rounding_note(tensors: dict[str, dict]) -> str:
    d = {name: packed["decimals"] for name, packed in tensors.items()}
    vectors = ", ".join(f"{name} to {d[name]}" for name in ("query", "key", "value", "context"))
    return (f"How the numbers are rounded: before they are stored in this page, each tensor is rounded to the finest "
            f"power of ten that lets it be kept as 16-bit integers, and shown at that precision: probs to {d['probs']} "
            f"decimals, scores to {d['scores']}, {vectors}. The products and their sums (Σ_d) in the steps view are "
            f"computed here from the rounded q and k, so Σ_d / sqrt(head size) can differ from the recorded score "
            f"in the last digits; masked_scores = scores + additive_mask.")


def _model_name(model) -> str:
    """The checkpoint a model was loaded from, for the page's heading: a Hub repo id, or the folder."""
    report = getattr(model, "load_report", None)
    if report is None or not report.files:
        return "a BERT model"
    folder = Path(report.files[0]).parent
    for part in folder.parts:
        if part.startswith("models--"):  # the Hugging Face cache: models--owner--name/snapshots/...
            return part.removeprefix("models--").replace("--", "/")
    return "/".join(folder.parts[-2:])


def _initial_heads(head, heads: int) -> list[int]:
    if head == "all":
        return list(range(heads))
    if not 0 <= head < heads:
        raise ValueError(f"head {head} is out of range: this model has heads 0..{heads - 1}")
    return [head]


def _round_to_largest(values: list[float], digits: int = 4) -> dict:
    """`values` rounded to `digits` significant digits of the largest |value|, for the page's JSON.

        >>> _round_to_largest([0.123456, -2.5])
        {'decimals': 3, 'values': [0.123, -2.5]}
    """
    largest = max((abs(v) for v in values), default=0.0)
    decimals = 4 if largest == 0 else max(0, digits - 1 - math.floor(math.log10(largest)))
    return {"decimals": decimals, "values": [round(v, decimals) for v in values]}


def _significant(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits}g}")


def _no_mask_note(tokens: list[str], mask_token: str) -> str:
    return (f"Put {mask_token} in the text: there is no {mask_token} among its tokens ({' '.join(tokens)}), "
            "so there is no masked word to look at")


def _attribution_data(model, tokenizer, text, pair, tokens, target, steps) -> dict:
    """What the attribution view shows, or {"absent": why} when there is nothing to attribute."""
    from .attribution import attribute  # written beside this file; imported when a page needs it

    if isinstance(model, BertModel):
        return {"absent": "There is no output to attribute: a bare BertModel has no head, only hidden states. "
                          "Attribution needs a model with an output: BertForMaskedLM or BertForPreTraining (the "
                          "logit of a word at [MASK]) or BertForSequenceClassification (the logit of a label), e.g. "
                          "minibert.BertForMaskedLM.from_pretrained(...) on a checkpoint with a masked-LM head."}
    if isinstance(model, MASKED_LM_CLASSES) and target is None and tokenizer.mask_token not in tokens:
        return {"absent": _no_mask_note(tokens, tokenizer.mask_token)}
    if not isinstance(model, ATTRIBUTED_CLASSES):  # token classification, QA, ...: no one number to explain
        return {"absent": f"There is no output to attribute here: attribution explains one number, and "
                          f"{type(model).__name__} gives one per token or per span. The heads it reads: "
                          "BertForMaskedLM or BertForPreTraining (the logit of a word at [MASK]) and "
                          "BertForSequenceClassification (the logit of a label)."}
    with torch.enable_grad():  # integrated gradients needs the gradients build_page's forward pass does not
        found = attribute(model, tokenizer, text, pair, target=target, steps=steps)
    return {
        "tokens": found.tokens,
        "target": found.target,
        "steps": found.steps,
        "method": QUADRATURE_NAMES.get(found.method, found.method),
        "integrated_gradients": _round_to_largest(found.integrated_gradients),
        "gradient_x_input": _round_to_largest(found.gradient_x_input),
        "output": round(found.output, 4),
        "baseline_output": round(found.baseline_output, 4),
        "completeness_gap": _significant(found.completeness_gap),
    }


def _lens_data(model, tokenizer, text, pair, tokens, k) -> dict:
    """What the logit-lens view shows, or {"absent": why}."""
    from .lens import logit_lens

    if not isinstance(model, MASKED_LM_CLASSES):
        return {"absent": f"No logit lens: {type(model).__name__} has no masked-LM head, and the lens reads every "
                          "layer's output through that head. Load a checkpoint with one as BertForMaskedLM "
                          "(or BertForPreTraining), and put [MASK] in the text."}
    if tokenizer.mask_token not in tokens:
        return {"absent": _no_mask_note(tokens, tokenizer.mask_token)}
    found = logit_lens(model, tokenizer, text, pair, k=k)
    return {
        "position": found.position,
        "layers": found.layers,
        "top_words": found.top_words,
        "top_probs": [[round(p, 4) for p in probs] for probs in found.top_probs],
    }


def build_page(model, tokenizer, text: str, pair: str | None = None, *, layer: int = 0, head: int | str = 0,
               token: str | None = None, name: str | None = None, max_tokens: int = MAX_TOKENS,
               target=None, steps: int = ATTRIBUTION_STEPS, k: int = LENS_K) -> Explorer:
    """The page for `text` (and `pair`), not yet written: see explore()."""
    encoder = encoder_of(model)
    if not isinstance(encoder, BertModel):
        raise TypeError(f"explore needs minibert's BertModel or a model with one as .bert, not {type(model).__name__}: "
                        "its attention() records the steps (a FastBertModel has none: pass the BertModel it was built from)")
    count = tokenizer.count_tokens(text, pair)
    if count > max_tokens:
        raise TooManyTokensError(f"the text is {count} tokens; the explorer shows at most {max_tokens} "
                                 "(a page holds every layer and head, and grows with the square of the tokens): "
                                 "shorten it, or look at one head with `minibert attention TEXT -o FILE.png`")
    config = encoder.config
    layers, heads = config.num_hidden_layers, config.num_attention_heads
    if not 0 <= layer < layers:
        raise ValueError(f"layer {layer} is out of range: this model has layers 0..{layers - 1}")
    initial_heads = _initial_heads(head, heads)

    batch = tokenizer(text, pair)
    was_training = model.training
    model.eval()  # dropout off, so that the page shows what inference computes
    try:
        with torch.no_grad(), trace(encoder) as t:
            out = encoder(**batch, output_attentions=True)
        page_tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
        attribution = _attribution_data(model, tokenizer, text, pair, page_tokens, target, steps)
        lens = _lens_data(model, tokenizer, text, pair, page_tokens, k)
    finally:
        model.train(was_training)
    real = batch["attention_mask"][0].bool()  # (T,): padding is never shown (one text has none)
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0, real])
    probs = torch.stack(out.attentions)[:, 0][:, :, real][:, :, :, real]  # (L, nh, T, T)
    steps = {step: torch.stack([t[f"encoder.layer.{i}.attention.{step}"][0] for i in range(layers)])  # (L, nh, T, ...)
             for step in STORED if step != "probs"}
    tensors = {"probs": pack(probs), "scores": pack(steps["scores"][:, :, real][:, :, :, real])}  # (L, nh, T, T)
    for vectors in ("query", "key", "value", "context"):
        tensors[vectors] = pack(steps[vectors][:, :, real])  # (L, nh, T, hs)
    masked = t["encoder.layer.0.attention.masked_scores"][0, 0, 0]  # (T,): the mask is the same for every row
    mask = (masked - t["encoder.layer.0.attention.scores"][0, 0, 0])[real]  # 0 at every real token

    if token is not None and token not in tokens:
        raise ValueError(f"the token {token!r} is not among the tokens {' '.join(tokens)}")
    query = tokens.index(token) if token is not None else (1 if len(tokens) > 2 else 0)
    description = (f"{type(model).__name__}: {layers} layers × {heads} heads, hidden size {config.hidden_size}, "
                   f"head size {config.hidden_size // heads}")
    data = {
        "model": name or _model_name(model),
        "description": description,
        "text": text,
        "pair": pair,
        "tokens": tokens,
        "segments": batch["token_type_ids"][0, real].tolist(),  # 0: segment A, 1: segment B
        "layers": layers,
        "heads": heads,
        "head_size": config.hidden_size // heads,
        "mask": mask.tolist(),
        "initial": {"layer": layer, "heads": initial_heads, "query": query,
                    "focus": None if token is None else {"side": "query", "index": query, "locked": True}},
        "rounding": _rounding_note(tensors),
        "tensors": tensors,
        "attribution": attribution,
        "lens": lens,
    }
    # "<" as \u003c keeps a token such as "</script>" from ending the script element early.
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    title = html.escape(f"minibert attention: {text if pair is None else text + ' | ' + pair}"[:120])
    # Both slots are filled in one pass over the template, so a text that itself holds "__DATA__" or
    # "__TITLE__" is never taken for a slot (two chained replaces put the data in the <title> then).
    slots = {"__TITLE__": title, "__DATA__": payload}
    page = re.sub("__TITLE__|__DATA__", lambda slot: slots[slot.group()], TEMPLATE.read_text(encoding="utf-8"))
    return Explorer(page, tokens)


def explore(model, tokenizer, text: str, pair: str | None = None, path: str | Path | None = None, *,
            layer: int = 0, head: int | str = 0, token: str | None = None, name: str | None = None,
            max_tokens: int = MAX_TOKENS, target=None, steps: int = ATTRIBUTION_STEPS, k: int = LENS_K) -> Explorer:
    """Write one self-contained HTML page to look at the attention of `model` on `text` (and `pair`).

    Args:
        model: minibert's BertModel, or a model with a head (its encoder, `model.bert`, is used).
        tokenizer: the checkpoint's Tokenizer.
        text, pair: the input; a pair is read as [CLS] A [SEP] B [SEP], and the page tells the two
            segments apart by colour.
        path: where to write the page (default: out/explore.html, beside the lesson's pictures).
        layer, head: what the page opens on; head may be "all". Layers and heads count from 0.
        token: a token (as the tokenizer writes it, e.g. "bat") whose lines the head view opens on,
            and the query token of the steps view.
        name: the model's name, for the page's heading.
        max_tokens: the most tokens a page shows.
        target: what the attribution view explains, as attribute() takes it: for a masked-LM model a
            word, or (position, word) (default: the top word at the first [MASK]); for a classifier a
            label index (default: the predicted label).
        steps: the points of integrated gradients' Gauss-Legendre rule.
        k: the words per layer in the logit-lens view.

    Returns:
        An Explorer: `.path`, `.html`, `.tokens`, `.nbytes`, `.save(path)`; Jupyter shows it inline.

    Raises:
        TooManyTokensError: the text has more than `max_tokens` tokens.
        ValueError: `layer`, `head` or `token` is not in the model or the text.
        TypeError: the model is not minibert's readable BertModel (or a model with one as .bert).
    """
    page = build_page(model, tokenizer, text, pair, layer=layer, head=head, token=token, name=name,
                      max_tokens=max_tokens, target=target, steps=steps, k=k)
    path = Path(path) if path is not None else DEFAULT_PATH
    if path == DEFAULT_PATH:
        path.parent.mkdir(parents=True, exist_ok=True)
    page.save(path)
    return page
