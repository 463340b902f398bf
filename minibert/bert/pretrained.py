"""BertPreTrainedModel, the base of every model class (model.py, heads.py): what a model has beside its
forward pass. BERT's initialisation, and what code written for transformers expects of a model:
from_pretrained, save_pretrained, device and dtype, the input and output embeddings,
resize_token_embeddings, num_parameters and gradient checkpointing.

    >>> from minibert import BertModel
    >>> model = BertModel.from_pretrained(minilm_dir)     # a local checkpoint folder
    >>> model.device, model.dtype, model.num_parameters()
    (device(type='cpu'), torch.float32, 22713216)

Finding and reading the files is files.py's part; mapping their names onto the model, strictly, is
loading.py's.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from torch import nn

from .checks import positive_int
from .config import BertConfig
from .loading import load_pretrained, save_pretrained


def encoder_of(model: nn.Module) -> nn.Module:
    """The BertModel inside a model with a head (`model.bert`, or the attribute `base_model_prefix` names), or
    the model itself when it is one. Works for transformers' BERT models too: they keep theirs the same way."""
    prefix = getattr(model, "base_model_prefix", "bert")
    return getattr(model, prefix, model) if prefix else model


class BertPreTrainedModel(nn.Module):
    """The base of every model class: BERT's initialisation, from_pretrained and save_pretrained, and the
    rest of the surface that code written for transformers expects (device, dtype, the embeddings,
    resize_token_embeddings, num_parameters, gradient checkpointing)."""

    # Parameter paths of the encoder start with this inside a model with a head ("bert.encoder...").
    base_model_prefix = "bert"
    # Checkpoint tensors this class knowingly does not use: dropped on load and reported quietly.
    unused_checkpoint_prefixes: tuple[str, ...] = ()
    main_input_name = "input_ids"  # what transformers' utilities read to find the model's main input
    supports_gradient_checkpointing = True  # what transformers' Trainer checks before it switches it on

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config

    def init_weights(self, module: nn.Module | None = None) -> None:
        """BERT's initialisation: normal(0, initializer_range) weights, zero biases, unit LayerNorm."""
        for m in (module or self).modules():
            if any(p.is_meta for p in m.parameters(recurse=False)):
                continue  # built on the meta device by from_pretrained: shapes only, weights come from the file
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=self.config.initializer_range)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
            if isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, revision: str | None = None, init_new_head: bool = False,
                        *, dtype: torch.dtype | str | None = None, num_labels: int | None = None,
                        id2label: dict | None = None, label2id: dict | None = None, problem_type: str | None = None,
                        add_pooling_layer: bool | None = None, allow_non_finite: bool = False):
        """Load a checkpoint from a local folder or a Hugging Face Hub repo id, strictly, in eval mode.

        A head that the checkpoint lacks is an error, unless asked for: `num_labels` (or `id2label`) asks
        for a classifier, as in `BertForSequenceClassification.from_pretrained(base, num_labels=5)`;
        `init_new_head=True` for any head (and for a classifier of another size than the file's). A new
        head starts from random weights, and a warning names its tensors.

        num_labels, id2label, label2id and problem_type change the config before the model is built.
        `add_pooling_layer=False` (BertModel only, as in transformers) builds no pooler, for a checkpoint
        saved without one. `dtype` converts the weights after loading: torch.bfloat16, its name "bfloat16",
        or "auto" for the checkpoint's own; the default is float32. A weight holding NaN or infinity is an
        error unless `allow_non_finite=True` (to look at a broken checkpoint).
        """
        changes = dict(num_labels=num_labels, id2label=id2label, label2id=label2id, problem_type=problem_type)
        changes = {k: v for k, v in changes.items() if v is not None}
        model_kwargs = {}
        if add_pooling_layer is not None:
            if "add_pooling_layer" not in inspect.signature(cls.__init__).parameters:
                raise TypeError(f"add_pooling_layer is an argument of BertModel; {cls.__name__} builds its encoder "
                                "with the pooler its head reads, or without one")
            model_kwargs["add_pooling_layer"] = add_pooling_layer
        return load_pretrained(cls, name_or_path, revision=revision, init_new_head=init_new_head, dtype=dtype,
                               allow_non_finite=allow_non_finite, model_kwargs=model_kwargs, **changes)

    def save_pretrained(self, folder: str | Path, tokenizer=None, safe_serialization: bool = True,
                        keep_low_rank: bool = False) -> Path:
        """Write config.json and model.safetensors (and the tokenizer's files when given) into `folder`,
        in the layout transformers' from_pretrained reads. Each file is written atomically.
        `safe_serialization` is transformers' switch; only safetensors (True) is written here.
        Unmerged low-rank updates are refused unless `keep_low_rank` (see the function save_pretrained)."""
        if not safe_serialization:
            raise ValueError("minibert saves weights as safetensors only; pytorch_model.bin is not written")
        return save_pretrained(self, folder, tokenizer, keep_low_rank=keep_low_rank)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def base_model(self):
        return encoder_of(self)

    def get_input_embeddings(self) -> torch.nn.Embedding:
        return self.base_model().embeddings.word_embeddings

    def set_input_embeddings(self, embeddings: torch.nn.Embedding) -> None:
        """Use `embeddings` as the word embeddings, and as the masked-LM decoder's weight too. transformers
        leaves its decoder on the old matrix until tie_weights() is called; here the tie holds at once,
        as a masked-LM head whose decoder reads another matrix than its input is not BERT's."""
        self.base_model().embeddings.word_embeddings = embeddings
        self.tie_weights()

    def get_output_embeddings(self) -> torch.nn.Linear | None:
        """The masked-LM decoder, whose weight is the input embeddings' (None for a model without one)."""
        predictions = getattr(getattr(self, "cls", None), "predictions", None)
        return predictions.decoder if predictions is not None else None

    def tie_weights(self) -> None:
        """Make the decoder's weight the word-embedding matrix again: one tensor, two uses."""
        decoder = self.get_output_embeddings()
        if decoder is not None:
            decoder.weight = self.get_input_embeddings().weight
            decoder.out_features = decoder.weight.shape[0]

    def resize_token_embeddings(self, new_num_tokens: int) -> torch.nn.Embedding:
        """Grow or shrink the vocabulary to `new_num_tokens` rows. Old rows keep their vectors, new
        rows get BERT's initialisation, the decoder stays tied and its bias is resized with it."""
        positive_int("new_num_tokens", new_num_tokens)
        old = self.get_input_embeddings()
        keep = min(old.num_embeddings, new_num_tokens)
        pad = self.config.pad_token_id if self.config.pad_token_id < new_num_tokens else None
        new = torch.nn.Embedding(new_num_tokens, old.embedding_dim, padding_idx=pad, device=old.weight.device,
                                 dtype=old.weight.dtype)
        with torch.no_grad():
            new.weight.normal_(mean=0.0, std=self.config.initializer_range)
            new.weight[:keep] = old.weight[:keep]
        self.base_model().embeddings.word_embeddings = new
        predictions = getattr(getattr(self, "cls", None), "predictions", None)
        if predictions is not None:
            bias = torch.zeros(new_num_tokens, device=predictions.bias.device, dtype=predictions.bias.dtype)
            bias[:keep] = predictions.bias.detach()[:keep]
            predictions.bias = torch.nn.Parameter(bias)
        self.config.vocab_size = new_num_tokens
        self.tie_weights()
        return new

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """How many numbers the model learns; a tied tensor counts once."""
        embeddings = {id(m.weight) for m in self.modules() if isinstance(m, torch.nn.Embedding)}
        return sum(p.numel() for p in self.parameters()
                   if (p.requires_grad or not only_trainable) and not (exclude_embeddings and id(p) in embeddings))

    # -- gradient checkpointing, under transformers' names -----------------------------------------

    CHECKPOINT_OPTIONS = ("use_reentrant", "preserve_rng_state", "context_fn", "determinism_check", "debug")

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        """Trade compute for memory in training: each encoder layer keeps only its input during the forward
        pass, and runs again in the backward pass to get what its gradients need (torch.utils.checkpoint).
        About one more forward pass of work; the activations inside the layers are never all held at once.
        Active in training mode only; the gradients are the same as without (the random state is restored
        before a layer runs again, so dropout repeats its masks).

        `gradient_checkpointing_kwargs` go to torch.utils.checkpoint.checkpoint, as in transformers, on top
        of use_reentrant=False. use_reentrant=True is refused: that variant gives no gradient to a layer
        whose input needs none (frozen embeddings, as add_low_rank leaves them), and trains nothing there.
        """
        kwargs = {"use_reentrant": False}
        if gradient_checkpointing_kwargs is not None:
            if not isinstance(gradient_checkpointing_kwargs, dict):
                raise TypeError(f"gradient_checkpointing_kwargs must be a dict of torch.utils.checkpoint's "
                                f"options, got {type(gradient_checkpointing_kwargs).__name__}")
            unknown = sorted(set(gradient_checkpointing_kwargs) - set(self.CHECKPOINT_OPTIONS))
            if unknown:
                raise TypeError(f"gradient_checkpointing_kwargs: {', '.join(unknown)} is not an option of "
                                f"torch.utils.checkpoint; it takes {', '.join(self.CHECKPOINT_OPTIONS)}")
            if gradient_checkpointing_kwargs.get("use_reentrant", False) is not False:
                raise ValueError("gradient_checkpointing_kwargs: minibert checkpoints with use_reentrant=False only; "
                                 "the reentrant variant gives no gradient to a layer whose input needs none "
                                 "(frozen embeddings, as add_low_rank leaves them)")
            kwargs.update(gradient_checkpointing_kwargs)
        encoder = self.base_model().encoder
        encoder.gradient_checkpointing, encoder.checkpoint_kwargs = True, kwargs

    def gradient_checkpointing_disable(self) -> None:
        self.base_model().encoder.gradient_checkpointing = False

    @property
    def is_gradient_checkpointing(self) -> bool:
        return self.base_model().encoder.gradient_checkpointing

    # transformers 5.24 renamed the three (the old names still work there, with a FutureWarning).
    def activation_checkpointing_enable(self, activation_checkpointing_kwargs: dict | None = None) -> None:
        self.gradient_checkpointing_enable(activation_checkpointing_kwargs)

    def activation_checkpointing_disable(self) -> None:
        self.gradient_checkpointing_disable()

    @property
    def is_activation_checkpointing(self) -> bool:
        return self.is_gradient_checkpointing
