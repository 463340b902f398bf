"""The lesson's stand-ins, trained here, for when its own checkpoints cannot be had.

The lesson uses bert-base-uncased (masked LM, next sentence) and cross-encoder/ms-marco-MiniLM-L6-v2.
Without a network neither can be downloaded, so steps 3-5 use models made by this project's own
programs from text that ships offline (tasks/corpus.py), and say so on every line they print:

  - masked LM and next sentence: new heads trained by `python -m tasks.pretrain --body minilm-frozen`
    on top of a frozen all-MiniLM-L6-v2 (its decoder is MiniLM's own word-embedding matrix);
  - cross-encoder: `python -m tasks.finetune_cross_encoder --low-rank 16`: low-rank updates to
    every layer of MiniLM (minibert/training/lowrank.py), its pooler and a one-logit head, trained
    on Wikipedia question-passage pairs;
  - sentence encoder (for the next lesson's sentence embeddings): `python -m
    tasks.train_sentence_encoder --low-rank 12`: low-rank updates to every layer of MiniLM, trained
    with in-batch negatives on Wikipedia (question or title, paragraph) and (sentence, rest of its
    paragraph) pairs, half of each in a batch; rank 12 keeps the float16 factors under 1 MB.
    `load_sentence_encoder_standin()` gives a SentenceEncoder (mean pooling, unit length).

Only what was trained is kept, in tasks/standins/ (float16, 3.3 MB in all: 0.7 MB of heads, 1.6 MB and
1.0 MB of low-rank factors): the rest is the shipped all-MiniLM-L6-v2, so the stand-ins load in about
a second and the lesson never has to train.
`load_standin` (in tasks/_common.py, with the steps' other loading) rebuilds the cross-encoder by
adding each update, (alpha / r) * B @ A, to MiniLM's weight.
The .json beside each file says how it was trained and what it scored on held-out text. The first two
were made on a rented GPU, the sentence encoder on 2 shared CPU cores; rebuild them with

    python -m tasks.standins --device cuda --steps-pretrain 2000 --steps-cross-encoder 3000
    python -m tasks.standins --steps-pretrain 2000 --steps-cross-encoder 3000   # the same on a CPU: slow
    python -m tasks.standins --only sentence-encoder --minutes-sentence-encoder 10   # as shipped; only by name

    >>> from minibert import BertForMaskedLM
    >>> loaded = load_standin("masked-lm", BertForMaskedLM)
    >>> loaded.name.startswith("stand-in: masked-LM and next-sentence heads trained here")
    True
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from minibert import BertForPreTraining

from ._common import (FOLDER, KINDS, load_sentence_encoder_standin, load_standin,  # also reached from here
                      one_line_errors)

LOW_RANK, CROSS_ENCODER_LR = 16, 2e-4  # the cross-encoder's rank and peak learning rate (scripts/sweep_cross_encoder.py)
# The sentence encoder's rank: its factors are 6 layers x (4 x (384 + 384) + 2 x (384 + 1536)) x r numbers,
# 82,944 x r bytes in float16: r = 12 is 0.99 MB. Its learning rate is train_sentence_encoder's default for
# low rank, chosen before any run (no sweep: one step takes 10-20 s on the shared 2-core machine).
SENTENCE_LOW_RANK = 12


def export(tensors: dict[str, torch.Tensor], kind: str, report: dict, config_extra: dict | None = None) -> Path:
    """Keep what training changed, in float16, with its report beside it."""
    from safetensors.torch import save_file

    stem = KINDS[kind][0]
    FOLDER.mkdir(exist_ok=True)
    kept = {name: t.detach().cpu().to(torch.float16).contiguous() for name, t in tensors.items()}
    save_file(kept, str(FOLDER / f"{stem}.safetensors"))
    (FOLDER / f"{stem}.json").write_text(json.dumps({**report, "tensors": sorted(kept),
                                                      "config_extra": config_extra or {}}, indent=2) + "\n")
    return FOLDER / f"{stem}.safetensors"


def export_masked_lm(run: Path, device: str) -> Path:
    """From a `tasks.pretrain --body minilm-frozen` run folder: the heads (and pooler) it trained."""
    report = {**json.loads((run / "metrics.json").read_text()), "device": device}
    model = BertForPreTraining.from_pretrained(run / "model")
    return export({n: p for n, p in model.named_parameters() if n.startswith(("cls.", "bert.pooler."))},
                  "masked-lm", report)


def export_cross_encoder(run: Path, device: str) -> Path:
    """From a `tasks.finetune_cross_encoder --low-rank R` run folder: its low-rank factors, pooler and head."""
    from safetensors import safe_open

    report = {**json.loads((run / "metrics.json").read_text()), "device": device}
    with safe_open(str(run / "low_rank.safetensors"), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata()
    report["low_rank"], report["low_rank_alpha"] = int(meta["rank"]), float(meta["alpha"])
    return export(tensors, "cross-encoder", report,
                  config_extra={"sentence_transformers": {"activation_fn": "torch.nn.modules.activation.Sigmoid"}})


def export_sentence_encoder(run: Path, device: str) -> Path:
    """From a `tasks.train_sentence_encoder --low-rank R` run folder: its low-rank factors alone."""
    from safetensors import safe_open

    report = {**json.loads((run / "metrics.json").read_text()), "device": device}
    with safe_open(str(run / "low_rank.safetensors"), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata()
    report["low_rank"], report["low_rank_alpha"] = int(meta["rank"]), float(meta["alpha"])
    return export(tensors, "sentence-encoder", report)


def build(minutes_pretrain: float = 4.0, minutes_cross_encoder: float = 3.0, out: Path = Path("out/standins"),
          steps_pretrain: int | None = None, steps_cross_encoder: int | None = None, device: str = "cpu",
          only: str | None = None, minutes_sentence_encoder: float = 10.0,
          steps_sentence_encoder: int | None = None) -> None:
    from . import finetune_cross_encoder, pretrain, train_sentence_encoder

    # A fresh folder for each build: the training programs refuse a folder that holds a run (resume it
    # with --resume), and what a build keeps is exported to tasks/standins/ anyway.
    out.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=out))
    print(f"training into {out}")
    if only in (None, "masked-lm"):
        pretrain.run("minilm-frozen", minutes_pretrain, out / "pretrain", steps=steps_pretrain, device=device)
        export_masked_lm(out / "pretrain", device)
    if only in (None, "cross-encoder"):
        finetune_cross_encoder.run(minutes_cross_encoder, out / "cross_encoder", steps=steps_cross_encoder,
                                   device=device, low_rank=LOW_RANK, learning_rate=CROSS_ENCODER_LR)
        export_cross_encoder(out / "cross_encoder", device)
    if only == "sentence-encoder":  # asked for by name: a build of the other two leaves it as it is
        train_sentence_encoder.run(minutes_sentence_encoder, out / "sentence_encoder", steps=steps_sentence_encoder,
                                   device=device, low_rank=SENTENCE_LOW_RANK)
        export_sentence_encoder(out / "sentence_encoder", device)


@one_line_errors
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Train the lesson's stand-ins again and write tasks/standins/.")
    p.add_argument("--minutes-pretrain", type=float, default=4.0, help="masked-LM and next-sentence heads (default 4)")
    p.add_argument("--minutes-cross-encoder", type=float, default=3.0, help="the cross-encoder (default 3)")
    p.add_argument("--steps-pretrain", type=int, default=None, help="a number of steps instead of minutes")
    p.add_argument("--steps-cross-encoder", type=int, default=None, help="a number of steps instead of minutes")
    p.add_argument("--minutes-sentence-encoder", type=float, default=10.0, help="the sentence encoder (default 10)")
    p.add_argument("--steps-sentence-encoder", type=int, default=None, help="a number of steps instead of minutes")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--only", choices=tuple(KINDS), help="train one stand-in, and keep the others as they are")
    p.add_argument("--cross-encoder-from", type=Path, metavar="RUN",
                   help="train nothing: keep the cross-encoder of a finished `finetune_cross_encoder --low-rank` "
                        "run folder (--device then says where it ran)")
    args = p.parse_args(argv)
    if args.cross_encoder_from:
        missing = [name for name in ("metrics.json", "low_rank.safetensors")
                   if not (args.cross_encoder_from / name).is_file()]
        if missing:
            p.error(f"--cross-encoder-from {args.cross_encoder_from} lacks {' and '.join(missing)}: give the "
                    "--out folder of a finished `python -m tasks.finetune_cross_encoder --low-rank R` run")
        print(export_cross_encoder(args.cross_encoder_from, args.device))
        return
    build(args.minutes_pretrain, args.minutes_cross_encoder, steps_pretrain=args.steps_pretrain,
          steps_cross_encoder=args.steps_cross_encoder, device=args.device, only=args.only,
          minutes_sentence_encoder=args.minutes_sentence_encoder, steps_sentence_encoder=args.steps_sentence_encoder)


if __name__ == "__main__":
    main()
