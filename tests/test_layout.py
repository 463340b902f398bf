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


def test_the_model_files_sort_in_reading_order():
    listed = [p.name for p in sorted((ROOT / "minibert" / "bert").glob("*.py")) if p.name != "__init__.py"]
    documented = [line.split()[0] for line in minibert.bert.__doc__.splitlines()[1:] if line.strip()]
    assert listed == documented
    assert documented.index("config.py") < documented.index("model.py") < documented.index("pretrained.py")


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
