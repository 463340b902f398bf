"""minibert where code written for transformers expects a transformers model: the lines of the usual
tutorials run unchanged, and do what they do in transformers.

    BertForSequenceClassification.from_pretrained(base, num_labels=5)    a new classifier, said in a warning
    BertModel.from_pretrained(mlm_checkpoint, add_pooling_layer=False)   an encoder without a pooler
    torch.jit.trace(model, (ids,), strict=False)(ids)["last_hidden_state"]
    model.gradient_checkpointing_enable()                                 less memory, the same gradients
    BertConfig(num_labels=3).to_dict()                                    the keys and values of transformers'
    from_pretrained(..., dtype="bfloat16")                                a dtype by name, or "auto"

Each is checked against transformers itself, on the random checkpoints of tests/hf_checkpoints.py.
"""

import copy
import json
import logging
import warnings

import pytest
import torch

import minibert
from conftest import assert_close, rounding_bound
from hf_checkpoints import make_hf_model, random_inputs, save_current

KIND = "drop-in vs transformers"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Checkpoints written by transformers: a base model (pooler, no head), a masked-LM one (no pooler),
    and a classifier with 3 labels."""
    root = tmp_path_factory.mktemp("dropin")
    return {
        "base": save_current(make_hf_model("BertModel"), root / "base"),
        "mlm": save_current(make_hf_model("BertForMaskedLM"), root / "mlm"),
        "classifier": save_current(make_hf_model("BertForSequenceClassification", num_labels=3), root / "classifier"),
    }


def transformers_model(class_name, folder, **kwargs):
    import transformers

    return getattr(transformers, class_name).from_pretrained(folder, attn_implementation="eager", **kwargs).eval()


# ---------------------------------------------------------------------------------------------
# 1. from_pretrained(base, num_labels=5): the caller asked for a classifier, so it is made
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("labels", [dict(num_labels=5), dict(id2label={0: "neg", 1: "neu", 2: "pos", 3: "x", 4: "y"})],
                         ids=["num_labels", "id2label"])
def test_naming_the_labels_makes_a_classifier_the_checkpoint_lacks(folders, caplog, labels):
    with caplog.at_level(logging.WARNING, logger="minibert"):
        model = minibert.BertForSequenceClassification.from_pretrained(folders["base"], **labels)
    reference = transformers_model("BertForSequenceClassification", folders["base"], **labels)
    assert model.config.num_labels == reference.config.num_labels == 5
    assert model.config.id2label == reference.config.id2label
    assert sorted(model.load_report.initialised) == ["classifier.bias", "classifier.weight"]
    assert "newly initialised, not from the checkpoint: classifier.weight, classifier.bias" in caplog.text
    assert not model.training  # eval mode, as after any from_pretrained
    inputs = random_inputs(reference.config)
    with torch.no_grad():
        ours, expected = model(**inputs, output_hidden_states=True), reference(**inputs, output_hidden_states=True)
    assert ours.logits.shape == (3, 5)
    # The encoder (and pooler) came from the file: the same numbers as transformers' load of it.
    assert_close("last hidden state", ours.hidden_states[-1], expected.hidden_states[-1], kind=KIND)
    assert torch.equal(model.bert.pooler.dense.weight, reference.bert.pooler.dense.weight)


def test_naming_the_labels_also_makes_the_pooler_a_masked_lm_checkpoint_lacks(folders, caplog):
    """transformers makes both (the classifier reads the pooler); so does minibert, and says so."""
    with caplog.at_level(logging.WARNING, logger="minibert"):
        model = minibert.BertForSequenceClassification.from_pretrained(folders["mlm"], num_labels=4)
    assert sorted(model.load_report.initialised) == ["bert.pooler.dense.bias", "bert.pooler.dense.weight",
                                                    "classifier.bias", "classifier.weight"]
    assert "bert.pooler.dense.weight" in caplog.text and "classifier.weight" in caplog.text


def test_without_a_word_about_labels_a_missing_classifier_is_still_refused(folders):
    with pytest.raises(minibert.MissingHeadError) as err:
        minibert.BertForSequenceClassification.from_pretrained(folders["base"])
    assert "num_labels=" in str(err.value)  # the refusal says how to ask for a new classifier
    # Labels say nothing about a masked-LM head: that one is still refused.
    with pytest.raises(minibert.MissingHeadError, match="cls.predictions"):
        minibert.BertForMaskedLM.from_pretrained(folders["base"], num_labels=5)


def test_naming_other_labels_than_the_classifier_has_is_refused_as_transformers_refuses_it(folders):
    """transformers raises unless ignore_mismatched_sizes=True; minibert names the tensors, and
    init_new_head=True starts a classifier of the new size."""
    with pytest.raises(RuntimeError):
        transformers_model("BertForSequenceClassification", folders["classifier"], num_labels=5)
    with pytest.raises(minibert.CheckpointError, match=r"wrong shape classifier.weight: expected \(5, 32\), found \(3, 32\)"):
        minibert.BertForSequenceClassification.from_pretrained(folders["classifier"], num_labels=5)
    model = minibert.BertForSequenceClassification.from_pretrained(folders["classifier"], num_labels=5,
                                                                   init_new_head=True)
    assert model.classifier.weight.shape == (5, 32)
    # The same count as the file's loads the file's classifier.
    same = minibert.BertForSequenceClassification.from_pretrained(folders["classifier"], num_labels=3)
    assert same.load_report.initialised == []


# ---------------------------------------------------------------------------------------------
# 2. BertModel.from_pretrained(mlm_checkpoint, add_pooling_layer=False)
# ---------------------------------------------------------------------------------------------

def test_add_pooling_layer_false_loads_a_checkpoint_without_a_pooler(folders):
    with pytest.raises(minibert.MissingHeadError, match="add_pooling_layer=False"):
        minibert.BertModel.from_pretrained(folders["mlm"])  # still refused without a word
    model = minibert.BertModel.from_pretrained(folders["mlm"], add_pooling_layer=False)
    reference = transformers_model("BertModel", folders["mlm"], add_pooling_layer=False)
    assert model.pooler is None and reference.pooler is None
    assert model.load_report.initialised == []
    inputs = random_inputs(reference.config)
    with torch.no_grad():
        ours, expected = model(**inputs), reference(**inputs)
    assert list(ours.keys()) == list(expected.keys()) == ["last_hidden_state"]
    assert_close("last_hidden_state", ours.last_hidden_state, expected.last_hidden_state, kind=KIND)


def test_add_pooling_layer_false_leaves_a_checkpoints_pooler_unused(folders):
    model = minibert.BertModel.from_pretrained(folders["base"], add_pooling_layer=False)
    assert model.pooler is None
    assert sorted(model.load_report.unused) == ["pooler.dense.bias", "pooler.dense.weight"]
    assert minibert.BertModel.from_pretrained(folders["base"], add_pooling_layer=True).pooler is not None


def test_add_pooling_layer_is_an_argument_of_bert_model_only(folders):
    with pytest.raises(TypeError, match="add_pooling_layer is an argument of BertModel"):
        minibert.BertForMaskedLM.from_pretrained(folders["mlm"], add_pooling_layer=False)


# ---------------------------------------------------------------------------------------------
# 3. torch.jit.trace: a dict of the set fields, as transformers 5's traced models return
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("class_name", ["BertModel", "BertForPreTraining", "BertForMaskedLM",
                                        "BertForNextSentencePrediction", "BertForSequenceClassification"])
def test_jit_trace_returns_what_transformers_traced_model_returns(tmp_path, class_name):
    reference = make_hf_model(class_name, num_labels=3)
    model = getattr(minibert, class_name).from_pretrained(save_current(reference, tmp_path / "ckpt"))
    example = random_inputs(reference.config)
    args = (example["input_ids"], example["attention_mask"], example["token_type_ids"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings about constants: expected, in both libraries
        traced = torch.jit.trace(model, args, strict=False)
        traced_reference = torch.jit.trace(reference, args, strict=False)
    inputs = random_inputs(reference.config, batch=2, length=7, seed=4)
    args = (inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"])
    with torch.no_grad():
        ours, expected, eager = traced(*args), traced_reference(*args), model(*args)
        exact = copy.deepcopy(model).double()(*args)
    assert type(ours) is type(expected) is dict
    assert list(ours) == list(expected) == list(eager.keys())
    for name, value in expected.items():
        atol = rounding_bound(eager[name], exact[name])  # a trace may run other kernels than eager
        assert_close(f"traced {name}", ours[name], value, atol=atol, kind=KIND)
        assert_close(f"traced {name} vs eager", ours[name], eager[name], atol=atol, kind="jit.trace vs eager")


def test_jit_trace_of_a_module_that_reads_the_output_by_name_or_index(tmp_path):
    """The way ONNX export tutorials wrap a model: its output read inside the traced module, by attribute or
    index. transformers' outputs allow both while traced; so do minibert's (TracedOutput)."""
    reference = make_hf_model("BertForSequenceClassification", num_labels=3)
    model = minibert.BertForSequenceClassification.from_pretrained(save_current(reference, tmp_path / "ckpt"))

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            out = self.inner(input_ids, attention_mask)
            assert out.loss is None and out[0] is out.logits  # a field not set reads None, as on the dataclass
            return out.logits, out[0]

    inputs = random_inputs(reference.config)
    args = (inputs["input_ids"], inputs["attention_mask"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = torch.jit.trace(Logits(model), args)(*args)  # strict: tensors out
        expected = torch.jit.trace(Logits(reference), args)(*args)
    for a, b in zip(ours, expected, strict=True):
        assert_close("logits through a traced wrapper", a, b, kind=KIND)


def test_jit_trace_with_return_dict_false_in_the_config_returns_the_tuple(tmp_path):
    reference = make_hf_model("BertModel")
    reference.config.return_dict = False
    model = minibert.BertModel.from_pretrained(save_current(reference, tmp_path / "ckpt"))
    ids = random_inputs(reference.config)["input_ids"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, expected = torch.jit.trace(model, (ids,))(ids), torch.jit.trace(reference, (ids,))(ids)
    assert type(ours) is type(expected) is tuple and len(ours) == len(expected) == 2
    assert_close("traced tuple[0]", ours[0], expected[0], kind=KIND)


# ---------------------------------------------------------------------------------------------
# 4. Gradient checkpointing: the same gradients, with less kept between forward and backward
# ---------------------------------------------------------------------------------------------

def gradients(model, inputs, labels, seed=0):
    """One training step's loss and parameter gradients, by name, from a fixed dropout seed."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    loss = model(**inputs, **labels).loss
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def layer_calls(model):
    """How many times each encoder layer's forward runs: twice per step when checkpointed (forward,
    then again in backward)."""
    calls = []
    for layer in model.bert.encoder.layer:  # a pre-hook: torch stops a recomputed layer once it has what it needs
        layer.register_forward_pre_hook(lambda *_: calls.append(1))
    return calls


def labels_of(class_name: str, inputs: dict) -> dict:
    """Labels for the loss of a classifier (3 classes) or of pre-training (every real token, and NSP)."""
    if class_name == "BertForSequenceClassification":
        return dict(labels=torch.tensor([0, 2, 1]))
    return dict(labels=torch.where(inputs["attention_mask"] == 1, inputs["input_ids"], -100),
                next_sentence_label=torch.tensor([0, 1, 0]))


@pytest.mark.parametrize("class_name", ["BertForSequenceClassification", "BertForPreTraining"])
def test_gradient_checkpointing_gives_the_same_gradients_with_dropout_on(tmp_path, class_name):
    reference = make_hf_model(class_name, num_labels=3, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    model = getattr(minibert, class_name).from_pretrained(save_current(reference, tmp_path / "ckpt")).train()
    inputs = random_inputs(reference.config)
    labels = labels_of(class_name, inputs)
    calls = layer_calls(model)
    loss, grads = gradients(model, inputs, labels)
    assert len(calls) == 2  # two layers, once each
    model.gradient_checkpointing_enable()
    calls.clear()
    loss_checkpointed, grads_checkpointed = gradients(model, inputs, labels)
    assert len(calls) == 4  # each layer again in backward: checkpointing did run
    # torch's checkpoint restores the random state before it runs a layer again, so dropout draws the
    # same masks and the recomputed layer is the first one, op for op.
    assert_close("loss, checkpointed", loss_checkpointed, loss, atol=1e-6, kind="checkpointing vs not")
    assert sorted(grads_checkpointed) == sorted(grads) and len(grads) == len(dict(model.named_parameters()))
    for name, grad in grads.items():
        assert_close(f"grad {name}, checkpointed", grads_checkpointed[name], grad, atol=1e-6,
                     kind="checkpointing vs not")

    model.eval()  # checkpointing acts in training mode only: there is no backward to save memory for
    calls.clear()
    with torch.no_grad():
        model(**inputs)
    assert len(calls) == 2


# Both libraries run the same forward ops, so the gradients agree to the last bit here (0 measured), but
# autograd may add a parameter's contributions in another order in each (the tied decoder and word
# embeddings), and float32 keeps 24 bits: a relative 1e-7 per addition. The gradients here reach 0.46,
# so 1e-6 absolute leaves room for a few such additions and catches any real difference.
CHECKPOINTED_VS_TRANSFORMERS = 1e-6


@pytest.mark.parametrize("class_name", ["BertForSequenceClassification", "BertForPreTraining"])
def test_gradient_checkpointing_gradients_equal_transformers_checkpointed_ones(tmp_path, class_name):
    """Dropout off (the two libraries draw their masks in their own order), training mode on."""
    reference = make_hf_model(class_name, num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = getattr(minibert, class_name).from_pretrained(save_current(reference, tmp_path / "ckpt")).train()
    reference.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers 5.24 prefers activation_checkpointing_enable
        reference.gradient_checkpointing_enable()
    model.gradient_checkpointing_enable()
    inputs = random_inputs(reference.config)
    labels = labels_of(class_name, inputs)
    loss, grads = gradients(model, inputs, labels)
    expected_loss, expected = gradients(reference, inputs, labels)
    assert_close("loss", loss, expected_loss, atol=1e-5, kind=KIND)
    assert sorted(grads) == sorted(expected)
    for name, grad in expected.items():
        assert_close(f"grad {name}", grads[name], grad, atol=CHECKPOINTED_VS_TRANSFORMERS,
                     kind="gradients, checkpointed, vs transformers")


# ---------------------------------------------------------------------------------------------
# 5. BertConfig: num_labels at construction, and to_dict() as transformers' to_dict()
# ---------------------------------------------------------------------------------------------

# transformers_version names the library that made the dict; minibert is not it. dtype: minibert's config
# holds none (the weights do), and save_pretrained writes it into config.json. position_embedding_type was
# dropped from transformers 5's BertConfig; minibert keeps it, as checkpoints' config.json hold it.
ONLY_TRANSFORMERS = {"transformers_version", "dtype"}
ONLY_MINIBERT = {"position_embedding_type"}


@pytest.mark.parametrize("kwargs", [
    {},
    dict(num_labels=3),
    # Both maps: given id2label alone, transformers 5 leaves label2id None, where minibert makes the inverse
    # (what transformers makes from num_labels, and what a checkpoint's config.json holds).
    dict(id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1}, hidden_act="gelu_new", classifier_dropout=0.2,
         problem_type="regression"),
    dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
         output_hidden_states=True, return_dict=False, num_labels=1),
], ids=["defaults", "num_labels", "id2label", "sizes"])
def test_config_to_dict_has_transformers_keys_and_values(kwargs):
    import transformers

    ours, theirs = minibert.BertConfig(**kwargs).to_dict(), transformers.BertConfig(**kwargs).to_dict()
    assert set(ours) - ONLY_MINIBERT == set(theirs) - ONLY_TRANSFORMERS
    for key in set(ours) & set(theirs):
        assert ours[key] == theirs[key], key
        assert type(ours[key]) is type(theirs[key]), key
    assert all(isinstance(k, int) for k in ours["id2label"])  # class indices in memory ...
    theirs_json = json.loads(transformers.BertConfig(**kwargs).to_json_string(use_diff=False))
    assert json.loads(minibert.BertConfig(**kwargs).to_json_string())["id2label"] == theirs_json["id2label"]  # ... text in JSON


def test_config_num_labels_disagreeing_with_id2label_is_refused():
    with pytest.raises(minibert.ConfigError, match="num_labels=3 disagrees with id2label of 2"):
        minibert.BertConfig(num_labels=3, id2label={0: "a", 1: "b"})
    assert minibert.BertConfig(num_labels=2, id2label={0: "a", 1: "b"}).id2label == {0: "a", 1: "b"}


def test_dataclasses_replace_takes_new_labels():
    """BertConfig is a dataclass, so replace() is how to derive one. With num_labels a constructor argument,
    replace handed the old count back in: new labels of another count were refused, or silently cut."""
    import dataclasses

    three = dataclasses.replace(minibert.BertConfig(), id2label={0: "a", 1: "b", 2: "c"})
    assert three.num_labels == 3 and three.label2id == {"a": 0, "b": 1, "c": 2}
    two = dataclasses.replace(minibert.BertConfig(num_labels=3), id2label={0: "x", 1: "y"})
    assert two.num_labels == 2 and two.label2id == {"x": 0, "y": 1}
    import transformers

    reference = transformers.BertConfig(num_labels=3)
    reference.id2label = {0: "x", 1: "y"}
    assert reference.num_labels == two.num_labels


def test_a_config_from_to_dict_is_the_same_config():
    config = minibert.BertConfig(num_labels=4, hidden_size=64, num_attention_heads=4)
    again = minibert.BertConfig.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict() and again.num_labels == 4


# ---------------------------------------------------------------------------------------------
# 7. dtype by name, as transformers takes it
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,expected", [("bfloat16", torch.bfloat16), ("float16", torch.float16),
                                            ("float32", torch.float32), (torch.float16, torch.float16),
                                            ("float64", torch.float64)])
def test_dtype_by_name(folders, dtype, expected):
    model = minibert.BertModel.from_pretrained(folders["base"], dtype=dtype)
    assert model.dtype == expected and all(p.dtype == expected for p in model.parameters())
    if dtype != "float64":  # transformers' float64 needs its own checks of the attention mask; not compared
        assert transformers_model("BertModel", folders["base"], dtype=dtype).dtype == expected


def test_dtype_auto_is_the_checkpoints_own(folders, tmp_path):
    """"auto": the dtype the checkpoint was saved in (config.json's dtype, else its weights'), as in
    transformers; a float32 checkpoint loads as float32."""
    assert minibert.BertModel.from_pretrained(folders["base"], dtype="auto").dtype == torch.float32
    half = transformers_model("BertModel", folders["base"], dtype=torch.bfloat16)
    half.save_pretrained(tmp_path / "transformers")
    minibert.BertModel.from_pretrained(folders["base"], dtype=torch.bfloat16).save_pretrained(tmp_path / "minibert")
    for folder in (tmp_path / "transformers", tmp_path / "minibert"):
        assert minibert.BertModel.from_pretrained(folder, dtype="auto").dtype == torch.bfloat16
        assert transformers_model("BertModel", folder, dtype="auto").dtype == torch.bfloat16
        assert minibert.BertModel.from_pretrained(folder).dtype == torch.float32  # minibert's default
