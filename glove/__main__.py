"""The glove command line: neighbours, analogies, pictures and format conversion.

    glove similar king
    glove analogy man king woman              # man is to king as woman is to ?
    glove plot king queen prince ocean cloud -o words.png
    glove convert glove.6B.50d.txt glove.6B.50d.store

Every command takes --model: a GloVe/word2vec file, a saved store, or a gensim-data name such as
glove-wiki-gigaword-100. Without it, the lesson's vectors are used when they can be had, else
GloVe 6B 50d shipped offline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .defaults import load_vectors
from .formats import FORMATS, FormatError
from .store import UnknownWordError, WordVectors


def vectors_for(args) -> WordVectors:
    vectors, what, note = load_vectors(args.model)
    if note:
        print(f"[{note}]")
    print(f"vectors: {what}")
    return vectors


def cmd_similar(args) -> None:
    for word, score in vectors_for(args).most_similar(args.word, topn=args.topn):
        print(f"{score:.4f}  {word}")


def cmd_analogy(args) -> None:
    word, score = vectors_for(args).analogy(args.a, args.b, args.c)
    print(f"{args.a} : {args.b} :: {args.c} : {word}   ({score:.4f})")


def cmd_plot(args) -> None:
    vectors = vectors_for(args)
    if len(args.words) < 3:
        raise ValueError("plot needs at least 3 words for a 2-D PCA")
    print(f"picture: {vectors.plot(args.words, args.output)}")


def cmd_convert(args) -> None:
    vectors = WordVectors.load(args.input)
    vectors.save(args.output, format=args.format)
    print(f"wrote {len(vectors)} words x {vectors.vector_size} dimensions to {args.output} ({args.format})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glove", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name, func, help):
        p = commands.add_parser(name, help=help)
        p.add_argument("--model", default=None, help="word-vector file or gensim-data name")
        p.set_defaults(func=func)
        return p

    p = command("similar", cmd_similar, "the nearest words by cosine")
    p.add_argument("word")
    p.add_argument("--topn", type=int, default=10)
    p = command("analogy", cmd_analogy, "a is to b as c is to ?")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("c")
    p = command("plot", cmd_plot, "a labelled 2-D PCA picture of some words")
    p.add_argument("words", nargs="+")
    p.add_argument("-o", "--output", type=Path, required=True)
    p = command("convert", cmd_convert, "read any supported format, write another")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--format", choices=FORMATS, default="store")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (UnknownWordError, FormatError, FileNotFoundError, ValueError) as err:
        message = " ".join(str(err).split("\n"))
        print(f"glove {args.command}: error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
