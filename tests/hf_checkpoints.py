"""Small random BERT checkpoints made by transformers, written in Hugging Face's own file layouts.

The heads (masked LM, next sentence, classifier) have no real weights on this machine, so their
parity is checked on these: transformers builds a random model, the model is saved in the layout
and key names of a given era, minibert loads the files, and both run the same input.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

# Odd sizes on purpose: nothing divides nicely except hidden_size by the head count.
CONFIGS = {
    "gelu": dict(hidden_act="gelu"),
    "gelu_new": dict(hidden_act="gelu_new", layer_norm_eps=1e-5),
    "gelu_pytorch_tanh": dict(hidden_act="gelu_pytorch_tanh", type_vocab_size=3),
    "relu": dict(hidden_act="relu", layer_norm_eps=1e-7, type_vocab_size=4),
    "silu": dict(hidden_act="silu", num_hidden_layers=3),
}
BASE = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=37, max_position_embeddings=40)


def make_hf_model(class_name: str, seed: int = 0, num_labels: int = 2, **overrides):
    """A transformers model with random weights (biases and LayerNorms too), eager attention, eval mode."""
    import transformers

    config = transformers.BertConfig(**{**BASE, **overrides}, num_labels=num_labels)
    config._attn_implementation = "eager"  # the written-out attention, as minibert's
    torch.manual_seed(seed)
    model = getattr(transformers, class_name)(config)
    # Default init leaves biases at 0 and LayerNorms at 1, which would hide a swapped bias or
    # a skipped LayerNorm weight. Randomise every parameter.
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model.eval()


def random_inputs(config, batch: int = 3, length: int = 11, seed: int = 1, pairs: bool = True):
    """Token ids, a padding mask with rows of different lengths, and token types for A/B pairs."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, config.vocab_size, (batch, length), generator=g)
    lengths = torch.linspace(length, max(2, length // 3), batch).long()
    attention_mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    token_type_ids = torch.zeros(batch, length, dtype=torch.long)
    if pairs:
        for row, n in enumerate(lengths.tolist()):
            token_type_ids[row, n // 2:n] = torch.randint(1, config.type_vocab_size, (1,), generator=g)
    input_ids = input_ids * attention_mask  # padding is id 0, as a tokenizer writes it
    return dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)


# ---------------------------------------------------------------------------------------------
# File layouts
# ---------------------------------------------------------------------------------------------

def save_current(model, folder: Path) -> Path:
    """transformers' own save_pretrained: today's names, tied tensors written once."""
    model.save_pretrained(folder)
    return folder


def legacy_state_dict(model) -> dict[str, torch.Tensor]:
    """The names of the original Google/TensorFlow-converted checkpoints (bert-base-uncased):
    LayerNorm.gamma/beta, a stored position_ids buffer, and the decoder weight and bias written
    out beside the tensors they are tied to."""
    state = {}
    for key, tensor in model.state_dict().items():
        key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        state[key] = tensor.clone()
    position_key = "bert.embeddings.position_ids" if hasattr(model, "bert") else "embeddings.position_ids"
    state[position_key] = torch.arange(model.config.max_position_embeddings)[None, :]
    return state


def save_legacy_bin(model, folder: Path) -> Path:
    """Legacy names in a pytorch_model.bin, as the original checkpoints are stored."""
    folder.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(folder / "config.json")
    torch.save(legacy_state_dict(model), folder / "pytorch_model.bin")
    return folder


def save_safetensors(state: dict[str, torch.Tensor], config, folder: Path) -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config.to_json_file(folder / "config.json")
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "model.safetensors")
    return folder


def current_state(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def toggle_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add `bert.` to bare base-model keys, or strip it from prefixed ones; head keys stay."""
    toggled = {}
    for key, tensor in state.items():
        if key.startswith("bert."):
            toggled[key.removeprefix("bert.")] = tensor
        elif key.startswith(("embeddings.", "encoder.", "pooler.")):
            toggled["bert." + key] = tensor
        else:
            toggled[key] = tensor
    return toggled


def save_sharded(state: dict[str, torch.Tensor], config, folder: Path, shards: int = 2) -> Path:
    """A sharded safetensors checkpoint with its model.safetensors.index.json."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config.to_json_file(folder / "config.json")
    keys = sorted(state)
    weight_map = {}
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = keys[i::shards]
        save_file({k: state[k].contiguous() for k in part}, folder / name)
        weight_map.update({k: name for k in part})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


# ---------------------------------------------------------------------------------------------
# A tiny checkpoint with a tokenizer, for running the lesson's steps and commands end to end
# ---------------------------------------------------------------------------------------------

LESSON_WORDS = """the man went to store he bought a gallon of milk penguins are flightless birds where is
capital france paris berlin germany madrid spain bat flew out cave at night swung and hit home run
red blue""".split()
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def save_lesson_checkpoint(class_name: str, folder: Path, num_labels: int = 2, seed: int = 0) -> Path:
    """A random `class_name` whose vocabulary is the lesson's words, with vocab.txt, so that the
    same text goes through minibert's Tokenizer and transformers' BertTokenizerFast alike."""
    vocab = SPECIAL_TOKENS + sorted(set(LESSON_WORDS)) + [".", "?", ",", "##s", "##less"]
    model = make_hf_model(class_name, seed=seed, num_labels=num_labels, vocab_size=len(vocab))
    model.save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "model_max_length": 40}))
    return folder


def hf_tokenizer_for(folder: Path):
    import transformers

    return transformers.BertTokenizerFast.from_pretrained(folder)
