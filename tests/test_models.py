"""Model registry: wordllama offline, local folders, towers, pooling, normalisation, hub errors."""

from __future__ import annotations

import numpy as np
import pytest

from simlab.config import ModelConfig
from simlab.errors import ModelLoadError
from simlab.models import load_model, uses_router


def test_wordllama_is_offline_normalised_and_reloads(tmp_path):
    from sentence_transformers import SentenceTransformer

    model = load_model(ModelConfig(name="wordllama"))
    vecs = model.encode(["boundary layer flow", "sourdough bread"], convert_to_numpy=True)
    assert vecs.shape == (2, 256)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    model.save(str(tmp_path / "m"))
    again = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    np.testing.assert_allclose(again.encode(["boundary layer flow"]), vecs[:1], atol=1e-6)


def test_wordllama_ranks_related_text_higher():
    model = load_model(ModelConfig(name="wordllama"))
    q, a, b = model.encode(["repairing a punctured bike tire", "fix a flat bicycle tyre", "bake sourdough bread"])
    assert q @ a > q @ b


def test_separate_towers_route_and_save(tmp_path):
    from sentence_transformers import SentenceTransformer

    model = load_model(ModelConfig(name="wordllama", towers="separate"))
    assert uses_router(model)
    with torch_no_grad():
        first = next(model[0].sub_modules["query"].parameters())
        first.data[0] += 1.0  # the towers are separate copies: changing one leaves the other
    assert not np.allclose(
        next(model[0].sub_modules["query"].parameters()).detach().numpy(),
        next(model[0].sub_modules["document"].parameters()).detach().numpy(),
    )
    model.save(str(tmp_path / "m"))
    again = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    np.testing.assert_allclose(again.encode_query(["a query"]), model.encode_query(["a query"]), atol=1e-6)


def torch_no_grad():
    import torch

    return torch.no_grad()


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_plain_transformers_folder_with_pooling(tiny_bert_dir, pooling):
    model = load_model(ModelConfig(name=str(tiny_bert_dir), pooling=pooling, normalize=False))
    assert model[1].pooling_mode == pooling
    vec = model.encode(["boundary layer flow"], convert_to_numpy=True)
    assert vec.shape == (1, 32)


def test_cls_and_mean_pooling_differ(tiny_bert_dir):
    cls = load_model(ModelConfig(name=str(tiny_bert_dir), pooling="cls", normalize=False))
    mean = load_model(ModelConfig(name=str(tiny_bert_dir), pooling="mean", normalize=False))
    text = ["heat transfer in supersonic flow"]
    assert not np.allclose(cls.encode(text), mean.encode(text))


def test_hub_name_offline_gives_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"hub is unreachable.*local-dir.*wordllama"):
        load_model(ModelConfig(name="sentence-transformers/all-MiniLM-L6-v2"))


def test_missing_local_path_and_non_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="no such folder"):
        load_model(ModelConfig(name="./nowhere/model"))
    with pytest.raises(ModelLoadError, match="neither a sentence-transformers model"):
        load_model(ModelConfig(name=str(tmp_path)))
