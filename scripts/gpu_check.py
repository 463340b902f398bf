"""The CUDA path, checked on a machine with a GPU: .to("cuda"), bf16, a few training steps, nccl.

    python scripts/gpu_check.py                         # on a GPU machine; prints one line per check
    torchrun --nproc_per_node=1 tests/programs/ddp_train.py /tmp/w.safetensors   # nccl (run by this script)

No test depends on a GPU; this script is run by hand (or through the device tool) and its output is
quoted in the closing notes. It uses random weights, so it needs no model download.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import minibert  # noqa: E402
from minibert.training.loop import StepData, Trainer, TrainingConfig  # noqa: E402


def report(name: str, ok: bool, detail: str) -> None:
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)


def main() -> None:
    import transformers

    assert torch.cuda.is_available(), "no GPU here"
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.cuda.get_device_name()}")
    config = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                  intermediate_size=3072, max_position_embeddings=512)
    torch.manual_seed(0)
    hf_config = transformers.BertConfig(**config)
    hf_config._attn_implementation = "eager"  # the written-out attention, as minibert's
    reference = transformers.BertForPreTraining(hf_config).eval()
    folder = Path("/tmp/gpu_check_model")
    reference.save_pretrained(folder)

    # 1. .to("cuda"), float32: parity with transformers on the same GPU, padded batch of pairs
    ours = minibert.BertForPreTraining.from_pretrained(folder).to("cuda")
    theirs = reference.to("cuda")
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, 30000, (8, 128), generator=g)
    mask = torch.ones(8, 128, dtype=torch.long)
    mask[4:, 100:] = 0
    types = torch.zeros(8, 128, dtype=torch.long)
    types[:, 64:] = 1
    batch = {k: v.cuda() for k, v in dict(input_ids=ids, attention_mask=mask, token_type_ids=types).items()}
    with torch.no_grad():
        a, b = ours(**batch), theirs(**batch)
    err = max((a.prediction_logits - b.prediction_logits).abs().max().item(),
              (a.seq_relationship_logits - b.seq_relationship_logits).abs().max().item())
    report("float32 on cuda vs transformers", err <= 1e-4, f"max abs diff {err:.2e} (bert-base size, 8x128)")

    # 2. bf16: from_pretrained(dtype=torch.bfloat16) on cuda, against float32
    bf16 = minibert.BertForPreTraining.from_pretrained(folder, dtype=torch.bfloat16).to("cuda")
    with torch.no_grad():
        c = bf16(**batch)
    rel = ((c.prediction_logits.float() - a.prediction_logits).norm() / a.prediction_logits.norm()).item()
    report("bfloat16 on cuda", c.prediction_logits.dtype == torch.bfloat16 and rel < 0.05,
           f"dtype {c.prediction_logits.dtype}, relative difference from float32 {rel:.3e}")

    # 3. a few training steps on cuda with the Trainer (batches follow the model to the GPU)
    rows = [(torch.randint(1000, 30000, (64,), generator=g), torch.randint(0, 2, (), generator=g)) for _ in range(256)]

    def collate(rows, generators):
        return {"input_ids": torch.stack([r[0] for r in rows]), "labels": torch.stack([r[1] for r in rows])}

    classifier = minibert.BertForSequenceClassification.from_pretrained(folder, init_new_head=True).to("cuda")
    start = time.perf_counter()
    losses = Trainer(classifier, TrainingConfig(total_steps=20, learning_rate=1e-4, warmup_steps=2, progress=False)
                     ).train(StepData(rows, 32, collate, seed=0))
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    report("training steps on cuda", all(map(torch.isfinite, map(torch.tensor, losses))),
           f"20 steps of 32x64 in {seconds:.1f} s; loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = classifier(**{k: v.cuda() for k, v in collate(rows[:32], None).items()})
    report("bf16 autocast forward with labels", bool(torch.isfinite(out.loss)), f"loss {out.loss.item():.4f}")

    # 4. nccl: the torchrun test program, one process per GPU
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=1",
                             str(ROOT / "tests" / "programs" / "ddp_train.py"), "/tmp/gpu_ddp.safetensors"],
                            capture_output=True, text=True, env=env, timeout=300)
    backend_ok = result.returncode == 0 and "backend nccl" in result.stdout
    report("torchrun + DistributedDataParallel (nccl) on cuda", backend_ok,
           result.stdout.strip() if backend_ok else (result.stdout + result.stderr)[-1500:])


if __name__ == "__main__":
    main()
