"""Which OpenBLAS core type faiss should run, decided before faiss loads (no faiss import here).

faiss-cpu wheels bundle their own OpenBLAS (0.3.15 in faiss-cpu 1.15), which picks its kernels
from the CPU model when the library loads. That old release does not know recent CPUs: on some
Intel Xeons it falls back to `Prescott` (SSE3 kernels) and exact batched search runs at a
quarter of the machine's speed, while numpy's newer OpenBLAS in the same process detects
`SkylakeX` (BENCHMARKS.md, "Dense search"). OpenBLAS reads the environment variable
`OPENBLAS_CORETYPE` once, when it loads, so the fix has to happen before `import faiss`:
`simlab.index.faiss_runtime` asks faiss's OpenBLAS, loaded alone in a child process, which core
it would pick, compares it with numpy's (threadpoolctl), and sets the variable only when faiss's
choice is an older class than numpy's and the user has not set it.

OpenBLAS 0.3.15 accepts the names `KNOWN_0_3_15` in `OPENBLAS_CORETYPE` (its
`driver/others/dynamic.c`, `force_coretype`, which scans the names up to `SkylakeX` only: an
unknown name, `Cooperlake` included, silently selects `Prescott`).

Example:
    >>> coretype_to_set(env={}, faiss_core="Prescott", numpy_core="SkylakeX")
    'SkylakeX'
    >>> coretype_to_set(env={}, faiss_core="Zen", numpy_core="SkylakeX") is None  # sensible already
    True
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "OPENBLAS_CORETYPE"

# Run in a child process: load one OpenBLAS and print the core it picks (threadpoolctl reads the same call).
_PROBE = (
    "import ctypes, sys\n"
    "lib = ctypes.CDLL(sys.argv[1])\n"
    "lib.openblas_get_corename.restype = ctypes.c_char_p\n"
    "print(lib.openblas_get_corename().decode())\n"
)

# Instruction-set class of each core name OpenBLAS reports (lower-cased): 0 = SSE only (e.g. Prescott),
# 1 = AVX, 2 = AVX2/FMA, 3 = AVX-512. Names of newer OpenBLAS releases are included (numpy's).
_CLASS: dict[str, int] = {
    **dict.fromkeys(
        [
            "unknown",
            "katmai",
            "coppermine",
            "northwood",
            "prescott",
            "banias",
            "atom",
            "core2",
            "penryn",
            "dunnington",
            "nehalem",
            "athlon",
            "opteron",
            "opteron_sse3",
            "barcelona",
            "nano",
            "bobcat",
        ],
        0,
    ),
    **dict.fromkeys(["sandybridge", "bulldozer", "piledriver", "steamroller"], 1),
    **dict.fromkeys(["haswell", "excavator", "zen"], 2),
    **dict.fromkeys(["skylakex", "cooperlake", "sapphirerapids"], 3),
}

KNOWN_0_3_15 = (
    "Katmai Coppermine Northwood Prescott Banias Atom Core2 Penryn Dunnington Nehalem Athlon Opteron "
    "Opteron_SSE3 Barcelona Nano Sandybridge Bobcat Bulldozer Piledriver Haswell Steamroller Excavator Zen "
    "SkylakeX"
).split()
"""The names OpenBLAS 0.3.15's `OPENBLAS_CORETYPE` accepts (any other name selects Prescott)."""

# Newer names -> the 0.3.15 name with the same sgemm kernels (Cooperlake's differ only in bfloat16).
_NEWER = {"cooperlake": "SkylakeX", "sapphirerapids": "SkylakeX"}

MODERN_CLASS = 2
"""A core of this class or above (AVX2) runs sgemm at full speed; below it faiss's choice is suspect."""


def core_class(name: str | None) -> int | None:
    """The instruction-set class (0 SSE .. 3 AVX-512) of an OpenBLAS core name; None if unknown."""
    return None if not name else _CLASS.get(name.lower())


def name_for_0_3_15(name: str | None) -> str | None:
    """The `OPENBLAS_CORETYPE` value OpenBLAS 0.3.15 accepts for a (possibly newer) core name, or None."""
    if not name:
        return None
    low = name.lower()
    if low in _NEWER:
        return _NEWER[low]
    return next((known for known in KNOWN_0_3_15 if known.lower() == low), None)


def coretype_to_set(*, env: Mapping[str, str], faiss_core: str | None, numpy_core: str | None) -> str | None:
    """The `OPENBLAS_CORETYPE` to set before faiss loads, or None to leave the environment alone.

    Set only when the user has not set it, faiss's OpenBLAS would pick a core below AVX2, and
    numpy's OpenBLAS (the reference: a newer release) reports a higher class that 0.3.15 can name.
    """
    if env.get(ENV_VAR):
        return None
    target = name_for_0_3_15(numpy_core)
    have, want = core_class(faiss_core), core_class(target)
    if target is None or have is None or want is None:
        return None
    if have >= MODERN_CLASS or want <= have:
        return None
    return target


@dataclass(frozen=True)
class BlasLib:
    """One OpenBLAS as threadpoolctl describes it."""

    filepath: str
    version: str | None
    core: str | None


def openblas_libs(info: Iterable[Mapping[str, object]]) -> list[BlasLib]:
    """The OpenBLAS libraries in `threadpoolctl.threadpool_info()` output."""
    return [
        BlasLib(str(i.get("filepath", "")), i.get("version"), i.get("architecture"))  # type: ignore[arg-type]
        for i in info
        if i.get("internal_api") == "openblas"
    ]


def split_faiss_numpy(libs: Iterable[BlasLib], faiss_lib_dir: str | None) -> tuple[BlasLib | None, BlasLib | None]:
    """(faiss's OpenBLAS, the reference OpenBLAS) among `libs`: faiss's is the one in `faiss_lib_dir`;
    the reference is numpy's if present, else any other."""
    faiss_lib = other = None
    for lib in libs:
        if faiss_lib_dir and lib.filepath.startswith(faiss_lib_dir):
            faiss_lib = faiss_lib or lib
        elif other is None or ("numpy" in lib.filepath and "numpy" not in other.filepath):
            other = lib
    return faiss_lib, other


def describe(lib: BlasLib | None) -> str:
    """`OpenBLAS 0.3.15 (Zen)` for a machine line; `no OpenBLAS` when absent."""
    if lib is None:
        return "no OpenBLAS"
    return f"OpenBLAS {lib.version or '?'} ({lib.core or '?'})"


def faiss_openblas_path() -> Path | None:
    """The OpenBLAS bundled with faiss-cpu (`faiss_cpu.libs/libopenblas*.so`), found without importing faiss."""
    spec = importlib.util.find_spec("faiss")
    if spec is None or not spec.submodule_search_locations:
        return None
    libs = Path(next(iter(spec.submodule_search_locations))).parent / "faiss_cpu.libs"
    found = sorted(libs.glob("libopenblas*.so*"))
    return found[0] if found else None


def probe_core(library: Path) -> str | None:
    """The core type `library` (an OpenBLAS) picks on this CPU by itself, loaded in a child process
    without `OPENBLAS_CORETYPE`; None if that fails. Loading it here would fix the choice for good."""
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env["OPENBLAS_NUM_THREADS"] = "1"
    # its dependencies (libgfortran, libgomp) sit next to it, found through faiss' RPATH otherwise
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(library.parent), env.get("LD_LIBRARY_PATH")) if p)
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _PROBE, str(library)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[-1].strip() if done.returncode == 0 and lines else None
