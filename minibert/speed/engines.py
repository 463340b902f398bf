"""Engines: minibert's own graph run by another runtime, as sentence-transformers offers backends.

    encoder = SentenceEncoder.from_pretrained(path, engine="onnxruntime")      # or "openvino", "aotinductor"
    encoder.encode(["The bat flew out of the cave."])                          # (1, 384), as with engine="torch"

Both engines run one file: the readable BertModel exported by speed/onnx.py's `export_onnx` (torch's
exporter, batch and length dynamic), written once into `folder` (default: a temporary folder that lives
as long as the engine). The numbers are the runtime's own: within 1e-5 of transformers in float32
(tests/test_engines.py), not bit for bit, since each runtime fuses and orders its sums its own way.

    onnxruntime   ONNX Runtime's CPU provider, with its graph optimisations; the inputs are checked
                  first as the eager model checks them (speed/onnx.py's CheckedSession)
    openvino      OpenVINO's CPU plugin, float32 unless precision="bf16" (OpenVINO's own hint, which it
                  follows where its CPU plugin reports BF16 among its OPTIMIZATION_CAPABILITIES: with
                  bf16 instructions, or emulated on AVX-512 CPUs; elsewhere it runs float32)

A third engine runs no ONNX file: `aotinductor` compiles the model ahead of time with torch's own
AOTInductor into a package (`CompiledPackage` below); loading one takes 2 to 3 s (the first load on a
machine about 10: inductor first probes the CPU's vector instructions by compiling small programs, then
caches the answer), and a call runs no Python between the operators. Inductor freezes the weights into the
package (they are constants, so it packs them once into oneDNN's layouts) and fuses the elementwise steps
between the products. It compiles three precisions:

    fp32    the readable model as it is: within 1e-5 of transformers
    bf16    the readable model under torch.autocast(bfloat16): the products in bfloat16, the LayerNorms,
            the softmax and the residual stream in float32 (min cosine 0.9999 against float32, tested)
    int8    the encoder's Linear layers in int8 with torchao's dynamic quantization (one scale per token
            for the activations, per output channel for the weights; oneDNN's int8 kernels), after
            SmoothQuant factors from calibration text (speed/smoothing.py); min cosine 0.99, tested

One engine also takes bf16: `openvino` with OpenVINO's bf16 inference hint (its own mixed precision).

onnxruntime and openvino run on torch's thread count at the time they are built (torch.get_num_threads()),
so a comparison with the torch engine is like for like; a package follows torch's count at each call (it
is compiled with inductor's dynamic thread count, not the count at build time baked into its kernels).
The runtimes are optional packages (onnxruntime, openvino and torchao are in the test extra); a missing one
is an ImportError that says which extra has it.

Why not torch.compile(backend="openvino") on the readable model (measured with openvino 2026.4.1, torch
2.13): with fixed shapes its outputs were OpenVINO's (4.5e-6 from eager's at 32x128), but each new
(batch, length) compiled again, 6.6 to 7.2 s each, and encode makes a new shape for nearly every batch;
with dynamic=True its outputs equalled eager's bit for bit, a sign that torch, not OpenVINO, ran the graph.
The ONNX file has dynamic axes, so one compilation serves every shape.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import types
import weakref
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from ..bert.checks import check_inputs
from ..bert.files import write_atomically
from ..bert.model import BertModel
from ..bert.outputs import BaseModelOutput
from ..bert.tokenizer import Tokenizer
from .onnx import INPUT_NAMES, CheckedSession, export_onnx
from .smoothing import ALPHA, calibration_texts, input_ranges, smooth

ENGINES = ("torch", "onnxruntime", "openvino", "aotinductor")
PRECISIONS = ("fp32", "bf16", "int8")
EXTRAS = {"onnxruntime": "pip install -c constraints.txt -e '.[test]' (onnxruntime, onnxscript)",
          "openvino": "pip install -c constraints.txt -e '.[test]' (openvino)",
          "torchao": "pip install -c constraints.txt -e '.[test]' (torchao)"}


def _import(package: str, wanted: str) -> types.ModuleType:
    try:
        if package == "onnxruntime":
            import onnxruntime
            return onnxruntime
        if package == "openvino":
            import openvino
            return openvino
        quiet = logging.getLogger("torchao")  # its CPU wheel warns that its CUDA libraries do not load
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            import torchao.quantization
        finally:
            quiet.setLevel(level)
        return torchao.quantization
    except ImportError as err:
        raise ImportError(f"{wanted} needs the {package} package: {EXTRAS[package]}") from err


def has_bf16_instructions() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX): where bf16 is faster than float32.
    (OpenVINO may follow its bf16 hint without them, by emulation: ExportedModel.runs_bf16 asks OpenVINO.)"""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: say no, and the hint's effect is not promised
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class ExportedModel:
    """A BertModel's ONNX export run by ONNX Runtime or OpenVINO, called as the model is:
    model(input_ids=, attention_mask=, token_type_ids=) -> BaseModelOutput (torch tensors, float32).

    `readable` keeps the BertModel it was exported from (SentenceEncoder.save_pretrained writes it);
    `path` is the .onnx file.
    """

    def __init__(self, model: BertModel, engine: str, folder: str | Path | None = None,
                 onnx_file: str | Path | None = None, precision: str = "fp32"):
        if engine not in ("onnxruntime", "openvino"):
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        if not isinstance(model, BertModel):
            raise TypeError(f"an engine runs the readable BertModel's export, not {type(model).__name__}")
        if precision not in ("fp32", "bf16") or (precision == "bf16" and engine != "openvino"):
            raise ValueError(f"engine={engine!r} runs in {'fp32 or bf16' if engine == 'openvino' else 'fp32'}, "
                             f"not {precision!r}")
        runtime = _import(engine, f"engine={engine!r}")
        self.engine, self.precision, self.readable, self.config = engine, precision, model.eval(), model.config
        threads = torch.get_num_threads()
        if onnx_file is None:
            if folder is None:  # a temporary folder, removed with this object
                folder = tempfile.mkdtemp(prefix="minibert-onnx-")
                weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
            onnx_file = export_onnx(model, Path(folder) / "model.onnx")
        self.path = Path(onnx_file)
        if engine == "onnxruntime":
            options = runtime.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            session = runtime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            self.session = CheckedSession(session, self.config)
            self.output_names = [o.name for o in session.get_outputs()]
        else:
            core = runtime.Core()
            hint = {"fp32": "f32", "bf16": "bf16"}[precision]
            self.compiled = core.compile_model(str(self.path), "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                                      "INFERENCE_PRECISION_HINT": hint})
            self.request = self.compiled.create_infer_request()
            self.output_names = [o.get_any_name() for o in self.compiled.outputs]
            # Whether the runtime really multiplies in bf16: OpenVINO says so in its own terms.
            capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
            self.runs_bf16 = precision == "bf16" and "BF16" in capabilities
        if engine == "onnxruntime":
            self.runs_bf16 = False

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 token_type_ids: torch.Tensor | None = None) -> BaseModelOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feed = {name: inputs[name].numpy() for name in INPUT_NAMES}
        if self.engine == "onnxruntime":
            outputs = self.session.run(self.output_names, feed)  # checks the inputs first
        else:
            check_inputs(self.config, input_ids, attention_mask, token_type_ids, None)
            results = self.request.infer({name: value.astype(np.int64) for name, value in feed.items()})
            outputs = [results[self.compiled.output(name)] for name in self.output_names]
        fields = dict(zip(self.output_names, (torch.from_numpy(np.asarray(o)) for o in outputs)))
        return BaseModelOutput(last_hidden_state=fields["last_hidden_state"], pooler_output=fields.get("pooler_output"))

    def __repr__(self) -> str:
        return f"ExportedModel(engine={self.engine!r}, precision={self.precision!r}, path={str(self.path)!r})"


class CompiledPackage:
    """The readable BertModel compiled ahead of time by AOTInductor into one package file (.pt2: a shared
    library and the weights), called as the model is. The call runs compiled code, with no Python between
    the operators: what one short sentence, whose time is per-operator overhead, gains from.

    Args:
        model: the readable BertModel to compile (its weights are frozen into the package).
        package: the .pt2 to load, built first when it does not exist (20 to 60 s for all-MiniLM-L6-v2 on 2
            cores, with batch and length dynamic). What it was built from is written beside it (NAME.json:
            the model's config, the precision, torch's version; for int8 also the calibration texts' SHA-1,
            alpha and torchao's version), and a package built from anything else is refused. None: built
            into a temporary folder that goes with this object.
        precision: "fp32", "bf16" or "int8" (the module docstring).
        tokenizer: the model's Tokenizer; int8 needs it, to run the calibration texts.
        calibration: the texts int8 calibrates its SmoothQuant factors on (default:
            smoothing.calibration_texts(), 512 news sentences).

    Raises:
        TypeError: `model` is not a BertModel.
        ValueError: an unknown precision; int8 without a tokenizer; a package built from something else
            (the message names the field of NAME.json that differs).
        ImportError: int8 without torchao (the message names the extra).
    """

    def __init__(self, model: BertModel, package: str | Path | None = None, precision: str = "fp32",
                 tokenizer: Tokenizer | None = None, calibration: list[str] | None = None):
        if not isinstance(model, BertModel):
            raise TypeError(f"AOTInductor compiles the readable BertModel, not {type(model).__name__}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.readable, self.config, self.precision = model.eval(), model.config, precision
        if package is None:
            folder = tempfile.mkdtemp(prefix="minibert-aoti-")
            weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
            package = Path(folder) / "model.pt2"
        self.path = Path(package)
        described = self.path.with_suffix(".json")
        built_from = {"config": model.config.to_dict(), "precision": precision, "torch": torch.__version__}
        if precision == "int8":
            _import("torchao", "precision='int8'")  # before anything is written: a missing torchao says so first
            calibration = calibration_texts() if calibration is None else calibration  # read once, used twice
            digest = hashlib.sha1("\n".join(calibration).encode("utf-8")).hexdigest()
            built_from["int8"] = {"calibration_sha1": digest, "alpha": ALPHA, "torchao": metadata.version("torchao")}
        built_from = json.loads(json.dumps(built_from))  # as the file will read back
        if not self.path.exists():
            # The description first: a package never stands without one (a failed build leaves at most a
            # description, which the next build overwrites).
            write_atomically(described, json.dumps(built_from, indent=1, sort_keys=True).encode("utf-8"))
            compile_package(model, self.path, precision, tokenizer, calibration)
        else:
            found = json.loads(described.read_text()) if described.is_file() else None
            differs = _difference(found, built_from)
            if differs:
                raise ValueError(f"{self.path} was not compiled from this model in {precision} with this torch: "
                                 f"{described} {differs}; remove the package to compile it again")
        self.runner = torch._inductor.aoti_load_package(str(self.path))

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 token_type_ids: torch.Tensor | None = None) -> BaseModelOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        check_inputs(self.config, input_ids, attention_mask, token_type_ids, None)  # not in the compiled code
        if input_ids.shape[1] < 2:
            raise ValueError("the package takes texts of 2 tokens or more ([CLS] and [SEP] make 2)")
        hidden = self.runner(input_ids.long(), attention_mask.long(), token_type_ids.long())  # (B, T, H) float32
        return BaseModelOutput(last_hidden_state=hidden, pooler_output=None)

    def __repr__(self) -> str:
        return f"CompiledPackage(precision={self.precision!r}, path={str(self.path)!r})"


def _difference(found: dict | None, wanted: dict) -> str | None:
    """What a package's description (`found`, None where there is none) says that differs from `wanted`, in
    words; None where nothing does."""
    if found == wanted:
        return None
    if found is None:
        return "is missing"
    if "precision" not in found:
        return "was written before packages recorded their precision"
    if found["config"] != wanted["config"]:
        return "holds another config"
    if found["precision"] != wanted["precision"]:
        return f"says {found['precision']}, not {wanted['precision']}"
    if found["torch"] != wanted["torch"]:
        return f"says torch {found['torch']}, not {wanted['torch']}"
    settings = found.get("int8") or {}
    changed = [f"{key} {settings.get(key)}, not {value}" for key, value in wanted["int8"].items()
               if settings.get(key) != value]
    return "holds other int8 settings: " + "; ".join(changed)


class _LastHiddenState(torch.nn.Module):
    """The model with positional inputs and one float32 output: what torch.export traces. With `bf16`,
    under torch.autocast: the products in bfloat16, what autocast keeps in float32 (LayerNorm, softmax,
    the additions of the residual stream, which meet a float32 operand) in float32."""

    def __init__(self, model: torch.nn.Module, bf16: bool = False):
        super().__init__()
        self.bert, self.bf16 = model, bf16

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state  # (B, T, H)
        return hidden.float()


def quantize_int8(model: BertModel, tokenizer: Tokenizer | None,
                  calibration: list[str] | None = None) -> torch.nn.Module:
    """A copy of `model` with SmoothQuant factors and torchao's int8 Linear layers: int8 weights per output
    channel, activations quantized per token when called. Run eagerly it is slow; compile_package makes it fast.

    Args:
        model: the readable BertModel (left as it is).
        tokenizer: its Tokenizer, to run the calibration texts.
        calibration: the texts whose activation ranges set the factors (default: calibration_texts()).

    Returns:
        The quantized copy.

    Raises:
        ImportError: torchao is not installed (the message names the extra).
        ValueError: no tokenizer, or no calibration texts.
    """
    quantization = _import("torchao", "precision='int8'")
    if tokenizer is None:
        raise ValueError("precision='int8' calibrates on text, so it needs the tokenizer")
    texts = calibration_texts() if calibration is None else calibration
    smoothed = smooth(model.eval(), input_ranges(model, tokenizer, texts), ALPHA)
    quantization.quantize_(smoothed, quantization.Int8DynamicActivationInt8WeightConfig())
    return smoothed


def compile_package(model: BertModel, path: str | Path, precision: str = "fp32", tokenizer: Tokenizer | None = None,
                    calibration: list[str] | None = None) -> Path:
    """Export `model` with batch (1 to 1024) and length (2 to max_position_embeddings) dynamic, in `precision`,
    and compile it with AOTInductor into the package `path`: the weights frozen (inductor packs them once), and
    the kernels' thread count left to torch's setting at each call (inductor's dynamic threads).

    Args:
        model, precision, tokenizer, calibration: as CompiledPackage takes them.
        path: the .pt2 to write. It appears whole or not at all: the build goes to a temporary file beside
            it, which is removed if the build fails.

    Returns:
        `path`, as a Path.

    Raises:
        ImportError, ValueError: as quantize_int8, for int8.
    """
    path = Path(path)
    if precision == "int8":
        traced = _LastHiddenState(quantize_int8(model, tokenizer, calibration))
    else:
        traced = _LastHiddenState(model.eval(), bf16=precision == "bf16")
    example = tuple(torch.ones(2, 8, dtype=torch.long) for _ in INPUT_NAMES)
    axes = {0: torch.export.Dim("batch", min=1, max=1024),
            1: torch.export.Dim("length", min=2, max=model.config.max_position_embeddings)}
    handle, partial = tempfile.mkstemp(prefix=path.stem + ".", suffix=".partial.pt2", dir=path.parent)
    os.close(handle)
    try:
        with torch.no_grad(), torch._inductor.config.patch({"freezing": True, "cpp.dynamic_threads": True}):
            program = torch.export.export(traced, example, dynamic_shapes=(axes,) * len(INPUT_NAMES))
            torch._inductor.aoti_compile_and_package(program, package_path=partial)
        os.replace(partial, path)  # a package is there whole, or not at all
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return path
