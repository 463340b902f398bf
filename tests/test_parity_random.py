"""Every head class against transformers, on small random checkpoints in every file layout.

transformers builds each model with random weights; the weights are written the way Hugging Face
writes them today and the way the original checkpoints were written; minibert loads the files
and must reproduce every output of the transformers model to 1e-5.
"""

import pytest
import torch

import minibert
from conftest import assert_close
from hf_checkpoints import (CONFIGS, current_state, legacy_state_dict, make_hf_model, random_inputs,
                            save_current, save_legacy_bin, save_safetensors, save_sharded, toggle_prefix)

MODELS = [
    ("BertModel", 2),
    ("BertForPreTraining", 2),
    ("BertForMaskedLM", 2),
    ("BertForNextSentencePrediction", 2),
    ("BertForSequenceClassification", 1),
    ("BertForSequenceClassification", 3),
]
LAYOUTS = ("current", "legacy_bin", "legacy_prefix_toggled", "prefix_toggled", "sharded")


def write_layout(model, layout: str, folder):
    if layout == "current":  # transformers' save_pretrained
        return save_current(model, folder)
    if layout == "legacy_bin":  # gamma/beta, position_ids, decoder weight and bias stored, .bin
        return save_legacy_bin(model, folder)
    if layout == "legacy_prefix_toggled":  # the same legacy names, with the bert. prefix flipped
        return save_safetensors(toggle_prefix(legacy_state_dict(model)), model.config, folder)
    if layout == "prefix_toggled":  # today's names, with the bert. prefix flipped
        state = current_state(save_current(model, folder / "source"))
        return save_safetensors(toggle_prefix(state), model.config, folder / "toggled")
    if layout == "sharded":  # model.safetensors.index.json and two shards
        state = current_state(save_current(model, folder / "source"))
        return save_sharded(state, model.config, folder / "sharded")
    raise ValueError(layout)


def output_fields(class_name: str) -> tuple[str, ...]:
    if class_name == "BertModel":
        return ("last_hidden_state", "pooler_output")
    if class_name == "BertForPreTraining":
        return ("prediction_logits", "seq_relationship_logits")
    if class_name == "BertForQuestionAnswering":
        return ("start_logits", "end_logits")
    return ("logits",)


def compare_outputs(class_name, ours, reference, kind):
    for field in output_fields(class_name):
        assert_close(field, getattr(ours, field), getattr(reference, field), kind=kind)
    assert len(ours.hidden_states) == len(reference.hidden_states)
    for i, (a, b) in enumerate(zip(ours.hidden_states, reference.hidden_states)):
        assert_close(f"hidden_states[{i}]", a, b, kind=kind)
    assert len(ours.attentions) == len(reference.attentions)
    for i, (a, b) in enumerate(zip(ours.attentions, reference.attentions)):
        assert_close(f"attentions[{i}]", a, b, kind=kind)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("class_name,num_labels", MODELS, ids=[f"{c}-{n}" for c, n in MODELS])
@pytest.mark.parametrize("config_name", CONFIGS)
def test_random_checkpoint_matches_transformers(tmp_path, config_name, class_name, num_labels, layout):
    reference = make_hf_model(class_name, num_labels=num_labels, **CONFIGS[config_name])
    folder = write_layout(reference, layout, tmp_path)

    model = getattr(minibert, class_name).from_pretrained(folder)
    assert not model.training
    assert model.load_report.unused == [] and model.load_report.initialised == []
    if class_name in ("BertForPreTraining", "BertForMaskedLM"):
        # Tied: the decoder reads the word-embedding matrix itself, one tensor.
        assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight

    inputs = random_inputs(reference.config)
    with torch.no_grad():
        ours = model(**inputs, output_attentions=True, output_hidden_states=True)
        expected = reference(**inputs, output_attentions=True, output_hidden_states=True)
    compare_outputs(class_name, ours, expected, kind="random checkpoints")
    if class_name == "BertForSequenceClassification":
        assert ours.logits.shape == (3, num_labels)


def test_outputs_are_none_unless_asked(tmp_path):
    reference = make_hf_model("BertForMaskedLM")
    model = minibert.BertForMaskedLM.from_pretrained(save_current(reference, tmp_path))
    with torch.no_grad():
        out = model(**random_inputs(reference.config))
    assert out.hidden_states is None and out.attentions is None


@pytest.mark.parametrize("target", ["BertModel", "BertForMaskedLM", "BertForNextSentencePrediction"])
def test_pretraining_checkpoint_into_smaller_classes(tmp_path, target):
    """A pre-training checkpoint (both heads) loads into a class with fewer heads; the extra head
    tensors are dropped and reported, and the outputs equal the matching part of the full model."""
    reference = make_hf_model("BertForPreTraining")
    folder = save_legacy_bin(reference, tmp_path)
    model = getattr(minibert, target).from_pretrained(folder)
    assert model.load_report.unused, "the dropped head tensors are reported"

    inputs = random_inputs(reference.config)
    with torch.no_grad():
        ours = model(**inputs)
        full = reference(**inputs, output_hidden_states=True)
        base = reference.bert(**inputs)
    if target == "BertModel":
        assert_close("last_hidden_state", ours.last_hidden_state, base.last_hidden_state, kind="random checkpoints")
        assert_close("pooler_output", ours.pooler_output, base.pooler_output, kind="random checkpoints")
    elif target == "BertForMaskedLM":
        assert_close("logits", ours.logits, full.prediction_logits, kind="random checkpoints")
    else:
        assert_close("logits", ours.logits, full.seq_relationship_logits, kind="random checkpoints")


def test_position_ids_argument(tmp_path):
    reference = make_hf_model("BertModel")
    model = minibert.BertModel.from_pretrained(save_current(reference, tmp_path))
    inputs = random_inputs(reference.config)
    inputs["position_ids"] = torch.arange(5, 5 + inputs["input_ids"].shape[1]).expand_as(inputs["input_ids"])
    with torch.no_grad():
        assert_close("last_hidden_state", model(**inputs).last_hidden_state,
                     reference(**inputs).last_hidden_state, kind="random checkpoints")


def test_defaults_for_mask_and_token_types(tmp_path):
    reference = make_hf_model("BertModel")
    model = minibert.BertModel.from_pretrained(save_current(reference, tmp_path))
    input_ids = random_inputs(reference.config)["input_ids"]
    with torch.no_grad():
        assert_close("last_hidden_state", model(input_ids).last_hidden_state,
                     reference(input_ids).last_hidden_state, kind="random checkpoints")
