"""The Tokenizer wrapper: batches, pairs, padding, truncation, vocab.txt-only folders, word positions."""

import shutil

import pytest
import torch

import minibert
from minibert import Tokenizer


@pytest.fixture(scope="module")
def tok(minilm_dir):
    return minibert.Tokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def hf_tok(minilm_dir):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(minilm_dir)


def test_single_text_is_not_padded_to_128(tok):
    # all-MiniLM's tokenizer.json pads everything to 128; the wrapper pads only to the longest.
    batch = tok("The bat flew.")
    assert batch["input_ids"].tolist() == [[101, 1996, 7151, 5520, 1012, 102]]
    assert batch["attention_mask"].tolist() == [[1] * 6]


def test_pairs_as_tuples_equal_two_lists(tok):
    a = tok([("Where is Paris?", "In France.")])
    b = tok(["Where is Paris?"], ["In France."])
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["token_type_ids"].tolist() == [[0, 0, 0, 0, 0, 0, 1, 1, 1, 1]]


def test_truncation_to_the_model_maximum(tok, hf_tok):
    long_text = "word " * 600
    batch = tok(long_text)
    assert batch["input_ids"].shape == (1, 512)
    assert torch.equal(batch["input_ids"], hf_tok(long_text, truncation=True, max_length=512, return_tensors="pt")["input_ids"])
    assert tok(long_text, max_length=16)["input_ids"].shape == (1, 16)
    pair = tok("a " * 400, "b " * 400)
    expected = hf_tok("a " * 400, "b " * 400, truncation=True, max_length=512, return_tensors="pt")
    assert torch.equal(pair["input_ids"], expected["input_ids"])
    assert torch.equal(pair["token_type_ids"], expected["token_type_ids"])


def test_encodings_once_then_pad_any_group_equals_transformers(tok, hf_tok):
    # encode tokenizes a corpus once and pads groups of it in another order: each group must be what
    # transformers makes of those texts as one padded, truncated batch.
    texts = ["The bat flew.", "He swung the bat and hit a home run, far over the fence.", "word " * 40, "Hi"]
    encodings = tok.encodings(texts, max_length=16)
    assert [len(e.ids) for e in encodings] == [len(ids) for ids in hf_tok(texts, truncation=True, max_length=16)["input_ids"]]
    for group in ([3, 1], [2, 0, 3], [0]):
        batch = tok.pad([encodings[i] for i in group])
        expected = hf_tok([texts[i] for i in group], padding=True, truncation=True, max_length=16, return_tensors="pt")
        assert all(torch.equal(batch[k], expected[k]) for k in ("input_ids", "token_type_ids", "attention_mask"))
    pairs = tok.pad(tok.encodings(["Where is Paris?", "Who?"], ["In France.", "Nobody at all, really."]))
    expected = hf_tok(["Where is Paris?", "Who?"], ["In France.", "Nobody at all, really."], padding=True, return_tensors="pt")
    assert all(torch.equal(pairs[k], expected[k]) for k in ("input_ids", "token_type_ids", "attention_mask"))
    with pytest.raises(ValueError, match="max_length"):
        tok.encodings(["a"], max_length=1)


@pytest.mark.parametrize("make_bad, error, message", [
    (lambda tok: [], ValueError, "at least one encoding"),
    (lambda tok: tok("x"), TypeError, "got dict"),  # transformers' tokenizer.pad takes dicts of ids; this one, encodings
    (lambda tok: tok.encodings("x")[0], TypeError, "got Encoding"),
    (lambda tok: [tok("x")], TypeError, r"encodings\[0\] is a dict"),
])
def test_pad_refuses_what_is_not_a_list_of_encodings(tok, make_bad, error, message):
    with pytest.raises(error, match=message):
        tok.pad(make_bad(tok))


def test_vocab_txt_folder_matches_tokenizer_json(tmp_path, minilm_dir, tok):
    for name in ("vocab.txt", "tokenizer_config.json", "config.json"):
        shutil.copy(minilm_dir / name, tmp_path / name)
    from_vocab = minibert.Tokenizer.from_pretrained(tmp_path)
    texts = ["Héllo, WORLD! Café au lait.", "naïve 東京 emoji 🙂 tab\there", "The [MASK] flew."]
    a, b = from_vocab(texts, ["second", "segment B", "x"]), tok(texts, ["second", "segment B", "x"])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cased_vocab_respects_do_lower_case(tmp_path, minilm_dir):
    shutil.copy(minilm_dir / "vocab.txt", tmp_path / "vocab.txt")
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    cased = minibert.Tokenizer.from_pretrained(tmp_path)
    assert cased.tokenize("The") != ["the"]


def test_word_positions(tok):
    assert tok.word_positions("The bat flew out of the cave at night.", "bat") == [[2]]
    assert tok.word_positions("He swung the bat and hit a home run.", "Bat") == [[4]]
    assert tok.word_positions("The bat saw a bat.", "bat") == [[2], [5]]
    pieces = tok.word_positions("Penguins are flightless birds.", "flightless")
    assert len(pieces) == 1 and len(pieces[0]) > 1  # split into word pieces
    ids = tok("Penguins are flightless birds.")["input_ids"][0]
    assert "".join(t.removeprefix("##") for t in tok.convert_ids_to_tokens(ids[pieces[0]])) == "flightless"
    assert tok.word_positions("The bat flew.", "cave") == []


def test_bad_text_is_a_clear_error(tok):
    with pytest.raises(TypeError, match="text must be"):
        tok([])
    with pytest.raises(TypeError, match="text_pair must be 2 strings"):
        tok(["a", "b"], ["only one"])


def pieces_at(hf_tok, text, found):
    """The tokens transformers' tokenizer puts at each found occurrence's positions."""
    tokens = hf_tok.convert_ids_to_tokens(hf_tok(text)["input_ids"])
    return [[tokens[p] for p in positions] for positions in found]


def test_word_positions_match_the_normalized_tokens(tok, hf_tok):
    # CJK characters are one word each, accents are stripped, case is folded: the query goes the same way.
    text = "Café naïve 東京"
    assert pieces_at(hf_tok, text, tok.word_positions(text, "東京")) == [["東", "京"]]
    assert pieces_at(hf_tok, text, tok.word_positions(text, "Café")) == [["cafe"]]
    assert pieces_at(hf_tok, text, tok.word_positions(text, "NAIVE")) == [["naive"]]
    # Several words: every piece of every occurrence.
    text = "He hit a home run, then another home run."
    assert pieces_at(hf_tok, text, tok.word_positions(text, "home run")) == [["home", "run"]] * 2
    # Whole words only, and nothing for a word that is not there.
    assert tok.tokenize("batty")[0] == "bat"  # a piece "bat" that is not the word "bat"
    assert tok.word_positions("A batty bat.", "bat") == [[4]]
    assert tok.word_positions("I flew to 東京.", "京都") == []
    assert tok.word_positions("He hit a home run.", "home runs") == []
    assert tok.word_positions("The bat flew.", "   ") == []


def test_count_tokens_counts_before_truncation(tok, hf_tok):
    long_text = "word " * 600
    assert tok.count_tokens(long_text) == len(hf_tok(long_text)["input_ids"]) == 602
    assert tok(long_text)["input_ids"].shape[1] == tok.max_length  # the call itself still truncates
    assert tok.count_tokens("a b", "c") == len(hf_tok("a b", "c")["input_ids"]) == 6


def test_save_pretrained_round_trips_through_minibert_and_transformers(minilm_dir, tmp_path):
    import transformers

    from minibert import BertModel

    tokenizer = Tokenizer.from_pretrained(minilm_dir)
    model = BertModel.from_pretrained(minilm_dir)
    folder = model.save_pretrained(tmp_path / "saved", tokenizer=tokenizer)
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "tokenizer_config.json",
            "special_tokens_map.json"} <= {p.name for p in folder.iterdir()}
    texts = ["The bat flew out of the cave.", "Naïve [MASK] in 東京!", "word " * 30]
    again = Tokenizer.from_pretrained(folder)
    theirs = transformers.AutoTokenizer.from_pretrained(folder)
    expected = theirs(texts, padding=True, return_tensors="pt")
    for batch in (tokenizer(texts), again(texts)):
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            assert torch.equal(batch[key], expected[key]), key
    assert again.max_length == tokenizer.max_length == theirs.model_max_length


def test_decode_and_vocab_size_match_transformers(minilm_dir):
    import transformers

    tokenizer = Tokenizer.from_pretrained(minilm_dir)
    theirs = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    ids = tokenizer("Penguins are flightless birds, said the naïve tourist.")["input_ids"][0]
    assert tokenizer.decode(ids) == theirs.decode(ids.tolist(), skip_special_tokens=True)
    assert tokenizer.vocab_size == theirs.vocab_size == 30522


def test_many_max_lengths_keep_a_bounded_number_of_truncating_copies(tok, hf_tok):
    """Each max_length gets a truncating copy of the backend (a few MB: the vocabulary). A caller who varies
    it call after call, here 20 values, must not collect 20 copies; each answer still equals transformers'."""
    from minibert.bert.tokenizer import KEPT_TRUNCATING

    text = "The bat flew out of the cave at night, past the sleeping owls and the old mill. " * 4
    tok(text)  # the copy for the tokenizer's own max_length, which is never dropped
    for limit in list(range(4, 24)) + [7, 5]:  # 7 and 5 again: dropped by then, made anew
        expected = hf_tok(text, truncation=True, max_length=limit, return_tensors="pt")["input_ids"]
        assert torch.equal(tok(text, max_length=limit)["input_ids"], expected), limit
        assert len(tok._truncating) <= KEPT_TRUNCATING
    assert len(tok._truncating) == KEPT_TRUNCATING and (tok.max_length, 0, "longest_first") in tok._truncating
    assert [limit for limit, _, _ in list(tok._truncating)[-2:]] == [7, 5]  # the most recently used last


def test_windows_and_words_reuse_their_truncating_copies(minilm_dir):
    """Each setting gets one copy of the backend (about 20 ms to make), kept for the next call."""
    tok = Tokenizer.from_pretrained(minilm_dir)  # its own, with room for more copies
    context = " ".join(["The bat flew out of the cave at night."] * 12)
    first = tok.windows("Where did the bat fly?", context, max_length=32, stride=8)
    kept = len(tok._truncating)
    again = tok.windows("Where did the bat fly?", context, max_length=32, stride=8)
    tok.words([["The", "bat"]], max_length=16)
    tok.words([["It", "flew"]], max_length=16)
    assert len(tok._truncating) == kept + 1  # the windows' copy once, the words' copy once
    assert len(first) > 1 and [w.ids for w in first] == [w.ids for w in again]
    assert (32, 8, "only_second") in tok._truncating