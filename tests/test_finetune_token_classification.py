"""tasks/finetune_token_classification.py: the words and IOB2 labels made from Wikipedia's links, the
entity-level scores against seqeval's published behaviour and hand-computed numbers, a smoke run whose
saved model transformers loads with the same logits, and one-line errors for bad options."""

import json
import types

import pytest
import torch

from tasks import corpus
from tasks import finetune_token_classification as tc

# -- words and labels from a paragraph's links -------------------------------------------------------------

TEXT = "Proudhon's mutualism, the Paris Commune and the state. In 1871 the Commune fell to the French Army."


def link(text: str, occurrence: int = 0) -> tuple[int, int]:
    """The character span of the `occurrence`-th appearance of `text` in TEXT, found by hand-written search."""
    start = -1
    for _ in range(occurrence + 1):
        start = TEXT.index(text, start + 1)
    return start, start + len(text)


def test_a_hand_written_paragraph_becomes_words_with_offsets_and_iob2_labels():
    # Links: one word before a comma, two words ("Paris Commune"), a link that covers part of a word
    # ("mutual" in "mutualism"), and "French Army" in the second sentence.
    links = [link("mutual"), link("Paris Commune"), link("state"), link("French Army")]
    paragraph = corpus.LinkedParagraph("Anarchism", TEXT, links)
    sentences, crossing = tc.labelled_sentences(paragraph)
    assert crossing == 0 and [s.text for s in sentences] == [
        "Proudhon's mutualism, the Paris Commune and the state.", "In 1871 the Commune fell to the French Army."]
    first, second = sentences
    assert first.words == ["Proudhon", "'", "s", "mutualism", ",", "the", "Paris", "Commune", "and", "the", "state", "."]
    assert [first.text[s:e] for s, e in first.offsets] == first.words  # the offsets point at the words
    assert first.offsets[:4] == [(0, 8), (8, 9), (9, 10), (11, 20)]
    assert [tc.LABELS[x] for x in first.labels] == [
        "O", "O", "O", "B-LINK", "O", "O", "B-LINK", "I-LINK", "O", "O", "B-LINK", "O"]
    # the second sentence's offsets start again at 0; its "Commune" is not linked: O (the silver standard)
    assert second.offsets[0] == (0, 2) and second.words[3] == "Commune" and second.labels[3] == tc.O
    assert [tc.LABELS[x] for x in second.labels][-3:] == ["B-LINK", "I-LINK", "O"]


def test_adjacent_links_are_two_mentions_and_a_link_across_sentences_is_dropped():
    text = "Rome and Paris Lyon. Then Athens."
    paragraph = corpus.LinkedParagraph("t", text, [(9, 14), (15, 19)])  # "Paris", "Lyon"
    (first, _), crossing = tc.labelled_sentences(paragraph)
    assert crossing == 0 and [tc.LABELS[x] for x in first.labels] == ["O", "O", "B-LINK", "B-LINK", "O"]
    across = corpus.LinkedParagraph("t", text, [(15, 25)])  # "Lyon. Then": crosses the sentence end
    sentences, crossing = tc.labelled_sentences(across)
    assert crossing == 1 and all(label == tc.O for s in sentences for label in s.labels)


def test_two_links_that_touch_one_word_are_two_mentions_and_the_word_is_the_firsts():
    #          "the Paris Commune fell" as words; offsets written by hand
    offsets = [(0, 3), (4, 9), (10, 17), (18, 22)]
    # "the Par" and "is Commune": both touch "Paris", which goes to the first; the second begins at "Commune"
    assert tc.word_labels(offsets, [(0, 7), (7, 17)]) == [tc.B, tc.I, tc.B, tc.O]
    # the same links given the other way round are read in order: "Paris" is then the second's, as B
    assert tc.word_labels(offsets, [(7, 17), (0, 7)]) == [tc.B, tc.B, tc.I, tc.O]
    # "[[Li]][[F]]": two links inside one word are one word, so one mention
    assert tc.word_labels([(0, 3), (4, 8)], [(0, 2), (2, 3)]) == [tc.B, tc.O]
    # scored as seqeval reads IOB2: two entities in the first case, one in the last
    assert len(tc.entity_spans(["B-LINK", "I-LINK", "B-LINK", "O"])) == 2


def test_words_are_what_the_tokenizer_reads_as_words():
    """The words are BERT's pre-tokenizer's: transformers' BertTokenizerFast, given the sentence as one string
    and as these words (is_split_into_words), makes the same pieces."""
    from transformers import BertTokenizerFast

    _, path = tc.shipped_tokenizer()
    reference = BertTokenizerFast.from_pretrained(path)
    sentence = "Bakunin's \"collectivist anarchism\" (1868-1876) rejected the U.S.-style state, e.g. Proudhon's."
    words = [w for w, _ in tc.split_words(sentence)]
    assert reference(words, is_split_into_words=True)["input_ids"] == reference(sentence)["input_ids"]


# -- the scores ---------------------------------------------------------------------------------------------

def test_span_scores_on_seqevals_readme_example():
    """seqeval's README: this pair gives f1_score 0.50 and accuracy_score 0.80 (the predicted MISC starts one
    word early, so only PER matches: P = R = 1/2)."""
    gold = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    predicted = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    figures = tc.span_scores(gold, predicted)
    assert (figures["precision"], figures["recall"], figures["f1"], figures["accuracy"]) == (0.5, 0.5, 0.5, 0.8)


def test_span_scores_worked_by_hand():
    """Gold has 4 mentions; the prediction has 4 spans, of which 2 match exactly:
         gold       B  I  O  B  O  I  I  O  B  B
         predicted  B  I  O  B  I  O  O  O  I  B
      gold spans (0,2) (3,4) (5,7) (8,9) (9,10); an I after O starts a span, as in conlleval: 5 in all.
      predicted spans (0,2) (3,5) (8,9) (9,10): 4. Exact matches: (0,2) (8,9) (9,10) = 3.
      P = 3/4, R = 3/5, F1 = 2PR/(P+R) = 0.6667; words equal: 6 of 10 (all but 4, 5, 6 and 8)."""
    gold = ["B-LINK", "I-LINK", "O", "B-LINK", "O", "I-LINK", "I-LINK", "O", "B-LINK", "B-LINK"]
    predicted = ["B-LINK", "I-LINK", "O", "B-LINK", "I-LINK", "O", "O", "O", "I-LINK", "B-LINK"]
    assert tc.entity_spans(gold) == {("LINK", 0, 2), ("LINK", 3, 4), ("LINK", 5, 7), ("LINK", 8, 9), ("LINK", 9, 10)}
    figures = tc.span_scores([gold], [predicted])
    assert figures == {"precision": 0.75, "recall": 0.6, "f1": 0.6667, "accuracy": 0.6, "entities": 5, "predicted": 4}
    nothing = tc.span_scores([gold], [["O"] * 10])
    assert (nothing["precision"], nothing["recall"], nothing["f1"]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same words"):
        tc.span_scores([gold], [predicted[:-1]])


def test_the_gazetteer_takes_the_longest_name_case_insensitively():
    train = [tc.LabelledSentence(["the", "Paris", "Commune", "and", "Paris"], [], [0, 1, 2, 0, 1], "")]
    names = tc.gazetteer(train)
    assert names == {("paris", "commune"), ("paris",)}
    held = [tc.LabelledSentence("In PARIS the paris commune fell".split(), [], [0] * 6, "")]
    assert tc.gazetteer_tags(held, names) == [[tc.O, tc.B, tc.O, tc.B, tc.I, tc.O]]


def test_the_held_out_articles_are_the_other_programs():
    linked = corpus.wikipedia_linked_articles()
    _, held = corpus.split_held_out(linked, 0.1)
    _, held_plain = corpus.split_held_out(corpus.wikipedia_articles(), 0.1)
    assert [a.title for a in held] == [d.title for d in held_plain] and len(held) == 10


# -- predict, on a stub model with fixed logits -----------------------------------------------------------

class PiecesStub(torch.nn.Module):
    """Logits fixed by the piece alone: I-LINK for a word's later piece ("##..."), B-LINK for any other
    piece, so a word predicted B was read from its first piece, and one predicted I from a later one."""

    def __init__(self, tokenizer):
        super().__init__()
        vocab = tokenizer.backend.get_vocab()
        later = torch.zeros(max(vocab.values()) + 1, dtype=torch.bool)
        later[[i for piece, i in vocab.items() if piece.startswith("##")]] = True
        self.register_buffer("later", later)
        self.unused = torch.nn.Parameter(torch.zeros(1))  # predict() asks the parameters for the device

    def forward(self, input_ids, **_):
        logits = torch.zeros(*input_ids.shape, 3)
        logits[..., tc.B] = 1.0
        logits[..., tc.I] = 2.0 * self.later[input_ids]
        return types.SimpleNamespace(logits=logits)


def words_kept_by_transformers(words: list[str], max_length: int) -> int:
    """How many words keep a piece when transformers' tokenizer cuts the sentence to max_length pieces."""
    from transformers import BertTokenizerFast

    reference = BertTokenizerFast.from_pretrained(tc.shipped_tokenizer()[1])
    encoding = reference(words, is_split_into_words=True, truncation=True, max_length=max_length)
    return len({w for w in encoding.word_ids() if w is not None})


def test_predict_reads_each_words_first_piece_and_a_word_cut_off_comes_out_o(monkeypatch):
    tokenizer, _ = tc.shipped_tokenizer()
    long = "The unaffable cat sat on Proudhon ' s mat".split()  # "unaffable" and "Proudhon" are several pieces
    assert len(tokenizer.words([["unaffable"]], 8)[0].word_ids) > 3  # so a later piece would read I
    sentences = [tc.LabelledSentence(words, [], [tc.O] * len(words), " ".join(words))
                 for words in (long, ["mutualism"], long[:3])]  # of three lengths, so the batches reorder them
    model = PiecesStub(tokenizer)
    # Whole: every word is read from its first piece, so B; each sentence comes back in its place
    assert tc.predict(model, tokenizer, sentences, batch_size=2) == [[tc.B] * len(s.words) for s in sentences]
    # Cut to 8 pieces, [CLS] and [SEP] among them: the words past the cut have no piece, so O
    monkeypatch.setattr(tc, "EVAL_MAX_LENGTH", 8)
    kept = words_kept_by_transformers(long, 8)
    assert kept == 4  # The, una ##ffa ##ble, cat, sat
    assert tc.predict(model, tokenizer, sentences[:1]) == [[tc.B] * kept + [tc.O] * (len(long) - kept)]


# -- a smoke run ------------------------------------------------------------------------------------------

def test_smoke_run_writes_everything_the_loss_falls_and_transformers_loads_the_model(tmp_path, monkeypatch):
    from transformers import BertForTokenClassification as HFTokenClassification
    from transformers import BertTokenizerFast

    from minibert import BertForTokenClassification
    from minibert.training.word_labels import label_words

    # The top layer only, on 10 articles of 12 paragraphs (1 held out): quick, and the loss still falls from
    # the new head's start
    articles = [corpus.LinkedArticle(a.title, a.paragraphs[:12]) for a in corpus.wikipedia_linked_articles()[:10]]
    monkeypatch.setattr(corpus, "wikipedia_linked_articles", lambda: articles)
    report = tc.run(out=tmp_path, steps=6, progress=False, learning_rate=1e-3, trainable_layers=1)
    assert {"model", "log.jsonl", "loss.png", "metrics.json"} <= {p.name for p in tmp_path.iterdir()}
    first, last = report["losses"]["first"], report["losses"]["last"]
    assert last[-1] < first[0] - 0.3, (first, last)  # from about ln 3 = 1.1 at a random head
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["held_out_articles"] == 1 and metrics["labels"] == ["O", "B-LINK", "I-LINK"]
    for name in ("model", "all_o_baseline", "gazetteer_baseline"):
        assert 0 <= metrics[name]["f1"] <= 1 and 0 <= metrics[name]["accuracy"] <= 1
    assert metrics["all_o_baseline"]["predicted"] == 0 and metrics["all_o_baseline"]["f1"] == 0

    theirs = HFTokenClassification.from_pretrained(tmp_path / "model").eval()
    assert theirs.config.id2label == {0: "O", 1: "B-LINK", 2: "I-LINK"}
    ours = BertForTokenClassification.from_pretrained(tmp_path / "model").eval()
    tokenizer, _ = tc.shipped_tokenizer()
    words = [["The", "Paris", "Commune", "fell", "."], ["Proudhon", "'", "s", "mutualism"]]
    batch = label_words(tokenizer, words, [[0] * 5, [0] * 4])
    reference = BertTokenizerFast.from_pretrained(tmp_path / "model")  # the tokenizer saved beside it
    assert reference(words, is_split_into_words=True, padding=True, return_tensors="pt")["input_ids"].equal(
        batch["input_ids"])
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        assert torch.allclose(ours(**inputs).logits, theirs(**inputs).logits, rtol=0, atol=1e-5)


# -- bad input --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "--steps must be at least 1, not 0"),
    (["--minutes", "nan"], "argument --minutes: must be a finite number above 0, not 'nan'"),
    (["--trainable-layers", "7"], "argument --trainable-layers: invalid choice: 7"),
    (["--learning-rate", "-1"], "argument --learning-rate: must be a finite number above 0"),
])
def test_bad_options_are_one_line_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        tc.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err, err
    assert [line for line in err.splitlines() if "error" in line] == [err.strip().splitlines()[-1]]  # after usage


def test_a_folder_that_holds_something_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "log.jsonl").write_text("{}\n")
    with pytest.raises(SystemExit) as exit_:
        tc.main(["--out", str(tmp_path), "--steps", "1"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument --out: {tmp_path} is not empty (log.jsonl)" in err, err
    with pytest.raises(SystemExit) as exit_:
        tc.main(["--out", str(tmp_path / "new"), "--resume"])
    assert "holds no checkpoint to resume from" in capsys.readouterr().err
