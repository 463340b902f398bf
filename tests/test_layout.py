"""The tree keeps the promises its layout makes: packages that stand alone, steps in lesson order,
typed forwards, and memory that matches the comments."""

import inspect
import subprocess
import sys
import weakref
from pathlib import Path

import torch

import minibert
from minibert.bert import model as model_module

ROOT = Path(__file__).resolve().parents[1]


def test_glove_imports_nothing_from_minibert():
    modules = [f"glove.{p.stem}" for p in (ROOT / "glove").glob("*.py") if p.stem != "__init__"]
    code = ("import sys, importlib\n"
            f"for name in ['glove'] + {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m == 'minibert' or m.startswith('minibert.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_lesson_steps_sort_in_the_order_the_lesson_runs_them():
    from tasks import lesson

    files = sorted(p.stem for p in (ROOT / "tasks").glob("step*.py"))
    assert [step.__name__.rsplit(".", 1)[1] for step in lesson.STEPS] == files
    assert [int(name[4]) for name in files] == list(range(1, len(files) + 1))


def test_the_model_package_names_every_file():
    listed = [p.name for p in sorted((ROOT / "minibert" / "bert").glob("*.py")) if p.name != "__init__.py"]
    documented = [line.split()[0] for line in minibert.bert.__doc__.split("\n\n", 1)[1].splitlines() if line.strip()]
    assert listed == documented


def lines_a_forward_pass_runs(model, **inputs) -> dict[str, set[int]]:
    """The source lines of minibert a learner reads to follow one call of `model`: every function that runs,
    the whole class of every method that runs (its __init__ says what each self.x is), and the class of every
    value a minibert function returns (AttentionSteps, the output dataclasses). By file under minibert/."""
    import collections
    import importlib

    package = Path(minibert.__file__).parent
    ran, built = set(), set()

    def profile(frame, event, arg):
        if not frame.f_code.co_filename.startswith(str(package)):
            return
        if event == "call":
            ran.add(frame.f_code)
        elif event == "return":
            for value in (arg, *(arg if isinstance(arg, tuple) else ())):
                if type(value).__module__.startswith("minibert."):
                    built.add(type(value))

    sys.setprofile(profile)
    try:
        model(**inputs)
    finally:
        sys.setprofile(None)
    lines = collections.defaultdict(set)
    for code in ran:
        path = Path(code.co_filename).relative_to(package)
        module = importlib.import_module("minibert." + ".".join(path.with_suffix("").parts))
        owner = getattr(module, code.co_qualname.split(".")[0])
        source, start = inspect.getsourcelines(owner if inspect.isclass(owner) else code)
        lines[str(path)].update(range(start, start + len(source)))
    for cls in built:
        source, start = inspect.getsourcelines(cls)
        lines[str(Path(inspect.getsourcefile(cls)).relative_to(package))].update(range(start, start + len(source)))
    return lines


def test_one_forward_pass_reads_in_three_files_and_under_450_lines():
    """BertForMaskedLM's forward, with labels: the model, its outputs and its loss, in model.py, outputs.py and
    losses.py. checks.py runs too (check_inputs, check_class_labels), but is kept out of the reading on purpose:
    one call in prepare_inputs, one per head, each named for what it refuses."""
    config = minibert.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=37)
    model = minibert.BertForMaskedLM(config).eval()
    lines = lines_a_forward_pass_runs(model, input_ids=torch.tensor([[2, 5, 7, 3, 0]]),
                                      attention_mask=torch.tensor([[1, 1, 1, 1, 0]]),
                                      labels=torch.tensor([[-100, 9, -100, -100, -100]]))
    read = {path: len(numbers) for path, numbers in lines.items() if path != "bert/checks.py"}
    print(f"one forward pass of BertForMaskedLM: {sum(read.values())} lines in {len(read)} files: {read}")
    assert sorted(read) == ["bert/losses.py", "bert/model.py", "bert/outputs.py"]
    assert sum(read.values()) <= 450
    assert set(lines) - set(read) == {"bert/checks.py"}  # the checks do run


def test_the_model_holds_no_input_validation():
    """model.py computes; every refusal of a caller's input is in checks.py, so no raise in model.py."""
    import ast

    tree = ast.parse((ROOT / "minibert" / "bert" / "model.py").read_text())
    assert [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Raise)] == []


def test_one_import_convention_in_both_packages():
    """Inside minibert/ and glove/, a module imports its siblings relatively (`from .store import ...`), and
    never a sibling's private `_name`: a helper another module needs is part of its module's surface."""
    import ast

    found = []
    for package in ("minibert", "glove"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                        and node.module.split(".")[0] == package:
                    found.append(f"{where}: absolute self-import from {node.module}")
                if isinstance(node, ast.Import) and any(a.name.split(".")[0] == package for a in node.names):
                    found.append(f"{where}: absolute self-import")
                if isinstance(node, ast.ImportFrom) and node.level > 0:
                    found += [f"{where}: imports the private {a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == []


def test_every_forward_has_type_hints():
    import importlib
    import pkgutil

    modules = [importlib.import_module(info.name)
               for info in pkgutil.walk_packages(minibert.__path__, "minibert.") if not info.ispkg]
    assert model_module in modules and len(modules) > 10
    untyped = []
    for module in modules:
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            if issubclass(cls, torch.nn.Module) and "forward" in cls.__dict__:
                signature = inspect.signature(cls.forward)
                params = [p for p in signature.parameters.values() if p.name != "self"]
                if signature.return_annotation is inspect.Signature.empty or any(
                        p.annotation is inspect.Parameter.empty for p in params):
                    untyped.append(f"{module.__name__}.{name}.forward")
    assert untyped == []


def tiny_model():
    config = minibert.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                                 intermediate_size=20, max_position_embeddings=32)
    torch.manual_seed(0)
    return minibert.BertModel(config).eval()


def alive_when_the_last_layer_starts(watched, last_layer, kept, runs):
    """Run each of `runs` in turn; as `last_layer` starts, count how many of the tensors `kept(output)`
    picked from the `watched` modules' outputs (in this run) are still alive. Returns (counts, outputs)."""
    refs: list[weakref.ref] = []
    counts: list[int] = []
    hooks = [module.register_forward_hook(lambda module, inputs, output: refs.append(weakref.ref(kept(output))))
             for module in watched]
    hooks.append(last_layer.register_forward_pre_hook(
        lambda module, inputs: counts.append(sum(ref() is not None for ref in refs))))
    outputs = []
    try:
        with torch.no_grad():
            for run in runs:
                refs.clear()
                outputs.append(run())
    finally:
        for hook in hooks:
            hook.remove()
    return counts, outputs


def test_attention_probabilities_are_not_kept_unless_asked_for():
    """While the last layer runs, the earlier layers' (B, nh, T, T) probabilities must already be
    freed, unless output_attentions=True asked for them."""
    model = tiny_model()
    ids = torch.randint(0, 50, (2, 9))
    counts, (_, out) = alive_when_the_last_layer_starts(
        [layer.attention.self for layer in model.encoder.layer], model.encoder.layer[-1],
        lambda output: output[1].probs,  # this layer's (B, nh, T, T), from AttentionSteps
        [lambda: model(ids), lambda: model(ids, output_attentions=True)])
    assert counts == [0, 2]
    assert len(out.attentions) == 3


def test_the_fast_path_keeps_no_layer_output_unless_asked_for():
    """While the last layer runs, the earlier layers' (B, T, H) outputs must already be freed, unless
    output_hidden_states=True asked for them (it once kept them all, whatever was asked)."""
    fast = minibert.FastBertModel.from_model(tiny_model())
    ids = torch.randint(0, 50, (2, 9))
    counts, (_, out) = alive_when_the_last_layer_starts(
        fast.layer, fast.layer[-1], lambda output: output,
        [lambda: fast(ids), lambda: fast(ids, output_hidden_states=True)])
    assert counts == [1, 2]  # the last input only; with hidden states, every earlier output
    assert len(out.hidden_states) == 4
