"""minibert against transformers on real weights: sentence-transformers/all-MiniLM-L6-v2, shipped offline.

The model is loaded twice, from its folder and by repo id through huggingface_hub's cache; each
must reproduce every hidden state and every attention probability of transformers (eager, float32,
eval mode) to 1e-5, for a padded batch of sentences and for sentence pairs with token types.
"""

import pytest
import torch

import minibert
from conftest import MINILM_REPO_ID, assert_close

SENTENCES = [
    "The bat flew out of the cave at night.",
    "He swung the bat and hit a home run.",
    "Penguins are flightless birds.",
    "BERT gives each token a vector shaped by the words around it, on both sides.",
]
PAIRS = [
    ("The man went to the store.", "He bought a gallon of milk."),
    ("The man went to the store.", "Penguins are flightless birds."),
    ("Where is the capital of France?", "Paris is the capital of France."),
]


@pytest.fixture(scope="module")
def reference(minilm_dir):
    import transformers

    model = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager")
    return model.float().eval()


@pytest.fixture(scope="module")
def hf_tokenizer(minilm_dir):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def model_from_folder(minilm_dir):
    return minibert.BertModel.from_pretrained(minilm_dir)


@pytest.fixture
def model_from_hub(hub_cache):
    return minibert.BertModel.from_pretrained(MINILM_REPO_ID)


def batches(tokenizer):
    yield "sentences", tokenizer(SENTENCES)
    yield "pairs", tokenizer([a for a, _ in PAIRS], [b for _, b in PAIRS])


def compare(model, reference, tokenizer):
    for label, batch in batches(tokenizer):
        assert batch["attention_mask"].min() == 0, f"{label}: the batch should contain padding"
        with torch.no_grad():
            ours = model(**batch, output_attentions=True, output_hidden_states=True)
            expected = reference(**batch, output_attentions=True, output_hidden_states=True)
        assert_close(f"{label} last_hidden_state", ours.last_hidden_state, expected.last_hidden_state, kind="all-MiniLM-L6-v2")
        assert_close(f"{label} pooler_output", ours.pooler_output, expected.pooler_output, kind="all-MiniLM-L6-v2")
        assert len(ours.hidden_states) == len(expected.hidden_states) == 7
        for i, (a, b) in enumerate(zip(ours.hidden_states, expected.hidden_states)):
            assert_close(f"{label} hidden_states[{i}]", a, b, kind="all-MiniLM-L6-v2")
        assert len(ours.attentions) == len(expected.attentions) == 6
        for i, (a, b) in enumerate(zip(ours.attentions, expected.attentions)):
            assert a.shape == (batch["input_ids"].shape[0], 12, batch["input_ids"].shape[1], batch["input_ids"].shape[1])
            assert_close(f"{label} attentions[{i}]", a, b, kind="all-MiniLM-L6-v2")


def test_folder_load_matches_transformers(model_from_folder, reference, minilm_dir):
    compare(model_from_folder, reference, minibert.Tokenizer.from_pretrained(minilm_dir))


def test_repo_id_load_matches_transformers(model_from_hub, reference):
    assert "Hub repo sentence-transformers/all-MiniLM-L6-v2" in model_from_hub.load_report.source
    compare(model_from_hub, reference, minibert.Tokenizer.from_pretrained(MINILM_REPO_ID))


def test_load_report(model_from_folder):
    report = model_from_folder.load_report
    assert report.loaded == 103  # 104 tensors in the file, less the stale position_ids buffer
    assert report.ignored_buffers == ["embeddings.position_ids"]
    assert not model_from_folder.training


def test_tokenizer_matches_transformers(minilm_dir, hf_tokenizer):
    tok = minibert.Tokenizer.from_pretrained(minilm_dir)
    ours = tok(SENTENCES)
    theirs = hf_tokenizer(SENTENCES, padding=True, return_tensors="pt")
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert torch.equal(ours[key], theirs[key]), key
    a, b = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    ours, theirs = tok(a, b), hf_tokenizer(a, b, padding=True, return_tensors="pt")
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert torch.equal(ours[key], theirs[key]), key
    assert tok.tokenize("Penguins are flightless birds.") == hf_tokenizer.tokenize("Penguins are flightless birds.")
