"""tasks/corpus.py: the sentence spans, and the links read out of a page's raw markup."""

import pytest

from tasks import corpus


def test_sentence_spans_place_each_sentence_even_when_one_repeats():
    # the second "It rained." must be found after the first, not at it; the spacing is kept as written
    text = "It rained.  It rained. Then at 4 p.m. it stopped!"
    spans = corpus.sentence_spans(text)
    assert spans == [(0, 10), (12, 22), (23, 49)]
    assert [text[s:e] for s, e in spans] == ["It rained.", "It rained.", "Then at 4 p.m. it stopped!"]


def test_sentence_spans_of_one_sentence_without_a_full_stop():
    assert corpus.sentence_spans("no full stop at all") == [(0, 19)]


def test_a_sentence_that_is_not_in_the_text_is_a_clear_error():
    # sentences() joins an abbreviation's pieces with one space, so two spaces after "p.m." cannot be found
    with pytest.raises(ValueError, match="sentence not found"):
        corpus.sentence_spans("At 4 p.m.  Then it stopped.")


# linked_paragraphs on hand-written markup. A paragraph is kept only if it reads as text (80 characters,
# 10 spaces), so each line below ends with the same filler.
FILLER = " and the words after it make the line long enough to be kept as a paragraph of text."


def linked(markup: str) -> list[tuple[str, list[str]]]:
    return [(p.text, [p.text[s:e] for s, e in p.links]) for p in corpus.linked_paragraphs("T", markup)]


def plain(markup: str) -> list[str]:
    """wikipedia_articles()'s paragraphs of the markup, written out here: gensim's filter_wiki, then clean."""
    from gensim.corpora.wikicorpus import filter_wiki

    return [p for p in map(corpus.clean, filter_wiki(markup).split("\n")) if corpus._kept(p)]


@pytest.mark.parametrize("markup, mentions", [
    ("The [[Paris Commune|commune of Paris]] rose in 1871" + FILLER, ["commune of Paris"]),  # the shown text
    ("The [[Paris Commune]] rose in 1871" + FILLER, ["Paris Commune"]),
    ("The '''[[Paris Commune]]''' rose in [[1871]]" + FILLER, ["Paris Commune", "1871"]),  # bold around a link
    ("[[Anarchism]] and [[Mutualism (economic theory)|mutualism]]" + FILLER, ["Anarchism", "mutualism"]),
    ("The [[Paris Commune]] rose [[Category:Revolutions]] in 1871" + FILLER, ["Paris Commune"]),
])
def test_links_become_spans_of_the_same_text_wikipedia_articles_gives(markup, mentions):
    (text, found), = linked(markup)
    assert found == mentions
    assert [text] == plain(markup)


def test_a_category_line_is_no_paragraph_and_no_mention():
    markup = "The [[Paris Commune]] rose in 1871" + FILLER + "\n[[Category:Revolutions]]\n[[Category:Paris]]"
    assert linked(markup) == [("The Paris Commune rose in 1871" + FILLER, ["Paris Commune"])]


def test_a_link_inside_a_file_caption_is_a_mention_and_the_file_is_not():
    markup = ("[[File:Commune.jpg|thumb|left|The barricades of the [[Paris Commune|commune]] in the spring of 1871"
              + FILLER + "]]\nNext line, too short.")
    (text, found), = linked(markup)
    assert found == ["commune"] and "File" not in text and "thumb" not in text
    assert text == "The barricades of the commune in the spring of 1871" + FILLER  # the caption whole
    # gensim alone cuts the caption's first words off at the inner link: why the docstring says captions differ
    assert plain(markup) == ["commune in the spring of 1871" + FILLER]


def test_spaces_inside_the_brackets_stay_outside_the_span():
    for markup in ("The [[ Paris Commune]] rose in 1871" + FILLER, "The [[Paris Commune |Paris Commune ]] rose in 1871" + FILLER):
        assert linked(markup) == [("The Paris Commune rose in 1871" + FILLER, ["Paris Commune"])]
        assert plain(markup) == ["The Paris Commune rose in 1871" + FILLER]  # one space, as without the link


@pytest.mark.parametrize("markup", [
    "The [[Paris Commune rose in 1871" + FILLER,  # opened, never closed
    "The Paris Commune]] rose in 1871" + FILLER,  # closed, never opened
    "The [[Paris Commune|]] rose in 1871" + FILLER,  # the pipe trick: nothing shown, nothing to mark
])
def test_brackets_that_make_no_link_mark_nothing(markup):
    assert [found for _, found in linked(markup)] == [[]]


def test_markers_that_do_not_pair_up_leave_the_paragraph_out():
    marked = "The \x01Paris Commune rose in 1871" + FILLER
    assert corpus._read_links("T", marked) is None
    assert corpus._read_links("T", marked.replace("\x01", "\x02")) is None
    assert corpus._read_links("T", "\x01a \x01b\x02\x02" + FILLER) is None  # nested
    paragraph = corpus._read_links("T", "\x01a\x02 \x01 b\x02" + FILLER)  # a span starting with a space is dropped
    assert paragraph.text == "a  b" + FILLER and paragraph.links == [(0, 1)]
