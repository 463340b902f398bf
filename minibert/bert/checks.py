"""The checks on what a caller passes to the models: refusals with a message that names the tensor, its
shape or the bad value. They are kept out of model.py, so that the forward pass reads without them;
model.py calls check_inputs once (from prepare_inputs) and the heads call the label checks.

    >>> from minibert import BertConfig
    >>> check_inputs(BertConfig(vocab_size=10), torch.tensor([[1, 12]]), None, None, None)
    Traceback (most recent call last):
    ...
    ValueError: input_ids[0, 1] = 12 is outside the vocabulary [0, 10)
"""

from __future__ import annotations

import torch

from .losses import IGNORE_INDEX


def positive_int(name: str, value, error: type[Exception] = ValueError, at_least: int = 1, why: str = "",
                 type_error: type[Exception] | None = None) -> int:
    """`value` if it is an int of at least `at_least` (1: a positive integer).

    Raises:
        `error` naming `name` (and `why` the bound is what it is, if given); `type_error`, if given, instead
        for a value that is no int at all. A bool is refused although Python counts it an int: True is no count.
    """
    not_an_int = isinstance(value, bool) or not isinstance(value, int)
    if not_an_int and type_error is not None:
        raise type_error(f"{name}={value!r} must be a whole number" + (f" ({why})" if why else ""))
    if not_an_int or value < at_least:
        what = "a positive integer" if at_least == 1 else f"an integer of at least {at_least}"
        raise error(f"{name}={value!r} must be {what}" + (f" ({why})" if why else ""))
    return value


def can_read_values(tensor: torch.Tensor) -> bool:
    """Whether a check may look at the numbers in `tensor`, not only its shape.

    Value checks (`ids.max() >= vocab_size`) run in every ordinary call. They are skipped while
    torch.jit.trace, torch.compile or torch.export records the graph, and on the meta device: there
    the tensors hold no numbers yet, and a branch on their values would break the recording. Shape
    checks run everywhere.
    """
    recording = torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting()
    return not (recording or tensor.is_meta)


def check_inputs(config, input_ids, attention_mask, token_type_ids, position_ids,
                 inputs_embeds=None) -> None:
    """Refuse input that would otherwise fail deep inside, or silently read the wrong rows. `config` is the
    model's BertConfig."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("give exactly one of input_ids and inputs_embeds")
    if inputs_embeds is not None:
        if not isinstance(inputs_embeds, torch.Tensor) or inputs_embeds.dim() != 3 \
                or inputs_embeds.shape[-1] != config.hidden_size:
            shape = tuple(inputs_embeds.shape) if isinstance(inputs_embeds, torch.Tensor) else type(inputs_embeds).__name__
            raise ValueError(f"inputs_embeds must be a (batch, length, {config.hidden_size}) tensor, got {shape}")
        B, T = inputs_embeds.shape[:2]
    else:
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
            raise ValueError(f"input_ids must be a (batch, length) tensor, got {shape}")
        if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
            raise TypeError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
        B, T = input_ids.shape
        # The comparisons are made in Python ints: in the ids' own dtype a vocabulary of 30522 would
        # wrap around (as uint8 it is 58), and every id would look out of range.
        if input_ids.numel() and can_read_values(input_ids) and (
                int(input_ids.min()) < 0 or int(input_ids.max()) >= config.vocab_size):
            wide = input_ids.long()
            bad = ((wide < 0) | (wide >= config.vocab_size)).nonzero()[0].tolist()
            raise ValueError(
                f"input_ids[{bad[0]}, {bad[1]}] = {input_ids[bad[0], bad[1]].item()} is outside the "
                f"vocabulary [0, {config.vocab_size})"
            )
    given = "input_ids" if input_ids is not None else "inputs_embeds"
    if T == 0:
        shape = tuple((input_ids if input_ids is not None else inputs_embeds).shape)
        raise ValueError(f"{given} has no tokens (shape {shape}); "
                         "a BERT input has at least [CLS] and [SEP]")
    if T > config.max_position_embeddings:
        raise ValueError(
            f"{given} has {T} tokens, more than max_position_embeddings="
            f"{config.max_position_embeddings}; truncate the input"
        )
    for name, tensor, limit in (
        ("attention_mask", attention_mask, None),
        ("token_type_ids", token_type_ids, config.type_vocab_size),
        ("position_ids", position_ids, config.max_position_embeddings),
    ):
        if tensor is None:
            continue
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(tensor).__name__}")
        if tuple(tensor.shape) != (B, T):
            raise ValueError(f"{name} has shape {tuple(tensor.shape)} but {given} has shape {(B, T)}")
        if limit is not None and (tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool):
            raise TypeError(f"{name} must hold integers, got dtype {tensor.dtype}")
        if not tensor.numel() or not can_read_values(tensor):
            continue
        if limit is not None and (int(tensor.min()) < 0 or int(tensor.max()) >= limit):  # ints: no wrap-around
            raise ValueError(f"{name} holds values outside [0, {limit}): min {tensor.min().item()}, "
                             f"max {tensor.max().item()}")
        if limit is None and ((tensor != 0) & (tensor != 1)).any():  # NaN, 0.5, 2 or -1 would bend the mask
            where = ((tensor != 0) & (tensor != 1)).nonzero()[0].tolist()
            raise ValueError(f"attention_mask{where} = {tensor[tuple(where)].item()}; the mask holds 1 for a real "
                             "token and 0 for padding, nothing else")


def check_class_labels(name: str, labels: torch.Tensor, expected_shape: tuple[int, ...], num_classes: int) -> None:
    """Labels for a cross-entropy: integers of the given shape, each a class or -100 (not predicted)."""
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(labels).__name__}")
    if tuple(labels.shape) != tuple(expected_shape):
        raise ValueError(f"{name} has shape {tuple(labels.shape)}, expected {tuple(expected_shape)}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class indices (or -100), got dtype {labels.dtype}")
    if labels.numel() and can_read_values(labels):
        bad = (labels != IGNORE_INDEX) & ((labels < 0) | (labels >= num_classes))
        if bad.any():
            where = bad.nonzero()[0].tolist()
            raise ValueError(f"{name}{where} = {labels[tuple(where)].item()} is not a class in [0, {num_classes}) "
                             f"nor {IGNORE_INDEX} (not predicted)")


def check_classifier_labels(problem: str, labels, logits_shape: tuple[int, int]) -> None:
    """A sequence classifier's labels, for the loss its problem type picks (see BertForSequenceClassification)."""
    B, L = logits_shape
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a tensor, got {type(labels).__name__}")
    if problem == "regression":
        if labels.dtype.is_complex or not (labels.dtype.is_floating_point or labels.dtype in (torch.long, torch.int)):
            raise TypeError(f"regression labels must be numbers, got dtype {labels.dtype}")
        if labels.numel() != B * L:
            raise ValueError(f"labels has shape {tuple(labels.shape)}, expected ({B},) or ({B}, {L}) for regression")
    elif problem == "single_label_classification":
        check_class_labels("labels", labels.view(-1) if labels.dim() == 2 and labels.shape[1] == 1 else labels,
                           (B,), L)
    else:  # multi-label: one yes/no per class
        if tuple(labels.shape) != (B, L):
            raise ValueError(f"labels has shape {tuple(labels.shape)}, expected ({B}, {L}) for multi-label")
        if not labels.dtype.is_floating_point:
            raise TypeError(f"multi-label labels must be floats (0.0 or 1.0 per class), got dtype {labels.dtype}")


def check_pretraining_labels(labels, next_sentence_label) -> None:
    """BertForPreTraining's loss is the sum of both tasks' losses: it needs both tasks' labels, or none."""
    if (labels is None) != (next_sentence_label is None):
        raise ValueError("BertForPreTraining's loss needs both labels (masked LM) and next_sentence_label; "
                         "for one task alone use BertForMaskedLM or BertForNextSentencePrediction")


def check_pair_of_positions(start_positions, end_positions) -> None:
    """Question answering's loss needs where the answer starts and where it ends: both, or neither."""
    if (start_positions is None) != (end_positions is None):
        raise ValueError("the question-answering loss needs both start_positions and end_positions, or neither")


def check_span_positions(name: str, positions, B: int) -> torch.Tensor:
    """An answer's token positions: integers, (B,) or (B, 1) as data-parallel batches arrive; returned as (B,)."""
    if not isinstance(positions, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(positions).__name__}")
    if positions.dtype.is_floating_point or positions.dtype.is_complex or positions.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token positions, got dtype {positions.dtype}")
    if positions.dim() == 2 and positions.shape[1] == 1:
        positions = positions.squeeze(-1)
    if tuple(positions.shape) != (B,):
        raise ValueError(f"{name} has shape {tuple(positions.shape)}, expected ({B},): one token position per input")
    return positions
