"""Losses and gradients against transformers, and saving a model that transformers reads back.

Every head takes labels as transformers' heads do. On the random checkpoints of the parity tests,
with dropout off, the loss must match transformers' to 1e-6 (relative) and every parameter's
gradient to 1e-5, for padded batches of sentence pairs.
"""

import json

import pytest
import torch

import minibert
from conftest import assert_close
from hf_checkpoints import CONFIGS, make_hf_model, random_inputs, save_current
from test_parity_random import LAYOUTS, write_layout

# (class, num_labels, problem_type or None, how to make labels)
HEADS = [
    ("BertForMaskedLM", 2, None, "mlm"),
    ("BertForNextSentencePrediction", 2, None, "nsp"),
    ("BertForPreTraining", 2, None, "pretraining"),
    ("BertForSequenceClassification", 1, None, "regression"),
    ("BertForSequenceClassification", 3, None, "single"),
    ("BertForSequenceClassification", 3, "multi_label_classification", "multi"),
]
IDS = [f"{c}-{kind}" for c, _, _, kind in HEADS]


def make_labels(kind: str, inputs: dict, config, num_labels: int, seed: int = 7) -> dict:
    g = torch.Generator().manual_seed(seed)
    B, T = inputs["input_ids"].shape
    if kind in ("mlm", "pretraining"):
        picked = (torch.rand(B, T, generator=g) < 0.3) & inputs["attention_mask"].bool()
        picked[:, 1] = True  # at least one predicted position per row
        labels = torch.where(picked, torch.randint(0, config.vocab_size, (B, T), generator=g), torch.tensor(-100))
        if kind == "mlm":
            return {"labels": labels}
        return {"labels": labels, "next_sentence_label": torch.randint(0, 2, (B,), generator=g)}
    if kind == "nsp":
        return {"labels": torch.randint(0, 2, (B,), generator=g)}
    if kind == "regression":
        return {"labels": torch.randn(B, generator=g)}
    if kind == "single":
        return {"labels": torch.randint(0, num_labels, (B,), generator=g)}
    return {"labels": torch.randint(0, 2, (B, num_labels), generator=g).float()}


def gradients(model) -> dict[str, torch.Tensor]:
    return {name: p.grad for name, p in model.named_parameters() if p.grad is not None}


def check_loss_and_gradients(model, reference, inputs, labels, parameters=None):
    """`model` is a minibert model, or a function calling one (then `parameters` is that model)."""
    parameters = parameters if parameters is not None else model
    ours = model(**inputs, **labels)
    expected = reference(**inputs, **labels)
    ours.loss.backward()
    expected.loss.backward()
    relative = abs(ours.loss.item() - expected.loss.item()) / abs(expected.loss.item())
    assert relative <= 1e-6, f"loss {ours.loss.item()} vs transformers {expected.loss.item()}"
    assert_close("loss", ours.loss, expected.loss, atol=1e-6 * abs(expected.loss.item()), kind="loss vs transformers")
    theirs = gradients(reference)
    # transformers' decoder bias is the same tensor as cls.predictions.bias; it may be listed under either name.
    theirs.setdefault("cls.predictions.bias", theirs.get("cls.predictions.decoder.bias"))
    mine = gradients(parameters)
    assert set(mine) == {name for name, p in parameters.named_parameters()}, "every parameter gets a gradient"
    for name, grad in mine.items():
        assert theirs.get(name) is not None, f"transformers has no gradient for {name}"
        assert_close(f"grad {name}", grad, theirs[name], atol=1e-5, kind="gradients vs transformers")


@pytest.mark.parametrize("class_name,num_labels,problem_type,kind", HEADS, ids=IDS)
@pytest.mark.parametrize("config_name", CONFIGS)
def test_loss_and_gradients_match_transformers(tmp_path, config_name, class_name, num_labels, problem_type, kind):
    reference = make_hf_model(class_name, num_labels=num_labels, **CONFIGS[config_name])
    reference.config.problem_type = problem_type
    model = getattr(minibert, class_name).from_pretrained(save_current(reference, tmp_path),
                                                          problem_type=problem_type)
    inputs = random_inputs(reference.config)  # padded rows of different lengths, A/B token types
    check_loss_and_gradients(model, reference, inputs, make_labels(kind, inputs, reference.config, num_labels))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("class_name,num_labels,problem_type,kind", HEADS, ids=IDS)
def test_loss_and_gradients_in_every_layout(tmp_path, layout, class_name, num_labels, problem_type, kind):
    reference = make_hf_model(class_name, num_labels=num_labels)
    reference.config.problem_type = problem_type
    model = getattr(minibert, class_name).from_pretrained(write_layout(reference, layout, tmp_path),
                                                          problem_type=problem_type)
    inputs = random_inputs(reference.config, seed=3)
    check_loss_and_gradients(model, reference, inputs, make_labels(kind, inputs, reference.config, num_labels))


def test_loss_is_none_without_labels(tmp_path):
    reference = make_hf_model("BertForMaskedLM")
    model = minibert.BertForMaskedLM.from_pretrained(save_current(reference, tmp_path))
    out = model(**random_inputs(reference.config))
    assert out.loss is None and out[0] is out.logits


def test_problem_type_is_inferred_as_transformers_infers_it(tmp_path):
    """num_labels 1 -> regression; integer labels -> single-label; float (B, L) -> multi-label."""
    reference = make_hf_model("BertForSequenceClassification", num_labels=3)
    model = minibert.BertForSequenceClassification.from_pretrained(save_current(reference, tmp_path))
    inputs = random_inputs(reference.config)
    for kind in ("single", "multi"):
        reference.config.problem_type = None  # transformers writes its inference into the config; undo it
        labels = make_labels(kind, inputs, reference.config, 3)
        with torch.no_grad():
            assert_close(kind, model(**inputs, **labels).loss, reference(**inputs, **labels).loss, atol=1e-6,
                         kind="loss vs transformers")
    assert model.config.problem_type is None, "minibert does not rewrite its config during forward"


# -- bad labels: named, with the expected and the found ---------------------------------------------

@pytest.fixture(scope="module")
def mlm(tmp_path_factory):
    return minibert.BertForMaskedLM.from_pretrained(save_current(make_hf_model("BertForMaskedLM"),
                                                                 tmp_path_factory.mktemp("mlm")))


def test_labels_of_the_wrong_shape(mlm):
    inputs = random_inputs(mlm.config)
    with pytest.raises(ValueError, match=r"labels has shape \(3, 10\), expected \(3, 11\)"):
        mlm(**inputs, labels=torch.zeros(3, 10, dtype=torch.long))


def test_labels_of_the_wrong_dtype(mlm):
    with pytest.raises(TypeError, match="labels must hold integer class indices.*float32"):
        mlm(**random_inputs(mlm.config), labels=torch.zeros(3, 11))


def test_label_values_outside_the_classes(mlm):
    labels = torch.full((3, 11), -100)
    labels[1, 4] = mlm.config.vocab_size
    with pytest.raises(ValueError, match=r"labels\[1, 4\] = 99 is not a class in \[0, 99\) nor -100"):
        mlm(**random_inputs(mlm.config), labels=labels)
    labels[1, 4] = -5
    with pytest.raises(ValueError, match="= -5 is not a class"):
        mlm(**random_inputs(mlm.config), labels=labels)


def test_pretraining_needs_both_labels(tmp_path):
    model = minibert.BertForPreTraining.from_pretrained(save_current(make_hf_model("BertForPreTraining"), tmp_path))
    inputs = random_inputs(model.config)
    with pytest.raises(ValueError, match="needs both labels"):
        model(**inputs, labels=torch.full((3, 11), -100))


def test_classifier_labels_checked(tmp_path):
    model = minibert.BertForSequenceClassification.from_pretrained(
        save_current(make_hf_model("BertForSequenceClassification", num_labels=3), tmp_path))
    inputs = random_inputs(model.config)
    with pytest.raises(ValueError, match=r"labels\[2\] = 3 is not a class in \[0, 3\)"):
        model(**inputs, labels=torch.tensor([0, 1, 3]))
    with pytest.raises(ValueError, match=r"expected \(3, 3\) for multi-label"):
        model(**inputs, labels=torch.ones(3, 2))


# -- save_pretrained: transformers reads it back, identically ----------------------------------------

@pytest.mark.parametrize("class_name", ["BertModel", "BertForPreTraining", "BertForMaskedLM",
                                        "BertForNextSentencePrediction", "BertForSequenceClassification"])
def test_save_pretrained_reads_back_identically_in_transformers_and_minibert(tmp_path, class_name):
    import transformers
    from safetensors import safe_open

    reference = make_hf_model(class_name, num_labels=3)
    model = getattr(minibert, class_name).from_pretrained(save_current(reference, tmp_path / "source"))
    saved = model.save_pretrained(tmp_path / "saved")

    config = json.loads((saved / "config.json").read_text())
    assert config["architectures"] == [class_name] and config["model_type"] == "bert"
    with safe_open(str(saved / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "cls.predictions.decoder.weight" not in keys, "the tied decoder is stored once, as the embeddings"
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "model.safetensors"], "no temporary files left"

    inputs = random_inputs(reference.config)
    theirs = getattr(transformers, class_name).from_pretrained(saved, attn_implementation="eager").eval()
    again = getattr(minibert, class_name).from_pretrained(saved)
    with torch.no_grad():
        ours, read_by_hf, reloaded = model(**inputs), theirs(**inputs), again(**inputs)
    for a, b, c in zip(ours.to_tuple(), read_by_hf.to_tuple(), reloaded.to_tuple()):
        assert torch.equal(a, b), "transformers' reading of the saved folder differs"
        assert torch.equal(a, c), "minibert's reading of the saved folder differs"


def test_a_failed_save_leaves_the_previous_file(tmp_path, monkeypatch):
    import safetensors.torch

    model = minibert.BertModel.from_pretrained(save_current(make_hf_model("BertModel"), tmp_path / "source"))
    model.save_pretrained(tmp_path / "out")
    before = (tmp_path / "out" / "model.safetensors").read_bytes()

    def crash(tensors, path, metadata=None):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise KeyboardInterrupt  # the user pressed Ctrl-C in the middle of the write

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        model.save_pretrained(tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.json", "model.safetensors"]


def test_from_pretrained_changes_the_labels_and_dtype(tmp_path):
    folder = save_current(make_hf_model("BertForSequenceClassification", num_labels=2), tmp_path)
    model = minibert.BertForSequenceClassification.from_pretrained(
        folder, init_new_head=True, id2label={0: "no", 1: "maybe", 2: "yes"}, problem_type="single_label_classification",
        dtype=torch.float64)
    assert model.classifier.weight.shape == (3, 32) and model.dtype == torch.float64
    assert model.config.label2id == {"no": 0, "maybe": 1, "yes": 2}
    assert set(model.load_report.initialised) == {"classifier.weight", "classifier.bias"}
    four = minibert.BertForSequenceClassification.from_pretrained(folder, init_new_head=True, num_labels=4)
    assert four.config.num_labels == 4 and four.classifier.out_features == 4


def test_a_masked_lm_checkpoint_seeds_an_encoder_and_a_classifier(tmp_path):
    """A masked-LM checkpoint has no pooler. With init_new_head=True the pooler starts fresh, as in
    transformers, and the rest is the checkpoint's."""
    reference = make_hf_model("BertForMaskedLM")
    folder = save_current(reference, tmp_path)
    with pytest.raises(minibert.CheckpointError):
        minibert.BertModel.from_pretrained(folder)
    encoder = minibert.BertModel.from_pretrained(folder, init_new_head=True)
    assert encoder.load_report.initialised == ["pooler.dense.weight", "pooler.dense.bias"]
    classifier = minibert.BertForSequenceClassification.from_pretrained(folder, init_new_head=True, num_labels=1)
    assert set(classifier.load_report.initialised) == {"bert.pooler.dense.weight", "bert.pooler.dense.bias",
                                                        "classifier.weight", "classifier.bias"}
    inputs = random_inputs(reference.config)
    with torch.no_grad():
        assert_close("last_hidden_state", encoder(**inputs).last_hidden_state,
                     reference.bert(**inputs).last_hidden_state, kind="random checkpoints")


def test_saves_keep_permissions_refuse_read_only_targets_and_clear_dead_writers_temporaries(tmp_path):
    import os
    import stat

    model = minibert.BertModel.from_pretrained(save_current(make_hf_model("BertModel"), tmp_path / "source"))
    out = tmp_path / "out"
    model.save_pretrained(out)
    os.chmod(out / "config.json", 0o640)
    stale = out / ".model.safetensors.tmp-999999999"  # a writer killed with SIGKILL left this
    stale.write_bytes(b"x" * 1000)
    model.save_pretrained(out)
    assert stat.S_IMODE((out / "config.json").stat().st_mode) == 0o640, "a replaced file keeps its mode"
    assert not stale.exists()
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE((out / "model.safetensors").stat().st_mode) == 0o666 & ~umask
    os.chmod(out / "model.safetensors", 0o444)
    with pytest.raises(PermissionError, match=r"model\.safetensors is read-only \(mode 444\)"):
        model.save_pretrained(out)


def test_sigterm_during_a_save_leaves_the_old_file_and_no_temporary(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    model = minibert.BertModel.from_pretrained(save_current(make_hf_model("BertModel"), tmp_path / "source"))
    out = model.save_pretrained(tmp_path / "out")
    before = (out / "model.safetensors").read_bytes()
    code = f"""
import time, safetensors.torch, minibert
model = minibert.BertModel.from_pretrained({str(out)!r})
def slow(tensors, path, metadata=None):
    open(path, "wb").write(b"partial")
    print("writing", flush=True)
    time.sleep(30)
safetensors.torch.save_file = slow
model.save_pretrained({str(out)!r})
"""
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert process.returncode != 0
    assert (out / "model.safetensors").read_bytes() == before
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_masked_only_gives_the_same_loss_and_gradients(tmp_path):
    """The vocabulary projection at the picked positions only: the loss and every gradient equal
    transformers' full computation."""
    reference = make_hf_model("BertForPreTraining")
    model = minibert.BertForPreTraining.from_pretrained(save_current(reference, tmp_path))
    inputs = random_inputs(reference.config)
    labels = make_labels("pretraining", inputs, reference.config, 2)
    ours = model(**inputs, **labels, masked_only=True)
    assert ours.prediction_logits.shape == ((labels["labels"] != -100).sum().item(), reference.config.vocab_size)
    model.zero_grad()
    check_loss_and_gradients(lambda **kw: model(**kw, masked_only=True), reference, inputs, labels,
                             parameters=model)
