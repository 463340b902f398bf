"""Exercises: write a piece of BERT yourself, and the real model says where it went wrong.

    minibert exercise list                   the exercises, in the lesson's order, and which you have passed
    minibert exercise start attention        writes exercises/attention.py: the signature and docstring to fill in
    minibert exercise check attention        runs your function inside all-MiniLM-L6-v2 in place of minibert's
    minibert exercise hint attention         what each result is, and the mistakes people make
    minibert exercise solution attention     writes the project's own code in place of yours

From Python or a notebook: `from minibert.exercises import check; check("attention", my_attention)`.

    catalog.py         the exercises, in order
    command.py         the `minibert exercise` command
    core.py            how a check runs and compares, the tolerance, the mistakes that give the hints
    words.py           GloVe's cosine and analogy in numpy, WordPiece's longest match
    bert_parts.py      the encoder's parts, run inside the model, checked on every intermediate of `trace`
    heads_and_data.py  the heads, the masking and next-sentence data (checked by fractions), the
                       cross-encoder and mean pooling
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .catalog import EXERCISES, exercise
from .core import ExerciseError, Result, check_function, load_function, reference_results


def check(name: str, fn: Callable | None = None, directory: str | Path = "exercises") -> Result:
    """Check exercise `name`: the function `fn`, or the one in `directory/NAME.py`. The result prints as one
    line (and a hint), and is true when every result matches the real model's."""
    ex = exercise(name)
    path = None
    try:
        reference_results(ex)  # before the learner's file is imported (see reference_results)
    except ExerciseError as error:
        return Result(ex.name, False, f"{ex.name}: {error}")
    if fn is None:
        path = Path(directory) / f"{ex.name}.py"
        try:
            fn = load_function(path, ex.function_name)
        except ExerciseError as error:
            return Result(ex.name, False, f"{ex.name}: {error}")
    return check_function(ex, fn, path)


__all__ = ["EXERCISES", "check", "exercise", "Result", "ExerciseError"]
