"""Tools for looking inside the model. Read them after bert/:

    by_hand.py     LayerNorm and the exact GELU written out: the formulas torch's kernels compute
    hooks.py       TransformerLens's names: run_with_cache and run_with_hooks, to read or replace any activation
    patching.py    head ablation, and activation patching grids over layers and positions or heads
    lens.py        the logit lens: the masked-LM head on every layer's output
    attribution.py integrated gradients and gradient x input over the word embeddings
    explore.py     one self-contained HTML page: head, model, steps, attribution and logit-lens views
    trace.py       record every named intermediate of a forward pass; diff it against transformers
    wordpiece.py   the tokenizer's rules in plain Python, checked id for id against `tokenizers`;
                   `python -m minibert.inside.wordpiece TEXT` prints every step on TEXT
"""
