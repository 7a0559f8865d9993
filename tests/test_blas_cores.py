"""faiss' OpenBLAS core type: the decision (pure functions on fake threadpool info) and the real import."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simlab.index.blas_cores import (
    ENV_VAR,
    KNOWN_0_3_15,
    BlasLib,
    core_class,
    coretype_to_set,
    describe,
    name_for_0_3_15,
    openblas_libs,
    split_faiss_numpy,
)

ROOT = Path(__file__).resolve().parents[1]
FAISS_DIR = "/venv/site-packages/faiss_cpu.libs"


def fake_info(faiss_core: str, numpy_core: str) -> list[dict]:
    """threadpoolctl.threadpool_info() as it looks with faiss and numpy loaded (plus OpenMP)."""
    return [
        {
            "user_api": "blas",
            "internal_api": "openblas",
            "filepath": f"{FAISS_DIR}/libopenblaso-r0-d77a1985.3.15.so",
            "version": "0.3.15",
            "architecture": faiss_core,
        },
        {
            "user_api": "blas",
            "internal_api": "openblas",
            "filepath": "/venv/site-packages/numpy.libs/libscipy_openblas64_-32a4b2a6.so",
            "version": "0.3.31.188.0",
            "architecture": numpy_core,
        },
        {"user_api": "openmp", "internal_api": "openmp", "filepath": "/x/libgomp.so", "version": None},
    ]


def decide(info: list[dict], env: dict[str, str]) -> str | None:
    faiss_lib, numpy_lib = split_faiss_numpy(openblas_libs(info), FAISS_DIR)
    return coretype_to_set(env=env, faiss_core=faiss_lib.core, numpy_core=numpy_lib.core)


def test_prescott_faiss_with_skylakex_numpy_sets_skylakex():
    assert decide(fake_info("Prescott", "SkylakeX"), env={}) == "SkylakeX"


@pytest.mark.parametrize(
    ("numpy_core", "expected"),
    [("SapphireRapids", "SkylakeX"), ("Cooperlake", "SkylakeX"), ("Haswell", "Haswell"), ("Zen", "Zen")],
)
def test_newer_names_map_to_names_0_3_15_accepts(numpy_core, expected):
    # 0.3.15's force_coretype scans the names up to SkylakeX only: "Cooperlake" would select Prescott
    assert decide(fake_info("Prescott", numpy_core), env={}) == expected
    assert expected in KNOWN_0_3_15 and "Cooperlake" not in KNOWN_0_3_15


def test_user_setting_is_never_touched():
    assert decide(fake_info("Prescott", "SkylakeX"), env={ENV_VAR: "Prescott"}) is None
    assert decide(fake_info("Prescott", "SkylakeX"), env={ENV_VAR: "Haswell"}) is None


@pytest.mark.parametrize(
    ("faiss_core", "numpy_core"),
    [
        ("SkylakeX", "SkylakeX"),  # same cores
        ("Haswell", "Haswell"),
        ("Zen", "SkylakeX"),  # AMD Zen 4: 0.3.15 says Zen (AVX2), sensible already
        ("Prescott", "Prescott"),  # an old CPU: both agree
        ("Prescott", "Nehalem"),  # numpy's core is no better than SSE either
        ("Prescott", "NewCore2030"),  # a name nobody can map
        ("Prescott", None),  # numpy without OpenBLAS
    ],
)
def test_left_alone(faiss_core, numpy_core):
    assert coretype_to_set(env={}, faiss_core=faiss_core, numpy_core=numpy_core) is None


def test_sandybridge_on_an_avx2_machine_is_raised():
    assert coretype_to_set(env={}, faiss_core="Sandybridge", numpy_core="Haswell") == "Haswell"


def test_core_names():
    assert core_class("prescott") == 0 and core_class("SkylakeX") == 3 and core_class("nope") is None
    assert name_for_0_3_15("skylakex") == "SkylakeX" and name_for_0_3_15("NewCore2030") is None
    faiss_lib, numpy_lib = split_faiss_numpy(openblas_libs(fake_info("Zen", "SkylakeX")), FAISS_DIR)
    assert (faiss_lib.core, numpy_lib.core) == ("Zen", "SkylakeX")
    assert describe(BlasLib("x", "0.3.15", "Zen")) == "OpenBLAS 0.3.15 (Zen)" and describe(None) == "no OpenBLAS"


def test_every_faiss_import_goes_through_faiss_runtime():
    offenders = []
    for path in sorted((ROOT / "simlab").rglob("*.py")):
        if path.name == "faiss_runtime.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            if any(n == "faiss" or n.startswith("faiss.") for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"import faiss outside simlab.index.faiss_runtime: {offenders}"


def _run(code: str, env: dict[str, str]) -> dict:
    env = {**env, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


REPORT = """
import json, os
from threadpoolctl import threadpool_info
from simlab.index.faiss_runtime import blas_check, faiss
check = blas_check()
cores = {i["filepath"]: i.get("architecture") for i in threadpool_info() if i.get("internal_api") == "openblas"}
print(json.dumps({"faiss": cores.get(check.faiss.filepath) if check.faiss else None,
                  "numpy": cores.get(check.reference.filepath) if check.reference else None,
                  "set": check.set_coretype, "env": os.environ.get("OPENBLAS_CORETYPE"), "message": check.message}))
"""


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != ENV_VAR}


def test_faiss_openblas_is_not_prescott_class_when_numpy_is_modern():
    """The real import in a fresh process: faiss' OpenBLAS core (threadpoolctl) is of numpy's class when
    numpy's is AVX2 or newer (on a CPU that 0.3.15 mistakes for Prescott, simlab sets the core type)."""
    got = _run(REPORT, _clean_env())
    if got["faiss"] is None or got["numpy"] is None:
        pytest.skip("faiss or numpy does not use OpenBLAS here")
    if core_class(got["numpy"]) >= 2:
        assert core_class(got["faiss"]) >= 2, got
    assert got["env"] is None  # the variable was only set for faiss' import


def test_a_mistaken_core_is_corrected_at_import():
    """faiss' OpenBLAS said to pick Prescott on its own (the probe replaced): simlab loads it with numpy's
    core type, threadpoolctl then reports that core, the environment is restored, and the log says so."""
    code = "from simlab.index import blas_cores\nblas_cores.probe_core = lambda path: 'Prescott'\n" + REPORT
    got = _run(code, _clean_env())
    if got["faiss"] is None or got["numpy"] is None or core_class(got["numpy"]) < 2:
        pytest.skip("needs OpenBLAS in faiss and numpy, and an AVX2 machine")
    expected = name_for_0_3_15(got["numpy"])
    assert got["set"] == expected and got["faiss"] == expected, got
    assert got["env"] is None
    assert f"OPENBLAS_CORETYPE={expected}" in got["message"] and "Prescott" in got["message"]


def test_a_user_core_type_is_kept():
    got = _run(REPORT, {**_clean_env(), ENV_VAR: "Haswell"})
    if got["faiss"] is None:
        pytest.skip("faiss does not use OpenBLAS here")
    assert got["set"] is None and got["env"] == "Haswell" and got["faiss"] == "Haswell"
