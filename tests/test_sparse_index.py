"""Sparse indexes: exact search against a naive dot product, Seismic, saving, vocabulary checks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from simlab.errors import ConfigError, DataError, IndexMismatchError
from simlab.index.sparse import SPARSE_INDEX_TYPES, load
from simlab.index.timing import measure_search, overlap_at_k

VOCAB = {"vocab_size": 300, "vocab_sha256": "abc"}


def random_sparse(n: int, vocab: int, nnz: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), nnz)
    cols = np.concatenate([rng.choice(vocab, nnz, replace=False) for _ in range(n)])
    vals = rng.random(n * nnz).astype(np.float32) + 0.01
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, vocab))


@pytest.fixture(scope="module")
def data():
    docs = random_sparse(400, 300, 20, seed=0)
    queries = random_sparse(25, 300, 6, seed=1)
    return docs, queries, [f"d{i}" for i in range(400)]


def test_exact_index_equals_naive_dot_product(data):
    docs, queries, ids = data
    index = SPARSE_INDEX_TYPES["exact"].build(docs, ids, model_id="m", vocab=VOCAB, batch_size=7)
    got_ids, got_scores = index.search(queries, 10)
    naive = queries.toarray() @ docs.toarray().T  # (25, 400) dense dot products
    for i in range(queries.shape[0]):
        order = np.argsort(-naive[i], kind="stable")
        positive = order[naive[i][order] > 0][:10]
        assert got_ids[i] == [ids[j] for j in positive]
        np.testing.assert_allclose(got_scores[i, : len(positive)], naive[i][positive], rtol=1e-5)
    # one query at a time gives the same as the batch
    one_ids, one_scores = index.search(queries[3], 10)
    assert one_ids[0] == got_ids[3]
    np.testing.assert_allclose(one_scores[0], got_scores[3])


def test_exact_index_breaks_ties_by_position_like_a_stable_sort():
    docs = random_sparse(300, 50, 5, seed=2)
    docs.data = np.ceil(docs.data * 2) / 2  # weights 0.5 or 1.0: many equal scores
    queries = random_sparse(20, 50, 3, seed=3)
    queries.data[:] = 1.0
    ids = [f"d{i}" for i in range(300)]
    got_ids, _ = SPARSE_INDEX_TYPES["exact"].build(docs, ids, model_id="m", vocab={"vocab_size": 50}).search(queries, 8)
    naive = queries.toarray() @ docs.toarray().T
    for i in range(queries.shape[0]):
        order = np.argsort(-naive[i], kind="stable")
        assert got_ids[i] == [ids[j] for j in order[naive[i][order] > 0][:8]]


def test_exact_index_returns_only_documents_sharing_a_term():
    docs = sp.csr_matrix(np.array([[1, 0, 0], [0, 2, 0], [0, 0, 3]], dtype=np.float32))
    index = SPARSE_INDEX_TYPES["exact"].build(docs, ["a", "b", "c"], model_id="m", vocab={"vocab_size": 3})
    ids, scores = index.search(np.array([[0, 1.0, 0.5]]), 3)
    assert ids == [["b", "c"]]  # b: 1 * 2, c: 0.5 * 3; a shares no term and is not returned
    assert scores[0].tolist() == [2.0, 1.5, -np.inf]


def test_saved_index_reloads_and_refuses_another_vocabulary(data, tmp_path):
    docs, queries, ids = data
    index = SPARSE_INDEX_TYPES["exact"].build(docs, ids, model_id="m", vocab=VOCAB)
    index.save(tmp_path / "exact")
    again = load(tmp_path / "exact", expect_vocab=VOCAB)
    a, sa = index.search(queries, 5)
    b, sb = again.search(queries, 5)
    assert a == b
    np.testing.assert_array_equal(sa, sb)
    with pytest.raises(IndexMismatchError, match="another vocabulary"):
        load(tmp_path / "exact", expect_vocab={"vocab_size": 300, "vocab_sha256": "other"})
    with pytest.raises(IndexMismatchError, match="vocabulary dimensions"):
        again.search(sp.csr_matrix((1, 301), dtype=np.float32), 5)
    with pytest.raises(DataError, match="not a simlab sparse index"):
        load(tmp_path)


def test_unknown_parameter_is_a_config_error(data):
    docs, _, ids = data
    with pytest.raises(ConfigError, match="unknown parameter"):
        SPARSE_INDEX_TYPES["exact"].build(docs, ids, model_id="m", vocab=VOCAB, ef_search=3)


def test_seismic_matches_exact_and_keeps_query_order(data, tmp_path):
    docs, queries, ids = data
    exact = SPARSE_INDEX_TYPES["exact"].build(docs, ids, model_id="m", vocab=VOCAB)
    seismic = SPARSE_INDEX_TYPES["seismic"].build(
        docs, ids, model_id="m", vocab=VOCAB, query_cut=6, heap_factor=1.0, n_postings=400
    )
    truth, _ = exact.search(queries, 10)
    got, scores = seismic.search(queries, 10)
    assert np.nanmean(overlap_at_k(truth, got, 10)) >= 0.9
    # batch_search answers out of input order: results must still line up with the queries
    reversed_ids, _ = seismic.search(queries[::-1], 10)
    assert reversed_ids == got[::-1]
    assert all(np.all(np.diff(row[np.isfinite(row)]) <= 1e-6) for row in scores)  # best first
    seismic.save(tmp_path / "seismic")
    again = load(tmp_path / "seismic", expect_vocab=VOCAB)
    assert again.search(queries, 10)[0] == got
    timing = measure_search(again, queries, 10, max_single=5)
    assert timing.qps_single > 0 and timing.n_batched == queries.shape[0]


def test_sparse_example_configs_validate():
    from pathlib import Path

    from simlab.tasks import load_config

    examples = Path(__file__).resolve().parents[1] / "examples"
    toy = load_config(examples / "splade.yaml")
    assert toy.model.kind == "sparse" and toy.model.name == "bert-mlm-scratch"
    assert toy.model.sparse.mask == ["punctuation", "special", "unused"]
    hub = load_config(examples / "splade-eval.yaml")
    assert hub.model.name == "naver/splade-cocondenser-ensembledistil" and not hub.train.enabled


def test_seismic_prints_nothing_on_the_process_stdout(data, tmp_path, capfd):
    """Seismic's Rust prints (`Building the index...`, `Configuration { ...`, `Saving ...`) stay out of a run's log."""
    import os
    import sys

    docs, _, ids = data
    index = SPARSE_INDEX_TYPES["seismic"].build(docs, ids, model_id="m", vocab=VOCAB, n_postings=50)
    index.save(tmp_path / "seismic")
    load(tmp_path / "seismic", expect_vocab=VOCAB)
    print("python after")
    os.write(1, b"descriptor 1 after\n")  # the process's stdout is restored
    sys.stdout.flush()
    out = capfd.readouterr().out
    assert "python after" in out and "descriptor 1 after" in out
    assert not [s for s in ("Building", "Configuration {", "Saving", "posting") if s in out], out
