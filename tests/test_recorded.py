"""minibert against outputs that transformers recorded earlier (tests/data/reference/).

The files were written by scripts/make_reference_outputs.py; each carries its provenance
(transformers and torch versions, date) in its safetensors metadata. This checks parity against
a fixed record as well as against the transformers installed today.
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import minibert
from conftest import assert_close

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
        out = model(**encoded, output_attentions=True)
    assert_close("last_hidden_state", out.last_hidden_state, tensors[f"{batch}.last_hidden_state"], kind="recorded")
    assert_close("pooler_output", out.pooler_output, tensors[f"{batch}.pooler_output"], kind="recorded")
    assert_close("attentions[0]", out.attentions[0], tensors[f"{batch}.attentions.0"], kind="recorded")
    assert_close("attentions[5]", out.attentions[5], tensors[f"{batch}.attentions.5"], kind="recorded")


@pytest.mark.parametrize("name,class_name", [("tiny_pretraining", "BertForPreTraining"),
                                             ("tiny_classifier", "BertForSequenceClassification")])
def test_tiny_heads_against_record(name, class_name):
    tensors, _ = read_record(REFERENCE / name / "outputs.safetensors")
    model = getattr(minibert, class_name).from_pretrained(REFERENCE / name)
    inputs = {k: tensors[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        out = model(**inputs)
    fields = [k for k in tensors if k not in inputs]
    assert fields
    for field in fields:
        assert_close(field, getattr(out, field), tensors[field], kind="recorded")
