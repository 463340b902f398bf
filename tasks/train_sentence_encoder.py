"""Fine-tune all-MiniLM-L6-v2 (or any BERT) into a sentence embedding model, on pairs from Wikipedia.

    python -m tasks.train_sentence_encoder                 # 10 minutes on 2 cores; --minutes to change
    python -m tasks.train_sentence_encoder --start out/pretrain/model   # the small BERT pretrained here

A sentence embedding model maps a text to one vector, so that texts about the same thing get vectors
with a high cosine. Here it is BERT, then the mean of its last layer's token vectors over the real
tokens (padding left out), scaled to unit length: what sentence-transformers runs for all-MiniLM-L6-v2.

The pairs come from the Wikipedia articles that ship with gensim (tasks/corpus.py), of two kinds
(--pairs, default both):

- titles, as in tasks/finetune_cross_encoder.py: the anchor is a question about the article's title
  ("What is Anarchism?", "Tell me about Anarchism.", ...) or the title alone, and the positive is one
  of the article's paragraphs that do not name the title, so the model cannot win by spotting the
  word: it has to know what the article is about;
- sentences, the inverse cloze task (Lee, Chang and Toutanova 2019, "Latent Retrieval for Weakly
  Supervised Open Domain Question Answering"): the anchor is one sentence of a paragraph of three
  sentences or more, and the positive the rest of that paragraph, the sentence taken out (else
  the model would only learn to spot the copied words). A sentence and its neighbours are about the
  same thing, so this asks what a text is about, with thousands of different anchors. Reference
  lists (paragraphs that start with "*") are left out, and an anchor has four words or more and a
  letter (`cloze_sentences`, `query_worthy`): "1997." or "ISBN 0-85883-373-5" asks for nothing.

The loss is the multiple negatives ranking loss (minibert/training/sentence_losses.py, scale 20):
every other positive in the batch is a negative. An in-batch negative that in truth belongs to the
anchor (two pairs of one article in a batch) would teach the model to push apart what belongs
together, so a batch is made of distinct articles: the examples StepData shuffles are the articles,
and each draws one pair at random (`collate_for`), with the generator StepData gives it, a fresh
draw every epoch. With both kinds, the first half of a batch's articles give a title pair and the
second half a sentence pair; StepData's shuffle decides which article lands in which half.

A tenth of the articles, whole, are held out (corpus.split_held_out). Retrieval on them, before and
after training, for the model trained here, the base model before training (the checkpoint as
sentence-transformers runs it, via SentenceEncoder) and mean GloVe vectors (GloVe 6B 50d, lower-cased
words, cosine):

- the main figure, "cloze": every held-out cloze paragraph (three sentences or more, not a reference)
  gives one query, a sentence of four words or more drawn with a fixed seed (`inverse_cloze`), whose
  one relevant passage is the rest of its paragraph; the corpus is all those passages (294 queries and
  passages; 363 before the references were left out, 25 of whose queries were citation fragments).
  MRR@10, recall@1 (with one relevant passage, the same as accuracy@1) and recall@10
  (`retrieval_metrics`).
- a second figure, "what_is": each query "What is <title>?" ranked against every usable paragraph (one
  that does not name its title) of every held-out article; the relevant ones are its own article's.
  Only 9 queries, with about 30 relevant paragraphs each, so only MRR@10 and accuracy@1 (is the top
  paragraph of the article) are kept; "every_form" asks the same in every question form and by the
  title alone (45 queries).

What learns: every weight of BERT (the default), or with --low-rank R only low-rank updates of rank R
in every layer (minibert/training/lowrank.py), merged into the weights at the end; the factors alone
are small enough to ship (tasks/standins.py keeps them). BERT's pooler is not used, and stays frozen.

It writes OUT/model (a sentence-transformers folder: SentenceTransformer(OUT/model) loads it),
OUT/log.jsonl, OUT/loss.png, OUT/metrics.json and OUT/run_options.json (--start, --low-rank, --pairs);
with --low-rank also OUT/low_rank.safetensors, the factors before merging. OUT must be new or empty.
OUT/checkpoint is saved every tenth of the run, and `--resume` goes on from it with the run's own steps,
learning rate and seed; its --start, --low-rank and --pairs must be the run's (a usage error names each
that differs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
from pathlib import Path
from typing import Iterable, NamedTuple

import torch
from torch import nn

from minibert import BertModel, SentenceEncoder, Tokenizer
from minibert.bert.pretrained import BertPreTrainedModel
from minibert.speed.encode import SentencePipeline, mean_pool
from minibert.training import multiple_negatives_ranking_loss
from minibert.training.loop import StepData
from minibert.training.lowrank import add_low_rank, low_rank_factors, merge_low_rank

from . import corpus
from ._common import (SENTENCE_PAIR_KINDS, one_line_errors, parse_training_args, resumed_config, shipped_tokenizer,
                      training_parser)
from .finetune_cross_encoder import QUESTION_FORMS, articles, usable
from .pretrain import schedule, train_timed

BATCH_SIZE = 16  # pairs per step: each anchor's 15 in-batch negatives
MAX_LENGTH = 128  # tokens per text in training; evaluation cuts where the pipeline says (256 for MiniLM)
SCALE = 20.0  # cosines times 20 before the softmax: sentence-transformers' default
TOP_K = 10  # MRR@10 and recall@10
CLOZE_SEED = 0  # draws the held-out cloze queries: the same 294 on every run, whatever --seed says
MIN_SENTENCES = 3  # a cloze paragraph keeps at least two sentences once its query is taken out
MIN_QUERY_WORDS = 4  # a shorter "sentence" is mostly a citation's piece: "1997.", "ISBN 0-85883-373-5"
PAIR_KINDS = tuple(SENTENCE_PAIR_KINDS)  # --pairs: "titles", "sentences", "both"
RUN_OPTIONS = "run_options.json"  # OUT's record of the options --resume must repeat (run_options)


# ---------------------------------------------------------------------------------------------
# The model: BERT, mean pooling, unit length, and the loss on a batch of (anchor, positive) pairs.
# ---------------------------------------------------------------------------------------------

class PairOutput(NamedTuple):
    loss: torch.Tensor  # 0-dim: the multiple negatives ranking loss
    anchors: torch.Tensor  # (B, H) unit rows
    positives: torch.Tensor  # (B, H) unit rows


class MeanPooledPairs(BertPreTrainedModel):
    """BERT as a sentence encoder in training: `embed` is mean pooling plus unit length, and the
    forward takes a batch of pairs and returns their multiple negatives ranking loss, which is what
    the Trainer calls (`model(**batch).loss`).

    The batch stacks the pairs: rows 0 .. B-1 are the anchors, rows B .. 2B-1 their positives (row
    B + i belongs with row i), padded together, so the Trainer counts every real token. Each half is
    cut to its own longest text before BERT reads it, so the short questions do not pay for the
    paragraphs' padding; the columns cut are padding of every row in that half, so nothing changes.

    It is a BertPreTrainedModel with the encoder under `bert.` (as BertForSequenceClassification):
    from_pretrained loads any BERT checkpoint into it, and the Trainer's checkpoints save and resume
    it with its low-rank factors, if any. The final model is `self.bert`, saved with
    SentenceEncoder(...).save_pretrained for sentence-transformers.
    """

    unused_checkpoint_prefixes = ("cls.", "classifier.")  # a pre-training or classifier checkpoint's heads

    def __init__(self, config, scale: float = SCALE):
        super().__init__(config)
        self.bert = BertModel(config)  # its pooler is loaded with the file but not used: mean pooling instead
        self.scale = scale

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Mean pooling over the real tokens, then unit length: (B, T) ids and mask -> (B, H)."""
        length = int(attention_mask.sum(dim=1).max())  # the longest real text; the columns beyond are padding
        input_ids, attention_mask = input_ids[:, :length], attention_mask[:, :length]  # (B, T')
        if token_type_ids is not None:
            token_type_ids = token_type_ids[:, :length]
        hidden = self.bert(input_ids, attention_mask, token_type_ids, return_dict=True).last_hidden_state  # (B, T', H)
        mean = mean_pool(hidden, attention_mask)  # (B, H): the real tokens' mean, padding left out (speed/encode.py)
        return nn.functional.normalize(mean, p=2, dim=1)  # (B, H), unit rows: a dot product is a cosine

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> PairOutput:
        """input_ids, attention_mask (2B, T): anchors, then positives. Returns the loss and both (B, H)."""
        if input_ids.shape[0] % 2:
            raise ValueError(f"a batch of pairs has an even number of rows (anchors, then positives); "
                             f"got input_ids of shape {tuple(input_ids.shape)}")
        B = input_ids.shape[0] // 2
        types = (None, None) if token_type_ids is None else (token_type_ids[:B], token_type_ids[B:])
        anchors = self.embed(input_ids[:B], attention_mask[:B], types[0])  # (B, H)
        positives = self.embed(input_ids[B:], attention_mask[B:], types[1])  # (B, H)
        loss = multiple_negatives_ranking_loss(anchors, positives, scale=self.scale)
        return PairOutput(loss, anchors, positives)


# ---------------------------------------------------------------------------------------------
# The pairs, one article per row of a batch.
# ---------------------------------------------------------------------------------------------

def anchors_for(title: str) -> list[str]:
    """What may ask for an article: each question form about its title, and the title alone."""
    return [form.format(title) for form in QUESTION_FORMS] + [title]


def query_worthy(sentence: str) -> bool:
    """Whether a sentence may be an inverse cloze query: MIN_QUERY_WORDS words or more, and a letter.
    What fails is a reference's fragment ("1997.", "(1988).", "Burgin (2005, p."), which says nothing of
    what its paragraph is about."""
    return len(sentence.split()) >= MIN_QUERY_WORDS and any(c.isalpha() for c in sentence)


def cloze_sentences(paragraphs: Iterable[str]) -> list[list[str]]:
    """The cloze paragraphs, each as its sentences (corpus.sentences): those of at least MIN_SENTENCES
    sentences, one of them query_worthy, that are not list items.

    A paragraph that starts with "*" is an item of a list, which in these articles is nearly always the
    references ("* Knuth, Donald E. (2000). Selected Papers on ..."): its "sentences" are the pieces of a
    citation, not sentences about one thing. The rule drops a few bulleted paragraphs of prose too (the
    Atlantic Ocean's voyages), which costs little: a simple rule a reader can check beats a clever one.

    >>> cloze_sentences(["* Knuth, Donald E. (2000). Selected Papers. Stanford: CSLI.", "A b. C d. E f."])
    []
    """
    split = (corpus.sentences(p) for p in paragraphs if not p.lstrip().startswith("*"))
    return [parts for parts in split if len(parts) >= MIN_SENTENCES and any(map(query_worthy, parts))]


def query_choices(parts: list[str]) -> list[int]:
    """The indices of a cloze paragraph's query_worthy sentences: those a query is drawn from."""
    return [i for i, sentence in enumerate(parts) if query_worthy(sentence)]


def cloze_pair(parts: list[str], i: int) -> tuple[str, str]:
    """(sentence i, the paragraph without it): an inverse cloze query and its passage."""
    return parts[i], " ".join(parts[:i] + parts[i + 1:])


def inverse_cloze(paragraphs: Iterable[str], seed: int = CLOZE_SEED) -> list[tuple[str, str]]:
    """(query, passage) for each cloze paragraph (cloze_sentences); the others are skipped.

    The query is one of its query_worthy sentences, drawn with a generator seeded by `seed` and the
    paragraph's own text, so a paragraph's query does not depend on which other paragraphs are in the
    list; the passage is the rest of the paragraph, its sentences joined by spaces (the short sentences
    stay in the passage: they are part of it, just not a question anyone would ask).

    >>> inverse_cloze(["Cats purr. They nap a lot. Dogs bark.", "Too short. Two sentences."])
    [('They nap a lot.', 'Cats purr. Dogs bark.')]
    """
    pairs = []
    for parts in cloze_sentences(paragraphs):
        rng = random.Random(f"{seed}:{' '.join(parts)}")  # a str seed is hashed with SHA-512: the same everywhere
        choices = query_choices(parts)
        pairs.append(cloze_pair(parts, choices[rng.randrange(len(choices))]))
    return pairs


class ArticlePairs(NamedTuple):
    """What one article offers to a batch: its title pairs, and its cloze paragraphs as sentences."""
    titles: list[tuple[str, str]]  # (anchor, usable paragraph): each anchor with each usable paragraph
    cloze: list[list[str]]  # each cloze paragraph, split into its sentences (cloze_sentences)

    def count(self, pairs: str) -> int:
        """How many different pairs it can give under --pairs `pairs`."""
        cloze = sum(len(query_choices(parts)) for parts in self.cloze)  # one pair per query_worthy sentence
        return {"titles": len(self.titles), "sentences": cloze, "both": len(self.titles) + cloze}[pairs]


def article_pairs(docs: list[corpus.Document], pairs: str = "both") -> list[ArticlePairs]:
    """One ArticlePairs for each article that can give a pair of the kinds asked for."""
    rows = [ArticlePairs([(anchor, paragraph) for paragraph in usable(doc) for anchor in anchors_for(doc.title)],
                         cloze_sentences(doc.paragraphs)) for doc in docs]
    return [row for row in rows if pairs != "sentences" or row.cloze]  # "titles": every article has usable ones


def draw_pairs(rows: list[ArticlePairs], generators: list[torch.Generator],
               pairs: str = "both") -> list[tuple[str, str]]:
    """One (anchor, positive) of each article in `rows`, drawn with the article's own generator: a title
    pair, or a cloze pair (a paragraph, then one of its sentences); with "both", the first half of the
    rows give title pairs and the second half cloze pairs (an article without a cloze paragraph gives a
    title pair); a cloze pair's anchor is one of the paragraph's query_worthy sentences.

    The rows are StepData's: a step is a slice of one permutation of the articles, so no article is
    in it twice, and no anchor meets a passage of its own article as a negative."""
    def pick(n: int, g: torch.Generator) -> int:
        return int(torch.randint(n, (1,), generator=g))

    drawn = []
    for i, (row, g) in enumerate(zip(rows, generators)):
        cloze = pairs == "sentences" or (pairs == "both" and i >= len(rows) // 2)
        if cloze and row.cloze:
            parts = row.cloze[pick(len(row.cloze), g)]
            choices = query_choices(parts)
            drawn.append(cloze_pair(parts, choices[pick(len(choices), g)]))
        else:
            drawn.append(row.titles[pick(len(row.titles), g)])
    return drawn


def collate_for(tokenizer: Tokenizer, max_length: int = MAX_LENGTH, pairs: str = "both"):
    """StepData's collate: a pair from each article (draw_pairs), tokenized as MeanPooledPairs reads them."""
    def collate(rows, generators):
        drawn = draw_pairs(rows, generators, pairs)
        texts = [anchor for anchor, _ in drawn] + [positive for _, positive in drawn]  # anchors, then positives
        return tokenizer.pad(tokenizer.encodings(texts, max_length=max_length))  # each (2B, T)
    return collate


# ---------------------------------------------------------------------------------------------
# Retrieval on the held-out articles.
# ---------------------------------------------------------------------------------------------

def retrieval_set(docs: list[corpus.Document], every_form: bool = False):
    """(queries, the article of each query, paragraphs, the article of each paragraph). The queries
    are "What is <title>?", or with `every_form` every anchor of anchors_for; the paragraphs are the
    usable ones of every article (they do not name its title: a query's words alone do not find them)."""
    queries, query_doc, paragraphs, paragraph_doc = [], [], [], []
    for d, doc in enumerate(docs):
        asked = anchors_for(doc.title) if every_form else [QUESTION_FORMS[0].format(doc.title)]
        queries += asked
        query_doc += [d] * len(asked)
        paragraphs += usable(doc)
        paragraph_doc += [d] * len(usable(doc))
    return queries, query_doc, paragraphs, paragraph_doc


def retrieval_metrics(scores: torch.Tensor, relevant: torch.Tensor, k: int = TOP_K) -> dict[str, float]:
    """MRR@k, recall@1, recall@k and accuracy@1, as sentence-transformers' InformationRetrievalEvaluator
    defines them, averaged over the queries.

    Args:
        scores: (Q, N): query q's score for paragraph n (a cosine).
        relevant: (Q, N) bool: paragraph n is relevant to query q; every query has at least one.
    Returns:
        mrr_at_k: 1 / rank of the first relevant paragraph, 0 when none is in the top k;
        recall_at_1, recall_at_k: the share of a query's relevant paragraphs in its top 1, top k;
        accuracy_at_1: whether the top paragraph is relevant.

    >>> scores = torch.tensor([[0.9, 0.8, 0.1], [0.9, 0.8, 0.1]])
    >>> relevant = torch.tensor([[False, True, True], [True, False, False]])
    >>> {name: round(v, 3) for name, v in retrieval_metrics(scores, relevant, k=2).items()}
    {'mrr_at_2': 0.75, 'recall_at_1': 0.5, 'recall_at_2': 0.75, 'accuracy_at_1': 0.5}
    """
    if scores.shape != relevant.shape or not bool(relevant.any(dim=1).all()):
        raise ValueError(f"scores {tuple(scores.shape)} and relevant {tuple(relevant.shape)} must be one (Q, N) "
                         "shape, with at least one relevant paragraph per query")
    k = min(k, scores.shape[1])
    top = scores.topk(k, dim=1).indices  # (Q, k), best first
    hits = relevant.gather(1, top).float()  # (Q, k): 1 where the paragraph at that rank is relevant
    ranks = torch.arange(1, k + 1, dtype=torch.float)  # (k,)
    first = torch.where(hits.any(dim=1), (hits / ranks).max(dim=1).values, torch.zeros(len(hits)))  # (Q,) 1/rank
    total = relevant.sum(dim=1).float()  # (Q,)
    return {f"mrr_at_{k}": float(first.mean()), "recall_at_1": float((hits[:, 0] / total).mean()),
            f"recall_at_{k}": float((hits.sum(dim=1) / total).mean()), "accuracy_at_1": float(hits[:, 0].mean())}


def cloze_set(docs: list[corpus.Document], seed: int = CLOZE_SEED) -> tuple[list[str], list[str]]:
    """(queries, passages) of the held-out inverse cloze task: query i's one relevant passage is passage i."""
    pairs = inverse_cloze([p for doc in docs for p in doc.paragraphs], seed)
    return [q for q, _ in pairs], [passage for _, passage in pairs]


def evaluate_retrieval(embed, docs: list[corpus.Document]) -> dict[str, dict[str, float]]:
    """`embed(texts) -> (N, D)` unit rows, on the held-out articles: "cloze" (the main figure: each
    sentence query against all the passages, one relevant), then "what_is" (the title queries) and
    "every_form" (every question form and the title alone). The title rows keep MRR@10, accuracy@1
    and recall@10 (the share of the article's paragraphs in the top 10), not recall@1: with about 30
    relevant paragraphs a query, it cannot pass 1/30 and says nothing a reader expects."""
    queries, passages = cloze_set(docs)
    scores = embed(queries) @ embed(passages).T  # (Q, Q) cosines
    report = {"cloze": {**retrieval_metrics(scores, torch.eye(len(queries), dtype=torch.bool)),
                        "queries": len(queries), "passages": len(passages)}}
    _, _, paragraphs, paragraph_doc = retrieval_set(docs)  # the same paragraphs for both title rows
    corpus_vectors = embed(paragraphs)  # (N, D)
    for name, every_form in (("what_is", False), ("every_form", True)):
        queries, query_doc, _, _ = retrieval_set(docs, every_form)
        relevant = torch.tensor(query_doc)[:, None] == torch.tensor(paragraph_doc)[None, :]  # (Q, N)
        scores = embed(queries) @ corpus_vectors.T  # (Q, N) cosines
        figures = retrieval_metrics(scores, relevant)
        del figures["recall_at_1"]
        report[name] = {**figures, "queries": len(queries), "paragraphs": len(paragraphs)}
    return report


WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")  # GloVe 6B's words are lower-cased, numbers kept


def glove_embedder():
    """Mean GloVe 6B 50d vector of a text's lower-cased words (those GloVe has), unit length: texts -> (N, 50)."""
    from glove.defaults import load_shipped

    vectors = load_shipped()

    def embed(texts: list[str]) -> torch.Tensor:
        rows = []
        for text in texts:
            words = [w for w in WORD.findall(text.lower()) if w in vectors]
            rows.append(torch.from_numpy(vectors[words].mean(axis=0)) if words else torch.zeros(vectors.vector_size))
        # (N, 50) unit rows; a text without a word GloVe knows stays 0 (cosine 0 with everything)
        return nn.functional.normalize(torch.stack(rows).float(), p=2, dim=1)
    return embed


def encoder_embedder(encoder: SentenceEncoder):
    return lambda texts: encoder.encode(texts, normalize=True)  # (N, H) unit rows


# ---------------------------------------------------------------------------------------------
# The run.
# ---------------------------------------------------------------------------------------------

def pipeline_of(start: str) -> SentencePipeline:
    """The start's own sentence-transformers pipeline, with mean pooling and Normalize: what is trained."""
    base = SentenceEncoder.from_pretrained(start, fast=False).pipeline
    return dataclasses.replace(base, pooling=("mean",), normalize=True)


def run_options(start: str | None, low_rank: int | None, pairs: str) -> dict:
    """The options that make a run's model and pairs, as OUT/run_options.json keeps them: a --resume must
    give the same (a checkpoint of another rank does not load, and other pairs would change the run
    halfway). `start` is kept as an absolute path, so that "out/x" and "./out/x" are one folder; None is
    the shipped all-MiniLM-L6-v2."""
    return {"start": None if start is None else str(Path(start).resolve()), "low_rank": low_rank, "pairs": pairs}


def resume_differences(out: Path, options: dict) -> list[str]:
    """What a --resume with `options` (run_options) changes from the run in `out`, one phrase per option,
    such as "--pairs titles, where the run has both"; [] when nothing does, or when the run saved none.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / RUN_OPTIONS).write_text(json.dumps(run_options(None, 12, "both")))
    >>> resume_differences(folder, run_options(None, 8, "titles"))
    ['--low-rank 8, where the run has 12', '--pairs titles, where the run has both']
    """
    path = out / RUN_OPTIONS
    if not path.is_file():  # a run from before the file existed: nothing to compare with
        return []
    saved = json.loads(path.read_text())
    shown = {"start": lambda v: v or "the shipped all-MiniLM-L6-v2", "low_rank": lambda v: v or "none",
             "pairs": str}
    return [f"--{key.replace('_', '-')} {shown[key](options[key])}, where the run has {shown[key](saved.get(key))}"
            for key in options if options[key] != saved.get(key)]


def run(minutes: float = 10.0, out: Path = Path("out/sentence_encoder"), steps: int | None = None,
        seed: int | None = None, progress: bool = True, start: str | None = None, low_rank: int | None = None,
        learning_rate: float | None = None, device: str = "cpu", max_articles: int | None = None,
        resume: bool = False, pairs: str = "both") -> dict:
    """Train and evaluate; returns the report written to OUT/metrics.json. `steps` plans the schedule
    for that many steps instead of fitting it to `minutes`. `start` is a BERT checkpoint folder (default:
    the shipped all-MiniLM-L6-v2). `max_articles` keeps the first N training articles (for quick tests;
    the held-out ones are always all). `resume` goes on from the last checkpoint in `out`, with the
    run's own steps, learning rate and seed, for at most `minutes`; the other options must be the run's.
    `pairs` is which pairs train: "titles", "sentences" (inverse cloze) or "both" (half of each batch)."""
    if pairs not in PAIR_KINDS:
        raise ValueError(f"pairs must be one of {', '.join(PAIR_KINDS)}, not {pairs!r}")
    options = run_options(start, low_rank, pairs)
    changed = resume_differences(out, options) if resume else []
    if changed:
        raise ValueError(f"--resume goes on with the run's own options: {'; '.join(changed)}")
    saved = resumed_config(out, steps=steps, learning_rate=learning_rate, seed=seed) if resume else None
    seed = saved.seed if saved else (seed or 0)
    if start is None:
        tokenizer, start = shipped_tokenizer()
        name = "all-MiniLM-L6-v2"
    else:
        tokenizer, name = Tokenizer.from_pretrained(start), str(start)
    train_docs, held_docs = corpus.split_held_out(articles(), 0.1)
    train_docs = train_docs[:max_articles] if max_articles else train_docs
    examples = article_pairs(train_docs, pairs)
    n_pairs = sum(row.count(pairs) for row in examples)
    pipeline = pipeline_of(start)
    torch.manual_seed(seed)
    model = MeanPooledPairs.from_pretrained(start)
    if low_rank:
        add_low_rank(model, rank=low_rank)  # freezes the embeddings and the encoder's own weights
    if model.bert.pooler is not None:
        model.bert.pooler.requires_grad_(False)  # mean pooling never reads it
    model.to(device)
    if not resume:
        out.mkdir(parents=True, exist_ok=True)
        (out / RUN_OPTIONS).write_text(json.dumps(options, indent=2) + "\n")
    data = StepData(examples, BATCH_SIZE, collate_for(tokenizer, pairs=pairs), seed=seed)
    default_rate = 2e-4 if low_rank else 2e-5  # full fine-tuning at sentence-transformers' default
    config = schedule(saved, model, data, learning_rate=learning_rate or default_rate, steps=steps, minutes=minutes,
                      out=out, seed=seed, progress=progress)
    learns = f"low-rank updates of rank {low_rank} in every layer" if low_rank else "every weight"
    print(f"fine-tuning {name} into a sentence encoder ({learns}): {len(examples)} articles, "
          f"{n_pairs} {SENTENCE_PAIR_KINDS[pairs]} pairs, {config.total_steps} steps of {BATCH_SIZE} articles; "
          f"{len(held_docs)} articles held out")
    steps, seconds, losses = train_timed(model, config, data, tokenizer, resume=saved is not None)
    if low_rank:  # keep what was learned, then fold the updates in: a plain BERT from here on
        from safetensors.torch import save_file

        save_file({k: v.cpu().contiguous() for k, v in low_rank_factors(model.bert).items()},  # BertModel names
                  str(out / "low_rank.safetensors"), metadata={"rank": str(low_rank), "alpha": str(2.0 * low_rank)})
        merge_low_rank(model)
    trained = SentenceEncoder(model.bert.cpu().eval(), tokenizer, pipeline)
    trained.save_pretrained(out / "model")
    figures = {"trained": evaluate_retrieval(encoder_embedder(trained), held_docs),
               "base_model": evaluate_retrieval(encoder_embedder(SentenceEncoder.from_pretrained(start)), held_docs),
               "glove_mean": evaluate_retrieval(glove_embedder(), held_docs)}
    report = {"start": name, "steps": steps, "seconds": round(seconds), "low_rank": low_rank,
              "learning_rate": config.learning_rate, "batch_size": BATCH_SIZE, "scale": SCALE,
              "train_articles": len(examples), "pair_kinds": pairs, "pairs": n_pairs,
              "held_out_articles": len(held_docs), "held_out": figures,
              "losses": {"first": losses[:5], "last": losses[-5:]}}
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    print_table(figures)
    print(f"trained {steps} steps in {seconds / 60:.1f} minutes; model: {out / 'model'}")
    return report


def print_table(figures: dict) -> None:
    """The main row (inverse cloze: one relevant passage a query), then the title queries' row."""
    labels = (("trained", "trained here"), ("base_model", "base model, before training"),
              ("glove_mean", "mean GloVe 6B 50d"))
    cloze = figures["trained"]["cloze"]
    print(f"held out, a sentence finds the rest of its paragraph (inverse cloze): {cloze['queries']} queries "
          f"against {cloze['passages']} passages, one relevant each")
    print(f"  {'':32s} {'MRR@10':>7s} {'recall@1':>9s} {'recall@10':>10s}")
    for key, label in labels:
        m = figures[key]["cloze"]
        print(f"  {label:32s} {m['mrr_at_10']:7.3f} {m['recall_at_1']:9.3f} {m['recall_at_10']:10.3f}")
    what = figures["trained"]["what_is"]
    print(f"held out, titles: {what['queries']} queries \"What is <title>?\" against {what['paragraphs']} paragraphs, "
          f"relevant those of its article (every form and the title alone: "
          f"{figures['trained']['every_form']['queries']} queries)")
    print(f"  {'':32s} {'MRR@10':>7s} {'acc@1':>6s}   every form: MRR@10 acc@1")
    for key, label in labels:
        m, e = figures[key]["what_is"], figures[key]["every_form"]
        print(f"  {label:32s} {m['mrr_at_10']:7.3f} {m['accuracy_at_1']:6.3f}   {e['mrr_at_10']:18.3f} "
              f"{e['accuracy_at_1']:.3f}")


def checkpoint_folder(text: str) -> str:
    """argparse type for --start: a folder with a BERT checkpoint's config.json."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder: give a BERT checkpoint folder, such as "
                                         "out/pretrain/model")
    if not (Path(text) / "config.json").is_file():
        raise argparse.ArgumentTypeError(f"{text} has no config.json: give a BERT checkpoint folder, such as "
                                         "out/pretrain/model")
    return text


@one_line_errors
def main(argv=None) -> None:
    p = training_parser(__doc__, 10.0, "out/sentence_encoder", "2e-5, or 2e-4 with --low-rank", "the order of the pairs")
    p.add_argument("--start", type=checkpoint_folder, default=None,
                   help="a BERT checkpoint folder to start from (default: the shipped all-MiniLM-L6-v2)")
    p.add_argument("--low-rank", type=int, default=None, metavar="R",
                   help="train low-rank updates of rank R in every layer instead of every weight (e.g. 12)")
    p.add_argument("--pairs", choices=PAIR_KINDS, default="both",
                   help="which pairs train: titles ((question or title, paragraph)), sentences (inverse cloze: "
                        "(sentence, rest of its paragraph)) or both, half of each batch (default)")
    args = parse_training_args(p, argv)
    if args.low_rank is not None and args.low_rank < 1:
        p.error(f"--low-rank must be at least 1, not {args.low_rank}")
    changed = resume_differences(args.out, run_options(args.start, args.low_rank, args.pairs)) if args.resume else []
    if changed:
        p.error(f"--resume goes on with the run's own options: {'; '.join(changed)}")
    run(args.minutes, args.out, args.steps, args.seed, start=args.start, low_rank=args.low_rank,
        learning_rate=args.learning_rate, device=args.device, resume=args.resume, pairs=args.pairs)


if __name__ == "__main__":
    main()
