"""Opt-in speed. The readable model in bert/ is the reference; everything here is tested against it.

    encode.py      sentence embeddings in length-sorted batches, as sentence-transformers computes them
    fast.py        the same forward pass on fused kernels (Q|K|V in one matmul, scaled_dot_product_attention),
                   optionally frozen (compile="frozen") or in mixed precision (bfloat16 matmuls)
    quantize.py    int8 Linear layers: per-channel weights, per-token activations, outliers in float
    onnx.py        the model as one ONNX file, and an ONNX Runtime session that checks inputs as the model does
    engines.py     that file run by ONNX Runtime or OpenVINO, or the model compiled ahead of time by AOTInductor
                   (fp32, bf16, int8): SentenceEncoder.from_pretrained(path, engine=...)
    smoothing.py   SmoothQuant factors: part of each activation channel's range moved into the weights before int8
"""
