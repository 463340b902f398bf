"""gensim's two evaluations of word vectors, with gensim's figures: analogies (in batches) and word pairs.

    score, sections = wv.evaluate_word_analogies("questions-words.txt")
    pearson, spearman, oov_ratio = wv.evaluate_word_pairs("wordsim353.tsv")

Analogies. Each line "a b c expected" asks for the word nearest to b - a + c. gensim answers one question
at a time: with every word of the questions upper-cased (`case_insensitive`), it looks the words up in the
first `restrict_vocab` words (the first of several case variants wins), takes most_similar(positive=[b, c],
negative=[a], topn=5) among those words, and counts the question right when the first of the five that is
not a, b or c (upper-cased) is the expected word. A question with a word outside the vocabulary is
skipped (or counted wrong with `dummy4unknown`).

Here the questions are answered in batches: one matrix product scores a batch of questions against every
word, which finds each question's six best words up to ~1e-6. Where the best word is ahead of the next by
more than `_TIE_MARGIN` (which bounds the rounding of both computations), that is gensim's answer too;
otherwise (a near-tie, about 1 question in 1000) the question is answered again exactly as gensim does,
one at a time. The figures are therefore gensim's own, to the question.

Word pairs. Each line "word1<TAB>word2<TAB>score" is a human judgement; the cosine of each pair of known
words (gensim's `similarity`, to the last bit) is set against it with scipy's Pearson and Spearman
correlations.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .formats import EncodingError, FormatError, check_count

_CANDIDATES = 6  # gensim looks at the best 5 words; one more shows whether the 5th is a near-tie
_TIE_MARGIN = 3e-5  # > the rounding of a cosine of unit 50-d float32 vectors, by gensim's path plus by ours
_CHUNK = 16_384  # words scored at once: a batch's scores for them stay in the cache
_BOM = "\ufeff"  # the byte order mark, as a file's first character


def _ok_vocab(wv, restrict_vocab, case_insensitive: bool) -> dict:
    """gensim's lookup for the evaluations: the first `restrict_vocab` words (upper-cased if
    `case_insensitive`; of several case variants, the first, i.e. the commonest, wins) -> row."""
    keys = wv.index_to_key[:restrict_vocab]
    if case_insensitive:
        return {key.upper(): row for row, key in reversed(list(enumerate(keys)))}
    return {key: row for row, key in enumerate(keys)}


def _read_lines(path):
    """(line number, text) for each line of a UTF-8 file, or EncodingError naming the line. A byte order mark
    (which Windows' Notepad writes) is not part of the first line, as the word-vector readers take it."""
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise EncodingError(path, line_no, e) from None
            yield line_no, text.removeprefix(_BOM) if line_no == 1 else text


def evaluate_word_analogies(wv, analogies, restrict_vocab=300000, case_insensitive=True, dummy4unknown=False,
                            similarity_function="most_similar", batch_size=256):
    """(score, sections) for an analogy file, exactly as gensim's KeyedVectors.evaluate_word_analogies."""
    if similarity_function != "most_similar":  # gensim 4.4 takes the argument and never reads it
        warnings.warn(f"similarity_function={similarity_function!r} is ignored, as gensim 4.4 ignores it: the "
                      "analogies are answered with most_similar (3CosAdd)", stacklevel=3)
    restrict_vocab = check_count("restrict_vocab", restrict_vocab, allow_none=True)
    ok_vocab = _ok_vocab(wv, restrict_vocab, case_insensitive)

    sections, section = [], None
    questions, places = [], []  # in-vocabulary questions (rows a, b, c), and where each answer goes
    quadruplets, oov, skipped = 0, 0, []
    for line_no, line in _read_lines(analogies):
        if line.startswith(": "):
            section = {"section": line.lstrip(": ").strip(), "correct": [], "incorrect": []}
            sections.append(section)
            continue
        if section is None:
            raise FormatError(analogies, line_no, "comes before the first ': SECTION' line")
        words = [word.upper() for word in line.split()] if case_insensitive else line.split()
        if len(words) != 4:
            skipped.append(line_no)
            continue
        quadruplets += 1
        if any(word not in ok_vocab for word in words):
            oov += 1
            if dummy4unknown:
                section["incorrect"].append(tuple(words))
            continue
        questions.append([ok_vocab[word] for word in words[:3]])
        places.append((section, tuple(words)))
        section["incorrect"].append(None)  # a place, in file order, for this question's answer
    if skipped:
        warnings.warn(f"{analogies}: {len(skipped)} lines that are not 4 words were skipped "
                      f"(lines {skipped[:5]}{' ...' if len(skipped) > 5 else ''})", stacklevel=3)
    if not quadruplets:
        raise FormatError(analogies, 1, "holds no analogy questions (lines of 4 words)")

    predictions = _predict(wv, np.array(questions, dtype=np.int64).reshape(-1, 3), places, ok_vocab,
                           case_insensitive, restrict_vocab, batch_size)
    answered = {}
    for (section, question), predicted in zip(places, predictions):
        answered.setdefault(id(section), []).append((question, predicted == question[3]))
    for section in sections:  # fill each section's places in file order
        results = iter(answered.get(id(section), []))
        incorrect, correct = [], []
        for item in section["incorrect"]:
            if item is not None:  # a dummy4unknown question
                incorrect.append(item)
                continue
            question, right = next(results)
            (correct if right else incorrect).append(question)
        section["correct"], section["incorrect"] = correct, incorrect
    total = {"section": "Total accuracy",
             "correct": [q for s in sections for q in s["correct"]],
             "incorrect": [q for s in sections for q in s["incorrect"]]}
    sections.append(total)
    return _accuracy(total), sections


def _accuracy(section) -> float:
    correct, incorrect = len(section["correct"]), len(section["incorrect"])
    return correct / (correct + incorrect) if correct + incorrect else 0.0


def _predict(wv, rows, places, ok_vocab, case_insensitive, restrict_vocab, batch_size):
    """gensim's predicted word (as compared: upper-cased if case_insensitive) for each question (Q, 3)."""
    if not len(rows):
        return []
    _, end = wv._search_range(restrict_vocab=restrict_vocab)
    dead = np.isin(rows, wv._dead_rows).any(axis=1)  # (Q,): a word without a direction: no answer
    if dead.any():
        warnings.warn(f"{int(dead.sum())} analogy questions have a word whose vector has length 0; "
                      "they are counted wrong", stacklevel=4)
    best, scores = _candidates(wv, rows, end, batch_size)  # (Q, 6) each, best first
    words = wv.index_to_key
    as_compared = (lambda word: word.upper()) if case_insensitive else (lambda word: word)
    predictions = []
    for q, (candidates, candidate_scores) in enumerate(zip(best.tolist(), scores.tolist())):
        if dead[q]:
            predictions.append(None)
            continue
        ignore = set(places[q][1][:3])
        predicted, clear = None, False
        for j in range(_CANDIDATES - 1):  # the first of gensim's 5 that is not an input word
            if candidates[j] < 0:
                break
            word = as_compared(words[candidates[j]])
            if word not in ignore:
                # Clear when each word up to it is ahead of the next by more than both roundings.
                gaps = np.diff(candidate_scores[: j + 2])
                clear = candidates[j + 1] >= 0 and bool(np.all(-gaps > _TIE_MARGIN))
                predicted = word
                break
        if not clear:
            predicted = _predict_exactly(wv, rows[q], ignore, as_compared, restrict_vocab)
        predictions.append(predicted)
    return predictions


def _predict_exactly(wv, rows, ignore, as_compared, restrict_vocab):
    """gensim's answer to one question, by gensim's own arithmetic: most_similar(positive=[b, c],
    negative=[a], topn=5, restrict_vocab), then the first of those words that is not an input word (if
    none is, gensim keeps the last one it looked at)."""
    a, b, c = (int(row) for row in rows)
    mean, inputs = wv._mean_of([(b, np.float64(1.0)), (c, np.float64(1.0)), (a, np.float64(-1.0))],
                               index=lambda row: row)
    start, end = wv._search_range(restrict_vocab=restrict_vocab)
    scores = wv.vectors[start:end] @ mean / wv.norms[start:end]
    predicted = None
    for word, _ in wv._best(scores, 5, inputs, start):
        predicted = as_compared(word)
        if predicted not in ignore:
            break
    return predicted


def _candidates(wv, rows, end: int, batch_size: int):
    """(rows (Q, 6), scores (Q, 6)): each question's six best words among the first `end`, best first,
    its own words left out; a row of -1 where there are fewer. Scores are within ~1e-6 of gensim's.

    For a batch of questions, matrix products score every word, a chunk of words at a time. Each question's
    6th best score in the first chunk (the commonest words) is a threshold that its six best words overall
    reach, so only the few words at or above it (about 20 a question) are kept and sorted. Batches run on
    one thread per core (numpy lets go of the GIL), each with a single-threaded BLAS when threadpoolctl
    can set that: many small threaded matrix products waste more time waiting for each other than they
    save, above all on a busy machine.
    """
    batch_size = check_count("batch_size", batch_size, minimum=1)
    unit = wv.unit_vectors[:end]  # (N, D); rows of length 0 are NaN
    with np.errstate(invalid="ignore", divide="ignore"):
        queries = unit[rows[:, 1]] + unit[rows[:, 2]] - unit[rows[:, 0]]  # (Q, D): b - a + c, unit rows
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    dead = wv._dead_rows[wv._dead_rows < end]
    starts = range(0, len(rows), batch_size)

    def one_batch(start):
        return _batch_candidates(unit, dead, queries[start : start + batch_size], rows[start : start + batch_size])

    best = np.full((len(rows), _CANDIDATES), -1, dtype=np.int64)
    best_scores = np.full((len(rows), _CANDIDATES), -np.inf, dtype=np.float32)
    with _one_blas_thread() as limited:
        workers = min(len(starts), _cores()) if limited else 1
        with ThreadPoolExecutor(workers) as pool:
            for start, (batch_best, batch_scores) in zip(starts, pool.map(one_batch, starts)):
                best[start : start + len(batch_best)] = batch_best
                best_scores[start : start + len(batch_best)] = batch_scores
    return best, best_scores


def _batch_candidates(unit, dead, q, inputs):
    """The six best rows (B, 6) and their scores (B, 6) for one batch of questions (B, D), whose own
    words are `inputs` (B, 3); see _candidates."""
    k = _CANDIDATES
    batch = np.broadcast_to(np.arange(len(q))[:, None], inputs.shape)  # (B, 3)
    threshold = None
    found = []  # (question, row, score) arrays, chunk by chunk
    # The words in chunks of _CHUNK: each chunk's scores stay in the cache while they are searched.
    for chunk_start in range(0, len(unit), _CHUNK):
        chunk_end = min(chunk_start + _CHUNK, len(unit))
        scores = q @ unit[chunk_start:chunk_end].T  # (B, C): the batch against a chunk of words
        scores[:, dead[(dead >= chunk_start) & (dead < chunk_end)] - chunk_start] = -np.inf  # NaN otherwise
        own = (inputs >= chunk_start) & (inputs < chunk_end)
        scores[batch[own], inputs[own] - chunk_start] = -np.inf  # a question's words are no answer
        if threshold is None:  # the first chunk, the commonest words: each question's 6th best there
            threshold = (-np.partition(-scores, k - 1, axis=1)[:, k - 1] if scores.shape[1] > k
                         else np.full(len(q), -np.inf, dtype=np.float32))  # (B,)
        hits = np.flatnonzero(scores >= threshold[:, None])  # a few per question (flat: far faster than 2-D)
        questions, words = np.divmod(hits, scores.shape[1])
        found.append((questions, words + chunk_start, scores.ravel()[hits]))
    questions, words, hit_scores = (np.concatenate(parts) for parts in zip(*found))
    # Best first within each question: sort by (question, -score, row).
    order = np.lexsort((words, -hit_scores, questions))
    questions, words, hit_scores = questions[order], words[order], hit_scores[order]
    first = np.searchsorted(questions, np.arange(len(q)))  # where each question's hits start
    rank = np.arange(len(questions)) - first[questions]  # 0 for a question's best hit
    keep = rank < k
    best = np.full((len(q), k), -1, dtype=np.int64)
    best_scores = np.full((len(q), k), -np.inf, dtype=np.float32)
    best[questions[keep], rank[keep]] = words[keep]
    best_scores[questions[keep], rank[keep]] = hit_scores[keep]
    return best, best_scores


@contextlib.contextmanager
def _one_blas_thread():
    """BLAS limited to one thread while the block runs (yields True), if threadpoolctl is installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield True


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (Linux)
    except AttributeError:
        return os.cpu_count() or 1


def evaluate_word_pairs(wv, pairs, delimiter="\t", encoding="utf8", restrict_vocab=300000, case_insensitive=True,
                        dummy4unknown=False):
    """(pearson, spearman, oov_ratio) for a word-pair file, exactly as gensim's KeyedVectors.evaluate_word_pairs."""
    from scipy import stats

    restrict_vocab = check_count("restrict_vocab", restrict_vocab, allow_none=True)
    ok_vocab = _ok_vocab(wv, restrict_vocab, case_insensitive)
    gold, model, oov, skipped = [], [], 0, []
    with open(pairs, encoding=encoding) as f:
        for line_no, line in enumerate(f, start=1):
            if line_no == 1:
                line = line.removeprefix(_BOM)  # not part of the first word
            if not line or line.startswith("#"):  # comments
                continue
            try:
                a, b, sim = [word.upper() for word in line.split(delimiter)] if case_insensitive else line.split(delimiter)
                sim = float(sim)
            except (ValueError, TypeError):
                skipped.append(line_no)
                continue
            if a not in ok_vocab or b not in ok_vocab:
                oov += 1
                if dummy4unknown:
                    model.append(0.0)
                    gold.append(sim)
                continue
            gold.append(sim)
            # gensim's similarity, on the words the lookup gives (passed as words: an int word is no row number).
            model.append(wv.similarity(wv.index_to_key[ok_vocab[a]], wv.index_to_key[ok_vocab[b]]))
    if skipped:
        warnings.warn(f"{pairs}: {len(skipped)} lines that are not 'word1{delimiter}word2{delimiter}score' were "
                      f"skipped (lines {skipped[:5]}{' ...' if len(skipped) > 5 else ''})", stacklevel=3)
    if not gold:
        raise ValueError(f"{pairs}: no pair to evaluate: every line is malformed or has a word outside the "
                         f"first {restrict_vocab} words")
    spearman = stats.spearmanr(gold, model)
    pearson = stats.pearsonr(gold, model)
    oov_ratio = float(oov) / len(gold) * 100 if dummy4unknown else float(oov) / (len(gold) + oov) * 100
    return pearson, spearman, oov_ratio
