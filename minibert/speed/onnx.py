"""The model as an ONNX file for ONNX Runtime, and a session that checks its inputs as the model does.

    >>> path = export_onnx(model, tmp / "minilm.onnx")            # torch.onnx.export, dynamic batch and length
    >>> session = CheckedSession(path)                            # onnxruntime.InferenceSession, checked
    >>> batch = tokenizer(["The bat flew out of the cave at night.", "Paris."])
    >>> hidden, pooled = session.run(None, {name: batch[name].numpy() for name in session.input_names})
    >>> hidden.shape, pooled.shape
    ((2, 12, 384), (2, 384))
    >>> bad = {name: batch[name].numpy() for name in session.input_names}
    >>> bad["attention_mask"][1, 0] = 2
    >>> session.run(None, bad)
    Traceback (most recent call last):
    ValueError: attention_mask[1, 0] = 2; the mask holds 1 for a real token and 0 for padding, nothing else

What survives export, and what does not. The eager model checks its input before it computes
(minibert/bert/checks.py, `check_inputs`). The shape checks read no numbers, and the exported graph
keeps shapes of its own. The value checks read the numbers, and are skipped while a graph is
recorded (`can_read_values`: a recorded graph cannot branch on them), so they are not in the file.
Measured in ONNX Runtime on all-MiniLM-L6-v2's export (tests/test_onnx.py):

    input                                      eager model    a plain InferenceSession
    attention_mask holding 2 or -1             refused        runs: hidden states off by 1.5 and 1.6
    a negative input_id                        refused        runs: reads a row from the end (off by 1.9)
    a negative token_type_id                   refused        runs: the same way (off by 0.06)
    input_ids >= vocab_size                    refused        fails inside: "Gather ... out of data bounds"
    token_type_ids >= type_vocab_size          refused        fails inside, the same way
    more tokens than max_position_embeddings   refused        fails inside, the same way

So run an exported model through `CheckedSession`: it calls the model's own `check_inputs` on the
numbers before ONNX Runtime sees them, and raises the same errors in the same words. It costs about
40 us a call at 1 x 12 tokens (ONNX Runtime's forward takes 3 to 5 ms there) and 64 us at 32 x 128.

ONNX Runtime and onnxscript are optional (the test extra installs them): they are imported here, on
first use.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..bert.config import BertConfig
from ..bert.checks import check_inputs
from ..bert.files import write_atomically

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")  # the order of the graph's inputs
CONFIG_KEY = "minibert.config"  # the file's metadata entry that holds the model's config.json


def export_onnx(model: torch.nn.Module, path: str | Path) -> Path:
    """Write `model` (eval mode) to one ONNX file, with batch and length as dynamic axes.

    The graph takes input_ids, attention_mask and token_type_ids, (B, T) int64 each, and returns
    the fields of the model's output (BertModel: last_hidden_state, pooler_output). The model's
    config goes into the file's metadata, so that `CheckedSession` can check inputs against it.
    The weights are stored inside the file (any BERT is under ONNX's 2 GB limit for one file), and
    the file is written atomically: an error leaves the old file or none.

    Args:
        model: minibert's BertModel or a model with a head.
        path: the .onnx file to write.

    Returns:
        The path written.
    """
    import onnxscript  # noqa: F401  (torch.onnx.export's dynamo exporter needs it; a clear ImportError if missing)

    model = model.eval()
    config = model.config
    # Two texts of eight tokens: any size works; 1 would be taken for a fixed axis, not a dynamic one.
    example = {"input_ids": torch.ones(2, 8, dtype=torch.long), "attention_mask": torch.ones(2, 8, dtype=torch.long),
               "token_type_ids": torch.zeros(2, 8, dtype=torch.long)}
    with torch.no_grad():
        output_names = model(**example).keys()
    axes = {0: torch.export.Dim("batch"), 1: torch.export.Dim("length", max=config.max_position_embeddings)}
    program = torch.onnx.export(model, tuple(example[name] for name in INPUT_NAMES), dynamo=True, verbose=False,
                                input_names=list(INPUT_NAMES), output_names=output_names,
                                dynamic_shapes=(axes,) * len(INPUT_NAMES))
    program.model.metadata_props[CONFIG_KEY] = json.dumps(config.to_dict())
    path = Path(path)
    write_atomically(path, lambda tmp: program.save(tmp, external_data=False))
    return path


class CheckedSession:
    """An onnxruntime.InferenceSession whose `run` first checks the inputs as the eager model does.

    Args:
        model: an .onnx file (written by `export_onnx`, or by torch.onnx.export from a minibert or
            transformers BERT), or an InferenceSession already made.
        config: the model's BertConfig, or the folder holding its config.json; read from the
            file's metadata when None (export_onnx puts it there).
        providers: ONNX Runtime's execution providers, when `model` is a path.

    Raises:
        ValueError: no config given and none in the file's metadata.
    """

    def __init__(self, model, config: BertConfig | str | Path | None = None,
                 providers: tuple[str, ...] = ("CPUExecutionProvider",)):
        import onnxruntime

        self.session = model if isinstance(model, onnxruntime.InferenceSession) else \
            onnxruntime.InferenceSession(str(model), providers=list(providers))
        if config is None:
            stored = self.session.get_modelmeta().custom_metadata_map.get(CONFIG_KEY)
            if stored is None:
                raise ValueError("this ONNX file holds no minibert config (export_onnx writes one); "
                                 "pass config=BertConfig or the checkpoint folder")
            config = BertConfig.from_dict(json.loads(stored))
        elif not isinstance(config, BertConfig):
            config = BertConfig.from_pretrained(config)
        self.config = config
        self.input_names = [i.name for i in self.session.get_inputs()]

    def run(self, output_names: list[str] | None, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """InferenceSession.run, after the eager model's checks of input_ids, attention_mask and
        token_type_ids (any integer dtype is accepted and given to the graph as int64).

        Raises:
            ValueError, TypeError: what the eager model raises for the same input; KeyError for an
                input the graph does not take.
        """
        unknown = sorted(set(inputs) - set(self.input_names))
        if unknown:
            raise KeyError(f"the graph takes {self.input_names}, not {unknown}")
        tensors = {name: torch.from_numpy(np.asarray(value)) for name, value in inputs.items()}  # no copies
        check_inputs(self.config, tensors.get("input_ids"), tensors.get("attention_mask"),
                     tensors.get("token_type_ids"), None)
        feed = {name: np.asarray(value, dtype=np.int64) for name, value in inputs.items()}
        return self.session.run(output_names, feed)
