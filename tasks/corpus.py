"""Real text that ships offline, for the models trained here: Wikipedia articles and Lee's news stories.

Both come with gensim's test data, so nothing is downloaded:
  - enwiki-latest-pages-articles1...-shortened.bz2: 206 pages of an English Wikipedia dump, of which
    100 are articles with text (the rest are redirects); gensim's wikicorpus helpers strip the markup;
  - lee_background.cor: 300 Australian news stories, one per line (Lee et al. 2005).

    >>> articles = wikipedia_articles()
    >>> len(articles), articles[0].title, len(articles[0].paragraphs) > 10
    (100, 'Anarchism', True)
    >>> sentences("It flew. Then it landed at 4 p.m. on Mars! Did it?")
    ['It flew.', 'Then it landed at 4 p.m. on Mars!', 'Did it?']
    >>> train, held_out = split_held_out(articles, 0.1)      # whole articles, chosen by title
    >>> len(train), len(held_out)
    (90, 10)

The same articles with their links kept: each paragraph with the character spans of the text that
the markup linked to another article ("[[Political philosophy|political philosophy]]"). A link
marks a mention of something with an article of its own, which is what the token-classification
and question-answering programs train on, as a silver standard: editors link a mention once or
twice, not every time, and link concepts ("state") as well as names.

    >>> linked = wikipedia_linked_articles()
    >>> first = linked[0].paragraphs[0]
    >>> first.title, [first.text[start:end] for start, end in first.links][:3]
    ('Anarchism', ['political philosophy', 'self-governed', 'stateless societies'])
"""

from __future__ import annotations

import bz2
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path


def gensim_test_data() -> Path:
    import gensim

    return Path(gensim.__file__).parent / "test" / "test_data"


WIKIPEDIA = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LEE = "lee_background.cor"


@dataclass
class Document:
    title: str
    paragraphs: list[str]  # plain text, each at least a sentence or two

    def sentences(self) -> list[list[str]]:
        return [sentences(p) for p in self.paragraphs]


def saved_documents(name: str) -> list[Document] | None:
    """Documents written out by `save_documents`, when MINIBERT_CORPUS (a folder) holds them: for a
    machine without gensim, such as a rented GPU."""
    folder = os.environ.get("MINIBERT_CORPUS")
    if not folder or not (Path(folder) / f"{name}.json").is_file():
        return None
    return [Document(d["title"], d["paragraphs"]) for d in json.loads((Path(folder) / f"{name}.json").read_text())]


def save_documents(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, documents in (("wikipedia", wikipedia_articles()), ("lee", lee_documents())):
        (folder / f"{name}.json").write_text(json.dumps([d.__dict__ for d in documents]))
    linked = [{"title": a.title, "paragraphs": [{"text": p.text, "links": p.links} for p in a.paragraphs]}
              for a in wikipedia_linked_articles()]
    (folder / "wikipedia_links.json").write_text(json.dumps(linked))


def wikipedia_articles(min_chars: int = 2000) -> list[Document]:
    """The dump's articles as plain paragraphs; redirects and stubs (under min_chars) are left out."""
    saved = saved_documents("wikipedia")
    if saved is not None:
        return saved
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    documents = []
    with bz2.open(gensim_test_data() / WIKIPEDIA) as f:
        for title, markup, _ in extract_pages(f):
            text = filter_wiki(markup)
            if len(text) < min_chars:
                continue
            paragraphs = [clean(p) for p in text.split("\n")]
            paragraphs = [p for p in paragraphs if _kept(p)]
            if paragraphs:
                documents.append(Document(title, paragraphs))
    return documents


@dataclass
class LinkedParagraph:
    title: str  # the article's
    text: str  # plain text, as in wikipedia_articles()
    links: list[tuple[int, int]]  # (start, end) characters of each linked span: text[start:end]


@dataclass
class LinkedArticle:
    title: str
    paragraphs: list[LinkedParagraph]


_LINK = re.compile(r"\[\[([^\[\]|]*)(?:\|([^\[\]|]*))?\]\]")  # [[target]] or [[target|text]]
_OPEN, _CLOSE = "\x01", "\x02"  # put around a link's text before filter_wiki, read back after


def wikipedia_linked_articles(min_chars: int = 2000) -> list[LinkedArticle]:
    """The articles of wikipedia_articles(), each paragraph with the spans its markup linked
    (linked_paragraphs, page by page).

    Links into other namespaces ("[[File:...]]", "[[Category:...]]") are not mentions and are left to
    filter_wiki, which drops them. The articles are wikipedia_articles()'s, and so are nearly all the
    paragraphs: of 6270, the few that differ are image captions, which come out whole here where
    filter_wiki, meeting a link inside "[[File:...]]", cut their first words off.
    """
    saved = saved_documents("wikipedia_links")
    if saved is not None:
        return [LinkedArticle(d.title, [LinkedParagraph(d.title, p["text"], [tuple(x) for x in p["links"]])
                                        for p in d.paragraphs]) for d in saved]
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    articles = []
    with bz2.open(gensim_test_data() / WIKIPEDIA) as f:
        for title, markup, _ in extract_pages(f):
            if len(filter_wiki(markup)) < min_chars:  # the same articles as wikipedia_articles()
                continue
            paragraphs = linked_paragraphs(title, markup)
            if paragraphs:
                articles.append(LinkedArticle(title, paragraphs))
    return articles


def linked_paragraphs(title: str, markup: str) -> list[LinkedParagraph]:
    """The paragraphs of one page's raw wiki markup, as plain text with the spans of their links.

    Each link to an article is marked around its shown text, the markup is removed by gensim's
    filter_wiki, and the marks are read back as character spans. A paragraph is kept as
    wikipedia_articles() keeps one (text, not a heading or a fragment); one whose marks do not pair
    up is left out.

    >>> markup = ("[[Anarchism]] is a [[political philosophy|political philosophy]] that holds "
    ...           "[[State (polity)|states]] to be undesirable, unnecessary and harmful.")
    >>> [paragraph.text[start:end] for paragraph in linked_paragraphs("Anarchism", markup)
    ...  for start, end in paragraph.links]
    ['Anarchism', 'political philosophy', 'states']
    """
    from gensim.corpora.wikicorpus import filter_wiki

    def mark(match: re.Match) -> str:
        target, shown = match.group(1), match.group(2)
        if ":" in target:  # another namespace: not a mention
            return match.group(0)
        shown = shown if shown is not None else target
        words = shown.strip()
        if not words:  # "[[Paris|]]" (the pipe trick) or "[[ ]]": nothing shown to mark
            return shown
        # spaces inside the brackets, "[[ Paris]]", go outside the marks, where clean() can merge them
        before, after = shown[:len(shown) - len(shown.lstrip())], shown[len(shown.rstrip()):]
        return before + _OPEN + words + _CLOSE + after

    paragraphs = []
    for marked in filter_wiki(_LINK.sub(mark, markup)).split("\n"):
        paragraph = _read_links(title, clean(marked))
        if paragraph is not None and _kept(paragraph.text):
            paragraphs.append(paragraph)
    return paragraphs


def _read_links(title: str, marked: str) -> LinkedParagraph | None:
    """The text without the markers, and the spans they enclosed; None where the markers do not pair up
    (a link cut by the markup's removal). A span that is empty, or starts or ends with a space, is dropped."""
    text, links, start, length = [], [], None, 0  # length: the characters of `text` so far
    for piece in re.split(f"([{_OPEN}{_CLOSE}])", marked):
        if piece == _OPEN:
            if start is not None:
                return None
            start = length
        elif piece == _CLOSE:
            if start is None:
                return None
            links.append((start, length))
            start = None
        else:
            text.append(piece)
            length += len(piece)
    text = "".join(text)
    if start is not None:
        return None
    links = [(s, e) for s, e in links if e > s and not text[s].isspace() and not text[e - 1].isspace()]
    return LinkedParagraph(title, text, links)


def _kept(paragraph: str) -> bool:
    """wikipedia_articles()'s test of a paragraph: text, not a heading or a fragment."""
    return len(paragraph) >= 80 and paragraph.count(" ") >= 10 and not paragraph.startswith("==")


def lee_documents() -> list[Document]:
    """The Lee background corpus: 300 news stories, one paragraph each."""
    saved = saved_documents("lee")
    if saved is not None:
        return saved
    lines = (gensim_test_data() / LEE).read_text(encoding="utf-8", errors="replace").splitlines()
    return [Document(f"Lee news story {i + 1}", [clean(line)]) for i, line in enumerate(lines) if line.strip()]


def clean(text: str) -> str:
    """What filter_wiki leaves: bold/italic quotes, stray brackets, runs of spaces."""
    text = re.sub(r"'{2,}", "", text)
    text = re.sub(r"\[\[|\]\]|\{\{|\}\}", "", text)
    return re.sub(r"\s+", " ", text).strip()


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(]?[A-Z0-9])")
_ABBREVIATION = re.compile(r"\b(?:[A-Z]|Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|e\.g|i\.e|[ap]\.m|c|ca|No)\.$")


def sentences(paragraph: str) -> list[str]:
    """Split a paragraph after ., ! or ? followed by a capital, unless the dot ends an abbreviation."""
    parts, current = [], ""
    for piece in _SENTENCE_END.split(paragraph):
        current = f"{current} {piece}".strip() if current else piece
        if not _ABBREVIATION.search(current):
            parts.append(current)
            current = ""
    if current:
        parts.append(current)
    return parts


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) characters in `text` of each of sentences(text), found in order, so that
    character spans in the text (links, answers) can be placed in their sentence.

    >>> text = "It flew.  Then it landed at 4 p.m. on Mars!"
    >>> spans = sentence_spans(text)
    >>> spans, [text[start:end] for start, end in spans] == sentences(text)
    ([(0, 8), (10, 43)], True)
    """
    spans, position = [], 0
    for sentence in sentences(text):
        start = text.find(sentence, position)
        if start < 0:  # sentences() only splits at whitespace and strips it; a clean text never gets here
            raise ValueError(f"sentence not found in its text: {sentence[:60]!r}")
        position = start + len(sentence)
        spans.append((start, position))
    return spans


def split_held_out(documents: list[Document], fraction: float) -> tuple[list[Document], list[Document]]:
    """(train, held out): whole documents, the same ones on every run and every machine (chosen
    by a hash of the title, not by a random draw), so nothing of a held-out document is trained on."""
    def score(doc: Document) -> int:
        return int(hashlib.sha1(doc.title.encode("utf-8")).hexdigest()[:8], 16)

    ranked = sorted(documents, key=score)
    n_held = max(1, round(fraction * len(documents)))
    held_titles = {doc.title for doc in ranked[:n_held]}
    return ([d for d in documents if d.title not in held_titles], [d for d in documents if d.title in held_titles])
