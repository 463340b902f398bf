"""Application code: the command line and the lesson's helpers. Skip it on a first read.

    answers.py     extractive question answering's decoding: the best spans, windows, back to characters
    cli.py         the `minibert` command (python -m minibert)
    defaults.py    which checkpoint to use when none is named, and the offline probe
    pipelines.py   the lesson's uses of BERT: a word's vector, fill-mask, next sentence, rerank
    plots.py       attention pictures (matplotlib Figure objects, written as PNG)
"""
