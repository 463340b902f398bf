"""The glove command line: neighbours, analogies, pictures, format conversion and downloads.

    glove similar king
    glove analogy man king woman              # man is to king as woman is to ?
    glove plot king queen prince ocean cloud -o words.png
    glove convert glove.6B.50d.txt glove.6B.50d.store
    glove download glove-wiki-gigaword-100    # into gensim-data's folder (~/gensim-data)

similar, analogy and plot take --model: a GloVe/word2vec file, a saved store, or a gensim-data name
such as glove-wiki-gigaword-100. Without it, the lesson's vectors are used when they can be had, else
GloVe 6B 50d shipped offline.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import warnings
from pathlib import Path

from .defaults import LESSON_VECTORS, gensim_data_host, gensim_data_reachable, load_vectors
from .formats import FORMATS, detect_format, format_for
from .store import UnknownWordError, WordVectors

# What a command reports in one line (exit 1) instead of a traceback. ValueError covers FormatError;
# OSError covers a missing file, a picture that cannot be written, and the network.
USER_ERRORS = (UnknownWordError, ValueError, OSError)

EXIT_STATUS = """\
exit status:
  0  success
  1  a runtime error: a word not in the vocabulary, a file that cannot be read or written, vectors
     that cannot be had; one line on stderr, "glove COMMAND: error: ..."
  2  a usage error found by argparse: an unknown option, a missing or malformed argument"""

MODEL_HELP = (f"a GloVe/word2vec file, a saved store, or a gensim-data name (default: {LESSON_VECTORS} "
              "when gensim-data has it or can download it, else GloVe 6B 50d, shipped offline)")


def vectors_for(args) -> WordVectors:
    vectors, what, note = load_vectors(args.model)
    if note:
        print(f"[{note}]")
    print(f"vectors: {what}")
    return vectors


def cmd_similar(args) -> None:
    answers = vectors_for(args).most_similar(args.word, topn=args.topn)
    for word, score in answers:
        print(f"{score:.4f}  {word}")
    if not answers:  # most_similar gives [] here, as gensim's does; a silent exit 0 looked like a crash
        print(f"(no other word with a direction to compare {args.word!r} with)")


def cmd_analogy(args) -> None:
    word, score = vectors_for(args).analogy(args.a, args.b, args.c)
    print(f"{args.a} : {args.b} :: {args.c} : {word}   ({score:.4f})")


def _output_file(path: Path, default_name: str) -> Path:
    """The file -o names: a folder gets `default_name` inside it, a name without an extension gets .png
    (as matplotlib would add it); its folder must exist."""
    if path.is_dir():
        path = path / default_name
    elif not path.suffix:
        path = path.with_suffix(".png")
    if not path.parent.is_dir():
        problem = "is not a folder" if path.parent.exists() else "does not exist"
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} {problem}")
    return path


def cmd_plot(args) -> None:
    if len(args.words) < 2:  # what pca needs for two axes; it refuses the rest (one vector between them)
        raise ValueError(f"plot needs at least 2 words for a 2-D PCA, not {len(args.words)}")
    path = _output_file(args.output, "words.png")
    vectors = vectors_for(args)
    try:
        vectors.plot(args.words, path)
    except OSError as err:  # a read-only folder, a full disk
        raise OSError(f"cannot write {path}: {err.strerror or err}") from None
    print(f"picture: {path}")


def cmd_convert(args) -> None:
    if args.output.exists() and args.input.exists() and os.path.samefile(args.input, args.output):
        raise ValueError(f"{args.output} is the input file {args.input} itself (or a link to it): "
                         "writing it would destroy what is being read; choose another output")
    format_for(args.output, args.format)  # refuses a contradiction before reading the input, which can take seconds
    vectors = WordVectors.load(args.input)
    # A .txt output keeps the input's kind of text: word2vec's header for word2vec input, else GloVe's none
    # (a gensim-data name is no file: its vectors count as GloVe's).
    text = "word2vec" if args.input.is_file() and detect_format(args.input).startswith("word2vec") else "glove"
    fmt = format_for(args.output, args.format, text=text)
    vectors.save(args.output, format=fmt)
    print(f"wrote {len(vectors)} words x {vectors.vector_size} dimensions to {args.output} ({fmt})")


def cmd_download(args) -> None:
    import gensim.downloader

    missing = [name for name in args.names if not os.path.isdir(os.path.join(gensim.downloader.BASE_DIR, name))]
    if missing and not gensim_data_reachable():  # one quick probe: without network, one line now
        raise ConnectionError(f"could not download {' '.join(missing)}: gensim-data ({gensim_data_host()}) "
                              "cannot be reached from here (no network?)")
    for name in args.names:
        try:
            where = gensim.downloader.load(name, return_path=True)  # shows progress; a no-op when downloaded
        except ValueError as err:  # gensim: "Incorrect model/corpus name"
            raise ValueError(f"{name!r} is not a gensim-data model name ({err}); "
                             "the names are listed at https://github.com/piskvorky/gensim-data") from None
        except OSError as err:  # the connection dropped
            raise ConnectionError(f"could not download {name}: {type(err).__name__}: {err}") from None
        print(f"{name}: {where}")


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line that points to --help (exit status 2, as argparse's)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; help wrapped at spaces only, so that a name such as
    google-bert/bert-base-uncased is never broken at its hyphen."""

    def _split_lines(self, text, width):
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def _at_least_one(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {value!r}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="glove", description=__doc__, epilog=EXIT_STATUS,
                     formatter_class=_Formatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, func, help, description, example, model=True):
        p = commands.add_parser(name, help=help, description=description, epilog=f"example:\n  {example}",
                                formatter_class=_Formatter)
        if model:
            p.add_argument("--model", default=None, metavar="VECTORS", help=MODEL_HELP)
        p.set_defaults(func=func)
        return p

    p = command("similar", cmd_similar, "the nearest words by cosine",
                "The words whose vectors are closest to WORD's by cosine similarity, closest first.",
                "glove similar king --topn 5")
    p.add_argument("word", metavar="WORD", help="a word of the vocabulary (lower case for GloVe)")
    p.add_argument("--topn", type=_at_least_one, default=10, metavar="N",
                   help="how many neighbours to show, at least 1 (default: 10)")

    p = command("analogy", cmd_analogy, "a is to b as c is to ?",
                "A is to B as C is to ?: the word nearest to B - A + C, the inputs left out.",
                "glove analogy man king woman")
    p.add_argument("a", metavar="A", help="the first word of the known pair, e.g. man")
    p.add_argument("b", metavar="B", help="the second word of the known pair, e.g. king")
    p.add_argument("c", metavar="C", help="the word to complete by analogy, e.g. woman")

    p = command("plot", cmd_plot, "a labelled 2-D PCA picture of some words",
                "A scatter plot of the words' vectors on their first two principal components.",
                "glove plot king queen prince ocean cloud -o words.png")
    p.add_argument("words", nargs="+", metavar="WORD", help="the words to draw, at least 2")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                   help="the picture to write, e.g. words.png; in a folder it is words.png, without an "
                        "extension it gets .png")

    p = command("convert", cmd_convert, "read any supported format, write another",
                "Read word vectors in any format glove recognises and write them in another.",
                "glove convert glove.6B.50d.txt glove.6B.50d.store", model=False)
    p.add_argument("input", type=Path, metavar="INPUT",
                   help="a GloVe/word2vec text file, a word2vec binary file, or a saved store")
    p.add_argument("output", type=Path, metavar="OUTPUT",
                   help="the file to write; its extension names the format: .txt text (word2vec text for "
                        "word2vec input, else GloVe text), .bin word2vec binary, .store (or any other) glove's "
                        "own store, which opens in milliseconds")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="the format to write, where the extension does not say it (a .txt file can be glove or "
                        "word2vec; a format the extension contradicts is refused)")

    p = command("download", cmd_download, "fetch gensim-data word vectors into gensim-data's folder",
                "Download gensim-data models (with gensim's progress bar) into gensim-data's folder\n"
                "(GENSIM_DATA_DIR, default ~/gensim-data), where --model NAME then finds them.",
                f"glove download {LESSON_VECTORS}", model=False)
    p.add_argument("names", nargs="+", metavar="NAME", help=f"a gensim-data model name, e.g. {LESSON_VECTORS}")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        # The library warns (duplicate words skipped, unknown words left out); at the command line that
        # is one line like the errors, not Python's file:line: Category: ... and a line of its source.
        print(f"glove {args.command}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():  # puts the usual display back afterwards, for callers of main()
        warnings.showwarning = one_line_warning
        try:
            args.func(args)
        except USER_ERRORS as err:
            message = " ".join(str(err).split("\n"))
            print(f"glove {args.command}: error: {message}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
