"""tasks/finetune_question_answering.py: the cloze questions, the answer's tokens in a window, SQuAD's
scores on worked examples and against the logic of SQuAD v1.1's evaluation script, the baselines by hand,
the best span across windows from a stub model, a smoke run whose saved model transformers reads, and
the errors of a run and of its command line."""

import json
import types

import pytest
import torch

from tasks import corpus
from tasks import finetune_question_answering as qa
from tasks._common import shipped_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return shipped_tokenizer()[0]


# -- the cloze maker, on a paragraph written here --------------------------------------------------------

TEXT = ("Paris is the capital of France. It lies on the Seine. The Seine flows into the English Channel. "
        "Many painters lived in Paris.")


def linked(*phrases: str, text: str = TEXT) -> corpus.LinkedParagraph:
    """A paragraph with a link on the first occurrence of each phrase at or after the one before."""
    links, at = [], 0
    for phrase in phrases:
        start = text.index(phrase, at)
        links.append((start, start + len(phrase)))
        at = start + len(phrase)
    return corpus.LinkedParagraph("Paris", text, links)


def test_each_question_is_a_sentence_with_its_link_masked_and_the_sentence_is_not_in_its_context():
    paragraph = linked("France", "Seine", "English Channel", "Paris")
    questions = qa.cloze_questions(paragraph)
    # "France" and "English Channel" occur nowhere else: no question. "Seine" (sentence 2) is answered
    # from sentence 3, and "Paris" (sentence 4) from sentence 1.
    assert [(c.question, c.answer) for c in questions] == [
        ("It lies on the [MASK].", "Seine"),
        ("Many painters lived in [MASK].", "Paris"),
    ]
    first, second = questions
    assert first.context == ("Paris is the capital of France. The Seine flows into the English Channel. "
                             "Many painters lived in Paris.")
    assert second.context == "Paris is the capital of France. It lies on the Seine. The Seine flows into the English Channel."
    for c in questions:
        assert c.question.replace("[MASK]", c.answer) not in c.context  # the sentence itself is gone
        assert c.context[c.answer_start:c.answer_end] == c.answer
        assert c.answer_start == c.context.index(c.answer)  # its first occurrence


def test_an_answer_must_occur_as_whole_words():
    text = "Art is old. Many people make art. A party is not art history."
    paragraph = corpus.LinkedParagraph("Art", text, [(text.index("make art") + 5, text.index("make art") + 8)])
    (question,) = qa.cloze_questions(paragraph)
    assert question.question == "Many people make [MASK]."
    assert question.answer_start == text.index("not art") + 4 - len("Many people make art. ")  # not "p(art)y"
    assert question.answer == "art"
    nothing = corpus.LinkedParagraph("Art", "Art is old. People like parties.", [(24, 31)])  # "parties"
    assert qa.cloze_questions(nothing) == []


def test_the_first_and_the_last_sentence_can_be_removed():
    text = "Bats fly at night. Owls hunt bats. Owls are birds."
    for sentence, phrase, context in (("Bats fly at night.", "Bats", "Owls hunt bats. Owls are birds."),
                                      ("Owls are birds.", "Owls", "Bats fly at night. Owls hunt bats.")):
        start = text.index(sentence)
        paragraph = corpus.LinkedParagraph("Bats", text, [(start, start + len(phrase))])
        questions = qa.cloze_questions(paragraph)
        if phrase == "Bats":  # "Bats" with a capital occurs nowhere else: case is kept
            assert questions == []
            continue
        (question,) = questions
        assert question.context == context and question.answer == "Owls" and question.answer_start == 19


# -- the answer's characters to token positions ------------------------------------------------------------

def overlapping_tokens(window, start_char, end_char):
    """The reference: every context token whose characters overlap the answer's, by brute force."""
    return [i for i, (s, (a, b)) in enumerate(zip(window.sequence_ids, window.offsets))
            if s == 1 and a < end_char and b > start_char]


def test_answer_tokens_inside_a_window(tokenizer):
    context = "The oldest ringed bat lived 41 years in Siberia."
    (window,) = qa.question_windows(tokenizer, "How old?", context, max_length=64, stride=8)
    for answer in ("41 years", "ringed bat", "Siberia", "The", "bat"):
        start_char = context.index(answer)
        start, end = qa.answer_tokens(window, start_char, start_char + len(answer))
        assert list(range(start, end + 1)) == overlapping_tokens(window, start_char, start_char + len(answer))
        assert window.sequence_ids[start] == window.sequence_ids[end] == 1
        a, b = window.offsets[start][0], window.offsets[end][1]
        assert context[a:b] == answer  # read back through the offsets, as answers.py does
    start = context.index("ringed")
    assert window.tokens[slice(qa.answer_tokens(window, start, start + 10)[0], None)][:3] == ["ring", "##ed", "bat"]


def test_answer_tokens_cut_by_a_windows_edge_or_outside_it(tokenizer):
    """Against the context tokenized whole: window w holds context tokens first_w .. last_w of it, and
    holds an answer exactly when all the answer's tokens are among those."""
    context = "Bats sleep by day in caves. They hunt moths at night. The oldest ringed bat lived 41 years."
    windows = qa.question_windows(tokenizer, "How long did the bat live?", context, max_length=20, stride=2)
    whole = tokenizer.backend.encode(context, add_special_tokens=False)
    outcomes = {}
    for phrase in ("hunt moths at night", "41 years", "Bats", "caves."):
        start_char, end_char = context.index(phrase), context.index(phrase) + len(phrase)
        wanted = [k for k, (a, b) in enumerate(whole.offsets) if a < end_char and b > start_char]  # in `whole`
        for w, window in enumerate(windows):
            in_context = [i for i, s in enumerate(window.sequence_ids) if s == 1]
            first = whole.offsets.index(window.offsets[in_context[0]])  # where the window starts in `whole`
            held = all(first <= k < first + len(in_context) for k in wanted)
            span = qa.answer_tokens(window, start_char, end_char)
            expected = (in_context[wanted[0] - first], in_context[wanted[-1] - first]) if held else None
            assert span == expected, (phrase, w)
            partly = any(first <= k < first + len(in_context) for k in wanted)
            outcomes.setdefault(phrase, []).append("whole" if held else "cut" if partly else "absent")
    assert outcomes["hunt moths at night"][:2] == ["cut", "whole"]  # window 0 ends inside it; window 1 holds it
    assert outcomes["41 years"][0] == "absent" and "whole" in outcomes["41 years"]
    assert outcomes["Bats"] == ["whole"] + ["absent"] * (len(windows) - 1)


def test_training_windows_label_the_answer_or_cls(tokenizer, monkeypatch):
    monkeypatch.setattr(qa, "MAX_LENGTH", 20)
    monkeypatch.setattr(qa, "STRIDE", 2)
    context = "Bats sleep by day in caves. They hunt moths at night. The oldest ringed bat lived 41 years."
    start = context.index("moths")
    cloze = qa.Cloze("They eat [MASK].", context, start, start + 5)
    windows = qa.training_windows(tokenizer, [cloze])
    labelled = [w for w in windows if (w.start, w.end) != (0, 0)]
    assert len(labelled) == 1 and len(windows) - len(labelled) >= 1  # the other window(s): [CLS]
    for w in labelled:
        assert tokenizer.backend.id_to_token(w.ids[w.start]) == "moths" and w.start == w.end
    batch = qa.collate_for(tokenizer)(windows, None)
    assert batch["input_ids"].shape[0] == len(windows) and batch["start_positions"].tolist() == [w.start for w in windows]


# -- SQuAD's scores, on worked examples ---------------------------------------------------------------------

@pytest.mark.parametrize("text, normalised", [
    ("The Seine", "seine"),
    ("  an   Apple, a pear!", "apple pear"),
    ("Theatre", "theatre"),  # "the" only as a word
    ("U.S.A.", "usa"),
    ("rock 'n' roll", "rock n roll"),
])
def test_normalize_answer(text, normalised):
    assert qa.normalize_answer(text) == normalised


@pytest.mark.parametrize("prediction, gold, em, f1", [
    ("the Seine", "Seine", 1.0, 1.0),
    ("Seine river", "Seine", 0.0, 2 / 3),  # P 1/2, R 1/1: 2 * 0.5 * 1 / 1.5
    ("English Channel", "the English Channel coast", 0.0, 0.8),  # P 2/2, R 2/3
    ("Paris", "France", 0.0, 0.0),
    ("a a b", "a b b", 0.0, 2 / 3),  # "a" is an article and goes: "b" against "b b", P 1/1, R 1/2
    ("", "Paris", 0.0, 0.0),
    ("", "", 1.0, 0.0),  # SQuAD v1.1: no word shared, F1 0, even though both are empty (v2.0 would give 1)
    ("The", "a", 1.0, 0.0),  # both normalise to "": they match, but share no word
])
def test_exact_match_and_f1(prediction, gold, em, f1):
    assert qa.exact_match(prediction, gold) == em
    assert qa.token_f1(prediction, gold) == pytest.approx(f1)


def test_squad_scores_average_over_questions():
    scores = qa.squad_scores(["Seine", "Seine river", "Paris"], ["the Seine", "Seine", "France"])
    assert scores["exact_match"] == pytest.approx(1 / 3) and scores["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    with pytest.raises(ValueError, match="no questions to score"):
        qa.squad_scores([], [])
    with pytest.raises(ValueError, match="2 predictions for 1 questions"):
        qa.squad_scores(["a", "b"], ["a"])


# The reference: the logic of SQuAD v1.1's official evaluation script, "evaluate-v1.1.py" (Rajpurkar et al.
# 2016, https://rajpurkar.github.io/SQuAD-explorer/, "Evaluation Script v1.1"): normalize_answer, f1_score
# and exact_match_score, transcribed step for step (its nested helpers written inline, its names kept).

def squad_v11_normalize_answer(s):
    import re
    import string

    s = s.lower()  # lower
    s = "".join(ch for ch in s if ch not in set(string.punctuation))  # remove_punc
    s = re.sub(r"\b(a|an|the)\b", " ", s)  # remove_articles
    return " ".join(s.split())  # white_space_fix


def squad_v11_f1_score(prediction, ground_truth):
    from collections import Counter

    prediction_tokens = squad_v11_normalize_answer(prediction).split()
    ground_truth_tokens = squad_v11_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def squad_v11_exact_match_score(prediction, ground_truth):
    return squad_v11_normalize_answer(prediction) == squad_v11_normalize_answer(ground_truth)


@pytest.mark.parametrize("prediction, gold", [
    ("Heydar Aliyev", "Aliyev"),
    ("the Prime Minister", "Prime Minister"),
    ("National Assembly", "Prime Minister"),
    ("Bornean", "Borneo"),
    ("", ""),
    ("", "Khmer"),
    ("a", "an"),
    ("Mon–Khmer and Munda", "Munda"),  # the en dash is not in string.punctuation: "mon–khmer" stays one word
    ("U.S. Army", "US army"),
    ("New York New York", "New York"),  # repeats count: 2 words shared of 4 predicted
    ("  Saint-Pierre  ", "saint pierre"),
    ("An apple a day", "the apple, the day!"),
])
def test_scores_match_squad_v11s_evaluation_script(prediction, gold):
    assert qa.exact_match(prediction, gold) == float(squad_v11_exact_match_score(prediction, gold))
    assert qa.token_f1(prediction, gold) == pytest.approx(squad_v11_f1_score(prediction, gold))
    assert qa.normalize_answer(prediction) == squad_v11_normalize_answer(prediction)


# -- the baselines ------------------------------------------------------------------------------------------

def test_linked_texts_are_every_linked_span_of_the_articles():
    first = corpus.LinkedParagraph("A", "Paris lies on the Seine.", [(0, 5), (18, 23)])
    second = corpus.LinkedParagraph("A", "The Seine is long.", [(4, 9)])
    other = corpus.LinkedArticle("B", [corpus.LinkedParagraph("B", "Lyon is on the Rhone.", [(0, 4)])])
    assert qa.linked_texts([corpus.LinkedArticle("A", [first, second]), other]) == {"Paris", "Seine", "Lyon"}


def test_candidates_are_whole_word_occurrences_in_the_order_they_first_occur():
    context = "Seine boats. The Loire and the Seine meet no river called Seines; Loire Valley wines."
    texts = {"Seine", "Loire", "Loire Valley", "Rhone", "river", "boat", "Valley wines"}
    # by hand: "Seine" at 0 (twice: "Seines" is not it), "Loire" at 17 (twice), "river" once, "Loire Valley"
    # once at 66, "Valley wines" once; "boat" only inside "boats", "Rhone" nowhere
    assert qa.candidates(context, texts) == [("Seine", 2), ("Loire", 2), ("river", 1), ("Loire Valley", 1),
                                              ("Valley wines", 1)]
    assert qa.candidates("Loire Valley.", {"Loire", "Loire Valley"}) == [("Loire Valley", 1), ("Loire", 1)]
    assert qa.candidates("No link text here.", texts) == []


def test_the_baselines_by_hand():
    context = "Paris lies on the Seine. The Seine is long. France has the Seine and the Loire."
    found = qa.candidates(context, {"Paris", "Seine", "France", "Loire", "Lyon"})
    assert found == [("Paris", 1), ("Seine", 3), ("France", 1), ("Loire", 1)]
    assert qa.first_candidate("q", found) == "Paris" and qa.most_frequent("q", found) == "Seine"
    assert qa.exclusive_frequency("The Seine flows through [MASK].", found) == "Paris"  # "Seine" is asked with: skipped
    assert qa.exclusive_frequency("The Seines of [MASK].", found) == "Seine"  # "Seines" is not "Seine"
    assert qa.exclusive_frequency("Paris, France, the Seine and the Loire.", found) == ""
    assert qa.first_candidate("q", []) == qa.most_frequent("q", []) == ""


# -- the model's answers, from a stub model with fixed scores ---------------------------------------------

class ScoresByToken(torch.nn.Module):
    """A stand-in for BertForQuestionAnswering: each token's start and end score is looked up by its id
    (0 for ids not in the table), whatever the window; so the best span is known beforehand."""

    def __init__(self, scores: dict[int, tuple[float, float]]):
        super().__init__()
        self.scores = scores
        self.unused = torch.nn.Parameter(torch.zeros(1))  # predict reads the device from a parameter

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        start, end = torch.zeros(input_ids.shape), torch.zeros(input_ids.shape)  # (B, T)
        for token_id, (s, e) in self.scores.items():
            start[input_ids == token_id], end[input_ids == token_id] = s, e
        return types.SimpleNamespace(start_logits=start, end_logits=end)


def test_predict_takes_the_best_span_across_windows_and_only_from_the_context(tokenizer, monkeypatch):
    monkeypatch.setattr(qa, "MAX_LENGTH", 20)
    monkeypatch.setattr(qa, "STRIDE", 2)
    long = "Bats sleep by day in caves. They hunt moths at night. The oldest ringed bat lived 41 years."
    short = "Owls hunt mice at night."
    questions = [qa.Cloze("They hunt [MASK].", long, 0, 4), qa.Cloze("Owls hunt [MASK].", short, 0, 4)]
    windows = qa.question_windows(tokenizer, questions[0].question, long, 20, 2)
    holding = [w for w, window in enumerate(windows) if "41" in window.tokens]
    assert len(windows) >= 2 and 0 not in holding and "moths" in windows[0].tokens  # "41 years" comes later
    ids = {token: tokenizer.backend.token_to_id(token)
           for token in ("moths", "41", "years", "night", "[MASK]", "[CLS]")}
    model = ScoresByToken({
        ids["moths"]: (3, 3),  # "moths": 6, in an earlier window
        ids["41"]: (4, 0), ids["years"]: (0, 4),  # "41 years": 8, the best span of the long context
        ids["night"]: (1, 1),  # "night": 2, the only scored word of the short context (and 2 in the long one)
        ids["[MASK]"]: (10, 10), ids["[CLS]"]: (20, 20),  # in the question and [CLS]: never an answer
    })
    for per_batch in (1, 2, 3, 32):  # batches that cut between windows, between questions, or not at all
        assert qa.predict(model, tokenizer, questions, windows_per_batch=per_batch) == ["41 years", "night"]


# -- a smoke run and the command line ---------------------------------------------------------------------

def test_smoke_run_writes_everything_the_loss_falls_and_transformers_reads_the_model(tmp_path, monkeypatch):
    monkeypatch.setattr(qa, "BATCH_SIZE", 8)  # small steps, so that a few of them take seconds on a shared CPU
    monkeypatch.setattr(qa, "MAX_LENGTH", 96)
    monkeypatch.setattr(qa, "STRIDE", 24)
    report = qa.run(out=tmp_path, steps=6, progress=False, learning_rate=1e-3, max_articles=12, trainable_layers=1)
    assert {"model", "log.jsonl", "loss.png", "metrics.json"} <= {p.name for p in tmp_path.iterdir()}
    first, last = report["losses"]["first"], report["losses"]["last"]
    assert sum(last[-3:]) / 3 < sum(first[:3]) / 3, (first, last)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["held_out_questions"] >= 3 and len(metrics["examples"]) == 3
    assert 0 <= metrics["baseline_reach"] <= metrics["held_out_questions"]
    for scores in (metrics["model"], *metrics["baselines"].values()):
        assert 0 <= scores["exact_match"] <= scores["f1"] <= 1  # F1 is never below exact match

    import transformers

    from minibert import BertForQuestionAnswering

    theirs = transformers.BertForQuestionAnswering.from_pretrained(tmp_path / "model").eval()
    ours = BertForQuestionAnswering.from_pretrained(tmp_path / "model").eval()
    reference_tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "model")
    batch = reference_tokenizer(["It lies on the [MASK].", "Who?"], ["Paris is on the Seine.", "Bats fly."],
                                padding=True, return_tensors="pt")
    with torch.no_grad():
        expected, got = theirs(**batch), ours(**batch)
    torch.testing.assert_close(got.start_logits, expected.start_logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(got.end_logits, expected.end_logits, rtol=0, atol=1e-5)


def test_a_run_without_questions_on_one_side_says_so(monkeypatch, tmp_path):
    articles = [corpus.LinkedArticle(title, [corpus.LinkedParagraph(title, "Bats fly. Owls hunt bats.", [])])
                for title in ("Bats", "Owls")]
    train, (held,) = corpus.split_held_out(articles, 0.1)
    train[0].paragraphs[0] = corpus.LinkedParagraph(train[0].title, "Owls fly. Owls hunt bats.", [(0, 4)])
    assert len(qa.cloze_questions(train[0].paragraphs[0])) == 1 and qa.cloze_questions(held.paragraphs[0]) == []
    monkeypatch.setattr(corpus, "wikipedia_linked_articles", lambda: articles)
    with pytest.raises(ValueError, match=f"the 1 held-out article\\(s\\) of 2 give no cloze questions"):
        qa.run(out=tmp_path, steps=1, progress=False)
    monkeypatch.setattr(corpus, "wikipedia_linked_articles", lambda: articles[:1])
    with pytest.raises(ValueError, match="the 0 training article\\(s\\) of 1 give no cloze questions"):
        qa.run(out=tmp_path, steps=1, progress=False)


@pytest.mark.parametrize("argv, message", [
    (["--minutes", "nan"], "argument --minutes: must be a finite number above 0, not 'nan'"),
    (["--steps", "0"], "--steps must be at least 1, not 0"),
    (["--trainable-layers", "7"], "argument --trainable-layers: invalid choice: 7"),
    (["--learning-rate", "-1"], "argument --learning-rate: must be a finite number above 0, not '-1'"),
    (["--device", "bogus"], "argument --device: 'bogus' is not a device"),
])
def test_bad_command_lines_are_one_line_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        qa.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err, err


def test_a_folder_that_holds_a_run_or_no_checkpoint_is_refused(tmp_path, capsys):
    (tmp_path / "log.jsonl").write_text("")
    with pytest.raises(SystemExit) as exit_:
        qa.main(["--out", str(tmp_path)])
    assert exit_.value.code == 2 and f"argument --out: {tmp_path} is not empty" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        qa.main(["--out", str(tmp_path), "--resume"])
    assert exit_.value.code == 2 and "holds no checkpoint to resume from" in capsys.readouterr().err
