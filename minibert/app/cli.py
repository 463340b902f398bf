"""The minibert command line: try BERT on your own words, sentences and questions.

    minibert similarity bat "The bat flew out of the cave." "He swung the bat."
    minibert fill-mask "The capital of France is [MASK]."
    minibert nsp "The man went to the store." "He bought a gallon of milk."
    minibert rerank "Where is the capital of France?" "Paris is the capital of France." "Berlin is in Germany."
    minibert attention "He swung the bat and hit a home run." --layer 2 --head 0 -o bat.png
    minibert attention "He swung the bat." --layer 2 --head all -o heads.png     # every head of layer 2
    minibert attention "He swung the bat." --to-token bat -o to-bat.png          # attention to "bat", layer by layer
    minibert diff sentence-transformers/all-MiniLM-L6-v2 "The bat flew."         # every intermediate vs transformers
    minibert download google-bert/bert-base-uncased cross-encoder/ms-marco-MiniLM-L6-v2

Every command but diff takes --model (a checkpoint folder or a Hub repo id). Without it, the lesson's model
is used when it can be had, or all-MiniLM-L6-v2 (shipped offline) where an encoder is enough.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..bert.config import ConfigError
from .defaults import BERT_BASE, CROSS_ENCODER, ModelUnavailable, download, load
from ..bert.pretrained import CheckpointError, CheckpointNotFoundError
from ..bert.model import BertForMaskedLM, BertForNextSentencePrediction, BertForSequenceClassification, BertModel
from .pipelines import (InputError, attention_map, check_layer_head, cosine, fill_mask, next_sentence,
                        plot_attention, plot_attention_grid, plot_attention_to_token, rerank, word_vector)


def cmd_similarity(args) -> None:
    loaded = load(BertModel, args.model, BERT_BASE, offline_default=True)
    print(f"model: {loaded.name}")
    a, pieces_a = word_vector(loaded.model, loaded.tokenizer, args.sentence_a, args.word)
    b, pieces_b = word_vector(loaded.model, loaded.tokenizer, args.sentence_b, args.word)
    for pieces in (pieces_a, pieces_b):
        if len(pieces) > 1:
            print(f"'{args.word}' is split into {' '.join(pieces)}: its vector is the mean of the {len(pieces)} pieces")
    print(f"cosine('{args.word}' in A, '{args.word}' in B) = {cosine(a, b):.4f}")


def cmd_fill_mask(args) -> None:
    loaded = load(BertForMaskedLM, args.model, BERT_BASE, offline_default=False)
    print(f"model: {loaded.name}")
    for i, predictions in enumerate(fill_mask(loaded.model, loaded.tokenizer, args.text, args.top_k)):
        print(f"[MASK] #{i + 1}: " + ", ".join(f"{token} {prob:.4f}" for token, prob in predictions))


def cmd_nsp(args) -> None:
    loaded = load(BertForNextSentencePrediction, args.model, BERT_BASE, offline_default=False)
    print(f"model: {loaded.name}")
    p = next_sentence(loaded.model, loaded.tokenizer, args.a, args.b)
    print(f"P(B follows A) = {p:.4f} -> {'true' if p >= 0.5 else 'false'}")


def cmd_rerank(args) -> None:
    loaded = load(BertForSequenceClassification, args.model, CROSS_ENCODER, offline_default=False)
    print(f"model: {loaded.name}")
    for rank, (answer, score) in enumerate(rerank(loaded.model, loaded.tokenizer, args.question, args.answers), 1):
        print(f"{rank}. {score:.5f}  {answer}")


def cmd_attention(args) -> None:
    loaded = load(BertModel, args.model, BERT_BASE, offline_default=True)
    print(f"model: {loaded.name}")
    tokens, attentions = attention_map(loaded.model, loaded.tokenizer, args.sentence, args.pair)  # (L, nh, T, T)
    if args.to_token is not None:
        if args.to_token not in tokens:
            raise InputError(f"the token {args.to_token!r} is not among the tokens {tokens}")
        plot_attention_to_token(tokens, attentions, tokens.index(args.to_token), args.output,
                                title=f"attention to '{args.to_token}' across layers\n{loaded.name}")
    elif args.head == "all":
        check_layer_head(attentions, args.layer, 0)
        plot_attention_grid(tokens, attentions[args.layer], args.output, title=f"{loaded.name}, layer {args.layer}")
    else:
        check_layer_head(attentions, args.layer, int(args.head))
        plot_attention(tokens, attentions[args.layer, int(args.head)], args.output,
                       title=f"{loaded.name}\nlayer {args.layer}, head {args.head}")
    print(f"picture: {args.output}")


def cmd_diff(args) -> int:
    import transformers

    from ..bert.model import BertModel as MiniBertModel
    from ..bert.tokenizer import Tokenizer
    from ..inside.trace import diff, first_divergence, format_rows

    model = MiniBertModel.from_pretrained(args.checkpoint)
    tokenizer = Tokenizer.from_pretrained(args.checkpoint)
    path = model.load_report.files[0].rsplit("/", 1)[0]  # the resolved folder, so transformers reads the same files
    reference = transformers.BertModel.from_pretrained(path, attn_implementation="eager").float().eval()
    rows = diff(model, reference, tokenizer(args.text, args.pair), atol=args.atol)
    print(format_rows(rows, args.atol))
    return 1 if first_divergence(rows) else 0


def cmd_download(args) -> None:
    names = args.models + ([args.model] if args.model else [])
    if not names:
        raise InputError("name at least one model to download, e.g. google-bert/bert-base-uncased")
    for name in names:
        try:
            if "/" in name:
                where = download(name)
            else:  # a gensim-data name such as glove-wiki-gigaword-100
                import gensim.downloader

                where = gensim.downloader.load(name, return_path=True)
        except Exception as err:  # network, offline mode, unknown name: one line, not a traceback
            raise ModelUnavailable(f"could not download {name}: {type(err).__name__}: {err}") from None
        print(f"{name}: {where}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minibert", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name, func, help):
        p = commands.add_parser(name, help=help)
        p.add_argument("--model", default=None, help="checkpoint folder or Hub repo id")
        p.set_defaults(func=func)
        return p

    p = command("similarity", cmd_similarity, "cosine of a word's contextual vectors in two sentences")
    p.add_argument("word")
    p.add_argument("sentence_a")
    p.add_argument("sentence_b")
    p = command("fill-mask", cmd_fill_mask, "predict the token(s) behind [MASK]")
    p.add_argument("text")
    p.add_argument("--top-k", type=int, default=5)
    p = command("nsp", cmd_nsp, "probability that sentence B follows sentence A")
    p.add_argument("a")
    p.add_argument("b")
    p = command("rerank", cmd_rerank, "rank answers to a question with a cross-encoder")
    p.add_argument("question")
    p.add_argument("answers", nargs="+")
    p = command("attention", cmd_attention, "heatmap of one layer and head")
    p.add_argument("sentence")
    p.add_argument("--pair", default=None, help="a second sentence, for a pair")
    p.add_argument("--layer", type=int, default=0)
    p.add_argument("--head", default="0", help="a head number, or 'all' for a grid of every head in the layer")
    p.add_argument("--to-token", default=None, help="instead: attention paid to this token, across all layers")
    p.add_argument("-o", "--output", type=Path, required=True)
    p = commands.add_parser("diff", help="compare every intermediate with transformers, layer by layer")
    p.add_argument("checkpoint", help="checkpoint folder or Hub repo id")
    p.add_argument("text")
    p.add_argument("--pair", default=None, help="a second sentence, for a pair")
    p.add_argument("--atol", type=float, default=1e-5)
    p.set_defaults(func=cmd_diff)
    p = command("download", cmd_download, "fetch checkpoints (Hub repo ids) or gensim-data vectors into their caches")
    p.add_argument("models", nargs="*")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except (InputError, ModelUnavailable, CheckpointNotFoundError, CheckpointError, ConfigError, ValueError) as err:
        message = " ".join(line.strip() for line in str(err).splitlines())
        print(f"minibert {args.command}: error: {message}", file=sys.stderr)
        return 1
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
