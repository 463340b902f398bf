"""The matrix products of all-MiniLM-L6-v2's layers, on each of torch's CPU kernels: GFLOP/s.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_gemm.py [--threads 2] [--tokens 4096]

Why minibert's fast path multiplies with oneDNN (minibert/speed/fast.py, item 5): `F.linear` on a
float32 CPU tensor goes to MKL's sgemm, and MKL on an AMD CPU may not take its fastest code path.
This measures the four product shapes of one layer (Q|K|V, attention output, and the feed-forward's
two), at --tokens rows (32 texts of 128 tokens by default), three ways, taking turns in every round:

    F.linear            torch's default: MKL (or OpenBLAS) sgemm on the weight as stored
    MKL packed          torch.ops.mkl._mkl_linear on a weight MKL has packed once
    oneDNN packed       torch.ops.mkldnn._linear_pointwise on a weight oneDNN has laid out once

Each product is checked against F.linear (max abs difference) before it is timed. A run takes about
10 s. Times are medians of 20 calls; GFLOP/s counts 2 * M * K * N per call.
"""

from __future__ import annotations

import argparse
import functools
import platform
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import machine, time_in_turn  # noqa: E402  (scripts/bench.py: the CPU's name; the timing)

SHAPES = {"Q, K and V": (384, 1152), "attention output": (384, 384), "feed-forward in": (384, 1536),
          "feed-forward out": (1536, 384)}  # (K, N): input features, output features


def kernels(weight: torch.Tensor, bias: torch.Tensor, rows: int) -> dict:
    kinds = {"F.linear": lambda x: F.linear(x, weight, bias)}
    if torch._C.has_mkl:
        packed_mkl = torch.ops.mkl._mkl_reorder_linear_weight(weight, rows)
        kinds["MKL packed"] = lambda x: torch.ops.mkl._mkl_linear(x, packed_mkl, weight, bias, rows)
    if torch.backends.mkldnn.is_available():
        packed_onednn = torch.ops.mkldnn._reorder_linear_weight(weight, None)
        kinds["oneDNN packed"] = lambda x: torch.ops.mkldnn._linear_pointwise(x, packed_onednn, bias, "none", [], "")
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch's threads (default 2)")
    parser.add_argument("--tokens", type=int, default=4096, help="rows of each product (default 4096 = 32 x 128)")
    args = parser.parse_args()
    for flag in ("threads", "tokens"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"{machine()['cpu']}, {args.threads} threads; torch {torch.__version__}, Python {platform.python_version()}; "
          f"{args.tokens} rows")
    print("| product (K x N) | " + " | ".join(["F.linear", "MKL packed", "oneDNN packed"]) + " | oneDNN / F.linear |")
    print("|---|---|---|---|---|")
    for name, (k, n) in SHAPES.items():
        x, weight, bias = torch.randn(args.tokens, k), torch.randn(n, k) / k ** 0.5, torch.randn(n)
        reference = F.linear(x, weight, bias)
        calls = {kind: functools.partial(fn, x) for kind, fn in kernels(weight, bias, args.tokens).items()}
        for kind, call in calls.items():
            difference = (call() - reference).abs().max().item()
            assert difference < 1e-3, f"{kind} disagrees with F.linear by {difference}"
        times = time_in_turn(calls, repeats=20)  # the kernels take turns in every round
        rates = {kind: 2 * args.tokens * k * n / stat.median / 1e9 for kind, stat in times.items()}
        cells = [f"{rates[kind]:.0f} GFLOP/s" if kind in rates else "n/a" for kind in ("F.linear", "MKL packed", "oneDNN packed")]
        ratio = f"{rates['oneDNN packed'] / rates['F.linear']:.2f}x" if "oneDNN packed" in rates else "n/a"
        print(f"| {name} ({k} x {n}) | " + " | ".join(cells) + f" | {ratio} |")


if __name__ == "__main__":
    main()
