"""minibert/inside/by_hand.py writes out LayerNorm and the exact GELU; here each is held to torch's own kernel
(F.layer_norm, F.gelu), on random inputs and on the activations all-MiniLM-L6-v2 feeds them.

The bound is float32 rounding, measured (conftest.rounding_bound): 4 times the formula's own float32 error
against the same formula in float64, plus 4 ulp of the largest value. A formula that differs from torch's
(eps outside the square root, an unbiased variance, the tanh GELU) lands far outside it.
"""

import math

import pytest
import torch
import torch.nn.functional as F

import minibert
from conftest import assert_close, rounding_bound
from minibert.bert.model import gelu_tanh
from minibert.inside.by_hand import gelu, layer_norm

KIND = "by hand vs torch's kernels"
PAIRS = [("The bat flew out of the cave at night.", "It hunts moths in the dark."),
         ("He swung the bat.", "The ball flew.")]


def check_layer_norm(name, x, weight, bias, eps, torch_result=None):
    """by_hand.layer_norm(x) against F.layer_norm(x) (or the module's output), within float32 rounding."""
    ours = layer_norm(x, weight, bias, eps)
    exact = layer_norm(x.double(), weight.double(), bias.double(), eps)
    theirs = F.layer_norm(x, x.shape[-1:], weight, bias, eps) if torch_result is None else torch_result
    assert ours.dtype == x.dtype and ours.shape == x.shape
    assert_close(name, ours, theirs, atol=rounding_bound(ours, exact), kind=KIND)


def check_gelu(name, x, torch_result=None):
    ours = gelu(x)
    theirs = F.gelu(x) if torch_result is None else torch_result
    assert ours.dtype == x.dtype and ours.shape == x.shape
    assert_close(name, ours, theirs, atol=rounding_bound(ours, gelu(x.double())), kind=KIND)


@pytest.mark.parametrize("scale,offset", [(1.0, 0.0), (1e3, 10.0), (0.05, 3.0), (1e-6, 0.0)],
                         ids=["unit", "large", "offset", "variance-near-eps"])
def test_layer_norm_equals_torch_on_random_inputs(scale, offset):
    g = torch.Generator().manual_seed(0)
    H = 384
    x = torch.randn(3, 17, H, generator=g) * scale + offset  # (B, T, H)
    weight, bias = 1 + 0.3 * torch.randn(H, generator=g), 0.1 * torch.randn(H, generator=g)
    check_layer_norm(f"layer_norm scale {scale:g} offset {offset:g}", x, weight, bias, 1e-12)
    check_layer_norm(f"layer_norm scale {scale:g} offset {offset:g} eps 1e-5", x, weight, bias, 1e-5)


def test_layer_norm_of_a_constant_vector_is_the_bias():
    """Variance 0: eps keeps 0 / 0 away, and the result is the bias, as torch's."""
    x, weight, bias = torch.full((2, 8), 3.0), torch.rand(8), torch.randn(8)
    assert torch.equal(layer_norm(x, weight, bias, 1e-12), bias.expand(2, 8))
    assert torch.equal(layer_norm(x, weight, bias, 1e-12), F.layer_norm(x, (8,), weight, bias, 1e-12))


def test_gelu_equals_torch_on_random_inputs():
    g = torch.Generator().manual_seed(1)
    check_gelu("gelu on randn * 4", torch.randn(4, 9, 1536, generator=g) * 4)
    check_gelu("gelu on -10 .. 10", torch.linspace(-10, 10, 20001))


def test_the_tanh_gelu_is_outside_the_bound():
    """bert/model.py's gelu_tanh ("gelu_new") is another function: the docstring's 5e-4 apart, not rounding."""
    x = torch.linspace(-6, 6, 12001, dtype=torch.float64)
    gap = (gelu(x) - gelu_tanh(x)).abs().max().item()
    assert 4e-4 < gap < 5e-4
    x32 = x.float()
    assert (gelu(x32) - gelu_tanh(x32)).abs().max().item() > 20 * rounding_bound(gelu(x32), gelu(x))


@pytest.fixture(scope="module")
def minilm_activations(minilm_dir):
    """What all-MiniLM-L6-v2's LayerNorms and activations are given, and what they give, on a padded batch of
    sentence pairs: [(name, module input, module output)] for each LayerNorm and feed-forward."""
    model = minibert.BertModel.from_pretrained(minilm_dir).eval()
    batch = minibert.Tokenizer.from_pretrained(minilm_dir)([a for a, _ in PAIRS], [b for _, b in PAIRS])
    seen, handles = [], []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.LayerNorm):
            handles.append(module.register_forward_hook(
                lambda m, args, out, name=name: seen.append((name, args[0], out))))
        elif name.endswith("intermediate.dense"):  # its output is the activation's input
            handles.append(module.register_forward_hook(
                lambda m, args, out, name=name: seen.append((name, out, None))))
    with torch.no_grad():
        model(**batch)
    for handle in handles:
        handle.remove()
    modules = dict(model.named_modules())
    return [(name, x, out, modules[name]) for name, x, out in seen]


def test_layer_norm_equals_torch_on_minilm(minilm_activations):
    norms = [(name, x, out, ln) for name, x, out, ln in minilm_activations if isinstance(ln, torch.nn.LayerNorm)]
    assert len(norms) == 13  # the embeddings' and two in each of 6 layers
    for name, x, out, ln in norms:
        check_layer_norm(name, x, ln.weight.detach(), ln.bias.detach(), ln.eps, torch_result=out)


def test_gelu_equals_torch_on_minilm(minilm_activations):
    widened = [(name, x) for name, x, out, _ in minilm_activations if out is None]
    assert len(widened) == 6 and widened[0][1].shape[-1] == 1536
    for name, x in widened:
        check_gelu(f"{name} -> gelu", x)
    assert math.isclose(gelu(torch.tensor(-0.75)).item(), -0.17, abs_tol=5e-3)  # the docstring's minimum
