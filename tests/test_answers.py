"""app/answers.py: question answering's decoding, against independent references.

- the n best spans of a window against a brute-force search over every (start, end) pair, and against
  transformers' own span decoding (`select_starts_ends` of its document question-answering pipeline,
  which takes logits as given; transformers 5 has no text QuestionAnsweringPipeline);
- the windows against transformers' BertTokenizerFast with truncation="only_second", a stride and
  return_overflowing_tokens, on the shipped all-MiniLM-L6-v2 tokenizer;
- the characters returned equal the context's own substring, accents and capitals as written, for an
  answer that only the second window holds.
"""

import math

import numpy as np
import pytest
import torch

from minibert import Tokenizer
from minibert.app.answers import Answer, answer_question, answers_in_window, best_spans, question_windows

QUESTION = "How long did the oldest ringed bat live?"
FILLER = ("Bats sleep by day in caves and hunt moths at night. Most species weigh less than a coin. "
          "Some fly hundreds of kilometres between their summer and winter roosts. ")
ANSWER = "forty-one years"
CONTEXT = FILLER * 3 + f"The oldest ringed bat, caught again near Zürich, had lived {ANSWER}. " + FILLER


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    return Tokenizer.from_pretrained(minilm_dir)


def brute_force(start_logits, end_logits, allowed, max_answer_length):
    """Every (start, end) pair in plain Python, sorted by score."""
    spans = []
    for s in range(len(start_logits)):
        for e in range(len(end_logits)):
            if s <= e and e - s + 1 <= max_answer_length and allowed[s] and allowed[e]:
                spans.append((float(start_logits[s]) + float(end_logits[e]), s, e))
    return sorted(spans, key=lambda span: -span[0])


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("max_answer_length", [1, 4, 30])
def test_best_spans_equal_a_brute_force_search(seed, max_answer_length):
    generator = torch.Generator().manual_seed(seed)
    T = 40
    start_logits, end_logits = torch.randn(T, generator=generator), torch.randn(T, generator=generator)
    allowed = torch.zeros(T, dtype=torch.bool)
    allowed[12:37] = True  # the context: after the question, before the last [SEP] and padding
    expected = brute_force(start_logits.double(), end_logits.double(), allowed, max_answer_length)[:20]
    assert best_spans(start_logits, end_logits, allowed, n_best=20, max_answer_length=max_answer_length) == expected


@pytest.mark.parametrize("seed", range(5))
def test_best_spans_equal_transformers_decoding(seed):
    from transformers.pipelines.document_question_answering import select_starts_ends

    generator = torch.Generator().manual_seed(seed)
    T, top_k, max_answer_length = 32, 10, 6
    start_logits, end_logits = torch.randn(T, generator=generator), torch.randn(T, generator=generator)
    allowed = torch.zeros(T, dtype=torch.bool)
    allowed[9:30] = True
    p_mask = (~allowed).numpy().astype(np.int64)  # 1: cannot be part of the answer
    starts, ends, probabilities, _ = select_starts_ends(start_logits.numpy()[None], end_logits.numpy()[None], p_mask,
                                                        None, top_k=top_k, max_answer_len=max_answer_length)
    ours = best_spans(start_logits, end_logits, allowed, n_best=top_k, max_answer_length=max_answer_length)
    assert [(s, e) for _, s, e in ours] == list(zip(starts.tolist(), ends.tolist()))
    # transformers scores a span by p_start * p_end, each a softmax over the context: the same order as
    # start + end logits, and the same number once the two normalisers are taken off.
    log_normaliser = torch.logsumexp(start_logits[allowed].double(), 0) + torch.logsumexp(end_logits[allowed].double(), 0)
    np.testing.assert_allclose([math.exp(score - log_normaliser) for score, _, _ in ours], probabilities, rtol=1e-5)


def test_windows_equal_transformers_overflowing_windows(tokenizer, minilm_dir):
    from transformers import BertTokenizerFast

    hf = BertTokenizerFast.from_pretrained(minilm_dir)(
        QUESTION, CONTEXT, truncation="only_second", max_length=64, stride=16, return_overflowing_tokens=True,
        return_offsets_mapping=True)
    windows = question_windows(tokenizer, QUESTION, CONTEXT, max_length=64, stride=16)
    assert len(windows) == len(hf["input_ids"]) > 2
    for i, window in enumerate(windows):
        assert window.ids == hf["input_ids"][i]
        assert window.type_ids == hf["token_type_ids"][i]
        assert window.sequence_ids == hf.sequence_ids(i)
        assert [tuple(o) for o in window.offsets] == [tuple(o) for o in hf["offset_mapping"][i]]
    # Neighbouring windows share exactly `stride` context tokens.
    contexts = [[o for o, s in zip(w.offsets, w.sequence_ids) if s == 1] for w in windows]
    for before, after in zip(contexts, contexts[1:]):
        assert before[-16:] == after[:16]


def token_span(window, first_char, last_char):
    """The positions in a window of the context tokens that cover characters first_char..last_char."""
    positions = [i for i, (s, (a, b)) in enumerate(zip(window.sequence_ids, window.offsets))
                 if s == 1 and a < last_char and b > first_char]
    return positions[0], positions[-1]


def test_an_answer_only_the_second_window_holds(tokenizer):
    windows = question_windows(tokenizer, QUESTION, CONTEXT, max_length=96, stride=24)
    first_char = CONTEXT.index("Zürich")
    last_char = CONTEXT.index(ANSWER) + len(ANSWER)
    holds = [w for w, window in enumerate(windows)
             if any(s == 1 and a <= first_char < b for s, (a, b) in zip(window.sequence_ids, window.offsets))
             and any(s == 1 and a < last_char <= b for s, (a, b) in zip(window.sequence_ids, window.offsets))]
    assert holds == [1], "the test's text should put the span in the second window only"

    batch = tokenizer.pad(windows)  # what a model would read: (W, T)
    W, T = batch["input_ids"].shape
    generator = torch.Generator().manual_seed(0)
    start_logits, end_logits = torch.randn(W, T, generator=generator), torch.randn(W, T, generator=generator)
    start, end = token_span(windows[1], first_char, last_char)
    start_logits[1, start], end_logits[1, end] = 9.0, 8.0
    answers = answer_question(windows, start_logits, end_logits, CONTEXT, max_answer_length=30)
    best = answers[0]
    assert (best.window, best.start_token, best.end_token) == (1, start, end)
    assert best.text == CONTEXT[first_char:last_char] == "Zürich, had lived forty-one years"  # as written, ü kept
    assert best.score == pytest.approx(float(start_logits[1, start]) + float(end_logits[1, end]))

    # Every answer is the context's own substring, and the n-best across windows is what a brute force
    # over each window, one entry per span of characters, finds.
    for answer in answers:
        assert answer.text == CONTEXT[answer.start:answer.end]
    best_by_chars = {}
    for w, window in enumerate(windows):
        allowed = [s == 1 for s in window.sequence_ids]
        n = len(allowed)
        for score, s, e in brute_force(start_logits[w, :n].double(), end_logits[w, :n].double(), allowed, 30):
            chars = (window.offsets[s][0], window.offsets[e][1])
            best_by_chars[chars] = max(best_by_chars.get(chars, -math.inf), score)
    expected = sorted(best_by_chars.items(), key=lambda item: -item[1])[:20]
    assert [((a.start, a.end), a.score) for a in answers] == expected


def test_a_span_two_windows_hold_is_listed_once_with_its_better_score(tokenizer):
    context = "Bats sleep by day in caves. They hunt moths at night. The oldest ringed bat lived 41 years."
    windows = question_windows(tokenizer, "When do bats hunt?", context, max_length=22, stride=6)
    night = context.index("night")
    in_both = [w for w, window in enumerate(windows)
               if any(s == 1 and a == night for s, (a, _) in zip(window.sequence_ids, window.offsets))]
    assert len(in_both) >= 2
    start_logits, end_logits = torch.zeros(len(windows), 22), torch.zeros(len(windows), 22)
    for rank, w in enumerate(in_both):
        i = next(i for i, (a, _) in enumerate(windows[w].offsets) if a == night and windows[w].sequence_ids[i] == 1)
        start_logits[w, i], end_logits[w, i] = 3.0 + rank, 3.0
    answers = answer_question(windows, start_logits, end_logits, context, n_best=50)
    nights = [a for a in answers if a.text == "night"]
    assert len(nights) == 1 and nights[0].window == in_both[-1] and nights[0].score == 3.0 + len(in_both) - 1 + 3.0
    assert len({(a.start, a.end) for a in answers}) == len(answers)


def test_spans_keep_their_rules():
    T = 12
    generator = torch.Generator().manual_seed(1)
    start_logits, end_logits = torch.randn(T, generator=generator), torch.randn(T, generator=generator)
    sequence_ids = [None, 0, 0, None] + [1] * 7 + [None]
    offsets = [(0, 0)] * 4 + [(i * 2, i * 2 + 1) for i in range(7)] + [(0, 0)]
    context = "a b c d e f g"
    answers = answers_in_window(start_logits, end_logits, offsets, sequence_ids, context, n_best=100,
                                max_answer_length=3)
    assert len(answers) == 7 + 6 + 5  # spans of 1, 2 and 3 of the 7 context tokens
    for a in answers:
        assert 4 <= a.start_token <= a.end_token <= 10 and a.end_token - a.start_token < 3
        assert a.text == context[a.start:a.end]
    assert [a.score for a in answers] == sorted((a.score for a in answers), reverse=True)


def test_no_answer_when_cls_beats_the_best_span():
    sequence_ids = [None, 0, None, 1, 1, None]
    offsets = [(0, 0), (0, 3), (0, 0), (0, 4), (5, 8), (0, 0)]
    windows = [type("Window", (), {"sequence_ids": sequence_ids, "offsets": offsets})() for _ in range(2)]
    context = "bats fly"
    start_logits = torch.tensor([[6.0, 0, 0, 2, 1, 0], [4.0, 0, 0, 2, 1, 0]])
    end_logits = torch.tensor([[6.0, 0, 0, 0, 3, 0], [2.0, 0, 0, 0, 3, 0]])  # [CLS] scores 12 and 6

    # Off by default: the best span wins however sure [CLS] is.
    assert answer_question(windows, start_logits, end_logits, context)[0].text == "bats fly"
    # On: the lowest of the windows' [CLS] scores (6) against the best span (5).
    answers = answer_question(windows, start_logits, end_logits, context, allow_no_answer=True)
    assert answers[0] == Answer("", 0, 0, 6.0, 1, 0, 0)
    assert answers[1].text == "bats fly"
    # A threshold of 1 or more lets the span stand: the null then goes after it.
    answers = answer_question(windows, start_logits, end_logits, context, allow_no_answer=True, no_answer_threshold=1.0)
    assert [a.text for a in answers[:3]] == ["bats fly", "", "fly"]


def test_a_window_without_context(tokenizer):
    windows = question_windows(tokenizer, "Where do bats sleep?", "", max_length=32, stride=0)
    assert len(windows) == 1 and 1 not in windows[0].sequence_ids
    logits = torch.zeros(1, len(windows[0].ids))
    assert answer_question(windows, logits, logits, "") == []
    assert answer_question(windows, logits, logits, "", allow_no_answer=True) == [Answer("", 0, 0, 0.0, 0, 0, 0)]


def test_errors_name_what_is_wrong(tokenizer):
    with pytest.raises(ValueError, match="leaves no room"):
        question_windows(tokenizer, "how long " * 20, "bats", max_length=16)
    with pytest.raises(ValueError, match="stride must be"):
        question_windows(tokenizer, "how long?", "bats", max_length=16, stride=11)
    windows = question_windows(tokenizer, "how long?", "forty years", max_length=16, stride=2)
    with pytest.raises(ValueError, match="1 windows but 2 rows"):
        answer_question(windows, torch.zeros(2, 16), torch.zeros(2, 16), "forty years")
    with pytest.raises(ValueError, match="one of each per token"):
        answers_in_window(torch.zeros(3), torch.zeros(3), windows[0].offsets, windows[0].sequence_ids, "forty years")
