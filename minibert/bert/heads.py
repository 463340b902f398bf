"""The heads besides the masked LM (model.py): pre-training (masked LM and next sentence at once),
next-sentence prediction, a classifier on the pooled [CLS] vector (which is also the cross-encoder),
and the fine-tuning heads of transformers' modeling_bert: a label per token, an answer span (a start
and an end score per token) and multiple choice. Each wraps a BertModel named `bert`, as in
transformers, so that checkpoints load by name.

    >>> model = BertForSequenceClassification(BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1,
    ...                                                   num_attention_heads=2, intermediate_size=37, num_labels=3))
    >>> model(torch.tensor([[2, 7, 3]])).logits.shape
    torch.Size([1, 3])
"""

from __future__ import annotations

import torch
from torch import nn

from .checks import (check_class_labels, check_classifier_labels, check_pair_of_positions, check_pretraining_labels,
                     check_span_positions)
from .config import BertConfig, ConfigError
from .losses import IGNORE_INDEX, binary_cross_entropy_with_logits, cross_entropy, mean_squared_error
from .model import BertLMPredictionHead, BertModel
from .outputs import LogitsOutput, MaskedPositionsOutput, PreTrainingOutput, QuestionAnsweringOutput, as_requested
from .pretrained import BertPreTrainedModel


class BertOnlyNSPHead(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, pooled_output: torch.Tensor) -> torch.Tensor:
        return self.seq_relationship(pooled_output)  # (B, H) -> (B, 2); index 0 = "B follows A"


class BertPreTrainingHeads(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, sequence_output: torch.Tensor, pooled_output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.predictions(sequence_output), self.seq_relationship(pooled_output)  # (B, T, V), (B, 2)


class BertForPreTraining(BertPreTrainedModel):
    """Both pre-training tasks at once: masked LM over every token and next-sentence prediction.
    With `labels` (B, T) and `next_sentence_label` (B,), the loss is the sum of the two losses.

    For training there is a shortcut with the same loss, masked_positions_forward (below); `masked_only=True`
    hands the call to it, so that a wrapper that calls forward (DistributedDataParallel) can run it too.
    """

    unused_checkpoint_prefixes = ("classifier.",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config)
        self.init_weights(self.cls)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight  # tied: one tensor

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None, *,
                inputs_embeds: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                next_sentence_label: torch.Tensor | None = None, output_attentions: bool | None = None,
                output_hidden_states: bool | None = None, return_dict: bool | None = None,
                masked_only: bool = False) -> PreTrainingOutput | MaskedPositionsOutput | tuple:
        if masked_only:
            return self.masked_positions_forward(
                input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds=inputs_embeds, labels=labels,
                next_sentence_label=next_sentence_label, output_attentions=output_attentions,
                output_hidden_states=output_hidden_states, return_dict=return_dict)
        check_pretraining_labels(labels, next_sentence_label)
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                        return_dict=True)
        prediction_logits, seq_relationship_logits = self.cls(out.last_hidden_state, out.pooler_output)  # (B, T, V), (B, 2)
        loss = None
        if labels is not None:
            check_class_labels("labels", labels, prediction_logits.shape[:2], self.config.vocab_size)
            check_class_labels("next_sentence_label", next_sentence_label, seq_relationship_logits.shape[:1], 2)
            loss = self.loss(prediction_logits, seq_relationship_logits, labels, next_sentence_label)
        result = PreTrainingOutput(loss, prediction_logits, seq_relationship_logits, out.hidden_states, out.attentions)
        return as_requested(result, return_dict, self.config)

    @staticmethod
    def loss(prediction_logits: torch.Tensor, seq_relationship_logits: torch.Tensor, labels: torch.Tensor,
             next_sentence_label: torch.Tensor) -> torch.Tensor:
        """The masked-LM loss plus the next-sentence loss. prediction_logits (..., V), labels of its leading shape."""
        V = prediction_logits.shape[-1]
        masked_lm_loss = cross_entropy(prediction_logits.reshape(-1, V), labels.reshape(-1))
        next_sentence_loss = cross_entropy(seq_relationship_logits, next_sentence_label)
        return masked_lm_loss + next_sentence_loss

    def masked_positions_forward(self, input_ids: torch.Tensor | None = None,
                                 attention_mask: torch.Tensor | None = None,
                                 token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                                 *, labels: torch.Tensor, next_sentence_label: torch.Tensor,
                                 inputs_embeds: torch.Tensor | None = None, output_attentions: bool | None = None,
                                 output_hidden_states: bool | None = None,
                                 return_dict: bool | None = None) -> MaskedPositionsOutput | tuple:
        """forward's loss, projecting to the vocabulary only where a token was picked (labels not -100):
        about a sixth of the work, since 15% of the positions are predicted. prediction_logits is then
        (n_picked, V), the picked positions in row-major order."""
        if labels is None or next_sentence_label is None:
            raise ValueError("masked_positions_forward (masked_only=True) needs labels, which say which positions "
                             "are predicted, and next_sentence_label")
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                        return_dict=True)
        sequence_output = out.last_hidden_state  # (B, T, H)
        check_class_labels("labels", labels, sequence_output.shape[:2], self.config.vocab_size)
        check_class_labels("next_sentence_label", next_sentence_label, sequence_output.shape[:1], 2)
        picked = labels != IGNORE_INDEX  # (B, T)
        # (n, H) -> (n, V) and (B, H) -> (B, 2)
        prediction_logits, seq_relationship_logits = self.cls(sequence_output[picked], out.pooler_output)
        loss = self.loss(prediction_logits, seq_relationship_logits, labels[picked], next_sentence_label)
        result = MaskedPositionsOutput(loss, prediction_logits, seq_relationship_logits, out.hidden_states,
                                       out.attentions)
        return as_requested(result, return_dict, self.config)


class BertForNextSentencePrediction(BertPreTrainedModel):
    """Does sentence B follow sentence A? logits[:, 0] says yes, logits[:, 1] says B is random.
    With `labels` (B,) of 0 (B follows A) or 1 (B is random), also the loss."""

    unused_checkpoint_prefixes = ("cls.predictions.", "classifier.")

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.cls = BertOnlyNSPHead(config)
        self.init_weights(self.cls)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None, *,
                inputs_embeds: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> LogitsOutput | tuple:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                        return_dict=True)
        logits = self.cls(out.pooler_output)  # (B, 2)
        loss = None
        if labels is not None:
            check_class_labels("labels", labels, (logits.shape[0],), 2)
            loss = cross_entropy(logits, labels)
        return as_requested(LogitsOutput(loss, logits, out.hidden_states, out.attentions), return_dict, self.config)


class BertForSequenceClassification(BertPreTrainedModel):
    """A classifier on the pooled [CLS] vector. With a (question, passage) pair as input and one
    label, this is a cross-encoder: its single logit scores how well the passage answers.

    With `labels`, the loss follows `config.problem_type`; when that is None it is decided as
    transformers decides: one label is a regression (mean squared error), integer labels pick one
    class each (cross-entropy), float labels of shape (B, L) are multi-label (binary cross-entropy).
    """

    unused_checkpoint_prefixes = ("cls.",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.dropout = classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights(self.classifier)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None, *,
                inputs_embeds: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> LogitsOutput | tuple:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                        return_dict=True)
        logits = self.classifier(self.dropout(out.pooler_output))  # (B, H) -> (B, L)
        loss = None if labels is None else self.loss(logits, labels)
        return as_requested(LogitsOutput(loss, logits, out.hidden_states, out.attentions), return_dict, self.config)

    def problem_type(self, labels: torch.Tensor) -> str:
        """config.problem_type, or the one transformers infers from num_labels and the labels' dtype."""
        if self.config.problem_type is not None:
            return self.config.problem_type
        if self.config.num_labels == 1:
            return "regression"
        if getattr(labels, "dtype", None) in (torch.long, torch.int):  # not a tensor: check_classifier_labels says so
            return "single_label_classification"
        return "multi_label_classification"

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        B, L = logits.shape
        problem = self.problem_type(labels)
        check_classifier_labels(problem, labels, (B, L))
        if problem == "regression":
            if L == 1:  # transformers squeezes both sides: (B, 1) and (B,) compare as (B,)
                return mean_squared_error(logits.squeeze(), labels.squeeze().to(logits.dtype))
            return mean_squared_error(logits, labels.view(B, L).to(logits.dtype))
        if problem == "single_label_classification":
            return cross_entropy(logits, labels.view(-1))
        return binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))  # multi-label: a yes/no per class


def classifier_dropout(config: BertConfig) -> nn.Dropout:
    """The dropout before a classifier: config.classifier_dropout, else hidden_dropout_prob, as in transformers."""
    return nn.Dropout(config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob)


class BertForTokenClassification(BertPreTrainedModel):
    """A label for every token (named entities, parts of speech): a classifier on each position's final
    hidden state. With `labels` (B, T), -100 where a token is not scored (padding, [CLS], [SEP], the second
    piece of a word), also the cross-entropy over the scored tokens.

        >>> model = BertForTokenClassification(BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1,
        ...                                               num_attention_heads=2, intermediate_size=37, num_labels=5))
        >>> model(torch.tensor([[2, 7, 3]])).logits.shape
        torch.Size([1, 3, 5])
    """

    # Every token is read, not [CLS]: no pooler, as in transformers' class.
    unused_checkpoint_prefixes = ("bert.pooler.", "cls.")

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights(self.classifier)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None, *,
                inputs_embeds: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> LogitsOutput | tuple:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                        return_dict=True)
        logits = self.classifier(self.dropout(out.last_hidden_state))  # (B, T, H) -> (B, T, L)
        loss = None
        if labels is not None:
            B, T, L = logits.shape
            check_class_labels("labels", labels, (B, T), L)
            loss = cross_entropy(logits.view(B * T, L), labels.view(B * T))  # over the scored tokens only
        return as_requested(LogitsOutput(loss, logits, out.hidden_states, out.attentions), return_dict, self.config)


class BertForQuestionAnswering(BertPreTrainedModel):
    """Extractive question answering (SQuAD): the input is `[CLS] question [SEP] context [SEP]`, and the
    answer is the span of context tokens from the best start to the best end. `qa_outputs` scores every
    token twice, as a start and as an end; app/answers.py turns the two scores into spans of text.

    With `start_positions` and `end_positions` (B,), the token indices of each answer, the loss is the mean
    of the start's and the end's cross-entropy. A position outside the input is clamped into [0, T], and T
    is then not scored, as transformers does: an answer cut off by truncation teaches nothing, while a
    negative position becomes 0, the [CLS] token that SQuAD 2.0 uses for "no answer".

        >>> model = BertForQuestionAnswering(BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1,
        ...                                             num_attention_heads=2, intermediate_size=37))
        >>> out = model(torch.tensor([[2, 7, 3, 9]]))
        >>> out.start_logits.shape, out.end_logits.shape
        (torch.Size([1, 4]), torch.Size([1, 4]))
    """

    unused_checkpoint_prefixes = ("bert.pooler.", "cls.")

    def __init__(self, config: BertConfig):
        super().__init__(config)
        if config.num_labels != 2:  # transformers sizes qa_outputs by num_labels, then splits it into two
            raise ConfigError(f"BertForQuestionAnswering scores a start and an end per token: num_labels must be 2, "
                              f"got {config.num_labels} (from_pretrained(..., num_labels=2) for a checkpoint of "
                              "another head)")
        self.bert = BertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)  # column 0 scores a start, column 1 an end
        self.init_weights(self.qa_outputs)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None, *,
                inputs_embeds: torch.Tensor | None = None, start_positions: torch.Tensor | None = None,
                end_positions: torch.Tensor | None = None, output_attentions: bool | None = None,
                output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> QuestionAnsweringOutput | tuple:
        check_pair_of_positions(start_positions, end_positions)
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                        return_dict=True)
        logits = self.qa_outputs(out.last_hidden_state)  # (B, T, H) -> (B, T, 2)
        start_logits = logits[..., 0].contiguous()  # (B, T)
        end_logits = logits[..., 1].contiguous()  # (B, T)
        loss = None
        if start_positions is not None:
            B, T = start_logits.shape
            start_positions = check_span_positions("start_positions", start_positions, B)  # (B,)
            end_positions = check_span_positions("end_positions", end_positions, B)  # (B,)
            # As transformers: clamped into [0, T], a negative position becomes 0, [CLS]; T is past the last
            # token, so an answer outside the input is not scored (ignore_index=T).
            start_positions, end_positions = start_positions.clamp(0, T), end_positions.clamp(0, T)
            start_loss = cross_entropy(start_logits, start_positions, ignore_index=T)
            end_loss = cross_entropy(end_logits, end_positions, ignore_index=T)
            loss = (start_loss + end_loss) / 2
        result = QuestionAnsweringOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)
        return as_requested(result, return_dict, self.config)


class BertForMultipleChoice(BertPreTrainedModel):
    """Pick one of C answers (SWAG, RACE): each (context, choice) pair is encoded on its own, its pooled
    [CLS] vector scored by one Linear(H, 1), and the C scores of a question compete in a softmax. Inputs are
    (B, C, T), flattened to B * C sequences for the encoder; the logits are (B, C). With `labels` (B,), the
    index of the right choice, also the cross-entropy. hidden_states and attentions are of the B * C
    sequences, as in transformers.

        >>> model = BertForMultipleChoice(BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1,
        ...                                          num_attention_heads=2, intermediate_size=37))
        >>> model(torch.tensor([[[2, 7, 3], [2, 8, 3], [2, 9, 3]]])).logits.shape   # 1 question, 3 choices
        torch.Size([1, 3])
    """

    unused_checkpoint_prefixes = ("cls.",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.dropout = classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, 1)  # one score per choice, whatever num_labels says
        self.init_weights(self.classifier)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None, *,
                inputs_embeds: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> LogitsOutput | tuple:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        given = input_ids if input_ids is not None else inputs_embeds
        if not isinstance(given, torch.Tensor) or given.dim() != (3 if input_ids is not None else 4):
            shape = tuple(given.shape) if isinstance(given, torch.Tensor) else type(given).__name__
            what = "input_ids must be (batch, choices, length)" if input_ids is not None \
                else "inputs_embeds must be (batch, choices, length, hidden)"
            raise ValueError(f"BertForMultipleChoice: {what}, got {shape}")
        B, C = given.shape[:2]
        # (B, C, T) -> (B * C, T): every (context, choice) pair is a sequence of its own.
        input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds = (
            flatten_choices(x, B, C) for x in (input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds))
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                        return_dict=True)
        scores = self.classifier(self.dropout(out.pooler_output))  # (B * C, H) -> (B * C, 1)
        logits = scores.view(B, C)  # (B, C): the choices of a question side by side
        loss = None
        if labels is not None:
            check_class_labels("labels", labels, (B,), C)
            loss = cross_entropy(logits, labels)
        return as_requested(LogitsOutput(loss, logits, out.hidden_states, out.attentions), return_dict, self.config)


def flatten_choices(x: torch.Tensor | None, B: int, C: int) -> torch.Tensor | None:
    """(B, C, ...) -> (B * C, ...). Anything else is passed on as it is, for check_inputs to name."""
    if isinstance(x, torch.Tensor) and x.dim() >= 2 and tuple(x.shape[:2]) == (B, C):
        return x.reshape(B * C, *x.shape[2:])
    return x
