"""What the README promises and the repository must keep true."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip() and not line.startswith("sh")]
    assert commands == ["make lesson", "make test"]


def test_ci_runs_the_readme_test_command():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make test" in lines


def test_debugger_breakpoint_line_is_the_one_described():
    line_number = int(re.search(r"break minibert/bert/model\.py:(\d+)", README).group(1))
    source = (ROOT / "minibert" / "bert" / "model.py").read_text().splitlines()
    assert source[line_number - 1].strip().startswith("probs_dropped = dropout(probs)")
    assert f"Line {line_number} is `probs_dropped = dropout(probs)`" in README
