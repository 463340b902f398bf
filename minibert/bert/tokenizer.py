"""Tokenizer: text -> the `input_ids`, `token_type_ids` and `attention_mask` tensors BERT reads.

A thin wrapper over the `tokenizers` library (the fast, well-kept WordPiece that Hugging Face uses);
`minibert/inside/wordpiece.py` is the slow, readable one.

    >>> tok = Tokenizer.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")
    >>> tok.tokenize("The bat flew out of the cave.")
    ['the', 'bat', 'flew', 'out', 'of', 'the', 'cave', '.']
    >>> batch = tok(["The bat flew.", "He swung the bat and hit a home run."])
    >>> batch["input_ids"].shape          # padded to the longest: [CLS] + 10 tokens + [SEP]
    torch.Size([2, 12])
    >>> tok.word_positions("He swung the bat.", "bat")   # where "bat" sits in input_ids
    [[4]]
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch

from .checks import positive_int
from .files import CheckpointError, CheckpointSource, read_json_object

DEFAULT_MAX_LENGTH = 512  # BERT's position table; used when tokenizer_config.json does not say
KEPT_TRUNCATING = 8  # truncating copies of the backend kept at once, one per max_length (6.4 MB each for MiniLM)


class Tokenizer:
    def __init__(self, backend, max_length: int = DEFAULT_MAX_LENGTH):
        """`backend` is a `tokenizers.Tokenizer` with a BERT post-processor ([CLS] A [SEP] B [SEP])."""
        self.backend = backend  # never changed after this constructor: calls may come from many threads
        positive_int("max_length", max_length, at_least=2, why="room for [CLS] and [SEP]")
        self.max_length = max_length
        # (max_length, stride, strategy) -> a copy of the backend that truncates so
        self._truncating: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()
        self.pad_token = "[PAD]"
        self.pad_id = backend.token_to_id(self.pad_token)
        if self.pad_id is None:
            raise ValueError("the vocabulary has no [PAD] token")
        self.mask_token = "[MASK]"
        self.mask_id = backend.token_to_id(self.mask_token)
        # A saved tokenizer.json may switch on its own padding and truncation (all-MiniLM-L6-v2 pads
        # every input to 128): switch them off and apply what each call asks for.
        self.backend.no_padding()
        self.backend.no_truncation()

    # -- loading ----------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, revision: str | None = None) -> "Tokenizer":
        """Read `tokenizer.json`, or else `vocab.txt` with the casing from `tokenizer_config.json`."""
        source = CheckpointSource.resolve(name_or_path, revision)
        settings = {}
        config_path = source.find("tokenizer_config.json")
        if config_path is not None:
            settings = read_json_object(config_path)
        max_length = settings.get("model_max_length", DEFAULT_MAX_LENGTH)
        if isinstance(max_length, (int, float)) and not isinstance(max_length, bool) and max_length > 1_000_000:
            max_length = DEFAULT_MAX_LENGTH  # "no limit" is stored as 1e30: the position table is the limit
        positive_int(f"{config_path}: model_max_length", max_length, CheckpointError, at_least=2,
                     why="room for [CLS] and [SEP]")

        from tokenizers import Tokenizer as FastTokenizer

        tokenizer_json = source.find("tokenizer.json")
        if tokenizer_json is not None:
            try:
                backend = FastTokenizer.from_file(str(tokenizer_json))
            except Exception as err:  # the Rust library raises a bare Exception ("EOF while parsing ...")
                raise CheckpointError(f"{tokenizer_json}: not a readable tokenizer.json ({err})") from None
            return cls(backend, max_length)
        vocab = source.find("vocab.txt")
        if vocab is None:
            raise source.missing("tokenizer.json or vocab.txt")
        return cls(cls.build_from_vocab(vocab, settings), max_length)

    @staticmethod
    def build_from_vocab(vocab_path: Path, settings: dict):
        """BERT's WordPiece pipeline from a vocab.txt and the options of tokenizer_config.json."""
        from tokenizers import Tokenizer as FastTokenizer
        from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

        lowercase = settings.get("do_lower_case", True)
        backend = FastTokenizer(models.WordPiece.from_file(str(vocab_path), unk_token="[UNK]",
                                                           max_input_chars_per_word=100))
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=settings.get("tokenize_chinese_chars", True),
            strip_accents=settings.get("strip_accents"),  # None: strip exactly when lower-casing
            lowercase=lowercase,
        )
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
        if cls_id is None or sep_id is None:
            raise ValueError(f"{vocab_path}: the vocabulary lacks [CLS] or [SEP]")
        backend.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",  # sentence B and its [SEP] get token type 1
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
        backend.decoder = decoders.WordPiece()
        # Special tokens are matched before normalisation, so "[MASK]" in a text is not lower-cased
        # and split into "[", "mask", "]".
        backend.add_special_tokens([t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
                                    if backend.token_to_id(t) is not None])
        return backend

    # -- encoding ---------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        """The word pieces of `text`, without [CLS] and [SEP]."""
        return self.backend.encode(text, add_special_tokens=False).tokens

    def __call__(self, text, text_pair=None, max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Encode a text, a list of texts, or (question, passage) pairs.

        `text` and `text_pair` may be strings or equal-length lists of strings; a list of 2-tuples
        is taken as pairs too. Returns int64 tensors of shape (B, T), padded to the longest
        sequence and truncated to `max_length` (the model's maximum by default).

        Raises:
            TypeError: text is not a string, a non-empty list of strings or of pairs; text_pair
                does not hold one string per text.
            ValueError: max_length is not an integer of at least 2 (3 for pairs).
        """
        return self.pad(self.encodings(text, text_pair, max_length))

    def encodings(self, text, text_pair=None, max_length: int | None = None) -> list:
        """The first half of a call: the texts tokenized, truncated, not yet padded.

        Taken apart from `pad` so that a caller can tokenize once, look at the lengths, and then pad
        groups of the texts: `encode` sorts by length this way.

        Args:
            text, text_pair, max_length: as for a call.

        Returns:
            One `tokenizers.Encoding` per text (or pair), with [CLS] and [SEP]: its `ids` and
            `type_ids` are what `pad` reads.

        Raises:
            TypeError, ValueError: as for a call.
        """
        texts, pairs = self._as_batch(text, text_pair)
        limit = self.max_length if max_length is None else max_length
        positive_int("max_length", limit, at_least=3 if pairs is not None else 2,
                     why="room for [CLS], and [SEP] after each sentence" if pairs is not None else "room for [CLS] and [SEP]")
        backend = self._truncating_backend(limit)
        return backend.encode_batch(texts if pairs is None else list(zip(texts, pairs)))

    def pad(self, encodings: list) -> dict[str, torch.Tensor]:
        """The second half of a call: the batch BERT reads, padded on the right to the longest.

        Args:
            encodings: a non-empty list of encodings from `encodings`, in the order of the rows wanted;
                or of anything else with `ids` and `type_ids` sequences (encode keeps compact copies).

        Returns:
            input_ids, token_type_ids and attention_mask, each (B, T) int64; padding is the [PAD]
            id, token type 0 and mask 0.

        Raises:
            TypeError: not a list, or an item that is not an encoding (a dict of tensors, say).
            ValueError: an empty list.
        """
        if not isinstance(encodings, (list, tuple)):
            raise TypeError(f"pad expects a list of encodings from Tokenizer.encodings, got {type(encodings).__name__}")
        if not encodings:
            raise ValueError("pad needs at least one encoding")
        for i, e in enumerate(encodings):
            if not (hasattr(e, "ids") and hasattr(e, "type_ids")):
                raise TypeError(f"encodings[{i}] is a {type(e).__name__}, not an encoding from Tokenizer.encodings "
                                "(it has no ids and type_ids)")
        # Padding to the longest, done here rather than by switching the shared backend's padding on.
        return pad_batch([(e.ids, e.type_ids) for e in encodings], self.pad_id)

    def words(self, sentences, max_length: int | None = None) -> list:
        """Sentences given as lists of words (transformers' is_split_into_words): each word tokenized on its
        own, its pieces numbered by the word's index in `encoding.word_ids`. Truncated, not padded (see pad).

        Raises:
            ValueError: max_length is not an integer of at least 2.
        """
        limit = self.max_length if max_length is None else max_length
        positive_int("max_length", limit, at_least=2, why="room for [CLS] and [SEP]")
        return self._truncating_backend(limit).encode_batch([list(words) for words in sentences], is_pretokenized=True)

    def windows(self, question: str, context: str, max_length: int = 384, stride: int = 128) -> list:
        """"[CLS] question [SEP] context [SEP]" with the context cut into overlapping windows of `max_length`
        tokens, each sharing `stride` context tokens with the one before (question answering on long texts).
        One encoding per window, in the order of the context, with `sequence_ids` and `offsets`.

        Raises:
            ValueError: the question leaves no room for the context, or stride is not below that room.
        """
        question_tokens = len(self.backend.encode(question, add_special_tokens=False).ids)
        room = max_length - question_tokens - 3  # context tokens per window: less [CLS] and two [SEP]
        if room < 1:
            raise ValueError(f"the question is {question_tokens} tokens: with [CLS] and two [SEP] it leaves no room "
                             f"for the context in max_length={max_length}")
        if not 0 <= stride < room:
            raise ValueError(f"stride must be at least 0 and below the {room} context tokens a window holds, "
                             f"got {stride}")
        first = self._truncating_backend(max_length, stride, "only_second").encode(question, context)
        return [first, *first.overflowing]  # the windows after the first come as its "overflowing" encodings

    def _truncating_backend(self, limit: int, stride: int = 0, strategy: str = "longest_first"):
        """A copy of the backend that truncates at `limit` (with `stride` and `strategy`), made once per
        setting and never changed after. Switching truncation on the shared backend for each call is not safe
        across threads: another thread's call would run with this call's settings. At most KEPT_TRUNCATING
        copies are kept, so that a caller who varies max_length call after call does not collect a copy of
        the vocabulary per value: the least recently used goes first, never the one for self.max_length.
        (A call still holding a dropped copy finishes with it.)"""
        key = (limit, stride, strategy)
        with self._lock:
            backend = self._truncating.get(key)
            if backend is not None:
                self._truncating.move_to_end(key)  # the most recently used is last
                return backend
        from tokenizers import Tokenizer as FastTokenizer

        backend = FastTokenizer.from_str(self.backend.to_str())  # made outside the lock: about 20 ms
        backend.enable_truncation(max_length=limit, stride=stride, strategy=strategy)
        with self._lock:
            if key not in self._truncating:  # another thread may have made one meanwhile: keep the first
                default = (self.max_length, 0, "longest_first")
                droppable = [kept for kept in self._truncating if kept != default]
                while len(self._truncating) >= KEPT_TRUNCATING and droppable:
                    del self._truncating[droppable.pop(0)]
                self._truncating[key] = backend
            return self._truncating[key]

    @staticmethod
    def _as_batch(text, text_pair):
        if isinstance(text, str):
            text = [text]
            if isinstance(text_pair, str):
                text_pair = [text_pair]
        elif text_pair is None and text and all(isinstance(t, (tuple, list)) and len(t) == 2 for t in text):
            text, text_pair = [t[0] for t in text], [t[1] for t in text]
        text = list(text)
        if not text or not all(isinstance(t, str) for t in text):
            raise TypeError("text must be a string, a non-empty list of strings, or a list of (a, b) pairs")
        if text_pair is not None:
            text_pair = list(text_pair)
            if len(text_pair) != len(text) or not all(isinstance(t, str) for t in text_pair):
                raise TypeError(f"text_pair must be {len(text)} strings, one per text")
        return text, text_pair

    # -- finding a word ---------------------------------------------------------------------------

    def word_positions(self, text: str, word: str) -> list[list[int]]:
        """Positions in `input_ids` (so [CLS] is 0) of every occurrence of `word` in `text`.

        `word` is tokenized as the text is (lower-cased, accents stripped, each CJK character a word
        of its own) and matched by its token sequence, starting and ending on word boundaries, so
        "bat" is not found inside "batman". Each occurrence is a list: one position for a whole-word
        token, several when the word is split into pieces ("flightless" -> "flight", "##less") or
        is several words ("home run", "東京"). Positions are in the untruncated encoding: compare
        them with `max_length` before indexing a truncated batch.

            >>> tokenizer.word_positions("I flew to 東京.", "東京")    # [CLS] i flew to 東 京 . [SEP]
            [[4, 5]]
            >>> tokenizer.word_positions("He hit a home run.", "Home Run")
            [[4, 5]]
            >>> tokenizer.word_positions("Batman has a bat.", "bat")
            [[4]]
        """
        query = self.backend.encode(word, add_special_tokens=False)
        target = query.ids
        if not target:
            return []
        encoding = self.backend.encode(text)
        ids, word_ids = encoding.ids, encoding.word_ids
        unknown = self.backend.token_to_id("[UNK]")
        normalize = self.backend.normalizer.normalize_str if self.backend.normalizer else (lambda s: s)
        found = []
        for start in range(1, len(ids) - len(target) + 1):
            end = start + len(target)
            if ids[start:end] != target:
                continue
            starts_a_word = word_ids[start - 1] != word_ids[start]
            ends_a_word = end == len(ids) or word_ids[end] != word_ids[end - 1]
            if not (starts_a_word and ends_a_word):
                continue
            # [UNK] stands for any character the vocabulary lacks: then compare the text itself.
            if unknown in target:
                span = text[encoding.offsets[start][0]:encoding.offsets[end - 1][1]]
                if normalize(span).split() != normalize(word).split():
                    continue
            found.append(list(range(start, end)))
        return found

    def count_tokens(self, text: str, text_pair: str | None = None) -> int:
        """How many tokens `text` (and `text_pair`) make with [CLS] and [SEP], before any truncation:
        more than `max_length` means that calling the tokenizer drops the rest.

            >>> tokenizer.count_tokens("He swung the bat."), tokenizer.count_tokens("word " * 600), tokenizer.max_length
            (7, 602, 512)
        """
        return len(self.backend.encode(text, text_pair).ids)

    def decode(self, ids) -> str:
        """Token ids back to text, special tokens left out, pieces joined ("fl", "##ight" -> "flight")."""
        return self.backend.decode([int(i) for i in ids])

    def convert_ids_to_tokens(self, ids) -> list[str]:
        return [self.backend.id_to_token(int(i)) for i in ids]

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    # -- saving -----------------------------------------------------------------------------------

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write tokenizer.json, vocab.txt, tokenizer_config.json and special_tokens_map.json into
        `folder`, so that this class and transformers' AutoTokenizer both read it back."""
        from .files import write_atomically

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        vocab = sorted(self.backend.get_vocab().items(), key=lambda item: item[1])  # (token, id) in id order
        normalizer = json.loads(self.backend.to_str()).get("normalizer") or {}
        settings = {
            "tokenizer_class": "BertTokenizer",
            "model_max_length": self.max_length,
            "do_lower_case": bool(normalizer.get("lowercase", False)),
            "pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
            "mask_token": "[MASK]",
        }
        special = {k: settings[k] for k in ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")}
        write_atomically(folder / "tokenizer.json", self.backend.to_str().encode("utf-8"))
        write_atomically(folder / "vocab.txt", "".join(token + "\n" for token, _ in vocab).encode("utf-8"))
        write_atomically(folder / "tokenizer_config.json", json.dumps(settings, indent=2).encode("utf-8"))
        write_atomically(folder / "special_tokens_map.json", json.dumps(special, indent=2).encode("utf-8"))
        return folder


def pad_batch(rows: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Rows of (ids, token types) as the batch BERT reads, padded on the right to the longest row.

    `Tokenizer.pad` pads its encodings with it, and the pre-training data (training/data.py) its
    sentence pairs.

    Args:
        rows: a non-empty list of (ids, token types), two sequences of ints of one length each.
        pad_id: the [PAD] token's id.

    Returns:
        input_ids, token_type_ids and attention_mask, each (B, T) int64; padding is `pad_id`, token
        type 0 and mask 0.

    >>> batch = pad_batch([([101, 7, 8, 102], [0, 0, 0, 0]), ([101, 9, 102], [0, 0, 0])], pad_id=0)
    >>> batch["input_ids"]          # the shorter row ends in pad_id
    tensor([[101,   7,   8, 102],
            [101,   9, 102,   0]])
    >>> batch["attention_mask"]     # 0 over the padding
    tensor([[1, 1, 1, 1],
            [1, 1, 1, 0]])
    """
    T = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), T), pad_id, dtype=torch.long)  # (B, T)
    token_type_ids = torch.zeros((len(rows), T), dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((len(rows), T), dtype=torch.long)  # (B, T)
    for row, (ids, types) in enumerate(rows):
        n = len(ids)
        input_ids[row, :n] = torch.as_tensor(ids)
        token_type_ids[row, :n] = torch.as_tensor(types)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}
