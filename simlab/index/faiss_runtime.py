"""Process-wide faiss settings, changed for the duration of a block and then restored.

Threads: faiss parallelises with OpenMP over all cores by default. simlab never changes that
global at import; `faiss_threads` limits it for a block of code (the previous value is
restored), and `DenseIndex.search(threads=...)` uses it for one call.

BLAS: faiss 1.15 computes a flat (exact) search through BLAS only when
`n_queries * dim >= faiss.cvar.distance_compute_blas_threshold` (default 128,000, i.e.
500 queries at dim 256); smaller batches take a per-query loop. `always_blas` sets that
global to 1 for the duration of a block and restores it afterwards, also when several
threads use it at once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import faiss


@contextlib.contextmanager
def faiss_threads(n: int | None) -> Iterator[None]:
    """Run the block with faiss (OpenMP) limited to `n` threads; `None` leaves it unchanged."""
    if n is None:
        yield
        return
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(n))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


class _BlasThreshold:
    """Set faiss' `distance_compute_blas_threshold` to 1 (always BLAS) while any caller is inside.

    Thread-safe: the first caller to enter saves the global, the last to leave restores it.
    A concurrent search in another thread meanwhile gets BLAS too: same results, other speed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved = 0

    @contextlib.contextmanager
    def lowered(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._saved = faiss.cvar.distance_compute_blas_threshold
                faiss.cvar.distance_compute_blas_threshold = min(self._saved, 1)
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    faiss.cvar.distance_compute_blas_threshold = self._saved


_BLAS = _BlasThreshold()


def always_blas() -> contextlib.AbstractContextManager[None]:
    """Run the block with faiss computing flat searches through BLAS, whatever the batch size."""
    return _BLAS.lowered()
