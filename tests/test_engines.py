"""SentenceEncoder(engine=...): the readable model's ONNX export run by ONNX Runtime and OpenVINO, and its
AOTInductor package.

References: sentence-transformers' own encode (float32, torch) for the embeddings and transformers'
BertModel for the hidden states, both at 1e-5: each runtime fuses and orders its float32 sums its own
way, so the bits differ, by about 1e-6 here; a wrong graph is off by far more (a missing LayerNorm or
a swapped mask moves all-MiniLM-L6-v2's vectors by 0.1 and more).
"""

from __future__ import annotations

import json

import pytest
import torch

import minibert
from conftest import assert_close
from minibert.speed.encode import SentenceEncoder
from minibert.speed.engines import ExportedModel

TEXTS = ["The bat flew out of the cave at night.", "He swung the bat and hit a home run.", "Paris.",
         "A much longer sentence, about a bat that flew out of a cave at night while it rained, to pad the others."]


@pytest.fixture(scope="module")
def exported(minilm_dir, tmp_path_factory):
    """One export of all-MiniLM-L6-v2, shared by both runtimes (the export takes about 10 s)."""
    from minibert.speed.onnx import export_onnx

    return export_onnx(minibert.BertModel.from_pretrained(minilm_dir), tmp_path_factory.mktemp("onnx") / "model.onnx")


@pytest.fixture(scope="module")
def reference(minilm_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_dir), device="cpu").encode(TEXTS, convert_to_tensor=True)


def encoder_on(minilm_dir, engine, onnx_file):
    encoder = SentenceEncoder.from_pretrained(minilm_dir, fast=False)
    encoder.model = ExportedModel(encoder.model, engine, onnx_file=onnx_file)
    return encoder


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_engine_embeddings_and_hidden_states_equal_the_references(engine, minilm_dir, exported, reference):
    import transformers

    encoder = encoder_on(minilm_dir, engine, exported)
    assert_close(f"{engine} embeddings", encoder.encode(TEXTS, batch_size=2), reference,
                 kind="engines vs sentence-transformers")
    batch = encoder.tokenizer(TEXTS)  # padded: the rows have different lengths
    with torch.no_grad():
        expected = transformers.BertModel.from_pretrained(minilm_dir)(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    assert_close(f"{engine} hidden states", encoder.model(**batch).last_hidden_state[real], expected[real],
                 kind="engines vs transformers")


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_engine_checks_its_inputs_as_the_model_does(engine, minilm_dir, exported):
    model = ExportedModel(minibert.BertModel.from_pretrained(minilm_dir), engine, onnx_file=exported)
    batch = minibert.Tokenizer.from_pretrained(minilm_dir)(["He swung the bat."])
    batch["attention_mask"][0, 1] = 2
    with pytest.raises(ValueError, match=r"attention_mask\[0, 1\] = 2; the mask holds 1 for a real token"):
        model(**batch)


def test_from_pretrained_exports_once_and_saves_the_readable_model(minilm_dir, tmp_path, reference):
    encoder = SentenceEncoder.from_pretrained(minilm_dir, engine="onnxruntime")
    assert isinstance(encoder.model, ExportedModel) and encoder.model.path.is_file()
    assert_close("onnxruntime encoder", encoder.encode(TEXTS), reference, kind="engines vs sentence-transformers")
    encoder.save_pretrained(tmp_path / "saved")  # the BertModel the file came from, as sentence-transformers reads it
    again = SentenceEncoder.from_pretrained(tmp_path / "saved", fast=False)
    assert_close("saved from an engine", again.encode(TEXTS), reference, kind="engines vs sentence-transformers")
    folder = encoder.model.path.parent
    del encoder
    import gc

    gc.collect()
    assert not folder.exists()  # the temporary export went with the encoder


def test_engine_options_are_checked(minilm_dir, monkeypatch):
    with pytest.raises(ValueError, match="engine must be one of torch, onnxruntime, openvino, aotinductor, not 'tensorrt'"):
        SentenceEncoder.from_pretrained(minilm_dir, engine="tensorrt")
    with pytest.raises(ValueError, match="engine='openvino' runs the float32 export in openvino: dtype, compile"):
        SentenceEncoder.from_pretrained(minilm_dir, engine="openvino", dtype=torch.bfloat16)
    import builtins

    real_import = builtins.__import__

    def without_openvino(name, *args, **kwargs):
        if name == "openvino":
            raise ImportError("No module named 'openvino'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_openvino)
    with pytest.raises(ImportError, match=r"engine='openvino' needs the openvino package: pip install .*\[bench\]"):
        ExportedModel(minibert.BertModel.from_pretrained(minilm_dir), "openvino", onnx_file="unused.onnx")


def test_aotinductor_package_equals_transformers_and_is_refused_for_another_model(tmp_path):
    """A small random BERT (compiling all-MiniLM-L6-v2 takes about 40 s; the graph is the same, only smaller)."""
    import transformers
    from hf_checkpoints import save_lesson_checkpoint

    from minibert.speed.engines import CompiledPackage

    folder = save_lesson_checkpoint("BertModel", tmp_path / "tiny")
    package = tmp_path / "tiny.pt2"
    encoder = SentenceEncoder.from_pretrained(folder, engine="aotinductor", package=package)
    assert isinstance(encoder.model, CompiledPackage) and package.is_file() and package.with_suffix(".json").is_file()
    reference = transformers.BertModel.from_pretrained(folder, attn_implementation="eager").eval()
    for texts in (["the bat flew out of the cave at night ."], ["he swung the bat", "paris", "where is the capital of france"]):
        batch = encoder.tokenizer(texts)  # batch 1, then 3 rows of different lengths: both axes are dynamic
        with torch.no_grad():
            expected = reference(**batch).last_hidden_state
        real = batch["attention_mask"].bool()
        assert_close("aotinductor hidden states", encoder.model(**batch).last_hidden_state[real], expected[real],
                     kind="engines vs transformers")
    again = SentenceEncoder.from_pretrained(folder, engine="aotinductor", package=package)  # loads, does not build
    assert torch.equal(again.encode(["paris"]), encoder.encode(["paris"]))
    other = save_lesson_checkpoint("BertModel", tmp_path / "other", seed=1)
    other_config = json.loads((other / "config.json").read_text())
    other_config["layer_norm_eps"] = 1e-6
    (other / "config.json").write_text(json.dumps(other_config))
    with pytest.raises(ValueError, match="tiny.pt2 was not compiled from this model: .*tiny.json holds another config"):
        SentenceEncoder.from_pretrained(other, engine="aotinductor", package=package)
    with pytest.raises(ValueError, match="package= is the aotinductor engine's file; engine='onnxruntime' takes none"):
        SentenceEncoder.from_pretrained(folder, engine="onnxruntime", package=package)
