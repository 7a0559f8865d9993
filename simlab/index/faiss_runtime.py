"""The one place simlab imports faiss, and faiss' process-wide settings changed for a block of code.

Import: every simlab module gets faiss as `from simlab.index.faiss_runtime import faiss` (never
`import faiss`), so the BLAS check below runs before faiss' first import. Importing this
module imports faiss; `simlab.index` and the CLI import it lazily.

BLAS check (`simlab.index.blas_cores`): faiss-cpu's bundled OpenBLAS 0.3.15 runs SSE3
(`Prescott`) kernels on some CPUs it does not know, making exact batched search about 4x
slower. When `OPENBLAS_CORETYPE` is not set, faiss' OpenBLAS is first loaded alone in a child
process to see which core it would pick; if that is below AVX2 while numpy's OpenBLAS reports a
newer core, faiss is imported with `OPENBLAS_CORETYPE` set to numpy's core (in a name 0.3.15
knows) and the variable is then restored. After the import, threadpoolctl tells which core
faiss' OpenBLAS runs; `blas_check()` returns the outcome (also logged once on logger "simlab").

Threads: faiss parallelises with OpenMP over all cores by default. simlab never changes that
global at import; `faiss_threads` limits it for a block of code (the previous value is
restored), and `DenseIndex.search(threads=...)` uses it for one call.

BLAS threshold: faiss 1.15 computes a flat (exact) search through BLAS only when
`n_queries * dim >= faiss.cvar.distance_compute_blas_threshold` (default 128,000, i.e.
500 queries at dim 256); smaller batches take a per-query loop. `always_blas` sets that
global to 1 for the duration of a block and restores it afterwards, also when several
threads use it at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy  # noqa: F401  (loads numpy's OpenBLAS, the reference core, before faiss)

from simlab.index import blas_cores
from simlab.index.blas_cores import (
    ENV_VAR,
    MODERN_CLASS,
    BlasLib,
    core_class,
    coretype_to_set,
    describe,
    openblas_libs,
    split_faiss_numpy,
)

log = logging.getLogger("simlab")


@dataclass(frozen=True)
class BlasCheck:
    """What the BLAS check found and did when simlab first imported faiss.

    Attributes:
        faiss: faiss' OpenBLAS after the import (None: faiss uses another BLAS).
        reference: numpy's OpenBLAS (None: numpy uses another BLAS).
        probed: The core faiss' OpenBLAS picks on its own (child process); None when not probed.
        set_coretype: The `OPENBLAS_CORETYPE` simlab set for the import, or None.
        user_coretype: The user's own `OPENBLAS_CORETYPE`, if any (then never changed).
        message: The one line logged.
    """

    faiss: BlasLib | None
    reference: BlasLib | None
    probed: str | None
    set_coretype: str | None
    user_coretype: str | None
    message: str

    def summary(self) -> str:
        """E.g. `faiss OpenBLAS 0.3.15 (SkylakeX), OPENBLAS_CORETYPE=SkylakeX set by simlab; on its own Prescott;
        numpy OpenBLAS 0.3.31 (SkylakeX)`: both libraries' versions and core types, for a machine line."""
        how = ""
        if self.set_coretype:
            how = f", {ENV_VAR}={self.set_coretype} set by simlab; on its own {self.probed}"
        elif self.user_coretype:
            how = f", {ENV_VAR}={self.user_coretype} set by the user"
        return f"faiss {describe(self.faiss)}{how}; numpy {describe(self.reference)}"


def _threadpool_openblas() -> list[BlasLib]:
    from threadpoolctl import threadpool_info

    return openblas_libs(threadpool_info())


def _import_faiss():
    """Import faiss after the BLAS check; returns (faiss module, BlasCheck)."""
    already = "faiss" in sys.modules
    user = os.environ.get(ENV_VAR) or None
    lib_path = blas_cores.faiss_openblas_path()
    lib_dir = str(lib_path.parent) if lib_path else None
    _, reference = split_faiss_numpy(_threadpool_openblas(), lib_dir)
    probed = set_to = None
    if not already and not user and lib_path and reference and (core_class(reference.core) or 0) >= MODERN_CLASS:
        probed = blas_cores.probe_core(lib_path)  # module attribute: tests replace it
        set_to = coretype_to_set(env=os.environ, faiss_core=probed, numpy_core=reference.core)
    if set_to:
        os.environ[ENV_VAR] = set_to
    try:
        import faiss
    finally:
        if set_to:
            os.environ.pop(ENV_VAR, None)  # only faiss' OpenBLAS needed it; child processes check again
    faiss_lib, reference = split_faiss_numpy(_threadpool_openblas(), lib_dir)
    message, level = _verdict(BlasCheck(faiss_lib, reference, probed, set_to, user, ""), already)
    log.log(level, message)
    return faiss, BlasCheck(faiss_lib, reference, probed, set_to, user, message)


def _verdict(check: BlasCheck, already: bool) -> tuple[str, int]:
    """The log line (and level) for the outcome of the BLAS check."""
    got = check.faiss.core if check.faiss else None
    ref = check.reference.core if check.reference else None
    weak = (core_class(got) if got else MODERN_CLASS) < MODERN_CLASS
    if check.set_coretype:
        if got and got.lower() == check.set_coretype.lower():
            return (
                f"faiss' OpenBLAS {check.faiss.version} picks {check.probed} kernels on this CPU (numpy's "
                f"{describe(check.reference)} knows better); loaded it with {ENV_VAR}={check.set_coretype}: "
                f"it now runs {got} kernels",
                logging.INFO,
            )
        return (
            f"faiss' OpenBLAS was loaded with {ENV_VAR}={check.set_coretype} but reports {got}; "
            "exact search may run slower than numpy's matrix products",
            logging.WARNING,
        )
    if weak and (core_class(ref) or 0) >= MODERN_CLASS and not check.user_coretype:
        fix = f"set {ENV_VAR}=<core> (e.g. {ref}) before faiss is imported"
        why = "faiss was imported before simlab could check it" if already else "the core could not be mapped"
        return (
            f"faiss' {describe(check.faiss)} runs slow {got} kernels while numpy's {describe(check.reference)} "
            f"uses {ref} ({why}); {fix}",
            logging.WARNING,
        )
    return f"BLAS: {check.summary()}; nothing to change", logging.DEBUG


faiss, _CHECK = _import_faiss()


def blas_check() -> BlasCheck:
    """What the BLAS check found and did when simlab imported faiss (see the module docstring)."""
    return _CHECK


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
