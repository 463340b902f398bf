"""Step 5: a cross-encoder ranks answers to a question, reading each (question, answer) pair together.

    python -m tasks.step5_cross_encoder [--model FOLDER_OR_REPO]

Needs cross-encoder/ms-marco-MiniLM-L-6-v2 (a fine-tuned BertForSequenceClassification with one
label). Where it cannot be had, the step runs on the cross-encoder fine-tuned here from
all-MiniLM-L6-v2 (tasks/standins/), and every line it prints says so.

Prints, offline (HF_HUB_OFFLINE=1, the stand-in):

    === Step 5: Cross-encoder ===
    [cross-encoder/ms-marco-MiniLM-L6-v2 is not available here; fetch it with: minibert download ...]
    model: stand-in: a cross-encoder fine-tuned here from all-MiniLM-L6-v2 (rank-16 updates to every layer,
    its pooler and a new head), 2850 steps (...) (held out: accuracy@1 0.85, ...). The lesson's model is ...
    question: Where is the capital of France?
      1. 0.99915  Paris is the capital of France.
      2. 0.99896  Madrid is the capital of Spain.
      3. 0.99864  Berlin is the capital of Germany.
"""

from minibert import BertForSequenceClassification
from minibert.app.defaults import CROSS_ENCODER
from minibert.app.pipelines import rerank

from ._common import heading, one_line_errors, load_head_model, parser

QUESTION = "Where is the capital of France?"
ANSWERS = ["Paris is the capital of France.", "Berlin is the capital of Germany.", "Madrid is the capital of Spain."]


def run(model=None, question: str = QUESTION, answers=ANSWERS) -> None:
    heading(5, "Cross-encoder")
    loaded = load_head_model("cross-encoder", BertForSequenceClassification, model, CROSS_ENCODER, standin="cross-encoder")
    if loaded is None:
        return
    print(f"question: {question}")
    for rank, (answer, score) in enumerate(rerank(loaded.model, loaded.tokenizer, question, answers), 1):
        print(f"  {rank}. {score:.5f}  {answer}")


@one_line_errors
def main(argv=None) -> None:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    run(args.model)


if __name__ == "__main__":
    main()
