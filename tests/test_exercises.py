"""The exercises teach only if their checks are right: the solution passes, the stub says it is not
written, and every mistake in the tables fails at the tensor it names, with its hint.

The mistakes here are made on the solution's text, as a learner makes them, written to a file and checked
through that file; `check` then has to find, on its own, the first result that differs and which mistake
explains it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from minibert.exercises import EXERCISES, check
from minibert.exercises.core import SECONDS, error_in_bounds, mistaken, reference_results

ROOT = Path(__file__).resolve().parents[1]
NAMES = list(EXERCISES)
MISTAKES = [(name, mistake) for name, ex in EXERCISES.items() for mistake in ex.mistakes]


def test_there_are_at_least_30_mistakes_with_hints():
    assert len(MISTAKES) >= 30, f"{len(MISTAKES)} mistakes in the tables"
    assert all(mistake.hint for _, mistake in MISTAKES)


@pytest.mark.parametrize("name", NAMES)
def test_the_solution_passes(name, tmp_path):
    (tmp_path / f"{name}.py").write_text(EXERCISES[name].solution())
    result = check(name, directory=tmp_path)
    assert result.passed, result.message
    assert "Well done" in result.message


@pytest.mark.parametrize("name", NAMES)
def test_the_stub_is_not_written_yet(name, tmp_path):
    (tmp_path / f"{name}.py").write_text(EXERCISES[name].stub())
    result = check(name, directory=tmp_path)
    assert not result.passed
    assert "not written yet" in result.message and "\n" not in result.message


@pytest.mark.parametrize("name,mistake", MISTAKES, ids=[f"{name}: {m.name}" for name, m in MISTAKES])
def test_each_mistake_fails_at_its_tensor_with_its_hint(name, mistake, tmp_path):
    ex = EXERCISES[name]
    solution = ex.solution()
    assert mistake.old in solution, f"the mistake edits {mistake.old!r}, which the solution does not hold"
    (tmp_path / f"{name}.py").write_text(solution.replace(mistake.old, mistake.new, 1))
    result = check(name, directory=tmp_path)
    assert not result.passed
    assert result.tensor == mistake.tensor, result.message
    assert result.mistake == mistake.name and f"hint: {mistake.hint}" in result.message, result.message


@pytest.mark.parametrize("name,mistake", MISTAKES, ids=[f"{name}: {m.name}" for name, m in MISTAKES])
def test_each_mistake_is_far_beyond_the_bound(name, mistake):
    """The tolerance separates the mistakes from rounding: each is at least 10 times past it (or a shape,
    NaN or mask difference, which no tolerance hides)."""
    ex = EXERCISES[name]
    theirs = ex.run(mistaken(ex, mistake))[mistake.tensor]
    compare = ex.compare or error_in_bounds
    assert compare(theirs, reference_results(ex)[mistake.tensor]) >= 10


# -- a learner's file that goes wrong in other ways: one line, never a traceback ----------------------

BROKEN = {
    "raises": ("    raise ValueError('oops')\n", "raised ValueError (attention.py, line"),
    "wrong shape": ("    return AttentionSteps(query, key, value, query, query, query, query)\n",
                    "encoder.layer.0.attention.scores has shape"),
    "wrong dtype": ("    s = (query @ key.transpose(-2, -1) * head_size**-0.5).double()\n"
                    "    m = s + additive_mask\n    p = m.softmax(-1)\n"
                    "    return AttentionSteps(query, key, value, s, m, p, (dropout(p) @ value.double()))\n",
                    "attention() returned AttentionSteps whose scores is a float64 tensor of shape (2, 12, 20, 20), "
                    "expected a float32 tensor"),
    "syntax": ("    return (\n", "attention.py, line"),
    "odd import": ("    import no_such_module\n", "raised ModuleNotFoundError (attention.py, line"),
    "a tuple": ("    return (query, key)\n", "attention() returned tuple, expected AttentionSteps"),
    "None": ("    pass\n", "attention() returned NoneType, expected AttentionSteps"),
    "exit()": ("    exit()\n", "raised SystemExit (attention.py, line"),
    "numpy": ("    return AttentionSteps(*(t.numpy() for t in (query, key, value, query, query, query, query)))\n",
              "attention() returned AttentionSteps whose query is a float32 array"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_file_gets_one_line(case, tmp_path):
    body, words = BROKEN[case]
    stub = EXERCISES["attention"].stub()
    text = stub.replace('    raise NotImplementedError("attention: not written yet")\n',
                        "    head_size = query.size(-1)\n" + body)
    (tmp_path / "attention.py").write_text(text)
    result = check("attention", directory=tmp_path)
    assert not result.passed
    assert words in result.message, result.message
    assert "Traceback" not in result.message


def test_an_import_time_exit_or_missing_function_is_one_line(tmp_path):
    (tmp_path / "attention.py").write_text("import sys\nsys.exit(3)\n")
    assert "importing it raised SystemExit" in check("attention", directory=tmp_path).message
    (tmp_path / "attention.py").write_text("def other(): pass\n")
    assert "defines no function attention()" in check("attention", directory=tmp_path).message


@pytest.mark.parametrize("loop", ["    while True:\n        pass\n",
                                  "    while True:\n        try:\n            pass\n        except Exception:\n"
                                  "            pass\n"], ids=["plain", "catching Exception"])
def test_a_loop_that_never_ends_is_stopped(tmp_path, monkeypatch, loop):
    import minibert.exercises.core as core

    monkeypatch.setattr(core, "SECONDS", 1)
    stub = EXERCISES["pooler"].stub()
    (tmp_path / "pooler.py").write_text(stub.replace('    raise NotImplementedError("pooler: not written yet")\n', loop))
    result = check("pooler", directory=tmp_path)
    assert "was stopped" in result.message and "\n" not in result.message
    assert SECONDS >= 10  # the real limit leaves a slow machine room


def test_a_file_that_replaces_torch_cannot_change_the_answer(tmp_path):
    """Softmax over the queries, smuggled in by replacing torch.softmax at import: refused, not praised."""
    solution = EXERCISES["attention"].solution()
    (tmp_path / "attention.py").write_text(
        "import torch\n_softmax = torch.softmax\ntorch.softmax = lambda t, dim: _softmax(t, dim=-2)\n" + solution)
    import torch

    original = torch.softmax
    try:
        result = check("attention", directory=tmp_path)
    finally:
        torch.softmax = original
    assert not result.passed and "torch.softmax is no longer the original" in result.message


def test_a_correct_answer_that_writes_in_place_passes(tmp_path):
    """shortcut += ...: the recorded tensors are copies, so writing into an input changes no recorded result."""
    stub = EXERCISES["residual"].stub()
    body = "    shortcut += self.dropout(self.dense(intermediate))\n    return self.LayerNorm(shortcut)\n"
    (tmp_path / "residual.py").write_text(stub.replace('    raise NotImplementedError("residual: not written yet")\n', body))
    result = check("residual", directory=tmp_path)
    assert result.passed, result.message


def test_solution_keeps_the_learners_own_file(tmp_path):
    stub = EXERCISES["pooler"].stub()
    mine = stub.replace('    raise NotImplementedError("pooler: not written yet")\n', "    return hidden_states[:, 0]\n")
    (tmp_path / "D").mkdir()
    (tmp_path / "D" / "pooler.py").write_text(mine)
    run = minibert("solution", "pooler", "--dir", "D", cwd=tmp_path)
    assert run.returncode == 0 and "yours is kept as D/pooler.mine.py" in run.stdout
    assert (tmp_path / "D" / "pooler.mine.py").read_text() == mine


# -- the command line, as the acceptance states it ------------------------------------------

def minibert(*args, cwd):
    return subprocess.run([sys.executable, "-m", "minibert", "exercise", *args], capture_output=True, text=True,
                          cwd=cwd, env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
                          timeout=300)


def test_start_solution_check_then_drop_the_scaling(tmp_path):
    run = minibert("start", "attention", "--dir", "D", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    run = minibert("check", "attention", "--dir", "D", cwd=tmp_path)
    assert run.returncode == 1 and "not written yet" in run.stdout
    assert minibert("solution", "attention", "--dir", "D", cwd=tmp_path).returncode == 0
    run = minibert("check", "attention", "--dir", "D", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    listed = minibert("list", "--dir", "D", cwd=tmp_path).stdout
    assert "passed   attention" in listed
    path = tmp_path / "D" / "attention.py"
    path.write_text(path.read_text().replace(" * head_size**-0.5", ""))
    run = minibert("check", "attention", "--dir", "D", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stdout.startswith("attention: encoder.layer.0.attention.scores (layer 0) differs by up to")
    assert "hint:" in run.stdout and "Traceback" not in run.stdout + run.stderr
    assert "passed   attention" not in minibert("list", "--dir", "D", cwd=tmp_path).stdout


def test_start_does_not_overwrite_without_force(tmp_path):
    assert minibert("start", "pooler", cwd=tmp_path).returncode == 0
    run = minibert("start", "pooler", cwd=tmp_path)
    assert run.returncode == 1 and "pass --force" in run.stderr and "Traceback" not in run.stderr
    assert minibert("start", "pooler", "--force", cwd=tmp_path).returncode == 0


def test_hint_lists_the_mistakes(tmp_path):
    run = minibert("hint", "attention", cwd=tmp_path)
    assert run.returncode == 0
    for mistake in EXERCISES["attention"].mistakes:
        assert mistake.hint in run.stdout


def test_every_exercise_is_in_the_lessons_order():
    from minibert.exercises.catalog import ORDER

    assert [name for name in ORDER if name in EXERCISES] == NAMES
    assert set(NAMES) <= set(ORDER)


def test_the_docs_give_the_number_of_mistakes():
    assert f"There are {len(MISTAKES)} mistakes in all." in (ROOT / "docs" / "exercises.md").read_text()
