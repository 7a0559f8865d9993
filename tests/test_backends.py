"""`model.backend`: transformer encoders on ONNX Runtime, OpenVINO and int8, checked against float32 torch."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import SENTENCES

from simlab.config import ModelConfig
from simlab.errors import ConfigError

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")  # `make venv` installs it

TEXTS = [*SENTENCES, "flow", "a much longer sentence about heat, flow, pressure and the rings of saturn"]
MIN_COSINE = {"torch-int8": 0.99, "onnx": 0.9999, "onnx-int8": 0.99, "openvino": 0.9999}
"""Cosine of each backend's vectors to float32 torch's: float32 exports are the same function; int8 is close."""


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SIMLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir):
    from simlab.models import load_model

    return load_model(ModelConfig(name=str(tiny_bert_dir)))


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


@pytest.mark.parametrize("backend", ["torch-int8", "onnx", "onnx-int8", "openvino"])
def test_backend_vectors_match_float32_torch(tiny, backend):
    from simlab.models.backends import with_backend

    if backend == "openvino":
        pytest.importorskip("openvino", reason="the openvino extra is not installed")
    reference = tiny.encode(TEXTS, batch_size=3)  # batches of mixed lengths: padding goes through the graph
    fast = with_backend(tiny, backend)
    got = fast.encode(TEXTS, batch_size=3)
    assert got.shape == reference.shape
    assert _cosines(got, reference).min() >= MIN_COSINE[backend], backend
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # the model's Normalize still runs
    if backend in ("onnx", "openvino"):
        np.testing.assert_allclose(got, reference, atol=1e-4)
    assert tiny.encode(TEXTS[:2]) == pytest.approx(reference[:2], abs=1e-6)  # the torch model is left unchanged


def test_torch_backend_is_the_model_itself(tiny):
    from simlab.models.backends import with_backend

    assert with_backend(tiny, "torch") is tiny


def test_hand_pooled_onnx_tokens_equal_the_naive_torch_forward(tiny_bert_dir, tiny):
    """The exported graph alone (no sentence-transformers) against the Hugging Face model's own forward."""
    import onnxruntime as ort
    import torch
    from transformers import AutoTokenizer, BertModel

    from simlab.models.backends import exported

    bert = BertModel.from_pretrained(tiny_bert_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    batch = tok(TEXTS, padding=True, return_tensors="pt")
    batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
    with torch.no_grad():
        expected = bert(**batch).last_hidden_state.numpy()  # (n, seq, 32)
    folder = exported(tiny[0].model, "onnx")
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {k: v.numpy() for k, v in batch.items()})
    mask = batch["attention_mask"].numpy().astype(bool)
    np.testing.assert_allclose(got[mask], expected[mask], atol=1e-4)


def test_context_pooling_reads_every_layer_through_onnx(tiny_bert_dir):
    """`model.layers` (definitions) pools hidden layers: the export then returns every layer."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Transformer

    from simlab.models.backends import with_backend
    from simlab.models.context_pooling import ContextPooling

    model = SentenceTransformer(
        modules=[ContextPooling(Transformer(str(tiny_bert_dir)), layers=2, layer_mode="sum")], device="cpu"
    )
    reference = model.encode(TEXTS)
    got = with_backend(model, "onnx").encode(TEXTS)
    np.testing.assert_allclose(got, reference, atol=1e-4)


def test_export_is_cached_by_weights_and_backend(tiny, cache):
    import torch

    from simlab.models.backends import exported, with_backend

    with_backend(tiny, "onnx")
    (folder,) = [p for p in (cache / "backends" / "v1").glob("*/onnx")]
    stamp = (folder / "model.onnx").stat().st_mtime_ns
    with_backend(tiny, "onnx")  # reused, not written again
    assert (folder / "model.onnx").stat().st_mtime_ns == stamp
    with_backend(tiny, "onnx-int8")
    assert (folder.parent / "onnx-int8" / "model.int8.onnx").is_file()
    changed = with_backend(tiny, "torch-int8")  # a quantised copy; the float32 weights are untouched
    assert changed is not tiny
    import copy

    tuned = copy.deepcopy(tiny)
    with torch.no_grad():
        next(tuned[0].model.parameters()).add_(0.01)  # other weights (a fine-tuned model): another export
    assert exported(tuned[0].model, "onnx").parent != folder.parent


def test_a_foreign_folder_in_the_cache_is_refused_not_deleted(tiny, cache):
    from simlab.errors import DataError
    from simlab.models.backends import model_key, with_backend

    mine = cache / "backends" / "v1" / model_key(tiny[0].model) / "onnx"
    mine.mkdir(parents=True)
    (mine / "meta.json").write_text('{"format": "something-else"}')
    (mine / "notes.txt").write_text("the user's")
    with pytest.raises(DataError, match="not a backend export.*never deletes"):
        with_backend(tiny, "onnx")
    assert (mine / "notes.txt").read_text() == "the user's"


def test_backend_models_pickle_for_ray_actors(tiny):
    from simlab.models.backends import with_backend

    fast = with_backend(tiny, "onnx")
    again = pickle.loads(pickle.dumps(fast))
    np.testing.assert_allclose(again.encode(TEXTS), fast.encode(TEXTS), atol=1e-6)


def test_static_models_refuse_a_transformer_backend():
    from simlab.models import load_model
    from simlab.models.backends import with_backend

    with pytest.raises(ConfigError, match="model.backend: onnx runs transformer models.*set model.backend: torch"):
        with_backend(load_model(ModelConfig(name="wordllama")), "onnx")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.backend=tensorrt"], "model.backend: .*'torch', 'torch-int8', 'onnx', 'onnx-int8' or 'openvino'"),
        (["model.backend=onnx"], "model.backend: onnx runs transformer models, and 'wordllama' is a static"),
    ],
)
def test_bad_backends_are_refused_when_the_config_is_read(tmp_path, overrides, message):
    from simlab.tasks import load_config

    with pytest.raises(ConfigError, match=message) as info:
        load_config(None, [f"data.path={tmp_path}", *overrides])
    assert info.value.exit_code == 2


def test_a_backend_without_its_packages_names_the_extra(tmp_path, monkeypatch, tiny_bert_dir):
    import importlib.util

    from simlab.tasks import load_config

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(ConfigError, match=r'model.backend: openvino needs openvino.*pip install "simlab\[openvino\]"'):
        load_config(None, [f"data.path={tmp_path}", f"model.name={tiny_bert_dir}", "model.backend=openvino"])
    with pytest.raises(ConfigError, match="model.backend"):
        load_config(None, ["task=sparse", "model.kind=sparse", f"data.path={tmp_path}", "model.backend=onnx"])


def test_cli_exits_2_naming_the_field(tmp_path):
    import subprocess
    import sys

    cfg = tmp_path / "exp.yaml"
    cfg.write_text(f"task: retrieval\ndata:\n  path: {tmp_path}\nmodel:\n  backend: tpu\n")
    done = subprocess.run(
        [sys.executable, "-m", "simlab", "run", str(cfg), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "model.backend" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()


def test_retrieval_run_and_search_on_onnx_rank_as_torch(tiny_bert_dir, tmp_path):
    """Evaluation, the saved index and `simlab search` encode on the run's backend, with torch's rankings."""
    from test_run_e2e import make_collection

    from simlab.data.beir import write_beir
    from simlab.experiments.runner import run_experiment
    from simlab.experiments.search import search_run
    from simlab.tasks import load_config

    write_beir(make_collection(), tmp_path / "beir")
    runs = {}
    for backend in ("torch", "onnx"):
        cfg = load_config(
            None,
            [
                f"data.path={tmp_path / 'beir'}",
                f"model.name={tiny_bert_dir}",
                f"model.backend={backend}",
                "model.max_length=60",
                "eval.systems=[zeroshot]",
                "tracking.mlflow=false",
            ],
        )
        runs[backend] = run_experiment(cfg, tmp_path / backend)
    torch_run, onnx_run = runs["torch"], runs["onnx"]
    for metric, value in torch_run.metrics["zeroshot.flat"].items():
        if not metric.startswith("val_"):
            assert onnx_run.metrics["zeroshot.flat"][metric] == pytest.approx(value, abs=1e-6), metric
    query = "sourdough yeast flour oven"
    by_torch = search_run(torch_run.folder, query, k=5, index_name="zeroshot.flat")
    by_onnx = search_run(onnx_run.folder, query, k=5, index_name="zeroshot.flat")
    assert [h.doc_id for h in by_onnx] == [h.doc_id for h in by_torch]
    assert [h.score for h in by_onnx] == pytest.approx([h.score for h in by_torch], abs=1e-4)


def test_definitions_run_evaluates_and_serves_on_onnx_as_on_torch(tiny_bert_dir, tmp_path):
    """Layer-pooled contexts (every hidden layer exported): the zero-shot and trained systems score as on torch,
    and the run's matcher (`simlab serve`, `match`) encodes on the run's backend."""
    from test_definitions import EXAMPLE, head_overrides, write_toy

    from simlab.experiments.predict import PairMatcher
    from simlab.experiments.runner import run_experiment
    from simlab.models.backends import RuntimeModel
    from simlab.tasks import load_config

    toy = write_toy(tmp_path / "toy")
    over = [f"model.name={tiny_bert_dir}", "model.layers=last2_sum", "model.pooling_scope=target", "train.epochs=2"]
    runs = {
        backend: run_experiment(
            load_config(EXAMPLE, head_overrides(toy, *over, f"model.backend={backend}")), tmp_path / backend
        )
        for backend in ("torch", "onnx")
    }
    for system in ("zeroshot", "trained"):
        for metric, value in runs["torch"].metrics[system].items():
            assert runs["onnx"].metrics[system][metric] == pytest.approx(value, abs=1e-4), (system, metric)
    matcher = PairMatcher(runs["onnx"].folder)
    assert any(isinstance(m, RuntimeModel) for m in matcher.model.modules())
