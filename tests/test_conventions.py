"""The conventions of transformers' BERT tests, checked against transformers itself.

transformers' tests (tests/models/bert/test_modeling_bert.py and tests/test_modeling_common.py)
check that each head gives the right shapes, that hidden states and attentions come back when
asked, that a batch gives each row's own result, that save and load lose nothing, and that the
model surface (num_parameters, resize_token_embeddings, ...) behaves. Here each of those checks
runs on minibert and compares with transformers: the same random checkpoint, written by
transformers' save_pretrained, loaded by both; eager attention, eval mode, dropout off.
torch.export, jit.trace, compile(fullgraph=True), the meta device and ONNX: tests/test_export.py.
"""

import copy
import json

import pytest
import torch

import minibert
from test_parity_random import MODELS
from conftest import assert_close, rounding_bound
from hf_checkpoints import make_hf_model, random_inputs, save_current

KIND = "conventions vs transformers"

HEADS = MODELS  # every class, with the parity tests' label counts
HEAD_IDS = [f"{c}-{n}" for c, n in HEADS]
WITH_MLM_HEAD = ("BertForPreTraining", "BertForMaskedLM")

# Each class's main outputs, and whether they have one row per token or one per sequence.
OUTPUT_FIELDS = {
    "BertModel": {"last_hidden_state": "token", "pooler_output": "sequence"},
    "BertForPreTraining": {"prediction_logits": "token", "seq_relationship_logits": "sequence"},
    "BertForMaskedLM": {"logits": "token"},
    "BertForNextSentencePrediction": {"logits": "sequence"},
    "BertForSequenceClassification": {"logits": "sequence"},
}


def load_pair(tmp_path, class_name, num_labels=2, **overrides):
    """A random transformers model, written by transformers' save_pretrained, and minibert's load of it."""
    reference = make_hf_model(class_name, num_labels=num_labels, **overrides)
    folder = save_current(reference, tmp_path / "transformers")
    return reference, getattr(minibert, class_name).from_pretrained(folder), folder


def expected_shapes(class_name, config, num_labels, B, T):
    """What transformers' create_and_check_* methods assert for each head."""
    H, V = config.hidden_size, config.vocab_size
    return {
        "BertModel": {"last_hidden_state": (B, T, H), "pooler_output": (B, H)},
        "BertForPreTraining": {"prediction_logits": (B, T, V), "seq_relationship_logits": (B, 2)},
        "BertForMaskedLM": {"logits": (B, T, V)},
        "BertForNextSentencePrediction": {"logits": (B, 2)},
        "BertForSequenceClassification": {"logits": (B, num_labels)},
    }[class_name]


def labels_for(class_name, num_labels, inputs, vocab_size, seed=5):
    """Labels of the kind each head's loss takes, as transformers' tests make them."""
    g = torch.Generator().manual_seed(seed)
    B, T = inputs["input_ids"].shape
    masked = torch.rand(B, T, generator=g) < 0.3
    mlm_labels = torch.where(masked, torch.randint(0, vocab_size, (B, T), generator=g), -100)
    mlm_labels[:, 1] = 7  # at least one predicted token per row
    if class_name == "BertModel":
        return {}
    if class_name == "BertForPreTraining":
        return dict(labels=mlm_labels, next_sentence_label=torch.randint(0, 2, (B,), generator=g))
    if class_name == "BertForMaskedLM":
        return dict(labels=mlm_labels)
    if class_name == "BertForNextSentencePrediction":
        return dict(labels=torch.randint(0, 2, (B,), generator=g))
    if num_labels == 1:  # regression: one float per row
        return dict(labels=torch.randn(B, generator=g))
    return dict(labels=torch.randint(0, num_labels, (B,), generator=g))


def assert_same(name, ours, theirs, atol=1e-5, kind=KIND):
    """Tensors within atol; tuples (of hidden states, of attentions) of the same length, element-wise."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, torch.Tensor), f"{name}: transformers has a tensor, minibert a {type(ours).__name__}"
        assert ours.dtype == theirs.dtype, f"{name}: dtype {ours.dtype} != transformers' {theirs.dtype}"
        assert_close(name, ours, theirs, atol=atol, kind=kind)
        return
    assert isinstance(theirs, tuple) and isinstance(ours, tuple), \
        f"{name}: minibert {type(ours).__name__}, transformers {type(theirs).__name__}"
    assert len(ours) == len(theirs), f"{name}: {len(ours)} elements, transformers has {len(theirs)}"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert_same(f"{name}[{i}]", a, b, atol, kind)


def transformers_fields(output) -> dict:
    """transformers' set fields, less `cross_attentions`.

    transformers 5 records cross-attentions with a hook and returns an empty tuple for an encoder
    that has none (4.x returned None, which left it out of the tuple). It carries no numbers and
    minibert has no such field; that it is empty is checked here.
    """
    fields = dict(output.items())
    if "cross_attentions" in fields:
        assert fields.pop("cross_attentions") == ()
    return fields


def transformers_tuple(as_tuple, as_dict) -> tuple:
    """transformers' return_dict=False tuple, less the empty `cross_attentions` (the last field) if set."""
    assert len(as_tuple) == len(as_dict.keys())
    if "cross_attentions" in as_dict.keys():
        assert list(as_dict.keys())[-1] == "cross_attentions" and as_tuple[-1] == ()
        return as_tuple[:-1]
    return as_tuple


# ---------------------------------------------------------------------------------------------
# create_and_check_*: every head's shapes and values, with and without labels
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("class_name,num_labels", HEADS, ids=HEAD_IDS)
def test_head_shapes_values_and_loss(tmp_path, class_name, num_labels):
    reference, model, _ = load_pair(tmp_path, class_name, num_labels)
    inputs = random_inputs(reference.config, batch=3, length=11)
    labels = labels_for(class_name, num_labels, inputs, reference.config.vocab_size)
    with torch.no_grad():
        ours, expected = model(**inputs), reference(**inputs)
        ours_with_loss, expected_with_loss = model(**inputs, **labels), reference(**inputs, **labels)
    for field, shape in expected_shapes(class_name, reference.config, num_labels, 3, 11).items():
        assert tuple(getattr(ours, field).shape) == shape, field
        assert_close(field, getattr(ours, field), getattr(expected, field), kind=KIND)
        # The outputs do not change when labels are given.
        assert torch.equal(getattr(ours_with_loss, field), getattr(ours, field))
    if labels:
        assert ours_with_loss.loss.shape == ()
        assert_close("loss", ours_with_loss.loss, expected_with_loss.loss, kind=KIND)
    else:
        assert "loss" not in ours_with_loss.keys()


# ---------------------------------------------------------------------------------------------
# Hidden states and attentions: asked for in the call, or in config.json
# ---------------------------------------------------------------------------------------------

def check_hidden_states_and_attentions(ours, expected, config, B, T):
    L, H, nh = config.num_hidden_layers, config.hidden_size, config.num_attention_heads
    assert len(ours.hidden_states) == L + 1 == len(expected.hidden_states)  # the embeddings, then each layer
    assert len(ours.attentions) == L == len(expected.attentions)
    for i, (a, b) in enumerate(zip(ours.hidden_states, expected.hidden_states)):
        assert tuple(a.shape) == (B, T, H)
        assert_close(f"hidden_states[{i}]", a, b, kind=KIND)
    for i, (a, b) in enumerate(zip(ours.attentions, expected.attentions)):
        assert tuple(a.shape) == (B, nh, T, T)
        assert_close(f"attentions[{i}]", a, b, kind=KIND)
        # Each query's weights sum to 1; padded keys get exactly 0.
        assert_close(f"attentions[{i}] row sums", a.sum(-1), torch.ones(B, nh, T), atol=1e-5, kind=KIND)


@pytest.mark.parametrize("class_name,num_labels", HEADS, ids=HEAD_IDS)
def test_hidden_states_and_attentions(tmp_path, class_name, num_labels):
    reference, model, _ = load_pair(tmp_path, class_name, num_labels, num_hidden_layers=3)
    inputs = random_inputs(reference.config, batch=3, length=11)
    with torch.no_grad():
        ours = model(**inputs, output_hidden_states=True, output_attentions=True)
        expected = reference(**inputs, output_hidden_states=True, output_attentions=True)
        only_hidden = model(**inputs, output_hidden_states=True)
        only_attentions = model(**inputs, output_attentions=True)
    check_hidden_states_and_attentions(ours, expected, reference.config, 3, 11)
    assert only_hidden.attentions is None and len(only_hidden.hidden_states) == 4
    assert only_attentions.hidden_states is None and len(only_attentions.attentions) == 3
    padded = inputs["attention_mask"] == 0  # (B, T)
    for probs in ours.attentions:
        assert (probs.masked_select(padded[:, None, None, :].expand_as(probs)) == 0).all()


@pytest.mark.parametrize("class_name", ["BertModel", "BertForSequenceClassification"])
def test_switches_read_from_config_json(tmp_path, class_name):
    """output_attentions and output_hidden_states set in config.json apply when the call does not say;
    return_dict=false there gives the tuple. transformers reads the same file."""
    import transformers

    _, _, folder = load_pair(tmp_path, class_name)
    config = json.loads((folder / "config.json").read_text())
    config.update(output_attentions=True, output_hidden_states=True)
    (folder / "config.json").write_text(json.dumps(config))

    model = getattr(minibert, class_name).from_pretrained(folder)
    reference = getattr(transformers, class_name).from_pretrained(folder, attn_implementation="eager").eval()
    assert model.config.output_attentions and model.config.output_hidden_states
    inputs = random_inputs(reference.config)
    with torch.no_grad():
        ours, expected = model(**inputs), reference(**inputs)
        ours_off = model(**inputs, output_attentions=False, output_hidden_states=False)
    check_hidden_states_and_attentions(ours, expected, reference.config, 3, 11)
    assert ours_off.attentions is None and ours_off.hidden_states is None  # the call overrides the config

    config["return_dict"] = False
    (folder / "config.json").write_text(json.dumps(config))
    model = getattr(minibert, class_name).from_pretrained(folder)
    reference = getattr(transformers, class_name).from_pretrained(folder, attn_implementation="eager").eval()
    with torch.no_grad():
        ours, expected = model(**inputs), reference(**inputs)
        as_dict = reference(**inputs, return_dict=True)
    assert isinstance(ours, tuple) and isinstance(expected, tuple)
    assert_same("tuple from config.json", ours, transformers_tuple(expected, as_dict))
    assert not isinstance(model(**inputs, return_dict=True), tuple)  # the call overrides the config


# ---------------------------------------------------------------------------------------------
# Indexing, to_tuple and return_dict=False, element by element against transformers
# ---------------------------------------------------------------------------------------------

INDEXING_CASES = [(c, n, extra) for c, n in HEADS for extra in ("plain", "hidden+attentions", "labels")
                  if not (c == "BertModel" and extra == "labels")]


@pytest.mark.parametrize("class_name,num_labels,extra", INDEXING_CASES,
                         ids=[f"{c}-{n}-{e}" for c, n, e in INDEXING_CASES])
def test_indexing_and_tuples(tmp_path, class_name, num_labels, extra):
    reference, model, _ = load_pair(tmp_path, class_name, num_labels)
    inputs = random_inputs(reference.config)
    kwargs = {} if extra == "plain" else dict(output_hidden_states=True, output_attentions=True)
    if extra == "labels":
        kwargs.update(labels_for(class_name, num_labels, inputs, reference.config.vocab_size))
    with torch.no_grad():
        ours, expected = model(**inputs, **kwargs), reference(**inputs, **kwargs)
        ours_tuple = model(**inputs, **kwargs, return_dict=False)
        expected_tuple = transformers_tuple(reference(**inputs, **kwargs, return_dict=False), expected)
    fields = transformers_fields(expected)

    assert list(ours.keys()) == list(fields)  # the same fields set, in the same order
    assert len(ours) == len(fields)
    assert_same("out[0]", ours[0], expected[0])
    assert_same("out[-1]", ours[-1], list(fields.values())[-1])
    for name, value in fields.items():
        assert name in ours
        assert_same(f'out["{name}"]', ours[name], value)
        assert_same(f"out.{name}", getattr(ours, name), value)
    assert_same("to_tuple()", ours.to_tuple(), tuple(fields.values()))
    assert isinstance(ours_tuple, tuple)
    assert_same("return_dict=False", ours_tuple, expected_tuple)
    if extra == "labels":
        assert list(ours.keys())[0] == "loss"  # the loss comes first when labels are given
        assert_same("loss", ours_tuple[0], expected.loss)


# ---------------------------------------------------------------------------------------------
# Batching equivalence and padding invariance
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("class_name,num_labels", HEADS, ids=HEAD_IDS)
def test_batch_gives_each_row_its_own_result(tmp_path, class_name, num_labels):
    reference, model, _ = load_pair(tmp_path, class_name, num_labels)
    inputs = random_inputs(reference.config, batch=4, length=13)  # rows of 13, 9, 6 and 4 real tokens
    with torch.no_grad():
        batched = model(**inputs)
        for row, n in enumerate(inputs["attention_mask"].sum(1).tolist()):
            alone = model(**{k: v[row:row + 1, :n] for k, v in inputs.items()})  # no padding at all
            for field, per in OUTPUT_FIELDS[class_name].items():
                got = getattr(batched, field)[row:row + 1]
                got = got[:, :n] if per == "token" else got
                assert_close(f"{field} row {row}", got, getattr(alone, field), kind=KIND)


@pytest.mark.parametrize("class_name,num_labels", HEADS, ids=HEAD_IDS)
def test_extra_padding_changes_no_real_token(tmp_path, class_name, num_labels):
    reference, model, _ = load_pair(tmp_path, class_name, num_labels)
    inputs = random_inputs(reference.config, batch=3, length=11)
    extra = 7
    g = torch.Generator().manual_seed(3)
    padded = {
        # Padding positions hold arbitrary ids: the mask, not the id, is what hides them.
        "input_ids": torch.cat([inputs["input_ids"], torch.randint(1, reference.config.vocab_size, (3, extra),
                                                                   generator=g)], 1),
        "attention_mask": torch.cat([inputs["attention_mask"], torch.zeros(3, extra, dtype=torch.long)], 1),
        "token_type_ids": torch.cat([inputs["token_type_ids"], torch.zeros(3, extra, dtype=torch.long)], 1),
    }
    real = inputs["attention_mask"].bool()
    with torch.no_grad():
        short, long = model(**inputs), model(**padded)
        reference_long = reference(**padded)
    for field, per in OUTPUT_FIELDS[class_name].items():
        a, b = getattr(short, field), getattr(long, field)
        if per == "token":
            a, b = a[real], b[:, :11][real]  # the real tokens only
        assert_close(f"{field} with {extra} more padding", b, a, kind=KIND)
        assert_close(f"{field} padded, vs transformers", getattr(long, field), getattr(reference_long, field),
                     kind=KIND)


# ---------------------------------------------------------------------------------------------
# Save and load, both ways
# ---------------------------------------------------------------------------------------------

def safetensors_keys(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return sorted(f.keys())


@pytest.mark.parametrize("class_name,num_labels", HEADS, ids=HEAD_IDS)
def test_save_pretrained_loads_in_transformers_and_back(tmp_path, class_name, num_labels):
    import transformers

    reference, model, hf_folder = load_pair(tmp_path, class_name, num_labels)
    ours_folder = model.save_pretrained(tmp_path / "minibert")

    config = json.loads((ours_folder / "config.json").read_text())
    assert config["architectures"] == [class_name] and config["model_type"] == "bert"
    assert transformers.AutoConfig.from_pretrained(ours_folder).model_type == "bert"
    # The same tensor names as transformers writes for this class; the tied decoder stored once.
    keys = safetensors_keys(ours_folder / "model.safetensors")
    assert keys == safetensors_keys(hf_folder / "model.safetensors")
    assert "cls.predictions.decoder.weight" not in keys
    if class_name in WITH_MLM_HEAD:
        assert "bert.embeddings.word_embeddings.weight" in keys and "cls.predictions.bias" in keys

    reloaded, info = getattr(transformers, class_name).from_pretrained(
        ours_folder, attn_implementation="eager", output_loading_info=True)
    reloaded.eval()
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    for name, tensor in reference.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name
    again = getattr(minibert, class_name).from_pretrained(ours_folder)

    inputs = random_inputs(reference.config)
    with torch.no_grad():
        expected = reference(**inputs, output_hidden_states=True)
        through_transformers = reloaded(**inputs, output_hidden_states=True)
        ours, ours_again = model(**inputs, output_hidden_states=True), again(**inputs, output_hidden_states=True)
        exact = copy.deepcopy(reference).double()(**inputs, output_hidden_states=True)
    for field in OUTPUT_FIELDS[class_name]:
        # The same weights, bit for bit (above), and the same code: the outputs agree to the last bit on
        # most CPUs, but not on all. A weight read from a file lies where the file put it, and a few
        # kernels sum in an order that depends on the address: under ATEN_CPU_CAPABILITY=avx2, a one-label
        # classifier (a (1, 32) weight 4 bytes past a 64-byte boundary) gave logits 6e-8 apart. So within
        # the reference's own float32 rounding (against it in float64).
        atol = rounding_bound(getattr(expected, field), getattr(exact, field))
        assert_close(f"{field}, saved by minibert, run by transformers", getattr(through_transformers, field),
                     getattr(expected, field), atol=atol, kind="save and load")
        assert_close(f"{field}, saved and reloaded by minibert", getattr(ours_again, field),
                     getattr(ours, field), atol=atol, kind="save and load")
    for i, (a, b, c) in enumerate(zip(ours_again.hidden_states, ours.hidden_states, exact.hidden_states, strict=True)):
        assert_close(f"hidden_states[{i}] after the round trip", a, b, atol=rounding_bound(b, c), kind="save and load")
    if class_name in WITH_MLM_HEAD:
        assert again.cls.predictions.decoder.weight is again.bert.embeddings.word_embeddings.weight


def test_config_round_trips_and_reads_as_transformers_reads_it(tmp_path):
    import transformers

    reference, model, folder = load_pair(tmp_path, "BertForSequenceClassification", 3, hidden_act="gelu_new",
                                         classifier_dropout=0.2)
    config = minibert.BertConfig.from_pretrained(folder)
    values = config.to_dict()
    assert minibert.BertConfig.from_dict(values).to_dict() == values
    assert minibert.BertConfig.from_dict(json.loads(config.to_json_string())).to_dict() == values
    config.to_json_file(tmp_path / "config.json")
    assert minibert.BertConfig.from_json_file(tmp_path / "config.json").to_dict() == values
    config.save_pretrained(tmp_path / "saved")
    assert minibert.BertConfig.from_pretrained(tmp_path / "saved").to_dict() == values

    # transformers reads what minibert writes, field for field.
    theirs = transformers.BertConfig.from_json_file(tmp_path / "config.json")
    for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                 "type_vocab_size", "layer_norm_eps", "pad_token_id", "initializer_range", "classifier_dropout",
                 "id2label", "label2id", "num_labels", "problem_type", "output_attentions", "output_hidden_states",
                 "return_dict", "model_type"):
        assert getattr(theirs, name) == getattr(config, name) == getattr(reference.config, name), name
    # Setting num_labels makes fresh labels, as in transformers.
    config.num_labels, theirs.num_labels = 5, 5
    assert config.id2label == theirs.id2label and config.label2id == theirs.label2id


# ---------------------------------------------------------------------------------------------
# Determinism, dropout, dtypes
# ---------------------------------------------------------------------------------------------

def test_two_forwards_are_identical(tmp_path):
    reference, model, _ = load_pair(tmp_path, "BertForPreTraining")
    inputs = random_inputs(reference.config)
    with torch.no_grad():
        first, second = model(**inputs, output_attentions=True), model(**inputs, output_attentions=True)
    assert_same("second forward", second.to_tuple(), first.to_tuple(), atol=0.0, kind="determinism (exact)")


def test_dropout_acts_in_training_mode_only(tmp_path):
    reference, model, _ = load_pair(tmp_path, "BertForSequenceClassification", 3, hidden_dropout_prob=0.1,
                                    attention_probs_dropout_prob=0.1)
    assert model.config.hidden_dropout_prob == 0.1 and not model.training  # from_pretrained gives eval mode
    inputs = random_inputs(reference.config)
    with torch.no_grad():
        model.train()
        torch.manual_seed(0)
        first, second = model(**inputs).logits, model(**inputs).logits
        model.eval()
        third, fourth = model(**inputs).logits, model(**inputs).logits
        expected = reference(**inputs).logits
    assert (first - second).abs().max() > 1e-3, "dropout in training mode changes the output from call to call"
    assert (first - expected).abs().max() > 1e-3
    assert torch.equal(third, fourth)
    assert_close("logits after train() then eval()", third, expected, kind=KIND)


# bfloat16 keeps 8 bits of mantissa (a relative step of 2**-8, 0.4%), and these outputs reach about 4,
# so one rounding is worth up to 0.016. Measured on these checkpoints: bfloat16 against float32 0.013,
# minibert's bfloat16 against transformers' 0.016 (the two round in different places). About 3x that:
BF16_VS_FLOAT32 = 0.05
BF16_VS_TRANSFORMERS = 0.05


@pytest.mark.parametrize("class_name", ["BertModel", "BertForMaskedLM"])
def test_bfloat16_and_float64(tmp_path, class_name):
    import transformers

    reference, model, folder = load_pair(tmp_path, class_name)
    inputs = random_inputs(reference.config)
    half = getattr(minibert, class_name).from_pretrained(folder, dtype=torch.bfloat16)
    reference_half = getattr(transformers, class_name).from_pretrained(
        folder, dtype=torch.bfloat16, attn_implementation="eager").eval()
    assert half.dtype == torch.bfloat16 and all(p.dtype == torch.bfloat16 for p in half.parameters())
    with torch.no_grad():
        full, low, low_reference = model(**inputs), half(**inputs), reference_half(**inputs)
    for field in OUTPUT_FIELDS[class_name]:
        assert getattr(low, field).dtype == torch.bfloat16
        assert_close(f"{field} bfloat16 vs float32", getattr(low, field), getattr(full, field),
                     atol=BF16_VS_FLOAT32, kind="bfloat16 vs float32")
        assert_close(f"{field} bfloat16 vs transformers bfloat16", getattr(low, field), getattr(low_reference, field),
                     atol=BF16_VS_TRANSFORMERS, kind="bfloat16 vs transformers bfloat16")

    model.to(torch.float64)
    reference.to(torch.float64)
    assert model.dtype == torch.float64
    with torch.no_grad():
        ours, expected = model(**inputs, output_attentions=True), reference(**inputs, output_attentions=True)
    for field in OUTPUT_FIELDS[class_name]:
        assert getattr(ours, field).dtype == torch.float64
        assert_close(f"{field} float64", getattr(ours, field), getattr(expected, field), atol=1e-12,
                     kind="float64 vs transformers float64")
    assert ours.attentions[0].dtype == torch.float64


# ---------------------------------------------------------------------------------------------
# inputs_embeds, resize_token_embeddings, num_parameters, the model surface
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("class_name,num_labels", HEADS, ids=HEAD_IDS)
def test_inputs_embeds_equals_input_ids(tmp_path, class_name, num_labels):
    reference, model, _ = load_pair(tmp_path, class_name, num_labels)
    inputs = random_inputs(reference.config)
    input_ids = inputs.pop("input_ids")
    with torch.no_grad():
        embeds = model.get_input_embeddings()(input_ids)  # (B, T, H)
        by_ids = model(input_ids, **inputs)
        by_embeds = model(inputs_embeds=embeds, **inputs)
        expected = reference(inputs_embeds=embeds, **inputs)
    for field in OUTPUT_FIELDS[class_name]:
        assert_close(f"{field} from inputs_embeds", getattr(by_embeds, field), getattr(by_ids, field), atol=0.0,
                     kind="inputs_embeds vs input_ids (exact)")
        assert_close(f"{field} from inputs_embeds, vs transformers", getattr(by_embeds, field),
                     getattr(expected, field), kind=KIND)


@pytest.mark.parametrize("new_size", [120, 80], ids=["grow", "shrink"])
@pytest.mark.parametrize("class_name", ["BertModel", "BertForMaskedLM", "BertForPreTraining"])
def test_resize_token_embeddings(tmp_path, class_name, new_size):
    reference, model, _ = load_pair(tmp_path, class_name)
    old_size = reference.config.vocab_size
    keep = min(old_size, new_size)
    old_rows = model.get_input_embeddings().weight[:keep].detach().clone()

    returned = model.resize_token_embeddings(new_size)
    reference.resize_token_embeddings(new_size)
    embeddings = model.get_input_embeddings()
    assert returned is embeddings and isinstance(embeddings, torch.nn.Embedding)
    assert tuple(embeddings.weight.shape) == (new_size, reference.config.hidden_size)
    assert model.config.vocab_size == reference.config.vocab_size == new_size
    assert torch.equal(embeddings.weight[:keep], old_rows)
    assert torch.equal(embeddings.weight[:keep], reference.get_input_embeddings().weight[:keep])
    if class_name in WITH_MLM_HEAD:
        assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
        assert model.get_output_embeddings().weight is embeddings.weight
        assert tuple(model.cls.predictions.bias.shape) == (new_size,)
        assert torch.equal(model.cls.predictions.bias[:keep], reference.cls.predictions.bias[:keep])

    inputs = random_inputs(reference.config)
    inputs["input_ids"] = inputs["input_ids"] % keep  # tokens both vocabularies had before resizing
    with torch.no_grad():
        ours, expected = model(**inputs), reference(**inputs)
    for field, per in OUTPUT_FIELDS[class_name].items():
        a, b = getattr(ours, field), getattr(expected, field)
        if field in ("logits", "prediction_logits"):
            assert a.shape[-1] == new_size
            a, b = a[..., :keep], b[..., :keep]  # new rows are random, differently in each library
        assert_close(f"{field} after resizing to {new_size}", a, b, kind=KIND)


@pytest.mark.parametrize("class_name,num_labels", HEADS, ids=HEAD_IDS)
def test_num_parameters(tmp_path, class_name, num_labels):
    reference, model, _ = load_pair(tmp_path, class_name, num_labels)
    for kwargs in ({}, dict(exclude_embeddings=True), dict(only_trainable=True)):
        assert model.num_parameters(**kwargs) == reference.num_parameters(**kwargs), kwargs
    (model.bert if hasattr(model, "bert") else model).embeddings.requires_grad_(False)
    reference.base_model.embeddings.requires_grad_(False)
    frozen = model.num_parameters(only_trainable=True)
    assert frozen == reference.num_parameters(only_trainable=True) < reference.num_parameters()
    assert model.num_parameters(only_trainable=True, exclude_embeddings=True) == \
        reference.num_parameters(only_trainable=True, exclude_embeddings=True)


@pytest.mark.parametrize("class_name,num_labels", HEADS, ids=HEAD_IDS)
def test_model_surface(tmp_path, class_name, num_labels):
    reference, model, _ = load_pair(tmp_path, class_name, num_labels)
    assert model.device == reference.device == torch.device("cpu")
    assert model.dtype == reference.dtype == torch.float32
    assert model.main_input_name == reference.main_input_name == "input_ids"
    ours_in, theirs_in = model.get_input_embeddings(), reference.get_input_embeddings()
    assert isinstance(ours_in, torch.nn.Embedding)
    assert ours_in is (model.bert if hasattr(model, "bert") else model).embeddings.word_embeddings
    assert_close("input embeddings", ours_in.weight, theirs_in.weight, atol=0.0, kind="weights (exact)")
    ours_out, theirs_out = model.get_output_embeddings(), reference.get_output_embeddings()
    assert (ours_out is None) == (theirs_out is None)
    if ours_out is not None:
        assert ours_out.weight is ours_in.weight
        assert_close("output embeddings", ours_out.weight, theirs_out.weight, atol=0.0, kind="weights (exact)")
    # Parameter names are transformers' (buffers aside), so a state dict moves between the two.
    assert sorted(dict(model.named_parameters())) == sorted(dict(reference.named_parameters()))
    # New word embeddings: after transformers' tie_weights() both models read them, in and out. (minibert
    # ties at once; transformers' decoder keeps the old matrix until tie_weights().)
    new = torch.nn.Embedding(*ours_in.weight.shape)
    model.set_input_embeddings(new)
    reference.set_input_embeddings(new)
    reference.tie_weights()
    assert model.get_input_embeddings() is reference.get_input_embeddings() is new
    if ours_out is not None:
        assert model.get_output_embeddings().weight is reference.get_output_embeddings().weight is new.weight


# ---------------------------------------------------------------------------------------------
# ConfigTester and ModelTesterMixin: num_labels, gradient checkpointing
# ---------------------------------------------------------------------------------------------

def test_config_with_num_labels():
    """ConfigTester.create_and_test_config_with_num_labels: num_labels given to the constructor makes
    that many labels, and setting it afterwards makes fresh ones."""
    import transformers

    for library in (minibert, transformers):
        config = library.BertConfig(num_labels=5)
        assert len(config.id2label) == len(config.label2id) == config.num_labels == 5, library.__name__
        config.num_labels = 3
        assert len(config.id2label) == len(config.label2id) == 3, library.__name__
    assert minibert.BertConfig(num_labels=5).id2label == transformers.BertConfig(num_labels=5).id2label


def test_gradient_checkpointing_enable_disable(tmp_path):
    """ModelTesterMixin.test_gradient_checkpointing_enable_disable, on minibert and transformers side by side."""
    import warnings

    reference, model, _ = load_pair(tmp_path, "BertForSequenceClassification", 3)
    assert model.supports_gradient_checkpointing and reference.supports_gradient_checkpointing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers 5.24 prefers activation_checkpointing_*
        assert not model.is_gradient_checkpointing and not reference.is_gradient_checkpointing
        model.gradient_checkpointing_enable()
        reference.gradient_checkpointing_enable()
        assert model.is_gradient_checkpointing and reference.is_gradient_checkpointing
        model.gradient_checkpointing_disable()
        reference.gradient_checkpointing_disable()
        assert not model.is_gradient_checkpointing and not reference.is_gradient_checkpointing
    # transformers 5.24's names for the same switch.
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    assert model.is_activation_checkpointing and model.is_gradient_checkpointing
    model.activation_checkpointing_disable()
    assert not model.is_gradient_checkpointing
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"preserve_rng_state": True})
    assert model.is_gradient_checkpointing
    # The reentrant variant gives no gradient to a layer whose input needs none (frozen embeddings, as
    # add_low_rank leaves them): refused by name rather than training nothing.
    with pytest.raises(ValueError, match="use_reentrant=False"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    with pytest.raises(TypeError, match="gradient_checkpointing_kwargs must be a dict"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=["use_reentrant"])


@pytest.mark.parametrize("class_name,num_labels", HEADS, ids=HEAD_IDS)
def test_training_gradient_checkpointing(tmp_path, class_name, num_labels):
    """ModelTesterMixin.test_training_gradient_checkpointing: a training step with checkpointing on gives
    every parameter a gradient, the same ones as transformers'; the loss is transformers' (dropout off)."""
    import warnings

    reference, model, _ = load_pair(tmp_path, class_name, num_labels, hidden_dropout_prob=0.0,
                                    attention_probs_dropout_prob=0.0)
    inputs = random_inputs(reference.config)
    labels = labels_for(class_name, num_labels, inputs, reference.config.vocab_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        reference.gradient_checkpointing_enable()
    model.gradient_checkpointing_enable()
    model.train()
    reference.train()
    ours, expected = model(**inputs, **labels), reference(**inputs, **labels)
    if not labels:  # BertModel: a loss of its own outputs
        ours, expected = ours.last_hidden_state.sum(), expected.last_hidden_state.sum()
    else:
        ours, expected = ours.loss, expected.loss
    assert_close("loss, checkpointed", ours, expected, atol=1e-4, kind=KIND)
    ours.backward()
    expected.backward()
    with_grad = sorted(n for n, p in model.named_parameters() if p.grad is not None)
    assert with_grad == sorted(n for n, p in reference.named_parameters() if p.grad is not None)
    assert set(with_grad) >= {n for n, _ in model.named_parameters() if "encoder.layer" in n}
