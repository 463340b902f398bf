"""The model leaves Python: torch.export, torch.compile, torch.jit.trace, the meta device (ONNX: test_onnx.py).

Each route must give the numbers the eager model gives, on a padded batch, so that the readable
model is also the one that ships. A recorded graph may run other kernels (inductor's own, a linear
decomposed into addmm), which sum in other orders, so each comparison allows 4 times the eager
model's own float32 rounding error, measured against it in float64 (conftest.rounding_bound). The
input checks that read values are skipped while a graph is recorded (they would break it); the shape
checks stay.
"""

import copy
import warnings

import pytest
import torch

import minibert
from conftest import assert_close, rounding_bound
from hf_checkpoints import BASE, make_hf_model, random_inputs, save_current

KIND = "export"
ALL_CLASSES = ("BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForNextSentencePrediction",
               "BertForSequenceClassification")
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A random model of each class, written by transformers, loaded by minibert."""
    folder = tmp_path_factory.mktemp("export")
    return {
        name: getattr(minibert, name).from_pretrained(save_current(make_hf_model(name, num_labels=3), folder / name))
        for name in ALL_CLASSES
    }


def in_float64(model: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(model).double()


def check(name: str, out: torch.Tensor, eager: torch.Tensor, exact: torch.Tensor) -> None:
    """A graph's output against the eager model's, within 4x eager's float32 rounding error (exact: eager in float64)."""
    assert_close(name, out, eager, atol=rounding_bound(eager, exact), kind=KIND)


def as_args(inputs: dict) -> tuple[torch.Tensor, ...]:
    return tuple(inputs[name] for name in INPUT_NAMES)


def dynamic_batch_and_length():
    batch = torch.export.Dim("batch", min=1, max=64)
    length = torch.export.Dim("length", min=1, max=BASE["max_position_embeddings"])
    return ({0: batch, 1: length},) * len(INPUT_NAMES)


@pytest.mark.parametrize("class_name,fields", [("BertModel", ("last_hidden_state", "pooler_output")),
                                               ("BertForSequenceClassification", ("logits",))])
def test_torch_export_with_dynamic_batch_and_length(checkpoints, class_name, fields):
    model = checkpoints[class_name]
    example = random_inputs(model.config, batch=3, length=11)
    program = torch.export.export(model, as_args(example), dynamic_shapes=dynamic_batch_and_length())
    exported = program.module()
    # The shape it was recorded with, and others: one row, a longer batch, a single token.
    for batch, length in ((3, 11), (1, 7), (5, 17), (2, 1)):
        inputs = random_inputs(model.config, batch=batch, length=length, seed=batch + length)
        with torch.no_grad():
            out, eager, exact = exported(*as_args(inputs)), model(**inputs), in_float64(model)(**inputs)
        assert type(out) is type(eager)  # the output dataclass comes back whole, through its pytree registration
        for field in fields:
            check(f"{field} ({batch}, {length})", getattr(out, field), getattr(eager, field), getattr(exact, field))


def test_torch_compile_fullgraph(checkpoints):
    """One graph, no breaks: fullgraph=True fails on any Python the compiler cannot follow."""
    model = checkpoints["BertModel"]
    compiled = torch.compile(model, fullgraph=True)
    inputs = random_inputs(model.config, batch=3, length=11)
    with torch.no_grad():
        out, eager = compiled(**inputs, output_hidden_states=True), model(**inputs, output_hidden_states=True)
        exact = in_float64(model)(**inputs, output_hidden_states=True)
    check("last_hidden_state", out.last_hidden_state, eager.last_hidden_state, exact.last_hidden_state)
    check("pooler_output", out.pooler_output, eager.pooler_output, exact.pooler_output)
    for i, (a, b, c) in enumerate(zip(out.hidden_states, eager.hidden_states, exact.hidden_states, strict=True)):
        check(f"hidden_states[{i}]", a, b, c)


@pytest.mark.parametrize("class_name", ALL_CLASSES)
def test_jit_trace_returns_a_dict_as_transformers_5(checkpoints, class_name):
    """torch.jit.trace(model, args, strict=False) returns a dict of the set fields, as transformers 5's traced
    models do (tests/test_dropin.py checks that against transformers itself); the numbers are the eager ones."""
    model = checkpoints[class_name]
    example = random_inputs(model.config, batch=3, length=11)
    with warnings.catch_warnings():
        # The shape checks turn into constants in the trace, and the tracer says so: expected.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, as_args(example), strict=False)
    for batch, length in ((3, 11), (2, 6)):
        inputs = random_inputs(model.config, batch=batch, length=length, seed=length)
        with torch.no_grad():
            out, eager, exact = traced(*as_args(inputs)), model(**inputs), in_float64(model)(**inputs)
        assert isinstance(out, dict) and list(out) == eager.keys()
        for field in eager.keys():
            check(f"traced {field} ({batch}, {length})", out[field], getattr(eager, field), getattr(exact, field))


@pytest.mark.parametrize("class_name,shapes", [
    ("BertModel", {"last_hidden_state": (4, 9, 32), "pooler_output": (4, 32)}),
    ("BertForPreTraining", {"prediction_logits": (4, 9, 99), "seq_relationship_logits": (4, 2)}),
    ("BertForMaskedLM", {"logits": (4, 9, 99)}),
    ("BertForNextSentencePrediction", {"logits": (4, 2)}),
    ("BertForSequenceClassification", {"logits": (4, 3)}),
])
def test_meta_device_gives_shapes(class_name, shapes):
    """On the meta device there are shapes and no numbers: a forward says what comes out, at no cost."""
    config = minibert.BertConfig(**BASE, id2label={0: "a", 1: "b", 2: "c"})
    with torch.device("meta"):
        model = getattr(minibert, class_name)(config).eval()
        input_ids = torch.zeros(4, 9, dtype=torch.long)
        attention_mask = torch.ones(4, 9, dtype=torch.long)
    assert model.device.type == "meta" and input_ids.is_meta
    out = model(input_ids, attention_mask, output_attentions=True)
    for field, shape in shapes.items():
        tensor = getattr(out, field)
        assert tensor.is_meta and tuple(tensor.shape) == shape, field
    assert [tuple(a.shape) for a in out.attentions] == [(4, 4, 9, 9)] * BASE["num_hidden_layers"]
    with pytest.raises(ValueError, match="attention_mask has shape"):  # shape checks still run on meta
        model(input_ids, attention_mask[:, :5])
