"""What the lesson's steps share: a heading, the model line, loading a head model or saying what it
needs, and one-line errors for their command lines; and what the training programs share: their
option types, and the checks of --out and --resume."""

from __future__ import annotations

import argparse
import functools
import inspect
import math
import sys
from pathlib import Path

OUT_DIR = Path("out")  # pictures go here, relative to where the lesson runs


def heading(number: int, title: str) -> None:
    print(f"\n=== Step {number}: {title} ===")


def using(name: str) -> None:
    print(f"model: {name}")


def load_head_model(step: str, model_class, model, candidates, standin: str | None = None):
    """The step's model, with the line that names it. Without the lesson's own checkpoint, the
    stand-in trained here (tasks/standins.py), labelled as such; without one, None after one line
    that says the step is skipped, which model it needs and the command that fetches it."""
    from minibert.app.cli import HEADS
    from minibert.app.defaults import ModelUnavailable, load
    from minibert.bert.loading import MissingHeadError

    try:
        loaded = load(model_class, model, candidates, offline_default=False)
    except MissingHeadError:  # its own message says what to pass in Python (init_new_head=True): not for here
        raise ValueError(f"--model {model} has no {HEADS[model_class]}, which this step runs on: pass --model "
                         f"with one, e.g. --model {candidates[0]}, or leave --model out for the lesson's model "
                         "or its stand-in") from None
    except ModelUnavailable as err:
        if standin is None:
            print(f"[{step} skipped] {err}")
            return None
        from minibert.app.defaults import fetch_command

        from .standins import load_standin

        loaded = load_standin(standin, model_class)
        print(f"[{candidates[0]} is not available here; fetch it with: {fetch_command(candidates[0])}]")
    using(loaded.name)
    return loaded


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default=None,
                   help="a checkpoint folder or Hub repo id (default: the lesson's model, or its offline stand-in)")
    return p


def picture_path(name: str, out_dir: Path | None = None) -> Path:
    folder = out_dir or OUT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def positive_number(text: str) -> float:
    """argparse type for --minutes and --learning-rate: a finite number above 0 (not nan, not inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, not {text!r}")
    return value


def device_name(text: str) -> str:
    """argparse type for --device: cpu, or cuda (cuda:N) where this torch has a GPU to run on."""
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: cpu, or cuda on a machine with a GPU") from None
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"{text!r}: the training programs run on cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        why = "this torch is built without CUDA" if torch.version.cuda is None else "no GPU is visible"
        raise argparse.ArgumentTypeError(f"{text!r}: {why}; use --device cpu")
    return text


def check_out(p: argparse.ArgumentParser, out: Path, resume: bool, schedule: dict[str, object]) -> None:
    """The training programs' --out and --resume, checked before minutes of data preparation.

    Refused as usage errors: an --out that is a file or lies under one; without --resume, a folder
    that is not empty (a second run there would mix its log and checkpoint with the first's, as
    Trainer.train explains); with --resume, a folder with no checkpoint, or any of the options in
    `schedule` ({"--steps": args.steps, ...}) given: the run goes on with its own.
    """
    from minibert.training.loop import last_checkpoint

    for path in (out, *out.parents):
        if path.exists() and not path.is_dir():
            p.error(f"argument --out: {path} is a file, not a folder")
    if not resume:
        held = sorted(child.name for child in out.iterdir()) if out.is_dir() else []
        if held:
            shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
            p.error(f"argument --out: {out} is not empty ({shown}): continue its run with --resume, "
                    "or give a new or empty folder")
        return
    given = [option for option, value in schedule.items() if value is not None]
    if given:
        p.error(f"--resume goes on with the run's own {', '.join(given)}: leave {'it' if len(given) == 1 else 'them'} out")
    if last_checkpoint(out) is None:
        p.error(f"--resume: {out} holds no checkpoint to resume from")


def resumed_config(out: Path, **schedule):
    """For run(..., resume=True): the TrainingConfig the run in `out` was saved with. The run goes on
    with its own schedule and seed, so each of `schedule` (steps=..., seed=...) must be None."""
    from minibert.training.loop import last_checkpoint, read_training_checkpoint

    given = [name for name, value in schedule.items() if value is not None]
    if given:
        raise ValueError(f"resume=True goes on with the run's own {', '.join(given)}; pass none")
    checkpoint = last_checkpoint(out)
    if checkpoint is None:
        raise ValueError(f"{out} holds no checkpoint to resume from")
    return read_training_checkpoint(checkpoint)[1]


def one_line_errors(main):
    """Wrap a step's main() so that what the minibert command line reports in one line (a --layer out
    of range, no checkpoint at --model), and a training run that cannot go on (TrainingError), is one
    line on stderr and exit status 1 here too.

        @one_line_errors
        def main(argv=None): ...
    """
    command = f"python -m tasks.{Path(inspect.getfile(main)).stem}"

    @functools.wraps(main)
    def main_with_one_line_errors(argv=None):
        from glove import UnknownWordError
        from minibert.app.cli import USER_ERRORS
        from minibert.training.loop import TrainingError

        try:
            return main(argv)
        except (*USER_ERRORS, UnknownWordError, TrainingError) as err:
            message = " ".join(line.strip() for line in str(err).splitlines())
            print(f"{command}: error: {message}", file=sys.stderr)
            raise SystemExit(1) from None

    return main_with_one_line_errors
