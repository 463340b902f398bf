"""glove: a numpy word-vector store with gensim's semantics that loads GloVe text about 15x faster than gensim.

Read it in this order: `store.py` (the `WordVectors` class and its queries), then `formats.py` (the files).

A tour on GloVe 6B 50d (Stanford's glove.6B.50d.txt, 400000 words; gensim takes ~18 s to load it):

    >>> from glove import WordVectors
    >>> wv = WordVectors.load("glove.6B.50d.txt")   # GloVe text, no header: recognised on its own (~1 s)
    >>> wv
    WordVectors(400000 words x 50 dimensions)
    >>> wv["king"][:5]                               # a list of words gives a matrix (n, 50)
    array([ 0.50451 ,  0.68607 , -0.59517 , -0.022801,  0.60046 ], dtype=float32)
    >>> wv.most_similar(positive=["king", "woman"], negative=["man"], topn=3)
    [('queen', 0.8523604273796082), ('throne', 0.7664334177970886), ('prince', 0.7592144012451172)]
    >>> wv.analogy("man", "king", "woman")           # man is to king as woman is to ?
    ('queen', 0.8523604273796082)
    >>> wv.similarity("cat", "dog")
    0.9218004941940308
    >>> wv.doesnt_match(["breakfast", "cereal", "dinner", "lunch"])
    'cereal'
    >>> wv.analogies([("man", "king", "woman"), ("france", "paris", "japan"), ("good", "better", "bad")])
    [[('queen', 0.8523603081703186)], [('tokyo', 0.9234452247619629)], [('worse', 0.901099681854248)]]
    >>> wv["notaword"]
    Traceback (most recent call last):
    glove.store.UnknownWordError: word 'notaword' is not in the vocabulary (400000 words)

Scores are gensim's to the last bit for single queries; `analogies` and `neighbours` answer a whole batch
with one matrix product and agree with them to ~1e-7. Save once, then open in milliseconds:

    >>> wv.save("glove.6B.50d.store")                # atomic: a crash leaves the old file or none
    >>> WordVectors.load("glove.6B.50d.store", mmap=True)   # 0.04 s: the vectors stay on disk
    WordVectors(400000 words x 50 dimensions)
    >>> words = "king princess monarch throne crown mountain ocean tv rainbow cloud queen".split()
    >>> wv.pca(words).explained_variance_ratio.round(3)   # numpy's SVD of the centred vectors
    array([0.406, 0.167])
    >>> wv.plot(words, "words.png")                  # a labelled scatter of the first two axes
    'words.png'

`WordVectors.load("glove-wiki-gigaword-100")` fetches a gensim-data model through gensim's downloader;
`WordVectors.from_gensim(kv)` and `wv.to_gensim()` convert both ways. `wv.save(path, format=...)` also
writes "glove", "word2vec" and "word2vec-binary" files.
"""

from .formats import FormatError
from .store import PCA, UnknownWordError, WordVectors

__all__ = ["WordVectors", "UnknownWordError", "FormatError", "PCA"]
