"""The minibert command line and the lesson's BERT steps, run offline.

The steps that need heads which do not ship (masked LM, next sentence, cross-encoder) run here on
small random checkpoints through the same code path; their printed numbers are checked against
transformers running the same checkpoint.
"""

import re

import pytest
import torch

from hf_checkpoints import hf_tokenizer_for, save_lesson_checkpoint
from minibert.app.cli import main
from tasks import step3_masked_lm as masked_lm, step4_next_sentence as next_sentence, step5_cross_encoder as cross_encoder, step6_attention as attention


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def mlm_folder(tmp_path_factory):
    return save_lesson_checkpoint("BertForMaskedLM", tmp_path_factory.mktemp("mlm"))


@pytest.fixture(scope="module")
def nsp_folder(tmp_path_factory):
    return save_lesson_checkpoint("BertForNextSentencePrediction", tmp_path_factory.mktemp("nsp"))


@pytest.fixture(scope="module")
def ce_folder(tmp_path_factory):
    return save_lesson_checkpoint("BertForSequenceClassification", tmp_path_factory.mktemp("ce"), num_labels=1)


def transformers_model(class_name, folder):
    import transformers

    return getattr(transformers, class_name).from_pretrained(folder, attn_implementation="eager").eval()


# -- minibert fill-mask / nsp / rerank on random checkpoints, checked against transformers -------

def test_fill_mask_matches_transformers(capsys, mlm_folder):
    text = "The man went to the [MASK]."
    code, out, err = run_cli(capsys, "fill-mask", text, "--model", str(mlm_folder), "--top-k", "3")
    assert code == 0, err
    assert f"model: {mlm_folder}" in out
    printed = re.findall(r"(\S+) (\d\.\d{4})", out.split("[MASK] #1: ")[1])
    tok = hf_tokenizer_for(mlm_folder)
    batch = tok(text, return_tensors="pt")
    with torch.no_grad():
        logits = transformers_model("BertForMaskedLM", mlm_folder)(**batch).logits[0]
    position = batch["input_ids"][0].tolist().index(tok.mask_token_id)
    top = torch.softmax(logits[position], -1).topk(3)
    expected = [(tok.convert_ids_to_tokens(int(i)), f"{p:.4f}") for p, i in zip(top.values, top.indices)]
    assert printed == expected


def test_nsp_matches_transformers(capsys, nsp_folder):
    a, b = "The man went to the store.", "He bought a gallon of milk."
    code, out, err = run_cli(capsys, "nsp", a, b, "--model", str(nsp_folder))
    assert code == 0, err
    tok = hf_tokenizer_for(nsp_folder)
    with torch.no_grad():
        logits = transformers_model("BertForNextSentencePrediction", nsp_folder)(**tok(a, b, return_tensors="pt")).logits
    assert f"P(B follows A) = {torch.softmax(logits[0], -1)[0].item():.4f}" in out


def test_rerank_matches_transformers(capsys, ce_folder):
    question = "Where is the capital of France?"
    answers = ["Paris is the capital of France.", "Berlin is the capital of Germany.", "Madrid is the capital of Spain."]
    code, out, err = run_cli(capsys, "rerank", question, *answers, "--model", str(ce_folder))
    assert code == 0, err
    tok = hf_tokenizer_for(ce_folder)
    with torch.no_grad():
        logits = transformers_model("BertForSequenceClassification", ce_folder)(
            **tok([question] * 3, answers, padding=True, return_tensors="pt")).logits[:, 0]
    scores = torch.sigmoid(logits).tolist()
    expected = sorted(zip(answers, scores), key=lambda p: p[1], reverse=True)
    lines = [line for line in out.splitlines() if re.match(r"\d\. ", line)]
    assert lines == [f"{i}. {s:.5f}  {a}" for i, (a, s) in enumerate(expected, 1)]


# -- the commands on the shipped all-MiniLM-L6-v2 -----------------------------------------------

def test_similarity_of_bat_on_minilm(capsys, minilm_dir):
    code, out, err = run_cli(capsys, "similarity", "bat", "The bat flew out of the cave at night.",
                             "He swung the bat and hit a home run.", "--model", str(minilm_dir))
    assert code == 0, err
    cosine = float(re.search(r"= (-?\d\.\d+)", out).group(1))
    assert cosine < 0.95  # context changes the vector


def test_similarity_reports_a_split_word(capsys, minilm_dir):
    code, out, _ = run_cli(capsys, "similarity", "flightless", "Penguins are flightless birds.",
                           "Ostriches are flightless too.", "--model", str(minilm_dir))
    assert code == 0
    assert "'flightless' is split into flight ##less: its vector is the mean of the 2 pieces" in out


def test_attention_command_writes_a_png(capsys, tmp_path, minilm_dir):
    path = tmp_path / "bat.png"
    code, out, err = run_cli(capsys, "attention", "He swung the bat.", "--layer", "1", "--head", "3",
                             "-o", str(path), "--model", str(minilm_dir))
    assert code == 0, err
    assert_real_picture(path)


def assert_real_picture(path, min_size=200):
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        assert min(image.size) >= min_size
        pixels = image.convert("L").getextrema()
        assert pixels[1] - pixels[0] > 50, "the picture is blank"


# -- errors: one line on stderr, non-zero exit ----------------------------------------------------

@pytest.mark.parametrize("argv,expected", [
    (["similarity", "cat", "a dog", "a bird"], "the word 'cat' is not in the sentence 'a dog'"),
    (["fill-mask", "no mask here"], "no [MASK] in 'no mask here'"),
    (["nsp", "a", "b", "--model", "./no/such/model"], "no checkpoint folder at"),
    (["attention", "hi", "--layer", "9", "-o", "x.png"], "--layer 9 is out of range: this model has layers 0..5"),
])
def test_errors_are_one_line(capsys, minilm_dir, mlm_folder, argv, expected):
    if "--model" not in argv:
        argv = argv + ["--model", str(mlm_folder if argv[0] == "fill-mask" else minilm_dir)]
    code, out, err = run_cli(capsys, *argv)
    assert code != 0
    assert expected in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_weights_is_one_line(capsys, empty_hub_cache):
    code, _, err = run_cli(capsys, "rerank", "q", "a")
    assert code == 1
    assert "needs cross-encoder/ms-marco-MiniLM-L6-v2" in err and "-m minibert download" in err
    assert len(err.strip().splitlines()) == 1


def test_a_base_model_has_no_masked_lm_head(capsys, minilm_dir):
    code, _, err = run_cli(capsys, "fill-mask", "The [MASK] is red.", "--model", str(minilm_dir))
    assert code == 1 and "has no weights for the head of BertForMaskedLM" in err


# -- the lesson's steps 3-6 -----------------------------------------------------------------------

def test_head_steps_say_what_they_need_offline(capsys, empty_hub_cache):
    masked_lm.run()
    next_sentence.run()
    cross_encoder.run()
    out = capsys.readouterr().out
    assert "[masked LM skipped] needs google-bert/bert-base-uncased" in out
    assert "[next sentence skipped] needs google-bert/bert-base-uncased" in out
    assert "[cross-encoder skipped] needs cross-encoder/ms-marco-MiniLM-L6-v2" in out
    assert out.count("-m minibert download") == 3


def test_head_steps_on_random_checkpoints(capsys, mlm_folder, nsp_folder, ce_folder):
    masked_lm.run(mlm_folder)
    next_sentence.run(nsp_folder)
    cross_encoder.run(ce_folder)
    out = capsys.readouterr().out
    assert "[MASK] #1:" in out
    assert out.count("P(B follows A) = ") == 2
    assert "1. " in out and "3. " in out and "Paris is the capital of France." in out


def test_attention_step_offline(capsys, tmp_path, empty_hub_cache):
    path = attention.run(output=tmp_path / "attention.png")
    out = capsys.readouterr().out
    assert "model: all-MiniLM-L6-v2 (shipped offline" in out
    assert "'bat' attends most to" in out
    assert_real_picture(path)


def test_download_offline_is_one_line(capsys, empty_hub_cache):
    code, _, err = run_cli(capsys, "download", "google-bert/bert-base-uncased")
    assert code == 1
    assert "could not download google-bert/bert-base-uncased: OfflineModeIsEnabled" in err
    assert len(err.strip().splitlines()) == 1
