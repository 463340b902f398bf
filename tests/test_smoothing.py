"""SmoothQuant factors (minibert/speed/smoothing.py) against independent references: the formula worked by
hand, transformers' hidden states for the calibration ranges, and transformers' outputs for the smoothed model
(smoothing changes no number but by rounding: x W^T = (x / s) (W * s)^T).
"""

import pytest
import torch

import minibert
from conftest import assert_close
from minibert.speed.smoothing import SmoothedLinear, calibration_texts, input_ranges, smooth, smoothing_factors

TEXTS = ["The bat flew out of the cave at night.", "He swung the bat and hit a home run.", "Paris.",
         "A much longer sentence, about a bat that flew out of a cave at night while it rained."]


def test_factors_follow_the_formula_by_hand():
    x_range = torch.tensor([16.0, 1.0, 0.0])  # a channel with an outlier, a plain one, one never used
    weight = torch.tensor([[0.5, -0.25, 0.1], [-1.0, 0.125, 0.0]])  # (out 2, in 3): column maxima 1, 0.25, 0.1
    factors = smoothing_factors(x_range, weight, alpha=0.5)
    # 16 ** 0.5 / 1 ** 0.5 = 4; 1 / 0.25 ** 0.5 = 2; 1e-5 ** 0.5 / 0.1 ** 0.5 = 0.01 (ranges kept above 1e-5)
    assert_close("factors, alpha 0.5", factors, torch.tensor([4.0, 2.0, 0.01]), atol=1e-7, kind="smoothing by hand")
    assert torch.equal(smoothing_factors(x_range, weight, alpha=0.0), 1 / weight.abs().amax(0))
    assert_close("alpha 1 flattens the activations", smoothing_factors(x_range, weight, alpha=1.0),
                 x_range.clamp(min=1e-5), atol=0, kind="smoothing by hand")


def test_smooth_multiplies_each_weight_column_and_keeps_the_product():
    """smooth() on a one-Linear model: the weight's column j times s[j], by the formula worked here, and the
    product unchanged in float64; the smoothed input's channels are flatter than the raw ones."""
    torch.manual_seed(0)
    model = torch.nn.Module()
    model.encoder = torch.nn.Module()
    model.encoder.dense = torch.nn.Linear(8, 4).double()
    x = torch.randn(5, 8, dtype=torch.float64)
    x[:, 3] *= 30  # an outlier channel, as BERT has
    x_range = x.abs().amax(0)  # (8,)
    smoothed = smooth(model, {"encoder.dense": x_range.float()}, alpha=0.6)
    weight = model.encoder.dense.weight.detach()  # (4, 8): the caller's, unchanged
    by_hand = x_range ** 0.6 / weight.abs().amax(0) ** 0.4  # (8,)
    assert isinstance(smoothed.encoder.dense, SmoothedLinear)
    assert_close("smoothed weight", smoothed.encoder.dense.linear.weight, weight * by_hand, atol=1e-6,
                 kind="smoothing by hand")  # the factors are float32: 1e-6 of relative rounding
    assert_close("smoothed product, float64", smoothed.encoder.dense(x), model.encoder.dense(x), atol=1e-12,
                 kind="smoothing by hand")
    spread = lambda t: (t.abs().amax(0).max() / t.abs().amax(0).min()).item()  # noqa: E731
    assert spread(x * smoothed.encoder.dense.inverse) < spread(x) / 3  # the outlier no longer dwarfs the rest


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return minibert.BertModel.from_pretrained(minilm_dir), minibert.Tokenizer.from_pretrained(minilm_dir)


def test_calibration_ranges_are_transformers_hidden_states_maxima(minilm, minilm_dir):
    """The input of layer i's query, key and value is transformers' hidden_states[i]; each text runs alone,
    so no padded position counts."""
    import transformers

    model, tokenizer = minilm
    ranges = input_ranges(model, tokenizer, TEXTS)
    reference = transformers.BertModel.from_pretrained(minilm_dir).eval()
    per_text = []
    with torch.no_grad():
        for text in TEXTS:
            hidden = reference(**tokenizer([text]), output_hidden_states=True).hidden_states  # L+1 of (1, T, H)
            per_text.append(torch.stack([h[0].abs().amax(0) for h in hidden]))  # (L+1, H)
    expected = torch.stack(per_text).amax(0)  # (L+1, H)
    for i in range(model.config.num_hidden_layers):
        for name in ("query", "key", "value"):
            assert_close(f"range of layer {i} {name}", ranges[f"encoder.layer.{i}.attention.self.{name}"], expected[i],
                         kind="calibration ranges vs transformers")
    # Every Linear, by transformers' own modules of the same names, seen by forward pre-hooks, text by text.
    seen = {}

    def record(name):
        def hook(module, args):
            found = args[0].detach().abs().flatten(0, -2).amax(0)
            seen[name] = torch.maximum(seen[name], found) if name in seen else found
        return hook

    handles = [module.register_forward_pre_hook(record(name)) for name, module in reference.named_modules()
               if isinstance(module, torch.nn.Linear) and name.startswith("encoder.")]
    with torch.no_grad():
        for text in TEXTS:
            reference(**tokenizer([text]))
    for handle in handles:
        handle.remove()
    assert sorted(ranges) == sorted(seen) and len(ranges) == 6 * model.config.num_hidden_layers
    for name in ranges:
        assert_close(f"range of {name}", ranges[name], seen[name], kind="calibration ranges vs transformers")


def test_the_smoothed_model_equals_transformers_but_for_rounding(minilm, minilm_dir):
    import transformers

    model, tokenizer = minilm
    smoothed = smooth(model, input_ranges(model, tokenizer, calibration_texts(32)))
    assert isinstance(smoothed.encoder.layer[5].attention.self.value, SmoothedLinear)
    assert type(model.encoder.layer[5].attention.self.value) is torch.nn.Linear  # the caller's model is untouched
    batch = tokenizer(TEXTS)  # padded
    with torch.no_grad():
        expected = transformers.BertModel.from_pretrained(minilm_dir).eval()(**batch).last_hidden_state
        found = smoothed(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    assert_close("smoothed hidden states", found[real], expected[real], kind="smoothed vs transformers")


def test_calibration_text_is_gensims_news_corpus():
    texts = calibration_texts()
    assert len(texts) == 512 and all(isinstance(t, str) and t.strip() for t in texts)
    assert texts[0].startswith("Hundreds of people have been forced to vacate their homes in the Southern Highlands")
    assert texts[0].endswith("Hill Top.") and texts[1].startswith("A new blaze near Goulburn")  # one sentence each


def test_bad_input_is_refused_clearly(minilm):
    model, tokenizer = minilm
    ranges = input_ranges(model, tokenizer, TEXTS[:1])
    with pytest.raises(ValueError, match="alpha must be between 0 and 1, not 1.5"):
        smooth(model, ranges, alpha=1.5)
    with pytest.raises(ValueError, match="no calibration range for encoder.layer.0.attention.self.query"):
        smooth(model, {k: v for k, v in ranges.items() if "layer.0.attention.self.query" not in k})
    wrong = {**ranges, "encoder.layer.2.output.dense": torch.ones(384)}
    with pytest.raises(ValueError, match=r"the range of encoder.layer.2.output.dense has shape \(384,\); its Linear takes 1536"):
        smooth(model, wrong)
    with pytest.raises(ValueError, match="calibration needs at least one text"):
        input_ranges(model, tokenizer, [])
