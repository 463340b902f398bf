"""What the lesson's steps share: a heading, the model line, and loading a head model or saying what it needs."""

from __future__ import annotations

import argparse
from pathlib import Path

OUT_DIR = Path("out")  # pictures go here, relative to where the lesson runs


def heading(number: int, title: str) -> None:
    print(f"\n=== Step {number}: {title} ===")


def using(name: str) -> None:
    print(f"model: {name}")


def load_head_model(step: str, model_class, model, candidates):
    """The step's model, with the line that names it; or None after one line that says the step is
    skipped, which model it needs and the command that fetches it."""
    from minibert.app.defaults import ModelUnavailable, load

    try:
        loaded = load(model_class, model, candidates, offline_default=False)
    except ModelUnavailable as err:
        print(f"[{step} skipped] {err}")
        return None
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
