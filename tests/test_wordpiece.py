"""minibert/inside/wordpiece.py against the `tokenizers` library: identical ids on a corpus, on every code point
and on random text, uncased (all-MiniLM-L6-v2's tokenizer.json) and in the other configurations.

tests/data/wordpiece_corpus.txt holds the lesson transcript (copied from /work/shared/lesson-transcript.txt,
one sentence a line) and lines for each rule; the characters a text file cannot hold are in ODD_TEXTS below.
"""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibert.inside.wordpiece import SPECIAL_TOKENS, WordPiece

CORPUS_FILE = Path(__file__).parent / "data" / "wordpiece_corpus.txt"

ODD_TEXTS = [
    # control and format characters, dropped
    "nul\x00byte", "bell\x07ring", "zero\u200bwidth", "\ufeffbyte order mark", "replace\ufffdment",
    "vertical\x0btab\x0cform feed", "file\x1cgroup\x1drecord\x1eunit\x1fseparators", "next\x85line",
    "soft\u00adhyphen", "left\u200eto\u200fright", "mongolian\u180evowel", "tag\U000e0001s",
    # whitespace, turned into spaces
    "windows\r\nline", "tab\tseparated\tvalues", "no\u00a0break", "ideographic\u3000space",
    "line\u2028separator\u2029paragraph", "ogham\u1680space", "narrow\u202fnbsp", "math\u205fspace",
    "  multiple   spaces  ", " leading", "trailing ", "", " ", "\t\n\r ", "\x00", "\u200b",
    # private use and unassigned code points are ordinary characters
    "private\ue000use", "unassigned\u0378and\U000e0080",
    # characters added after Unicode 8.0, which `tokenizers` does not know (see wordpiece.category)
    "arabic\u061dmark", "nko\u07fdmark", "a\u0890b\u08e2c", "a\u2e52b", "a\u1734b\u1885c\ua9bdd\u166de",
    # CJK Extension E: `tokenizers` starts it at U+2B920, not U+2B820
    "a\U0002b820b\U0002b91fc\U0002b920d",
    # combining characters
    "e\u0301 n\u0303 a\u0308\u0304", "\u0301leading mark", "[MASK]\u0301", "\u0301[MASK]", "x\u20e3",
    "variation\ufe0fselector", "hangul jamo \u1100\u1161\u11a8",
    # long words: more than 100 characters is [UNK]; exactly 100 is split into pieces
    "a" * 100, "a" * 101, "supercalifragilisticexpialidocious" * 3, "x" * 99 + "é", "é" * 101,
    "e\u0301" * 60, "(" + "b" * 100 + ")", "東" * 150, "[MASK]" + "c" * 101 + "[SEP]",
]


def corpus_lines() -> list[str]:
    lines = CORPUS_FILE.read_text(encoding="utf-8").split("\n")
    return [line for line in lines if line and not line.startswith("# ")] + ODD_TEXTS


CORPUS = corpus_lines()
# Each line is also the first text of a pair whose second text is the next line.
PAIRS = list(zip(CORPUS, CORPUS[1:] + CORPUS[:1]))

# (lowercase, strip_accents, tokenize_chinese_chars): uncased, cased, and the mixed settings.
CONFIGS = [(True, None, True), (False, None, True), (True, False, True), (False, True, True),
           (True, None, False)]


@pytest.fixture(scope="module")
def vocab_path(minilm_dir) -> Path:
    return minilm_dir / "vocab.txt"


@pytest.fixture(scope="module")
def reference(minilm_dir):
    """The reference: all-MiniLM-L6-v2's own tokenizer.json, without its padding to 128."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


@pytest.fixture(scope="module")
def ours(vocab_path) -> WordPiece:
    return WordPiece.from_vocab(vocab_path)


def build_reference(vocab_path: Path, lowercase, strip_accents, tokenize_chinese_chars):
    """A `tokenizers` BERT pipeline (BertNormalizer, BertPreTokenizer, WordPiece) with these settings."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    tokenizer = Tokenizer(models.WordPiece.from_file(str(vocab_path), unk_token="[UNK]",
                                                     max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=tokenize_chinese_chars, strip_accents=strip_accents,
        lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tokenizer.token_to_id("[CLS]")), ("[SEP]", tokenizer.token_to_id("[SEP]"))])
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    return tokenizer


def mismatches(ours: WordPiece, reference, texts, pairs=()) -> list[str]:
    """One readable line per text (or pair) whose ids or token type ids differ from the reference."""
    found = []
    for text in texts:
        expected = reference.encode(text)
        if ours.encode(text) != (expected.ids, expected.type_ids):
            found.append(f"{text!r}: ours {ours.tokenize(text)}, reference {expected.tokens[1:-1]}")
    for text, pair in pairs:
        expected = reference.encode(text, pair)
        if ours.encode(text, pair) != (expected.ids, expected.type_ids):
            found.append(f"pair {text!r}, {pair!r}: ours {ours.encode(text, pair)[0]}, "
                         f"reference {expected.ids}")
    return found


def test_corpus_is_big_enough():
    assert len(CORPUS) > 200
    assert sum(len(line) for line in CORPUS) > 10_000


def test_vocab_matches_the_reference(ours, reference):
    assert ours.vocab == reference.get_vocab()
    assert len(ours.vocab) == 30522


def test_corpus_single_texts(ours, reference):
    assert mismatches(ours, reference, CORPUS) == []


def test_corpus_pairs(ours, reference):
    pairs = PAIRS + [("", ""), ("only a first text", ""), ("", "only a second text")]
    assert mismatches(ours, reference, [], pairs) == []


def test_tokenize_gives_the_reference_pieces(ours, reference):
    for text in CORPUS:
        assert ours.tokenize(text) == reference.encode(text, add_special_tokens=False).tokens, text


def test_special_tokens_in_text_are_kept_whole(ours):
    assert ours.tokenize("The capital of France is [MASK].") == ["the", "capital", "of", "france", "is",
                                                                "[MASK]", "."]
    assert ours.tokenize("a[MASK]b [mask]") == ["a", "[MASK]", "b", "[", "mask", "]"]
    assert ours.encode("[SEP]")[0] == [101, 102, 102]


def test_long_words(ours):
    assert ours.tokenize("a" * 101) == ["[UNK]"]
    assert "[UNK]" not in ours.tokenize("a" * 100)
    assert ours.tokenize("é" * 101) == ["[UNK]"]  # counted after the accents are stripped


@pytest.mark.parametrize("lowercase, strip_accents, tokenize_chinese_chars", CONFIGS)
def test_corpus_in_every_configuration(vocab_path, lowercase, strip_accents, tokenize_chinese_chars):
    reference = build_reference(vocab_path, lowercase, strip_accents, tokenize_chinese_chars)
    ours = WordPiece.from_vocab(vocab_path, lowercase, strip_accents, tokenize_chinese_chars)
    assert mismatches(ours, reference, CORPUS, PAIRS) == []


def test_cased_keeps_case_and_accents(vocab_path):
    cased = WordPiece.from_vocab(vocab_path, lowercase=False)
    assert cased.normalize("Café ΣΑΣ") == "Café ΣΑΣ"
    assert WordPiece.from_vocab(vocab_path).normalize("Café ΣΑΣ") == "cafe σασ"


def test_every_code_point(ours, reference):
    """Each code point (surrogates aside) between letters that change under lower-casing and NFD.

    This test is what found the Unicode 8.0 table behind wordpiece.category. About 15 s: the slowest here.
    """
    code_points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    # 256 code points a text, so that a failure names a small block; each between "xA" and "Éb".
    texts = [" ".join(f"xA{chr(c)}Éb" for c in code_points[i:i + 256])
             for i in range(0, len(code_points), 256)]
    expected = [encoding.ids for encoding in reference.encode_batch(texts)]
    wrong = [f"U+{ord(text[2]):04X}..: {text[:40]!r}" for text, ids in zip(texts, expected)
             if ours.encode(text)[0] != ids]
    assert wrong == []


# Random text: any code point, often mixed with special tokens, accents, CJK and whitespace.
FRAGMENTS = st.sampled_from(list(SPECIAL_TOKENS) + ["[mask]", "e\u0301", "東京", "\u00a0", "\u200b", " ",
                                                    "##", "un", "aff", "able", "a" * 100, "\x00", "😀\u200d"])
RANDOM_TEXT = st.lists(st.text(max_size=20) | FRAGMENTS, max_size=8).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=RANDOM_TEXT, pair=st.none() | RANDOM_TEXT)
def test_random_text_uncased(ours, reference, text, pair):
    expected = reference.encode(text, pair)
    assert ours.encode(text, pair) == (expected.ids, expected.type_ids)


@pytest.fixture(scope="module")
def cased(vocab_path):
    """(reference, ours) with lowercase=False: no lower-casing and, with strip_accents=None, no stripping."""
    return build_reference(vocab_path, False, None, True), WordPiece.from_vocab(vocab_path, lowercase=False)


@settings(max_examples=300, deadline=None)
@given(text=RANDOM_TEXT, pair=st.none() | RANDOM_TEXT)
def test_random_text_cased(cased, text, pair):
    reference, ours = cased
    expected = reference.encode(text, pair)
    assert ours.encode(text, pair) == (expected.ids, expected.type_ids)


# -- python -m minibert.inside.wordpiece: every step printed ---------------------------------------------------

def run_walkthrough(*args):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "minibert.inside.wordpiece", *args], capture_output=True,
                          text=True, encoding="utf-8", env={**os.environ, "HF_HUB_OFFLINE": "1"},
                          cwd=Path(__file__).parents[1], timeout=120)


@pytest.mark.parametrize("text", ["Naïve tokenizers in 東京, [MASK]!", "The bat flew out of the cave at night.",
                                  "unaffable ΣΑΣ\u200b café[SEP]it's 3.14..."])
def test_the_walkthrough_ends_in_the_ids_of_minibert_tokenizer(minilm_dir, text):
    import ast

    from minibert import Tokenizer

    run = run_walkthrough(text)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    lines = run.stdout.splitlines()
    for step in ("1. split_special_tokens", "2. clean_text", "3. space_out_cjk", "4. strip_accents", "5. lowercase",
                 "6. split_words", "7. word_pieces"):
        assert any(line.lstrip().startswith(step) for line in lines), step
    printed_ids = ast.literal_eval(lines[-1].strip())  # the last line: the ids the model reads
    printed_tokens = ast.literal_eval(lines[-3].strip())
    expected = Tokenizer.from_pretrained(minilm_dir)(text)["input_ids"][0].tolist()
    assert printed_ids == expected
    assert printed_tokens == ["[CLS]", *WordPiece.from_vocab(minilm_dir / "vocab.txt").tokenize(text), "[SEP]"]


def test_the_walkthrough_prints_its_usage_and_refuses_an_empty_text_in_one_line():
    help_ = run_walkthrough("--help")
    assert help_.returncode == 0 and help_.stdout.startswith("usage: python -m minibert.inside.wordpiece")
    for empty in ("", "  \t"):
        run = run_walkthrough(empty)
        assert run.returncode == 2 and run.stdout == "", run.stdout
        assert run.stderr.count("\n") == 1 and "TEXT is empty" in run.stderr and "Traceback" not in run.stderr
