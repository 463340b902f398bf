"""The model. Read it first, in this order (the files sort that way too):

    config.py      BertConfig: one commented field per hyper-parameter of config.json
    model.py       embeddings, attention(), the layer, the encoder, the pooler, the heads
    pretrained.py  from_pretrained: find a checkpoint, read its tensors, map the names, load strictly
    tokenizer.py   text -> input_ids, token_type_ids, attention_mask
"""
