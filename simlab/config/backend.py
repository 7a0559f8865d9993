"""`model.backend`: the engine a transformer encoder runs on for evaluation, indexing and search.

The names and the packages each needs live here, at the ground floor, so a config naming a backend
whose packages are missing is refused when it is read (exit 2, with the install line), before any
work; `simlab.models.backends` implements them.
"""

from __future__ import annotations

import importlib.util
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

BackendName = Literal["torch", "torch-int8", "onnx", "onnx-int8", "openvino"]

BACKEND_PACKAGES: dict[str, tuple[tuple[str, ...], str]] = {
    "torch": ((), ""),
    "torch-int8": ((), ""),
    "onnx": (("onnxruntime", "onnx", "onnxscript"), "onnx"),
    "onnx-int8": (("onnxruntime", "onnx", "onnxscript"), "onnx"),
    "openvino": (("openvino", "onnx", "onnxscript"), "openvino"),
}
"""backend -> (the modules it imports, the simlab extra that installs them)."""


def missing_packages(backend: str, field: str = "model.backend") -> str | None:
    """Why `backend` cannot run here (its packages are not installed, checked without importing them), or None."""
    packages, extra = BACKEND_PACKAGES[backend]
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if not missing:
        return None
    return (
        f'{backend} needs {", ".join(missing)}, not installed here: `pip install "simlab[{extra}]"`, '
        f"or set {field}: torch"
    )


def _installed(value: str) -> str:
    problem = missing_packages(value)
    if problem:
        raise ValueError(problem)
    return value


Backend = Annotated[
    BackendName,
    AfterValidator(_installed),
    Field(
        description="Engine of the transformer for evaluation, indexing and search (never training): torch "
        "(float32), torch-int8 (dynamic int8 Linear layers), onnx / onnx-int8 (ONNX Runtime; extra simlab[onnx]), "
        "openvino (OpenVINO runtime; extra simlab[openvino]). See simlab.models.backends.",
    ),
]
