"""Dense faiss indexes: exact equals brute force, ANN recall, save/load, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from simlab.errors import ConfigError, DataError, IndexMismatchError, RunFolderError
from simlab.index.dense import INDEX_TYPES, FlatIndex, HNSWIndex, IVFIndex, UnknownIndexTypeError, load
from simlab.index.timing import index_size_bytes, measure_search, overlap_at_k

DIM = 32
MODEL = "test/model-a"


def clustered(n: int, n_queries: int, seed: int = 0, dim: int = DIM, n_clusters: int = 25):
    """Normalised gaussian clusters (low intrinsic dimension, like real embeddings), never uniform."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_clusters, dim))  # (c, d)

    def draw(m: int) -> np.ndarray:
        x = centers[rng.integers(n_clusters, size=m)] + 0.35 * rng.standard_normal((m, dim))  # (m, d)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    return draw(n), draw(n_queries)


def brute_force(x: np.ndarray, q: np.ndarray, k: int):
    scores = q.astype(np.float64) @ x.T.astype(np.float64)  # (q, n)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # (q, k)
    return top, np.take_along_axis(scores, top, axis=1)


@pytest.fixture(scope="module")
def data():
    x, q = clustered(3000, 100)
    ids = [f"d{i}" for i in range(len(x))]
    return x, q, ids


@pytest.fixture(scope="module")
def flat(data):
    x, _, ids = data
    return FlatIndex.build(x, ids, model_id=MODEL, normalized=True)


def test_flat_equals_brute_force(data, flat):
    x, q, ids = data
    got_ids, got_scores = flat.search(q, 10)
    top, scores = brute_force(x, q, 10)
    assert got_ids == [[ids[j] for j in row] for row in top]
    np.testing.assert_allclose(got_scores, scores, atol=1e-5)
    assert got_scores.shape == (len(q), 10) and got_scores.dtype == np.float32


def test_flat_blas_switch_is_restored_and_consistent(data, flat):
    import faiss

    _, q, _ = data
    before = faiss.cvar.distance_compute_blas_threshold
    batched_ids, batched_scores = flat.search(q[:20], 10)  # BLAS path (threshold lowered for the call)
    assert faiss.cvar.distance_compute_blas_threshold == before
    for i in range(3):  # one query at a time: faiss' sequential path
        ids, scores = flat.search(q[i], 10)
        assert ids[0] == batched_ids[i]
        np.testing.assert_allclose(scores[0], batched_scores[i], atol=1e-5)


def test_flat_l2_scores_are_negated_squared_distances(data):
    x, q, ids = data
    index = FlatIndex.build(x, ids, metric="l2", model_id=MODEL, normalized=True)
    got_ids, got_scores = index.search(q[:5], 3)
    d2 = ((q[:5, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1)  # (5, n)
    top = np.argsort(d2, axis=1)[:, :3]
    assert got_ids == [[ids[j] for j in row] for row in top]
    np.testing.assert_allclose(got_scores, -np.take_along_axis(d2, top, axis=1), atol=1e-4)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_recall_on_clustered_data(data, flat, kind):
    x, q, ids = data
    exact, _ = flat.search(q, 10)
    index = INDEX_TYPES[kind].build(x, ids, model_id=MODEL, normalized=True)
    approx, scores = index.search(q, 10)
    recall = overlap_at_k(exact, approx, 10)
    assert recall.shape == (len(q),)
    assert recall.mean() >= 0.95, f"{kind} recall@10 {recall.mean():.3f}"
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first


def test_ivf_defaults_and_runtime_nprobe(data):
    x, q, ids = data
    index = IVFIndex.build(x, ids, model_id=MODEL, normalized=True)
    assert index.params["nlist"] == 3000 // 39  # 4*sqrt(3000)=219, clipped to >= 39 points per cell
    index.nprobe = index.params["nlist"]  # scanning every cell is exact
    assert index.nprobe == index.params["nlist"]
    with pytest.raises(ConfigError, match="exceeds nlist"):
        index.nprobe = index.params["nlist"] + 1


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_load_round_trip(tmp_path, data, kind):
    x, q, ids = data
    index = INDEX_TYPES[kind].build(x, ids, model_id=MODEL, normalized=True)
    before = index.search(q, 10)
    folder = index.save(tmp_path / "idx")
    assert sorted(p.name for p in folder.iterdir()) == [".simlab-files", "ids.json", "index.faiss", "meta.json"]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["format"] == "simlab.dense-index" and meta["format_version"] == 1
    assert (meta["type"], meta["model_id"], meta["dim"], meta["n_vectors"]) == (kind, MODEL, DIM, len(x))
    assert index_size_bytes(folder) == index.serialized_nbytes()
    loaded = load(folder, expect_model_id=MODEL, expect_dim=DIM)
    assert type(loaded) is type(index) and loaded.params == index.params
    after = loaded.search(q, 10)
    assert after[0] == before[0]
    np.testing.assert_array_equal(after[1], before[1])


def test_runtime_ef_search_survives_save(tmp_path, data):
    x, _, ids = data
    index = HNSWIndex.build(x, ids, model_id=MODEL, normalized=True, m=8)
    index.ef_search = 200
    loaded = load(index.save(tmp_path / "h"))
    assert loaded.ef_search == 200 and loaded._index.hnsw.efSearch == 200
    loaded.ef_search = 16
    assert loaded._index.hnsw.efSearch == 16


def test_query_dim_mismatch(flat):
    expected = r"query dim 16 != index dim 32 \(index built with model 'test/model-a'\); encode queries"
    with pytest.raises(IndexMismatchError, match=expected):
        flat.search(np.zeros((2, 16), dtype=np.float32), 5)


def test_load_checks_model_and_dim(tmp_path, flat):
    folder = flat.save(tmp_path / "idx")
    with pytest.raises(IndexMismatchError, match=r"index dim 32 != expected dim 128 .*'test/model-a'"):
        load(folder, expect_dim=128)
    expected = r"model 'test/model-a', but model 'test/model-b' was expected"
    with pytest.raises(IndexMismatchError, match=expected):
        load(folder, expect_model_id="test/model-b")


def test_load_rejects_other_folders_and_versions(tmp_path, flat):
    with pytest.raises(DataError, match="not a simlab dense index"):
        load(tmp_path)
    folder = flat.save(tmp_path / "idx")
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(IndexMismatchError, match="format version 99"):
        load(folder)
    (folder / "meta.json").write_text(json.dumps({**meta, "type": "pq"}))
    valid = "flat, hnsw, hnsw_sq_refine, ivf, ivfpq_refine, pq_refine"
    with pytest.raises(UnknownIndexTypeError, match=f"'pq'; valid types: {valid}"):
        load(folder)


def test_unknown_type_lists_valid_names():
    with pytest.raises(ConfigError, match="valid types: " + ", ".join(sorted(INDEX_TYPES))):
        INDEX_TYPES["pq"]
    with pytest.raises(KeyError):  # still a KeyError for dict-style callers
        INDEX_TYPES["pq"]


def test_bad_params(data):
    x, _, ids = data
    expected = r"unknown parameter\(s\) \['nprobe'\]; valid: ef_construction, ef_search, m"
    with pytest.raises(ConfigError, match=expected):
        HNSWIndex.build(x, ids, model_id=MODEL, normalized=True, nprobe=4)
    with pytest.raises(ConfigError, match="metric 'cos' is unknown; choose one of ip, l2"):
        FlatIndex.build(x, ids, metric="cos", model_id=MODEL, normalized=True)
    with pytest.raises(ValueError, match="3000 vectors but 2 ids"):
        FlatIndex.build(x, ids[:2], model_id=MODEL, normalized=True)


def test_failed_save_leaves_nothing(tmp_path, flat, monkeypatch):
    import simlab.index.dense as dense

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(dense.faiss, "write_index", boom)
    with pytest.raises(OSError, match="disk full"):
        flat.save(tmp_path / "idx")
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_to_overwrite(tmp_path, flat):
    folder = flat.save(tmp_path / "idx")
    with pytest.raises(RunFolderError, match="already exists; pass overwrite=True"):
        flat.save(folder)
    flat.save(folder, overwrite=True)
    assert load(folder).ids == flat.ids


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_k_larger_than_index(kind):
    x, q = clustered(5, 3, seed=1)
    ids = list("abcde")
    index = INDEX_TYPES[kind].build(x, ids, model_id=MODEL, normalized=True)
    got, scores = index.search(q, 10)
    assert scores.shape == (3, 5)
    assert all(sorted(row) == ids for row in got)


def test_threads_option_restores_faiss_setting(data, flat):
    import faiss

    _, q, _ = data
    before = faiss.omp_get_max_threads()
    ids, _ = flat.search(q[:10], 5, threads=1)
    assert faiss.omp_get_max_threads() == before
    assert ids == flat.search(q[:10], 5)[0]


def test_measure_search_is_bounded(data, flat):
    _, q, _ = data
    timing = measure_search(flat, q, 10, batch_size=32, max_single=20)
    assert timing.n_single == 20 and timing.n_batched == len(q) and timing.batch_size == 32
    assert timing.qps_single > 0 and timing.qps_batched > 0 and timing.p95_ms >= timing.p50_ms


def test_overlap_at_k():
    got = overlap_at_k([["a", "b", "c"], ["x"], []], [["c", "a", "z"], ["y"], []], k=2)
    np.testing.assert_array_equal(got[:2], [0.5, 0.0])
    assert np.isnan(got[2])
    with pytest.raises(ValueError, match="2 queries but approx_ids has 1"):
        overlap_at_k([["a"], ["b"]], [["a"]])


def test_package_import_does_not_load_faiss():
    code = "import sys, simlab.index; print('faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unnormalised_vectors_are_named_in_the_warning(caplog):
    x = np.eye(4, dtype=np.float32)
    x[2] = 0  # an empty document: the encoder gave nothing
    with caplog.at_level("WARNING", logger="simlab"):
        FlatIndex.build(x, ["a", "b", "empty-doc", "d"], metric="ip", model_id="m", normalized=True)
    assert "1 of the first 4 vectors" in caplog.text and "empty-doc (norm 0.0000)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="simlab"):
        FlatIndex.build(np.eye(4, dtype=np.float32), list("abcd"), metric="ip", model_id="m", normalized=True)
    assert "unit-length" not in caplog.text
