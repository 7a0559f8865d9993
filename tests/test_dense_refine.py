"""Compressed codes with exact re-ranking (`ivfpq_refine`, `pq_refine`, `hnsw_sq_refine`) against exact search."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simlab.errors import ConfigError
from simlab.index.dense import INDEX_TYPES, FlatIndex, HNSWSQRefineIndex, IVFPQRefineIndex, PQRefineIndex, load
from simlab.index.timing import index_size_bytes, overlap_at_k
from simlab.tasks import load_config

DIM = 32
MODEL = "test/model-a"
REFINE = ["ivfpq_refine", "pq_refine", "hnsw_sq_refine"]
# generous settings: every cell scanned, 2 dimensions per 4-bit code, 640 of 2000 vectors re-ranked exactly
GENEROUS = {
    "ivfpq_refine": {"nlist": 16, "nprobe": 16, "pq_m": DIM // 2, "k_factor": 64},
    "pq_refine": {"pq_m": DIM // 2, "k_factor": 64},
    "hnsw_sq_refine": {"m": 16, "ef_search": 256, "k_factor": 64},
}


def random_data(n: int = 2000, n_queries: int = 50, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM)).astype(np.float32)  # (n, d)
    q = rng.standard_normal((n_queries, DIM)).astype(np.float32)  # (q, d)
    return x, q, [f"d{i}" for i in range(n)]


def naive_top(x: np.ndarray, q: np.ndarray, k: int, metric: str):
    """Ids and scores of the exact top k by numpy (no faiss): inner products or negated squared L2."""
    if metric == "ip":
        scores = q.astype(np.float64) @ x.T.astype(np.float64)  # (q, n)
    else:
        scores = -((q[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1)  # (q, n)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # (q, k)
    return top, np.take_along_axis(scores, top, axis=1)


@pytest.fixture(scope="module")
def data():
    return random_data()


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("kind", REFINE)
def test_generous_settings_equal_exact_search(data, kind, metric):
    """At generous settings the re-ranked result is the exact one: same ids as the naive top 10 and as
    FlatIndex, and scores that are exact (re-computed from the float vectors), not code estimates."""
    x, q, ids = data
    index = INDEX_TYPES[kind].build(x, ids, metric=metric, model_id=MODEL, normalized=False, **GENEROUS[kind])
    got_ids, got_scores = index.search(q, 10)
    top, scores = naive_top(x, q, 10, metric)
    assert got_ids == [[ids[j] for j in row] for row in top]
    np.testing.assert_allclose(got_scores, scores, rtol=1e-4, atol=1e-3)
    flat_ids, _ = FlatIndex.build(x, ids, metric=metric, model_id=MODEL, normalized=False).search(q, 10)
    assert got_ids == flat_ids


@pytest.mark.parametrize("kind", ["ivfpq_refine", "pq_refine"])
def test_re_ranking_raises_recall(data, kind):
    """k_factor=1 keeps the codes' own order (approximate); more candidates re-ranked give back exactness."""
    x, q, ids = data
    index = INDEX_TYPES[kind].build(x, ids, model_id=MODEL, normalized=False, **GENEROUS[kind])
    exact, _ = FlatIndex.build(x, ids, model_id=MODEL, normalized=False).search(q, 10)
    index.k_factor = 1
    low = overlap_at_k(exact, index.search(q, 10)[0], 10).mean()
    index.k_factor = 64
    high = overlap_at_k(exact, index.search(q, 10)[0], 10).mean()
    assert low < 0.9 and high == 1.0, (low, high)


def test_ivfpq_nprobe_limits_the_cells_scanned(data):
    x, q, ids = data
    index = IVFPQRefineIndex.build(x, ids, model_id=MODEL, normalized=False, nlist=16, nprobe=1, k_factor=64)
    exact, _ = FlatIndex.build(x, ids, model_id=MODEL, normalized=False).search(q, 10)
    assert index.params["pq_m"] == DIM // 4  # the default: 4 dimensions per 4-bit code
    one_cell = overlap_at_k(exact, index.search(q, 10)[0], 10).mean()
    index.nprobe = 16
    assert one_cell < 0.7 and overlap_at_k(exact, index.search(q, 10)[0], 10).mean() == 1.0


@pytest.mark.parametrize("kind", REFINE)
def test_save_load_round_trip(tmp_path, data, kind):
    x, q, ids = data
    index = INDEX_TYPES[kind].build(x, ids, model_id=MODEL, normalized=False, **GENEROUS[kind])
    index.k_factor = 8  # a runtime change is saved with the index
    before = index.search(q, 10)
    folder = index.save(tmp_path / "idx")
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["format_version"] == 1 and meta["type"] == kind and meta["params"]["k_factor"] == 8
    assert meta["params"].get("pq_m", DIM // 2) == DIM // 2
    loaded = load(folder, expect_model_id=MODEL, expect_dim=DIM)
    assert type(loaded) is type(index) and loaded.params == index.params
    assert loaded._index.k_factor == 8
    after = loaded.search(q, 10)
    assert after[0] == before[0]
    np.testing.assert_array_equal(after[1], before[1])
    # memory: the float vectors (for re-ranking) plus the codes (pq_m/2 or dim bytes per vector)
    assert index_size_bytes(folder) == index.serialized_nbytes() > x.nbytes + len(x) * (DIM // 4) // 2


def test_runtime_nprobe_survives_save(tmp_path, data):
    x, _, ids = data
    index = IVFPQRefineIndex.build(x, ids, model_id=MODEL, normalized=False, nlist=16, nprobe=2)
    index.nprobe = 9
    loaded = load(index.save(tmp_path / "i"))
    assert loaded.nprobe == 9
    import faiss

    assert faiss.extract_index_ivf(loaded._index).nprobe == 9


@pytest.mark.parametrize("kind", REFINE)
def test_k_larger_than_index(kind):
    x, q, _ = random_data(n=40, n_queries=3, seed=2)
    ids = [f"d{i}" for i in range(40)]
    params = {"ivfpq_refine": {"nlist": 1}, "hnsw_sq_refine": {"m": 4}}.get(kind, {})
    index = INDEX_TYPES[kind].build(x, ids, model_id=MODEL, normalized=False, **params)
    got, scores = index.search(q, 100)
    assert scores.shape == (3, 40) and all(sorted(row) == sorted(ids) for row in got)


def test_bad_params(data):
    x, _, ids = data
    with pytest.raises(
        ConfigError, match=r"ivfpq_refine.pq_m=5 must divide the vector dimension 32; e.g. \[4, 8, 16\]"
    ):
        IVFPQRefineIndex.build(x, ids, model_id=MODEL, normalized=False, pq_m=5)
    with pytest.raises(ConfigError, match="pq_refine.k_factor=0 must be a positive integer"):
        PQRefineIndex.build(x, ids, model_id=MODEL, normalized=False, k_factor=0)
    with pytest.raises(ConfigError, match="ivfpq_refine.nlist=5000 exceeds the 2000 vectors"):
        IVFPQRefineIndex.build(x, ids, model_id=MODEL, normalized=False, nlist=5000)
    with pytest.raises(
        ConfigError, match=r"unknown parameter\(s\) \['nprobe'\]; valid: k_factor, pq_m, seed, train_size"
    ):
        PQRefineIndex.build(x, ids, model_id=MODEL, normalized=False, nprobe=3)
    index = IVFPQRefineIndex.build(x, ids, model_id=MODEL, normalized=False, nlist=8)
    with pytest.raises(ConfigError, match="ivfpq_refine.nprobe=9 exceeds nlist=8"):
        index.nprobe = 9
    with pytest.raises(ConfigError, match="ivfpq_refine.k_factor=-1 must be a positive integer"):
        index.k_factor = -1


def test_hnsw_sq_ef_search_survives_save(tmp_path, data):
    x, q, ids = data
    index = HNSWSQRefineIndex.build(x, ids, model_id=MODEL, normalized=False, m=8, ef_search=16)
    index.ef_search = 300
    loaded = load(index.save(tmp_path / "h"))
    import faiss

    assert loaded.ef_search == 300 and faiss.downcast_index(loaded._index.base_index).hnsw.efSearch == 300
    with pytest.raises(ConfigError, match="hnsw_sq_refine.ef_search=0 must be a positive integer"):
        loaded.ef_search = 0


def test_config_sections_reach_the_index():
    """`index.ivfpq_refine` / `index.pq_refine` have defaults, are validated, and give the build parameters."""
    from simlab.tasks.retrieval.systems import _index_params

    sets = ["data.path=x", "index.approximate=[ivfpq_refine,pq_refine]", "index.ivfpq_refine.nprobe=64"]
    cfg = load_config(None, sets)
    assert _index_params("ivfpq_refine", cfg.index) == {"nlist": None, "nprobe": 64, "pq_m": None, "k_factor": 16}
    assert _index_params("pq_refine", cfg.index) == {"pq_m": None, "k_factor": 32}
    assert _index_params("hnsw_sq_refine", cfg.index) == {
        "m": 32,
        "ef_construction": 200,
        "ef_search": 512,
        "k_factor": 4,
    }
    with pytest.raises(ConfigError, match="k_factor"):
        load_config(None, ["data.path=x", "index.pq_refine.k_factor=0"])
