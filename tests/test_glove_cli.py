"""The glove command line as a learner meets it: help, usage errors, downloads and no network.

No test touches the network: gensim-data's folder is a temporary one, and connections are refused.
"""

import argparse
import socket

import pytest

from glove import WordVectors
from glove import defaults as glove_defaults
from glove.__main__ import build_parser, main


def run_glove(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(err, command):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"glove {command}: error: "), err
    assert "Traceback" not in err


@pytest.fixture
def gensim_data(monkeypatch, tmp_path):
    """An empty gensim-data folder, and gensim's own fetch of its list of models failing as it does offline."""
    import urllib.error

    import gensim.downloader

    folder = tmp_path / "gensim-data"
    monkeypatch.setattr(gensim.downloader, "BASE_DIR", str(folder))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(gensim.downloader, "urlopen", no_network)
    glove_defaults.load_vectors.cache_clear()
    yield folder
    glove_defaults.load_vectors.cache_clear()


@pytest.fixture
def refused(monkeypatch):
    """Every connection refused, as on a machine without network; the addresses tried are recorded."""
    calls = []

    def refuse(address, *args, **kwargs):
        calls.append(address)
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return calls


def subcommands():
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_argument_has_help_and_every_command_an_example(capsys, name):
    for action in subcommands()[name]._actions:
        assert action.help and len(action.help) > 10, f"glove {name} {action.dest} has no help"
    with pytest.raises(SystemExit):
        main([name, "--help"])
    assert f"example:\n  glove {name} " in capsys.readouterr().out


def test_help_says_the_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "\n  1  a runtime error" in out and "\n  2  a usage error found by argparse" in out


@pytest.mark.parametrize("argv", [["convert", "--model", "x", "a.txt", "b.store"], ["download", "--model", "x", "y"]])
def test_commands_without_a_model_take_no_model_option(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "unrecognized arguments: --model" in err


@pytest.mark.parametrize("topn", ["0", "-1", "ten"])
def test_topn_must_be_at_least_one(capsys, topn):
    with pytest.raises(SystemExit) as exit_:
        main(["similar", "king", "--topn", topn])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.strip() == (f"glove similar: error: argument --topn: must be a whole number of at least 1, not {topn!r} "
                           "(see: glove similar --help)")


def test_a_gensim_data_name_without_network_says_so(capsys, gensim_data, refused):
    code, _, err = run_glove(capsys, "similar", "king", "--model", "glove-twitter-25")
    assert code == 1
    assert_one_error_line(err, "similar")
    assert "glove-twitter-25 is not a file; as a gensim-data model it is not downloaded" in err
    assert "cannot be reached from here" in err and "glove download glove-twitter-25" in err
    assert "neither a file nor a gensim-data model name" not in err
    assert len(refused) == 1  # one quick probe


def test_loading_a_gensim_data_name_without_its_list_is_a_connection_error(gensim_data):
    # No probe here: gensim itself finds neither its list of models nor the network.
    with pytest.raises(ConnectionError, match="gensim-data cannot tell whether it is one of its models.*"
                                              "glove download glove-twitter-25"):
        WordVectors.load("glove-twitter-25")


def test_download_without_network_is_one_line(capsys, gensim_data, refused):
    code, _, err = run_glove(capsys, "download", "glove-twitter-25", "glove-wiki-gigaword-50")
    assert code == 1
    assert_one_error_line(err, "download")
    assert "could not download glove-twitter-25 glove-wiki-gigaword-50: gensim-data" in err
    assert "cannot be reached from here" in err
    assert len(refused) == 1


def test_download_prints_where_the_vectors_are(capsys, gensim_data, monkeypatch):
    # gensim-data's list, as gensim caches it, and a model already in its folder: nothing to fetch.
    gensim_data.mkdir()
    (gensim_data / "information.json").write_text('{"corpora": {}, "models": {"tiny-vectors": {"file_name": "tiny.gz"}}}')
    (gensim_data / "tiny-vectors").mkdir()
    code, out, err = run_glove(capsys, "download", "tiny-vectors")
    assert code == 0, err
    assert out == f"tiny-vectors: {gensim_data / 'tiny-vectors' / 'tiny.gz'}\n"
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: socket.socket())  # "reachable"
    code, _, err = run_glove(capsys, "download", "no-such-vectors")
    assert code == 1 and "'no-such-vectors' is not a gensim-data model name" in err
    assert_one_error_line(err, "download")


def test_the_lesson_note_fetches_with_glove(capsys, gensim_data, refused, tmp_path):
    code, out, _ = run_glove(capsys, "similar", "king", "--topn", "1")
    assert code == 0
    assert "Fetch the lesson's vectors with: " in out and "glove download glove-wiki-gigaword-100]" in out
    assert "minibert" not in out


def test_plot_into_a_folder_prints_the_file(capsys, tmp_path, gensim_test_glove):
    code, out, err = run_glove(capsys, "plot", "the", "of", "and", "-o", str(tmp_path), "--model", str(gensim_test_glove))
    assert code == 0, err
    assert out.endswith(f"picture: {tmp_path / 'words.png'}\n") and (tmp_path / "words.png").stat().st_size > 1000
    missing = tmp_path / "missing" / "w.png"
    code, _, err = run_glove(capsys, "plot", "the", "of", "and", "-o", str(missing), "--model", str(gensim_test_glove))
    assert code == 1 and f"cannot write {missing}: the folder {missing.parent} does not exist" in err
    assert_one_error_line(err, "plot")


def test_a_library_warning_is_one_line_at_the_command_line(capsys, tmp_path):
    path = tmp_path / "dup.txt"
    path.write_text("king 1 0\nqueen 0 1\nking 1 1\n")  # king twice: the first is kept, with a warning
    code, out, err = run_glove(capsys, "similar", "queen", "--model", str(path))
    assert code == 0 and out.splitlines()[-1].split() == ["0.0000", "king"]
    # was: "/.../glove/store.py:143: UserWarning: ..." and a line of store.py's source
    assert err.splitlines() == [f"glove similar: warning: {path}: 1 duplicate words ignored (the first of each is "
                                "kept), e.g. ['king']"]


def test_a_folder_given_as_the_vectors_is_one_line_that_says_so(capsys, tmp_path):
    code, _, err = run_glove(capsys, "similar", "king", "--model", str(tmp_path))
    assert code == 1  # was: "no such word-vector file", for a folder that exists
    assert err.splitlines() == [f"glove similar: error: {tmp_path} is a folder; give a word-vector file in it "
                                "(GloVe or word2vec text, word2vec binary, or a saved store)"]


def test_similar_with_no_other_word_says_so(capsys, tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("a 1 0\nb 0 0\n")  # b has no direction: a has nothing to be compared with
    assert WordVectors.load(path).most_similar("a") == []  # as gensim gives it (tests/test_glove_parity.py)
    code, out, err = run_glove(capsys, "similar", "a", "--model", str(path))
    assert code == 0 and out.splitlines()[-1] == "(no other word with a direction to compare 'a' with)", out


def test_plot_takes_two_words_as_pca_does(capsys, tmp_path, gensim_test_glove):
    code, out, err = run_glove(capsys, "plot", "the", "of", "-o", str(tmp_path / "two.png"),
                               "--model", str(gensim_test_glove))
    assert code == 0, err  # was: "plot needs at least 3 words for a 2-D PCA"
    assert (tmp_path / "two.png").stat().st_size > 1000
    code, _, err = run_glove(capsys, "plot", "the", "-o", str(tmp_path / "one.png"), "--model", str(gensim_test_glove))
    assert code == 1
    assert_one_error_line(err, "plot")
    assert "plot needs at least 2 words for a 2-D PCA, not 1" in err


@pytest.mark.parametrize("name,expected", [("v.txt", "glove"), ("v.bin", "word2vec-binary"), ("v.store", "store"),
                                           ("v.vectors", "store")])
def test_convert_takes_the_format_from_the_output_name(capsys, tmp_path, gensim_test_glove, name, expected):
    from glove import formats

    output = tmp_path / name
    code, out, err = run_glove(capsys, "convert", str(gensim_test_glove), str(output))
    assert code == 0, err
    assert formats.detect_format(output) == expected  # was: the store's format, whatever the name
    assert out == f"wrote 76 words x 50 dimensions to {output} ({expected})\n"
    assert WordVectors.load(output).index_to_key == WordVectors.load(gensim_test_glove).index_to_key


def test_convert_keeps_word2vec_text_for_word2vec_input(capsys, tmp_path, gensim_test_glove):
    from glove import formats

    binary, text = tmp_path / "s.bin", tmp_path / "s.txt"
    WordVectors.load(gensim_test_glove).save(binary, format="word2vec-binary")
    code, out, err = run_glove(capsys, "convert", str(binary), str(text))
    assert code == 0, err
    assert formats.detect_format(text) == "word2vec" and out.endswith("(word2vec)\n")
    code, out, err = run_glove(capsys, "convert", str(binary), str(tmp_path / "g.txt"), "--format", "glove")
    assert code == 0 and formats.detect_format(tmp_path / "g.txt") == "glove", err


@pytest.mark.parametrize("name,fmt,names", [("s.txt", "store", "text (glove or word2vec)"),
                                            ("s.txt", "word2vec-binary", "text (glove or word2vec)"),
                                            ("s.bin", "glove", "word2vec-binary"), ("s.store", "word2vec", "store")])
def test_convert_refuses_a_format_the_output_name_contradicts(capsys, tmp_path, gensim_test_glove, name, fmt, names):
    output = tmp_path / name
    code, _, err = run_glove(capsys, "convert", str(gensim_test_glove), str(output), "--format", fmt)
    assert code == 1 and not output.exists()
    assert_one_error_line(err, "convert")
    assert err.strip() == (f"glove convert: error: format {fmt!r} does not match the name {output}, whose "
                           f"{output.suffix} says {names}; rename the file or change the format")
