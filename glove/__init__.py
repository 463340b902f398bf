"""glove: a numpy word-vector store with gensim's semantics that loads GloVe text about 15x faster than gensim.

Read it in this order: `store.py` (the `WordVectors` class and its queries), `formats.py` (the files),
`atomic.py` (how a save stays whole), `evaluation.py` (gensim's two benchmarks, in batches).

A tour on GloVe 6B 50d (Stanford's glove.6B.50d.txt, 400000 words; gensim takes ~18 s to load it):

    >>> from glove import WordVectors
    >>> wv = WordVectors.load("glove.6B.50d.txt")   # GloVe text, no header: recognised on its own (~1 s)
    >>> wv
    WordVectors(400000 words x 50 dimensions)
    >>> wv["king"][:5]                               # a list of words gives a matrix (n, 50)
    array([ 0.50451 ,  0.68607 , -0.59517 , -0.022801,  0.60046 ], dtype=float32)
    >>> wv.most_similar(positive=["king", "woman"], negative=["man"], topn=3)
    [('queen', 0.852...), ('throne', 0.766...), ('prince', 0.759...)]
    >>> wv.analogy("man", "king", "woman")           # man is to king as woman is to ?
    ('queen', 0.852...)
    >>> wv.similarity("cat", "dog")
    0.921...
    >>> wv.doesnt_match(["breakfast", "cereal", "dinner", "lunch"])
    'cereal'
    >>> wv.analogies([("man", "king", "woman"), ("france", "paris", "japan"), ("good", "better", "bad")])
    [[('queen', 0.852...)], [('tokyo', 0.923...)], [('worse', 0.901...)]]
    >>> wv["notaword"]
    Traceback (most recent call last):
    glove.store.UnknownWordError: word 'notaword' is not in the vocabulary (400000 words)

Scores are shown to three decimals, and `...` stands for the rest: the last digits of a float32 dot
product depend on the kernels numpy's BLAS picks for the CPU (an AMD EPYC and an Intel Xeon differ by
up to 1.2e-7 here), and each value shown is at least 9.8e-6 from where its third decimal would change.
On any one machine, scores are gensim's to the last bit for single queries (tests/test_glove_keyedvectors.py
compares every digit); `analogies` and `neighbours` answer a whole batch with one matrix product and
agree with them to ~1e-7. The rest of gensim's KeyedVectors is here, with its names, arguments and numbers:

    >>> wv.get_vector("king", norm=True)[:3]         # unit length; get_index, has_index_for, norms too
    array([ 0.093...,  0.127..., -0.110...], dtype=float32)
    >>> wv.distance("cat", "dog"), wv.n_similarity(["king", "queen"], ["man", "woman"])
    (0.078..., 0.565...)
    >>> wv.closer_than("king", "queen"), wv.rank("king", "queen")
    (['prince'], 2)
    >>> wv.most_similar_to_given("king", ["cat", "queen", "ocean"])
    'queen'
    >>> wv.most_similar("king", topn=3, clip_start=1000, clip_end=50000)   # or restrict_vocab=n: the first n
    [('prince', 0.823...), ('queen', 0.783...), ('emperor', 0.773...)]
    >>> wv.rank_by_centrality(["breakfast", "cereal", "dinner", "lunch"])[-1]
    (0.657..., 'cereal')
    >>> wv.get_mean_vector(["king", "queen"])[:3]     # the mean of the unit vectors, as gensim's default
    array([ 0.083...,  0.239..., -0.177...], dtype=float32)
    >>> wv.distances("king", ["queen", "cat"])       # 1 - cosine; without words: to every word
    array([0.216..., 0.613...], dtype=float32)
    >>> wv.relative_cosine_similarity("king", "queen")   # against the 10 nearest (Leeuwenberg et al. 2016)
    0.101...
    >>> small = wv.vectors_for_all(["king", "queen", "cat"])  # a new store of these words
    >>> small.unit_normalize_all()                    # rows scaled to length 1, in place (get_normed_vectors copies)
    >>> small.norms
    array([1., 1., 1.])
    >>> small.save_word2vec_format("small.bin", binary=True)   # gensim's two functions, gensim's arguments
    >>> WordVectors.load_word2vec_format("small.bin", binary=True, limit=2).index_to_key
    ['king', 'queen']
    >>> wv["kingwoman"] = wv["king"] - wv["man"] + wv["woman"]   # add_vector(s) and replace, as in gensim
    >>> wv.similar_by_word("kingwoman", topn=2)
    [('king', 0.885...), ('queen', 0.860...)]

gensim's two evaluations, with gensim's figures (its own test files, shipped with gensim). The analogies
are answered in batches: 16x faster than gensim at its default of the 300000 commonest words, 2-3x at the
30000 of this example, whose questions are quick either way (scripts/bench_glove.py measures both):

    >>> from gensim.test.utils import datapath
    >>> pearson, spearman, oov_ratio = wv.evaluate_word_pairs(datapath("wordsim353.tsv"))
    >>> print(f"pearson {pearson.statistic:.4f}, spearman {spearman.statistic:.4f}, {oov_ratio}% of pairs unknown")
    pearson 0.5066, spearman 0.5033, 0.0% of pairs unknown
    >>> score, sections = wv.evaluate_word_analogies(datapath("questions-words.txt"), restrict_vocab=30000)
    >>> round(score, 4), [(s["section"], len(s["correct"]), len(s["incorrect"])) for s in sections[:2]]
    (0.4969, [('capital-common-countries', 403, 103), ('capital-world', 2006, 709)])

Save once, then open in milliseconds:

    >>> wv.save("glove.6B.50d.store")                # atomic: a crash leaves the old file or none
    >>> WordVectors.load("glove.6B.50d.store", mmap=True)   # 0.04 s: the vectors stay on disk
    WordVectors(400001 words x 50 dimensions)
    >>> words = "king princess monarch throne crown mountain ocean tv rainbow cloud queen".split()
    >>> wv.pca(words).explained_variance_ratio.round(3)   # numpy's SVD of the centred vectors
    array([0.406, 0.167])
    >>> wv.plot(words, "words.png")                  # a labelled scatter of the first two axes
    'words.png'

`WordVectors.load(path, binary=None, no_header=None, limit=None, datatype=np.float32, unicode_errors="strict")`
takes gensim's options (None: recognise from the file); `WordVectors.load_word2vec_format(...)` and
`wv.save_word2vec_format(...)` are gensim's two functions, with gensim's arguments and defaults. A malformed
file raises `FormatError`, naming the file and the line; one that ends early is also an EOFError, one that
is not UTF-8 also a UnicodeDecodeError, as gensim raises. `WordVectors.load("glove-wiki-gigaword-100")`
fetches a gensim-data model through gensim's downloader; `WordVectors.from_gensim(kv)` and `wv.to_gensim()`
convert both ways. `wv.save(path, format=...)` also writes "glove", "word2vec" and "word2vec-binary" files.
"""

from .formats import EncodingError, FormatError, TruncatedFileError
from .store import PCA, UnknownWordError, WordVectors

__all__ = ["WordVectors", "UnknownWordError", "FormatError", "TruncatedFileError", "EncodingError", "PCA"]
