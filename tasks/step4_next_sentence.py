"""Step 4: next-sentence prediction. Does sentence B follow sentence A?

    python -m tasks.step4_next_sentence [--model FOLDER_OR_REPO]

Needs a checkpoint with the next-sentence head (bert-base-uncased). Where it cannot be had, the
step runs on the stand-in trained here (tasks/standins/), and every line it prints says so.

Prints, offline (HF_HUB_OFFLINE=1, the stand-in):

    === Step 4: Next-sentence prediction ===
    [google-bert/bert-base-uncased is not available here; fetch it with: minibert download google-bert/...]
    model: stand-in: masked-LM and next-sentence heads trained here, 2000 steps (...), on top of a frozen
    all-MiniLM-L6-v2 (held out: ...; next sentence 0.76 against 0.50 for chance). The lesson's model is ...
    A: The man went to the store.
    B: He bought a gallon of milk.
      P(B follows A) = 0.6078 -> true
    A: The man went to the store.
    B: Penguins are flightless birds.
      P(B follows A) = 0.8339 -> true

(The stand-in is right on 76% of held-out pairs; on the second pair here the lesson's answer is "no".)
"""

from minibert import BertForNextSentencePrediction
from minibert.app.defaults import BERT_BASE
from minibert.app.pipelines import next_sentence

from ._common import heading, one_line_errors, load_head_model, parser

PAIRS = [
    ("The man went to the store.", "He bought a gallon of milk."),  # the lesson: true
    ("The man went to the store.", "Penguins are flightless birds."),  # the lesson: false
]


def run(model=None, pairs=PAIRS) -> None:
    heading(4, "Next-sentence prediction")
    loaded = load_head_model("next sentence", BertForNextSentencePrediction, model, BERT_BASE, standin="masked-lm")
    if loaded is None:
        return
    for a, b in pairs:
        p = next_sentence(loaded.model, loaded.tokenizer, a, b)
        verdict = "true" if p >= 0.5 else "false"
        print(f"A: {a}\nB: {b}\n  P(B follows A) = {p:.4f} -> {verdict}")


@one_line_errors
def main(argv=None) -> None:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    run(args.model)


if __name__ == "__main__":
    main()
