"""Download every model the lesson uses, in one go, into the caches the lesson reads from.

    .venv/bin/python scripts/download_models.py

- google-bert/bert-base-uncased (encoder, masked LM and next-sentence heads) and
  cross-encoder/ms-marco-MiniLM-L6-v2 go into the Hugging Face cache (HF_HUB_CACHE), with
  huggingface_hub's progress bars;
- glove-wiki-gigaword-100 goes into gensim-data (GENSIM_DATA_DIR, default ~/gensim-data).
After this, `make lesson` uses the lesson's own models, also with HF_HUB_OFFLINE=1.
"""

import sys

from glove.defaults import LESSON_VECTORS
from minibert.app.cli import main
from minibert.app.defaults import BERT_BASE, CROSS_ENCODER

LESSON_MODELS = [BERT_BASE[0], CROSS_ENCODER[0], LESSON_VECTORS]

if __name__ == "__main__":
    sys.exit(main(["download", *LESSON_MODELS]))
