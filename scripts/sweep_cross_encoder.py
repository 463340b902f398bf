"""Fine-tune several cross-encoders side by side and compare them on held-out questions and the lesson's.

    python scripts/sweep_cross_encoder.py OUT --device cuda --steps 3000 --max-minutes 2.5

Each configuration below runs `tasks.finetune_cross_encoder.run` in its own process, all at once
(on one GPU they share it). For each it prints held-out accuracy@1 and MRR beside the base model's
bi-encoder cosine, and the order in which it ranks the lesson's step-5 answers. Into OUT/<name>/ it
copies the small files (metrics.json, log.jsonl, loss.png, low_rank.safetensors), not the model,
so that `python -m tasks.standins --cross-encoder-from OUT/<name>` can keep the chosen one.
This is how tasks/standins/cross_encoder_low_rank.* was chosen; the closing notes give the table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# name -> keyword arguments of finetune_cross_encoder.run
CONFIGS = {
    "low_rank_16_lr_5e-4": {"low_rank": 16, "learning_rate": 5e-4},
    "low_rank_16_lr_2e-4": {"low_rank": 16, "learning_rate": 2e-4},
    "low_rank_32_lr_5e-4": {"low_rank": 32, "learning_rate": 5e-4},
    "all_layers_lr_5e-5": {"trainable_layers": 6, "learning_rate": 5e-5},  # the full fine-tune, for reference
}
KEEP = ("metrics.json", "log.jsonl", "loss.png", "low_rank.safetensors")


def one(name: str, kwargs: dict, out: str, steps: int, max_minutes: float, device: str) -> None:
    from minibert import BertForSequenceClassification
    from minibert.app.pipelines import rerank
    from tasks import finetune_cross_encoder, step5_cross_encoder
    from tasks.pretrain import shipped_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        report = finetune_cross_encoder.run(out=Path(tmp), steps=steps, max_minutes=max_minutes, device=device,
                                            progress=False, **kwargs)
        model = BertForSequenceClassification.from_pretrained(Path(tmp) / "model")
        tokenizer, _ = shipped_tokenizer()
        ranked = rerank(model, tokenizer, step5_cross_encoder.QUESTION, step5_cross_encoder.ANSWERS)
        report["lesson_step5"] = [[answer, round(float(score), 5)] for answer, score in ranked]
        target = Path(out) / name
        target.mkdir(parents=True, exist_ok=True)
        for file in KEEP:
            if (Path(tmp) / file).exists():
                shutil.copy(Path(tmp) / file, target / file)
        (target / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--max-minutes", type=float, default=2.5)
    p.add_argument("--only", nargs="*", choices=tuple(CONFIGS), help="a subset of the configurations")
    args = p.parse_args()
    names = args.only or list(CONFIGS)
    context = multiprocessing.get_context("spawn")  # CUDA cannot be forked into
    processes = [context.Process(target=one, args=(n, CONFIGS[n], str(args.out), args.steps, args.max_minutes,
                                                   args.device)) for n in names]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    print(f"{'configuration':24} {'steps':>6} {'s':>5}  {'acc@1':>6} {'MRR':>6}   bi-encoder acc@1 MRR   step 5's first answer")
    for name in names:
        path = args.out / name / "metrics.json"
        if not path.exists():
            print(f"{name:24} failed")
            continue
        r = json.loads(path.read_text())
        ce, bi = r["cross_encoder"], r["bi_encoder_baseline"]
        print(f"{name:24} {r['steps']:6d} {r['seconds']:5d}  {ce['accuracy_at_1']:6.3f} {ce['mrr']:6.3f}   "
              f"{bi['accuracy_at_1']:6.3f} {bi['mrr']:6.3f}        {r['lesson_step5'][0][0]}")


if __name__ == "__main__":
    main()
