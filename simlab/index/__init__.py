"""Indexes: BM25 (`simlab.index.bm25`), dense faiss indexes (`simlab.index.dense`), fusion.

Names are resolved lazily, so `import simlab.index` does not import faiss; it is loaded on
first use of a dense-index name (e.g. `simlab.index.INDEX_TYPES`).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "DenseIndex": "simlab.index.dense_base",
    "FlatIndex": "simlab.index.dense",
    "HNSWIndex": "simlab.index.dense",
    "IVFIndex": "simlab.index.dense",
    "IVFPQRefineIndex": "simlab.index.dense_refine",
    "HNSWSQRefineIndex": "simlab.index.dense_refine",
    "PQRefineIndex": "simlab.index.dense_refine",
    "INDEX_TYPES": "simlab.index.dense",
    "UnknownIndexTypeError": "simlab.index.dense",
    "load_dense_index": "simlab.index.dense",
    "SearchTiming": "simlab.index.timing",
    "measure_search": "simlab.index.timing",
    "overlap_at_k": "simlab.index.timing",
    "index_size_bytes": "simlab.index.timing",
}
_RENAMED = {"load_dense_index": "load"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'simlab.index' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
