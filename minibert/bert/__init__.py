"""The model. Read it first, in this order (the files sort that way too):

    config.py      BertConfig: one commented field per hyper-parameter of config.json
    losses.py      what the heads are trained to minimise: cross-entropy, squared error, binary cross-entropy
    model.py       embeddings, attention(), the layer, the encoder, the pooler, the heads
    outputs.py     what the models return: named fields that also index like transformers' outputs
    pretrained.py  from_pretrained and save_pretrained: checkpoint files, key names, strict loading
    tokenizer.py   text -> input_ids, token_type_ids, attention_mask
"""
