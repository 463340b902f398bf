"""Step 3: masked-language modelling. BERT fills in a hidden word from both sides of it.

    python -m tasks.step3_masked_lm [--model FOLDER_OR_REPO] [--text "The capital of France is [MASK]."]

Needs a checkpoint with the masked-LM head (bert-base-uncased); all-MiniLM-L6-v2 has none. Where
bert-base-uncased cannot be had, the step runs on the stand-in trained here (tasks/standins/, made by
tasks/standins.py), and every line it prints says so and what to fetch.

Prints, offline (HF_HUB_OFFLINE=1, the stand-in):

    === Step 3: Masked language modelling ===
    [google-bert/bert-base-uncased is not available here; fetch it with: minibert download google-bert/...]
    model: stand-in: masked-LM and next-sentence heads trained here, 2000 steps (...), on top of a frozen
    all-MiniLM-L6-v2 (held out: masked-LM top-1 0.15 ...). The lesson's model is bert-base-uncased
    text: The man went to the [MASK] to buy a gallon of milk.
    [MASK] #1:
      ,               0.0454
      .               0.0320
      he              0.0281
      was             0.0217
      to              0.0183

(The stand-in is small: its held-out top-1 is 0.15, and here its guesses are punctuation and common words.)
"""

from minibert import BertForMaskedLM
from minibert.app.defaults import BERT_BASE
from minibert.app.pipelines import fill_mask

from ._common import heading, one_line_errors, load_head_model, parser

TEXT = "The man went to the [MASK] to buy a gallon of milk."


def run(model=None, text: str = TEXT, top_k: int = 5) -> None:
    heading(3, "Masked language modelling")
    loaded = load_head_model("masked LM", BertForMaskedLM, model, BERT_BASE, standin="masked-lm")
    if loaded is None:
        return
    print(f"text: {text}")
    for i, predictions in enumerate(fill_mask(loaded.model, loaded.tokenizer, text, top_k)):
        print(f"[MASK] #{i + 1}:")
        for token, prob in predictions:
            print(f"  {token:<15} {prob:.4f}")


@one_line_errors
def main(argv=None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--text", default=TEXT)
    args = p.parse_args(argv)
    run(args.model, args.text)


if __name__ == "__main__":
    main()
