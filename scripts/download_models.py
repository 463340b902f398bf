"""Download every model the lesson uses, in one go, into the caches the lesson reads from.

    .venv/bin/python scripts/download_models.py

which runs
    .venv/bin/minibert download google-bert/bert-base-uncased cross-encoder/ms-marco-MiniLM-L6-v2
    .venv/bin/glove download glove-wiki-gigaword-100

- google-bert/bert-base-uncased (encoder, masked LM and next-sentence heads) and
  cross-encoder/ms-marco-MiniLM-L6-v2 go into the Hugging Face cache (HF_HUB_CACHE), with
  huggingface_hub's progress bars;
- glove-wiki-gigaword-100 goes into gensim-data (GENSIM_DATA_DIR, default ~/gensim-data).
After this, `make lesson` uses the lesson's own models, also with HF_HUB_OFFLINE=1. Without network,
each command says so in one line, and the exit status is 1.
"""

import sys

from glove.__main__ import main as glove
from glove.defaults import LESSON_VECTORS
from minibert.app.cli import main as minibert
from minibert.app.defaults import BERT_BASE, CROSS_ENCODER

LESSON_CHECKPOINTS = [BERT_BASE[0], CROSS_ENCODER[0]]

if __name__ == "__main__":
    checkpoints = minibert(["download", *LESSON_CHECKPOINTS])
    vectors = glove(["download", LESSON_VECTORS])  # tried even when the checkpoints failed
    sys.exit(checkpoints or vectors)
