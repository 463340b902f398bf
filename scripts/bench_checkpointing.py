"""Gradient checkpointing: the peak memory and the time of a training step, with it and without.

    .venv/bin/python scripts/bench_checkpointing.py                  # bert-base, 8 x 256: about 4 minutes on 2 cores
    .venv/bin/python scripts/bench_checkpointing.py --batch 16 --length 128 --layers 6

The model is a BertForSequenceClassification of bert-base's sizes (12 layers, width 768, 12 heads, the
bert-base vocabulary), randomly initialised: nothing is downloaded. A step is forward with labels,
backward, in training mode (dropout on); the optimizer is left out, as its state is the same either way.

How memory is measured: each setting runs in a fresh Python process, which builds the model and the
batch, notes its resident memory (VmRSS, /proc/self/status), runs one step, and reads its peak resident
memory since it started (resource.getrusage(RUSAGE_SELF).ru_maxrss). The step's peak is the difference:
what the step held at its highest point above the model, the batch and Python itself, that is the
activations kept for the backward pass and the gradients. Building the model peaks lower than the step,
which the script checks. That process runs with MALLOC_MMAP_THRESHOLD_=65536: glibc then gives every
freed block above 64 KiB back to the system at once, so resident memory follows the live tensors, not
what the allocator keeps for reuse (without it, the figures here were up to 1.7x the live ones).
tracemalloc would not do: it does not see torch's CPU tensors.

How time is measured: in another fresh process with the usual allocator (the setting above slows every
allocation), one step to warm up, then the best of --repeats steps.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

BERT_BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072)


def resident_mb() -> float:
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1]) / 1024


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def one_setting(checkpointing: bool, batch: int, length: int, layers: int, repeats: int) -> dict:
    """Run in a fresh process (see main): the first step's peak memory above what was held before it, and
    the best time of `repeats` more steps (none: memory only)."""
    import torch

    import minibert

    torch.manual_seed(0)
    config = minibert.BertConfig(**{**BERT_BASE, "num_hidden_layers": layers}, max_position_embeddings=max(512, length),
                                 num_labels=2)
    model = minibert.BertForSequenceClassification(config).train()
    if checkpointing:
        model.gradient_checkpointing_enable()
    g = torch.Generator().manual_seed(1)
    inputs = dict(input_ids=torch.randint(1000, config.vocab_size, (batch, length), generator=g),
                  attention_mask=torch.ones(batch, length, dtype=torch.long),
                  labels=torch.randint(0, 2, (batch,), generator=g))

    def step():
        model.zero_grad(set_to_none=True)
        model(**inputs).loss.backward()

    before, peak_before = resident_mb(), peak_mb()
    step()
    peak = peak_mb()
    assert peak > peak_before, "building the model peaked higher than the step: the difference would not be the step's"
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return dict(held_before_mb=before, peak_mb=peak, step_peak_mb=peak - before, seconds=min(times, default=None))


def child(setting: str, args, repeats: int, env: dict) -> dict:
    """one_setting in a fresh process."""
    command = [sys.executable, __file__, "--one", setting, "--batch", str(args.batch), "--length", str(args.length),
               "--layers", str(args.layers), "--repeats", str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"bench_checkpointing: the '{setting}' process failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2, help="steps timed after a warm-up one (the best is kept)")
    parser.add_argument("--one", choices=["with", "without"], help=argparse.SUPPRESS)  # the child process's part
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_setting(args.one == "with", args.batch, args.length, args.layers, args.repeats)))
        return

    import torch

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} torch threads; torch {torch.__version__}; load {os.getloadavg()[0]:.2f}")
    print(f"BertForSequenceClassification, bert-base sizes with {args.layers} layers; batch {args.batch} x "
          f"{args.length} tokens; one step = forward with labels + backward, training mode")
    results = {}
    for setting in ("without", "with"):
        memory = child(setting, args, repeats=0, env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"})
        results[setting] = {**memory, "seconds": child(setting, args, args.repeats, dict(os.environ))["seconds"]}
    print("| gradient checkpointing | held before the step, MB | peak of the step above it, MB | "
          "peak RSS, MB | seconds per step (best) |")
    print("|---|---|---|---|---|")
    for setting, r in results.items():
        print(f"| {setting} | {r['held_before_mb']:.0f} | {r['step_peak_mb']:.0f} | {r['peak_mb']:.0f} | "
              f"{r['seconds']:.2f} |")
    without, with_ = results["without"], results["with"]
    saved = without["step_peak_mb"] - with_["step_peak_mb"]
    print(f"checkpointing: the step's peak is {with_['step_peak_mb'] / without['step_peak_mb']:.2f} of what it is "
          f"without ({abs(saved):.0f} MB {'less' if saved >= 0 else 'more'}), for "
          f"{with_['seconds'] / without['seconds']:.2f}x the time")


if __name__ == "__main__":
    main()
