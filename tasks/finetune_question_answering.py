"""Fine-tune all-MiniLM-L6-v2 to answer cloze questions by pointing at a span of a paragraph.

    python -m tasks.finetune_question_answering          # 5 minutes on 2 cores; --minutes to change

The questions are made here, cloze-style (Hermann et al. 2015, "Teaching Machines to Read and
Comprehend"), from the 100 Wikipedia articles that ship with gensim (tasks/corpus.py), using the
links their editors put in. For one sentence of a paragraph and one linked span in it:
  - the question is that sentence with the span replaced by "[MASK]";
  - the context is the rest of the paragraph, *without that sentence*: left in, the answer would
    stand right beside the question's own words, and the model could copy it by matching the
    words around "[MASK]" without reading anything else;
  - the answer is the first whole-word occurrence of the span's text in that context, and the
    question is kept only where there is one (extractive question answering must point at it).

    >>> paragraph = corpus.LinkedParagraph("Bats", "Bats are mammals. Most bats eat insects. "
    ...                                    "The insects bats eat are moths.", [(9, 16), (32, 39)])
    >>> for c in cloze_questions(paragraph):
    ...     print(c.question, "|", c.context, "|", c.context[c.answer_start:c.answer_end])
    Most bats eat [MASK]. | Bats are mammals. The insects bats eat are moths. | insects

("mammals" gives no question: no other sentence names it.) "[MASK]" is the placeholder because
the tokenizer reads it as the single token BERT was pre-trained to fill in; Hermann et al.'s
"@placeholder" would be three pieces of no meaning ("@", "place", "##holder").

This is a silver, automatically made dataset: nobody checked that a question can be answered from
its context. Some cannot (the span's text also names something else; "state" is linked as a
concept), and the other occurrence the answer points at may mean something else. The figures
measure agreement with these automatic answers.

The model is BertForQuestionAnswering: all-MiniLM-L6-v2 with a new `qa_outputs` head (start and end
scores per token, minibert/app/answers.py). Each question and context is cut into windows of
MAX_LENGTH tokens that share STRIDE tokens of context (most contexts fit in one). A window that
does not hold the whole answer is kept with start = end = 0, the [CLS] token, as transformers'
run_qa.py does: it teaches low span scores where the answer is not, so that the best span across
windows (answers.answer_question) comes from a window that holds it. The answer is one occurrence,
the first, so a window that holds only a later occurrence of the same text is labelled [CLS] too:
it is taught "not here" over the answer's own words. That is the price of one gold span per question,
as in SQuAD's training data; here it labels 78 of the 1,891 training windows (of 415 labelled [CLS];
294 of the 1,337 training questions have their answer more than once in the context). When scoring,
a later occurrence counts: the text is compared, not the place. What learns: the new head and
the top --trainable-layers encoder layers (default 2), at --learning-rate (default 3e-4). Measured
here for 2 minutes each on 2 CPU cores shared with other jobs (held out, 148 questions): all 6
layers (the embeddings frozen, as --trainable-layers 6 then meant) at 1e-4 took 8 steps, exact
match 0.054, F1 0.119; all 6 at 3e-4, 9 steps, 0.054 and 0.096; the top 2 at 3e-4, 15 steps, 0.081
and 0.150. On a CPU a step is the cost, and 2 layers take half
the time of 6 (the frozen layers need no backward pass). The gaps are a few questions out of 148:
with a GPU's many more steps, all 6 layers may win.

A tenth of the articles, whole, are held out. On their questions the program prints exact match and
token F1 (SQuAD v1.1's, after its normalisation) for the model beside three baselines that read the
context, and the question only to leave its words out. Their candidate answers are the texts linked
anywhere in the training articles that occur in the context as whole words (they hold the answer of
32 of the 148 held-out questions): the first in the context; the most frequent in it, and the most
frequent of those the question does not contain (Hermann et al.'s "maximum frequency" and
"exclusive frequency", with link texts standing in for their entities). The full run, with the
defaults, on 2 CPU cores (AMD EPYC) shared with two other training runs (the progress bar left out,
the first line wrapped here):

    $ python -m tasks.finetune_question_answering --out /tmp/qa/full
    fine-tuning question answering (the top 2 layers and a new head): 90 articles, 1337 cloze questions
    in 1891 windows (415 without the answer, labelled [CLS]), 105 steps of 16; 10 articles held out, with 148 questions
    held out, 148 cloze questions (exact match, token F1; the baselines' candidates hold 32 of the answers):
      question answering (trained here)    EM 0.081   F1 0.151
      the first training link text in it   EM 0.047   F1 0.073
      the most frequent one                EM 0.061   F1 0.090
      ... of those not in the question     EM 0.061   F1 0.087
      Q: Of these languages, only Vietnamese, [MASK], and Mon have a long-established recorded history, and only Vietna...
         predicted: 'Nepal'   gold: 'Khmer'
      Q: Of these languages, only Vietnamese, Khmer, and [MASK] have a long-established recorded history, and only Viet...
         predicted: 'Nepal'   gold: 'Mon'
      Q: ...is poorly attested, as a fourteenth), which have traditionally been grouped into two, as Mon–Khmer and [MASK].
         predicted: 'Khmer as a taxon'   gold: 'Munda'
    trained 54 steps in 5.1 minutes; model: /tmp/qa/full/model

The time budget stopped it at 54 of the 105 steps it planned (the machine got busier after it
measured its speed). The baselines and the three examples were made again afterwards, by this
program's code, on the same 148 questions with the model that run saved: the run itself had scored
baselines on the context's own links (exact match 0.014 to 0.020) and shown three other questions.

It writes OUT/model (loadable by transformers' BertForQuestionAnswering, with the tokenizer),
OUT/log.jsonl, OUT/loss.png and OUT/metrics.json. OUT must be new or empty; `--resume` goes on from
the last checkpoint in OUT with the run's own steps, learning rate and seed.
"""

from __future__ import annotations

import collections
import json
import re
import string
from dataclasses import dataclass
from pathlib import Path

import torch

from minibert import BertForQuestionAnswering, Tokenizer
from minibert.app.answers import answer_question, question_windows
from minibert.training.loop import StepData

from . import corpus
from ._common import (add_trainable_layers, freeze_below, one_line_errors, parse_training_args, resumed_config,
                      shipped_tokenizer, training_parser, what_learns)
from .pretrain import schedule, train_timed

PLACEHOLDER = "[MASK]"  # one token to the tokenizer, the one BERT was pre-trained to fill in
MAX_LENGTH = 192  # tokens per window; 90% of the paragraphs are under 180 tokens
STRIDE = 64  # context tokens a window shares with the one before
MAX_QUESTION_TOKENS = 64  # longer questions (6% of them) are dropped: they would leave too little room for context
BATCH_SIZE = 16
EXAMPLES_SHOWN = 3


# -- the cloze questions ------------------------------------------------------------------------------

@dataclass
class Cloze:
    """One question; answer_start/answer_end are characters of the context: context[answer_start:answer_end]."""

    question: str  # the sentence, with the linked span replaced by PLACEHOLDER
    context: str  # the paragraph without that sentence
    answer_start: int
    answer_end: int

    @property
    def answer(self) -> str:
        return self.context[self.answer_start:self.answer_end]


def without_span(text: str, start: int, end: int) -> str:
    """The text with text[start:end] cut out, one space left between what was before and after."""
    before, after = text[:start].rstrip(), text[end:].lstrip()
    return before + (" " if before and after else "") + after


def whole_words(phrase: str) -> re.Pattern:
    """A pattern that finds `phrase` only as whole words: "art" in "modern art." but not in "party"."""
    return re.compile(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)")


def first_occurrence(text: str, phrase: str) -> int | None:
    """Where `phrase` first occurs in `text` as whole words, or None."""
    match = whole_words(phrase).search(text)
    return match.start() if match else None


def cloze_questions(paragraph: corpus.LinkedParagraph) -> list[Cloze]:
    """Every cloze question of one paragraph: each linked span of each sentence, removed from its
    sentence, whose text occurs in the rest of the paragraph (as whole words; its first occurrence
    is the answer). Questions whose answer the context does not hold are dropped."""
    questions = []
    for s_start, s_end in corpus.sentence_spans(paragraph.text):
        inside = [(a, b) for a, b in paragraph.links if s_start <= a and b <= s_end]
        if not inside:
            continue
        context = without_span(paragraph.text, s_start, s_end)
        for a, b in inside:
            answer = paragraph.text[a:b]
            found = first_occurrence(context, answer)
            if found is None:  # not answerable by pointing into the context
                continue
            question = paragraph.text[s_start:a] + PLACEHOLDER + paragraph.text[b:s_end]
            questions.append(Cloze(question, context, found, found + len(answer)))
    return questions


def all_questions(articles: list[corpus.LinkedArticle], tokenizer: Tokenizer) -> list[Cloze]:
    """The cloze questions of the articles, less those over MAX_QUESTION_TOKENS tokens."""
    questions = [c for article in articles for paragraph in article.paragraphs for c in cloze_questions(paragraph)]
    return [c for c in questions if len(tokenizer.tokenize(c.question)) <= MAX_QUESTION_TOKENS]


# -- from the answer's characters to token positions in a window ------------------------------------------

def answer_tokens(window, answer_start: int, answer_end: int) -> tuple[int, int] | None:
    """The answer's first and last token (inclusive) in one window, or None where the window does not
    hold the whole answer (it lies outside, or the window's edge cuts it).

    `window.offsets[i]` is the (start, end) characters of token i in the context, for the tokens with
    `window.sequence_ids[i] == 1`; the question's tokens and [CLS], [SEP] are skipped. The first token
    of the answer is the first context token that ends after answer_start; the last is the last one
    that starts before answer_end. So a piece like "##s" that runs past the answer's end still counts:
    the answer is read back from the offsets of whole tokens.
    """
    context = [i for i, sequence in enumerate(window.sequence_ids) if sequence == 1]
    if not context:
        return None
    window_start, window_end = window.offsets[context[0]][0], window.offsets[context[-1]][1]
    if answer_start < window_start or answer_end > window_end:  # not all of it in this window
        return None
    start = next(i for i in context if window.offsets[i][1] > answer_start)
    end = next(i for i in reversed(context) if window.offsets[i][0] < answer_end)
    return start, end


@dataclass
class Window:
    """One training example: a window's ids, and the answer's token positions in it (0, 0: [CLS], not here)."""

    ids: list[int]
    type_ids: list[int]
    start: int
    end: int


def training_windows(tokenizer: Tokenizer, questions: list[Cloze]) -> list[Window]:
    """Every window of every question, each labelled with its answer's tokens or [CLS] (see the docstring)."""
    examples = []
    for c in questions:
        for window in question_windows(tokenizer, c.question, c.context, MAX_LENGTH, STRIDE):
            start, end = answer_tokens(window, c.answer_start, c.answer_end) or (0, 0)
            examples.append(Window(window.ids, window.type_ids, start, end))
    return examples


def collate_for(tokenizer: Tokenizer):
    def collate(rows: list[Window], generators):
        batch = tokenizer.pad(rows)  # input_ids, token_type_ids, attention_mask: (B, T)
        batch["start_positions"] = torch.tensor([r.start for r in rows])  # (B,)
        batch["end_positions"] = torch.tensor([r.end for r in rows])  # (B,)
        return batch
    return collate


# -- scores, as SQuAD's evaluation computes them --------------------------------------------------------

def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles (a, an, the), single spaces.

    >>> normalize_answer("The  Anarchist's  Cookbook!")
    'anarchists cookbook'
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 where the two are the same after normalize_answer, else 0.0 (two empty answers match)."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """The harmonic mean of precision and recall of the normalised words, counted with repeats, as
    SQuAD v1.1's evaluate-v1.1.py computes it: no word shared, F1 0, and so 0 also where both sides
    are empty. (SQuAD v2.0 scores two empty answers 1, for its unanswerable questions; here every
    question has an answer.)

    >>> round(token_f1("the free association", "free associations"), 3)   # 'free' shared: P 1/2, R 1/2
    0.5
    """
    predicted, wanted = normalize_answer(prediction).split(), normalize_answer(gold).split()
    shared = sum((collections.Counter(predicted) & collections.Counter(wanted)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(wanted)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: list[str], golds: list[str]) -> dict[str, float]:
    """Mean exact match and token F1 over the questions, each between 0 and 1.

    Raises:
        ValueError: no questions, or not one prediction per question.
    """
    if not golds:
        raise ValueError("no questions to score")
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} questions")
    n = len(golds)
    return {"exact_match": sum(map(exact_match, predictions, golds)) / n,
            "f1": sum(map(token_f1, predictions, golds)) / n}


# -- the baselines: answers that read the context, and the question only to leave its words out --------------

def linked_texts(articles: list[corpus.LinkedArticle]) -> set[str]:
    """Every text the editors linked in these articles: the baselines' candidate answers, taken from
    the training articles. (The held-out context's own links would reach few answers: editors link a
    name once, and the linked mention was usually in the sentence that became the question.)"""
    return {p.text[a:b] for article in articles for p in article.paragraphs for a, b in p.links}


def candidates(context: str, texts: set[str]) -> list[tuple[str, int]]:
    """The texts that occur in the context as whole words, each with how many times it does, in the
    order of their first occurrence (the longer first where two start at the same character).

    >>> candidates("Paris lies on the Seine. The Seine is long.", {"Seine", "Paris", "Loire", "long"})
    [('Paris', 1), ('Seine', 2), ('long', 1)]
    """
    found = []
    for text in texts:
        if text not in context:  # a quick test before the pattern
            continue
        starts = [m.start() for m in whole_words(text).finditer(context)]
        if starts:
            found.append((starts[0], -len(text), text, len(starts)))
    return [(text, count) for _, _, text, count in sorted(found)]


def first_candidate(question: str, found: list[tuple[str, int]]) -> str:
    """The candidate that occurs first in the context ("" where there is none)."""
    return found[0][0] if found else ""


def most_frequent(question: str, found: list[tuple[str, int]], skip_question_words: bool = False) -> str:
    """The candidate that occurs most often in the context (ties: the first), Hermann et al.'s
    "maximum frequency" baseline. With skip_question_words, only candidates the question does not
    contain: their "exclusive frequency" (the answer was taken out of the question, so what the
    question still names is seldom it). "" where no candidate is left."""
    if skip_question_words:
        found = [(text, count) for text, count in found if first_occurrence(question, text) is None]
    return max(found, key=lambda text_count: text_count[1])[0] if found else ""  # max keeps the first of ties


def exclusive_frequency(question: str, found: list[tuple[str, int]]) -> str:
    return most_frequent(question, found, skip_question_words=True)


BASELINES = {  # name in metrics.json -> (what is printed, the answer it gives from the question and candidates)
    "first_candidate": ("the first training link text in it", first_candidate),
    "most_frequent": ("the most frequent one", most_frequent),
    "exclusive_frequency": ("... of those not in the question", exclusive_frequency),
}


# -- the model's answers -------------------------------------------------------------------------------

@torch.no_grad()
def predict(model: BertForQuestionAnswering, tokenizer: Tokenizer, questions: list[Cloze],
            windows_per_batch: int = 32) -> list[str]:
    """The best span of each question's context, across its windows (answers.answer_question)."""
    model.eval()
    device = next(model.parameters()).device
    windows = [question_windows(tokenizer, c.question, c.context, MAX_LENGTH, STRIDE) for c in questions]
    flat = [w for ws in windows for w in ws]
    starts, ends = [], []
    for i in range(0, len(flat), windows_per_batch):
        batch = {k: v.to(device) for k, v in tokenizer.pad(flat[i:i + windows_per_batch]).items()}
        out = model(**batch)
        starts += list(out.start_logits.cpu())  # each (T,), T the batch's longest window
        ends += list(out.end_logits.cpu())
    answers, at = [], 0
    for c, ws in zip(questions, windows):
        best = answer_question(ws, starts[at:at + len(ws)], ends[at:at + len(ws)], c.context, n_best=1)
        answers.append(best[0].text if best else "")
        at += len(ws)
    return answers


def shorten(text: str, around: int | None = None, width: int = 110) -> str:
    """At most `width` characters of text, around character `around` (the placeholder) if given."""
    if len(text) <= width:
        return text
    start = 0 if around is None else max(0, min(around - width // 2, len(text) - width))
    return ("..." if start else "") + text[start:start + width] + ("..." if start + width < len(text) else "")


# -- the run ---------------------------------------------------------------------------------------------

def run(minutes: float = 5.0, out: Path = Path("out/question_answering"), steps: int | None = None,
        seed: int | None = None, progress: bool = True, trainable_layers: int = 2,
        learning_rate: float | None = None, device: str = "cpu", max_minutes: float | None = None,
        resume: bool = False, max_articles: int | None = None) -> dict:
    """Train and evaluate; returns the report written to OUT/metrics.json. `steps` plans the schedule
    for that many steps instead of fitting it to `minutes`; `max_minutes` then still caps the time.
    `resume` goes on from the last checkpoint in `out`, with the run's own steps, learning rate (3e-4
    unless given) and seed (0 unless given). `max_articles` uses only the first articles (for tests).

    Raises:
        ValueError: the training or the held-out articles give no cloze questions (too few articles).
    """
    saved = resumed_config(out, steps=steps, learning_rate=learning_rate, seed=seed) if resume else None
    seed = saved.seed if saved else (seed or 0)
    tokenizer, path = shipped_tokenizer()
    articles = corpus.wikipedia_linked_articles()[:max_articles]
    train_articles, held_articles = corpus.split_held_out(articles, 0.1)
    train_questions, held_questions = all_questions(train_articles, tokenizer), all_questions(held_articles, tokenizer)
    for name, questions, chosen in (("training", train_questions, train_articles),
                                    ("held-out", held_questions, held_articles)):
        if not questions:  # with few articles (max_articles), a side may have none
            raise ValueError(f"the {len(chosen)} {name} article(s) of {len(articles)} give no cloze questions: "
                             "use more articles")
    examples = training_windows(tokenizer, train_questions)
    torch.manual_seed(seed)
    model = BertForQuestionAnswering.from_pretrained(path, init_new_head=True)
    freeze_below(model, trainable_layers)
    model.to(device)
    data = StepData(examples, BATCH_SIZE, collate_for(tokenizer), seed=seed)
    config = schedule(saved, model, data, learning_rate=learning_rate or 3e-4, steps=steps, minutes=minutes, out=out,
                      seed=seed, progress=progress, max_minutes=max_minutes)
    unanswered = sum(e.start == 0 for e in examples)
    print(f"fine-tuning question answering ({what_learns(trainable_layers)} and a new head): "
          f"{len(train_articles)} articles, {len(train_questions)} cloze questions in {len(examples)} windows "
          f"({unanswered} without the answer, labelled [CLS]), {config.total_steps} steps of {BATCH_SIZE}; "
          f"{len(held_articles)} articles held out, with {len(held_questions)} questions")
    steps, seconds, losses = train_timed(model, config, data, tokenizer, resume=saved is not None)

    golds = [c.answer for c in held_questions]
    predictions = predict(model, tokenizer, held_questions)
    ours = squad_scores(predictions, golds)
    texts = linked_texts(train_articles)
    found = [candidates(c.context, texts) for c in held_questions]
    baselines = {name: squad_scores([answer(c.question, f) for c, f in zip(held_questions, found)], golds)
                 for name, (_, answer) in BASELINES.items()}
    model.save_pretrained(out / "model", tokenizer=tokenizer)
    shown = [{"question": c.question, "predicted": p, "gold": c.answer}
             for c, p in list(zip(held_questions, predictions))[:EXAMPLES_SHOWN]]
    report = {"steps": steps, "seconds": round(seconds), "trainable_layers": trainable_layers,
              "learning_rate": config.learning_rate, "max_length": MAX_LENGTH, "stride": STRIDE,
              "train_articles": len(train_articles), "train_questions": len(train_questions),
              "train_windows": len(examples), "held_out_articles": len(held_articles),
              "held_out_questions": len(held_questions),
              "baseline_reach": sum(any(t == c.answer for t, _ in f) for c, f in zip(held_questions, found)),
              "model": ours, "baselines": baselines, "examples": shown,
              "losses": {"first": losses[:5], "last": losses[-5:]}}
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"held out, {len(held_questions)} cloze questions (exact match, token F1; "
          f"the baselines' candidates hold {report['baseline_reach']} of the answers):")
    print(f"  question answering (trained here)    EM {ours['exact_match']:.3f}   F1 {ours['f1']:.3f}")
    for name, (label, _) in BASELINES.items():
        print(f"  {label:<36} EM {baselines[name]['exact_match']:.3f}   F1 {baselines[name]['f1']:.3f}")
    for example in shown:
        print(f"  Q: {shorten(example['question'], example['question'].find(PLACEHOLDER))}")
        print(f"     predicted: {example['predicted']!r}   gold: {example['gold']!r}")
    print(f"trained {steps} steps in {seconds / 60:.1f} minutes; model: {out / 'model'}")
    return report


@one_line_errors
def main(argv=None) -> None:
    p = training_parser(__doc__, 5.0, "out/question_answering", "3e-4", "the order of the windows and the new head")
    add_trainable_layers(p, 2)
    args = parse_training_args(p, argv)
    run(args.minutes, args.out, args.steps, args.seed, trainable_layers=args.trainable_layers,
        learning_rate=args.learning_rate, device=args.device, resume=args.resume)


if __name__ == "__main__":
    main()
