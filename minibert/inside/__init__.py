"""Tools for looking inside the model. Read them after bert/:

    by_hand.py     LayerNorm and the exact GELU written out: the formulas torch's kernels compute
    explore.py     one self-contained HTML page of every layer and head: head, model and steps views
    trace.py       record every named intermediate of a forward pass; diff it against transformers
    wordpiece.py   the tokenizer's rules in plain Python, checked id for id against `tokenizers`;
                   `python -m minibert.inside.wordpiece TEXT` prints every step on TEXT
"""
