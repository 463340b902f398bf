"""Training: pre-training (masked LM + next sentence) and fine-tuning. Read after bert/:

    data.py             documents -> next-sentence pairs -> masked batches, one small function per idea
    log.py              a JSONL line per step, and the loss curve as a PNG
    loop.py             AdamW, the warm-up/decay schedule, the step (forward, loss, backward, clip, step,
                        schedule), evaluation, atomic checkpoints, resume, and torchrun (DDP)
    lowrank.py          low-rank updates (LoRA): fine-tune through two thin matrices per weight, then merge
    sentence_losses.py  training a sentence embedding model: in-batch negatives (multiple negatives
                        ranking) and CoSENT, equal to sentence-transformers' losses
    word_labels.py      token classification's labels: one per word, to the word pieces
"""

from .sentence_losses import cosent_loss, multiple_negatives_ranking_loss

__all__ = ["cosent_loss", "multiple_negatives_ranking_loss"]
