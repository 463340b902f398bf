"""SentenceEncoder (minibert/speed/encode.py) against sentence-transformers itself, on all-MiniLM-L6-v2.

The reference is `SentenceTransformer(folder).encode(texts, convert_to_tensor=True)`, loaded from the
same folder as minibert. The variants (other pooling modes, no Normalize, do_lower_case, a cased
tokenizer) are copies of the shipped folder with one file changed, the weights linked, not copied.

Every comparison prints its maximum absolute difference (`pytest -s` shows them). Both sides run
float32 BERT on the same weights, but not the same kernels: the padding of each batch, the fast
path's fused products and each CPU's choice of kernels (oneDNN and MKL pick them per CPU) change the
order of some sums. That moves unit-length embeddings by about 2e-7 and unnormalized ones (up to
|1.3|) by about 1e-6 (1.46e-6 on an Intel Xeon with AMX), as much as sentence-transformers moves
between two batch sizes. So no fixed bound is right everywhere: each comparison allows 4 times
sentence-transformers' own float32 rounding error, measured against the same encode in float64
(conftest.rounding_bound).
"""

import copy
import doctest
import json
import shutil
import weakref
from pathlib import Path

import pytest
import torch

from conftest import MINILM_REPO_ID, MINILM_TEST_COMMIT, assert_close, rounding_bound
from minibert.bert.files import CheckpointError
from minibert.speed import encode as encode_module
from minibert.speed.encode import SentenceEncoder, SentencePipeline, encode

KIND = "encode vs sentence-transformers"

SHORT = ["Hi.", "The bat flew out of the cave at night.", "He swung the bat and hit a home run."]
MIXED_CASE = ["The Bat FLEW out of the Cave.", "PENGUINS are Flightless Birds [SEP] really.", "hello WORLD"]
PARAGRAPH = ("The bat flew out of the cave at night. He swung the bat and hit a home run. Penguins are "
             "flightless birds, and they cannot fly however hard they try. BERT gives each token a vector "
             "shaped by the words around it, on both sides. ")


def check(name: str, ours: torch.Tensor, reference, texts: list[str], kind: str = KIND, **options) -> float:
    """`ours` against `reference.encode(texts, **options)` (a SentenceTransformer), within 4 times the
    reference's own float32 rounding error (against the same encode in float64)."""
    twin = in_float64(reference)
    twin.max_seq_length = reference.max_seq_length  # a test may change it on the reference
    expected = reference.encode(texts, convert_to_tensor=True, **options)
    exact = twin.encode(texts, convert_to_tensor=True, **options)
    error = assert_close(name, ours, expected, atol=rounding_bound(expected, exact), kind=kind)
    print(f"\n{name}: max abs diff {error:.3g}")
    return error


FLOAT64_COPIES = weakref.WeakKeyDictionary()  # a SentenceTransformer -> its float64 copy, while it lives


def in_float64(reference):
    """A float64 copy of a SentenceTransformer, made once per reference (a copy takes about a second) and
    dropped with it (the variants of the folder are made per test)."""
    if reference not in FLOAT64_COPIES:
        FLOAT64_COPIES[reference] = copy.deepcopy(reference).double()
    return FLOAT64_COPIES[reference]


@pytest.fixture(scope="module")
def reference(minilm_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_dir), device="cpu")


@pytest.fixture(scope="module")
def encoders(minilm_dir):
    return {"fast": SentenceEncoder.from_pretrained(minilm_dir),
            "readable": SentenceEncoder.from_pretrained(minilm_dir, fast=False)}


def text_of_tokens(encoder: SentenceEncoder, n: int) -> str:
    """The shortest prefix of the repeated PARAGRAPH that is `n` word pieces long (at least)."""
    words = (PARAGRAPH * (n // 20)).split()
    low, high = 1, len(words)
    while low < high:  # bisect on the number of words
        middle = (low + high) // 2
        if len(encoder.tokenizer.tokenize(" ".join(words[:middle]))) >= n:
            high = middle
        else:
            low = middle + 1
    return " ".join(words[:low])


@pytest.fixture(scope="module")
def long_texts(encoders):
    texts = [text_of_tokens(encoders["fast"], 400), "A short text between two long ones.",
             text_of_tokens(encoders["fast"], 600)]
    assert [len(encoders["fast"].tokenizer.tokenize(t)) for t in texts][::2] == [400, 600]
    return texts


def mixed_texts():
    """Texts of very different lengths, in an order that sorting by length must change."""
    words = "the bat flew out of a dark cave and over the quiet town while people slept".split()
    return [" ".join(words[: 1 + (7 * i) % len(words)]) + "." for i in range(11)]


def model_copy(source: Path, destination: Path, **changed) -> Path:
    """`source` with its files linked into `destination`, except those in `changed` (relative path,
    with "__" for "/", -> JSON value or raw text), which are written instead. None removes a file."""
    changed = {name.replace("__", "/"): value for name, value in changed.items()}
    for path in source.rglob("*"):
        relative = path.relative_to(source).as_posix()
        if path.is_file() and relative not in changed:
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            (destination / relative).symlink_to(path)
    for relative, value in changed.items():
        if value is not None:
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            (destination / relative).write_text(value if isinstance(value, str) else json.dumps(value))
    return destination


def compare_folder(folder: Path, texts: list[str], label: str):
    """Both minibert paths against SentenceTransformer, all three loaded from `folder`: returns them."""
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(folder), device="cpu")
    encoders = {path: SentenceEncoder.from_pretrained(folder, fast=path == "fast") for path in ("fast", "readable")}
    for path, encoder in encoders.items():
        check(f"{label} ({path})", encoder.encode(texts, batch_size=2), reference, texts)
    assert encoders["fast"].pipeline == encoders["readable"].pipeline
    return reference, encoders


# -- the shipped model --------------------------------------------------------------------------

def test_pipeline_of_all_minilm(encoders, reference):
    assert [type(module).__name__ for module in reference] == ["Transformer", "Pooling", "Normalize"]
    assert reference.max_seq_length == 256
    assert encoders["fast"].pipeline == SentencePipeline(max_seq_length=256, do_lower_case=False,
                                                         pooling=("mean",), normalize=True)


@pytest.mark.parametrize("path", ["fast", "readable"])
@pytest.mark.parametrize("case", ["short", "mixed", "long"])
def test_encode_matches_sentence_transformers(case, path, encoders, reference, long_texts):
    texts = {"short": SHORT, "mixed": mixed_texts(), "long": long_texts}[case]
    ours = encoders[path].encode(texts, batch_size=2 if case == "long" else 4)
    check(f"{case} texts ({path})", ours, reference, texts)
    assert torch.allclose(ours.norm(dim=1), torch.ones(len(texts)))


def test_tokenizing_in_chunks_keeps_every_embedding(monkeypatch, encoders, reference, long_texts):
    """encode tokenizes TOKENIZE_CHUNK texts at a time and keeps only their ids (encode.Tokens). With
    chunks of 3, these 14 texts span five chunks, and the length sort runs across all of them: each
    embedding must still be sentence-transformers', in the caller's order."""
    monkeypatch.setattr(encode_module, "TOKENIZE_CHUNK", 3)
    texts = mixed_texts() + long_texts
    ours = encoders["fast"].encode(texts, batch_size=4)
    check("mixed and long texts, tokenized 3 at a time (fast)", ours, reference, texts)


@pytest.mark.parametrize("case", ["short", "mixed", "long"])
def test_encode_on_onednn_matches_sentence_transformers(case, minilm_dir, encoders, reference, long_texts):
    """onednn=True (the exact tier's speed, speed/fast.py item 5) sums its products in another order than
    the torch kernels sentence-transformers runs, and is held to the same rule."""
    encoder = SentenceEncoder.from_pretrained(minilm_dir, onednn=True)
    texts = {"short": SHORT, "mixed": mixed_texts(), "long": long_texts}[case]
    ours = encoder.encode(texts, batch_size=2 if case == "long" else 4)
    check(f"{case} texts (fast, oneDNN)", ours, reference, texts, kind="encode on oneDNN vs sentence-transformers")
    assert all(len(layer.packed) == 4 for layer in encoder.model.layer)


def test_long_texts_are_cut_at_max_seq_length(encoders, reference, long_texts):
    expected = reference.encode(long_texts, convert_to_tensor=True)
    at_512 = encoders["fast"].encode(long_texts, max_length=512)  # the model's limit, as before this fix
    cosines = (at_512 * expected).sum(dim=1)
    print(f"\ncosine with sentence-transformers when cut at 512: {cosines.tolist()}")
    assert cosines[0] < 0.99 and cosines[2] < 0.99  # the long ones: a different embedding
    assert torch.isclose(cosines[1], torch.tensor(1.0))  # the short one is not cut either way
    reference.max_seq_length = 512
    try:
        check("long texts, max_length=512 (fast)", at_512, reference, long_texts)
    finally:
        reference.max_seq_length = 256


# -- other pipelines: a changed copy of the folder, and sentence-transformers loaded from it ------

LEGACY_POOLING = {"word_embedding_dimension": 384, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False,
                  "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}


@pytest.mark.parametrize("config, modes", [
    ({**LEGACY_POOLING, "pooling_mode_cls_token": True}, ("cls",)),
    ({**LEGACY_POOLING, "pooling_mode_max_tokens": True}, ("max",)),
    ({**LEGACY_POOLING, "pooling_mode_mean_tokens": True}, ("mean",)),
    ({**LEGACY_POOLING, "pooling_mode_mean_sqrt_len_tokens": True}, ("mean_sqrt_len_tokens",)),
    ({**LEGACY_POOLING, "pooling_mode_max_tokens": True, "pooling_mode_cls_token": True}, ("cls", "max")),
    ({"embedding_dimension": 384, "pooling_mode": ["mean", "cls"], "include_prompt": False}, ("mean", "cls")),
], ids=["cls", "max", "mean", "mean_sqrt_len", "cls+max", "new-style mean+cls"])
def test_pooling_modes(config, modes, minilm_dir, tmp_path):
    folder = model_copy(minilm_dir, tmp_path, **{"1_Pooling__config.json": config})
    _, encoders = compare_folder(folder, SHORT + mixed_texts()[:3], f"pooling {'+'.join(modes)}")
    assert encoders["fast"].pipeline.pooling == modes


def test_without_normalize(minilm_dir, tmp_path, encoders, reference):
    modules = json.loads((minilm_dir / "modules.json").read_text())[:2]  # Transformer, Pooling
    folder = model_copy(minilm_dir, tmp_path, **{"modules.json": modules})
    without, plain = compare_folder(folder, SHORT, "no Normalize")
    assert not plain["fast"].pipeline.normalize
    unnormalized = without.encode(SHORT, convert_to_tensor=True)
    assert not torch.allclose(unnormalized.norm(dim=1), torch.ones(len(SHORT)), atol=1e-3)
    # Unnormalized vectors reach |1.3|, and there a different padding moves the last bits: on the mixed
    # texts sentence-transformers itself differs by 1.2e-6 between batch_size=32 and batch_size=1. Here
    # both sides run one text per batch (no padding at all).
    texts = mixed_texts()
    for path, encoder in plain.items():
        check(f"no Normalize, one text per batch ({path})", encoder.encode(texts, batch_size=1), without, texts,
              batch_size=1)
    # normalize= overrides the pipeline, either way.
    check("normalize=False on the shipped pipeline", encoders["fast"].encode(SHORT, normalize=False), without, SHORT)
    check("normalize=True without Normalize", plain["fast"].encode(SHORT, normalize=True), reference, SHORT)


@pytest.mark.parametrize("lower", [True, False])
def test_do_lower_case_with_a_cased_tokenizer(lower, minilm_dir, tmp_path):
    # A cased tokenizer: the uncased one lowercases by itself, and do_lower_case would change nothing.
    tokenizer_json = json.loads((minilm_dir / "tokenizer.json").read_text())
    tokenizer_json["normalizer"]["lowercase"] = False
    tokenizer_config = {**json.loads((minilm_dir / "tokenizer_config.json").read_text()), "do_lower_case": False}
    folder = model_copy(minilm_dir, tmp_path, **{
        "tokenizer.json": tokenizer_json, "tokenizer_config.json": tokenizer_config,
        "sentence_bert_config.json": {"max_seq_length": 256, "do_lower_case": lower}})
    _, encoders = compare_folder(folder, MIXED_CASE, f"do_lower_case={lower}")
    encoder = encoders["fast"]
    assert encoder.pipeline.do_lower_case is lower
    unknown = encoder.tokenizer.backend.token_to_id("[UNK]")
    ids = encoder.tokenizer(MIXED_CASE)["input_ids"]
    assert ((ids == unknown).any().item()) is not lower  # "Bat" is not in the uncased vocabulary
    assert encoder.tokenizer.convert_ids_to_tokens(ids[1]).count("[SEP]") == 2  # the text's [SEP] stays special


def test_plain_bert_folder_keeps_the_defaults(minilm_dir, tmp_path, long_texts):
    sentence_files = ["modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
                      "1_Pooling/config.json"]
    folder = model_copy(minilm_dir, tmp_path, **{name.replace("/", "__"): None for name in sentence_files})
    reference, encoders = compare_folder(folder, long_texts, "plain BERT folder")
    assert [type(module).__name__ for module in reference] == ["Transformer", "Pooling"]  # mean pooling
    assert reference.max_seq_length == 512
    assert encoders["fast"].pipeline == SentencePipeline()


def test_hub_repo_id(minilm_dir, tmp_path, monkeypatch, reference):
    """A repo id goes through the Hub cache, sentence-transformers' files included."""
    from huggingface_hub import constants

    repo = tmp_path / ("models--" + MINILM_REPO_ID.replace("/", "--"))
    model_copy(minilm_dir, repo / "snapshots" / MINILM_TEST_COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(MINILM_TEST_COMMIT)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    encoder = SentenceEncoder.from_pretrained(MINILM_REPO_ID)
    assert encoder.pipeline.max_seq_length == 256 and encoder.pipeline.normalize
    check("Hub repo id (fast)", encoder.encode(SHORT), reference, SHORT)


# -- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("changed, message", [
    ({"1_Pooling__config.json": {**LEGACY_POOLING, "pooling_mode_weightedmean_tokens": True}},
     r"1_Pooling/config.json: field 'pooling_mode_weightedmean_tokens' asks for pooling mode 'weightedmean'"),
    ({"1_Pooling__config.json": {"pooling_mode": "median"}},
     r"1_Pooling/config.json: field 'pooling_mode' asks for pooling mode 'median'"),
    ({"1_Pooling__config.json": {**LEGACY_POOLING, "pooling_mode_median_tokens": True}},
     r"1_Pooling/config.json: unknown field 'pooling_mode_median_tokens'"),
    ({"1_Pooling__config.json": {**LEGACY_POOLING, "word_embedding_dimension": 768}},
     r"1_Pooling/config.json: field 'word_embedding_dimension' is 768, but the model's hidden size is 384"),
    ({"1_Pooling__config.json": "{not json"}, r"1_Pooling/config.json: not valid JSON"),
    ({"modules.json": [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                       {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                       {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]},
     r"modules.json: module 2 has field 'type' 'sentence_transformers.models.Dense'"),
    ({"modules.json": [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                       {"idx": 1, "name": "1", "path": "", "type": "sentence_transformers.models.Pooling"}]},
     r"modules.json: module 1 \(Pooling\) has field 'path' ''"),
    ({"1_Pooling__config.json": None}, r"modules.json: module 1 \(Pooling\) is in '1_Pooling', but .* has no "
                                       r"1_Pooling/config.json"),
    ({"sentence_bert_config.json": {"max_seq_length": 1024}},
     r"sentence_bert_config.json: field 'max_seq_length' is 1024, more than the model's 512 positions"),
    ({"sentence_bert_config.json": {"max_seq_length": 0}},
     r"sentence_bert_config.json: field max_seq_length=0 must be a positive integer \(or null"),
    ({"sentence_bert_config.json": {"max_seq_length": 256, "do_lower_case": "yes"}},
     r"sentence_bert_config.json: field 'do_lower_case' must be true or false"),
    ({"config_sentence_transformers.json": {"prompts": {"query": "query: "}, "default_prompt_name": "query"}},
     r"config_sentence_transformers.json: field 'default_prompt_name' is 'query'"),
], ids=["weightedmean", "median", "unknown field", "dimension", "not json", "Dense", "Pooling path",
        "no Pooling config", "max_seq_length", "max_seq_length 0",
        "do_lower_case", "default prompt"])
def test_unsupported_pipeline_names_the_file_and_field(changed, message, minilm_dir, tmp_path):
    folder = model_copy(minilm_dir, tmp_path, **changed)
    with pytest.raises(CheckpointError, match=message):
        SentenceEncoder.from_pretrained(folder)


def test_bad_input(encoders):
    encoder = encoders["fast"]
    assert encoder.encode([]).shape == (0, 384)
    for texts, match in [("one text", "wrap a single text"), (None, "got NoneType"),
                         ({"a": 1}, "got dict"), (["a", 2], r"texts\[1\] is int")]:
        with pytest.raises(TypeError, match=match):
            encoder.encode(texts)
    for kwargs, error, match in [({"batch_size": 0}, ValueError, "batch_size=0 must be a positive integer"),
                                 ({"batch_size": 2.5}, TypeError, "batch_size=2.5 must be a whole number"),
                                 ({"batch_size": True}, TypeError, "batch_size=True must be a whole number"),
                                 ({"max_length": -1}, ValueError, "max_length=-1 must be a positive integer")]:
        with pytest.raises(error, match=match):
            encoder.encode(["a"], **kwargs)
    with pytest.raises(ValueError, match="pooling must be one or more of"):
        encode(encoder.model, encoder.tokenizer, ["a"], pooling="median")


def test_module_docstring_example():
    result = doctest.testmod(encode_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4 and result.failed == 0


def test_threads_are_set_for_the_call_and_set_back(encoders, reference, monkeypatch):
    """encode(threads=1) runs on 1 thread and equals sentence-transformers as the default count does; the
    count is set back after the call, and after a call that fails."""
    encoder = encoders["fast"]
    texts = ["The bat flew out of the cave at night."]
    before = torch.get_num_threads()
    seen = []
    forward = encoder.model.forward

    def counting(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return forward(*args, **kwargs)

    monkeypatch.setattr(encoder.model, "forward", counting)
    check("encode on 1 thread", encoder.encode(texts, threads=1), reference, texts)
    assert seen == [1] and torch.get_num_threads() == before

    def failing(*args, **kwargs):
        raise RuntimeError("a forward that fails")

    monkeypatch.setattr(encoder.model, "forward", failing)
    with pytest.raises(RuntimeError, match="a forward that fails"):
        encoder.encode(texts, threads=1)
    assert torch.get_num_threads() == before
    for threads, error, match in [(0, ValueError, "threads=0 must be a positive integer"),
                                  (1.5, TypeError, "threads=1.5 must be a whole number")]:
        with pytest.raises(error, match=match):
            encoder.encode(texts, threads=threads)


def test_threads_are_refused_for_an_engine_that_fixed_them(minilm_dir):
    engine = SentenceEncoder.from_pretrained(minilm_dir, engine="onnxruntime")
    with pytest.raises(ValueError, match="threads=1: the onnxruntime engine's threads are fixed when it is built"):
        engine.encode(["paris"], threads=1)
