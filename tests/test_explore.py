"""minibert.explore: the HTML page's numbers against the model, and the page itself in a real browser.

The numbers are checked twice: in Python, by decoding what the page stores, and in headless
Chromium (Debian's /usr/bin/chromium, driven by Playwright), by reading what each view shows.
References: minibert's own output_attentions and trace, and transformers' eager BertModel. The
attribution and logit-lens views are held to what minibert.inside.attribution and .lens return, and
the lens's last row (the model's own prediction) to transformers' BertForMaskedLM.

`make test` installs Chromium when it is missing and it runs as root (the Makefile's `browser`
target). Elsewhere the browser tests are skipped with one line that says why, except under
CI=true, where they fail instead. Screenshots of the five views go to a temporary folder, or to
the folder named by MINIBERT_SCREENSHOTS.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import minibert
from minibert.app.cli import main as cli_main
from minibert.inside.explore import MAX_TOKENS, TooManyTokensError, build_page

CHROMIUM = Path("/usr/bin/chromium")
# Flags known to work here: no GPU, no sandbox (root), and none of Chromium's own background traffic.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TEXT_20 = "He swung the bat and hit a home run, then the crowd cheered loudly for him."  # 20 tokens
PAIR = ("The man went to the store.", "He bought a gallon of milk.")
MLM_TEXT = "the capital of france is [MASK] ."  # the lesson's words: the random checkpoints' vocabulary
STEPS = 16  # integrated gradients' points: plenty for a 2-layer model of width 32


# -- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return minibert.BertModel.from_pretrained(minilm_dir), minibert.Tokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def page_20(minilm, tmp_path_factory):
    model, tokenizer = minilm
    return minibert.explore(model, tokenizer, TEXT_20, path=tmp_path_factory.mktemp("explore") / "bat.html")


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = os.environ.get("MINIBERT_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path_factory.mktemp("explorer-screenshots")


@pytest.fixture(scope="module")
def mlm(tmp_path_factory):
    """A random BertForMaskedLM in Hugging Face's layout (vocab.txt of the lesson's words): folder, model, tokenizer."""
    from hf_checkpoints import save_lesson_checkpoint

    folder = save_lesson_checkpoint("BertForMaskedLM", tmp_path_factory.mktemp("mlm") / "mlm")
    return folder, minibert.BertForMaskedLM.from_pretrained(folder), minibert.Tokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def mlm_page(mlm, tmp_path_factory):
    _, model, tokenizer = mlm
    return minibert.explore(model, tokenizer, MLM_TEXT, path=tmp_path_factory.mktemp("explore") / "mlm.html",
                            steps=STEPS)


def page_data(page_html: str) -> dict:
    """The JSON the page carries, as its script reads it."""
    found = re.search(r'<script type="application/json" id="data">(.*?)</script>', page_html, re.S)
    return json.loads(found.group(1))


def unpack(packed: dict) -> np.ndarray:
    """The page's decoding, in numpy: little-endian int16 times 10**-decimals."""
    integers = np.frombuffer(base64.b64decode(packed["data"]), dtype="<i2").reshape(packed["shape"])
    return integers * 10.0 ** -packed["decimals"]


def rounding(packed: dict) -> float:
    """How far a stored (and shown) number may be from the true one: half a step, and a hair for floats."""
    return 0.5 * 10.0 ** -packed["decimals"] * (1 + 1e-6)


def minibert_steps(model, tokenizer, text, pair=None):
    """output_attentions and the trace's attention steps, each stacked over layers: (L, nh, T, ...)."""
    batch = tokenizer(text, pair)
    with torch.no_grad(), minibert.trace(model) as t:
        out = model(**batch, output_attentions=True)
    layers = len(out.attentions)
    steps = {name: torch.stack([t[f"encoder.layer.{i}.attention.{name}"][0] for i in range(layers)]).double().numpy()
             for name in ("query", "key", "value", "scores", "masked_scores", "context")}
    steps["probs"] = torch.stack(out.attentions)[:, 0].double().numpy()
    return batch, steps


# -- the page's numbers, without a browser ----------------------------------------------------------

def test_page_holds_the_trace_within_its_rounding(minilm, page_20):
    model, tokenizer = minilm
    batch, steps = minibert_steps(model, tokenizer, TEXT_20)
    data = page_data(page_20.html)
    assert data["tokens"] == tokenizer.convert_ids_to_tokens(batch["input_ids"][0]) == page_20.tokens
    assert len(data["tokens"]) == 20
    assert (data["layers"], data["heads"], data["head_size"]) == (6, 12, 32)
    for name, packed in data["tensors"].items():
        error = np.abs(unpack(packed) - steps[name]).max()
        assert error <= rounding(packed), f"{name}: stored {error:.2g} away, rounding allows {rounding(packed):.2g}"
    assert data["tensors"]["probs"]["decimals"] == 4
    assert data["mask"] == [0.0] * 20
    assert "probs to 4 decimals" in data["rounding"]


def test_page_is_small_fast_and_self_contained(minilm, page_20):
    model, tokenizer = minilm
    # On one thread: a 20-token forward pass gains nothing from more, and on a busy machine (other
    # jobs on the same cores) torch's threads spend a second waiting for each other.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        build_page(model, tokenizer, "warm up")
        times = []
        for _ in range(3):
            start = time.perf_counter()
            build_page(model, tokenizer, TEXT_20)
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    assert min(times) < 1.0, f"building the page took {min(times):.2f} s"
    assert page_20.nbytes < 1_000_000
    assert page_20.path.read_text(encoding="utf-8") == page_20.html
    # Nothing is fetched: no src or href to anywhere but a data: URL, no address but the SVG namespace.
    assert re.findall(r'(?:src|href)="(?!data:)[^"]*"', page_20.html) == []
    addresses = set(re.findall(r"https?://[^\s\"'<>)]+", page_20.html))
    assert addresses <= {"http://www.w3.org/2000/svg"}


def test_a_head_model_is_explored_through_its_encoder(tmp_path):
    """A random BertForSequenceClassification, a sentence pair, and transformers as the reference."""
    import transformers

    from hf_checkpoints import hf_tokenizer_for, save_lesson_checkpoint

    folder = save_lesson_checkpoint("BertForSequenceClassification", tmp_path / "ce", num_labels=1)
    model = minibert.BertForSequenceClassification.from_pretrained(folder)
    page = minibert.explore(model, minibert.Tokenizer.from_pretrained(folder), *PAIR, path=tmp_path / "pair.html")
    data = page_data(page.html)

    reference = transformers.BertForSequenceClassification.from_pretrained(folder, attn_implementation="eager").eval()
    batch = hf_tokenizer_for(folder)(*PAIR, return_tensors="pt")
    with torch.no_grad():
        probs = torch.stack(reference(**batch, output_attentions=True).attentions)[:, 0].double().numpy()
    packed = data["tensors"]["probs"]
    assert np.abs(unpack(packed) - probs).max() <= rounding(packed)
    assert data["segments"] == batch["token_type_ids"][0].tolist()
    assert data["segments"].count(1) == len(hf_tokenizer_for(folder).tokenize(PAIR[1])) + 1  # B and its [SEP]
    assert "[PAD]" not in data["tokens"]
    assert data["description"].startswith("BertForSequenceClassification: 2 layers × 4 heads")


def test_too_many_tokens_is_refused_before_anything_is_written(minilm, tmp_path):
    model, tokenizer = minilm
    with pytest.raises(TooManyTokensError, match=rf"the text is \d+ tokens; the explorer shows at most {MAX_TOKENS}"):
        minibert.explore(model, tokenizer, "word " * 100, path=tmp_path / "long.html")
    assert not (tmp_path / "long.html").exists()
    with pytest.raises(ValueError, match=r"layer 6 is out of range: this model has layers 0..5"):
        build_page(model, tokenizer, "He swung the bat.", layer=6)
    with pytest.raises(ValueError, match=r"the token 'cave' is not among the tokens \[CLS\] he swung"):
        build_page(model, tokenizer, "He swung the bat.", token="cave")
    with pytest.raises(TypeError, match="FastBertModel has none"):
        build_page(minibert.FastBertModel.from_model(model), tokenizer, "He swung the bat.")


# Texts a user may type that look like the page's own markup: a closing script tag, HTML, and the two
# slots of the template (a text holding "__DATA__" once sent the page's data into its <title>).
TRICKY_TEXTS = ["a </script> <b>bold</b> & co", "the __DATA__ token", "__TITLE__ then __DATA__", "<!-- __DATA__"]


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_tokens_cannot_break_out_of_the_page(minilm, text):
    model, tokenizer = minilm
    page = build_page(model, tokenizer, text)
    assert page.html.count("</script>") == 2  # the page's own two script elements
    assert page_data(page.html)["text"] == text
    title = re.search(r"<title>(.*?)</title>", page.html, re.S).group(1)
    assert html.unescape(title) == f"minibert attention: {text}"


def test_a_text_like_the_pages_markup_shows_whole_in_the_browser(browser, minilm, tmp_path):
    model, tokenizer = minilm
    for i, text in enumerate(TRICKY_TEXTS):
        page = minibert.explore(model, tokenizer, text, path=tmp_path / f"tricky{i}.html")
        opened = OpenedPage(browser, page.path)
        try:
            assert opened.tab.title() == f"minibert attention: {text}"
            assert opened.tab.inner_text("#input").startswith(text + " (")  # then "(17 tokens)"
            queries = opened.tab.eval_on_selector_all("#head-svg .tok[data-side='query'] text",
                                                      "ts => ts.map(t => t.textContent)")
            assert queries == page.tokens
            assert opened.errors == []
        finally:
            opened.tab.close()


# -- the attribution and logit-lens views' numbers, without a browser ------------------------------------

def within_page_rounding(stored: dict, values: list[float]) -> bool:
    """Attributions are stored to `decimals` places: half a step apart at most (and a hair for floats)."""
    return np.abs(np.array(stored["values"]) - np.array(values)).max() <= 0.5 * 10.0 ** -stored["decimals"] * (1 + 1e-6)


def test_page_holds_the_attribution_and_the_lens_of_a_masked_lm(mlm, mlm_page):
    import transformers

    from minibert.inside.attribution import attribute
    from minibert.inside.lens import logit_lens

    folder, model, tokenizer = mlm
    data = page_data(mlm_page.html)
    found = attribute(model, tokenizer, MLM_TEXT, steps=STEPS)
    stored = data["attribution"]
    assert stored["tokens"] == found.tokens == data["tokens"]
    assert stored["target"] == found.target and re.fullmatch(r"the logit of '.+' at \[MASK\] \(position 6\)", found.target)
    assert (stored["steps"], stored["method"]) == (STEPS, "Gauss-Legendre")
    for kind in ("integrated_gradients", "gradient_x_input"):
        assert stored[kind]["decimals"] >= 4 and within_page_rounding(stored[kind], getattr(found, kind)), kind
    assert stored["output"] == pytest.approx(found.output, abs=0.5e-4)
    assert stored["baseline_output"] == pytest.approx(found.baseline_output, abs=0.5e-4)
    assert stored["completeness_gap"] == pytest.approx(found.completeness_gap, rel=5e-3)
    # Completeness, from the page's own numbers: the attributions add up to output - baseline output.
    difference = stored["output"] - stored["baseline_output"]
    assert sum(stored["integrated_gradients"]["values"]) == pytest.approx(difference, abs=2e-4)

    lens = logit_lens(model, tokenizer, MLM_TEXT, k=5)
    stored = data["lens"]
    assert stored["position"] == lens.position == 6
    assert stored["layers"] == lens.layers == ["embeddings", "layer 0", "layer 1"]
    assert stored["top_words"] == lens.top_words
    assert np.abs(np.array(stored["top_probs"]) - np.array(lens.top_probs)).max() <= 0.5e-4 * (1 + 1e-6)
    # The last row is the model's own prediction: transformers' top 5 at the [MASK], word for word.
    reference = transformers.BertForMaskedLM.from_pretrained(folder, attn_implementation="eager").eval()
    with torch.no_grad():
        probs = reference(**hf_batch(folder, MLM_TEXT)).logits[0, 6].softmax(-1)
    top = probs.topk(5)
    assert stored["top_words"][-1] == tokenizer.convert_ids_to_tokens(top.indices)
    assert stored["top_probs"][-1] == pytest.approx(top.values.tolist(), abs=0.5e-4 + 1e-6)
    assert found.target == f"the logit of '{stored['top_words'][-1][0]}' at [MASK] (position 6)"


def hf_batch(folder, text, pair=None):
    from hf_checkpoints import hf_tokenizer_for

    return hf_tokenizer_for(folder)(text, pair, return_tensors="pt")


def test_a_classifier_page_attributes_its_predicted_label_and_has_no_lens(tmp_path):
    import transformers

    from hf_checkpoints import save_lesson_checkpoint
    from minibert.inside.attribution import attribute

    folder = save_lesson_checkpoint("BertForSequenceClassification", tmp_path / "cls", num_labels=3)
    model = minibert.BertForSequenceClassification.from_pretrained(folder)
    tokenizer = minibert.Tokenizer.from_pretrained(folder)
    data = page_data(build_page(model, tokenizer, *PAIR, steps=STEPS).html)
    reference = transformers.BertForSequenceClassification.from_pretrained(folder, attn_implementation="eager").eval()
    with torch.no_grad():
        label = int(reference(**hf_batch(folder, *PAIR)).logits[0].argmax())
    stored, found = data["attribution"], attribute(model, tokenizer, *PAIR, steps=STEPS)
    assert stored["target"] == found.target == f"the logit of label {label}"
    assert within_page_rounding(stored["integrated_gradients"], found.integrated_gradients)
    assert within_page_rounding(stored["gradient_x_input"], found.gradient_x_input)
    assert data["lens"] == {"absent": "No logit lens: BertForSequenceClassification has no masked-LM head, and the lens "
                                      "reads every layer's output through that head. Load a checkpoint with one as "
                                      "BertForMaskedLM (or BertForPreTraining), and put [MASK] in the text."}


def test_without_a_mask_both_views_say_put_mask_in_the_text(mlm):
    _, model, tokenizer = mlm
    data = page_data(build_page(model, tokenizer, "the man went to the store .", steps=STEPS).html)
    for view in ("attribution", "lens"):
        assert list(data[view]) == ["absent"]
        assert data[view]["absent"].startswith("Put [MASK] in the text: there is no [MASK] among its tokens ([CLS] the man")


def test_a_bare_encoder_has_nothing_to_attribute_and_no_lens(page_20):
    data = page_data(page_20.html)
    why = data["attribution"]["absent"]
    assert why.startswith("There is no output to attribute: a bare BertModel has no head")
    assert "BertForMaskedLM" in why and "BertForSequenceClassification" in why
    assert data["lens"]["absent"].startswith("No logit lens: BertModel has no masked-LM head")


def test_jupyter_shows_the_page_inline(page_20):
    shown = page_20._repr_html_()
    srcdoc = re.fullmatch(r'<iframe srcdoc="([^"]*)".*</iframe>', shown, re.S).group(1)
    assert html.unescape(srcdoc) == page_20.html
    assert repr(page_20).startswith("Explorer(path=") and "tokens=20" in repr(page_20)


def test_the_command_line_writes_the_page(capsys, minilm_dir, tmp_path):
    code = cli_main(["attention", "He swung the bat.", "--pair", "It flew.", "--layer", "2", "--head", "all",
                     "--html", str(tmp_path / "bat"), "--model", str(minilm_dir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"page: {tmp_path / 'bat.html'}" in out
    data = page_data((tmp_path / "bat.html").read_text(encoding="utf-8"))
    assert data["initial"]["layer"] == 2 and data["initial"]["heads"] == list(range(12))
    assert data["pair"] == "It flew."

    code = cli_main(["attention", "He swung the bat.", "--model", str(minilm_dir)])
    err = capsys.readouterr().err
    assert code == 1 and err.strip() == ("minibert attention: error: give -o FILE for a picture, or --html FILE "
                                         "for a page to explore every layer and head in a browser (or both)")
    code = cli_main(["attention", "word " * 100, "--html", str(tmp_path / "long.html"), "--model", str(minilm_dir)])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and "the explorer shows at most 64" in err
    assert not (tmp_path / "long.html").exists()


def test_the_command_line_page_of_a_masked_lm_checkpoint_has_both_views(capsys, mlm, tmp_path):
    folder, _, _ = mlm
    code = cli_main(["attention", MLM_TEXT, "--html", str(tmp_path / "mlm.html"), "--model", str(folder),
                     "--steps", "8"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = page_data((tmp_path / "mlm.html").read_text(encoding="utf-8"))
    assert data["description"].startswith("BertForMaskedLM: 2 layers")
    assert data["attribution"]["steps"] == 8 and len(data["attribution"]["integrated_gradients"]["values"]) == 9
    assert data["attribution"]["target"].endswith("at [MASK] (position 6)")
    assert data["lens"]["layers"] == ["embeddings", "layer 0", "layer 1"] and len(data["lens"]["top_words"][0]) == 5
    # Integrated gradients runs its points as one batch: a number of them that would not fit is refused first.
    with pytest.raises(SystemExit) as exit_:
        cli_main(["attention", MLM_TEXT, "--html", str(tmp_path / "big.html"), "--model", str(folder), "--steps", "100000"])
    assert exit_.value.code == 2 and "at most 500" in capsys.readouterr().err and not (tmp_path / "big.html").exists()


# -- the page in headless Chromium ------------------------------------------------------------------

def _why_no_browser() -> str | None:
    if not CHROMIUM.exists():
        return (f"no Chromium at {CHROMIUM}: `make browser` installs it as root "
                "(apt-get install -y chromium chromium-driver)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed: make test installs the test extra"
    return None


@pytest.fixture(scope="module")
def browser():
    problem = _why_no_browser()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem} (CI=true: the browser tests must run here)")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives the browser a fresh, temporary profile (--user-data-dir) of its own.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class OpenedPage:
    """A tab showing a file, with every console error and every request it made."""

    def __init__(self, browser, path: Path):
        self.tab = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.tab.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.tab.on("pageerror", lambda error: self.errors.append(str(error)))
        self.tab.on("request", lambda request: self.requests.append(request.url))
        self.tab.goto(path.resolve().as_uri())

    def numbers(self, selector: str) -> list[float]:
        return [float(text) for text in self.tab.eval_on_selector_all(selector, "cells => cells.map(c => c.textContent)")]

    def screenshot(self, path: Path) -> Path:
        self.tab.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def opened(browser, page_20):
    page = OpenedPage(browser, page_20.path)
    yield page
    page.tab.close()


def assert_not_blank(path: Path, min_height: int = 400):
    from PIL import Image, ImageStat

    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] >= 1000 and image.size[1] >= min_height
        grey = image.convert("L")
        low, high = grey.getextrema()
        assert high - low > 100 and ImageStat.Stat(grey).stddev[0] > 10, f"{path} looks blank"


def test_page_loads_from_a_file_without_errors_or_network(opened, page_20):
    assert opened.tab.title().startswith("minibert attention: He swung the bat")
    assert opened.tab.is_visible("#view-head") and not opened.tab.is_visible("#view-steps")
    for view in ("model", "steps", "attribution", "lens", "head"):
        opened.tab.click(f"#tab-{view}")
        assert opened.tab.is_visible(f"#view-{view}")
    assert opened.errors == []
    assert opened.requests == [page_20.path.resolve().as_uri()]  # the file itself, nothing else


def test_head_view_shows_the_row_of_the_hovered_token(opened, minilm, screenshots, minilm_dir):
    import transformers

    model, tokenizer = minilm
    batch = tokenizer(TEXT_20)
    with torch.no_grad():
        probs = model(**batch, output_attentions=True).attentions[2][0, 0]  # layer 2: (nh, T, T) -> head 0: (T, T)
        reference = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
        reference_probs = reference(**batch, output_attentions=True).attentions[2][0, 0]
    bat = page_data(opened.tab.content())["tokens"].index("bat")

    opened.tab.select_option("#head-layer", "2")
    opened.tab.click("#heads-none")
    opened.tab.click("#head-buttons button[data-head='0']")
    opened.tab.hover("#head-svg .tok[data-side='query'][data-token='bat']")
    lines = opened.tab.eval_on_selector_all("#lines line", """lines => lines.map(l => ({
        head: +l.dataset.head, from: +l.dataset.from, to: +l.dataset.to, weight: +l.dataset.weight,
        opacity: +l.getAttribute('stroke-opacity'), shown: getComputedStyle(l).display !== 'none'}))""")
    assert [(line["head"], line["from"], line["to"]) for line in lines] == [(0, bat, j) for j in range(20)]
    assert all(line["shown"] for line in lines)
    weights = torch.tensor([line["weight"] for line in lines], dtype=torch.float64)
    assert (weights - probs[bat].double()).abs().max() <= 0.5e-4 * (1 + 1e-6)
    assert (weights - reference_probs[bat].double()).abs().max() <= 0.5e-4 + 1e-6
    assert [line["opacity"] for line in lines] == pytest.approx(probs[bat].tolist(), abs=0.5e-4 + 1e-6)
    assert opened.numbers("#weights text") == [line["weight"] for line in lines]  # written beside the keys
    assert_not_blank(opened.screenshot(screenshots / "head_view.png"))

    # The key side: the column, every query's attention to "bat". Moving away shows every line again.
    opened.tab.hover("#head-svg .tok[data-side='key'][data-token='bat']")
    column = opened.tab.eval_on_selector_all("#lines line", "ls => ls.map(l => [+l.dataset.from, +l.dataset.to])")
    assert column == [[i, bat] for i in range(20)]
    opened.tab.mouse.move(5, 5)
    stored = unpack(page_data(opened.tab.content())["tensors"]["probs"])[2, 0]  # (T, T), as the page rounded them
    assert opened.tab.eval_on_selector_all("#lines line", "ls => ls.length") == int((stored >= 0.01).sum())
    assert opened.errors == []


def test_tokens_and_selectors_work_from_the_keyboard(opened):
    tab = opened.tab
    tab.focus("#head-svg .tok[data-side='query'][data-index='4']")
    assert tab.eval_on_selector_all("#lines line", "ls => new Set(ls.map(l => l.dataset.from)).size") == 1
    tab.keyboard.press("Enter")  # keeps the token's lines after the focus moves on
    tab.focus("#head-layer")
    assert tab.eval_on_selector_all("#lines line", "ls => [...new Set(ls.map(l => l.dataset.from))]") == ["4"]
    tab.keyboard.press("Escape")
    assert tab.eval_on_selector_all("#lines line", "ls => new Set(ls.map(l => l.dataset.from)).size") > 1
    tab.keyboard.press("ArrowDown")  # the layer <select> has the focus
    assert tab.eval_on_selector("#head-layer", "s => s.value") == "1"
    focusable = tab.eval_on_selector_all("button, select, [tabindex='0']", "els => els.length")
    assert focusable >= 3 + 2 + 12 + 2 + 40 + 72  # tabs, selects, head buttons, all/none, tokens, model squares


def test_model_view_opens_a_square_in_the_head_view(opened, screenshots):
    tab = opened.tab
    tab.click("#tab-model")
    assert tab.eval_on_selector_all("#model-grid button.thumb", "bs => bs.length") == 6 * 12
    # Each square is a 20 x 20 canvas of the head's probabilities: not one flat colour.
    spread = tab.eval_on_selector("#model-grid button.thumb[data-layer='0'][data-head='2'] canvas", """c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let lo = 255, hi = 0; for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i + 1]); hi = Math.max(hi, d[i + 1]); }
        return [c.width, c.height, hi - lo]; }""")
    assert spread[:2] == [20, 20] and spread[2] > 100
    assert_not_blank(opened.screenshot(screenshots / "model_view.png"))
    tab.click("#model-grid button.thumb[data-layer='3'][data-head='5']")
    assert tab.is_visible("#view-head") and tab.eval_on_selector("#head-layer", "s => s.value") == "3"
    pressed = tab.eval_on_selector_all("#head-buttons button[aria-pressed='true']", "bs => bs.map(b => b.dataset.head)")
    assert pressed == ["5"]
    assert set(tab.eval_on_selector_all("#lines line", "ls => ls.map(l => l.dataset.head)")) == {"5"}


def test_steps_view_shows_the_numbers_of_attention(opened, minilm, page_20, screenshots):
    model, tokenizer = minilm
    _, steps = minibert_steps(model, tokenizer, TEXT_20)
    packed = page_data(page_20.html)["tensors"]
    bat = page_20.tokens.index("bat")
    tab = opened.tab
    tab.click("#tab-steps")
    tab.select_option("#steps-layer", "2")
    tab.select_option("#steps-head", "0")
    tab.select_option("#steps-query", str(bat))
    assert "Layer 2, head 0, query token 4: bat" in tab.inner_text("#steps-caption")

    def shown(kind, shape):
        return np.array(opened.numbers(f"#steps-table td[data-kind='{kind}']")).reshape(shape)

    T, hs = 20, 32
    q, k = shown("query", (hs,)), shown("key", (hs, T)).T  # the table has a row per dimension, a column per key
    assert np.abs(q - steps["query"][2, 0, bat]).max() <= rounding(packed["query"])
    assert np.abs(k - steps["key"][2, 0]).max() <= rounding(packed["key"])
    assert np.abs(shown("scores", (T,)) - steps["scores"][2, 0, bat]).max() <= rounding(packed["scores"])
    assert np.abs(shown("masked_scores", (T,)) - steps["masked_scores"][2, 0, bat]).max() <= rounding(packed["scores"])
    assert np.abs(shown("probs", (T,)) - steps["probs"][2, 0, bat]).max() <= rounding(packed["probs"])
    assert np.abs(shown("context", (hs,)) - steps["context"][2, 0, bat]).max() <= rounding(packed["context"])
    assert np.abs(shown("value", (hs, T)).T - steps["value"][2, 0]).max() <= rounding(packed["value"])
    assert (shown("mask", (T,)) == 0).all()
    # The products and their sums are worked out in the page from the rounded q and k: they still give the score.
    assert np.abs(shown("product", (hs, T)).T - q * k).max() <= 0.5e-3 + 1e-9
    assert np.abs(shown("dot", (T,)) / np.sqrt(hs) - steps["scores"][2, 0, bat]).max() < 0.01
    assert_not_blank(opened.screenshot(screenshots / "steps_view.png"), min_height=1500)
    assert opened.errors == []


def test_a_pair_tells_its_segments_apart(browser, minilm, tmp_path):
    model, tokenizer = minilm
    page = minibert.explore(model, tokenizer, *PAIR, path=tmp_path / "pair.html")
    opened = OpenedPage(browser, page.path)
    try:
        bands = opened.tab.eval_on_selector_all("#head-svg rect.band", "rs => rs.map(r => r.getAttribute('fill'))")
        segments = page_data(page.html)["segments"]
        assert bands[0::2] == ["var(--b)" if s else "var(--a)" for s in segments]
        labels = opened.tab.eval_on_selector_all("#head-svg > text", "ts => ts.map(t => t.textContent)")
        assert "A" in labels and "B" in labels
        assert opened.tab.inner_text("#input").startswith("A: The man went to the store. B: He bought a gallon of milk.")
        opened.tab.click("#tab-steps")
        heads = opened.tab.eval_on_selector_all("#steps-table thead th[data-key]", "ths => ths.map(t => t.className)")
        assert [("seg-1" in c) for c in heads] == [bool(s) for s in segments]
        assert opened.errors == []
    finally:
        opened.tab.close()


def chip_colour(opened, kind: str) -> list[tuple[int, int, int]]:
    styles = opened.tab.eval_on_selector_all(f"#chips-{kind} .chip", "cs => cs.map(c => getComputedStyle(c).backgroundColor)")
    return [tuple(int(x) for x in re.findall(r"\d+", style)[:3]) for style in styles]


def test_attribution_view_shows_each_tokens_number_and_colour(browser, mlm, mlm_page, screenshots):
    from minibert.inside.attribution import attribute

    _, model, tokenizer = mlm
    found = attribute(model, tokenizer, MLM_TEXT, steps=STEPS)
    stored = page_data(mlm_page.html)["attribution"]
    opened = OpenedPage(browser, mlm_page.path)
    try:
        tab = opened.tab
        tab.click("#tab-attribution")
        assert tab.is_visible("#view-attribution") and not tab.is_visible("#view-head")
        for kind in ("integrated_gradients", "gradient_x_input"):
            shown = tab.eval_on_selector_all(f"#chips-{kind} .chip", "cs => cs.map(c => c.firstChild.textContent)")
            assert shown == found.tokens
            numbers = opened.numbers(f"#chips-{kind} .chip .val")
            step = 10.0 ** -stored[kind]["decimals"]
            assert np.abs(np.array(numbers) - np.array(getattr(found, kind))).max() <= 0.5 * step * (1 + 1e-6), kind
            # Red for positive, blue for negative, white at 0; the largest |value| gets the ramp's end.
            colours = chip_colour(opened, kind)
            for value, (r, g, b) in zip(numbers, colours):
                if value > 0:
                    assert r > b, (kind, value, (r, g, b))
                elif value < 0:
                    assert b > r, (kind, value, (r, g, b))
                else:
                    assert (r, g, b) == (247, 247, 247)
            extreme = colours[int(np.argmax(np.abs(numbers)))]
            assert extreme in {(178, 24, 43), (33, 102, 172)}
        # The number of a chip shows on hover (a tooltip), and with "show every number" under every chip.
        chip = "#chips-integrated_gradients .chip[data-index='6']"
        assert tab.eval_on_selector(f"{chip} .val", "v => v.getBoundingClientRect().width") <= 1
        tab.hover(chip)
        assert tab.eval_on_selector(f"{chip} .val", "v => v.getBoundingClientRect().width") > 20
        assert tab.get_attribute(chip, "title") == f"[MASK]: {tab.text_content(chip + ' .val')}"
        tab.mouse.move(5, 5)
        tab.focus("#chips-gradient_x_input .chip[data-index='2']")  # from the keyboard: the focused chip's number
        assert tab.eval_on_selector("#chips-gradient_x_input .chip[data-index='2'] .val",
                                    "v => v.getBoundingClientRect().width") > 20
        assert tab.eval_on_selector(f"{chip} .val", "v => v.getBoundingClientRect().width") <= 1
        facts = {key: tab.text_content(f"#attribution-facts td[data-fact='{key}']")
                 for key in ("target", "method", "output", "baseline_output", "completeness_gap")}
        assert facts["target"] == found.target
        assert facts["method"].startswith(f"integrated gradients, {STEPS} steps, Gauss-Legendre; baseline: [PAD] at "
                                          "every token but [CLS]/[SEP].")
        assert float(facts["output"]) == pytest.approx(found.output, abs=0.5e-4 + 1e-9)
        assert float(facts["baseline_output"]) == pytest.approx(found.baseline_output, abs=0.5e-4 + 1e-9)
        assert float(facts["completeness_gap"].split()[0]) == pytest.approx(found.completeness_gap, rel=5e-3)
        assert_not_blank(opened.screenshot(screenshots / "attribution_view.png"), min_height=300)
        tab.click("#attribution-numbers")
        assert tab.eval_on_selector(f"{chip} .val", "v => v.getBoundingClientRect().width") > 20
        assert opened.errors == []
        assert opened.requests == [mlm_page.path.resolve().as_uri()]
    finally:
        opened.tab.close()


def test_logit_lens_view_shows_the_top_words_of_every_layer(browser, mlm, mlm_page, screenshots):
    from minibert.inside.lens import logit_lens

    _, model, tokenizer = mlm
    lens = logit_lens(model, tokenizer, MLM_TEXT, k=5)
    opened = OpenedPage(browser, mlm_page.path)
    try:
        tab = opened.tab
        tab.click("#tab-lens")
        assert tab.is_visible("#lens-table")
        assert tab.eval_on_selector_all("#lens-table tbody tr", "rs => rs.map(r => r.dataset.layer)") == lens.layers
        assert tab.text_content("#lens-table tbody tr:last-child th") == "layer 1 (the prediction)"
        for row, layer in enumerate(lens.layers):
            cells = f"#lens-table tbody tr[data-layer='{layer}']"
            words = tab.eval_on_selector_all(f"{cells} td.word", "ts => ts.map(t => t.textContent)")
            assert words == lens.top_words[row], layer
            probs = opened.numbers(f"{cells} td.prob")
            assert probs == pytest.approx(lens.top_probs[row], abs=0.5e-4 + 1e-9)
        assert "at [MASK] (position 6)" in tab.text_content("#lens-caption")
        assert_not_blank(opened.screenshot(screenshots / "lens_view.png"), min_height=300)
        assert opened.errors == []
        assert opened.requests == [mlm_page.path.resolve().as_uri()]
    finally:
        opened.tab.close()


def test_a_bare_encoders_page_says_why_both_views_are_empty(opened, page_20, screenshots):
    data = page_data(page_20.html)
    for view in ("attribution", "lens"):
        opened.tab.click(f"#tab-{view}")
        assert opened.tab.is_visible(f"#view-{view} [data-absent]")
        assert opened.tab.inner_text(f"#view-{view} [data-absent]") == data[view]["absent"]
    assert "no masked-LM head" in opened.tab.inner_text("#view-lens")
    opened.tab.click("#tab-attribution")
    text = opened.tab.inner_text("#view-attribution")
    assert "no output to attribute" in text and "BertForMaskedLM" in text and "BertForSequenceClassification" in text
    opened.screenshot(screenshots / "attribution_view_bare.png")
    assert opened.errors == []
    assert opened.requests == [page_20.path.resolve().as_uri()]


def test_a_token_classifier_page_says_it_has_one_output_per_token(tmp_path):
    from hf_checkpoints import save_lesson_checkpoint

    folder = save_lesson_checkpoint("BertForTokenClassification", tmp_path / "ner", num_labels=3)
    model = minibert.BertForTokenClassification.from_pretrained(folder)
    data = page_data(build_page(model, minibert.Tokenizer.from_pretrained(folder), MLM_TEXT).html)
    assert data["attribution"]["absent"].startswith("There is no output to attribute here: attribution explains one "
                                                    "number, and BertForTokenClassification gives one per token")
    assert data["lens"]["absent"].startswith("No logit lens: BertForTokenClassification has no masked-LM head")
