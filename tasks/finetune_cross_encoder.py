"""Fine-tune all-MiniLM-L6-v2 into a cross-encoder that scores question-passage relevance.

    python -m tasks.finetune_cross_encoder              # 3 minutes on 2 cores; --minutes to change

The pairs come from the 100 Wikipedia articles that ship with gensim (tasks/corpus.py). Each
article's title becomes questions in a few forms ("What is Anarchism?", "Tell me about Anarchism.",
...), with two kinds of positive:
  - the article's paragraphs that do not contain the title itself, so the model cannot win by
    spotting the word: it has to know what the article is about;
  - up to five single sentences of the article that do name it ("Anarchism is a political
    philosophy ..."): a short answer that names what was asked about, as in the lesson's step 5.
Each positive gets one negative of the same kind (a paragraph, or one sentence) from another
article, drawn at random, so the two labels are equally common and length says nothing.
(--hard-negatives draws half the paragraph negatives among those the base model finds closest to
the question; measured on an H200, 1500 steps, top layer only: held-out accuracy@1 0.60 against
0.71 without, so it is not the default.)
A tenth of the articles, whole, are held out. Each held-out question, "What is <title>?", is ranked
against k = 10 candidates: one positive paragraph (not naming the title) and nine paragraphs of
other held-out articles. The program prints accuracy@1 and MRR for the cross-encoder beside the
baseline a cross-encoder must beat: the base model as a bi-encoder (sentence-transformers' mean
pooling and cosine) on the same candidates.

The model is BertForSequenceClassification with one logit on all-MiniLM-L6-v2's pooler, trained
with binary cross-entropy (problem_type "multi_label_classification" with one label); its score is
sigmoid(logit). What learns, besides the pooler and the new head:
  --trainable-layers N   the top N encoder layers, fully (default 1; 6: the whole model, embeddings included);
  --low-rank R           instead, every layer through low-rank updates of rank R
                         (minibert/training/lowrank.py), merged into the weights at the end. The
                         updates alone are small enough to ship: tasks/standins.py keeps them.
It writes OUT/model (a plain checkpoint), OUT/log.jsonl, OUT/loss.png and OUT/metrics.json; with
--low-rank also OUT/low_rank.safetensors, the factors, pooler and head before merging. OUT must be
new or empty. OUT/checkpoint is saved every tenth of the run, and `--resume` (with the run's other
options) goes on from it with the run's own steps, learning rate and seed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from minibert import BertForSequenceClassification, SentenceEncoder, Tokenizer
from minibert.training.loop import StepData
from minibert.training.lowrank import add_low_rank, low_rank_factors, merge_low_rank

from . import corpus
from ._common import (add_trainable_layers, freeze_below, one_line_errors, parse_training_args, resumed_config,
                      shipped_tokenizer, training_parser, what_learns)
from .pretrain import schedule, train_timed

K = 10  # candidates per held-out question
BATCH_SIZE = 16
MAX_LENGTH = 128


QUESTION_FORMS = ("What is {}?", "Tell me about {}.", "What do you know about {}?", "Where can I read about {}?")
SENTENCES_PER_ARTICLE = 5


def question_for(title: str, form: int = 0) -> str:
    return QUESTION_FORMS[form].format(title)


def naming_sentences(document: corpus.Document) -> list[str]:
    """The article's sentences that name its title, short enough to be an answer."""
    title = document.title.lower()
    found = [s for p in document.paragraphs for s in corpus.sentences(p) if title in s.lower() and 30 <= len(s) <= 300]
    return found[:SENTENCES_PER_ARTICLE]


def usable(document: corpus.Document) -> list[str]:
    """The paragraphs that do not name the article's title: the positives."""
    title = document.title.lower()
    return [p for p in document.paragraphs if title not in p.lower()]


def articles() -> list[corpus.Document]:
    """Articles with at least two usable paragraphs; lists and disambiguation pages are left out."""
    keep = []
    for doc in corpus.wikipedia_articles():
        if "disambiguation" in doc.title or doc.title.startswith("List of") or len(doc.title) < 3:
            continue
        if len(usable(doc)) >= 2:
            keep.append(doc)
    return keep


def training_pairs(docs: list[corpus.Document], rng: random.Random, encoder=None) -> list[tuple[str, str, float]]:
    """(question, passage, label): every usable paragraph and every naming sentence once as a
    positive, each with one negative of its own kind from another article, so the two labels are
    equally common. The question's form is drawn at random for each pair.

    With `encoder` (the base model as a bi-encoder), half the negatives are hard: one of the 20
    paragraphs of other articles that the bi-encoder finds closest to the question. Those are the
    cases a bi-encoder gets wrong, and what a cross-encoder, reading both texts together, can learn
    to tell apart. The held-out candidates are not chosen this way: they stay random.
    """
    paragraphs = [(doc, p) for doc in docs for p in doc.paragraphs]
    if encoder is not None:
        vectors = encoder.encode([p for _, p in paragraphs], normalize=True)  # (P, H)
        questions = encoder.encode([question_for(doc.title) for doc in docs], normalize=True)  # (D, H)
    pairs = []
    for d, doc in enumerate(docs):
        others = [d2 for d2 in docs if d2 is not doc]
        close = []
        if encoder is not None:
            similarity = vectors @ questions[d]  # (P,)
            ranked = similarity.argsort(descending=True).tolist()
            close = [paragraphs[i][1] for i in ranked if paragraphs[i][0] is not doc][:20]
        def ask() -> str:
            return question_for(doc.title, rng.randrange(len(QUESTION_FORMS)))

        for paragraph in usable(doc):
            pairs.append((ask(), paragraph, 1.0))
            if close and rng.random() < 0.5:
                pairs.append((ask(), rng.choice(close), 0.0))
            else:
                pairs.append((ask(), rng.choice(rng.choice(others).paragraphs), 0.0))
        for sentence in naming_sentences(doc):
            pairs.append((ask(), sentence, 1.0))
            other = rng.choice(others)
            pairs.append((ask(), rng.choice(corpus.sentences(rng.choice(other.paragraphs))), 0.0))
    return pairs


def ranking_tasks(docs: list[corpus.Document], rng: random.Random, per_article: int = 10):
    """(question, candidates, index of the positive): one positive paragraph and K-1 from other articles."""
    tasks = []
    for doc in docs:
        others = [p for d in docs if d is not doc for p in d.paragraphs]
        for positive in rng.sample(usable(doc), min(per_article, len(usable(doc)))):
            candidates = rng.sample(others, K - 1) + [positive]
            rng.shuffle(candidates)
            tasks.append((question_for(doc.title), candidates, candidates.index(positive)))
    return tasks


def rank_metrics(scores: list[torch.Tensor], answers: list[int]) -> dict[str, float]:
    """accuracy@1 and mean reciprocal rank, from each task's scores (K,) and its positive's index."""
    ranks = [int((s > s[i]).sum()) + 1 for s, i in zip(scores, answers)]
    return {"accuracy_at_1": sum(r == 1 for r in ranks) / len(ranks), "mrr": sum(1 / r for r in ranks) / len(ranks)}


@torch.no_grad()
def cross_encoder_scores(model, tokenizer: Tokenizer, tasks) -> list[torch.Tensor]:
    model.eval()
    device = next(model.parameters()).device
    scores = []
    for question, candidates, _ in tasks:
        batch = {k: v.to(device) for k, v in tokenizer([question] * len(candidates), candidates,
                                                       max_length=MAX_LENGTH).items()}
        scores.append(model(**batch).logits[:, 0].cpu())
    return scores


@torch.no_grad()
def bi_encoder_scores(path: str, tasks) -> list[torch.Tensor]:
    encoder = SentenceEncoder.from_pretrained(path)  # mean pooling and normalisation, as sentence-transformers
    scores = []
    for question, candidates, _ in tasks:
        vectors = encoder.encode([question] + candidates, normalize=True)  # (1 + K, 384)
        scores.append(vectors[1:] @ vectors[0])  # (K,) cosines
    return scores


def collate_for(tokenizer: Tokenizer):
    def collate(rows, generators):
        batch = tokenizer([r[0] for r in rows], [r[1] for r in rows], max_length=MAX_LENGTH)
        batch["labels"] = torch.tensor([[r[2]] for r in rows])  # (B, 1): binary cross-entropy on one logit
        return batch
    return collate


def run(minutes: float = 3.0, out: Path = Path("out/cross_encoder"), steps: int | None = None,
        seed: int | None = None, progress: bool = True, trainable_layers: int = 1,
        learning_rate: float | None = None, device: str = "cpu", hard_negatives: bool = False,
        low_rank: int | None = None, max_minutes: float | None = None, resume: bool = False) -> dict:
    """Train and evaluate; returns the report written to OUT/metrics.json. `steps` plans the schedule
    for that many steps instead of fitting it to `minutes`; `max_minutes` then still caps the time.
    `resume` goes on from the last checkpoint in `out`, with the run's own steps, learning rate (1e-4
    unless given) and seed (0 unless given), for at most `minutes`; the other options must be the run's."""
    saved = resumed_config(out, steps=steps, learning_rate=learning_rate, seed=seed) if resume else None
    seed = saved.seed if saved else (seed or 0)
    tokenizer, path = shipped_tokenizer()
    train_docs, held_docs = corpus.split_held_out(articles(), 0.1)
    rng = random.Random(seed)
    pairs = training_pairs(train_docs, rng, SentenceEncoder.from_pretrained(path) if hard_negatives else None)
    tasks = ranking_tasks(held_docs, random.Random(seed + 1))
    torch.manual_seed(seed)
    model = BertForSequenceClassification.from_pretrained(path, init_new_head=True, num_labels=1,
                                                          problem_type="multi_label_classification")
    model.config.extra["sentence_transformers"] = {"activation_fn": "torch.nn.modules.activation.Sigmoid"}
    if low_rank:
        add_low_rank(model, rank=low_rank)  # freezes the embeddings and the encoder's own weights
    else:
        freeze_below(model, trainable_layers)
    model.to(device)
    data = StepData(pairs, BATCH_SIZE, collate_for(tokenizer), seed=seed)
    config = schedule(saved, model, data, learning_rate=learning_rate or 1e-4, steps=steps, minutes=minutes, out=out,
                      seed=seed, progress=progress, max_minutes=max_minutes)
    learns = f"low-rank updates of rank {low_rank} in every layer" if low_rank else what_learns(trainable_layers)
    print(f"fine-tuning a cross-encoder ({learns}, the pooler and a new head): {len(train_docs)} articles, "
          f"{len(pairs)} pairs (half positive), {config.total_steps} steps of {BATCH_SIZE}; "
          f"{len(held_docs)} articles held out, {len(tasks)} questions x {K} candidates")
    steps, seconds, losses = train_timed(model, config, data, tokenizer, resume=saved is not None)
    if low_rank:  # keep what was learned, then fold the updates in: a plain BERT from here on
        from safetensors.torch import save_file

        kept = {**low_rank_factors(model), **{name: p.detach() for name, p in model.named_parameters()
                                             if p.requires_grad and not name.endswith(("lora_A", "lora_B"))}}
        save_file({k: v.cpu().contiguous() for k, v in kept.items()}, str(out / "low_rank.safetensors"),
                  metadata={"rank": str(low_rank), "alpha": str(2.0 * low_rank)})
        merge_low_rank(model)
    ours = rank_metrics(cross_encoder_scores(model, tokenizer, tasks), [t[2] for t in tasks])
    baseline = rank_metrics(bi_encoder_scores(path, tasks), [t[2] for t in tasks])
    model.save_pretrained(out / "model", tokenizer=tokenizer)
    report = {"steps": steps, "seconds": round(seconds),
              **({"low_rank": low_rank} if low_rank else {"trainable_layers": trainable_layers}),
              "hard_negatives": hard_negatives, "learning_rate": config.learning_rate,
              "train_articles": len(train_docs), "pairs": len(pairs),
              "held_out_articles": len(held_docs), "questions": len(tasks), "k": K,
              "cross_encoder": ours, "bi_encoder_baseline": baseline,
              "losses": {"first": losses[:5], "last": losses[-5:]}}
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"held out, {len(tasks)} questions x {K} candidates:")
    print(f"  cross-encoder (trained here)      accuracy@1 {ours['accuracy_at_1']:.3f}   MRR {ours['mrr']:.3f}")
    print(f"  bi-encoder cosine (base model)    accuracy@1 {baseline['accuracy_at_1']:.3f}   MRR {baseline['mrr']:.3f}")
    print(f"trained {steps} steps in {seconds / 60:.1f} minutes; model: {out / 'model'}")
    return report


@one_line_errors
def main(argv=None) -> None:
    p = training_parser(__doc__, 3.0, "out/cross_encoder", "1e-4", "the pairs and the new head")
    add_trainable_layers(p, 1)
    p.add_argument("--low-rank", type=int, default=None, metavar="R",
                   help="train every layer through low-rank updates of rank R instead (e.g. 16)")
    p.add_argument("--hard-negatives", action="store_true", help="half the negatives close to the question")
    args = parse_training_args(p, argv)
    if args.low_rank is not None and not 1 <= args.low_rank <= 384:
        p.error(f"--low-rank must be from 1 to 384 (MiniLM's width), not {args.low_rank}")
    run(args.minutes, args.out, args.steps, args.seed, trainable_layers=args.trainable_layers, device=args.device,
        learning_rate=args.learning_rate, hard_negatives=args.hard_negatives, low_rank=args.low_rank,
        resume=args.resume)


if __name__ == "__main__":
    main()
