"""Bad input: each case gets an error that names what is wrong and where."""

import json
import shutil

import pytest
import torch

import minibert
from hf_checkpoints import current_state, make_hf_model, save_current, save_safetensors


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small BertModel checkpoint saved by transformers."""
    return save_current(make_hf_model("BertModel"), tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def tiny_model(tiny):
    return minibert.BertModel.from_pretrained(tiny)


def copy_checkpoint(src, dst):
    shutil.copytree(src, dst)
    return dst


# -- where the checkpoint is --------------------------------------------------------------------

def test_missing_folder(tmp_path):
    with pytest.raises(minibert.CheckpointNotFoundError, match="no checkpoint folder at .*nowhere"):
        minibert.BertModel.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(minibert.CheckpointNotFoundError, match="no checkpoint folder at /.*/nowhere"):
        minibert.BertModel.from_pretrained("./nowhere")


def test_folder_that_is_not_a_checkpoint(tmp_path):
    with pytest.raises(minibert.CheckpointNotFoundError, match=f"{tmp_path} is not a checkpoint folder: it has no config.json"):
        minibert.BertModel.from_pretrained(tmp_path)


def test_file_instead_of_folder(tiny):
    with pytest.raises(minibert.CheckpointNotFoundError, match="is a file"):
        minibert.BertModel.from_pretrained(tiny / "config.json")


def test_folder_without_weights(tmp_path, tiny):
    shutil.copy(tiny / "config.json", tmp_path / "config.json")
    with pytest.raises(minibert.CheckpointNotFoundError, match="has config.json but no weights: looked for model.safetensors"):
        minibert.BertModel.from_pretrained(tmp_path)


def test_repo_absent_offline(empty_hub_cache):
    with pytest.raises(minibert.CheckpointNotFoundError) as err:
        minibert.BertForMaskedLM.from_pretrained("google-bert/bert-base-uncased")
    message = str(err.value)
    assert "google-bert/bert-base-uncased is not in the Hugging Face cache" in message
    assert str(empty_hub_cache) in message  # where it looked
    assert "HF_HUB_OFFLINE=1" in message
    assert "hf download google-bert/bert-base-uncased" in message  # how to get it
    with pytest.raises(minibert.CheckpointNotFoundError, match="not in the Hugging Face cache"):
        minibert.Tokenizer.from_pretrained("google-bert/bert-base-uncased")


# -- what is in the files -----------------------------------------------------------------------

def test_truncated_safetensors(tmp_path, tiny):
    folder = copy_checkpoint(tiny, tmp_path / "ckpt")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(minibert.CheckpointError, match=r"model\.safetensors: not a readable safetensors file"):
        minibert.BertModel.from_pretrained(folder)


def test_corrupt_safetensors(tmp_path, tiny):
    folder = copy_checkpoint(tiny, tmp_path / "ckpt")
    (folder / "model.safetensors").write_bytes(b"\x07\x00\x00\x00\x00\x00\x00\x00garbage" * 10)
    with pytest.raises(minibert.CheckpointError, match=f"{folder / 'model.safetensors'}: not a readable"):
        minibert.BertModel.from_pretrained(folder)


def test_corrupt_bin(tmp_path, tiny):
    shutil.copy(tiny / "config.json", tmp_path / "config.json")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not a pickle")
    with pytest.raises(minibert.CheckpointError, match=r"pytorch_model\.bin: cannot be read with torch\.load"):
        minibert.BertModel.from_pretrained(tmp_path)


def test_wrong_shape_missing_and_unexpected_tensors_in_one_error(tmp_path, tiny):
    state = current_state(tiny)
    state["encoder.layer.0.attention.self.query.weight"] = torch.zeros(32, 31)
    del state["encoder.layer.1.output.dense.bias"]
    state["encoder.layer.7.extra.weight"] = torch.zeros(3)
    import transformers

    config = transformers.BertConfig.from_pretrained(tiny)
    folder = save_safetensors(state, config, tmp_path / "broken")
    with pytest.raises(minibert.CheckpointError) as err:
        minibert.BertModel.from_pretrained(folder)
    message = str(err.value)
    assert "does not fit BertModel" in message
    assert "wrong shape encoder.layer.0.attention.self.query.weight: expected (32, 32), found (32, 31)" in message
    assert "missing     encoder.layer.1.output.dense.bias: expected (32,), found nothing" in message
    assert "unexpected  encoder.layer.7.extra.weight: expected nothing, found (3,)" in message


def test_missing_head_is_an_error_unless_asked(tiny):
    with pytest.raises(minibert.CheckpointError) as err:
        minibert.BertForSequenceClassification.from_pretrained(tiny)
    assert "has no weights for the head of BertForSequenceClassification (missing classifier.weight, classifier.bias)" in str(err.value)
    assert "init_new_head=True" in str(err.value)
    model = minibert.BertForSequenceClassification.from_pretrained(tiny, init_new_head=True)
    assert sorted(model.load_report.initialised) == ["classifier.bias", "classifier.weight"]
    # The encoder still came from the file.
    base = minibert.BertModel.from_pretrained(tiny)
    assert torch.equal(model.bert.encoder.layer[0].attention.self.query.weight,
                       base.encoder.layer[0].attention.self.query.weight)


def test_init_new_head_does_not_excuse_a_missing_encoder_tensor(tmp_path, tiny):
    state = current_state(tiny)
    del state["embeddings.LayerNorm.weight"]
    import transformers

    folder = save_safetensors(state, transformers.BertConfig.from_pretrained(tiny), tmp_path / "broken")
    with pytest.raises(minibert.CheckpointError, match="missing     bert.embeddings.LayerNorm.weight"):
        minibert.BertForSequenceClassification.from_pretrained(folder, init_new_head=True)


def test_tied_copies_that_disagree(tmp_path):
    reference = make_hf_model("BertForMaskedLM")
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    state["cls.predictions.decoder.weight"] += 1.0  # no longer the embedding matrix
    folder = save_safetensors(state, reference.config, tmp_path / "untied")
    with pytest.raises(minibert.CheckpointError, match="bert.embeddings.word_embeddings.weight and its tied copy"):
        minibert.BertForMaskedLM.from_pretrained(folder)


# -- config.json --------------------------------------------------------------------------------

def edit_config(tmp_path, tiny, **changes):
    folder = copy_checkpoint(tiny, tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_unknown_hidden_act(tmp_path, tiny):
    folder = edit_config(tmp_path, tiny, hidden_act="mish")
    with pytest.raises(minibert.ConfigError, match=r"config\.json: hidden_act='mish' is not implemented; supported: gelu"):
        minibert.BertModel.from_pretrained(folder)


def test_relative_position_embeddings_are_refused(tmp_path, tiny):
    folder = edit_config(tmp_path, tiny, position_embedding_type="relative_key")
    with pytest.raises(minibert.ConfigError, match="position_embedding_type='relative_key' is not implemented"):
        minibert.BertModel.from_pretrained(folder)


def test_decoder_config_is_refused(tmp_path, tiny):
    folder = edit_config(tmp_path, tiny, is_decoder=True)
    with pytest.raises(minibert.ConfigError, match="is_decoder is set"):
        minibert.BertModel.from_pretrained(folder)


def test_unknown_config_key_is_kept_with_a_warning(tmp_path, tiny):
    folder = edit_config(tmp_path, tiny, my_new_setting=3)
    with pytest.warns(UserWarning, match=r"not used by minibert, kept in config.extra: \['my_new_setting'\]"):
        model = minibert.BertModel.from_pretrained(folder)
    assert model.config.extra["my_new_setting"] == 3


def test_invalid_json(tmp_path, tiny):
    folder = copy_checkpoint(tiny, tmp_path / "ckpt")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(minibert.ConfigError, match=r"config\.json: not valid JSON"):
        minibert.BertModel.from_pretrained(folder)


# -- forward inputs -----------------------------------------------------------------------------

def test_sequence_longer_than_position_table(tiny_model):
    ids = torch.ones(1, 41, dtype=torch.long)  # the tiny model has 40 positions
    with pytest.raises(ValueError, match="input_ids has 41 tokens, more than max_position_embeddings=40"):
        tiny_model(ids)


def test_token_id_outside_vocabulary(tiny_model):
    ids = torch.tensor([[1, 2, 3], [4, 99, 5]])
    with pytest.raises(ValueError, match=r"input_ids\[1, 1\] = 99 is outside the vocabulary \[0, 99\)"):
        tiny_model(ids)
    with pytest.raises(ValueError, match=r"input_ids\[0, 0\] = -1 is outside"):
        tiny_model(torch.tensor([[-1, 2]]))


def test_mask_shape_differs_from_ids(tiny_model):
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 4\) but input_ids has shape \(2, 5\)"):
        tiny_model(torch.ones(2, 5, dtype=torch.long), attention_mask=torch.ones(2, 4))


def test_token_type_outside_range(tiny_model):
    with pytest.raises(ValueError, match=r"token_type_ids holds values outside \[0, 2\)"):
        tiny_model(torch.ones(1, 3, dtype=torch.long), token_type_ids=torch.tensor([[0, 1, 2]]))


def test_input_ids_must_be_a_2d_integer_tensor(tiny_model):
    with pytest.raises(ValueError, match=r"must be a \(batch, length\) tensor, got \(5,\)"):
        tiny_model(torch.ones(5, dtype=torch.long))
    with pytest.raises(TypeError, match="integer token ids, got dtype torch.float32"):
        tiny_model(torch.ones(1, 5))
