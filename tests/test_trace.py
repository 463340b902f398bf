"""The trace (every named intermediate) and the layer-by-layer diff against transformers."""

import pytest
import torch

import minibert
from conftest import MINILM_REPO_ID, assert_close
from hf_checkpoints import make_hf_model, random_inputs, save_current
from minibert.app.cli import main
from minibert.inside.trace import ATTENTION_STEPS, compare, diff, first_divergence, trace
from test_minibert_cli import assert_real_picture

SENTENCES = ["The bat flew out of the cave at night.", "He swung the bat."]


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return minibert.BertModel.from_pretrained(minilm_dir), minibert.Tokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def reference(minilm_dir):
    import transformers

    return transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()


def expected_names(num_layers: int) -> list[str]:
    names = ["embeddings.word", "embeddings.token_type", "embeddings.position", "embeddings.sum", "embeddings.LayerNorm"]
    for i in range(num_layers):
        names += [f"encoder.layer.{i}.attention.{step}" for step in ATTENTION_STEPS]
        names += [f"encoder.layer.{i}.attention.output", f"encoder.layer.{i}.intermediate.dense",
                  f"encoder.layer.{i}.intermediate.act", f"encoder.layer.{i}.output"]
    return names + ["pooler"]


def test_trace_names_shapes_and_values(minilm):
    model, tok = minilm
    batch = tok(SENTENCES)
    B, T = batch["input_ids"].shape
    with torch.no_grad(), trace(model) as t:
        out = model(**batch, output_attentions=True, output_hidden_states=True)
    assert t.names() == expected_names(6)
    shapes = t.shapes()
    assert shapes["embeddings.word"] == (B, T, 384)
    assert shapes["embeddings.position"] == (1, T, 384)  # one row of positions, broadcast over the batch
    for step, shape in [("query", (B, 12, T, 32)), ("scores", (B, 12, T, T)), ("probs", (B, 12, T, T)),
                        ("context", (B, 12, T, 32))]:
        assert shapes[f"encoder.layer.3.attention.{step}"] == shape
    assert shapes["encoder.layer.0.intermediate.dense"] == (B, T, 1536)
    assert shapes["pooler"] == (B, 384)
    # The recorded tensors are the ones the model returns.
    for i in range(6):
        assert torch.equal(t[f"encoder.layer.{i}.attention.probs"], out.attentions[i])
        assert torch.equal(t[f"encoder.layer.{i}.output"], out.hidden_states[i + 1])
    assert torch.equal(t["encoder.layer.5.output"], out.last_hidden_state)
    assert torch.equal(t["embeddings.LayerNorm"], out.hidden_states[0])
    assert torch.equal(t["pooler"], out.pooler_output)
    # The steps are what their names say.
    assert torch.equal(t["embeddings.sum"], t["embeddings.word"] + t["embeddings.token_type"] + t["embeddings.position"])
    assert torch.equal(torch.softmax(t["encoder.layer.2.attention.masked_scores"], -1), t["encoder.layer.2.attention.probs"])
    padded = batch["attention_mask"][1] == 0
    assert torch.equal(t["encoder.layer.2.attention.scores"][1][..., ~padded],
                       t["encoder.layer.2.attention.masked_scores"][1][..., ~padded])
    assert (t["encoder.layer.2.attention.probs"][1][..., padded] == 0).all()


def test_trace_leaves_no_hooks(minilm):
    model, tok = minilm
    with trace(model):
        pass
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_trace_records_head_logits(tmp_path):
    reference = make_hf_model("BertForPreTraining")
    model = minibert.BertForPreTraining.from_pretrained(save_current(reference, tmp_path))
    inputs = random_inputs(reference.config)
    with torch.no_grad(), trace(model) as t:
        out = model(**inputs)
    assert torch.equal(t["prediction_logits"], out.prediction_logits)
    assert torch.equal(t["seq_relationship_logits"], out.seq_relationship_logits)
    assert "pooler" in t


@pytest.mark.parametrize("pair", [None, "He bought a gallon of milk."])
def test_diff_is_all_ok_on_the_shipped_model(minilm, reference, pair):
    model, tok = minilm
    batch = tok(SENTENCES, [pair] * 2) if pair else tok(SENTENCES)
    rows = diff(model, reference, batch)
    assert first_divergence(rows) is None
    compared = [row for row in rows if row.status == "OK"]
    assert len(compared) == len(rows) - 12  # scores and masked scores are not exposed by transformers
    for row in compared:
        assert_close(row.name, torch.tensor(row.max_abs_diff), torch.tensor(0.0), kind="diff rows")


def test_diff_points_at_a_wrong_layer_norm_epsilon(minilm_dir, reference, minilm):
    _, tok = minilm
    broken = minibert.BertModel.from_pretrained(minilm_dir)
    broken.encoder.layer[3].attention.output.LayerNorm.eps = 1e-3  # BERT uses 1e-12
    rows = diff(broken, reference, tok(SENTENCES))
    first = first_divergence(rows)
    assert first.name == "encoder.layer.3.attention.output" and first.status == "DIFF"
    assert all(row.status in ("OK", "-") for row in rows[: rows.index(first)])


def test_diff_points_at_a_wrong_activation(minilm_dir, reference, minilm):
    _, tok = minilm
    broken = minibert.BertModel.from_pretrained(minilm_dir)
    broken.encoder.layer[2].intermediate.hidden_act = "gelu_new"  # the checkpoint says exact "gelu"
    first = first_divergence(diff(broken, reference, tok(SENTENCES)))
    assert first.name == "encoder.layer.2.intermediate.act"


def test_diff_command(capsys, hub_cache):
    code = main(["diff", MINILM_REPO_ID, "The bat flew out of the cave at night."])
    out = capsys.readouterr().out
    assert code == 0
    assert "All 60 compared intermediates agree within 1e-05" in out
    assert "encoder.layer.5.output" in out


def test_attention_grid_and_across_layers(capsys, tmp_path, minilm_dir):
    assert main(["attention", "He swung the bat.", "--layer", "2", "--head", "all", "-o", str(tmp_path / "grid.png"),
                 "--model", str(minilm_dir)]) == 0
    assert main(["attention", "He swung the bat.", "--pair", "It was wooden.", "--to-token", "bat",
                 "-o", str(tmp_path / "to.png"), "--model", str(minilm_dir)]) == 0
    assert_real_picture(tmp_path / "grid.png")
    assert_real_picture(tmp_path / "to.png")
    assert main(["attention", "He swung it.", "--to-token", "bat", "-o", str(tmp_path / "x.png"),
                 "--model", str(minilm_dir)]) == 1
    assert "the token 'bat' is not among the tokens" in capsys.readouterr().err


@pytest.mark.parametrize("atol", [float("nan"), -1e-5, float("inf")])
def test_compare_refuses_a_tolerance_that_decides_nothing(atol):
    # NaN called every tensor different; a negative one the same; inf every one equal
    with pytest.raises(ValueError, match=r"atol must be a number >= 0, got"):
        compare(None, None, atol)


def test_compare_takes_any_real_number_as_tolerance():
    import numpy as np

    from minibert.inside.trace import Trace

    ours, reference = Trace(), Trace()
    ours.record("x", torch.zeros(2))
    reference.record("x", torch.full((2,), 5e-6))
    for atol in (np.float32(1e-5), torch.tensor(1e-5), 1e-5):  # numpy and 0-d tensor numbers too
        assert [row.status for row in compare(ours, reference, atol)] == ["OK"]
    assert [row.status for row in compare(ours, reference, 0)] == ["DIFF"]
