"""The lesson as programs. Each step runs alone (`python -m tasks.step2_contextual`); `lesson.py` runs them in order.

Read in this order:
    step1_word_vectors.py      GloVe: one vector per word, whatever the sentence ("bat" is "bat")
    step2_contextual.py        BERT: a vector per token, shaped by its sentence (the two bats differ)
    step3_masked_lm.py         masked-language modelling: the likeliest words behind [MASK]
    step4_next_sentence.py     next-sentence prediction: does B follow A?
    step5_cross_encoder.py     a cross-encoder ranks answers, reading question and answer together
    step6_attention.py         what one head attends to, as a heatmap
    step7_sentence_vectors.py  the next lesson's start: pool the tokens into one vector, normalise, rank
    lesson.py                  all seven, as `make lesson` runs them (lesson.ipynb: the same, as a notebook)
Training the stand-ins that steps 3-5 and 7 use offline:
    corpus.py                  the Wikipedia dump and the Lee stories that ship with gensim, as documents
    pretrain.py                pre-train a small BERT (MLM + NSP), or new heads on a frozen all-MiniLM-L6-v2
    finetune_cross_encoder.py  fine-tune all-MiniLM-L6-v2 into a cross-encoder on questions made from the text
    train_sentence_encoder.py  fine-tune it into a sentence embedding model (step 7's stand-in)
    standins.py                makes tasks/standins/, the models steps 3-5 and 7 fall back to (_common.py loads them)
The lesson's other tasks, on the same text (docs/fine-tuning.md):
    finetune_token_classification.py  mark the mentions editors linked, word by word (B/I/O)
    finetune_question_answering.py    answer cloze questions by pointing at a span of the paragraph
Plumbing:
    _common.py                 what the steps share: a heading, the model line, a head model or its stand-in,
                               the shipped tokenizer, one-line errors
"""
