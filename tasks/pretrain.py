"""Pre-train a small BERT from scratch on text that ships offline: masked LM + next sentence.

    python -m tasks.pretrain                         # 10 minutes on 2 cores; --minutes to change
    python -m tasks.pretrain --body minilm-frozen    # instead: new heads on a frozen all-MiniLM-L6-v2
    torchrun --nproc_per_node=2 -m tasks.pretrain    # the same, in data parallel (gloo; nccl on GPUs)

The corpus is gensim's test data (tasks/corpus.py): 100 Wikipedia articles and 300 news stories,
about 3.1 MB of text. A tenth of the documents, whole, are held out. Training pairs follow BERT's
recipe (minibert/training/data.py): sentences packed to 128 tokens, B the true continuation or a
span of another document, 15% of the tokens masked (80/10/10), masks drawn afresh every step.

Two bodies:
  - `small` (the default): 4 layers, width 256, 4 heads, the bert-base-uncased vocabulary (which the
    shipped all-MiniLM-L6-v2 tokenizer has), random weights;
  - `minilm-frozen`: all-MiniLM-L6-v2's encoder, frozen; only the heads learn (the masked-LM
    transform and bias, with the decoder tied to MiniLM's word embeddings, the pooler and the
    next-sentence layer).

It writes OUT/model (a checkpoint in Hugging Face's layout, with its tokenizer), OUT/log.jsonl,
OUT/loss.png and OUT/metrics.json, and prints held-out masked-LM top-1/top-5 accuracy and
next-sentence accuracy beside two baselines: always the most frequent token(s), and chance.
OUT must be new or empty. OUT/checkpoint is saved every tenth of the run, and `--resume` goes on
from it (after a kill, or when --minutes ran out) with the run's own steps and seed:

    python -m tasks.pretrain --out out/pretrain --resume
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import random
import time
from pathlib import Path

import torch

from minibert import BertConfig, BertForPreTraining, Tokenizer
from minibert.training.data import MaskedPairBatches, make_pairs, tokenize_documents
from minibert.training.log import read_log
from minibert.training.loop import (StepData, Trainer, TrainingConfig, evaluate_pretraining, setup_distributed,
                                    teardown_distributed)

from . import corpus
from ._common import check_out, device_name, one_line_errors, positive_number, resumed_config, shipped_tokenizer

SMALL = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
             max_position_embeddings=128)
TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
            max_position_embeddings=128)  # for a smoke run in the tests: seconds, not minutes
MAX_SEQ_LENGTH = 128
BATCH_SIZE = 32
HELD_OUT = 0.1


def documents_as_sentences(documents: list[corpus.Document]) -> list[list[str]]:
    """Each document as one list of sentences, paragraphs one after the other."""
    return [[s for paragraph in doc.sentences() for s in paragraph] for doc in documents]


def build_data(tokenizer: Tokenizer, seed: int, max_documents: int | None = None):
    """(train pairs, held-out batches, text size in MB, each token's count in the training text, ...)."""
    documents = corpus.wikipedia_articles() + corpus.lee_documents()
    if max_documents is not None:
        documents = documents[:max_documents]
    train_docs, held_docs = corpus.split_held_out(documents, HELD_OUT)
    megabytes = sum(len(p.encode("utf-8")) for d in documents for p in d.paragraphs) / 1e6
    train = tokenize_documents(documents_as_sentences(train_docs), tokenizer)
    held = tokenize_documents(documents_as_sentences(held_docs), tokenizer)
    train_pairs = make_pairs(train, MAX_SEQ_LENGTH, random.Random(seed))
    held_pairs = make_pairs(held, MAX_SEQ_LENGTH, random.Random(seed + 1), short_seq_prob=0.0)
    collate = MaskedPairBatches.for_tokenizer(tokenizer)
    held_batches = [collate(held_pairs[i:i + BATCH_SIZE],
                            [torch.Generator().manual_seed(10_000 + i + j) for j in range(len(held_pairs[i:i + BATCH_SIZE]))])
                    for i in range(0, len(held_pairs), BATCH_SIZE)]
    counts = torch.bincount(torch.tensor([t for doc in train for s in doc for t in s]), minlength=tokenizer.vocab_size)
    return train_pairs, held_batches, megabytes, counts, len(train_docs), len(held_docs)


def baselines(held_batches: list[dict], frequent: list[int]) -> dict[str, float]:
    """What needs no model: the most frequent training token(s) at every masked position, and chance."""
    labels = torch.cat([b["labels"][b["labels"] != -100] for b in held_batches])
    nsp = torch.cat([b["next_sentence_label"] for b in held_batches])
    return {"mlm_top1": float((labels == frequent[0]).float().mean()),
            "mlm_top5": float(torch.isin(labels, torch.tensor(frequent)).float().mean()),
            "nsp_accuracy_chance": 0.5,
            "nsp_accuracy_majority": float(max(nsp.float().mean(), 1 - nsp.float().mean()))}


def start_from_frequencies(model: BertForPreTraining, counts: torch.Tensor) -> None:
    """Set the decoder's bias to each token's log-frequency in the training text: from step 0 the
    model guesses as the most-frequent-token baseline does, and training only has to add context."""
    with torch.no_grad():
        model.cls.predictions.bias.copy_(torch.log((counts.float() + 1) / (counts.sum() + len(counts))))


def build_model(body: str, tokenizer_path: str, seed: int, counts: torch.Tensor | None) -> BertForPreTraining:
    torch.manual_seed(seed)
    if body in ("small", "tiny"):
        model = BertForPreTraining(BertConfig(vocab_size=30522, **(SMALL if body == "small" else TINY)))
        if counts is not None:
            start_from_frequencies(model, counts)
        return model
    model = BertForPreTraining.from_pretrained(tokenizer_path, init_new_head=True)  # the heads start fresh
    if counts is not None:
        start_from_frequencies(model, counts)
    for param in model.bert.parameters():  # the body, and the tied decoder with it, stay as they are
        param.requires_grad = False
    for param in model.bert.pooler.parameters():  # the pooler feeds next-sentence only: it learns too
        param.requires_grad = True
    for module in model.bert.modules():  # a frozen body needs no dropout: it is not learning to be robust
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def steps_that_fit(model, data: StepData, seconds: float, config: TrainingConfig) -> int:
    """How many optimizer steps fit in `seconds`, from the time of two steps of a throwaway copy."""
    trial = Trainer(copy.deepcopy(model), TrainingConfig(**{**config.__dict__, "output_dir": None, "progress": False,
                                                          "total_steps": 3, "save_every": 0, "eval_every": 0}))
    trial.train_step(data(0))  # the first step pays for allocations
    start = time.perf_counter()
    trial.train_step(data(1))
    trial.train_step(data(2))
    per_step = (time.perf_counter() - start) / 2
    return max(10, int(seconds * 0.9 / per_step))


def plan(model, data: StepData, learning_rate: float, steps: int | None, minutes: float, out: Path, seed: int,
         progress: bool, world: int = 1) -> TrainingConfig:
    """A fresh run's TrainingConfig: `steps`, or as many as fit in `minutes`; a tenth of them to warm up,
    and a checkpoint every tenth, so a run killed loses at most a tenth (--resume goes on from it)."""
    config = TrainingConfig(learning_rate=learning_rate, total_steps=1, output_dir=str(out), seed=seed,
                            progress=progress)
    steps_given = steps is not None
    if steps is None:
        steps = steps_that_fit(model, data, minutes * 60, config)
        if world > 1:  # every process must take the same number of steps
            agreed = [steps]
            torch.distributed.broadcast_object_list(agreed, src=0)
            steps = agreed[0]
    return dataclasses.replace(config, total_steps=steps, warmup_steps=max(1, steps // 10),
                               save_every=max(1, steps // 10),
                               max_seconds=None if steps_given else minutes * 60)  # a busy machine must not overrun


def schedule(saved: TrainingConfig | None, model, data: StepData, *, learning_rate: float, steps: int | None,
             minutes: float, out: Path, seed: int, progress: bool, max_minutes: float | None = None,
             world: int = 1) -> TrainingConfig:
    """The TrainingConfig a training program runs with. Resumed (`saved`, the checkpoint's): the run's own
    schedule, with `minutes` at most for the rest of it. Fresh: `plan`'s; where `steps` is given,
    `max_minutes` (if any) still caps the time."""
    if saved:
        return dataclasses.replace(saved, output_dir=str(out), progress=progress, max_seconds=minutes * 60)
    config = plan(model, data, learning_rate, steps, minutes, out, seed, progress, world)
    if steps is not None and max_minutes:
        config = dataclasses.replace(config, max_seconds=max_minutes * 60)
    return config


def train_timed(model, config: TrainingConfig, data, tokenizer: Tokenizer, resume: bool) -> tuple[int, float, list[float]]:
    """Train, going on from OUT/checkpoint when resuming: (steps done, seconds, every loss in OUT/log.jsonl).
    The steps done are fewer than planned where the time budget ran out first; the losses are the whole
    run's, resumed or not."""
    started = time.perf_counter()
    trainer = Trainer(model, config, tokenizer=tokenizer)
    if resume:
        trainer.resume(Path(config.output_dir) / "checkpoint")
    trainer.train(data)
    seconds = time.perf_counter() - started
    losses = [record["loss"] for record in read_log(Path(config.output_dir) / "log.jsonl") if "loss" in record]
    return trainer.step, seconds, losses


def run(body: str = "small", minutes: float = 10.0, out: Path = Path("out/pretrain"), steps: int | None = None,
        seed: int | None = None, learning_rate: float | None = None, progress: bool = True,
        max_documents: int | None = None, device: str = "cpu", frequency_init: bool = True,
        resume: bool = False) -> dict:
    """Train and evaluate; returns the report written to OUT/metrics.json. `resume` goes on from the
    last checkpoint in `out`, with the run's own steps, learning rate and seed, for at most `minutes`."""
    rank, world = setup_distributed(device)
    saved = resumed_config(out, steps=steps, learning_rate=learning_rate, seed=seed) if resume else None
    seed = saved.seed if saved else (seed or 0)
    tokenizer, tokenizer_path = shipped_tokenizer()
    train_pairs, held_batches, megabytes, counts, n_train, n_held = build_data(tokenizer, seed, max_documents)
    frequent = counts.topk(5).indices.tolist()
    model = build_model(body, tokenizer_path, seed, counts if frequency_init else None).to(device)
    data = StepData(train_pairs, BATCH_SIZE, MaskedPairBatches.for_tokenizer(tokenizer), seed=seed,
                    rank=rank, world_size=world)
    masked_only = _MaskedOnly(data)  # the vocabulary projection only where a token was masked
    config = schedule(saved, model, masked_only, learning_rate=learning_rate or (1e-3 if body == "small" else 5e-3),
                      steps=steps, minutes=minutes, out=out, seed=seed, progress=progress, world=world)
    if rank == 0:
        print(f"pre-training {body}: {n_train} documents ({megabytes:.1f} MB of text in all), {len(train_pairs)} "
              f"pairs, {config.total_steps} steps of {BATCH_SIZE} x up to {MAX_SEQ_LENGTH} tokens; "
              f"{n_held} documents held out")
    started = time.perf_counter()
    trainer = Trainer(model, config, tokenizer=tokenizer)
    if saved:
        trainer.resume(out / "checkpoint")
    trainer.train(masked_only)
    seconds = time.perf_counter() - started
    steps = trainer.step  # fewer than planned when the time budget ran out first
    if rank != 0:
        teardown_distributed()  # waits for rank 0's evaluation and save
        return {}
    losses = [record["loss"] for record in read_log(out / "log.jsonl") if "loss" in record]  # resumed or not
    held_out = evaluate_pretraining(model, held_batches)
    base = baselines(held_batches, frequent)
    model.save_pretrained(out / "model", tokenizer=tokenizer)
    report = {"body": body, "steps": steps, "seconds": round(seconds), "megabytes_of_text": round(megabytes, 2),
              "train_documents": n_train, "held_out_documents": n_held, "held_out": held_out, "baselines": base,
              "learning_rate": config.learning_rate, "losses": {"first": losses[:5], "last": losses[-5:]},
              "config": {k: model.config.to_dict()[k] for k in SMALL}}
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"held out: {held_out['masked_tokens']} masked tokens, {held_out['pairs']} pairs")
    print(f"  masked LM top-1  {held_out['mlm_top1']:.3f}   (always the most frequent token: {base['mlm_top1']:.3f})")
    print(f"  masked LM top-5  {held_out['mlm_top5']:.3f}   (the 5 most frequent tokens: {base['mlm_top5']:.3f})")
    print(f"  next sentence    {held_out['nsp_accuracy']:.3f}   (chance: 0.500)")
    print(f"trained {steps} steps in {seconds / 60:.1f} minutes; model: {out / 'model'}; log: {out / 'log.jsonl'}; "
          f"curve: {out / 'loss.png'}")
    teardown_distributed()
    return report


class _MaskedOnly:
    """StepData's batches with masked_only=True: BertForPreTraining then projects to the vocabulary
    only at the masked positions (the same loss, a sixth of the work)."""

    def __init__(self, data: StepData):
        self.data = data

    def __call__(self, step: int) -> list[dict]:
        return [{**batch, "masked_only": True} for batch in self.data(step)]


@one_line_errors
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--body", choices=("small", "minilm-frozen", "tiny"), default="small",
                   help="a small BERT from scratch (default), new heads on a frozen all-MiniLM-L6-v2, or a tiny BERT (a smoke test)")
    p.add_argument("--minutes", type=positive_number, default=10.0, help="the training budget (default: 10)")
    p.add_argument("--steps", type=int, default=None, help="a number of steps instead of a time budget")
    p.add_argument("--out", type=Path, default=Path("out/pretrain"), help="where to write (default: out/pretrain)")
    p.add_argument("--seed", type=int, default=None, help="seeds the data, the masks and the weights (default: 0)")
    p.add_argument("--device", type=device_name, default="cpu", help="cpu (default), or cuda on a machine with a GPU")
    p.add_argument("--resume", action="store_true",
                   help="go on from the last checkpoint in --out (same --body; its own steps and seed), "
                        "for at most --minutes more")
    args = p.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        p.error(f"--steps must be at least 1, not {args.steps}")
    check_out(p, args.out, args.resume, {"--steps": args.steps, "--seed": args.seed})
    run(args.body, args.minutes, args.out, args.steps, args.seed, device=args.device, resume=args.resume)


if __name__ == "__main__":
    main()
