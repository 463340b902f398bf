"""Tools for looking inside the model. Read them after bert/:

    trace.py       record every named intermediate of a forward pass; diff it against transformers
    wordpiece.py   the tokenizer's rules in plain Python, checked id for id against `tokenizers`
"""
