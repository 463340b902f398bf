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
            paragraphs = [p for p in paragraphs if len(p) >= 80 and p.count(" ") >= 10 and not p.startswith("==")]
            if paragraphs:
                documents.append(Document(title, paragraphs))
    return documents


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


def split_held_out(documents: list[Document], fraction: float) -> tuple[list[Document], list[Document]]:
    """(train, held out): whole documents, the same ones on every run and every machine (chosen
    by a hash of the title, not by a random draw), so nothing of a held-out document is trained on."""
    def score(doc: Document) -> int:
        return int(hashlib.sha1(doc.title.encode("utf-8")).hexdigest()[:8], 16)

    ranked = sorted(documents, key=score)
    n_held = max(1, round(fraction * len(documents)))
    held_titles = {doc.title for doc in ranked[:n_held]}
    return ([d for d in documents if d.title not in held_titles], [d for d in documents if d.title in held_titles])
