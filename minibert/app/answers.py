"""Extractive question answering's last step: from two scores per token to the answer's characters.

A question-answering head (transformers' `BertForQuestionAnswering`) reads "[CLS] question [SEP]
context [SEP]" and gives every token two numbers: `start_logits` (how much the answer begins here)
and `end_logits` (how much it ends here). The answer is a span (start, end) of the context, scored
start_logits[start] + end_logits[end] (logits add where probabilities multiply). What is easy to get
wrong is everything around that sum, and this file writes each rule out:

1. start <= end, and the span at most `max_answer_length` tokens;
2. both ends inside the context (sequence id 1), never in the question or on [CLS], [SEP], padding;
3. the n best spans, not only the best, each with its score;
4. back to characters of the original context through the tokenizer's offsets, so the answer is the
   text as written ("41 years", not the lower-cased pieces "41", "years");
5. a context longer than the model reads is cut into overlapping windows (the tokenizer's
   truncation="only_second" with a stride), each window scored on its own, the best span taken
   across them;
6. optionally, as SQuAD 2.0 does, "no answer": the span (0, 0), [CLS] to [CLS], wins when its score
   beats the best span's.

One window by hand, the scores a model might give ([CLS] who [SEP] bats fly [SEP]; the context is
tokens 3 and 4):

    >>> start_logits = torch.tensor([5.0, 0.0, 0.0, 2.0, 1.0, 0.0])
    >>> end_logits = torch.tensor([5.0, 0.0, 0.0, 0.0, 3.0, 0.0])
    >>> in_context = torch.tensor([False, False, False, True, True, False])
    >>> best_spans(start_logits, end_logits, in_context, n_best=3)     # (score, start, end), best first
    [(5.0, 3, 4), (4.0, 4, 4), (2.0, 3, 3)]

A long context in windows; the answer sits in the second:

    >>> context = "Bats sleep by day in caves. They hunt moths at night. The oldest ringed bat lived 41 years."
    >>> windows = question_windows(tokenizer, "How long did the bat live?", context, max_length=24, stride=4)
    >>> len(windows), windows[1].tokens        # "at night . the": the 4 tokens shared with window 0
    (2, ['[CLS]', 'how', 'long', 'did', 'the', 'bat', 'live', '?', '[SEP]', 'at', 'night', '.', 'the', 'oldest', 'ring', '##ed', 'bat', 'lived', '41', 'years', '.', '[SEP]'])
    >>> start_logits, end_logits = torch.zeros(2, 24), torch.zeros(2, 24)   # (W, T), as a model returns them
    >>> start_logits[1, 18], end_logits[1, 19] = 6.0, 4.0                   # "41" ... "years"
    >>> answer = answer_question(windows, start_logits, end_logits, context)[0]
    >>> answer.text, answer.score, answer.window, context[answer.start:answer.end]
    ('41 years', 10.0, 1, '41 years')
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Answer:
    """One candidate answer. The null answer ("no answer", SQuAD 2.0) has text "", start = end = 0,
    and tokens (0, 0): the [CLS] token of the window that scored it."""

    text: str  # context[start:end], the characters as written
    start: int  # character offsets into the context: text == context[start:end]
    end: int
    score: float  # start_logits[start_token] + end_logits[end_token]
    window: int  # which window of the context it was read from
    start_token: int  # positions in that window's input_ids; end_token inclusive
    end_token: int


def question_windows(tokenizer, question: str, context: str, max_length: int = 384, stride: int = 128) -> list:
    """"[CLS] question [SEP] context [SEP]", the context cut into overlapping windows if it is too long.

    Each window repeats the whole question and goes on with the context where the one before left
    off, less `stride` tokens of overlap, so an answer cut by one window's edge is whole in the next
    (384 and 128 are the usual SQuAD settings). Only the context is cut (truncation="only_second").

    Args:
        tokenizer: a minibert `Tokenizer` (Tokenizer.windows does the cutting).
        question, context: the two texts.
        max_length: tokens per window, with [CLS] and the two [SEP].
        stride: tokens of context each window shares with the one before.

    Returns:
        One `tokenizers.Encoding` per window, in the order of the context: `ids` and `type_ids` for
        the model (`tokenizer.pad(windows)` makes the batch), `sequence_ids` (None, 0 question,
        1 context) and `offsets` (character offsets into `context` for the context's tokens).

    Raises:
        ValueError: the question leaves no room for the context, or stride is not below that room.
    """
    return tokenizer.windows(question, context, max_length, stride)


def best_spans(start_logits, end_logits, allowed, n_best: int = 20,
               max_answer_length: int = 30) -> list[tuple[float, int, int]]:
    """The best (start, end) spans of one window, by start_logits[start] + end_logits[end].

    Args:
        start_logits, end_logits: (T,) scores of one window.
        allowed: (T,) bool, True where a span may begin or end (the context's tokens).
        n_best: how many spans to return at most.
        max_answer_length: the most tokens a span may have (end - start + 1).

    Returns:
        Up to n_best (score, start, end) tuples, best first; end inclusive; [] where no token is allowed.
    """
    start_logits = torch.as_tensor(start_logits).double()  # (T,) float64: sums that compare exactly
    end_logits = torch.as_tensor(end_logits).double()  # (T,)
    allowed = torch.as_tensor(allowed, dtype=torch.bool)  # (T,)
    T = start_logits.shape[0]

    scores = start_logits[:, None] + end_logits[None, :]  # (T, T): scores[s, e] = start[s] + end[e]
    starts = torch.arange(T)[:, None]  # (T, 1)
    ends = torch.arange(T)[None, :]  # (1, T)
    valid = (starts <= ends) & (ends - starts < max_answer_length)  # (T, T): ordered, not too long
    valid &= allowed[:, None] & allowed[None, :]  # both ends inside the context
    scores = scores.masked_fill(~valid, float("-inf"))  # (T, T)

    k = min(n_best, int(valid.sum()))
    top = scores.flatten().topk(k)  # the k highest of the T*T, highest first
    return [(score, index // T, index % T) for score, index in zip(top.values.tolist(), top.indices.tolist())]


def answers_in_window(start_logits, end_logits, offsets, sequence_ids, context: str, n_best: int = 20,
                      max_answer_length: int = 30, window: int = 0) -> list[Answer]:
    """The n best answers of one window, as characters of the context.

    Args:
        start_logits, end_logits: (T,) scores of the window; longer (padding) is fine, the padding is cut.
        offsets: (start, end) characters of each token, from the window's encoding; for the context's
            tokens they point into `context`.
        sequence_ids: each token's text: None (special tokens), 0 (question), 1 (context).
        context: the context as given to the tokenizer.
        n_best, max_answer_length: as for `best_spans`.
        window: the window's number, kept on each answer.

    Returns:
        Up to n_best `Answer`s, best first.

    Raises:
        ValueError: fewer logits than tokens.
    """
    T = len(sequence_ids)
    if len(start_logits) < T or len(end_logits) < T:
        raise ValueError(f"window {window} has {T} tokens but {len(start_logits)} start and {len(end_logits)} "
                         "end logits: one of each per token")
    in_context = torch.tensor([sequence == 1 for sequence in sequence_ids])  # (T,) bool
    answers = []
    for score, start, end in best_spans(start_logits[:T], end_logits[:T], in_context, n_best, max_answer_length):
        first_char, last_char = offsets[start][0], offsets[end][1]  # from the first piece's start to the last's end
        answers.append(Answer(context[first_char:last_char], first_char, last_char, score, window, start, end))
    return answers


def answer_question(windows, start_logits, end_logits, context: str, n_best: int = 20, max_answer_length: int = 30,
                    allow_no_answer: bool = False, no_answer_threshold: float = 0.0) -> list[Answer]:
    """The n best answers across all windows of a context.

    Each window's spans are scored on their own; a span of characters that two overlapping windows
    both hold is listed once, with its better score.

    With allow_no_answer, the null answer is scored too: start_logits[0] + end_logits[0], the [CLS]
    token, which a SQuAD 2.0 model learns to point at when the context holds no answer. Of the windows'
    null scores the lowest counts (the window surest that it holds an answer), as transformers'
    run_qa.py does, and the null answer goes before every span it beats by more than
    no_answer_threshold (raise it to answer more often).

    Args:
        windows: the encodings of `question_windows` (anything with `sequence_ids` and `offsets`).
        start_logits, end_logits: (W, T) scores, a row per window; T may exceed a window's length (padding).
        context: the context the windows were made from.
        n_best, max_answer_length: as for `best_spans`.
        allow_no_answer: let "no answer" win (SQuAD 2.0); without it the best span always wins.
        no_answer_threshold: how much the null score must beat a span by to go before it.

    Returns:
        Up to n_best `Answer`s, best first. Without allow_no_answer, [] when no window holds a context
        token; with it, the null answer is then the only one.

    Raises:
        ValueError: not one row of logits per window.
    """
    if len(start_logits) != len(windows) or len(end_logits) != len(windows):
        raise ValueError(f"{len(windows)} windows but {len(start_logits)} rows of start and {len(end_logits)} rows "
                         "of end logits: one row per window")
    best_by_chars: dict[tuple[int, int], Answer] = {}  # (start, end) characters -> its best-scored answer
    for w, window in enumerate(windows):
        for answer in answers_in_window(start_logits[w], end_logits[w], window.offsets, window.sequence_ids, context,
                                        n_best, max_answer_length, window=w):
            kept = best_by_chars.get((answer.start, answer.end))
            if kept is None or answer.score > kept.score:
                best_by_chars[(answer.start, answer.end)] = answer
    answers = sorted(best_by_chars.values(), key=lambda a: a.score, reverse=True)

    if allow_no_answer:
        null_scores = [float(start_logits[w][0]) + float(end_logits[w][0]) for w in range(len(windows))]  # [CLS]
        w = min(range(len(windows)), key=null_scores.__getitem__)
        null = Answer("", 0, 0, null_scores[w], w, 0, 0)
        place = next((i for i, a in enumerate(answers) if null.score > a.score + no_answer_threshold), len(answers))
        answers.insert(place, null)
    return answers[:n_best]
