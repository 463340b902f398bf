"""SentenceEncoder.save_pretrained (minibert/speed/encode.py): a folder that sentence-transformers reads
and embeds with as the saved encoder does, and that minibert reads back.

For each pipeline (the shipped one, other pooling modes, no Normalize, do_lower_case, no max_seq_length
of its own) the encoder is saved, then three embeddings of the same texts are compared, each within
the bound tests/test_encode.py uses for encode against sentence-transformers (4 times
sentence-transformers' own float32 rounding, conftest.rounding_bound):
    SentenceTransformer(saved).encode       against the encoder that was saved;
    SentenceEncoder.from_pretrained(saved)  against SentenceTransformer(saved);
and, for the shipped model, SentenceTransformer(saved) against SentenceTransformer(original) exactly:
the weights are written back bit for bit.
"""

import json
import re

import pytest
import torch

from minibert.bert.model import BertModel
from minibert.bert.tokenizer import Tokenizer
from minibert.speed.encode import SentenceEncoder, SentencePipeline
from test_encode import MIXED_CASE, SHORT, check, mixed_texts, model_copy

TEXTS = SHORT + mixed_texts()


def sentence_transformer(folder):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


def save_and_compare(encoder: SentenceEncoder, folder, texts: list[str], label: str):
    """Save `encoder` to `folder`; check sentence-transformers and minibert on the saved folder against it."""
    encoder.save_pretrained(folder)
    reference = sentence_transformer(folder)
    check(f"{label}: saved encoder vs SentenceTransformer(saved)", encoder.encode(texts, batch_size=4), reference,
          texts, kind="saved encoder vs sentence-transformers")
    back = SentenceEncoder.from_pretrained(folder)
    check(f"{label}: from_pretrained(saved) vs SentenceTransformer(saved)", back.encode(texts, batch_size=4),
          reference, texts, kind="saved encoder vs sentence-transformers")
    return reference, back


@pytest.fixture(scope="module")
def readable(minilm_dir):
    return BertModel.from_pretrained(minilm_dir), Tokenizer.from_pretrained(minilm_dir)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "readable"])
def test_the_shipped_model_saved_and_read_back(fast, minilm_dir, tmp_path):
    encoder = SentenceEncoder.from_pretrained(minilm_dir, fast=fast)
    reference, back = save_and_compare(encoder, tmp_path / "saved", TEXTS, f"all-MiniLM-L6-v2 ({'fast' if fast else 'readable'})")
    assert back.pipeline == encoder.pipeline
    assert [type(module).__name__ for module in reference] == ["Transformer", "Pooling", "Normalize"]
    original = sentence_transformer(minilm_dir).encode(TEXTS, convert_to_tensor=True)
    assert torch.equal(reference.encode(TEXTS, convert_to_tensor=True), original)
    saved, shipped = BertModel.from_pretrained(tmp_path / "saved"), BertModel.from_pretrained(minilm_dir)
    assert all(torch.equal(a, b) for a, b in zip(saved.state_dict().values(), shipped.state_dict().values()))
    assert sorted(p.relative_to(tmp_path / "saved").as_posix() for p in (tmp_path / "saved").rglob("*")) == [
        "1_Pooling", "1_Pooling/config.json", "config.json", "model.safetensors", "modules.json",
        "sentence_bert_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"]


@pytest.mark.parametrize("pooling,written", [
    (("cls",), {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}),
    (("max", "mean"), {"pooling_mode_max_tokens": True, "pooling_mode_mean_tokens": True}),
    (("mean_sqrt_len_tokens",), {"pooling_mode_mean_sqrt_len_tokens": True}),
    (("mean", "cls"), {"pooling_mode": ["mean", "cls"]}),  # an order the flags cannot say (they put cls first)
])
@pytest.mark.parametrize("normalize", [True, False])
def test_other_pipelines(pooling, written, normalize, readable, tmp_path):
    model, tokenizer = readable
    pipeline = SentencePipeline(max_seq_length=128, pooling=pooling, normalize=normalize)
    encoder = SentenceEncoder(model, tokenizer, pipeline)
    reference, back = save_and_compare(encoder, tmp_path / "saved", TEXTS, f"pooling={pooling} normalize={normalize}")
    assert back.pipeline == pipeline
    assert reference.max_seq_length == 128
    assert (type(list(reference)[-1]).__name__ == "Normalize") is normalize
    config = json.loads((tmp_path / "saved" / "1_Pooling" / "config.json").read_text())
    assert written.items() <= config.items()


def test_a_pipeline_without_its_own_limit_is_saved_with_the_one_encode_uses(readable, tmp_path, minilm_dir):
    model, tokenizer = readable
    encoder = SentenceEncoder(model, tokenizer)  # a plain BERT's pipeline: mean, no Normalize, no max_seq_length
    reference, back = save_and_compare(encoder, tmp_path / "saved", TEXTS, "plain pipeline")
    limit = min(tokenizer.max_length, model.config.max_position_embeddings)
    assert reference.max_seq_length == limit
    assert back.pipeline == SentencePipeline(max_seq_length=limit)


def test_do_lower_case_with_a_cased_tokenizer(minilm_dir, tmp_path):
    tokenizer_json = json.loads((minilm_dir / "tokenizer.json").read_text())
    tokenizer_json["normalizer"]["lowercase"] = False
    tokenizer_config = {**json.loads((minilm_dir / "tokenizer_config.json").read_text()), "do_lower_case": False}
    folder = model_copy(minilm_dir, tmp_path / "cased", **{
        "tokenizer.json": tokenizer_json, "tokenizer_config.json": tokenizer_config,
        "sentence_bert_config.json": {"max_seq_length": 256, "do_lower_case": True}})
    encoder = SentenceEncoder.from_pretrained(folder)
    _, back = save_and_compare(encoder, tmp_path / "saved", MIXED_CASE, "do_lower_case")
    assert back.pipeline.do_lower_case is True
    unknown = back.tokenizer.backend.token_to_id("[UNK]")
    assert not (back.tokenizer(MIXED_CASE)["input_ids"] == unknown).any()  # "Bat" read as "bat"


# -- refusals, and a save that fails half-way -----------------------------------------------------

def test_a_file_path_is_refused(readable, tmp_path):
    a_file = tmp_path / "model"
    a_file.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match=rf"{re.escape(str(a_file))} is a file; save_pretrained writes"):
        SentenceEncoder(*readable).save_pretrained(a_file)
    assert a_file.read_text() == "not a folder"


def test_a_folder_with_other_files_is_left_alone(readable, tmp_path):
    folder = tmp_path / "mine"
    (folder / "notes").mkdir(parents=True)
    (folder / "notes" / "README.md").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"holds files that save_pretrained does not write \(notes/README.md\)"):
        SentenceEncoder(*readable).save_pretrained(folder)
    assert [p.name for p in folder.rglob("*")] == ["notes", "README.md"]


def test_an_int8_encoder_is_refused_before_anything_is_written(minilm_dir, tmp_path):
    encoder = SentenceEncoder.from_pretrained(minilm_dir, int8=True)
    with pytest.raises(ValueError, match=r"layer 0's qkv is Int8Linear, not the torch.float32 nn.Linear"):
        encoder.save_pretrained(tmp_path / "saved")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_save_leaves_the_previous_one_whole(readable, tmp_path, monkeypatch):
    import safetensors.torch
    from safetensors import SafetensorError

    model, tokenizer = readable
    folder = tmp_path / "saved"
    SentenceEncoder(model, tokenizer, SentencePipeline(max_seq_length=64, normalize=True)).save_pretrained(folder)
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    def full_disk(tensors, path, metadata=None):
        open(path, "wb").write(b"half")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    with pytest.raises(OSError, match="os error 28"):
        SentenceEncoder(model, tokenizer, SentencePipeline(max_seq_length=32)).save_pretrained(folder)
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]  # no temporary folder left beside it
    monkeypatch.undo()

    # A second save over a folder that a save wrote replaces it whole.
    SentenceEncoder(model, tokenizer, SentencePipeline(max_seq_length=32)).save_pretrained(folder)
    assert SentenceEncoder.from_pretrained(folder).pipeline == SentencePipeline(max_seq_length=32)
