"""What a training run leaves behind to look at: a JSONL line per step, and the loss curve as a PNG.

    >>> log = JsonlLog(tmp / "log.jsonl")
    >>> log.write({"step": 1, "loss": 2.5})
    >>> log.write({"step": 2, "loss": 2.0})
    >>> read_log(tmp / "log.jsonl")
    [{'step': 1, 'loss': 2.5}, {'step': 2, 'loss': 2.0}]
"""

from __future__ import annotations

import json
import math
from pathlib import Path


class JsonlLog:
    """Appends one JSON object per line and flushes it, so the file is readable while training runs."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def rewind(self, step: int) -> None:
        """Keep the records of steps up to `step` and drop the later ones: a run resumed from its
        checkpoint at `step` does the later steps again, and would otherwise log them twice."""
        from ..bert.files import write_atomically

        if not self.path.exists():
            return
        kept = [record for record in read_log(self.path, torn_end=True) if record["step"] <= step]
        write_atomically(self.path, "".join(json.dumps(record) + "\n" for record in kept).encode("utf-8"))


def read_log(path: str | Path, torn_end: bool = False) -> list[dict]:
    """The records of a log.jsonl. With `torn_end`, a last line cut short (a run killed while writing
    it) is left out; any other line that is not JSON is an error naming the file and the line."""
    lines = [(number, line) for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1)
             if line.strip()]
    records = []
    for number, line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if torn_end and number == lines[-1][0]:
                break
            raise ValueError(f"{path}, line {number}: not a JSON record ({err.msg})") from None
    return records


def plot_loss_curve(log_path: str | Path, png_path: str | Path, title: str = "training loss") -> Path:
    """The training loss per step (and a running mean), plus each evaluation's loss, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = read_log(log_path)
    train = [(r["step"], r["loss"]) for r in records if "loss" in r and math.isfinite(r["loss"])]
    evals = [(r["step"], r["eval"]["loss"]) for r in records if "eval" in r and "loss" in r["eval"]]
    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)  # draws to a PNG, needs no display
    axes = figure.add_subplot()
    if train:
        steps, losses = zip(*train)
        axes.plot(steps, losses, color="0.75", linewidth=0.8, label="loss per step")
        window = max(1, len(losses) // 50)
        smooth = [sum(losses[max(0, i - window + 1):i + 1]) / len(losses[max(0, i - window + 1):i + 1])
                  for i in range(len(losses))]
        axes.plot(steps, smooth, color="C0", label=f"running mean of {window}")
    if evals:
        axes.plot(*zip(*evals), "o-", color="C3", label="held-out loss")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    return Path(png_path)
