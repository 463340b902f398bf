"""Engines: minibert's own graph run by another runtime, as sentence-transformers offers backends.

    encoder = SentenceEncoder.from_pretrained(path, engine="onnxruntime")      # or "openvino", "aotinductor"
    encoder.encode(["The bat flew out of the cave."])                          # (1, 384), as with engine="torch"

Both engines run one file: the readable BertModel exported by speed/onnx.py's `export_onnx` (torch's
exporter, batch and length dynamic), written once into `folder` (default: a temporary folder that lives
as long as the engine). The numbers are the runtime's own: within 1e-5 of transformers in float32
(tests/test_engines.py), not bit for bit, since each runtime fuses and orders its sums its own way.

    onnxruntime   ONNX Runtime's CPU provider, with its graph optimisations; the inputs are checked
                  first as the eager model checks them (speed/onnx.py's CheckedSession)
    openvino      OpenVINO's CPU plugin, float32 (its bf16 hint is left off: it would change the numbers
                  on CPUs with bf16 instructions)

A third engine runs no ONNX file: `aotinductor` compiles the model ahead of time with torch's own
AOTInductor into a package (`CompiledPackage` below); loading it takes a tenth of a second, and a call
runs no Python between the operators.

Each runs on torch's thread count at the time it is built (torch.get_num_threads()), so a comparison
with the torch engine is like for like. Both are optional packages (onnxruntime is in the test extra,
openvino in the bench extra); a missing one is an ImportError that says which extra has it.

Why not torch.compile(backend="openvino") on the readable model (measured with openvino 2026.4.1, torch
2.13): with fixed shapes its outputs were OpenVINO's (4.5e-6 from eager's at 32x128), but each new
(batch, length) compiled again, 6.6 to 7.2 s each, and encode makes a new shape for nearly every batch;
with dynamic=True its outputs equalled eager's bit for bit, a sign that torch, not OpenVINO, ran the graph.
The ONNX file has dynamic axes, so one compilation serves every shape.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np
import torch

from ..bert.checks import check_inputs
from ..bert.files import write_atomically
from ..bert.model import BertModel
from ..bert.outputs import BaseModelOutput
from .onnx import INPUT_NAMES, CheckedSession, export_onnx

ENGINES = ("torch", "onnxruntime", "openvino", "aotinductor")
EXTRAS = {"onnxruntime": "pip install -c constraints.txt -e '.[test]' (onnxruntime, onnxscript)",
          "openvino": "pip install -c constraints.txt -e '.[bench]' (openvino)"}


def _import(engine: str):
    try:
        if engine == "onnxruntime":
            import onnxruntime
            return onnxruntime
        import openvino
        return openvino
    except ImportError as err:
        raise ImportError(f"engine={engine!r} needs the {engine} package: {EXTRAS[engine]}") from err


class ExportedModel:
    """A BertModel's ONNX export run by ONNX Runtime or OpenVINO, called as the model is:
    model(input_ids=, attention_mask=, token_type_ids=) -> BaseModelOutput (torch tensors, float32).

    `readable` keeps the BertModel it was exported from (SentenceEncoder.save_pretrained writes it);
    `path` is the .onnx file.
    """

    def __init__(self, model: BertModel, engine: str, folder: str | Path | None = None, onnx_file: str | Path | None = None):
        if engine not in ("onnxruntime", "openvino"):
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        if not isinstance(model, BertModel):
            raise TypeError(f"an engine runs the readable BertModel's export, not {type(model).__name__}")
        runtime = _import(engine)
        self.engine, self.readable, self.config = engine, model.eval(), model.config
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
            self.compiled = core.compile_model(str(self.path), "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                                      "INFERENCE_PRECISION_HINT": "f32"})
            self.request = self.compiled.create_infer_request()
            self.output_names = [o.get_any_name() for o in self.compiled.outputs]

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
        return f"ExportedModel(engine={self.engine!r}, path={str(self.path)!r})"


class CompiledPackage:
    """The readable BertModel compiled ahead of time by AOTInductor into one package file (.pt2: a shared
    library and the weights), called as the model is. The call runs compiled code, with no Python between
    the operators: what one short sentence, whose time is per-operator overhead, gains from.

    `package`: the .pt2 to load, built first when it does not exist (about 40 s for all-MiniLM-L6-v2 on 2
    cores, with batch and length dynamic); the model's config.json is written beside it (NAME.json) and a
    package whose config differs from the model's is refused. None: built into a temporary folder.
    """

    def __init__(self, model: BertModel, package: str | Path | None = None):
        if not isinstance(model, BertModel):
            raise TypeError(f"AOTInductor compiles the readable BertModel, not {type(model).__name__}")
        self.readable, self.config = model.eval(), model.config
        if package is None:
            folder = tempfile.mkdtemp(prefix="minibert-aoti-")
            weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
            package = Path(folder) / "model.pt2"
        self.path = Path(package)
        described = self.path.with_suffix(".json")
        config = json.dumps(model.config.to_dict(), sort_keys=True)
        if not self.path.exists():
            compile_package(model, self.path)
            write_atomically(described, config.encode("utf-8"))
        elif not described.is_file() or json.loads(described.read_text()) != json.loads(config):
            raise ValueError(f"{self.path} was not compiled from this model: {described} "
                             f"{'is missing' if not described.is_file() else 'holds another config'}; "
                             "remove the package to compile it again")
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
        hidden = self.runner(input_ids.long(), attention_mask.long(), token_type_ids.long())
        return BaseModelOutput(last_hidden_state=hidden, pooler_output=None)

    def __repr__(self) -> str:
        return f"CompiledPackage(path={str(self.path)!r})"


class _LastHiddenState(torch.nn.Module):
    """The model with positional inputs and one output: what torch.export traces."""

    def __init__(self, model: BertModel):
        super().__init__()
        self.bert = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                         token_type_ids=token_type_ids).last_hidden_state


def compile_package(model: BertModel, path: str | Path) -> Path:
    """Export `model` with batch (1 to 1024) and length (2 to max_position_embeddings) dynamic, and compile it
    with AOTInductor into the package `path`."""
    path = Path(path)
    example = tuple(torch.ones(2, 8, dtype=torch.long) for _ in INPUT_NAMES)
    axes = {0: torch.export.Dim("batch", min=1, max=1024),
            1: torch.export.Dim("length", min=2, max=model.config.max_position_embeddings)}
    with torch.no_grad():
        program = torch.export.export(_LastHiddenState(model.eval()), example, dynamic_shapes=(axes,) * len(INPUT_NAMES))
        partial = path.with_name(path.stem + ".partial.pt2")
        torch._inductor.aoti_compile_and_package(program, package_path=str(partial))
    partial.replace(path)  # a package is there whole, or not at all
    return path
