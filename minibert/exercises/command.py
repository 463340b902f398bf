"""`minibert exercise ...`: list, start, check, hint and solution, each on a folder of exercise files
(default ./exercises). Which exercises were passed is kept in that folder's .passed.json, by the
content of the file that passed: edit a passed file and it counts as passed again only once it checks."""

from __future__ import annotations

import argparse
import hashlib
import json
import textwrap
from pathlib import Path

from ..bert.files import write_atomically
from .catalog import EXERCISES, exercise
from .core import ExerciseError, check_function, error_in_bounds, load_function, reference_results

PASSED = ".passed.json"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _passed(folder: Path) -> dict[str, str]:
    try:
        values = json.loads((folder / PASSED).read_text())
    except (OSError, ValueError):
        return {}
    return values if isinstance(values, dict) else {}


def _has_passed(folder: Path, name: str) -> bool:
    path = folder / f"{name}.py"
    return path.is_file() and _passed(folder).get(name) == _digest(path)


def _record(folder: Path, name: str, passed: bool) -> None:
    record = _passed(folder)
    if passed:
        record[name] = _digest(folder / f"{name}.py")
    else:
        record.pop(name, None)
    write_atomically(folder / PASSED, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


def cmd_list(args) -> int:
    folder = args.dir
    for number, ex in enumerate(EXERCISES.values(), 1):
        path = folder / f"{ex.name}.py"
        state = "passed " if _has_passed(folder, ex.name) else ("started" if path.is_file() else "       ")
        print(f"{number:2}. {state}  {ex.name:<20} {ex.title}")
    return 0


def _write(path: Path, text: str, force: bool, what: str) -> None:
    if path.exists() and not force:
        raise ExerciseError(f"{path} exists; pass --force to write the {what} over it")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text.encode("utf-8"))


def cmd_start(args) -> int:
    ex = exercise(args.name)
    path = args.dir / f"{ex.name}.py"
    _write(path, ex.stub(), args.force, "exercise")
    print(f"wrote {path}: write the body of {ex.function_name}(), then: minibert exercise check {ex.name}"
          + ("" if args.dir == Path("exercises") else f" --dir {args.dir}"))
    return 0


def cmd_solution(args) -> int:
    """Write the solution as DIR/NAME.py; the learner's own file, if it is more than the stub, is kept beside it
    as DIR/NAME.mine.py first."""
    ex = exercise(args.name)
    path = args.dir / f"{ex.name}.py"
    kept = ""
    if path.is_file() and path.read_text(errors="replace") not in (ex.stub(), ex.solution()):
        mine = path.with_name(f"{ex.name}.mine.py")
        write_atomically(mine, path.read_bytes())
        kept = f"; yours is kept as {mine}"
    _write(path, ex.solution(), True, "solution")
    print(f"wrote {path}: the project's own {ex.function_name}() ({ex.reference.__module__}){kept}")
    return 0


def cmd_check(args) -> int:
    ex = exercise(args.name)
    path = args.dir / f"{ex.name}.py"
    try:
        reference_results(ex)  # before the learner's file is imported (see reference_results)
        fn = load_function(path, ex.function_name)
    except ExerciseError as error:
        print(f"{ex.name}: {error}")
        return 1
    result = check_function(ex, fn, path)
    print(result.message)
    if args.dir.is_dir():
        _record(args.dir, ex.name, result.passed)
    return 0 if result.passed else 1


def cmd_hint(args) -> int:
    ex = exercise(args.name)
    print(f"{ex.name}: {ex.title}.\n")
    print(textwrap.dedent(ex.task).strip() + "\n")
    if ex.hints:
        print("What each result is:")
        for name, hint in ex.hints.items():
            print(f"  {name}: {hint}")
    if ex.mistakes:
        print("Mistakes people make, and what the check then says:")
        for mistake in ex.mistakes:
            print(f"  - {mistake.name} (shows first at {mistake.tensor}): {mistake.hint}")
    return 0


def add_command(commands, formatter) -> None:
    """The `exercise` command, with its five subcommands, on the `minibert` parser's subparsers."""
    p = commands.add_parser(
        "exercise", help="write a piece of BERT yourself; the real model checks it",
        description="Exercises: write a piece of BERT (attention, the pooler, ...) and check it inside the real "
                    "model,\nwhich names the first intermediate that differs and gives a hint.",
        epilog="example:\n  minibert exercise start attention\n  minibert exercise check attention",
        formatter_class=formatter)
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION",
                           help="list, start, check, hint or solution (each takes --help)")
    names = list(EXERCISES)
    for action, func, help in (("list", cmd_list, "the exercises in order, and which you have passed"),
                               ("start", cmd_start, "write DIR/NAME.py: a signature and docstring to fill in"),
                               ("check", cmd_check, "run DIR/NAME.py inside the real model; exit 1 where it differs"),
                               ("hint", cmd_hint, "what to write, and the mistakes people make"),
                               ("solution", cmd_solution, "write the project's own code as DIR/NAME.py")):
        q = sub.add_parser(action, help=help, description=help[0].upper() + help[1:] + ".", formatter_class=formatter)
        if action != "list":
            q.add_argument("name", metavar="NAME", choices=names, help=f"one of: {', '.join(names)}")
        q.add_argument("--dir", type=Path, default=Path("exercises"), metavar="D",
                       help="the folder of exercise files (default: exercises)")
        if action == "start":
            q.add_argument("--force", action="store_true", help="write over an existing file")
        q.set_defaults(func=func)


__all__ = ["add_command", "error_in_bounds"]
