"""minibert against outputs that transformers recorded earlier (tests/data/reference/).

The files were written by scripts/make_reference_outputs.py; each carries its provenance
(transformers and torch versions, date) in its safetensors metadata. This checks parity against
a fixed record as well as against the transformers installed today.

A record holds the last bits of the CPU it was made on (an AMD EPYC), and another CPU's kernels
sum in another order: under ATEN_CPU_CAPABILITY=avx2 the padded hidden states moved by 9e-6, close
to a fixed 1e-5. So each comparison allows 4 times minibert's own float32 rounding error here,
measured against minibert in float64 (conftest.rounding_bound); a real change to the model moves
these outputs by far more (a tanh GELU: 0.05).
"""

import copy
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import minibert
from conftest import assert_close, rounding_bound

REFERENCE = Path(__file__).parent / "data" / "reference"


def read_record(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def test_records_carry_provenance():
    for path in REFERENCE.rglob("*outputs.safetensors"):
        _, meta = read_record(path)
        assert meta["made_by"] == "scripts/make_reference_outputs.py", path
        assert meta["transformers_version"] and meta["torch_version"] and meta["date"], path


@pytest.mark.parametrize("batch", ["sentences", "pairs"])
def test_minilm_against_record(minilm_dir, batch):
    tensors, meta = read_record(REFERENCE / "minilm_outputs.safetensors")
    texts = json.loads(meta[batch])
    tokenizer = minibert.Tokenizer.from_pretrained(minilm_dir)
    encoded = tokenizer(texts) if batch == "sentences" else tokenizer([a for a, _ in texts], [b for _, b in texts])
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(encoded[key], tensors[f"{batch}.{key}"]), key

    model = minibert.BertModel.from_pretrained(minilm_dir)
    with torch.no_grad():
        out, exact = model(**encoded, output_attentions=True), copy.deepcopy(model).double()(**encoded, output_attentions=True)
    for name, ours, ours64 in (("last_hidden_state", out.last_hidden_state, exact.last_hidden_state),
                               ("pooler_output", out.pooler_output, exact.pooler_output),
                               ("attentions.0", out.attentions[0], exact.attentions[0]),
                               ("attentions.5", out.attentions[5], exact.attentions[5])):
        assert_close(name, ours, tensors[f"{batch}.{name}"], atol=rounding_bound(ours, ours64), kind="recorded")


@pytest.mark.parametrize("name,class_name", [("tiny_pretraining", "BertForPreTraining"),
                                             ("tiny_classifier", "BertForSequenceClassification")])
def test_tiny_heads_against_record(name, class_name):
    tensors, _ = read_record(REFERENCE / name / "outputs.safetensors")
    model = getattr(minibert, class_name).from_pretrained(REFERENCE / name)
    inputs = {k: tensors[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        out, exact = model(**inputs), copy.deepcopy(model).double()(**inputs)
    fields = [k for k in tensors if k not in inputs]
    assert fields
    for field in fields:
        ours = getattr(out, field)
        assert_close(field, ours, tensors[field], atol=rounding_bound(ours, getattr(exact, field)), kind="recorded")
