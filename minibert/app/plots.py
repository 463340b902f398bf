"""Pictures of attention: one head, every head of a layer, or the attention paid to one token.

    >>> from minibert.app.pipelines import attention_map
    >>> tokens, attentions = attention_map(model, tokenizer, "He swung the bat.")   # (L, nh, T, T)
    >>> plot_attention(tokens, attentions[2, 0], "head.png", title="layer 2, head 0")
    PosixPath('head.png')
    >>> token_window(600, focus=300)                   # a long text is drawn 64 tokens at a time
    range(268, 332)

Each picture is drawn on its own matplotlib `Figure` (no pyplot state, so nothing is shared between
calls) and written as a PNG. Rows are the attending tokens (queries), columns the attended ones
(keys); colours are attention probabilities. A text longer than MAX_TOKENS tokens is drawn as a
window of them: the full picture of 512 tokens would be hundreds of megapixels and take minutes.
"""

from __future__ import annotations

import functools
import textwrap
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

from ..bert.files import write_atomically

MAX_TOKENS = 64  # the most tokens a picture shows along one axis
COLORBAR_LABEL = "attention probability"
# Fonts that draw Chinese, Japanese and Korean, in order of preference, used when installed.
CJK_FONTS = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK KR", "Source Han Sans",
             "Noto Sans JP", "Noto Sans SC", "Droid Sans Fallback", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "AR PL UMing CN", "IPAGothic", "IPAexGothic", "Arial Unicode MS")


def token_window(n: int, focus: int = 0, limit: int = MAX_TOKENS) -> range:
    """The positions to draw out of `n` tokens: all of them, or `limit` of them around `focus`.

        >>> token_window(12), token_window(600), token_window(600, focus=590)
        (range(0, 12), range(0, 64), range(536, 600))
    """
    if n <= limit:
        return range(n)
    start = min(max(focus - limit // 2, 0), n - limit)
    return range(start, start + limit)


# -- fonts ----------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _characters_in(font_path: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(font_path).get_charmap())


def _fonts_for(texts: list[str]) -> tuple[list[str], str]:
    """The font families that draw `texts` (matplotlib's default, then installed CJK fonts as
    needed), and the characters none of them has."""
    from matplotlib import font_manager

    default_path = font_manager.findfont(font_manager.FontProperties())
    families = [font_manager.get_font(default_path).family_name]
    characters = dict.fromkeys(c for c in "".join(texts) if not c.isspace())  # in order of appearance
    missing = [c for c in characters if ord(c) not in _characters_in(default_path)]
    if missing:
        installed = {font.name: font.fname for font in font_manager.fontManager.ttflist}
        for name in CJK_FONTS:
            if name in installed and any(ord(c) in _characters_in(installed[name]) for c in missing):
                families.append(name)
                missing = [c for c in missing if ord(c) not in _characters_in(installed[name])]
    return families, "".join(missing)


def font_note(texts: list[str]) -> str | None:
    """One line saying which characters no installed font can draw, or None when all can be drawn."""
    missing = _fonts_for(texts)[1]
    if not missing:
        return None
    shown = missing if len(missing) <= 12 else missing[:12] + "..."
    return (f"no installed font has the characters {shown}: they show as boxes in the picture "
            "(install a font that has them, e.g. Noto Sans CJK for Chinese, Japanese and Korean)")


@contextmanager
def _drawing(texts: list[str]):
    """Draw with fonts that have the characters of `texts`, without matplotlib's warning per missing
    glyph (font_note says it once). Fonts are looked up when a text is created, so the whole
    drawing runs inside this."""
    import matplotlib

    families, _ = _fonts_for(texts)
    with matplotlib.rc_context({"font.family": families}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        yield


# -- layout ---------------------------------------------------------------------------------------

def _wrap(title: str, width_inches: float, fontsize: float) -> str:
    """`title` broken into lines that fit a figure `width_inches` wide."""
    chars = max(20, int(width_inches * 72 / (0.6 * fontsize)))  # a character is about 0.6 em wide
    return "\n".join(textwrap.fill(line, chars) for line in title.splitlines())


def _window_title(title: str, window: range, n: int) -> str:
    if len(window) == n:
        return title
    return f"{title}\ntokens {window.start}..{window.stop - 1} of {n} (at most {MAX_TOKENS} are drawn)"


def _save(fig, path) -> Path:
    """Write the figure to `path` atomically: a full disk or Ctrl-C leaves the old picture, not half a
    new one. The format comes from the extension (the temporary file beside `path` has none)."""
    path = Path(path)
    file_format = path.suffix[1:].lower() or "png"
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100, format=file_format))
    return path


# -- the pictures ---------------------------------------------------------------------------------

def plot_attention(tokens: list[str], probs: torch.Tensor, path, title: str = "", highlight: str | None = None,
                   window: range | None = None) -> Path:
    """Write a heatmap PNG of one head's probabilities (T, T): rows attend (queries), columns are
    attended (keys). Rows of the token `highlight` get a red frame. Only the tokens in `window`
    are drawn (default: the first MAX_TOKENS). Returns the path written."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    window = window if window is not None else token_window(len(tokens))
    shown = tokens[window.start:window.stop]
    probs = probs[window.start:window.stop, window.start:window.stop]  # (W, W)
    n = len(shown)
    fontsize = 10 if n <= 24 else 8
    side = max(4.0, 1.5 + 0.3 * n)
    with _drawing(shown + [title]):
        fig = Figure(figsize=(side + 1.2, side), layout="constrained")
        ax = fig.add_subplot()
        image = ax.imshow(probs.numpy(), cmap="viridis", vmin=0.0, vmax=float(probs.max()))
        ax.set_xticks(range(n), shown, rotation=90, fontsize=fontsize)
        ax.set_yticks(range(n), shown, fontsize=fontsize)
        ax.set_xlabel("attended token (key)")
        ax.set_ylabel("attending token (query)")
        for i, token in enumerate(shown):
            if token == highlight:
                ax.add_patch(Rectangle((-0.5, i - 0.5), n, 1, fill=False, edgecolor="red", linewidth=2))
        ax.set_title(_wrap(_window_title(title, window, len(tokens)), side, 12))
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=COLORBAR_LABEL)
        return _save(fig, path)


def plot_attention_grid(tokens: list[str], layer_probs: torch.Tensor, path, title: str = "",
                        window: range | None = None) -> Path:
    """Every head of one layer side by side, on one colour scale: layer_probs is (nh, T, T)."""
    from matplotlib.figure import Figure

    window = window if window is not None else token_window(len(tokens))
    shown = tokens[window.start:window.stop]
    layer_probs = layer_probs[:, window.start:window.stop, window.start:window.stop]  # (nh, W, W)
    heads, n = layer_probs.shape[0], len(shown)
    cols = min(4, heads)
    rows = -(-heads // cols)  # ceiling division
    fontsize = 7 if n <= 24 else 5
    cell = max(2.5, 1.0 + 0.15 * n)
    with _drawing(shown + [title]):
        fig = Figure(figsize=(cols * cell + 1.0, rows * cell + 0.8), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False)
        for head, ax in enumerate(axes.flat):
            if head >= heads:
                ax.axis("off")
                continue
            image = ax.imshow(layer_probs[head].numpy(), cmap="viridis", vmin=0.0, vmax=1.0)
            ax.set_title(f"head {head}", fontsize=9)
            ax.set_xticks(range(n), shown, rotation=90, fontsize=fontsize)
            ax.set_yticks(range(n), shown, fontsize=fontsize)
        fig.suptitle(_wrap(_window_title(title, window, len(tokens)), cols * cell, 12))
        fig.colorbar(image, ax=axes, shrink=0.6, label=COLORBAR_LABEL)
        return _save(fig, path)


def plot_attention_to_token(tokens: list[str], attentions: torch.Tensor, target: int, path, title: str = "",
                            window: range | None = None) -> Path:
    """How much each token attends to tokens[target], layer by layer (mean over heads).

    attentions: (layers, nh, T, T). The picture is (layers, W): row l, column i is the attention
    token i pays to the target in layer l, for the tokens in `window` (default: MAX_TOKENS around
    the target).
    """
    from matplotlib.figure import Figure

    window = window if window is not None else token_window(len(tokens), focus=target)
    shown = tokens[window.start:window.stop]
    to_target = attentions[:, :, :, target].mean(dim=1)  # (layers, nh, T) -> (layers, T)
    to_target = to_target[:, window.start:window.stop]  # (layers, W)
    layers, n = to_target.shape
    width = max(5.0, 2.5 + 0.3 * n)
    with _drawing(shown + [title]):
        fig = Figure(figsize=(width, 2.0 + 0.4 * layers), layout="constrained")
        ax = fig.add_subplot()
        image = ax.imshow(to_target.numpy(), cmap="magma", aspect="auto")
        ax.set_xticks(range(n), shown, rotation=90, fontsize=10 if n <= 24 else 8)
        ax.set_yticks(range(layers), [f"layer {i}" for i in range(layers)])
        ax.set_xlabel(_wrap(f"attending token (attention paid to '{tokens[target]}', mean over heads)", width, 10))
        ax.set_title(_wrap(_window_title(title, window, len(tokens)), width, 12))
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=f"{COLORBAR_LABEL} (mean over heads)")
        return _save(fig, path)
