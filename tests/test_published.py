"""Numbers other projects published for real checkpoints (see ../shared/REFERENCE.md).

These checkpoints (bert-base-uncased, cross-encoder/ms-marco-MiniLM-L-6-v2) do not ship offline.
Each test runs whenever its checkpoint is in the local Hugging Face cache and otherwise skips,
saying which checkpoint is missing and how to fetch it. These are the suite's only skips.
"""

import pytest
import torch
from huggingface_hub import constants, try_to_load_from_cache

import minibert

BERT_BASE = ("google-bert/bert-base-uncased", "bert-base-uncased")
MS_MARCO = ("cross-encoder/ms-marco-MiniLM-L6-v2", "cross-encoder/ms-marco-MiniLM-L-6-v2")


def cached(repo_ids: tuple[str, ...]) -> str:
    """The first of `repo_ids` whose config.json is in the local Hub cache, else skip with the reason."""
    for repo_id in repo_ids:
        if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
            return repo_id
    pytest.skip(f"needs weights: {repo_ids[0]} is not in the Hugging Face cache at {constants.HF_HUB_CACHE}; "
                f"fetch it with `hf download {repo_ids[0]}`")


def test_bert_base_integration_slice():
    """transformers tests/models/bert/test_modeling_bert.py, atol 1e-4."""
    model = minibert.BertModel.from_pretrained(cached(BERT_BASE))
    input_ids = torch.tensor([[0, 345, 232, 328, 740, 140, 1695, 69, 6078, 1588, 2]])
    attention_mask = torch.tensor([[0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        out = model(input_ids, attention_mask=attention_mask).last_hidden_state
    assert out.shape == (1, 11, 768)
    expected = torch.tensor([[[0.4249, 0.1008, 0.7531], [0.3771, 0.1188, 0.7467], [0.4152, 0.1098, 0.7108]]])
    torch.testing.assert_close(out[:, 1:4, 1:4], expected, atol=1e-4, rtol=0)


def test_bert_base_masked_lm():
    """elixir-nx/bumblebee test/bumblebee/text/bert_test.exs, atol 1e-4."""
    model = minibert.BertForMaskedLM.from_pretrained(cached(BERT_BASE))
    input_ids = torch.tensor([[101, 1996, 3007, 1997, 2605, 2003, 103, 1012, 102]])
    with torch.no_grad():
        logits = model(input_ids).logits
    expected = torch.tensor([[[-14.7240, -14.2120, -14.6434], [-10.3125, -9.7459, -9.9923],
                              [-15.1105, -14.8048, -14.9276]]])
    torch.testing.assert_close(logits[:, 1:4, 1:4], expected, atol=1e-4, rtol=0)


def test_bert_base_next_sentence():
    """elixir-nx/bumblebee test/bumblebee/text/bert_test.exs, atol 1e-4."""
    model = minibert.BertForNextSentencePrediction.from_pretrained(cached(BERT_BASE))
    input_ids = torch.tensor([[101, 1999, 3304, 10733, 2003, 2366, 4895, 14540, 6610, 2094, 1012, 102,
                               2059, 1996, 8013, 20323, 2009, 2478, 9292, 1998, 5442, 1012, 102]])
    token_type_ids = torch.tensor([[0] * 12 + [1] * 11])
    with torch.no_grad():
        logits = model(input_ids, token_type_ids=token_type_ids).logits
    torch.testing.assert_close(logits, torch.tensor([[6.1459, -5.7820]]), atol=1e-4, rtol=0)


def test_lesson_bat_cosine():
    """The lesson's notebook: "bat" in two sentences, bert-base-uncased, cosine 0.4599575."""
    repo_id = cached(BERT_BASE)
    model, tokenizer = minibert.BertModel.from_pretrained(repo_id), minibert.Tokenizer.from_pretrained(repo_id)
    vectors = []
    for sentence in ("The bat flew out of the cave at night.", "He swung the bat and hit a home run."):
        [position] = tokenizer.word_positions(sentence, "bat")
        with torch.no_grad():
            vectors.append(model(**tokenizer(sentence)).last_hidden_state[0, position[0]])
    torch.testing.assert_close(vectors[0][:5], torch.tensor([0.4131588, -0.12908243, -0.44865882, -0.4049273, -0.15305819]),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(vectors[1][:5], torch.tensor([0.64066947, -0.31121433, -0.44089764, -0.16551133, -0.20056137]),
                               atol=1e-4, rtol=0)
    cosine = torch.nn.functional.cosine_similarity(vectors[0], vectors[1], dim=0).item()
    assert cosine == pytest.approx(0.4599575, abs=1e-4)


def test_ms_marco_published_logits():
    """sentence-transformers tests/cross_encoder/test_pretrained.py: raw logits, rel 1e-4."""
    repo_id = cached(MS_MARCO)
    model = minibert.BertForSequenceClassification.from_pretrained(repo_id)
    tokenizer = minibert.Tokenizer.from_pretrained(repo_id)
    query = "is toprol xl the same as metoprolol?"
    answers = [
        "Metoprolol succinate is also known by the brand name Toprol XL. It is the extended-release form of "
        "metoprolol. Metoprolol succinate is approved to treat high blood pressure, chronic chest pain, and "
        "congestive heart failure.",
        "Pill with imprint 1 is White, Round and has been identified as Metoprolol Tartrate 25 mg.",
        "Interactions between your drugs No interactions were found between Allergy Relief and metoprolol. "
        "This does not necessarily mean no interactions exist. Always consult your healthcare provider.",
    ]
    with torch.no_grad():
        logits = model(**tokenizer([query] * 3, answers)).logits[:, 0]
    assert logits.tolist() == pytest.approx([8.12545108795166, -3.045016050338745, -3.1524128913879395], rel=1e-4)


def test_ms_marco_lesson_ranking():
    """The lesson's notebook: sigmoid scores about 0.99973, 0.03096, 0.02810; Paris wins."""
    repo_id = cached(MS_MARCO)
    model = minibert.BertForSequenceClassification.from_pretrained(repo_id)
    tokenizer = minibert.Tokenizer.from_pretrained(repo_id)
    question = "Where is the capital of France?"
    answers = ["Paris is the capital of France.", "Berlin is the capital of Germany.", "Madrid is the capital of Spain."]
    with torch.no_grad():
        scores = torch.sigmoid(model(**tokenizer([question] * 3, answers)).logits[:, 0])
    assert scores.tolist() == pytest.approx([0.99973, 0.03096, 0.02810], abs=1e-4)
