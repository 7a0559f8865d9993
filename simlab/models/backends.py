"""Inference backends for transformer encoders on CPU (`model.backend`).

`with_backend(model, name)` returns a copy of a `SentenceTransformer` whose Hugging Face
transformers (every `Transformer` module, inside routers and `ContextPooling` too) run on another
engine; tokenisation, pooling and normalisation stay the model's own modules, so vectors keep
their meaning and `encode`, `encode_query` and `encode_document` work unchanged. Evaluation,
indexing and search encode through it; training never does.

| backend | engine | weights |
|---|---|---|
| `torch` | PyTorch (the model as loaded) | float32 |
| `torch-int8` | PyTorch dynamic quantisation of every `nn.Linear` | int8 per output row; activations on the fly |
| `onnx` | ONNX Runtime (all graph optimisations) | float32 |
| `onnx-int8` | ONNX Runtime, `onnxruntime.quantization.quantize_dynamic` (per channel) | int8 |
| `openvino` | OpenVINO runtime, compiled from the same ONNX export | float32, run in bfloat16 where the CPU has it |

OpenVINO's CPU plugin computes in bfloat16 by default where the CPU has bfloat16 instructions (its
`INFERENCE_PRECISION_HINT`); on MiniLM that moved WiC-TSV accuracy by 0.0026 and nDCG@10 by less than 0.0001
(BENCHMARKS.md, "Transformer backends on CPU").

Why not sentence-transformers' own `backend="onnx" | "openvino"`: it loads models through Optimum
(`optimum.onnxruntime`, `optimum.intel`), and no release of those fits the transformers 5 this
simlab runs on: optimum-onnx 0.1.0 (the newest) requires `transformers<4.58`, and optimum-intel
2.2.0 requires `transformers<5.6` and `huggingface-hub<1.22` (pip would downgrade transformers and
the hub client, and reinstall torch with CUDA). So the export is done here with what installs
cleanly beside them: `torch.onnx.export(dynamo=True)` (the TorchScript exporter mis-traces
transformers 5's attention masks), onnxruntime, and the `openvino` runtime, which reads ONNX files.

Exports are cached under `<cache>/backends/v1/<key>/<backend>/` (`cache_root()`: `SIMLAB_CACHE`,
else `~/.cache/simlab`), where `key` hashes the transformer's config and weights, so a fine-tuned
model gets its own export and an unchanged one is exported once. A folder is written whole (staged
and renamed) and never deleted or rewritten by simlab.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from simlab.errors import ConfigError, ModelLoadError
from simlab.fsutil import cache_root

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

EXPORT_FORMAT, EXPORT_VERSION = "simlab.backend-export", 1
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def with_backend(model: SentenceTransformer, backend: str, field: str = "model.backend") -> SentenceTransformer:
    """`model` itself for `torch`; otherwise a copy whose transformers run on `backend` (see the module doc).

    Raises:
        ConfigError: an unknown backend, its packages not installed, or a model without a transformer
            (a static embedding), naming `field` and the fix.
    """
    from sentence_transformers.base.modules import Transformer

    if backend == "torch":
        return model
    check_backend(backend, field)
    if not any(isinstance(m, Transformer) for m in model.modules()):
        raise ConfigError(
            f"{field}: {backend} runs transformer models, and this model has none (a static embedding is already "
            f"a table look-up); set {field}: torch"
        )
    out = copy.deepcopy(model).eval()
    for module in [m for m in out.modules() if isinstance(m, Transformer)]:
        module.model = BACKENDS[backend](module.model.eval())
    return out


def check_backend(backend: str, field: str = "model.backend") -> None:
    """`backend` is known and its packages are importable (`simlab.config.backend`), else a `ConfigError`."""
    from simlab.config.backend import missing_packages

    if backend not in BACKENDS:
        raise ConfigError(f"{field}: {backend!r} is not a backend; choose one of {', '.join(BACKEND_NAMES)}")
    problem = missing_packages(backend, field)
    if problem:
        raise ConfigError(f"{field}: {problem}")


def _quantized_torch(hf_model: torch.nn.Module) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        qconfig = torch.ao.quantization.per_channel_dynamic_qconfig  # per row: cosine to float32 ~0.98, not ~0.94
        return torch.ao.quantization.quantize_dynamic(hf_model, {torch.nn.Linear: qconfig}, torch.qint8)


def model_key(hf_model: torch.nn.Module) -> str:
    """sha256 (first 16 hex digits) of the transformer's class, config and weights: the export's cache key."""
    digest = hashlib.sha256(type(hf_model).__name__.encode())
    digest.update(hf_model.config.to_json_string(use_diff=False).encode())
    for name, tensor in sorted(hf_model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _hidden_states(hf_model) -> bool:
    """The model's callers read every layer (`ContextPooling` sets `output_hidden_states`)."""
    return bool(getattr(hf_model.config, "output_hidden_states", False))


class _Exportable(torch.nn.Module):
    """The transformer as a function of plain tensors, returning its token vectors (and every layer's)."""

    def __init__(self, hf_model, hidden: bool, token_types: bool):
        super().__init__()
        self.inner, self.hidden, self.token_types = hf_model, hidden, token_types

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kwargs = {"token_type_ids": token_type_ids} if self.token_types else {}
        out = self.inner(
            input_ids=input_ids,
            attention_mask=attention_mask,
            output_hidden_states=self.hidden,
            return_dict=True,
            **kwargs,
        )
        return (out.last_hidden_state, *out.hidden_states) if self.hidden else out.last_hidden_state


def _takes_token_types(hf_model) -> bool:
    import inspect

    return "token_type_ids" in inspect.signature(hf_model.forward).parameters


def export_onnx(hf_model, folder: Path) -> Path:
    """`folder/model.onnx` (float32) of `hf_model`, through torch's dynamo exporter; batch and length dynamic."""
    hidden, token_types = _hidden_states(hf_model), _takes_token_types(hf_model)
    names = list(INPUTS if token_types else INPUTS[:2])
    # a padded row in the example batch, so the exported graph keeps the attention mask's general path
    example = (
        torch.tensor([[101, 2000, 2001, 102], [101, 2002, 102, 0]]),
        torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]),
        torch.zeros(2, 4, dtype=torch.long),
    )[: len(names)]
    n_layers = getattr(hf_model.config, "num_hidden_layers", 0)
    outputs = ["last_hidden_state", *([f"hidden_state_{i}" for i in range(n_layers + 1)] if hidden else [])]
    axes = {n: {0: "batch", 1: "length"} for n in [*names, *outputs]}
    path = folder / "model.onnx"
    with warnings.catch_warnings(), torch.no_grad(), _quiet("torch.onnx", "torch.export", "onnxscript"):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Exportable(hf_model, hidden, token_types).eval(),
            example,
            str(path),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    return path


@contextlib.contextmanager
def _quiet(*loggers: str):
    """The exporters' and quantiser's log chatter (skipped torchvision ops, optimisation advice) hidden."""
    import logging

    found = [logging.getLogger(None if name == "root" else name) for name in loggers]
    saved = [(logger, logger.level) for logger in found]
    for logger in found:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


def _write_export(hf_model, backend: str, folder: Path) -> None:
    """Everything `backend` loads, written into `folder` (a fresh staged folder)."""
    from simlab.fsutil import write_json

    onnx_path = export_onnx(hf_model, folder)
    if backend == "onnx-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with _quiet("root", "onnxruntime"):  # its advice to pre-process the graph (shape inference) first
            quantize_dynamic(
                str(onnx_path), str(folder / "model.int8.onnx"), weight_type=QuantType.QInt8, per_channel=True
            )
        onnx_path.unlink()  # the float32 graph was only the quantiser's input
    write_json(
        folder / "meta.json",
        {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_VERSION,
            "backend": backend,
            "architecture": type(hf_model).__name__,
            "hidden_states": _hidden_states(hf_model),
            "inputs": list(INPUTS if _takes_token_types(hf_model) else INPUTS[:2]),
        },
    )


def exported(hf_model, backend: str, root: Path | None = None) -> Path:
    """The cached export folder of `hf_model` for `backend`, written on first use (see the module doc)."""
    from simlab.errors import RunFolderError
    from simlab.fsutil import read_meta, staged_dir

    variant = f"{backend}-hidden" if _hidden_states(hf_model) else backend
    folder = (root or cache_root()) / "backends" / f"v{EXPORT_VERSION}" / model_key(hf_model) / variant
    if not (folder / "meta.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            with staged_dir(folder) as tmp:
                _write_export(hf_model, backend, tmp)
        except RunFolderError:
            if not (folder / "meta.json").is_file():  # not another process finishing the same export first
                raise
    how = "it is simlab's export cache; move it away (simlab never deletes it) to export again, or set SIMLAB_CACHE"
    read_meta(folder, EXPORT_FORMAT, EXPORT_VERSION, "backend export", how)
    return folder


def _model_file(folder: Path) -> Path:
    found = sorted(folder.glob("*.onnx"))
    if len(found) != 1:
        raise ModelLoadError(
            f"{folder}: expected one .onnx file, found {len(found)}; move the folder away to re-export"
        )
    return found[0]


def _ort_runner(graph: bytes) -> Callable[[dict], list]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(None, feeds)


def _openvino_runner(graph: bytes) -> Callable[[dict], list]:
    import io

    import openvino as ov

    core = ov.Core()
    model = core.read_model(io.BytesIO(graph))  # OpenVINO's ONNX frontend reads the graph from memory
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": torch.get_num_threads()})
    request = compiled.create_infer_request()

    def run(feeds: dict) -> list:
        result = request.infer(feeds)
        return [result[out] for out in compiled.outputs]

    return run


RUNNERS: dict[str, Callable[[bytes], Callable[[dict], list]]] = {
    "onnxruntime": _ort_runner,
    "openvino": _openvino_runner,
}


class RuntimeModel(torch.nn.Module):
    """Stands in for the Hugging Face model inside a `Transformer` module: the same inputs and outputs
    (`last_hidden_state`, and `hidden_states` when the export has every layer), computed by an exported graph
    on `engine` (a `RUNNERS` key). It pickles as the graph's bytes, so Ray's encoding actors get it whole."""

    def __init__(self, config, graph: bytes, engine: str, inputs: list[str]):
        super().__init__()
        self.config, self.graph, self.engine, self.inputs = config, graph, engine, inputs
        self.run = RUNNERS[engine](graph)
        self.device, self.dtype = torch.device("cpu"), torch.float32

    def __reduce__(self):
        return (RuntimeModel, (self.config, self.graph, self.engine, self.inputs))

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, **_) -> dict[str, Any]:
        import numpy as np

        given = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids) if attention_mask is None else attention_mask,
            "token_type_ids": torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids,
        }
        feeds = {n: np.ascontiguousarray(given[n].cpu().numpy(), dtype=np.int64) for n in self.inputs}
        outs = [torch.from_numpy(np.asarray(o)) for o in self.run(feeds)]  # (batch, length, hidden) each
        result: dict[str, Any] = {"last_hidden_state": outs[0]}
        if len(outs) > 1:
            result["hidden_states"] = tuple(outs[1:])
        return result


def _runtime(backend: str, engine: str) -> Callable[[Any], Any]:
    def build(hf_model):
        folder = exported(hf_model, backend)
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        return RuntimeModel(hf_model.config, _model_file(folder).read_bytes(), engine, meta["inputs"]).eval()

    return build


BACKENDS: dict[str, Callable[[Any], Any]] = {
    "torch": lambda hf_model: hf_model,
    "torch-int8": _quantized_torch,
    "onnx": _runtime("onnx", "onnxruntime"),
    "onnx-int8": _runtime("onnx-int8", "onnxruntime"),
    "openvino": _runtime("onnx", "openvino"),  # OpenVINO compiles the float32 ONNX export
}
"""`model.backend` -> builder of the module that replaces a transformer (see the module doc's table); the names
are `simlab.config.backend.BackendName`'s."""
BACKEND_NAMES: tuple[str, ...] = tuple(BACKENDS)
