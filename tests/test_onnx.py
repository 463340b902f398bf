"""minibert.speed.onnx: the exported file in ONNX Runtime, and the session that checks its inputs.

ONNX Runtime is the reference here: the exported graph must give what the eager model gives. Its
fused LayerNorm and GELU kernels round otherwise, so the bound is 4 times the eager float32 model's
own rounding error, measured against the model in float64 (conftest.rounding_bound): at real tokens
that error is about 3e-6, at padding positions up to 6e-5. Every input the eager
model refuses must be refused by CheckedSession with the eager words, where a plain
InferenceSession runs it (a silent wrong answer) or fails deep inside.
"""

import copy
import re

import numpy as np
import pytest
import torch

import minibert
from conftest import assert_close, rounding_bound
from minibert.speed.onnx import INPUT_NAMES, CheckedSession, export_onnx

TEXTS = ["The bat flew out of the cave at night.", "Paris."]


@pytest.fixture(scope="module")
def exported(minilm_dir, tmp_path_factory):
    import onnxruntime  # noqa: F401  (a test dependency: never skipped)

    model = minibert.BertModel.from_pretrained(minilm_dir)
    tokenizer = minibert.Tokenizer.from_pretrained(minilm_dir)
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "minilm.onnx")
    return model, tokenizer, path


def feed_of(batch: dict) -> dict[str, np.ndarray]:
    return {name: batch[name].numpy().copy() for name in INPUT_NAMES}


def test_the_exported_file_gives_the_eager_numbers(exported):
    model, tokenizer, path = exported
    session = CheckedSession(path)
    assert session.input_names == list(INPUT_NAMES) and session.config.to_dict() == model.config.to_dict()
    assert not list(path.parent.glob("*.data")), "the weights are inside the one file"
    model64 = copy.deepcopy(model).double()  # the exact answer, near enough (float64 is 2**29 times finer)
    for texts in (TEXTS, ["He swung the bat.", "Penguins are flightless birds that live far from here.", "Run!"]):
        batch = tokenizer(texts)
        hidden, pooled = session.run(None, feed_of(batch))
        with torch.no_grad():
            eager, exact = model(**batch), model64(**batch)
        for name, theirs in (("last_hidden_state", hidden), ("pooler_output", pooled)):
            ours, ours64 = getattr(eager, name), getattr(exact, name)
            assert_close(name, torch.from_numpy(theirs), ours, atol=rounding_bound(ours, ours64), kind="onnxruntime")


def spoil(feed: dict, name: str, where: tuple, value) -> dict:
    feed = {k: v.copy() for k, v in feed.items()}
    feed[name][where] = value
    return feed


# Each input the eager model refuses, and what a plain InferenceSession does with it.
BAD_INPUTS = [
    ("attention_mask", (1, 0), 2, "runs"),
    ("attention_mask", (0, 3), -1, "runs"),
    ("input_ids", (0, 1), -5, "runs"),
    ("token_type_ids", (0, 1), -1, "runs"),
    ("input_ids", (0, 1), 40000, "fails"),
    ("token_type_ids", (1, 1), 2, "fails"),
]


@pytest.mark.parametrize("name,where,value,plain", BAD_INPUTS)
def test_what_the_eager_model_refuses_the_checked_session_refuses(exported, name, where, value, plain):
    import onnxruntime

    model, tokenizer, path = exported
    batch = tokenizer(TEXTS)
    bad = spoil(feed_of(batch), name, where, value)
    with pytest.raises(ValueError) as eager_error:
        model(**{k: torch.from_numpy(v) for k, v in bad.items()})
    with pytest.raises(ValueError) as checked_error:
        CheckedSession(path).run(None, bad)
    assert str(checked_error.value) == str(eager_error.value)

    # Why the wrapper exists: the value checks do not survive export.
    plain_session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if plain == "runs":
        hidden, _ = plain_session.run(None, bad)
        good, _ = plain_session.run(None, feed_of(batch))
        assert np.abs(hidden - good).max() > 0.01  # a silent wrong answer
    else:
        with pytest.raises(onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument, match="out of data bounds"):
            plain_session.run(None, bad)


def test_shapes_and_names_are_checked_too(exported):
    _, tokenizer, path = exported
    session = CheckedSession(path)
    feed = feed_of(tokenizer(TEXTS))
    with pytest.raises(ValueError, match=re.escape("attention_mask has shape (2, 5) but input_ids has shape (2, 12)")):
        session.run(None, {**feed, "attention_mask": feed["attention_mask"][:, :5]})
    with pytest.raises(ValueError, match="has 513 tokens, more than max_position_embeddings=512"):
        session.run(None, {name: np.ones((1, 513), dtype=np.int64) for name in INPUT_NAMES})
    with pytest.raises(KeyError, match=r"the graph takes \['input_ids', 'attention_mask', 'token_type_ids'\], "
                                       r"not \['position_ids'\]"):
        session.run(None, {**feed, "position_ids": feed["input_ids"]})
    # Any integer dtype is accepted, as by the eager model, and given to the graph as int64.
    small = {name: value.astype(np.int32) for name, value in feed.items()}
    assert np.array_equal(session.run(None, small)[0], session.run(None, feed)[0])


def test_a_file_without_the_config_needs_one(exported, minilm_dir, tmp_path):
    import onnx

    _, tokenizer, path = exported
    stripped = onnx.load(str(path))
    del stripped.metadata_props[:]
    onnx.save(stripped, str(tmp_path / "bare.onnx"))
    with pytest.raises(ValueError, match="holds no minibert config .* pass config=BertConfig or the checkpoint folder"):
        CheckedSession(tmp_path / "bare.onnx")
    session = CheckedSession(tmp_path / "bare.onnx", config=minilm_dir)
    with pytest.raises(ValueError, match="the mask holds 1 for a real token and 0 for padding"):
        session.run(None, spoil(feed_of(tokenizer(TEXTS)), "attention_mask", (0, 0), 2))
