"""What the lesson's steps share: a heading, the model line, and the 'needs weights' line."""

from __future__ import annotations

import argparse
from pathlib import Path

OUT_DIR = Path("out")  # pictures go here, relative to where the lesson runs


def heading(number: int, title: str) -> None:
    print(f"\n=== Step {number}: {title} ===")


def using(name: str) -> None:
    print(f"model: {name}")


def needs_weights(step: str, err: Exception) -> None:
    """One line: the step is skipped, which model it needs, and the command that fetches it."""
    print(f"[{step} skipped] {err}")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default=None,
                   help="a checkpoint folder or Hub repo id (default: the lesson's model, or its offline stand-in)")
    return p


def picture_path(name: str, out_dir: Path | None = None) -> Path:
    folder = out_dir or OUT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
