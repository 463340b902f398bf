"""No import cycles among the modules of minibert/, glove/ and tasks/.

A cycle means that neither module can be read, tested or moved without the other, and that which one
Python finishes loading first depends on who imported whom. Every import counts: at the top of a
module and inside a function (a function-level import is a real dependency, only a later one),
absolute and relative. A module importing the package it sits in does not count: a package's
__init__ imports its modules, and they may use what it holds.

The graph is read from the source with `ast`, so nothing is imported here; where it finds a cycle the
test names each import that makes it, with its file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("minibert", "glove", "tasks")


def module_files(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> its file, for every .py under the packages (a package is its __init__.py)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_names(module: str, path: Path) -> list[tuple[str, int]]:
    """(dotted name, line) of everything `module` imports, anywhere in the file: for `from X import a`,
    both X and X.a (a may be a submodule); relative imports resolved against the module's package."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x: level 1 is the package itself, each further dot one up
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            names.append((source, node.lineno))
            names += [(f"{source}.{alias.name}", node.lineno) for alias in node.names]
    return names


def import_graph(root: Path = ROOT, packages=PACKAGES) -> dict[str, dict[str, list[int]]]:
    """module -> {module it imports: the lines that import it}, among the packages' own modules."""
    modules = module_files(root, packages)
    graph: dict[str, dict[str, list[int]]] = {name: {} for name in modules}
    for name, path in modules.items():
        for target, line in imported_names(name, path):
            own_package = name.startswith(target + ".")  # glove.store importing glove
            if target in modules and target != name and not own_package:
                graph[name].setdefault(target, []).append(line)
    return graph


def reachable(graph: dict[str, dict[str, list[int]]], start: str) -> set[str]:
    """Every module that `start` imports, directly or through others (`start` itself only via a cycle)."""
    seen, todo = set(), list(graph[start])
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += graph[module]
    return seen


def cycles(graph: dict[str, dict[str, list[int]]]) -> list[list[str]]:
    """The strongly connected components of more than one module: each a group in which every module
    imports every other, directly or through the group. Sorted, each group sorted."""
    reach = {module: reachable(graph, module) for module in graph}
    groups = {tuple(sorted({m} | {other for other in reach[m] if m in reach[other]})) for m in graph if m in reach[m]}
    return sorted(list(group) for group in groups)


def describe(graph: dict[str, dict[str, list[int]]], group: list[str], root: Path = ROOT,
             packages=PACKAGES) -> str:
    """A cycle as the imports that make it: 'a -> b (a/file.py:12)', one per line."""
    files = module_files(root, packages)
    lines = [" <-> ".join(group)]
    for module in group:
        for target, at in sorted(graph[module].items()):
            if target in group:
                where = ", ".join(f"{files[module].relative_to(root)}:{line}" for line in at)
                lines.append(f"    {module} -> {target} ({where})")
    return "\n".join(lines)


def test_no_import_cycles():
    graph = import_graph()
    found = cycles(graph)
    assert not found, ("import cycles (move the function that one side needs to where it belongs):\n"
                       + "\n".join(describe(graph, group) for group in found))


# ----- the walk itself, on a tree whose imports are known --------------------------------------------

def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_walk_counts_every_kind_of_import(tmp_path):
    write_tree(tmp_path, {
        "pkg/__init__.py": "from .a import f\n",  # the package's own imports
        "pkg/a.py": "from . import b\nimport pkg\n",  # a submodule by `from . import`; its own package
        "pkg/b.py": "def g():\n    from .sub.c import h\n",  # inside a function
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "from ..a import f\nfrom pkg import b\n",  # two dots; absolute `from pkg import b`
        "pkg/d.py": "import pkg.sub.c\nimport os\n",  # absolute `import`; outside the packages
    })
    graph = import_graph(tmp_path, ("pkg",))
    assert graph == {
        "pkg": {"pkg.a": [1]},
        "pkg.a": {"pkg.b": [1]},
        "pkg.b": {"pkg.sub.c": [2]},
        "pkg.sub": {},
        "pkg.sub.c": {"pkg.a": [1], "pkg.b": [2]},
        "pkg.d": {"pkg.sub.c": [1]},
    }
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]  # pkg and pkg.d only import into it
    assert describe(graph, ["pkg.a", "pkg.b"], tmp_path, ("pkg",)).splitlines() == [
        "pkg.a <-> pkg.b", "    pkg.a -> pkg.b (pkg/a.py:1)"]


def test_the_walk_reads_this_tree():
    """Imports this tree is known to have: at the top of a module, relative, and inside a function."""
    graph = import_graph()
    assert "glove.formats" in graph["glove.store"]  # from . import formats
    assert "minibert.training.loop" in graph["tasks._common"]  # inside check_out
    assert len(graph) > 40
