"""Hooks, the cache, ablation, patching, the logit lens and attribution (minibert/inside/), on exact numbers.

References: minibert's trace, output_attentions and hidden_states (the same forward pass, recorded another
way), transformers' BertForMaskedLM head, captum's LayerIntegratedGradients and LayerGradientXActivation,
hand-written ablations run module by module, and invariants a patch must keep (patching the one position
where two inputs differ brings back the clean run exactly).
"""

from __future__ import annotations

import pytest
import torch

import minibert
from conftest import assert_close
from hf_checkpoints import save_lesson_checkpoint
from minibert.inside.attribution import attribute, gradient_x_input, integrated_gradients, pad_baseline, quadrature
from minibert.inside.hooks import act_name, hook_points, run_with_cache, run_with_hooks
from minibert.inside.lens import logit_lens
from minibert.inside.patching import ablate_heads, ablation_grid, head_means, patch_heads, patch_residual
from minibert.inside.trace import trace

SENTENCES = ["The bat flew out of the cave at night.", "He swung the bat."]  # padded: rows of different lengths


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return minibert.BertModel.from_pretrained(minilm_dir).eval(), minibert.Tokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Random lesson-vocabulary checkpoints in Hugging Face's layout: (minibert model, transformers model, tokenizer)."""
    import transformers

    made = {}
    for name, labels in (("BertForMaskedLM", 2), ("BertForSequenceClassification", 3), ("cross-encoder", 1)):
        cls = "BertForSequenceClassification" if name == "cross-encoder" else name
        folder = save_lesson_checkpoint(cls, tmp_path_factory.mktemp(name), num_labels=labels)
        ours = getattr(minibert, cls).from_pretrained(folder).eval()
        theirs = getattr(transformers, cls).from_pretrained(folder, attn_implementation="eager").eval()
        made[name] = (ours, theirs, minibert.Tokenizer.from_pretrained(folder))
    return made


# -- the cache -----------------------------------------------------------------------------------------

def test_cache_equals_trace_attentions_and_hidden_states_exactly(minilm):
    model, tok = minilm
    batch = tok(SENTENCES)
    with torch.no_grad():
        with trace(model) as t:
            reference = model(**batch, output_attentions=True, output_hidden_states=True)
        out, cache = run_with_cache(model, batch, output_attentions=True, output_hidden_states=True)
    assert torch.equal(out.last_hidden_state, reference.last_hidden_state)
    assert list(cache) == list(hook_points(model)) and len(cache) == 4 + 15 * 6
    same = {"hook_embed": "embeddings.word", "hook_token_type_embed": "embeddings.token_type",
            "hook_pos_embed": "embeddings.position", "hook_full_embed": "embeddings.LayerNorm"}
    for layer in range(6):
        prefix = f"encoder.layer.{layer}"
        assert torch.equal(cache["pattern", layer], reference.attentions[layer])
        assert torch.equal(cache["resid_pre", layer], reference.hidden_states[layer])
        assert torch.equal(cache["normalized_resid_post", layer], reference.hidden_states[layer + 1])
        assert torch.equal(cache["normalized_resid_mid", layer], t[f"{prefix}.attention.output"])
        for short, step in (("q", "query"), ("k", "key"), ("v", "value"), ("z", "context")):
            assert torch.equal(cache[short, layer].transpose(1, 2), t[f"{prefix}.attention.{step}"])  # (B, nh, T, hs)
        assert torch.equal(cache["attn_scores", layer], t[f"{prefix}.attention.masked_scores"])
        assert torch.equal(cache["pre", layer], t[f"{prefix}.intermediate.dense"])
        assert torch.equal(cache["post", layer], t[f"{prefix}.intermediate.act"])
        same[act_name("normalized_resid_post", layer)] = f"{prefix}.output"
    for name, traced in same.items():
        assert torch.equal(cache[name], t[traced]), name
    # The sums the post-LN layer normalises: resid_mid = resid_pre + attn_out; resid_post = normalized_resid_mid + mlp_out.
    for layer in range(6):
        assert torch.equal(cache["resid_mid", layer], cache["resid_pre", layer] + cache["attn_out", layer])
        assert torch.equal(cache["resid_post", layer], cache["normalized_resid_mid", layer] + cache["mlp_out", layer])
    assert cache["pattern", 2] is cache["blocks.2.attn.hook_pattern"]
    assert cache.stack("pattern").shape == (6, 2, 12, 12, 12)


def test_names_filter_and_misspelt_names(minilm):
    model, tok = minilm
    batch = tok("He swung the bat.")
    _, cache = run_with_cache(model, batch, names_filter=lambda name: name.endswith("hook_pattern"))
    assert list(cache) == [f"blocks.{layer}.attn.hook_pattern" for layer in range(6)]
    _, cache = run_with_cache(model, batch, names_filter="blocks.0.hook_attn_out")
    assert list(cache) == ["blocks.0.hook_attn_out"]
    with pytest.raises(KeyError, match="did you mean blocks.0.attn.hook_pattern"):
        run_with_cache(model, batch, names_filter=["blocks.0.attn.hook_patern"])
    with pytest.raises(KeyError, match="blocks.1.hook_attn_out' is not in the cache"):
        cache["attn_out", 1]
    with pytest.raises(ValueError, match=r"blocks.1.attn.hook_z returned \(1, 7, 12\) torch.float32; it must return None or "
                                         r"a tensor of shape \(1, 7, 12, 32\)"):
        run_with_hooks(model, batch, [("blocks.1.attn.hook_z", lambda z, hook: z[..., 0])])
    with pytest.raises(TypeError, match="hooks need minibert's BertModel"):
        run_with_cache(minibert.FastBertModel.from_model(model), batch)


def test_hooks_that_return_their_input_change_nothing(minilm, tiny):
    model, tok = minilm
    batch = tok(SENTENCES)
    with torch.no_grad():
        reference = model(**batch, output_attentions=True)
        for returns in (lambda a, hook: a.clone(), lambda a, hook: a, lambda a, hook: None):
            out = run_with_hooks(model, batch, [(name, returns) for name in hook_points(model)], output_attentions=True)
            assert (out.last_hidden_state - reference.last_hidden_state).abs().max().item() == 0.0
            assert all(torch.equal(a, b) for a, b in zip(out.attentions, reference.attentions))
    mlm, _, tok = tiny["BertForMaskedLM"]
    batch = tok(["the bat flew out of the [MASK] .", "he swung the bat"])
    with torch.no_grad():
        out = run_with_hooks(mlm, batch, [(name, lambda a, hook: a.clone()) for name in hook_points(mlm)])
        assert torch.equal(out.logits, mlm(**batch).logits)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in mlm.modules())  # every hook came off


def test_an_in_place_edit_of_the_pattern_or_scores_counts_as_a_replacement(minilm):
    """attention() has run when the steps' hooks see the pattern: a pattern zeroed in place must give what a
    returned zero pattern gives (context 0, so attn_out is the output projection's bias), not be ignored."""
    model, tok = minilm
    batch = tok("He swung the bat.")

    def zero_in_place(pattern, hook):
        pattern.zero_()

    with torch.no_grad():
        returned = run_with_hooks(model, batch, [("blocks.0.attn.hook_pattern", lambda p, hook: torch.zeros_like(p))])
        in_place, cache = run_with_cache(model, batch, fwd_hooks=[("blocks.0.attn.hook_pattern", zero_in_place)])
        assert torch.equal(in_place.last_hidden_state, returned.last_hidden_state)
        assert cache["z", 0].abs().max().item() == 0.0
        bias = model.encoder.layer[0].attention.output.dense.bias
        assert torch.equal(cache["attn_out", 0], bias.expand_as(cache["attn_out", 0]))
        scores_in_place = run_with_hooks(model, batch, [("blocks.0.attn.hook_attn_scores", lambda a, hook: a.mul_(0))])
        scores_returned = run_with_hooks(model, batch, [("blocks.0.attn.hook_attn_scores", lambda a, hook: a * 0)])
        assert torch.equal(scores_in_place.last_hidden_state, scores_returned.last_hidden_state)
        assert not torch.equal(scores_in_place.last_hidden_state, model(**batch).last_hidden_state)


def test_hooks_refuse_what_they_cannot_do(minilm):
    model, tok = minilm
    batch = tok("He swung the bat.")
    with torch.no_grad():
        embeds = model.embeddings.word_embeddings(batch["input_ids"])
        rest = {"attention_mask": batch["attention_mask"], "token_type_ids": batch["token_type_ids"]}
        with pytest.raises(ValueError, match="hook_embed is the word-vector lookup, which inputs_embeds skips"):
            run_with_hooks(model, rest, [("hook_embed", lambda a, hook: a * 0)], inputs_embeds=embeds)
        _, cache = run_with_cache(model, rest, inputs_embeds=embeds)
        assert "hook_embed" not in cache and len(cache) == 93
        with pytest.raises(ValueError, match="must return None or a tensor of shape .* and dtype torch.float32"):
            run_with_hooks(model, batch, [("hook_full_embed", lambda a, hook: a.double())])
    _, cache = run_with_cache(model, batch, names_filter=[("pattern", 3), "blocks.0.hook_attn_out"])
    assert list(cache) == ["blocks.0.hook_attn_out", "blocks.3.attn.hook_pattern"]
    model.gradient_checkpointing_enable()
    model.train()
    try:
        with pytest.raises(ValueError, match="hooks and gradient checkpointing do not mix in training"):
            run_with_hooks(model, batch, [("blocks.0.hook_resid_pre", lambda a, hook: None)])
    finally:
        model.gradient_checkpointing_disable()
        model.eval()


def test_a_replaced_score_or_value_flows_through_the_rest_of_attention(minilm):
    """Masking key j in every layer's hook_attn_scores is the attention mask with a 0 at j; zeroing one head's
    v zeroes that head's z: two invariants of attention, checked through the recomputation in the hooks."""
    model, tok = minilm
    batch = tok("The bat flew out of the cave.")
    j = 3
    masked = {**batch, "attention_mask": batch["attention_mask"].clone()}
    masked["attention_mask"][0, j] = 0

    def hide_key(scores, hook):
        return scores + torch.where(torch.arange(scores.shape[-1]) == j, torch.finfo(scores.dtype).min, 0.0)

    with torch.no_grad():
        out = run_with_hooks(model, batch, [(act_name("attn_scores", layer), hide_key) for layer in range(6)])
        assert torch.equal(out.last_hidden_state, model(**masked).last_hidden_state)

        def zero_v(v, hook):  # (B, T, nh, hs)
            v = v.clone()
            v[:, :, 4] = 0
            return v

        _, by_v = run_with_cache(model, batch, fwd_hooks=[(act_name("v", 2), zero_v)])
        assert by_v["z", 2][:, :, 4].abs().max().item() == 0.0
        by_z = run_with_hooks(model, batch, [(act_name("z", 2), lambda z, hook: z.index_fill(2, torch.tensor([4]), 0.0))])
        assert torch.equal(by_z.last_hidden_state, by_v["normalized_resid_post", 5])


# -- ablation -------------------------------------------------------------------------------------------

def by_hand(model, batch: dict, layer: int, context_of) -> torch.Tensor:
    """The encoder run module by module, with layer `layer`'s merged head outputs (B, T, H) replaced by
    context_of(context): the hand-written ablation."""
    from minibert.bert.model import additive_mask

    bert = model
    T = batch["input_ids"].shape[1]
    x = bert.embeddings(batch["input_ids"], batch["token_type_ids"], torch.arange(T)[None])
    mask = additive_mask(batch["attention_mask"], x.dtype)
    for i, block in enumerate(bert.encoder.layer):
        context, _ = block.attention.self(x, mask)
        if i == layer:
            context = context_of(context)
        attended = block.attention.output(context, x)
        x = block.output(block.intermediate(attended), attended)
    return x


def test_zero_ablating_every_head_of_a_layer_equals_a_hand_written_ablation(minilm):
    model, tok = minilm
    batch = tok(SENTENCES)
    with torch.no_grad():
        ablated = ablate_heads(model, batch, [(3, h) for h in range(12)]).last_hidden_state
        expected = by_hand(model, batch, 3, torch.zeros_like)
        assert torch.equal(ablated, expected)
        assert (ablated - model(**batch).last_hidden_state).abs().max() > 0.1  # it did take something out
        # Mean ablation of head 7: its slice of the context becomes its mean over the real tokens (from the trace).
        with trace(model) as t:
            model(**batch)
        context = t["encoder.layer.1.attention.context"]  # (B, nh, T, hs)
        mean = context[:, 7][batch["attention_mask"].bool()].mean(0)  # (hs,)
        # the same numbers averaged from a (N, nh, hs) and a (N, hs) tensor: the sums may run in another order
        assert torch.allclose(head_means(model, batch)[1, 7], mean, atol=1e-6, rtol=0)

        def with_mean(merged):  # (B, T, H): head 7 holds columns 7 * 32 ... 8 * 32
            merged = merged.clone()
            merged[:, :, 7 * 32:8 * 32] = head_means(model, batch)[1, 7]
            return merged

        assert torch.equal(ablate_heads(model, batch, [(1, 7)], how="mean").last_hidden_state,
                           by_hand(model, batch, 1, with_mean))
    with pytest.raises(ValueError, match=r"head in 0..11, not \(6, 0\)"):
        ablate_heads(model, batch, [(6, 0)])


def test_ablation_grid_entries_equal_single_ablations(minilm):
    model, tok = minilm
    batch = tok("He swung the bat.")
    metric = lambda out: out.last_hidden_state[0, 4].norm()  # noqa: E731  the "bat" vector's length
    grid = ablation_grid(model, batch, metric)
    assert grid.values.shape == (6, 12)
    with torch.no_grad():
        assert grid.clean == pytest.approx(float(metric(model(**batch))), abs=0)
        for layer, head in ((0, 0), (5, 11), (2, 6)):
            single = ablate_heads(model, batch, [(layer, head)])
            assert grid.values[layer, head].item() == float(metric(single))  # the same run, the same bits


# -- patching -------------------------------------------------------------------------------------------

def test_patching_the_one_differing_position_at_the_first_layer_brings_back_the_clean_run(minilm):
    model, tok = minilm
    clean, corrupted = tok("The bat flew out of the cave."), tok("The bird flew out of the cave.")
    assert clean["input_ids"].shape == corrupted["input_ids"].shape
    differs = (clean["input_ids"] != corrupted["input_ids"])[0].nonzero().flatten().tolist()
    assert differs == [2]
    metric = lambda out: out.last_hidden_state[0, 2] @ out.last_hidden_state[0, 5]  # noqa: E731
    grid = patch_residual(model, clean, corrupted, metric)
    assert grid.values.shape == (6, clean["input_ids"].shape[1])
    assert grid.values[0, 2].item() == grid.clean  # the embeddings differ only there: the whole difference comes back
    others = [p for p in range(grid.values.shape[1]) if p != 2]
    assert all(grid.values[0, p].item() == grid.corrupted for p in others)  # nothing differs there: nothing changes
    assert grid.normalized()[0, 2].item() == 1.0
    heads = patch_heads(model, clean, corrupted, metric)
    # one entry by hand: head 5 of layer 4, its slice of the merged context taken from the clean run
    with torch.no_grad(), trace(model) as t:
        model(**clean)
    clean_context = t["encoder.layer.4.attention.context"].transpose(1, 2).reshape(1, -1, 384)

    def from_clean(merged):
        merged = merged.clone()
        merged[:, :, 5 * 32:6 * 32] = clean_context[:, :, 5 * 32:6 * 32]
        return merged

    with torch.no_grad():
        hand = by_hand(model, corrupted, 4, from_clean)
    assert heads.values[4, 5].item() == float(hand[0, 2] @ hand[0, 5])  # the same operations on the same numbers


def test_patching_inputs_of_different_lengths_needs_positions(minilm):
    model, tok = minilm
    clean, corrupted = tok("The bat flew out of the cave."), tok("He swung the bat.")
    metric = lambda out: out.last_hidden_state[0, 4].sum()  # noqa: E731
    with pytest.raises(ValueError, match="the clean input has 10 tokens and the corrupted 7"):
        patch_heads(model, clean, corrupted, metric)
    with pytest.raises(ValueError, match="the clean input has 10 tokens and the corrupted 7"):
        patch_residual(model, clean, corrupted, metric)
    grid = patch_heads(model, clean, corrupted, metric, positions=(2, 4))  # "bat" in each
    assert grid.values.shape == (6, 12) and grid.clean != grid.corrupted
    # A metric of two parameters gets the batch it ran on: here it finds "bat" itself, in either text.
    bat = tok.backend.token_to_id("bat")
    seen = []

    def at_bat(out, batch):
        seen.append(batch["input_ids"].shape[1])
        return out.last_hidden_state[0, (batch["input_ids"][0] == bat).nonzero()[0, 0]].sum()

    resid = patch_residual(model, clean, corrupted, at_bat, positions=[(2, 4), (0, 0)])
    assert resid.values.shape == (6, 2) and seen[:2] == [10, 7] and set(seen[2:]) == {7}
    with torch.no_grad():
        assert resid.clean == pytest.approx(float(model(**clean).last_hidden_state[0, 2].sum()), abs=0)
        assert resid.corrupted == pytest.approx(float(model(**corrupted).last_hidden_state[0, 4].sum()), abs=0)
    assert resid.values[0, 1].item() == resid.corrupted  # [CLS]'s embedding is the same in both: nothing changes
    with pytest.raises(ValueError, match=r"position pair \(2, 7\) is outside"):
        patch_heads(model, clean, corrupted, metric, positions=(2, 7))
    for bad in (2, [(1, 2, 3)], []):
        with pytest.raises(ValueError, match="positions is a .clean position, corrupted position. pair of integers"):
            patch_heads(model, clean, corrupted, metric, positions=bad)

    def scaled(out, scale=2.0):  # a second parameter with a default is not asking for the batch
        return scale * out.last_hidden_state[0, 4].sum()

    assert patch_residual(model, clean, corrupted, scaled, positions=(2, 4)).corrupted == 2 * resid.corrupted
    no_mask = {"input_ids": corrupted["input_ids"], "token_type_ids": corrupted["token_type_ids"]}
    assert torch.equal(head_means(model, no_mask), head_means(model, corrupted))  # no mask: every token is real


# -- the logit lens -------------------------------------------------------------------------------------

def test_logit_lens_equals_transformers_head_on_each_layer(tiny):
    ours, theirs, tok = tiny["BertForMaskedLM"]
    text = "the capital of france is [MASK] ."
    lens = logit_lens(ours, tok, text, k=4, word="paris")
    batch = tok(text)
    assert lens.tokens[lens.position] == "[MASK]" and lens.layers == ["embeddings", "layer 0", "layer 1"]
    with torch.no_grad():
        out = theirs(**batch, output_hidden_states=True)
        reference = torch.stack([theirs.cls(h)[0, lens.position] for h in out.hidden_states])  # (L + 1, V)
        assert torch.equal(lens.logits[-1], ours(**batch).logits[0, lens.position])  # the model's own prediction
    assert_close("logit lens", lens.logits, reference, kind="logit lens vs transformers' head on each layer")
    probs = torch.softmax(reference, -1)
    for row in range(3):
        top = torch.topk(probs[row], 4)
        assert lens.top_words[row] == tok.convert_ids_to_tokens(top.indices)
        assert lens.top_probs[row] == pytest.approx(top.values.tolist(), abs=1e-6)
        paris = tok.backend.token_to_id("paris")
        assert lens.word_ranks[row] == 1 + int((probs[row] > probs[row, paris]).sum())
    assert "layer 1" in lens.format()
    with pytest.raises(ValueError, match=r"no \[MASK\] in 'the capital'"):
        logit_lens(ours, tok, "the capital")
    with pytest.raises(TypeError, match="needs a masked-LM head"):
        logit_lens(tiny["cross-encoder"][0], tok, text)


# -- attribution ----------------------------------------------------------------------------------------

def captum_forward(theirs, output):
    def forward(input_ids, attention_mask, token_type_ids):
        return output(theirs(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids))
    return forward


@pytest.mark.parametrize("kind", ["BertForMaskedLM", "BertForSequenceClassification", "cross-encoder"])
@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid"])
def test_integrated_gradients_equal_captum(tiny, kind, method):
    from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

    ours, theirs, tok = tiny[kind]
    batch = tok(["the bat flew out of the [MASK] .", "he swung the bat"])
    if kind == "BertForMaskedLM":
        target = (7, tok.backend.token_to_id("cave"))
        output = lambda out: out.logits[:, 7, target[1]]  # noqa: E731
    else:
        target = ours.config.num_labels - 1
        output = lambda out: out.logits[:, target]  # noqa: E731
    baseline = pad_baseline(tok, batch["input_ids"])
    ig = integrated_gradients(ours, batch, target, baseline, steps=20, method=method)
    args = (batch["attention_mask"], batch["token_type_ids"])
    layer = theirs.bert.embeddings.word_embeddings
    expected = LayerIntegratedGradients(captum_forward(theirs, output), layer).attribute(
        batch["input_ids"], baselines=baseline, additional_forward_args=args, n_steps=20, method=method)
    assert_close(f"integrated gradients ({kind}, {method})", ig.attributions, expected,
                 kind="integrated gradients vs captum")
    gx = gradient_x_input(ours, batch, target)
    expected = LayerGradientXActivation(captum_forward(theirs, output), layer).attribute(
        batch["input_ids"], additional_forward_args=args)
    assert_close(f"gradient x input ({kind})", gx.attributions, expected, kind="gradient x input vs captum")
    # Completeness: the attributions add up to output(input) - output(baseline), up to the quadrature's error.
    with torch.no_grad():
        at_input = output(theirs(**batch))
        at_baseline = output(theirs(**{**batch, "input_ids": baseline}))
    assert_close("output at input", ig.output, at_input)
    assert_close("output at baseline", ig.baseline_output, at_baseline)
    assert torch.allclose(ig.completeness_gap, ig.per_token.sum(-1) - (at_input - at_baseline), atol=1e-5)


def test_completeness_gap_shrinks_with_more_steps_and_is_reported(tiny, capsys):
    ours, _, tok = tiny["BertForMaskedLM"]
    runs = [attribute(ours, tok, "the bat flew out of the [MASK] .", target="cave", steps=n) for n in (2, 8, 64)]
    gaps = [abs(a.completeness_gap) for a in runs]
    print("completeness gaps (2, 8, 64 Gauss-Legendre steps):", gaps)
    a = runs[-1]
    # Gauss-Legendre converges fast on a smooth path: 2 steps leave a gap (3e-5 here), at 64 only float32 rounding
    # of the outputs is left (1e-7 here, on logits of about 1; 1e-5 leaves room for another CPU's kernels).
    assert gaps[2] <= 1e-5 and gaps[0] > gaps[2]
    assert a.target == "the logit of 'cave' at [MASK] (position 7)"
    assert "completeness gap" in a.format()
    ce, _, tok = tiny["cross-encoder"]
    assert attribute(ce, tok, "where is paris", "paris is the capital of france").target == "the logit of label 0"


def test_attribution_targets_are_checked_and_work_under_no_grad(tiny):
    mlm, _, tok = tiny["BertForMaskedLM"]
    text = "the bat flew out of the [MASK] ."
    batch = tok(text)
    baseline = pad_baseline(tok, batch["input_ids"])
    with torch.no_grad():  # attribution needs gradients: it turns them on for itself
        a = attribute(mlm, tok, text, target="Cave", steps=4)
        ig = integrated_gradients(mlm, batch, (7, 5), baseline, steps=4)
    assert a.target == "the logit of 'cave' at [MASK] (position 7)" and ig.per_token.shape == (1, 10)
    assert attribute(mlm, tok, text, target=(-3, tok.backend.token_to_id("cave")), steps=4).target == a.target
    vocab = mlm.config.vocab_size
    for target, error in (((7, vocab), f"word id {vocab} is outside the vocabulary"), ((10, 5), "position 10 is outside"),
                          ((-1, 5), "position -1 is outside"), ((7, True), "two integers")):
        with pytest.raises((ValueError, TypeError), match=error):
            gradient_x_input(mlm, batch, target)
    with pytest.raises(ValueError, match=r"'bats' is not one token of the vocabulary: the tokenizer makes \['bat', '##s'\]"):
        attribute(mlm, tok, text, target="bats")
    classifier, _, tok = tiny["BertForSequenceClassification"]
    with pytest.raises(ValueError, match=r"a label index in 0..2, not True"):
        attribute(classifier, tok, "where is paris", target=True)


def test_quadrature_is_captums():
    from captum.attr._utils.approximation_methods import approximation_parameters

    for method in ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"):
        step_sizes, alphas = approximation_parameters(method)
        ours = quadrature(method, 7)
        assert ours[0] == pytest.approx(alphas(7), abs=1e-12) and ours[1] == pytest.approx(step_sizes(7), abs=1e-12)
    with pytest.raises(ValueError, match="steps must be an integer >= 2 for riemann_left"):
        quadrature("riemann_left", 1)


# -- TransformerLens 4.3, recorded -----------------------------------------------------------------------

# Our name -> the TransformerLens 4.3 key that holds the same tensor (the table of docs/interpret.md). TransformerLens 4 has no HookedEncoder: its
# TransformerBridge hooks transformers' BertForMaskedLM modules, and several of its names mean other tensors for
# BERT than HookedEncoder's did (its hook_attn_out is after the residual and LayerNorm, its hook_attn_scores is the
# pattern, its hook_embed is after the embeddings' LayerNorm). minibert keeps HookedEncoder's meanings, the ones
# the names describe; docs/inside.md has this table.
TRANSFORMER_LENS_4 = {
    "hook_embed": "embed.hook_out",
    "hook_token_type_embed": "token_type_embed.hook_out",
    "hook_pos_embed": "hook_pos_embed",  # (B, T, H) there, (1, T, H) here: compared broadcast
    "hook_full_embed": "hook_embed",
    "blocks.{L}.hook_resid_pre": "blocks.{L}.hook_resid_pre",
    "blocks.{L}.attn.hook_q": "blocks.{L}.attn.hook_q",
    "blocks.{L}.attn.hook_k": "blocks.{L}.attn.hook_k",
    "blocks.{L}.attn.hook_v": "blocks.{L}.attn.hook_v",
    "blocks.{L}.attn.hook_pattern": "blocks.{L}.attn.hook_pattern",
    "blocks.{L}.attn.hook_z": "blocks.{L}.attn.hook_z",
    "blocks.{L}.hook_attn_out": "blocks.{L}.attn.o.hook_out",
    "blocks.{L}.hook_resid_mid": "blocks.{L}.ln1.hook_in",
    "blocks.{L}.hook_normalized_resid_mid": "blocks.{L}.hook_attn_out",
    "blocks.{L}.mlp.hook_pre": "blocks.{L}.mlp.hook_pre",
    "blocks.{L}.mlp.hook_post": "blocks.{L}.mlp.hook_post",
    "blocks.{L}.hook_mlp_out": "blocks.{L}.hook_mlp_out",
    "blocks.{L}.hook_resid_post": "blocks.{L}.hook_resid_mid",
    "blocks.{L}.hook_normalized_resid_post": "blocks.{L}.hook_resid_post",
}


def test_cache_agrees_with_transformer_lens_4_recorded():
    """TransformerLens 4.3.0's run_with_cache on a random 2-layer BERT with no weight processing (folding off),
    recorded by scripts/record_transformer_lens.py (provenance.json says how, on which CPU). 1e-5: two runs of
    the same float32 operations on different CPUs differ by a few ulp (here 1e-7 at most); a wrong tensor is
    off by O(1). Padded positions are compared too: both compute them the same way."""
    from pathlib import Path

    from safetensors.torch import load_file

    folder = Path(__file__).parent / "data" / "transformer_lens"
    recorded = load_file(str(folder / "cache.safetensors"))
    model = minibert.BertForMaskedLM.from_pretrained(folder / "tiny-bert").eval()
    batch = {name: recorded[f"input.{name}"] for name in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        out, cache = run_with_cache(model, batch)
    compared = 0
    for ours, theirs in TRANSFORMER_LENS_4.items():
        for layer in range(2) if "{L}" in ours else [None]:
            name, key = ours.format(L=layer), theirs.format(L=layer)
            assert_close(f"{name} vs TransformerLens {key}", cache[name].expand_as(recorded[key]), recorded[key],
                         kind="cache vs TransformerLens 4.3 (recorded)")
            compared += 1
    assert_close("logits vs TransformerLens hook_unembed", out.logits, recorded["hook_unembed"],
                 kind="cache vs TransformerLens 4.3 (recorded)")
    assert compared == 4 + 14 * 2  # every name but hook_attn_scores, which TransformerLens 4 does not have for BERT
