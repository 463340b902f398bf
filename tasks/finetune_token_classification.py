"""Fine-tune all-MiniLM-L6-v2 to mark, word by word, the mentions that Wikipedia's editors linked.

    python -m tasks.finetune_token_classification        # 5 minutes on 2 cores; --minutes to change

The text is the 100 Wikipedia articles that ship with gensim, with their links kept
(tasks/corpus.py, wikipedia_linked_articles). Each paragraph is cut into sentences, each sentence
into words as BERT's pre-tokenizer cuts it (on spaces and around every punctuation mark, each word
with its characters), and each word is labelled in IOB2 from the paragraph's links:

    text    Proudhon ' s mutualism , the Paris  Commune and the state
    labels  O        O O B-LINK    O O   B-LINK I-LINK  O   O   B-LINK

(B-LINK: the first word of a link; I-LINK: its other words; O: outside. A word that a link covers in
part, "[[anarchist]]s", counts as inside.)

These labels are a **silver standard**, not gold named entities. Editors link a mention once, often
only the first time it appears, and they link concepts ("state", "mutualism") as well as names.
So a later, unlinked "Paris Commune" is labelled O, and a model that finds it is counted wrong:
precision here is a floor on the real thing. The figures below are against these labels.

What is trained on: the training articles' sentences that hold at least one link (8,945 of 18,410).
A sentence without any is more often one the editors did not link than one without a mention, and
nine words in ten are O anyway: in a short run, a model fed every sentence learns "all O" first and
stays there. The held-out figures are over every sentence of the held-out articles.

A tenth of the articles, whole, are held out (corpus.split_held_out: the same titles as the other
programs). On their sentences the program prints, side by side:
  - the model trained here;
  - "all O", which finds nothing (token accuracy is then the share of words outside links);
  - a gazetteer: the longest match, case-insensitive, of any text linked in the training articles,
    labelled B-LINK, I-LINK, ... (what a list of names does without a model);
as entity-level precision, recall and F1 (a predicted span counts only if its start and end both
match a link: seqeval's default for IOB2), and token accuracy over words.

The model is BertForTokenClassification, a new 3-label classifier on every token of all-MiniLM-L6-v2;
a word's label is read from its first piece, and only first pieces are trained
(minibert/training/word_labels.py). `--trainable-layers N` lets the top N encoder layers learn with
the head (6: the whole model, embeddings included). The default, the top 2 layers at a learning rate
of 1e-3 (a tenth of the steps to warm up, then a linear decay: pretrain.plan), was measured best of
what was tried in 5 minutes on 2 shared cores: a step of the top two layers costs about half a step of
the whole model, and in so short a run the steps count more than the depth. Held-out F1, the same
data and budget: top 2 layers at 1e-3, 124 steps, 0.364; the whole model at 5e-4, 63 steps, 0.339;
the whole model at 1e-4 or 3e-4, about 75 steps, trained on every sentence (before the choice above),
0.001 and 0.000: "all O".

The full run (on 2 cores shared with two other training runs; OMP_NUM_THREADS=1 made each step 4 to 8
times faster there than 2 threads), 265 steps in 5.0 minutes:

    held out, 2062 sentences, 2405 linked mentions (a silver standard: see the docstring):
                                           precision  recall      F1  accuracy
      token classifier (trained here)          0.310   0.510   0.385     0.896
      all O                                    0.000   0.000   0.000     0.904
      gazetteer (13899 linked texts)           0.079   0.177   0.110     0.830

It writes OUT/model (a checkpoint with the tokenizer, which transformers' BertForTokenClassification
loads), OUT/log.jsonl, OUT/loss.png and OUT/metrics.json. OUT must be new or empty. OUT/checkpoint is
saved every tenth of the run, and `--resume` (with the run's other options) goes on from it with the
run's own steps, learning rate and seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from minibert import BertForTokenClassification, Tokenizer
from minibert.training.loop import StepData
from minibert.training.word_labels import label_words

from . import corpus
from ._common import (add_trainable_layers, freeze_below, one_line_errors, parse_training_args, resumed_config,
                      shipped_tokenizer, training_parser, what_learns)
from .pretrain import schedule, train_timed

LABELS = ["O", "B-LINK", "I-LINK"]  # id -> name, IOB2
O, B, I = 0, 1, 2
BATCH_SIZE = 16
MAX_LENGTH = 128  # pieces per training sentence, with [CLS] and [SEP]; longer ones are cut
EVAL_MAX_LENGTH = 512  # the model's positions: held-out sentences are read whole
EVAL_BATCH_SIZE = 64


# ---------------------------------------------------------------------------------------------
# The data: sentences as words, with a label per word from the paragraph's links.
# ---------------------------------------------------------------------------------------------

@dataclass
class LabelledSentence:
    words: list[str]
    offsets: list[tuple[int, int]]  # each word's (start, end) characters in `text`
    labels: list[int]  # one per word: O, B or I
    text: str


def split_words(text: str) -> list[tuple[str, tuple[int, int]]]:
    """The words of `text` as BERT's pre-tokenizer cuts them: on whitespace, and every punctuation
    character a word of its own. Each with its (start, end) characters, so links can be matched.

    >>> split_words("Paris's 1871 Commune.")
    [('Paris', (0, 5)), ("'", (5, 6)), ('s', (6, 7)), ('1871', (8, 12)), ('Commune', (13, 20)), ('.', (20, 21))]
    """
    from tokenizers.pre_tokenizers import BertPreTokenizer

    return BertPreTokenizer().pre_tokenize_str(text)


def word_labels(offsets: list[tuple[int, int]], links: list[tuple[int, int]]) -> list[int]:
    """IOB2 ids for words at `offsets` from the linked character spans, in order: the first word that
    overlaps a link is B, the later ones I; a word overlapping no link is O. Spans must not overlap each other.

    Two links are two mentions, B... B..., even where they touch one word: that word belongs to the
    first link, and the second begins (B) at its first word the first did not take. A link wholly inside
    a word an earlier link took adds nothing: "[[Li]][[F]]" is one word, so one mention (chemical
    formulas: five links of the training articles, none held out, and no other link shares a word).

    >>> word_labels([(0, 3), (4, 9), (10, 14), (14, 15)], [(4, 14)])     # "The Paris Mint."
    [0, 1, 2, 0]
    """
    labels = [O] * len(offsets)
    for start, end in links:
        inside = [i for i, (s, e) in enumerate(offsets) if s < end and e > start and labels[i] == O]
        for n, i in enumerate(inside):
            labels[i] = B if n == 0 else I
    return labels


def labelled_sentences(paragraph: corpus.LinkedParagraph) -> tuple[list[LabelledSentence], int]:
    """The paragraph's sentences (corpus.sentences), each as words with IOB2 labels, and the number of
    links dropped because they cross from one sentence into the next (a sentence split gone wrong)."""
    found, kept = [], 0
    for start, end in corpus.sentence_spans(paragraph.text):
        sentence = paragraph.text[start:end]
        links = [(s - start, e - start) for s, e in paragraph.links if start <= s and e <= end]
        kept += len(links)
        words = split_words(sentence)
        if words:
            offsets = [span for _, span in words]
            found.append(LabelledSentence([w for w, _ in words], offsets, word_labels(offsets, links), sentence))
    return found, len(paragraph.links) - kept


def sentences_of(articles: list[corpus.LinkedArticle]) -> tuple[list[LabelledSentence], int]:
    """Every sentence of the articles, labelled, and the count of links dropped across sentence ends."""
    all_sentences, crossing = [], 0
    for article in articles:
        for paragraph in article.paragraphs:
            found, dropped = labelled_sentences(paragraph)
            all_sentences += found
            crossing += dropped
    return all_sentences, crossing


# ---------------------------------------------------------------------------------------------
# The measure: seqeval's entity-level precision, recall and F1 for IOB2, and token accuracy.
# ---------------------------------------------------------------------------------------------

def entity_spans(tags: list[str]) -> set[tuple[str, int, int]]:
    """The entities in a sentence's IOB2 tags, as (type, first word, last word + 1).

    As seqeval's default (conlleval's rules): an entity starts at B-X, or at an I-X that does not
    continue an entity of type X (after O, or after another type); it goes on over I-X of the same type.

    >>> sorted(entity_spans(["B-LINK", "I-LINK", "O", "I-LINK", "B-LINK", "B-LINK", "I-LINK"]))
    [('LINK', 0, 2), ('LINK', 3, 4), ('LINK', 4, 5), ('LINK', 5, 7)]
    """
    spans, start, kind = set(), None, None
    for i, tag in enumerate([*tags, "O"]):  # a final O closes the last entity
        prefix, tag_kind = (tag[0], tag[2:]) if tag != "O" else ("O", None)
        continues = prefix == "I" and start is not None and tag_kind == kind
        if start is not None and not continues:  # the entity before ends here
            spans.add((kind, start, i))
            start, kind = None, None
        if prefix in ("B", "I") and not continues:  # a new entity begins here
            start, kind = i, tag_kind
    return spans


def span_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """Entity-level precision, recall and F1 (micro-averaged over all sentences: an entity counts only
    where its type, start and end all match) and token accuracy, as seqeval's classification scores
    and accuracy_score give them. P or R with nothing to divide by is 0, and so is F1 then.

    >>> span_scores([["B-LINK", "I-LINK", "O", "B-LINK"]], [["B-LINK", "I-LINK", "O", "O"]])
    {'precision': 1.0, 'recall': 0.5, 'f1': 0.6667, 'accuracy': 0.75, 'entities': 2, 'predicted': 1}
    """
    if len(gold) != len(predicted) or any(len(g) != len(p) for g, p in zip(gold, predicted)):
        raise ValueError("gold and predicted tags must have the same sentences, and the same words in each")
    right = guessed = wanted = words = same = 0
    for g, p in zip(gold, predicted):
        g_spans, p_spans = entity_spans(g), entity_spans(p)
        right += len(g_spans & p_spans)
        guessed += len(p_spans)
        wanted += len(g_spans)
        words += len(g)
        same += sum(a == b for a, b in zip(g, p))
    precision = right / guessed if guessed else 0.0
    recall = right / wanted if wanted else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "accuracy": round(same / words, 4) if words else 0.0, "entities": wanted, "predicted": guessed}


# ---------------------------------------------------------------------------------------------
# The baselines, which need no model.
# ---------------------------------------------------------------------------------------------

def all_outside(sentences: list[LabelledSentence]) -> list[list[int]]:
    return [[O] * len(s.words) for s in sentences]


def gazetteer(sentences: list[LabelledSentence]) -> set[tuple[str, ...]]:
    """Every linked text of these sentences, as a tuple of lowercased words."""
    names = set()
    for s in sentences:
        for _, start, end in entity_spans([LABELS[label] for label in s.labels]):
            names.add(tuple(w.lower() for w in s.words[start:end]))
    return names


def gazetteer_tags(sentences: list[LabelledSentence], names: set[tuple[str, ...]]) -> list[list[int]]:
    """Left to right, the longest run of words (lowercased) that is in `names` becomes B, I, ...; then
    the search goes on after it. Words that start no name are O.

    >>> gazetteer_tags([LabelledSentence("the Paris Commune rose".split(), [], [], "")],
    ...                {("paris",), ("paris", "commune")})
    [[0, 1, 2, 0]]
    """
    longest = max(map(len, names), default=0)
    tagged = []
    for s in sentences:
        words = [w.lower() for w in s.words]
        tags, i = [O] * len(words), 0
        while i < len(words):
            n = next((n for n in range(min(longest, len(words) - i), 0, -1) if tuple(words[i:i + n]) in names), 0)
            if n:
                tags[i:i + n] = [B] + [I] * (n - 1)
            i += max(n, 1)
        tagged.append(tags)
    return tagged


# ---------------------------------------------------------------------------------------------
# The model's predictions: a label per word, read from the word's first piece.
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def predict(model: BertForTokenClassification, tokenizer: Tokenizer, sentences: list[LabelledSentence],
            batch_size: int = EVAL_BATCH_SIZE) -> list[list[int]]:
    """One label id per word of each sentence. Sentences are read in batches of similar length (less
    padding); a word with no piece (cut off by EVAL_MAX_LENGTH, or all characters the tokenizer drops)
    is predicted O."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i].words))
    predicted: list[list[int] | None] = [None] * len(sentences)
    for at in range(0, len(order), batch_size):
        chosen = order[at:at + batch_size]
        encodings = tokenizer.words([sentences[i].words for i in chosen], EVAL_MAX_LENGTH)
        batch = tokenizer.pad(encodings)  # (B, T) each
        logits = model(**{k: v.to(device) for k, v in batch.items()}).logits  # (B, T, 3)
        best = logits.argmax(-1).cpu()  # (B, T)
        for row, (i, encoding) in enumerate(zip(chosen, encodings)):
            labels = [O] * len(sentences[i].words)
            previous = None
            for position, word in enumerate(encoding.word_ids):
                if word is not None and word != previous:  # a word's first piece
                    labels[word] = int(best[row, position])
                previous = word
            predicted[i] = labels
    return predicted


def scores(sentences: list[LabelledSentence], predicted: list[list[int]]) -> dict[str, float]:
    return span_scores([[LABELS[x] for x in s.labels] for s in sentences], [[LABELS[x] for x in p] for p in predicted])


# ---------------------------------------------------------------------------------------------
# Training.
# ---------------------------------------------------------------------------------------------

def collate_for(tokenizer: Tokenizer):
    def collate(rows: list[LabelledSentence], generators) -> dict[str, torch.Tensor]:
        return label_words(tokenizer, [r.words for r in rows], [r.labels for r in rows], MAX_LENGTH)
    return collate


def run(minutes: float = 5.0, out: Path = Path("out/token_classification"), steps: int | None = None,
        seed: int | None = None, progress: bool = True, trainable_layers: int = 2,
        learning_rate: float | None = None, device: str = "cpu",
        max_minutes: float | None = None, resume: bool = False) -> dict:
    """Train and evaluate; returns the report written to OUT/metrics.json. `steps` plans the schedule
    for that many steps instead of fitting it to `minutes`; `max_minutes` then still caps the time.
    `resume` goes on from the last checkpoint in `out`, with the run's own steps, learning rate (1e-3
    unless given) and seed (0 unless given), for at most `minutes`; the other options must be the run's."""
    saved = resumed_config(out, steps=steps, learning_rate=learning_rate, seed=seed) if resume else None
    seed = saved.seed if saved else (seed or 0)
    tokenizer, path = shipped_tokenizer()
    articles = corpus.wikipedia_linked_articles()
    train_articles, held_articles = corpus.split_held_out(articles, 0.1)
    train, crossing_train = sentences_of(train_articles)
    names = gazetteer(train)
    train = [s for s in train if B in s.labels]  # see "What is trained on" in the module's docstring
    held, crossing_held = sentences_of(held_articles)
    torch.manual_seed(seed)
    model = BertForTokenClassification.from_pretrained(
        path, init_new_head=True, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)})
    freeze_below(model, trainable_layers)
    model.to(device)
    data = StepData(train, BATCH_SIZE, collate_for(tokenizer), seed=seed)
    config = schedule(saved, model, data, learning_rate=learning_rate or 1e-3, steps=steps, minutes=minutes, out=out,
                      seed=seed, progress=progress, max_minutes=max_minutes)
    learns = f"{what_learns(trainable_layers)} and a new head"
    print(f"fine-tuning token classification ({learns}): {len(train_articles)} articles, {len(train)} sentences, "
          f"{config.total_steps} steps of {BATCH_SIZE}; {len(held_articles)} articles held out, "
          f"{len(held)} sentences, {sum(len(s.words) for s in held)} words")
    steps, seconds, losses = train_timed(model, config, data, tokenizer, resume=saved is not None)

    ours = scores(held, predict(model, tokenizer, held))
    nothing = scores(held, all_outside(held))
    listed = scores(held, gazetteer_tags(held, names))
    model.save_pretrained(out / "model", tokenizer=tokenizer)
    report = {"steps": steps, "seconds": round(seconds), "trainable_layers": trainable_layers,
              "learning_rate": config.learning_rate, "labels": LABELS,
              "train_articles": len(train_articles), "train_sentences": len(train),
              "held_out_articles": len(held_articles), "held_out_sentences": len(held),
              "held_out_words": sum(len(s.words) for s in held),
              "links_dropped_across_sentences": crossing_train + crossing_held, "gazetteer_names": len(names),
              "model": ours, "all_o_baseline": nothing, "gazetteer_baseline": listed,
              "losses": {"first": losses[:5], "last": losses[-5:]}}
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"held out, {len(held)} sentences, {ours['entities']} linked mentions (a silver standard: see the docstring):")
    print(f"  {'':36}{'precision':>10}{'recall':>8}{'F1':>8}{'accuracy':>10}")
    for name, figures in (("token classifier (trained here)", ours), ("all O", nothing),
                          (f"gazetteer ({len(names)} linked texts)", listed)):
        print(f"  {name:36}{figures['precision']:>10.3f}{figures['recall']:>8.3f}{figures['f1']:>8.3f}"
              f"{figures['accuracy']:>10.3f}")
    print(f"trained {steps} steps in {seconds / 60:.1f} minutes; model: {out / 'model'}")
    return report


@one_line_errors
def main(argv=None) -> None:
    p = training_parser(__doc__, 5.0, "out/token_classification", "1e-3", "the order of the sentences and the new head")
    add_trainable_layers(p, 2)
    args = parse_training_args(p, argv)
    run(args.minutes, args.out, args.steps, args.seed, trainable_layers=args.trainable_layers, device=args.device,
        learning_rate=args.learning_rate, resume=args.resume)


if __name__ == "__main__":
    main()
