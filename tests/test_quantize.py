"""The int8 tier (minibert/speed/quantize.py) against independent references: the quantization
formula worked by hand, exact integer arithmetic, and the float32 model's own embeddings.

The accuracy test runs the real all-MiniLM-L6-v2 on 200 texts of mixed kinds and lengths (the
corpus of scripts/quantize_table.py, which prints the full per-layer table).
"""

import importlib.util
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import minibert
from conftest import assert_close
from minibert.speed.encode import SentenceEncoder, SentencePipeline, encode, layer_table
from minibert.speed.fast import FastBertModel
from minibert.speed import quantize as Q
from minibert.speed.quantize import Int8Linear, quantize_dynamic_int8

ROOT = Path(__file__).resolve().parents[1]
KIND = "int8 vs reference"


def load_script():
    """scripts/quantize_table.py as a module, for its corpus (importing it runs nothing)."""
    spec = importlib.util.spec_from_file_location("quantize_table", ROOT / "scripts" / "quantize_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    model = minibert.BertModel.from_pretrained(minilm_dir)
    return model, FastBertModel.from_model(model), minibert.Tokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def quantized_fast(minilm):
    return quantize_dynamic_int8(minilm[1])


# ---------------------------------------------------------------------------------------------
# The formula, by hand
# ---------------------------------------------------------------------------------------------

def test_weight_quantization_matches_the_formula_by_hand():
    weight = torch.tensor([
        [2.54, -1.0, 0.314, 0.061, -0.009],  # max 2.54: scale 0.02
        [0.0, 0.0, 0.0, 0.0, 0.0],  # all zero: q = 0, not NaN
        [-0.127, 0.001, 0.05, 0.0629, -0.0],  # max 0.127: scale 0.001
    ])
    q, scale = Q.quantize_per_channel(weight)
    # round(w / scale), worked out by hand: 2.54 / 0.02 = 127, -1 / 0.02 = -50, 0.314 / 0.02 = 15.7 -> 16, ...
    assert q.dtype == torch.int8
    assert q.tolist() == [[127, -50, 16, 3, 0], [0, 0, 0, 0, 0], [-127, 1, 50, 63, 0]]
    assert scale.dtype == torch.float32 and scale.shape == (3,)
    assert_close("weight scales", scale[[0, 2]], torch.tensor([0.02, 0.001]), atol=1e-9, kind=KIND)
    assert 0 < scale[1] < 1e-30  # a zero row's scale: the smallest positive float, not 0


def test_weight_quantization_error_is_at_most_half_a_step():
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(64, 96, generator=generator) * torch.rand(64, 1, generator=generator)  # (N, K), rows of all sizes
    weight[3, 5] = 40.0  # an outlier squeezes its own row only: that is what per-channel scales are for
    q, scale = Q.quantize_per_channel(weight)
    # Independently, in float64: the formula as written.
    expected_scale = weight.double().abs().amax(dim=1) / 127  # (N,)
    expected_q = torch.round(weight.double() / expected_scale[:, None]).clamp(-127, 127)  # (N, K)
    assert torch.equal(q.double(), expected_q)
    assert_close("weight scales, random", scale, expected_scale, atol=1e-8, kind=KIND)  # float32 rounding of 0.3
    assert (q.abs().amax(dim=1) == 127).all()  # each row's largest entry maps to +-127
    error = (q.double() * scale.double()[:, None] - weight.double()).abs()  # (N, K)
    assert (error <= scale.double()[:, None] / 2 * (1 + 1e-6)).all()
    others = torch.ones(64, dtype=torch.bool)
    others[3] = False
    assert scale[3] > 10 * scale[others].max()  # the outlier coarsened its own row, not the others


def test_per_token_scales_are_each_rows_own():
    x = torch.tensor([[0.5, -0.25, 0.1], [100.0, 50.0, -1.0]])
    q, scale = Q.quantize_per_token(x)
    assert q.tolist() == [[127, -64, 25], [127, 64, -1]]  # 0.25 * 254 = 63.5 -> 64 (ties to even); 0.1 * 254 = 25.4
    assert_close("token scales", scale, torch.tensor([[0.5 / 127], [100.0 / 127]]), atol=1e-9, kind=KIND)
    q_tensor, scale_tensor = Q.quantize_per_tensor(x)
    assert q_tensor[0].tolist() == [1, 0, 0]  # one scale for both rows: the small row is nearly lost
    assert scale_tensor.shape == (1, 1)


# ---------------------------------------------------------------------------------------------
# The integer product
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("use_int_mm", [True, False], ids=["torch._int_mm", "int32 fallback"])
def test_int8_matmul_is_exact(use_int_mm, monkeypatch):
    if use_int_mm and not Q.int_mm_works():
        pytest.skip("torch._int_mm does not work on this build")
    monkeypatch.setattr(Q, "int_mm_works", lambda: use_int_mm)
    generator = torch.Generator().manual_seed(1)
    a = torch.randint(-127, 128, (37, 1536), generator=generator, dtype=torch.int8)  # (M, K)
    b = torch.randint(-127, 128, (1536, 384), generator=generator, dtype=torch.int8)  # (K, N)
    a[0], b[:, 0] = -127, -127  # the largest sum there can be: 1536 * 127 * 127 = 24,774,144
    product = Q.int8_matmul(a, b)
    assert product.dtype == torch.int32
    assert torch.equal(product.long(), a.long() @ b.long())  # int64 reference
    assert product[0, 0].item() == 1536 * 127 * 127


def test_int8_matmul_is_exact_where_the_cpu_has_no_vnni():
    """oneDNN limited to AVX2 (a CPU without VNNI; ONEDNN_MAX_CPU_ISA=AVX2 makes any x86-64 CPU one) adds
    pairs of int8 products in 16 bits, which saturate: torch._int_mm was wrong there for full-range
    values, while int_mm_works' probe of small values passed, and Int8Linear was off by up to 0.86."""
    import subprocess
    import sys

    script = (
        "import torch\n"
        "from minibert.speed import quantize as Q\n"
        "g = torch.Generator().manual_seed(5)\n"
        "a = torch.randint(-127, 128, (37, 1536), generator=g, dtype=torch.int8)\n"
        "b = torch.randint(-127, 128, (1536, 384), generator=g, dtype=torch.int8)\n"
        "print(torch.equal(Q.int8_matmul(a, b).long(), a.long() @ b.long()), Q.int_mm_works())\n"
    )
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    exact, uses_int_mm = result.stdout.split()
    assert exact == "True", f"int8_matmul is not exact under oneDNN AVX2 (torch._int_mm used: {uses_int_mm})"


def test_activation_quantization_error_is_at_most_half_a_step():
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(50, 384, generator=generator) * torch.rand(50, 1, generator=generator) * 10  # (M, K)
    q, scale = Q.quantize_per_token(x)
    expected_scale = x.double().abs().amax(dim=1, keepdim=True) / 127  # (M, 1), the formula in float64
    assert_close("token scales, random", scale, expected_scale, atol=1e-7, kind=KIND)
    error = (q.double() * scale.double() - x.double()).abs()  # (M, K)
    assert (error <= scale.double() / 2 * (1 + 1e-6)).all()
    assert (q.abs().amax(dim=1) == 127).all()


@pytest.mark.parametrize("threshold", [None, 6.0], ids=["no outliers", "outliers in float"])
def test_int8_linear_equals_the_float_product_of_its_dequantized_operands(threshold):
    torch.manual_seed(2)
    linear = torch.nn.Linear(384, 1536)
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(2, 9, 384, generator=generator)  # (B, T, K)
    x[:, :, 17] *= 12  # an outlier channel, as BERT's hidden states have
    layer = Int8Linear(linear, outlier_threshold=threshold).eval()
    y = layer(x)  # (B, T, N)
    assert y.shape == (2, 9, 1536) and y.dtype == torch.float32

    # The reference: the same int8 operands, dequantized and multiplied in float64.
    rows = x.reshape(18, 384)  # (M, K)
    outliers = torch.zeros_like(rows)
    if threshold is not None:
        outliers = torch.where(rows.abs() > threshold, rows, 0.0)  # (M, K), the formula: |x| > 6 stays float
    x_int8, x_scale = Q.quantize_per_token(rows - outliers)  # (M, K), (M, 1): checked by the tests above
    w_int8, w_scale = Q.quantize_per_channel(linear.weight.detach())  # (N, K), (N,)
    assert torch.equal(layer.weight_int8, w_int8)
    x_dequantized = x_int8.double() * x_scale.double() + outliers.double()  # (M, K)
    w_dequantized = w_int8.double() * w_scale.double()[:, None]  # (N, K)
    expected = x_dequantized @ w_dequantized.T + linear.bias.detach().double()  # (M, N)
    # Exact up to float32's rounding of the result (|y| < 8 here, so steps of at most 5e-7).
    assert_close("Int8Linear vs its dequantized operands in float64", y.reshape(18, 1536), expected, atol=5e-6,
                 kind=KIND)
    # And against the float layer itself: the quantization error, small but not zero.
    error = (y - linear(x)).abs().max().item()
    assert 1e-4 < error < 0.1


def test_outliers_split_exactly_and_row_by_row():
    x = torch.tensor([[1.0, 8.0, -0.5, 2.0], [-7.0, 0.5, 0.25, 3.0], [0.1, 0.2, 0.3, 0.4]])
    split = Q.split_outliers(x, 6.0)
    assert split.columns.tolist() == [0, 1]
    assert torch.equal(split.outliers, torch.tensor([[0.0, 8.0], [-7.0, 0.0], [0.0, 0.0]]))
    assert torch.equal(split.inliers, torch.tensor([[1.0, 0.0, -0.5, 2.0], [0.0, 0.5, 0.25, 3.0], [0.1, 0.2, 0.3, 0.4]]))
    assert x[0, 1] == 8.0  # the caller's tensor is not touched
    small = x[2:]
    nothing = Q.split_outliers(small, 6.0)
    assert nothing.columns.numel() == 0 and nothing.outliers.shape == (1, 0)
    assert nothing.inliers is small  # nothing to take out: no copy


# ---------------------------------------------------------------------------------------------
# The real model
# ---------------------------------------------------------------------------------------------

def test_min_cosine_against_float32_on_200_texts(minilm, quantized_fast, minilm_dir):
    model, fast, tokenizer = minilm
    texts = load_script().mixed_corpus(minilm_dir / "vocab.txt", 200)
    pipeline = SentencePipeline(max_seq_length=256, pooling=("mean",), normalize=True)  # the checkpoint's own
    expected = SentenceEncoder(fast, tokenizer, pipeline).encode(texts)  # (N, H) unit rows; model.py's to 1e-5
    found = SentenceEncoder(quantized_fast, tokenizer, pipeline).encode(texts)  # (N, H)
    cosine = (expected * found).sum(dim=1)  # (N,)
    # Recorded as 1 - cosine: the summary's figure is 1 - (the minimum cosine). Measured here: min
    # 0.9976, mean 0.9990; without the outlier split 0.9915 / 0.9967; one scale per tensor 0.923 / 0.979.
    assert_close("1 - cosine, int8 vs float32, 200 texts", 1 - cosine, torch.zeros_like(cosine), atol=0.01,
                 kind="int8 embeddings: 1 - cosine")
    assert cosine.mean() > 0.998
    assert not torch.equal(expected, found)  # the int8 path really ran


def test_the_readable_model_quantizes_too_and_still_shows_its_attention(minilm):
    model, _, tokenizer = minilm
    quantized = quantize_dynamic_int8(model)
    assert isinstance(quantized.encoder.layer[2].attention.self.key, Int8Linear)
    assert isinstance(quantized.encoder.layer[2].output.dense, Int8Linear)
    assert isinstance(quantized.embeddings.word_embeddings, torch.nn.Embedding)  # stays float
    assert isinstance(quantized.pooler.dense, torch.nn.Linear)  # stays float
    assert isinstance(model.encoder.layer[2].output.dense, torch.nn.Linear)  # the original is untouched
    texts = ["The bat flew out of the cave at night.", "He swung the bat and hit a home run.",
             "Where is the capital of France?"]
    cosine = F.cosine_similarity(encode(model, tokenizer, texts), encode(quantized, tokenizer, texts), dim=1)
    assert_close("1 - cosine, readable path", 1 - cosine, torch.zeros(3), atol=0.01, kind="int8 embeddings: 1 - cosine")
    out = quantized(**tokenizer(texts[:1]), output_attentions=True)
    assert len(out.attentions) == 6 and out.attentions[0].shape == (1, 12, 12, 12)


@pytest.mark.parametrize("threshold", [6.0, None], ids=["outliers in float", "no outliers"])
def test_each_row_is_quantized_on_its_own_so_padding_changes_nothing(threshold):
    torch.manual_seed(4)
    K = 384
    layer = Int8Linear(torch.nn.Linear(K, 1536), outlier_threshold=threshold).eval()
    x = torch.randn(3, 7, K)  # (B, T, K)
    x[..., 17] *= 12  # an outlier channel
    x[1, 4:] = 1000 * torch.randn(3, 384)  # padding positions hold whatever the model computed there
    x[2, 2:] = 0.0
    y = layer(x)  # (B, T, N)
    # (With one scale per tensor the padding's 1000s would set the scale: the rows move by 0.04.)
    for b, length in ((0, 7), (1, 4), (2, 2)):
        alone = layer(x[b:b + 1, :length])[0]  # (length, N): the text without its padding
        if threshold is None:
            # Bit for bit, on any CPU: a row's scale and int8 values are its own, the integer
            # product is exact in any order, and the rest is elementwise.
            assert torch.equal(alone, y[b, :length])
        else:
            # The outliers' share is a float32 product, (M, n) @ (n, N), and M (the rows) and n (the
            # columns holding an outlier anywhere in the input) change with the batch, so a kernel
            # may sum in another order (bit for bit on AMD EPYC, 4.5e-8 apart on an Intel Xeon).
            # Each side is then within the float32 error of a sum of at most K + 2 terms of the
            # exact value: gamma_{K+2} = (K+2) u / (1 - (K+2) u) times the sum of the terms' sizes.
            bound = 2 * float32_sum_error(K + 2) * term_sizes(layer, x[b, :length])
            assert ((alone - y[b, :length]).abs() <= bound).all(), (alone - y[b, :length]).abs().max()


def float32_sum_error(n: int) -> float:
    """gamma_n: the relative error bound of a float32 sum of n terms in any order (Higham, Accuracy and
    Stability of Numerical Algorithms, section 3.1)."""
    u = 2.0 ** -24  # float32's unit roundoff
    return n * u / (1 - n * u)


def term_sizes(layer: Int8Linear, x: torch.Tensor) -> torch.Tensor:
    """(M, N): the sum of |term| over the terms Int8Linear adds for each output (the integer part times
    its scales, each outlier times its weight, the bias), in float64."""
    split = Q.split_outliers(x.float(), layer.outlier_threshold)  # as the layer splits its input
    x_int8, x_scale = Q.quantize_per_token(split.inliers)  # (M, K), (M, 1)
    weight = layer.weight_int8.double() * layer.weight_scale.double()[:, None]  # (N, K): the weight it uses
    integer_part = (x_int8.double() @ layer.weight_int8.double().t()) * x_scale.double() * layer.weight_scale.double()
    outlier_part = split.outliers.double().abs() @ weight[:, split.columns].abs().t()  # (M, n) @ (n, N)
    return integer_part.abs() + outlier_part + layer.bias.double().abs()  # (M, N)


def test_a_padded_batch_gives_each_text_its_embedding_alone(minilm, quantized_fast):
    _, _, tokenizer = minilm
    texts = ["A bat.", "The bat flew out of the cave at night, past the sleeping owls.",
             "He swung the bat and hit a home run in the ninth inning of the final game.",
             "Where is the capital of France?", "Paris is the capital of France.",
             "Hundreds of people have been forced to vacate their homes in the Southern Highlands of New South "
             "Wales as strong winds today pushed a huge bushfire towards the town of Hill Top.",
             "Ok.", "Canine wear koppen magnetic lb annette discharge confederates nana gust fused daly enters."]
    together = encode(quantized_fast, tokenizer, texts, batch_size=len(texts))  # (8, H), padded to the longest
    alone = torch.cat([encode(quantized_fast, tokenizer, [t]) for t in texts])  # (8, H), no padding
    differences = (together - alone).abs().amax(dim=1)  # (8,)
    # The float parts (attention over a padded batch, matmuls of another size) differ by about 1e-7.
    # Where that moves no int8 value across a rounding boundary, the result is the same: most texts.
    # Where it does, one step of difference grows through the later layers as every layer rounds
    # again: "Ok." moves by 1 - cosine = 2.3e-3, about what any 1e-7 nudge to its input does
    # (measured: noise of 1e-7 on the embeddings moves 200 texts by up to 6.8e-4). With one scale
    # per tensor instead, every text moved, by 2.2e-3 to 1.3e-2.
    assert differences.median() <= 1e-5, differences
    cosine = F.cosine_similarity(together, alone, dim=1)
    assert_close("1 - cosine, padded vs alone, int8", 1 - cosine, torch.zeros(len(texts)), atol=5e-3,
                 kind="int8 padded batch vs alone: 1 - cosine")


# ---------------------------------------------------------------------------------------------
# What is refused
# ---------------------------------------------------------------------------------------------

def test_bad_input_is_refused_clearly(minilm):
    model, fast, _ = minilm
    with pytest.raises(TypeError, match="expects a BertModel or FastBertModel, got Linear"):
        quantize_dynamic_int8(torch.nn.Linear(4, 4))
    config = minibert.BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=16)
    with pytest.raises(TypeError, match="model.bert"):
        quantize_dynamic_int8(minibert.BertForSequenceClassification(config))
    with pytest.raises(ValueError, match="the model is on meta; the int8 path is written for the CPU"):
        quantize_dynamic_int8(minibert.BertModel(config).to("meta"))
    with pytest.raises(ValueError, match=r"unknown kinds \['ffn'\]; choose from \['qkv'"):
        quantize_dynamic_int8(model, kinds=("ffn",))
    with pytest.raises(ValueError, match=r"layer indices \[6\] are not in range\(6\)"):
        quantize_dynamic_int8(model, layers=[6])
    with pytest.raises(ValueError, match="activations must be one of"):
        quantize_dynamic_int8(model, activations="channel")
    with pytest.raises(ValueError, match="outlier_threshold must be a positive number or None"):
        quantize_dynamic_int8(model, outlier_threshold=-1)
    with pytest.raises(ValueError, match="compile=True; quantize one built without compile"):
        quantize_dynamic_int8(FastBertModel.from_model(model, compile=True))
    with pytest.raises(ValueError, match="matmul_dtype"):
        quantize_dynamic_int8(FastBertModel.from_model(model, matmul_dtype=torch.bfloat16))
    layer = Int8Linear(torch.nn.Linear(4, 4)).train()
    with pytest.raises(RuntimeError, match="inference"):
        layer(torch.ones(1, 4))


def test_layer_table_has_a_row_per_layer_and_per_kind(minilm):
    tokenizer = minilm[2]
    config = minibert.BertConfig(vocab_size=tokenizer.backend.get_vocab_size(), hidden_size=16, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=32)
    torch.manual_seed(0)
    model = minibert.BertModel(config).eval()  # small and random: only the table's shape is checked here
    rows = layer_table(model, tokenizer, ["The bat flew.", "He swung the bat and hit a home run."])
    assert [row.group for row in rows] == ["layer 0", "layer 1", *Q.KINDS, "all but ffn_out", "all"]
    assert rows[0].layers == (0,) and rows[0].kinds == Q.KINDS
    assert rows[2].layers == (0, 1) and rows[2].kinds == ("qkv",)
    assert all(0.9 < row.min_cosine <= row.mean_cosine <= 1 + 1e-6 for row in rows)
