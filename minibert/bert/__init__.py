"""The model. One forward pass of BertModel and the masked-LM head reads in three files: model.py, then
outputs.py and losses.py where it calls them (the README's "Reading the source" gives the order).
What each file holds:

    checks.py      the checks on the inputs and labels, kept out of the model's way: skip on a first read
    config.py      BertConfig: one commented field per hyper-parameter of config.json
    files.py       checkpoint files: a local folder or the Hub, reading tensors, writing files atomically
    heads.py       the other heads: pre-training, next sentence, classifier, tokens, QA, multiple choice
    loading.py     strict loading: checkpoint names mapped onto the model, every tensor checked; saving
    losses.py      what the heads are trained to minimise: cross-entropy, squared error, binary cross-entropy
    model.py       the forward pass: embeddings, attention(), the layer, the encoder, the pooler, the masked LM
    outputs.py     what the models return: named fields that also index like transformers' outputs
    pretrained.py  BertPreTrainedModel: initialisation, from_pretrained, save_pretrained, transformers' extras
    tokenizer.py   text -> input_ids, token_type_ids, attention_mask
"""
