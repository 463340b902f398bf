"""The minibert command line: try BERT on your own words, sentences and questions.

    minibert similarity bat "The bat flew out of the cave." "He swung the bat."
    minibert fill-mask "The capital of France is [MASK]."
    minibert nsp "The man went to the store." "He bought a gallon of milk."
    minibert rerank "Where is the capital of France?" "Paris is the capital of France." "Berlin is in Germany."
    minibert attention "He swung the bat and hit a home run." --layer 2 --head 0 -o bat.png
    minibert attention "He swung the bat." --layer 2 --head all -o heads.png     # every head of layer 2
    minibert attention "He swung the bat." --to-token bat -o to-bat.png          # attention to "bat", layer by layer
    minibert attention "He swung the bat." --html bat.html                       # every layer and head, in a browser
    minibert diff "$(minibert path)" "The bat flew."                             # every intermediate vs transformers
    minibert download google-bert/bert-base-uncased cross-encoder/ms-marco-MiniLM-L6-v2
    minibert path                                                                # the shipped model's folder
    minibert exercise start attention                                            # write attention yourself

The commands that run a model take --model (a checkpoint folder or a Hub repo id); diff and path take
the model as their first argument. Without --model, the lesson's model is used when it can be had,
or all-MiniLM-L6-v2 (shipped offline) where an encoder is enough. Layers and heads count from 0.
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

from ..bert.heads import (BertForNextSentencePrediction, BertForQuestionAnswering, BertForSequenceClassification,
                          BertForTokenClassification)
from ..bert.loading import MissingHeadError
from ..bert.model import BertForMaskedLM, BertModel
from ..exercises.command import add_command as add_exercise_command
from ..exercises.core import ExerciseError
from ..inside.explore import ATTRIBUTION_STEPS, MAX_TOKENS as EXPLORER_MAX_TOKENS, explore
from . import plots
from .defaults import (BERT_BASE, CROSS_ENCODER, HUB_OFFLINE, HUB_UNREACHABLE, ModelUnavailable, checkpoint_folder,
                       download, load, load_encoder, probe_hub)
from .pipelines import (InputError, attention_map, check_layer_head, cosine, fill_mask, next_sentence, rerank,
                        word_vector)

# What a command reports in one line (exit 1) instead of a traceback. ValueError covers InputError,
# CheckpointError, ConfigError and MissingHeadError; OSError covers CheckpointNotFoundError, a
# picture that cannot be written, and the network.
USER_ERRORS = (ValueError, OSError, ModelUnavailable, ExerciseError)

EXIT_STATUS = """\
exit status:
  0  success
  1  a runtime error: input the model cannot use, a model that cannot be had, a file that cannot
     be written; one line on stderr, "minibert COMMAND: error: ..."
  2  a usage error found by argparse: an unknown option, a missing or malformed argument"""

# The head each class adds to the encoder, in words, for the "this checkpoint has no head" error.
HEADS = {
    BertForMaskedLM: "masked-LM head",
    BertForNextSentencePrediction: "next-sentence head",
    BertForSequenceClassification: "classification head (a cross-encoder's)",
}


# -- checks shared by the commands --------------------------------------------------------------

def _require_text(text: str, what: str) -> None:
    if not text.strip():
        raise InputError(f"{what} is empty: give some text")


def _load(args, model_class, candidates, offline_default: bool):
    """The model of --model (or the default), after a line that names it; a checkpoint without
    this command's head is an error that says which checkpoint would do."""
    try:
        if model_class is BertModel:  # the commands that load one read no pooler: one saved without it runs
            loaded = load_encoder(args.model, candidates, offline_default=offline_default)
        else:
            loaded = load(model_class, args.model, candidates, offline_default=offline_default)
    except MissingHeadError:
        name = args.model or candidates[0]
        raise InputError(f"{name} has no weights for the head of {model_class.__name__}: `minibert {args.command}` "
                         f"needs a checkpoint with a {HEADS[model_class]}; pass --model with one, "
                         f"e.g. --model {candidates[0]}") from None
    print(f"model: {loaded.name}")
    return loaded


def _warn_if_cut(args, tokenizer, what: str, text: str, pair: str | None = None) -> None:
    """Say on stderr when `text` (and `pair`) is longer than the model reads, and by how much. Called
    once the results are in, so that an error (a word past the cut) stays the only line."""
    count, limit = tokenizer.count_tokens(text, pair), tokenizer.max_length
    if count > limit:
        where = "from the longer of the two" if pair is not None else "at the end"
        print(f"minibert {args.command}: warning: {what} is {count} tokens, more than the {limit} the model "
              f"reads: {count - limit} tokens are dropped {where}", file=sys.stderr)


def _output_file(path: Path, default_name: str, suffix: str = ".png") -> Path:
    """The file -o (or --html) names: a folder gets `default_name` inside it, a name without an
    extension gets `suffix` (.png, as matplotlib would add it); its folder must exist."""
    if path.is_dir():
        path = path / default_name
    elif not path.suffix:
        path = path.with_suffix(suffix)
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: " +
                         (f"{folder} is not a folder" if folder.exists() else f"the folder {folder} does not exist"))
    return path


# -- the commands -------------------------------------------------------------------------------

def cmd_similarity(args) -> None:
    for text, what in ((args.word, "the word"), (args.sentence_a, "sentence A"), (args.sentence_b, "sentence B")):
        _require_text(text, what)
    loaded = _load(args, BertModel, BERT_BASE, offline_default=True)
    a, pieces_a = word_vector(loaded.model, loaded.tokenizer, args.sentence_a, args.word)
    b, pieces_b = word_vector(loaded.model, loaded.tokenizer, args.sentence_b, args.word)
    _warn_if_cut(args, loaded.tokenizer, "sentence A", args.sentence_a)
    _warn_if_cut(args, loaded.tokenizer, "sentence B", args.sentence_b)
    for what, sentence in (("sentence A", args.sentence_a), ("sentence B", args.sentence_b)):
        times = len(loaded.tokenizer.word_positions(sentence, args.word))
        if times > 1:  # each occurrence has a vector of its own: say which one was compared
            print(f"minibert {args.command}: warning: {args.word!r} occurs {times} times in {what}: the first is "
                  "compared", file=sys.stderr)
    for pieces in dict.fromkeys((tuple(pieces_a), tuple(pieces_b))):  # the same pieces are said once
        if len(pieces) > 1:
            print(f"'{args.word}' is split into {' '.join(pieces)}: its vector is the mean of the {len(pieces)} pieces")
    print(f"cosine('{args.word}' in A, '{args.word}' in B) = {cosine(a, b):.4f}")


def cmd_fill_mask(args) -> None:
    _require_text(args.text, "the text")
    loaded = _load(args, BertForMaskedLM, BERT_BASE, offline_default=False)
    predictions_per_mask = fill_mask(loaded.model, loaded.tokenizer, args.text, args.top_k)
    _warn_if_cut(args, loaded.tokenizer, "the text", args.text)
    for i, predictions in enumerate(predictions_per_mask):
        print(f"[MASK] #{i + 1}: " + ", ".join(f"{token} {prob:.4f}" for token, prob in predictions))


def cmd_nsp(args) -> None:
    _require_text(args.a, "sentence A")
    _require_text(args.b, "sentence B")
    loaded = _load(args, BertForNextSentencePrediction, BERT_BASE, offline_default=False)
    p = next_sentence(loaded.model, loaded.tokenizer, args.a, args.b)
    _warn_if_cut(args, loaded.tokenizer, "the pair (A, B)", args.a, args.b)
    print(f"P(B follows A) = {p:.4f} -> {'true' if p >= 0.5 else 'false'}")


def cmd_rerank(args) -> None:
    _require_text(args.question, "the question")
    for i, answer in enumerate(args.answers, 1):
        _require_text(answer, f"answer {i}")
    loaded = _load(args, BertForSequenceClassification, CROSS_ENCODER, offline_default=False)
    ranked = rerank(loaded.model, loaded.tokenizer, args.question, args.answers)
    for i, answer in enumerate(args.answers, 1):
        _warn_if_cut(args, loaded.tokenizer, f"the question with answer {i}", args.question, answer)
    for rank, (answer, score) in enumerate(ranked, 1):
        print(f"{rank}. {score:.5f}  {answer}")


def _token_index(tokens: list[str], token: str, tokenizer, text: str, pair: str | None) -> int:
    """Where `token` (as written, or as the tokenizer normalizes it) first sits among `tokens`."""
    normalizer = tokenizer.backend.normalizer
    for candidate in (token, normalizer.normalize_str(token).strip() if normalizer else token):
        if candidate in tokens:
            return tokens.index(candidate)
    every = tokenizer.tokenize(text) + (tokenizer.tokenize(pair) if pair is not None else [])
    if token in every:
        raise InputError(f"the token {token!r} comes after the {tokenizer.max_length} tokens the model reads")
    shown = tokens if len(tokens) <= 20 else tokens[:20] + ["..."]
    raise InputError(f"the token {token!r} is not among the tokens {' '.join(shown)}")


def _say_what_is_drawn(args, tokens: list[str], window: range, around: str | None = None) -> None:
    """A line when a long text is cut to a window, and a warning when a font lacks its characters."""
    if len(window) < len(tokens):
        where = f", around '{around}'" if around is not None else ""
        print(f"the picture shows tokens {window.start}..{window.stop - 1} of {len(tokens)}{where} "
              f"(at most {plots.MAX_TOKENS} are drawn)")
    note = plots.font_note(tokens[window.start:window.stop])
    if note:
        print(f"minibert {args.command}: warning: {note}", file=sys.stderr)


@contextmanager
def _writing(path: Path):
    try:
        yield
    except OSError as err:  # a read-only folder, a full disk
        raise InputError(f"cannot write {path}: {err.strerror or err}") from None


# The heads the explorer's attribution and logit-lens views read, by the name a config.json's `architectures` gives.
# The heads the page explains (token classification and QA: the page says why there is nothing to attribute).
EXPLORER_HEADS = {"BertForMaskedLM": BertForMaskedLM, "BertForPreTraining": BertForMaskedLM,
                  "BertForSequenceClassification": BertForSequenceClassification,
                  "BertForTokenClassification": BertForTokenClassification,
                  "BertForQuestionAnswering": BertForQuestionAnswering}
MAX_ATTRIBUTION_STEPS = 500  # integrated gradients runs the points as one batch: 500 x T rows of the model


def _with_its_head(loaded):
    """For the --html page: the checkpoint loaded again with the head its config.json names (a masked-LM
    or classification head), from the files the encoder came from; the encoder as it is when there is
    none (all-MiniLM-L6-v2), so the page then says why it has no attribution or lens."""
    architectures = loaded.model.config.extra.get("architectures") or []
    head = next((EXPLORER_HEADS[name] for name in architectures if name in EXPLORER_HEADS), None)
    report = getattr(loaded.model, "load_report", None)
    if head is None or report is None or not report.files:
        return loaded
    try:
        model = head.from_pretrained(Path(report.files[0]).parent)
    except MissingHeadError:  # the config names a head whose weights the files lack
        return loaded
    return type(loaded)(model, loaded.tokenizer, loaded.name)


def cmd_attention(args) -> None:
    if args.output is None and args.html is None:
        raise InputError("give -o FILE for a picture, or --html FILE for a page to explore every layer and head "
                         "in a browser (or both)")
    if args.to_token is not None and args.output is None:
        raise InputError("--to-token draws a picture: give -o FILE too (in the --html page, hover over a token "
                         "to see the attention paid to it)")
    if args.to_token is not None:
        for flag, value in (("--head", args.head), ("--layer", args.layer)):
            if value is not None:
                raise InputError(f"{flag} does not go with --to-token: --to-token draws every layer, "
                                 "averaged over the heads; leave out one of the two")
    _require_text(args.sentence, "the sentence")
    if args.pair is not None:
        _require_text(args.pair, "the --pair sentence")
    path = None if args.output is None else _output_file(args.output, "attention.png")
    html_path = None if args.html is None else _output_file(args.html, "attention.html", suffix=".html")
    if path is not None and html_path is not None and path.resolve() == html_path.resolve():
        raise InputError(f"-o and --html both name {path}: the page would be written over by the picture; "
                         "give them two files")
    loaded = _load(args, BertModel, BERT_BASE, offline_default=True)
    if html_path is not None:
        loaded = _with_its_head(loaded)
    tokens, attentions = attention_map(loaded.model, loaded.tokenizer, args.sentence, args.pair)  # (L, nh, T, T)
    layer = 0 if args.layer is None else args.layer
    head = 0 if args.head is None else args.head
    target = None
    if args.to_token is not None:
        target = _token_index(tokens, args.to_token, loaded.tokenizer, args.sentence, args.pair)
        window = plots.token_window(len(tokens), focus=target)
    else:
        check_layer_head(attentions, layer, 0 if head == "all" else head)
        window = plots.token_window(len(tokens))
    if html_path is not None:  # first: a text too long for the page is an error before anything is written
        with _writing(html_path):
            explore(loaded.model, loaded.tokenizer, args.sentence, args.pair, html_path, layer=layer, head=head,
                    name=loaded.name, steps=args.steps)
        print(f"page: {html_path}")
        if path is None:
            return
    _warn_if_cut(args, loaded.tokenizer, "the text", args.sentence, args.pair)
    _say_what_is_drawn(args, tokens, window, around=None if target is None else tokens[target])
    with _writing(path):
        if target is not None:
            plots.plot_attention_to_token(tokens, attentions, target, path, window=window,
                                          title=f"attention to '{tokens[target]}' across layers\n{loaded.name}")
        elif head == "all":
            plots.plot_attention_grid(tokens, attentions[layer], path, window=window,
                                      title=f"{loaded.name}\nlayer {layer}, every head")
        else:
            plots.plot_attention(tokens, attentions[layer, head], path, window=window,
                                 title=f"{loaded.name}\nlayer {layer}, head {head}")
    print(f"picture: {path}")


def cmd_diff(args) -> int:
    import transformers

    from ..inside.trace import diff, first_divergence, format_rows

    _require_text(args.text, "the text")
    if args.pair is not None:
        _require_text(args.pair, "the --pair sentence")
    loaded = load(BertModel, args.checkpoint, BERT_BASE, offline_default=False)
    path = loaded.model.load_report.files[0].rsplit("/", 1)[0]  # the resolved folder: transformers reads the same files
    reference = transformers.BertModel.from_pretrained(path, attn_implementation="eager").float().eval()
    rows = diff(loaded.model, reference, loaded.tokenizer(args.text, args.pair), atol=args.atol)
    print(format_rows(rows, args.atol))
    _warn_if_cut(args, loaded.tokenizer, "the text", args.text, args.pair)
    return 1 if first_divergence(rows) else 0


def cmd_path(args) -> None:
    print(checkpoint_folder(args.checkpoint))


def cmd_download(args) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    for name in args.models:
        if "/" not in name:
            glove_hint = f"; word vectors from gensim-data are fetched with: glove download {name}" if name.strip() else ""
            raise InputError(f"{name!r} is not a Hub repo id (owner/name, e.g. google-bert/bert-base-uncased)"
                             + glove_hint)
        try:  # before the probe: "a/b/c" is wrong whether or not there is a network
            validate_repo_id(name)
        except HFValidationError as err:
            raise InputError(f"{name!r} is not a Hub repo id (owner/name): {err}") from None
    hub = probe_hub()  # once, quickly: without network, one line now rather than retries for each file
    if hub == HUB_OFFLINE:
        raise ModelUnavailable(f"could not download {' '.join(args.models)}: HF_HUB_OFFLINE=1 is set")
    if hub == HUB_UNREACHABLE:
        raise ModelUnavailable(f"could not download {' '.join(args.models)}: the Hugging Face Hub cannot be "
                               "reached from here (no network?)")
    for name in args.models:
        try:
            where = download(name)
        except Exception as err:  # unknown repo, a dropped connection: one line, not a traceback
            raise ModelUnavailable(f"could not download {name}: {type(err).__name__}: {err}") from None
        print(f"{name}: {where}")


# -- the parser ---------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line that points to --help (exit status 2, as argparse's)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def _head(value: str):
    if value == "all":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a head number (counting from 0) or 'all', not {value!r}") from None


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; help wrapped at spaces only, so that a name such as
    google-bert/bert-base-uncased is never broken at its hyphen."""

    def _split_lines(self, text, width):
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def _tolerance(value: str) -> float:
    """argparse type for --atol: a finite number >= 0 (NaN would call every tensor different)."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number >= 0):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, not {value!r}")
    return number


def _attribution_steps(value: str) -> int:
    number = _at_least_one(value)
    if number > MAX_ATTRIBUTION_STEPS:
        raise argparse.ArgumentTypeError(f"at most {MAX_ATTRIBUTION_STEPS} (each point is a row of one batch through "
                                         f"the model), not {value!r}")
    return number


def _at_least_one(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {value!r}")
    return number


ENCODER_DEFAULT = (f"default: {BERT_BASE[0]} when it is cached or can be downloaded, "
                   "else all-MiniLM-L6-v2, shipped offline")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="minibert", description=__doc__, epilog=EXIT_STATUS,
                     formatter_class=_Formatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, func, help, description, example, model=None):
        p = commands.add_parser(name, help=help, description=description, epilog=f"example:\n  {example}",
                                formatter_class=_Formatter)
        if model is not None:
            p.add_argument("--model", default=None, metavar="MODEL",
                           help=f"a checkpoint folder or Hub repo id ({model})")
        p.set_defaults(func=func)
        return p

    p = command("similarity", cmd_similarity, "cosine of a word's contextual vectors in two sentences",
                "The cosine between the vectors BERT gives WORD in two sentences: the last hidden state of "
                "its token,\nor the mean over its tokens when it is split into pieces or is several words.",
                'minibert similarity bat "The bat flew out of the cave." "He swung the bat."', ENCODER_DEFAULT)
    p.add_argument("word", metavar="WORD",
                   help="the word to compare, or several words ('home run'); matched as the tokenizer writes it, "
                        "so case and accents do not matter for an uncased model")
    p.add_argument("sentence_a", metavar="SENTENCE_A", help="the first sentence; it must contain WORD")
    p.add_argument("sentence_b", metavar="SENTENCE_B", help="the second sentence; it must contain WORD")

    p = command("fill-mask", cmd_fill_mask, "predict the token(s) behind [MASK]",
                "The likeliest tokens for each [MASK] in TEXT, with their probabilities (masked-LM head).",
                'minibert fill-mask "The capital of France is [MASK]." --top-k 3',
                f"with a masked-LM head; default: {BERT_BASE[0]}")
    p.add_argument("text", metavar="TEXT",
                   help="a text with one or more [MASK], e.g. 'The capital of France is [MASK].'")
    p.add_argument("--top-k", type=_at_least_one, default=5, metavar="K",
                   help="how many tokens to show for each [MASK], 1 to the vocabulary size (default: 5)")

    p = command("nsp", cmd_nsp, "probability that sentence B follows sentence A",
                "Next-sentence prediction: the probability that B is the sentence that follows A.",
                'minibert nsp "The man went to the store." "He bought a gallon of milk."',
                f"with a next-sentence head; default: {BERT_BASE[0]}")
    p.add_argument("a", metavar="A", help="the first sentence")
    p.add_argument("b", metavar="B", help="the sentence that may follow A")

    p = command("rerank", cmd_rerank, "rank answers to a question with a cross-encoder",
                "Score each (QUESTION, ANSWER) pair with a cross-encoder and list the answers best first.",
                'minibert rerank "Where is Paris?" "Paris is in France." "Berlin is in Germany."',
                f"a cross-encoder with one output; default: {CROSS_ENCODER[0]}")
    p.add_argument("question", metavar="QUESTION", help="the question")
    p.add_argument("answers", nargs="+", metavar="ANSWER", help="a candidate answer; give one or more, each in quotes")

    p = command("attention", cmd_attention, "heatmap of one head, every head of a layer, or attention to a token",
                "A picture of attention probabilities: one head of one layer (rows attend to columns), every\n"
                "head of a layer (--head all), or the attention every token pays to one token in every layer\n"
                f"(--to-token). Layers and heads count from 0. A text of more than {plots.MAX_TOKENS} tokens is "
                f"drawn as a window\nof {plots.MAX_TOKENS}: the first ones, or those around --to-token. With --html, a "
                "self-contained page to\nexplore every layer and head in a browser (head, model and steps views), "
                "with the input's attribution\n(integrated gradients, gradient x input) and a logit lens at [MASK] when "
                f"the checkpoint has a masked-LM or\nclassification head; at most {EXPLORER_MAX_TOKENS} tokens.",
                'minibert attention "He swung the bat." --layer 2 --head 0 -o bat.png', ENCODER_DEFAULT)
    p.add_argument("sentence", metavar="SENTENCE", help="the text to look at")
    p.add_argument("--pair", default=None, metavar="SENTENCE",
                   help="a second sentence, read as the pair [CLS] A [SEP] B [SEP] (default: none)")
    p.add_argument("--layer", type=int, default=None,
                   help="the layer to draw, counting from 0 (default: 0); all-MiniLM-L6-v2 has 0..5, bert-base 0..11")
    p.add_argument("--head", type=_head, default=None,
                   help="the head to draw, counting from 0, or 'all' for a grid of every head of the layer "
                        "(default: 0)")
    p.add_argument("--to-token", default=None, metavar="TOKEN",
                   help="instead: the attention paid to TOKEN (a token as the tokenizer writes it, e.g. bat), "
                        "mean over heads, in every layer; not with --layer or --head")
    p.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                   help="the picture to write, e.g. bat.png; in a folder it is attention.png, without an "
                        "extension it gets .png (give -o, --html or both)")
    p.add_argument("--html", type=Path, default=None, metavar="OUT.html",
                   help="also, or instead, write a self-contained HTML page that shows every layer and head, "
                        "opened on --layer and --head, e.g. bat.html; in a folder it is attention.html, without "
                        f"an extension it gets .html; at most {EXPLORER_MAX_TOKENS} tokens (default: none)")
    p.add_argument("--steps", type=_attribution_steps, default=ATTRIBUTION_STEPS, metavar="N",
                   help="with --html: the points of integrated gradients' Gauss-Legendre rule in the attribution "
                        f"view, 1 to {MAX_ATTRIBUTION_STEPS} (default: {ATTRIBUTION_STEPS})")

    p = command("diff", cmd_diff, "compare every intermediate with transformers, layer by layer",
                "Run MODEL in minibert and in transformers on TEXT, and compare every intermediate tensor.\n"
                "MODEL is the first argument (there is no --model). Exit status 1 when they disagree.",
                'minibert diff "$(minibert path)" "He swung the bat."')
    p.add_argument("checkpoint", metavar="MODEL", help="a checkpoint folder or Hub repo id")
    p.add_argument("text", metavar="TEXT", help="the text to run through both models")
    p.add_argument("--pair", default=None, metavar="SENTENCE", help="a second sentence, for a pair (default: none)")
    p.add_argument("--atol", type=_tolerance, default=1e-5,
                   help="the largest absolute difference that counts as agreeing (default: 1e-05)")

    p = command("path", cmd_path, "print the local folder of a checkpoint",
                "Print the folder that holds MODEL's files: a folder as given, or a Hub repo id's snapshot\n"
                "in the Hugging Face cache.",
                'minibert path\n  minibert diff "$(minibert path)" "He swung the bat."')
    p.add_argument("checkpoint", nargs="?", default=None, metavar="MODEL",
                   help="a checkpoint folder or Hub repo id (default: the shipped all-MiniLM-L6-v2)")

    p = command("download", cmd_download, "fetch checkpoints (Hub repo ids) into the Hugging Face cache",
                "Download checkpoints from the Hugging Face Hub into its cache: config, weights and tokenizer.\n"
                "Word vectors from gensim-data are fetched with `glove download NAME`.",
                "minibert download google-bert/bert-base-uncased cross-encoder/ms-marco-MiniLM-L6-v2")
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help="a Hub repo id (owner/name), e.g. google-bert/bert-base-uncased")

    add_exercise_command(commands, _Formatter)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except USER_ERRORS as err:
        message = " ".join(line.strip() for line in str(err).splitlines())
        print(f"minibert {args.command}: error: {message}", file=sys.stderr)
        return 1
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
