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
