"""tasks/train_sentence_encoder.py: the pooling and loss module against sentence-transformers, the inverse
cloze maker on a hand-written paragraph, the batches (one pair per article, title and sentence pairs),
the retrieval figures on hand-computed examples (several relevant, and one), a smoke run and a resumed
run on a tiny BERT, the shipped stand-in, and the command line's refusals.

The smoke runs start from a tiny random BERT with MiniLM's vocabulary (--start), so that they take
seconds; the module's numbers are checked on all-MiniLM-L6-v2 itself.
"""

import json

import pytest
import torch

from minibert import BertConfig, BertModel, SentenceEncoder
from minibert.training import multiple_negatives_ranking_loss
from minibert.training.loop import StepData, Trainer
from tasks import _common, corpus, finetune_cross_encoder, standins
from tasks import train_sentence_encoder as T

PAIRS = [("What is Anarchism?", "A political philosophy that rejects hierarchy and the state."),
         ("Tell me about the Atlantic Ocean.", "The second-largest of the world's five oceans, between the Americas "
                                               "and Europe and Africa."),
         ("Algorithm", "A finite sequence of well-defined instructions, used to solve a class of problems."),
         ("What do you know about Alberta?", "A province of Canada whose capital is Edmonton.")]


def rows_of(pairs):
    """Articles that each offer one title pair and no cloze paragraph: collate gives exactly `pairs`."""
    return [T.ArticlePairs([pair], []) for pair in pairs]


@pytest.fixture(scope="module")
def minilm():
    tokenizer, path = _common.shipped_tokenizer()
    return tokenizer, path


@pytest.fixture(scope="module")
def tiny_start(tmp_path_factory, minilm):
    """A tiny random BERT with all-MiniLM-L6-v2's tokenizer, saved as a checkpoint folder. Its weights are
    drawn wide (std 0.5, not BERT's 0.02): from BERT's init every text gets nearly the same mean vector,
    and 8 steps barely move the loss (2.78 -> 2.50, measured); from this one they move it 4.09 -> 2.71."""
    tokenizer, _ = minilm
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, initializer_range=0.5)
    folder = tmp_path_factory.mktemp("tiny_bert")
    BertModel(config).save_pretrained(folder, tokenizer=tokenizer)
    return folder


# ---------------------------------------------------------------------------------------------
# The module: its embeddings are sentence-transformers', its loss the loss of those embeddings.
# ---------------------------------------------------------------------------------------------

def test_the_module_embeds_as_sentence_transformers_and_its_loss_is_the_ranking_loss_of_those(minilm):
    from sentence_transformers import SentenceTransformer

    tokenizer, path = minilm
    model = T.MeanPooledPairs.from_pretrained(path).eval()  # eval: no dropout, as encode runs
    batch = T.collate_for(tokenizer)(rows_of(PAIRS), [torch.Generator() for _ in PAIRS])
    assert batch["input_ids"].shape[0] == 2 * len(PAIRS)  # anchors, then positives
    with torch.no_grad():
        out = model(**batch)
    anchors, positives = [a for a, _ in PAIRS], [p for _, p in PAIRS]
    reference = SentenceTransformer(str(path), device="cpu")  # the independent reference for the embeddings
    expected_a = torch.from_numpy(reference.encode(anchors))  # (B, 384), unit rows (MiniLM ends in Normalize)
    expected_p = torch.from_numpy(reference.encode(positives))
    assert torch.allclose(out.anchors, expected_a, atol=1e-5) and torch.allclose(out.positives, expected_p, atol=1e-5)
    # the loss, against the library's loss on SentenceEncoder's embeddings of the same texts
    encoder = SentenceEncoder.from_pretrained(path)
    expected = multiple_negatives_ranking_loss(encoder.encode(anchors), encoder.encode(positives), scale=20.0)
    assert abs(float(out.loss) - float(expected)) < 1e-5, (float(out.loss), float(expected))
    # and it is not a loss that any embeddings would give: swapping the positives makes it far larger
    with torch.no_grad():
        swapped = T.collate_for(tokenizer)(rows_of(zip(anchors, positives[::-1])),
                                           [torch.Generator() for _ in PAIRS])
        assert float(model(**swapped).loss) > float(out.loss) + 1.0


def test_each_half_is_cut_to_its_own_longest_text_without_changing_the_embeddings(minilm):
    """The forward cuts the anchors' padding off before BERT; the embeddings are those of the anchors alone."""
    tokenizer, path = minilm
    model = T.MeanPooledPairs.from_pretrained(path).eval()
    alone = tokenizer([a for a, _ in PAIRS])  # padded to the longest anchor only
    batch = T.collate_for(tokenizer)(rows_of(PAIRS), [torch.Generator() for _ in PAIRS])
    assert batch["input_ids"].shape[1] > alone["input_ids"].shape[1]  # the paragraphs are longer
    with torch.no_grad():
        assert torch.allclose(model(**batch).anchors, model.embed(alone["input_ids"], alone["attention_mask"]),
                              atol=1e-6)
    with pytest.raises(ValueError, match="even number of rows"):
        model(batch["input_ids"][:3], batch["attention_mask"][:3])


# ---------------------------------------------------------------------------------------------
# The pairs and the batches.
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def split():
    return corpus.split_held_out(finetune_cross_encoder.articles(), 0.1)


def test_no_batch_holds_two_pairs_of_one_article_and_each_half_is_of_its_kind(split):
    """A batch of the run's "both": the first half title pairs (the title asked for, not named by the
    paragraph), the second half cloze pairs (a sentence, and the rest of its paragraph without it)."""
    train, held = split
    assert {d.title for d in train}.isdisjoint({d.title for d in held})
    article_of = {p: d.title for d in train for p in d.paragraphs}
    sentence_of = {}  # a sentence -> the (title, paragraph) it stands in; a repeated sentence is left out
    for d in train:
        for p in d.paragraphs:
            for sentence in corpus.sentences(p):
                sentence_of[sentence] = None if sentence in sentence_of else (d.title, p)
    examples = T.article_pairs(train)
    data = StepData(examples, T.BATCH_SIZE, T.draw_pairs, seed=3)  # the very StepData and draw the run uses
    seen, half = set(), T.BATCH_SIZE // 2
    for step in range(3 * data.steps_per_epoch):  # three epochs
        (pairs,) = data(step)
        assert len(pairs) == T.BATCH_SIZE
        titles = []
        for anchor, positive in pairs[:half]:  # title pairs
            title = article_of[positive]
            assert title in anchor and title.lower() not in positive.lower()  # the anchor asks for its own article
            titles.append(title)
        for anchor, positive in pairs[half:]:  # cloze pairs
            assert positive not in article_of  # not a whole paragraph: a sentence is out of it
            found = sentence_of.get(anchor)
            if found is None:  # a sentence that stands in two places: its article is not known this way
                continue
            title, paragraph = found
            rest = [s for s in corpus.sentences(paragraph) if s != anchor]
            assert positive == " ".join(rest) and len(rest) >= 2, (anchor, positive)
            titles.append(title)
        assert len(set(titles)) == len(titles) >= T.BATCH_SIZE - 2, titles
        seen.update(pairs)
    assert len(seen) > 2 * data.steps_per_epoch * T.BATCH_SIZE  # each epoch draws afresh, not the same pairs


def test_pairs_titles_or_sentences_alone_draw_only_that_kind(split):
    train, _ = split
    article_of = {p: d.title for d in train for p in d.paragraphs}
    for kind in ("titles", "sentences"):
        examples = T.article_pairs(train, kind)
        (pairs,) = StepData(examples, T.BATCH_SIZE, lambda rows, gens: T.draw_pairs(rows, gens, kind), seed=1)(0)
        whole = [positive in article_of for _, positive in pairs]
        assert all(whole) if kind == "titles" else not any(whole), (kind, pairs)
    rows = T.article_pairs(train)
    # the training articles' figures, as the run prints them: 12710 title pairs (the figure before cloze pairs
    # came), 13717 cloze pairs (one per query-worthy sentence of a cloze paragraph, references left out)
    assert [sum(r.count(kind) for r in rows) for kind in ("titles", "sentences", "both")] == [12710, 13717, 26427]


def test_an_article_counts_its_pairs_as_counted_by_hand():
    """Two title pairs; a cloze paragraph of 4 sentences, all of four words or more (4 cloze pairs), and one
    of 3 whose "Born 1950." is too short to ask (2 cloze pairs): 2, 6 and 8 pairs."""
    row = T.ArticlePairs([("What is X?", "A paragraph."), ("X", "A paragraph.")],
                         [["The river rises in the hills.", "It flows north for 200 km.",
                           "Dr. Smith mapped it in 1850.", "It ends in a lake."],
                          ["Born 1950.", "He wrote three long books.", "He died in the city."]])
    assert (row.count("titles"), row.count("sentences"), row.count("both")) == (2, 6, 8)


# ---------------------------------------------------------------------------------------------
# The inverse cloze task: one sentence asks for the rest of its paragraph.
# ---------------------------------------------------------------------------------------------

PARAGRAPHS = ["The river rises in the hills. It flows north for 200 km. Dr. Smith mapped it in 1850. "
              "It ends in a lake.",
              "A short one. Only two sentences here.",
              "One sentence alone.",
              "Bees make honey. They live in hives. A hive has one queen.",
              "* Knuth, Donald E. (2000). Selected Papers on Analysis of Algorithms. Stanford, California: CSLI.",
              "Born 1950. He wrote three long books. Died 2001."]

# Each paragraph's possible (query, passage), written out by hand: "Dr." does not end a sentence; "Bees make
# honey." (three words), "Born 1950." and "Died 2001." are too short to be asked; the reference gives nothing.
BY_HAND = [{"The river rises in the hills.":
                "It flows north for 200 km. Dr. Smith mapped it in 1850. It ends in a lake.",
            "It flows north for 200 km.":
                "The river rises in the hills. Dr. Smith mapped it in 1850. It ends in a lake.",
            "Dr. Smith mapped it in 1850.":
                "The river rises in the hills. It flows north for 200 km. It ends in a lake.",
            "It ends in a lake.":
                "The river rises in the hills. It flows north for 200 km. Dr. Smith mapped it in 1850."},
           {"They live in hives.": "Bees make honey. A hive has one queen.",
            "A hive has one queen.": "Bees make honey. They live in hives."},
           {"He wrote three long books.": "Born 1950. Died 2001."}]


def test_the_inverse_cloze_query_is_a_sentence_taken_out_of_its_passage_and_short_paragraphs_are_skipped():
    """Short paragraphs, reference-list items and too short sentences give no query; over 20 seeds every
    other sentence is drawn, and each time its passage is the hand-written one."""
    drawn = [set() for _ in BY_HAND]
    for seed in range(20):
        pairs = T.inverse_cloze(PARAGRAPHS, seed=seed)
        assert len(pairs) == len(BY_HAND)
        for (query, passage), expected, seen in zip(pairs, BY_HAND, drawn):
            assert expected.get(query) == passage, (query, passage)
            seen.add(query)
    assert [len(seen) for seen in drawn] == [4, 2, 1]  # every query-worthy sentence gets drawn


def test_the_same_seed_gives_the_same_queries_and_a_paragraphs_query_does_not_depend_on_the_others():
    assert T.inverse_cloze(PARAGRAPHS, seed=5) == T.inverse_cloze(PARAGRAPHS, seed=5)
    assert T.inverse_cloze(PARAGRAPHS[::-1], seed=5) == T.inverse_cloze(PARAGRAPHS, seed=5)[::-1]
    assert T.inverse_cloze(PARAGRAPHS[3:], seed=5) == T.inverse_cloze(PARAGRAPHS, seed=5)[1:]


# ---------------------------------------------------------------------------------------------
# The retrieval figures, on examples worked by hand.
# ---------------------------------------------------------------------------------------------

def test_retrieval_metrics_on_hand_computed_examples():
    # query 0: relevant are paragraphs 1 and 3; ranked 2, 1, 3, 0: first relevant at rank 2 -> MRR 1/2,
    #   recall@1 0/2, recall@3 2/2; query 1: relevant is paragraph 0, ranked last (4th) -> 0 in the top 3.
    # query 2: relevant paragraph 2, ranked first -> MRR 1, recall@1 1, recall@3 1, accuracy@1 1.
    scores = torch.tensor([[0.1, 0.8, 0.9, 0.5],
                           [0.0, 0.3, 0.2, 0.1],
                           [0.2, 0.1, 0.7, 0.3]])
    relevant = torch.tensor([[False, True, False, True],
                             [True, False, False, False],
                             [False, False, True, False]])
    m = T.retrieval_metrics(scores, relevant, k=3)
    assert m["mrr_at_3"] == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert m["recall_at_1"] == pytest.approx((0 + 0 + 1) / 3)
    assert m["recall_at_3"] == pytest.approx((2 / 2 + 0 + 1) / 3)
    assert m["accuracy_at_1"] == pytest.approx(1 / 3)
    # a perfect ranking scores 1 everywhere except recall@1 when a query has several relevant paragraphs
    perfect = T.retrieval_metrics(relevant.float(), relevant, k=3)
    assert perfect["mrr_at_3"] == 1 and perfect["accuracy_at_1"] == 1 and perfect["recall_at_3"] == 1
    assert perfect["recall_at_1"] == pytest.approx((1 / 2 + 1 + 1) / 3)
    with pytest.raises(ValueError, match="at least one relevant"):
        T.retrieval_metrics(scores, torch.zeros(3, 4, dtype=torch.bool))


def test_retrieval_metrics_with_one_relevant_passage_a_query():
    """The cloze figures: query i's one relevant passage is passage i (an identity matrix)."""
    # query 0: its passage ranked 1st; query 1: 3rd (0.7 and 0.6 above its 0.5); query 2: 12th of 12, out of the top 10;
    # query 3: 2nd. MRR@10 = (1 + 1/3 + 0 + 1/2) / 4; recall@1 = accuracy@1 = 1/4; recall@10 = 3/4.
    scores = torch.full((4, 12), 0.1)
    scores[0, 0] = 0.9
    scores[1, 1], scores[1, 5], scores[1, 7] = 0.5, 0.7, 0.6
    scores[2] = torch.linspace(0.9, 0.2, 12)
    scores[2, 2] = 0.0
    scores[3, 3], scores[3, 0] = 0.8, 0.85
    m = T.retrieval_metrics(scores, torch.eye(4, 12, dtype=torch.bool))
    assert m["mrr_at_10"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)
    assert m["recall_at_1"] == m["accuracy_at_1"] == pytest.approx(1 / 4)
    assert m["recall_at_10"] == pytest.approx(3 / 4)


def test_the_held_out_cloze_set_is_every_long_held_out_paragraph_once(split):
    _, held = split
    queries, passages = T.cloze_set(held)
    # 363 paragraphs of three sentences or more; 69 of them are reference-list items ("* ..."), none is left
    # without a sentence of four words or more: 294 queries, each asked once
    long = [p for d in held for p in d.paragraphs if len(corpus.sentences(p)) >= 3]
    paragraphs = [p for p in long if not p.startswith("*")]
    assert (len(long), len(paragraphs), len(queries), len(set(queries))) == (363, 294, 294, 294)
    for query, passage, paragraph in zip(queries, passages, paragraphs):
        # the query is a span of the paragraph, with four words or more and a letter; cutting that span out of
        # the paragraph's text leaves the passage, up to spaces (no sentence splitting involved)
        assert query in paragraph and len(query.split()) >= 4 and any(c.isalpha() for c in query)
        assert paragraph.count(query) == 1 and " ".join(paragraph.replace(query, " ").split()) == passage, query
    assert T.cloze_set(held) == (queries, passages)  # a fixed seed: the same queries on every run


def test_the_held_out_retrieval_set_is_what_the_docstring_says(split):
    _, held = split
    queries, query_doc, paragraphs, paragraph_doc = T.retrieval_set(held)
    assert queries == [f"What is {d.title}?" for d in held] and query_doc == list(range(len(held)))
    assert len(paragraphs) == sum(len(finetune_cross_encoder.usable(d)) for d in held) == len(paragraph_doc)
    assert all(held[d].title.lower() not in p.lower() for p, d in zip(paragraphs, paragraph_doc))
    every, every_doc, _, _ = T.retrieval_set(held, every_form=True)
    assert len(every) == 5 * len(held) and every_doc[:5] == [0] * 5 and every[4] == held[0].title
    # the title rows leave recall@1 out (about 30 relevant paragraphs a query: it cannot pass 1/30)
    glove = T.evaluate_retrieval(T.glove_embedder(), held)
    assert list(glove) == ["cloze", "what_is", "every_form"]
    assert "recall_at_1" not in glove["what_is"] and "recall_at_1" in glove["cloze"]


# ---------------------------------------------------------------------------------------------
# The program: a smoke run, and a run stopped and resumed, on a tiny BERT.
# ---------------------------------------------------------------------------------------------

def test_smoke_run_writes_everything_the_loss_falls_and_sentence_transformers_loads_the_model(tmp_path, tiny_start):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "run"
    # title pairs alone: 16 articles, one batch, the same 16 articles every step and 5 anchors each, so the task is
    # learnable in a few steps (cloze pairs draw a new sentence every step; the resumed run below trains on both)
    report = T.run(out=out, steps=8, start=str(tiny_start), learning_rate=3e-3, progress=False, max_articles=16,
                   pairs="titles")
    assert {"model", "log.jsonl", "loss.png", "metrics.json", "checkpoint"} <= {p.name for p in out.iterdir()}
    losses = [json.loads(line)["loss"] for line in (out / "log.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert len(losses) == 8 and losses[0] == pytest.approx(report["losses"]["first"][0])
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3, losses
    metrics = json.loads((out / "metrics.json").read_text())
    for model in ("trained", "base_model", "glove_mean"):
        figures = metrics["held_out"][model]["cloze"]
        assert 0 <= figures["recall_at_1"] <= figures["recall_at_10"] <= 1 and figures["queries"] == 294
        assert figures["recall_at_1"] == figures["accuracy_at_1"]  # one relevant passage a query
        assert metrics["held_out"][model]["what_is"]["queries"] == 9
    assert metrics["pair_kinds"] == "titles" and metrics["train_articles"] == 16
    texts = [a for a, _ in PAIRS] + [p for _, p in PAIRS]
    ours = SentenceEncoder.from_pretrained(out / "model").encode(texts)
    theirs = torch.from_numpy(SentenceTransformer(str(out / "model"), device="cpu").encode(texts))
    assert torch.allclose(ours, theirs, atol=1e-6), (ours - theirs).abs().max()
    assert torch.allclose(ours.norm(dim=1), torch.ones(len(texts)), atol=1e-5)  # Normalize is in the pipeline
    assert not torch.allclose(ours, SentenceEncoder.from_pretrained(tiny_start).encode(texts, normalize=True),
                              atol=1e-3)  # it has learned something


def test_a_low_rank_run_stopped_and_resumed_gives_the_uninterrupted_runs_losses(tmp_path, tiny_start, monkeypatch):
    options = dict(steps=4, start=str(tiny_start), low_rank=4, learning_rate=3e-3, progress=False, max_articles=32)
    whole = T.run(out=tmp_path / "whole", **options)
    from safetensors.torch import load_file

    factors = load_file(str(tmp_path / "whole" / "low_rank.safetensors"))
    assert len(factors) == 2 * 6 * 2 and all(k.startswith("encoder.layer.") for k in factors)  # BertModel's names

    real_step, calls = Trainer.train_step, []

    def stop_after_two(self, micro_batches):
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed during step 3: the checkpoint of step 2 is on disk
        calls.append(1)
        return real_step(self, micro_batches)

    monkeypatch.setattr(Trainer, "train_step", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        T.run(out=tmp_path / "cut", **options)
    monkeypatch.setattr(Trainer, "train_step", real_step)
    resumed = T.run(out=tmp_path / "cut", resume=True, progress=False, start=str(tiny_start), low_rank=4,
                    max_articles=32)
    assert resumed["steps"] == whole["steps"] == 4
    first, second = ([json.loads(line)["loss"] for line in (tmp_path / name / "log.jsonl").read_text().splitlines()
                      if "loss" in json.loads(line)] for name in ("whole", "cut"))
    assert len(second) == 4 and second == pytest.approx(first, abs=1e-5)
    texts = [p for _, p in PAIRS]
    assert torch.allclose(SentenceEncoder.from_pretrained(tmp_path / "whole" / "model").encode(texts),
                          SentenceEncoder.from_pretrained(tmp_path / "cut" / "model").encode(texts), atol=1e-5)
    assert json.loads((tmp_path / "whole" / "run_options.json").read_text()) == \
        {"start": str(tiny_start.resolve()), "low_rank": 4, "pairs": "both"}
    with pytest.raises(ValueError, match="--low-rank 8, where the run has 4"):  # before any checkpoint is read
        T.run(out=tmp_path / "whole", resume=True, progress=False, start=str(tiny_start), low_rank=8)


@pytest.mark.parametrize("changed, named", [
    (["--pairs", "titles"], ["--pairs titles, where the run has both"]),
    (["--low-rank", "8"], ["--low-rank 8, where the run has 4"]),
    (["--pairs", "sentences", "--low-rank", "2"], ["--low-rank 2, where the run has 4",
                                                    "--pairs sentences, where the run has both"]),
    ([], ["--start the shipped all-MiniLM-L6-v2, where the run has", "--low-rank none, where the run has 4"]),
])
def test_a_resume_with_other_options_than_the_runs_is_a_one_line_usage_error(changed, named, tmp_path, tiny_start,
                                                                             capsys):
    """The run's --start, --low-rank and --pairs are in OUT/run_options.json (the resume test above checks that
    a run writes it); a --resume that changes any is refused, each change named, before the model is loaded
    (a checkpoint of another rank would not load). The run folder is laid out by hand: the refusal comes
    before the checkpoint is read."""
    out = tmp_path / "run"
    (out / "checkpoint").mkdir(parents=True)
    (out / "checkpoint" / "training_state.pt").write_bytes(b"")
    (out / "run_options.json").write_text(json.dumps({"start": str(tiny_start.resolve()), "low_rank": 4,
                                                      "pairs": "both"}))
    same = ["--start", str(tiny_start)] + (["--low-rank", "4"] if "--low-rank" not in changed else [])
    with pytest.raises(SystemExit) as exit_:
        T.main(["--resume", "--out", str(out), *(same if changed else []), *changed])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert exit_.value.code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert all(phrase in errors[0] for phrase in named), err


# ---------------------------------------------------------------------------------------------
# The stand-in.
# ---------------------------------------------------------------------------------------------

def test_the_stand_in_is_small_float16_factors_alone():
    from safetensors.torch import load_file

    stem = _common.KINDS["sentence-encoder"][0]
    path = standins.FOLDER / f"{stem}.safetensors"
    info = json.loads((standins.FOLDER / f"{stem}.json").read_text())
    assert path.stat().st_size < 1_050_000  # "at most about 1 MB"
    tensors = load_file(str(path))
    r = info["low_rank"]
    assert r == standins.SENTENCE_LOW_RANK and all(t.dtype == torch.float16 for t in tensors.values())
    assert all(k.endswith((".lora_A", ".lora_B")) for k in tensors) and len(tensors) == 6 * 6 * 2
    assert sum(t.numel() for t in tensors.values()) == 6 * (4 * (384 + 384) + 2 * (384 + 1536)) * r
    assert info["device"] == "cpu" and info["steps"] >= 1


def test_the_stand_in_loads_as_a_sentence_encoder_and_is_no_worse_than_the_base_model_on_held_out_retrieval(
        split, minilm):
    """Trained with 69 steps (602 s on the shared 2-core CPU, title and sentence pairs), before the cloze
    maker left out references and short sentences; re-measured on the filtered set (2026-12-07,
    tasks/standins/sentence_encoder_low_rank.json): on the main row, 294 held-out sentences each finding
    the rest of its paragraph among 294 passages (inverse cloze), MRR@10 0.5949 against 0.5874 for the
    base model, recall@1 0.442 for both (130 queries at rank 1 each) and recall@10 0.888 against 0.864
    (261 queries in the top 10 against 254); on the 9 "What is <title>?" queries MRR@10 1.000 against
    0.926, over the 45 in every form 0.972 against 0.912. Both models are measured again here.

    What is asked is what the measurement supports, no more. Query by query the stand-in ranks 63
    passages higher than the base model and 45 lower (186 the same): a sign test gives p = 0.10, so no
    gain on the main row is claimed. The margins are about half the measured gaps: MRR@10 +0.004 and
    recall@10 +3 queries; recall@1, where the gap is nil, only no worse than the base by more than 2
    queries; on the title rows MRR@10 +0.03."""
    _, held = split
    _, path = minilm
    encoder = standins.load_sentence_encoder_standin()
    assert isinstance(encoder, SentenceEncoder) and encoder.pipeline.pooling == ("mean",) and encoder.pipeline.normalize
    loaded = standins.load_standin("sentence-encoder", SentenceEncoder)
    assert loaded.name.startswith("stand-in: a sentence encoder") and "sentence-transformers/all-MiniLM-L6-v2" in loaded.name
    ours = T.evaluate_retrieval(T.encoder_embedder(encoder), held)
    base = T.evaluate_retrieval(T.encoder_embedder(SentenceEncoder.from_pretrained(path)), held)
    info = json.loads((standins.FOLDER / f"{_common.KINDS['sentence-encoder'][0]}.json").read_text())
    recorded = info["held_out"]
    assert f"among 294: MRR@10 {recorded['trained']['cloze']['mrr_at_10']:.3f} against " \
           f"{recorded['base_model']['cloze']['mrr_at_10']:.3f} for the base model" in loaded.name  # the main row
    assert "above" not in loaded.name  # a gain the sign test does not support is not claimed
    for queries, names in (("cloze", ("mrr_at_10", "recall_at_1", "recall_at_10")),
                           ("what_is", ("mrr_at_10", "accuracy_at_1"))):
        for name in names:  # float16 factors and the fast path: as recorded, to rounding
            assert ours[queries][name] == pytest.approx(recorded["trained"][queries][name], abs=3e-3), (queries, name)
            assert base[queries][name] == pytest.approx(recorded["base_model"][queries][name], abs=1e-5), \
                (queries, name)
    assert ours["cloze"]["mrr_at_10"] >= base["cloze"]["mrr_at_10"] + 0.004, (ours["cloze"], base["cloze"])
    assert ours["cloze"]["recall_at_10"] >= base["cloze"]["recall_at_10"] + 3 / 294, (ours["cloze"], base["cloze"])
    assert ours["cloze"]["recall_at_1"] >= base["cloze"]["recall_at_1"] - 2 / 294, (ours["cloze"], base["cloze"])
    for queries in ("what_is", "every_form"):
        assert ours[queries]["mrr_at_10"] >= base[queries]["mrr_at_10"] + 0.03, (queries, ours, base)


# ---------------------------------------------------------------------------------------------
# The command line.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--start", "/no/such/folder"], "argument --start: /no/such/folder is not a folder"),
    (["--steps", "0"], "--steps must be at least 1, not 0"),
    (["--low-rank", "0"], "--low-rank must be at least 1, not 0"),
    (["--minutes", "nan"], "argument --minutes: must be a finite number above 0, not 'nan'"),
    (["--learning-rate", "-1"], "argument --learning-rate: must be a finite number above 0, not '-1'"),
    (["--device", "bogus"], "argument --device: 'bogus' is not a device"),
    (["--pairs", "words"], "argument --pairs: invalid choice: 'words'"),
])
def test_bad_input_is_a_one_line_usage_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        T.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err, err


def test_bad_folders_are_one_line_errors(tmp_path, tiny_start, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "log.jsonl").write_text("{}\n")
    for argv, message in ((["--start", str(tmp_path / "empty")], "has no config.json"),
                          (["--out", str(tmp_path / "a_file")], "is a file, not a folder"),
                          (["--out", str(tmp_path / "full")], "is not empty (log.jsonl)"),
                          (["--resume", "--out", str(tmp_path / "empty")], "holds no checkpoint to resume from"),
                          (["--resume", "--steps", "3", "--out", str(tmp_path / "full")], "leave it out")):
        with pytest.raises(SystemExit) as exit_:
            T.main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and "Traceback" not in err, (argv, err)
    # a rank above the model's width (32 here) is refused by add_low_rank, once the model is loaded: one line
    with pytest.raises(SystemExit) as exit_:
        T.main(["--start", str(tiny_start), "--low-rank", "99", "--steps", "1", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and "rank 99 is not low" in err and len(err.strip().splitlines()) == 1, err
