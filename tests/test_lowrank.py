"""Low-rank updates (minibert/training/lowrank.py) against the formula written out by hand, and the
invariants that make them safe to ship: B = 0 changes nothing, merging changes no output, and
applying saved factors to a fresh model rebuilds the merged one."""

import pytest
import torch

import minibert
from conftest import assert_close
from minibert.training.lowrank import (TARGETS, LowRankLinear, add_low_rank, apply_low_rank, low_rank_factors,
                                       merge_low_rank)


def tiny_classifier(seed: int = 0) -> minibert.BertForSequenceClassification:
    config = minibert.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=24, max_position_embeddings=16, hidden_dropout_prob=0.0,
                                 attention_probs_dropout_prob=0.0)
    config.num_labels = 1
    torch.manual_seed(seed)
    return minibert.BertForSequenceClassification(config).eval()


def randomise_updates(model, seed: int = 1) -> None:
    """B starts at zero; give it values so that the updates do something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LowRankLinear):
                module.lora_B.copy_(torch.randn(module.lora_B.shape, generator=g) * 0.1)


IDS = torch.tensor([[1, 5, 7, 9, 2, 0], [1, 3, 4, 2, 0, 0]])
MASK = (IDS != 0).long()


def test_the_layer_computes_the_formula_and_its_gradients():
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 5)
    layer = LowRankLinear(base, rank=2, alpha=3.0)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(4, 3, 6, dtype=torch.float64)
    layer = layer.double()
    W, b, A, B = (t.detach().clone().requires_grad_(True) for t in (layer.weight, layer.bias, layer.lora_A, layer.lora_B))
    expected = x @ (W + (3.0 / 2) * B @ A).T + b  # y = x (W + (alpha/r) B A)^T + b
    got = layer(x)
    assert_close("LowRankLinear output", got, expected, atol=1e-12, kind="low-rank vs the formula")
    grad = torch.randn_like(expected)
    expected.backward(grad)
    got.backward(grad)
    assert_close("dL/dA", layer.lora_A.grad, A.grad, atol=1e-12, kind="low-rank vs the formula")
    assert_close("dL/dB", layer.lora_B.grad, B.grad, atol=1e-12, kind="low-rank vs the formula")
    assert layer.weight.grad is None and layer.bias.grad is None  # the pre-trained weight is frozen


def test_with_b_zero_the_model_is_exactly_the_pre_trained_one_and_only_the_updates_pooler_and_head_learn():
    model = tiny_classifier()
    before = model(IDS, attention_mask=MASK).logits
    names = add_low_rank(model, rank=4)
    assert len(names) == len(TARGETS) * 2 and all(n.startswith("bert.encoder.layer.") for n in names)
    assert torch.equal(model(IDS, attention_mask=MASK).logits, before)
    learning = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert all(n.endswith(("lora_A", "lora_B")) or n.startswith(("bert.pooler.", "classifier.")) for n in learning)
    assert sum(n.endswith("lora_A") for n in learning) == len(names)
    # the pre-trained tensors keep their names: a checkpoint loads into the wrapped model as it is
    assert {n for n in model.state_dict() if "lora_" not in n} == set(tiny_classifier().state_dict())


def test_merging_changes_no_output_and_the_saved_factors_rebuild_the_merged_model():
    model = tiny_classifier()
    add_low_rank(model, rank=4)
    randomise_updates(model)
    unmerged = model(IDS, attention_mask=MASK).logits
    factors = {k: v.clone() for k, v in low_rank_factors(model).items()}
    head = {n: p.detach().clone() for n, p in model.named_parameters() if n.startswith(("bert.pooler.", "classifier."))}
    merge_low_rank(model)
    assert not any(isinstance(m, LowRankLinear) for m in model.modules())
    assert set(model.state_dict()) == set(tiny_classifier().state_dict())
    merged = model(IDS, attention_mask=MASK).logits
    assert not torch.allclose(merged, tiny_classifier()(IDS, attention_mask=MASK).logits)  # the updates did something
    assert_close("logits", merged, unmerged, atol=1e-6, kind="low-rank merged vs unmerged")

    fresh = tiny_classifier()  # the pre-trained model again, plus what was kept
    applied = apply_low_rank(fresh, factors, alpha_over_rank=2.0)  # add_low_rank's default alpha is 2 * rank
    assert len(applied) == len(factors) // 2
    fresh.load_state_dict({**fresh.state_dict(), **head})
    for name, tensor in model.state_dict().items():
        assert_close(name, fresh.state_dict()[name], tensor, atol=1e-6, kind="low-rank applied vs merged")


def test_factors_that_do_not_fit_are_refused_and_change_nothing():
    model = tiny_classifier()
    add_low_rank(model, rank=2)
    factors = low_rank_factors(model)
    before = {k: v.clone() for k, v in tiny_classifier().state_dict().items()}
    name = "bert.encoder.layer.1.intermediate.dense"
    for broken, error, words in (
        ({**factors, f"{name}.lora_A": torch.zeros(2, 24)}, ValueError, "does not make its weight's"),
        ({k: v for k, v in factors.items() if k != f"{name}.lora_B"}, KeyError, "no matching"),
        ({**factors, "bert.encoder.layer.9.output.dense.lora_A": torch.zeros(2, 24),
          "bert.encoder.layer.9.output.dense.lora_B": torch.zeros(16, 2)}, KeyError, "has no module"),
    ):
        plain = tiny_classifier()
        with pytest.raises(error, match=words):
            apply_low_rank(plain, broken, 1.0)
        assert all(torch.equal(plain.state_dict()[k], before[k]) for k in before), "half-applied updates"


def test_bad_ranks_and_models_are_refused():
    with pytest.raises(ValueError, match="rank=0 must be a positive integer"):
        LowRankLinear(torch.nn.Linear(4, 4), rank=0, alpha=1.0)
    with pytest.raises(ValueError, match="not low"):
        LowRankLinear(torch.nn.Linear(4, 4), rank=5, alpha=1.0)
    with pytest.raises(TypeError, match="no BERT encoder"):
        add_low_rank(torch.nn.Linear(4, 4))


@pytest.mark.parametrize("rank,error,words", [(2.5, TypeError, "rank=2.5 must be a whole number"),
                                              (True, TypeError, "rank=True must be a whole number"),
                                              ("4", TypeError, "rank='4' must be a whole number"),
                                              (0, ValueError, "rank=0 must be a positive integer")])
def test_a_rank_that_is_not_a_positive_whole_number_is_refused_by_name(rank, error, words):
    model = tiny_classifier()
    with pytest.raises(error, match=words):  # was: torch's "empty() takes 1 positional argument"
        add_low_rank(model, rank=rank)
    assert not any(isinstance(m, LowRankLinear) for m in model.modules())  # nothing half-done


@pytest.mark.parametrize("alpha", [0, -2.0, float("nan"), float("inf"), "8"])
def test_an_alpha_that_is_not_a_positive_number_is_refused(alpha):
    with pytest.raises((TypeError, ValueError), match=f"alpha={alpha!r}"):
        add_low_rank(tiny_classifier(), rank=2, alpha=alpha)


def test_adding_low_rank_updates_twice_is_refused_with_what_to_do():
    model = tiny_classifier()
    add_low_rank(model, rank=2)
    with pytest.raises(ValueError) as err:  # was: "no encoder Linear ends with any of (...)"
        add_low_rank(model, rank=4)
    message = str(err.value)
    assert "already has low-rank updates" in message and "bert.encoder.layer.0.attention.self.query" in message
    assert "merge_low_rank" in message and len(message.splitlines()) == 1
    merge_low_rank(model)
    assert len(add_low_rank(model, rank=4)) == len(TARGETS) * 2  # after merging, new updates go on the merged weights


def test_save_pretrained_before_merging_is_refused_before_anything_is_written(tmp_path):
    """save_pretrained wrote lora_A and lora_B beside the frozen weights, a file from_pretrained then refused."""
    model = tiny_classifier()
    add_low_rank(model, rank=2)
    with pytest.raises(ValueError, match=r"holds low-rank updates not yet merged into their weights \(12 Linear "
                                         r"layers, the first bert\.encoder\.layer\.0\..*call merge_low_rank\(model\) "
                                         r"before save_pretrained"):
        model.save_pretrained(tmp_path / "unmerged")
    assert not (tmp_path / "unmerged").exists()
    merge_low_rank(model)
    assert minibert.BertForSequenceClassification.from_pretrained(model.save_pretrained(tmp_path / "merged"))


def test_a_checkpoint_saved_before_merging_is_refused_in_one_line_and_after_merging_loads(tmp_path):
    """Saved with its updates in place (as the Trainer's resumable checkpoints are, keep_low_rank=True), a
    model's file holds the factors beside the frozen weights; from_pretrained says so in one line (was: every
    lora_A and lora_B listed as an unexpected tensor), and what to do."""
    model = tiny_classifier()
    add_low_rank(model, rank=2)
    randomise_updates(model)
    with torch.no_grad():
        expected = model(IDS, attention_mask=MASK).logits
    folder = model.save_pretrained(tmp_path / "unmerged", keep_low_rank=True)
    with pytest.raises(minibert.CheckpointError) as err:
        minibert.BertForSequenceClassification.from_pretrained(folder)
    message = str(err.value)
    assert "holds low-rank updates that were never merged" in message and "12 Linear layers" in message
    assert "the first bert.encoder.layer.0." in message and "merge_low_rank" in message
    assert len(message.splitlines()) == 1
    # The way back the message gives: the model it came from, its state, merged, saved again.
    rebuilt = tiny_classifier(seed=5)
    add_low_rank(rebuilt, rank=2)
    from safetensors.torch import load_file

    rebuilt.load_state_dict(load_file(folder / "model.safetensors"))
    merge_low_rank(rebuilt)
    loaded = minibert.BertForSequenceClassification.from_pretrained(rebuilt.save_pretrained(tmp_path / "merged"))
    with torch.no_grad():
        assert_close("logits after merge, save and load", loaded(IDS, attention_mask=MASK).logits, expected,
                     atol=1e-6, kind="low-rank merged vs unmerged")
