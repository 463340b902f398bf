"""How an exercise is checked: the learner's function runs where the project's own runs, every
result it leads to is compared with the project's, and the first that differs is named, with a hint.

An exercise is a function of the project (`attention` in bert/model.py, `BertPooler.forward`, ...). Its
file starts as the function's signature and docstring with a body to write (`start`); the solution is the
function's own source (`solution`), so it can never drift from the code it teaches.

The hints come from a table of real mistakes. Each mistake is an edit of the solution, the slip as a
learner makes it (`* head_size**-0.5` left out). When a check fails, each mistake of the exercise is
made on the solution and run the same way; a mistake whose results equal the learner's gives its hint.
"""

from __future__ import annotations

import importlib.util
import inspect
import reprlib
import signal
import sys
import textwrap
import threading
import types
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

# The tolerance. A result of the learner's passes where, element by element,
#     |learner - reference| <= RTOL * |reference| + ATOL * scale,
# `scale` being the largest finite magnitude in the reference (the additive mask's -3.4e38 left out).
# A correct function written another way (a division by sqrt(hs) for a product with hs**-0.5, LayerNorm or
# GELU by hand) rounds differently in float32, and the difference grows through the layers: measured on
# all-MiniLM-L6-v2 under every kernel variant of scripts/kernel_variants.py it stays below a tenth of this
# bound. Every mistake in the tables exceeds it at its tensor by ten times or more (tests/test_exercises.py).
RTOL = 1e-4
ATOL = 1e-5
HUGE = 1e30  # values beyond this are the additive mask's "minus infinity", compared only for where they are

SECONDS = 60  # a learner's function that runs longer than this is stopped (a loop that never ends)


class ExerciseError(Exception):
    """A check that could not run the learner's code: one line that says why."""


class TimeUp(BaseException):
    """Raised into the learner's code when its time is up: a BaseException, so that a learner's
    `except Exception` cannot swallow it; turned into an ExerciseError where the call returns."""


@dataclass(frozen=True)
class Mistake:
    """A real slip: `old` replaced by `new` in the solution's source. The check reports `tensor` first, and
    gives `hint` when the learner's results equal the mistaken solution's."""

    name: str
    old: str
    new: str
    tensor: str
    hint: str


@dataclass(frozen=True)
class Exercise:
    """One function to write.

    reference: the project's function (or method) that the learner writes again; its signature and docstring
        make the stub, its source the solution.
    run: runs a given implementation where the reference runs, and returns the named results in the order
        they are made, as {name: tensor or array}. `run(reference)` gives what a correct answer gives.
    imports: the lines the learner's file starts with (what the reference's source uses).
    hints: a hint for a result that differs in a way no mistake of the table explains, by the result's name
        or its last part ("scores" for encoder.layer.3.attention.scores).
    compare: a result's error in units of its bound (<= 1 passes), where error_in_bounds does not fit (a
        statistical check).
    """

    name: str
    title: str
    task: str  # what to write: what the arguments (and `self`) hold, with shapes, and what to return
    reference: Callable
    run: Callable[[Callable], dict[str, Any]]
    imports: str
    mistakes: tuple[Mistake, ...] = ()
    hints: dict[str, str] = field(default_factory=dict)
    compare: Callable[[Any, Any], float] | None = None  # a result's error in units of the bound (<= 1 passes)

    @property
    def function_name(self) -> str:
        return self.reference.__name__

    def source(self) -> str:
        """The reference's own source, dedented, without decorators (@staticmethod): the solution's body."""
        source = textwrap.dedent(inspect.getsource(self.reference))
        lines = source.splitlines(keepends=True)
        while lines and lines[0].lstrip().startswith("@"):
            lines.pop(0)
        return "".join(lines)

    def stub(self) -> str:
        """The file `start` writes: the imports, the signature and docstring, and a body to write."""
        source = self.source()
        tree_lines = source.splitlines()
        header_end = _header_end(source)
        header = "\n".join(tree_lines[:header_end])
        indent = " " * 4
        body = (f'{indent}raise NotImplementedError("{self.name}: not written yet")\n')
        return f"{self.preamble()}{header}\n{body}"

    def solution(self) -> str:
        return f"{self.preamble(solution=True)}{self.source()}"

    def preamble(self, solution: bool = False) -> str:
        task = textwrap.indent(textwrap.dedent(self.task).strip(), "")
        what = ("This is the project's own code. Read it, then write it yourself again: minibert exercise start "
                f"{self.name} --force" if solution else f"Write the body of {self.function_name}(). Check it with "
                f"`minibert exercise check {self.name}`;\nstuck? `minibert exercise hint {self.name}`")
        return (f'"""Exercise {self.name}: {self.title}.\n\n{task}\n\n{what}\n"""\n\n'
                f'{self.imports.strip()}\n\n\n')


def _header_end(source: str) -> int:
    """The number of lines of `source` (one function) up to the end of its docstring, or of its `def` line."""
    import ast

    function = ast.parse(source).body[0]
    first = function.body[0]
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
            and isinstance(first.value.value, str):
        return first.end_lineno
    return first.lineno - 1


# ---------------------------------------------------------------------------------------------
# Comparing results.
# ---------------------------------------------------------------------------------------------

def as_array(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float64).cpu().numpy() if value.is_floating_point() else value.cpu().numpy()
    try:
        return np.asarray(value)
    except ValueError:  # ragged lists
        return np.asarray(value, dtype=object)


def error_in_bounds(learner, reference) -> float:
    """How far `learner` is from `reference`, in units of the bound (RTOL, ATOL above): <= 1 passes.
    Infinite when the shapes differ, or NaN, infinity or the mask's huge values sit elsewhere."""
    a, b = as_array(learner), as_array(reference)
    if a.shape != b.shape:
        try:  # (T, H) positions for (1, T, H): the same numbers where it is used, broadcast as the model adds it
            if np.broadcast_shapes(a.shape, b.shape) != b.shape or a.ndim > b.ndim:
                return float("inf")
        except ValueError:
            return float("inf")
        a = np.broadcast_to(a, b.shape)
    if a.size == 0:
        return 0.0
    if not np.issubdtype(b.dtype, np.floating):
        return 0.0 if np.array_equal(a, b) else float("inf")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        return float("inf")  # None, text or objects where the reference holds numbers
    a = a.astype(np.float64)
    huge_b, huge_a = ~np.isfinite(b) | (np.abs(b) > HUGE), ~np.isfinite(a) | (np.abs(a) > HUGE)
    if (huge_a != huge_b).any() or (np.sign(a[huge_b]) != np.sign(b[huge_b])).any() \
            or (np.isnan(a) != np.isnan(b)).any():
        return float("inf")
    ordinary = ~huge_b
    if not ordinary.any():
        return 0.0
    scale = float(np.abs(b[ordinary]).max())
    bound = RTOL * np.abs(b[ordinary]) + ATOL * scale
    difference = np.abs(a[ordinary] - b[ordinary])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bound > 0, difference / bound, np.where(difference > 0, np.inf, 0.0))
    return float(ratio.max())


def max_difference(learner, reference) -> float:
    a, b = as_array(learner), as_array(reference)
    if a.shape != b.shape:
        return float("nan")
    if not np.issubdtype(b.dtype, np.floating):
        return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0
    both = (np.abs(b) <= HUGE) & np.isfinite(b) & np.isfinite(a)
    return float(np.abs(a[both].astype(np.float64) - b[both]).max()) if both.any() else float("nan")


@dataclass
class Divergence:
    name: str  # the reference's name of the first result that differs
    learner: Any
    reference: Any
    error: float  # in units of the bound

    def describe(self) -> str:
        a, b = as_array(self.learner), as_array(self.reference)
        if b.dtype.kind in "USO":  # words or word pieces: no difference to measure, so say what they are
            return f"{self.name} is {reprlib.repr(self.learner)}, expected {reprlib.repr(self.reference)}"
        if a.dtype.kind in "USO":
            return f"{self.name} holds {reprlib.repr(self.learner)}, not numbers"
        if a.shape != b.shape:
            return f"{self.name} has shape {tuple(a.shape)}, expected {tuple(b.shape)}"
        if np.issubdtype(a.dtype, np.floating) and np.isnan(a).any() and not np.isnan(b).any():
            return f"{self.name} holds NaN"
        if np.issubdtype(b.dtype, np.floating):
            huge_a, huge_b = ~np.isfinite(a) | (np.abs(a) > HUGE), ~np.isfinite(b) | (np.abs(b) > HUGE)
            if (huge_a != huge_b).any():
                return (f"{self.name}: {int((huge_a != huge_b).sum())} of {a.size} values are huge (the additive "
                        f"mask's minus infinity, or an overflow) where the reference's are not, or the other way")
        layer = layer_of(self.name)
        where = f" (layer {layer})" if layer is not None else ""
        return (f"{self.name}{where} differs by up to {max_difference(a, b):.3g} "
                f"({self.error:.3g} times the bound)")


def layer_of(name: str) -> int | None:
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        if part == "layer" and parts[i + 1].isdigit():
            return int(parts[i + 1])
    return None


def first_divergence(learner: dict, reference: dict, compare=None) -> Divergence | None:
    """The first result, in the reference's order, that is missing or out of bounds."""
    compare = compare or error_in_bounds
    for name, expected in reference.items():
        if name not in learner:
            continue  # not made by the learner's code (it took another route): the next result shows
        error = compare(learner[name], expected)
        if not error <= 1:
            return Divergence(name, learner[name], expected, error)
    missing = [name for name in reference if name not in learner]
    if missing and len(missing) == len(reference):
        raise ExerciseError(f"none of the results was made ({', '.join(list(reference)[:3])}, ...)")
    return None


# ---------------------------------------------------------------------------------------------
# Running a learner's code, safely: one line for whatever goes wrong.
# ---------------------------------------------------------------------------------------------

@contextmanager
def time_limit(seconds: int):
    """Stop the block after `seconds` with ExerciseError (main thread, POSIX: SIGALRM); elsewhere no limit."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def stop(signum, frame):
        raise TimeUp()

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)  # and again every second, should the first be caught
    try:
        yield
    except TimeUp:
        raise ExerciseError(f"it ran for more than {seconds} s and was stopped (a loop that never ends?)") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def where_in(path: Path | None, error: BaseException) -> str:
    """' (file.py, line N)' for the innermost frame of `error` in the learner's file, if any."""
    if path is None:
        return ""
    line = None
    tb = error.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == path.resolve():
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" ({path.name}, line {line})" if line else ""


def kind(value) -> tuple:
    """What a value is, to compare what a learner's function returns with what the project's returns: the
    type, and a tensor's or array's dtype and shape, field by field for a NamedTuple."""
    if isinstance(value, torch.Tensor):
        return ("tensor", str(value.dtype).removeprefix("torch."), tuple(value.shape))
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.shape)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return (type(value).__name__, tuple((name, kind(getattr(value, name))) for name in value._fields))
    return (type(value).__name__,)


def difference_of_kinds(ours: tuple, theirs: tuple) -> str | None:
    """The first way `ours` is not `theirs`, in words ("a float64 tensor of shape (2, 3), expected ..."), or None."""
    def words(k: tuple) -> str:
        if k[0] in ("tensor", "array"):
            return f"a {k[1]} {k[0]} of shape {k[2]}"
        return k[0] if len(k) == 1 else f"{k[0]}(...)"

    if ours[0] != theirs[0]:
        return f"{words(ours)}, expected {words(theirs)}"
    if ours[0] in ("tensor", "array"):
        return None if ours == theirs else f"{words(ours)}, expected {words(theirs)}"
    if len(ours) == 2 and len(theirs) == 2:  # NamedTuple fields
        for (name, a), (_, b) in zip(ours[1], theirs[1]):
            if (why := difference_of_kinds(a, b)) is not None:
                return f"{ours[0]} whose {name} is {why}"
    return None


def watched(fn: Callable, returned: list) -> Callable:
    """`fn`, noting the kind of what its first call returns in `returned`."""
    def call(*args, **kwargs):
        value = fn(*args, **kwargs)
        if not returned:
            returned.append(kind(value))
        return value
    return call


_REFERENCE_RETURNS: dict[str, tuple] = {}


def run_learner(exercise: Exercise, fn: Callable, path: Path | None = None) -> dict:
    """exercise.run(fn), with anything the learner's code raises turned into one ExerciseError line. When
    minibert fails after the learner's function returned, what it returned is compared with what the
    project's returns, as that is where the trouble is."""
    returned: list = []
    try:
        with time_limit(SECONDS):
            return exercise.run(watched(fn, returned))
    except ExerciseError:
        raise
    except NotImplementedError as error:
        raise ExerciseError(f"{exercise.function_name}() is not written yet{where_in(path, error)}: "
                            f"write its body in place of the raise") from None
    except RecursionError as error:
        raise ExerciseError(f"{exercise.function_name}() calls itself without end{where_in(path, error)}") from None
    except BaseException as error:  # noqa: BLE001 - a learner's code may raise anything, even SystemExit (exit())
        if isinstance(error, KeyboardInterrupt):
            raise
        where = where_in(path, error)
        expected = _REFERENCE_RETURNS.get(exercise.name)
        if not where and returned and expected is not None \
                and (why := difference_of_kinds(returned[0], expected)) is not None:
            raise ExerciseError(f"{exercise.function_name}() returned {why}") from None
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ExerciseError(f"{exercise.function_name}() raised {type(error).__name__}{where}"
                            f"{': ' + message[:300] if message else ''}") from None


def load_function(path: Path, name: str) -> Callable:
    """The function `name` from the learner's file, imported as a fresh module."""
    if not path.is_file():
        raise ExerciseError(f"{path} does not exist: write it with `minibert exercise start {path.stem}`")
    spec = importlib.util.spec_from_file_location(f"exercise_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        with time_limit(SECONDS):
            spec.loader.exec_module(module)
    except ExerciseError as error:
        raise ExerciseError(f"{path}: importing it {error}") from None
    except SyntaxError as error:
        raise ExerciseError(f"{path}, line {error.lineno}: {error.msg}") from None
    except BaseException as error:  # noqa: BLE001 - a learner's file may raise anything, even SystemExit
        if isinstance(error, KeyboardInterrupt):
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExerciseError(f"{path}: importing it raised {type(error).__name__}{where_in(path, error)}: "
                            f"{message[:300]}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ExerciseError(f"{path} defines no function {name}(): keep the name and signature `start` wrote")
    return fn


def mistaken(exercise: Exercise, mistake: Mistake) -> Callable:
    """The solution with `mistake` made in it, as a function."""
    source = exercise.source()
    if mistake.old not in source:
        raise AssertionError(f"{exercise.name}: mistake {mistake.name!r} edits {mistake.old!r}, "
                             "which the solution no longer holds")
    namespace: dict[str, Any] = {}
    exec(compile(exercise.preamble(solution=True) + source.replace(mistake.old, mistake.new, 1),
                 f"<{exercise.name}: {mistake.name}>", "exec"), namespace)
    return namespace[exercise.function_name]


# ---------------------------------------------------------------------------------------------
# The check.
# ---------------------------------------------------------------------------------------------

@dataclass
class Result:
    exercise: str
    passed: bool
    message: str  # the line to print
    tensor: str | None = None  # the first result that differs
    hint: str | None = None
    mistake: str | None = None  # the name of the mistake in the table that explains it, if one does

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message


_REFERENCE_RESULTS: dict[str, dict] = {}


def reference_results(exercise: Exercise) -> dict:
    """What the project's own function leads to (computed once per process, before any learner's file is
    imported: a file that replaces torch.softmax must not change the answer it is checked against)."""
    check_untouched()
    if exercise.name not in _REFERENCE_RESULTS:
        returned: list = []
        _REFERENCE_RESULTS[exercise.name] = exercise.run(watched(exercise.reference, returned))
        _REFERENCE_RETURNS[exercise.name] = returned[0] if returned else None
    return _REFERENCE_RESULTS[exercise.name]


def _guarded() -> dict[str, Any]:
    """The functions a check relies on, by name: torch's and numpy's, and minibert's own that the exercises
    replace. A learner's file that replaces one for good (torch.softmax = ...) would change the reference."""
    import torch.nn.functional as F

    from ..bert import losses, model
    from ..speed import encode
    from ..training import data

    names = {f"torch.{n}": getattr(torch, n) for n in ("softmax", "log_softmax", "matmul", "bmm", "einsum", "tanh",
                                                      "erf", "exp", "log", "sqrt", "rsqrt", "mean", "var")}
    names |= {f"torch.Tensor.{n}": getattr(torch.Tensor, n) for n in ("softmax", "__matmul__", "matmul", "transpose",
                                                                      "view", "reshape", "mean", "var", "sum")}
    names |= {f"torch.nn.functional.{n}": getattr(F, n) for n in ("softmax", "gelu", "layer_norm", "linear", "embedding")}
    names |= {f"numpy.{n}": getattr(np, n) for n in ("dot", "argsort", "argmax", "sqrt")} | {"numpy.linalg.norm": np.linalg.norm}
    names |= {f"minibert.bert.model.{n}": getattr(model, n) for n in ("attention", "activation", "additive_mask",
                                                                       "cross_entropy")}
    names |= {"minibert.bert.model.ACTIVATIONS['gelu']": model.ACTIVATIONS["gelu"],
              "minibert.bert.losses.cross_entropy": losses.cross_entropy, "minibert.speed.encode.mean_pool":
              encode.mean_pool, "minibert.training.data.mask_tokens": data.mask_tokens}
    for cls in (model.BertEmbeddings, model.BertSelfAttention, model.BertSelfOutput, model.BertOutput,
                model.BertPooler, model.BertLMPredictionHead, torch.nn.LayerNorm):
        for method in ("forward", "split_heads", "merge_heads"):
            if method in vars(cls):
                names[f"{cls.__name__}.{method}"] = vars(cls)[method]
    return names


_ORIGINALS: dict[str, Any] = {}


def check_untouched() -> None:
    """Refuse to check while a function the check relies on has been replaced (see _guarded)."""
    if not _ORIGINALS:
        _ORIGINALS.update(_guarded())
    now = _guarded()
    replaced = [name for name, original in _ORIGINALS.items() if now[name] is not original]
    if replaced:
        raise ExerciseError(f"{', '.join(replaced[:3])} {'is' if len(replaced) == 1 else 'are'} no longer the "
                            "original (replaced by an exercise file, or a notebook cell?): the check compares with "
                            "the project's own code, so restart Python without the replacement")


def diagnose(exercise: Exercise, learner: dict, divergence: Divergence) -> tuple[str | None, str | None]:
    """(mistake name, hint): the mistake of the table whose results equal the learner's, else the hint for
    the result that differs."""
    compare = exercise.compare or error_in_bounds
    for mistake in exercise.mistakes:
        if mistake.tensor != divergence.name:
            continue
        try:
            theirs = exercise.run(mistaken(exercise, mistake))
        except Exception:  # noqa: BLE001 - a mistake that raises explains nothing here
            continue
        if mistake.tensor in theirs and compare(learner[mistake.tensor], theirs[mistake.tensor]) <= 1:
            return mistake.name, mistake.hint
    for prefix, hint in sorted(exercise.hints.items(), key=lambda item: -len(item[0])):
        if divergence.name.startswith(prefix) or divergence.name.split(".")[-1] == prefix:
            return None, hint
    return None, None


def check_function(exercise: Exercise, fn: Callable, path: Path | None = None) -> Result:
    """Run `fn` in place of the exercise's function and compare every result with the project's own."""
    try:
        reference = reference_results(exercise)
        learner = run_learner(exercise, fn, path)
        check_untouched()  # the learner's function may have replaced one as it ran
        divergence = first_divergence(learner, reference, exercise.compare)
        if divergence is None:
            return Result(exercise.name, True, f"{exercise.name}: all {len(reference)} results match the project's "
                                               "own. Well done.")
        described = divergence.describe()
        mistake, hint = diagnose(exercise, learner, divergence)
    except ExerciseError as error:
        return Result(exercise.name, False, f"{exercise.name}: {error}")
    except Exception as error:  # noqa: BLE001 - a result too odd to compare (objects, ragged lists): one line
        return Result(exercise.name, False, f"{exercise.name}: a result of {exercise.function_name}() could not be "
                                            f"compared with the project's ({type(error).__name__}: {error})")
    message = f"{exercise.name}: {described}" + (f"\n  hint: {hint}" if hint else "")
    return Result(exercise.name, False, message, divergence.name, hint, mistake)
