"""minibert inside a real SentenceTransformer, in place of transformers' BertModel.

sentence-transformers' Transformer module (sentence_transformers/base/modules/transformer.py) keeps
the Hugging Face model in its `model` attribute (`auto_model` is a read-only property returning it).
Its forward calls `model.forward(input_ids=, attention_mask=, token_type_ids=, return_dict=True)`,
reads `output["last_hidden_state"]`, and looks at `model.config.output_hidden_states`; the module
asks `model.config` for the embedding size. Putting minibert's BertModel into that one attribute is
the whole change: the tokenizer, the pooling and the normalisation stay sentence-transformers' own.
The embeddings must equal those of the unmodified SentenceTransformer to within 4 times its own
float32 rounding error, measured against the same SentenceTransformer in float64
(conftest.rounding_bound): minibert's eager attention and sentence-transformers' SDPA sum in other
orders, and each CPU's kernels add their own.
"""

import copy

import pytest
import torch

import minibert
from conftest import assert_close, rounding_bound

KIND = "sentence-transformers client"

SENTENCES = [
    "The bat flew out of the cave at night.",
    "He swung the bat and hit a home run.",
    "Penguins are flightless birds.",
    "Paris is the capital of France.",
    # Longer than the model's max_seq_length of 256 tokens: sentence-transformers truncates it.
    " ".join(["Word vectors place related words near each other, and attention lets every token look at"
              " every other token in the sentence before it decides what it means."] * 12),
    "Short.",
]


@pytest.fixture(scope="module")
def reference(minilm_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_dir), device="cpu")


@pytest.fixture(scope="module")
def client(minilm_dir):
    """The same SentenceTransformer, with minibert's BertModel where transformers' was."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(minilm_dir), device="cpu")
    st[0].model = minibert.BertModel.from_pretrained(minilm_dir)
    return st


def test_minibert_is_the_model_that_runs(client, reference):
    assert type(client[0].auto_model) is minibert.BertModel
    assert type(reference[0].auto_model).__module__.startswith("transformers.")
    # sentence-transformers calls model.forward itself, which skips the model's own hooks; the
    # encoder inside is called as a module, so a hook there sees every batch.
    calls = []
    handle = client[0].auto_model.encoder.register_forward_hook(lambda module, args, output: calls.append(module))
    try:
        client.encode(SENTENCES[:2])
    finally:
        handle.remove()
    assert len(calls) == 1  # one batch, through minibert


def test_the_long_sentence_is_truncated_to_256_tokens(client):
    assert client.max_seq_length == 256
    assert len(client.tokenizer(SENTENCES[4])["input_ids"]) > 256
    features = client.preprocess(SENTENCES)  # what encode feeds the model
    assert features["input_ids"].shape[1] == 256 and (features["attention_mask"] == 0).any()


@pytest.fixture(scope="module")
def encoded(client, reference):
    """Every output of one encode by each (output_value=None): per sentence, its sentence embedding
    and its token embeddings; and sentence-transformers' in float64, for the bounds. One forward pass
    each, reused by the tests below."""
    exact = copy.deepcopy(reference).double().encode(SENTENCES, output_value=None)
    return client.encode(SENTENCES, output_value=None), reference.encode(SENTENCES, output_value=None), exact


def sentence_embeddings(rows: list[dict]) -> torch.Tensor:
    return torch.stack([row["sentence_embedding"] for row in rows])  # (N, 384)


def test_sentence_embeddings_match_sentence_transformers(client, reference, encoded):
    ours, expected, exact = (sentence_embeddings(rows) for rows in encoded)
    atol = rounding_bound(expected, exact)
    assert ours.shape == (len(SENTENCES), 384) and ours.dtype == torch.float32
    assert_close("sentence embeddings", ours, expected, atol=atol, kind=KIND)
    # all-MiniLM-L6-v2 ends in a Normalize module: unit vectors, to float32's resolution (1e-6: 8 ulp)
    assert_close("norms", ours.norm(dim=1), torch.ones(len(SENTENCES)), atol=1e-6, kind=KIND)
    # A cosine of unit vectors moves no more than the vectors do, times 2.
    assert_close("cosine similarities", client.similarity(ours, ours), reference.similarity(expected, expected),
                 atol=2 * atol, kind=KIND)
    # encode's usual return, a numpy array, is the same numbers
    assert_close("encode() as numpy", torch.from_numpy(client.encode(SENTENCES[:3])), expected[:3], atol=atol, kind=KIND)


def test_token_embeddings_match_sentence_transformers(encoded):
    """The real tokens' vectors. Padding rows are left out, as encode(output_value="token_embeddings")
    leaves them out: sentence-transformers runs transformers' SDPA attention, whose outputs at padded
    positions differ from eager attention's (minibert's) by up to 1e-4 and feed into nothing."""
    ours, expected, exact = encoded
    assert ours[4]["token_embeddings"].shape == (256, 384)  # the long sentence, truncated
    for i, (a, b, c) in enumerate(zip(ours, expected, exact, strict=True)):
        assert torch.equal(a["attention_mask"], b["attention_mask"])
        real = b["attention_mask"].bool()  # (T,)
        theirs = b["token_embeddings"][real]
        assert_close(f"token embeddings of sentence {i}", a["token_embeddings"][real], theirs,
                     atol=rounding_bound(theirs, c["token_embeddings"][real]), kind=f"{KIND} (token embeddings)")


def test_small_batches_give_the_same_embeddings(client, encoded):
    """batch_size=2 pads each pair to its own length, not to the long sentence's 256."""
    ours = client.encode(SENTENCES, batch_size=2, convert_to_tensor=True)
    expected, exact = sentence_embeddings(encoded[1]), sentence_embeddings(encoded[2])  # sentence-transformers, one batch
    assert_close("sentence embeddings, batch_size=2", ours, expected, atol=rounding_bound(expected, exact), kind=KIND)


def test_what_sentence_transformers_reads_from_the_model(client, reference):
    assert client.get_embedding_dimension() == reference.get_embedding_dimension() == 384
    assert client[0].get_embedding_dimension() == 384
    assert client[0].config.model_type == reference[0].config.model_type == "bert"
    assert client.device == reference.device == torch.device("cpu")


def test_save_writes_a_folder_sentence_transformers_loads(client, reference, tmp_path):
    """SentenceTransformer.save calls model.save_pretrained(path, safe_serialization=True); the folder
    it writes must load in an unmodified SentenceTransformer and give the same embeddings."""
    from sentence_transformers import SentenceTransformer

    client.save(str(tmp_path / "saved"))
    reloaded = SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    assert type(reloaded[0].auto_model).__module__.startswith("transformers.")
    ours = reloaded.encode(SENTENCES, convert_to_tensor=True)
    expected = reference.encode(SENTENCES, convert_to_tensor=True)  # the same code on the same weights
    assert_close("embeddings after save and reload", ours, expected, atol=0.0, kind="sentence-transformers save (exact)")
