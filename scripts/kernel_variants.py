"""Run the test suite under other CPU kernels, as if on another x86-64 CPU.

    python scripts/kernel_variants.py                  # every variant, the whole suite: about 35 min on 2 cores
    python scripts/kernel_variants.py --variant aten-avx2 -- tests/test_encode.py

torch, oneDNN, MKL and numpy's OpenBLAS each pick their kernels for the CPU they find. An AMD EPYC
and an Intel Xeon with AMX therefore sum the same float32 products in different orders, and the
last bits of a result move (by about 1e-7 relative per product, 1e-6 absolute after six layers).
CI runs on whichever CPU it gets, so a test may assert only what holds on every one of them. This
script checks that on one machine by making each library take the kernels another CPU would:

  default            what this CPU picks
  aten-avx2          ATEN_CPU_CAPABILITY=avx2: torch's own vectorized kernels (softmax, LayerNorm, GELU,
                     reductions) at 256 bits, as on a CPU without AVX-512
  onednn-avx2        ONEDNN_MAX_CPU_ISA=AVX2: oneDNN's convolutions/matmuls (the fast path's packed linear)
                     without AVX-512, VNNI or AMX
  mkl-compatible     MKL_CBWR=COMPATIBLE: MKL's reproducible SSE2 code path for its GEMMs, a different
                     blocking and summation order from the AVX2/AVX-512 ones
  openblas-skylakex  OPENBLAS_CORETYPE=SkylakeX: numpy's BLAS (glove's dot products) with the AVX-512
                     kernels an Intel Xeon gets; on AMD, OpenBLAS picks its Haswell (AVX2) kernels

Each variant runs in its own process with pytest's output kept to the summary. The report ends
with one line per variant: passed, failed, the failing tests, and the largest parity error per
kind (from tests/conftest.py's summary), so a bound can be checked against what moved.
Exit status: 0 when every variant passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "onednn-avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "mkl-compatible": {"MKL_CBWR": "COMPATIBLE"},
    "openblas-skylakex": {"OPENBLAS_CORETYPE": "SkylakeX"},
}


def run_variant(name: str, pytest_args: list[str]) -> tuple[int, str, float]:
    """pytest under one variant's environment: (exit status, its output, seconds).

    Each variant compiles into a cache of its own. torch 2.13's inductor keeps one cache for every
    ATEN_CPU_CAPABILITY: a kernel compiled for AVX-512 and then loaded under avx2 returned NaN, and the
    other way round the process died ("double free or corruption"), both seen here.
    """
    with tempfile.TemporaryDirectory(prefix=f"inductor-{name}-") as cache:
        env = {**os.environ, **VARIANTS[name], "HF_HUB_OFFLINE": "1", "TORCHINDUCTOR_CACHE_DIR": cache}
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args],
                                cwd=ROOT, env=env, capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr, time.perf_counter() - start


def summarize(output: str) -> tuple[str, list[str], list[str]]:
    """(pytest's last line, the failing tests, the parity summary lines) from a run's output."""
    lines = output.splitlines()
    last = next((line.strip("= ") for line in reversed(lines) if re.search(r"\d+ (passed|failed|error)", line)), "?")
    failures = [line.split(" - ")[0] for line in lines if line.startswith(("FAILED ", "ERROR "))]
    parity, inside = [], False
    for line in lines:
        if "parity: largest absolute error" in line:
            inside = True
        elif inside and (line.startswith("=") or not line.strip()):
            inside = False
        elif inside:
            parity.append(line)
    return last, failures, parity


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", choices=list(VARIANTS),
                        help="run only this variant (may be repeated); default: all")
    parser.add_argument("pytest_args", nargs="*", help="after --: what to pass to pytest (default: the whole suite)")
    args = parser.parse_args(argv)
    status = 0
    for name in args.variant or list(VARIANTS):
        code, output, seconds = run_variant(name, args.pytest_args)
        last, failures, parity = summarize(output)
        settings = " ".join(f"{k}={v}" for k, v in VARIANTS[name].items()) or "(nothing set)"
        print(f"## {name}: {settings}\n{last} in {seconds:.0f} s", flush=True)
        for failure in failures:
            print(f"  {failure}")
        for line in parity:
            print(f"  {line}")
        status = status or int(code != 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
