"""simlab: neural matching and retrieval experiments from one YAML file.

The Python API (see ARCHITECTURE.md for the layers behind it):

    >>> import simlab
    >>> run = simlab.run("examples/dense.yaml", overrides=["train.epochs=1"], out="runs/r1")  # doctest: +SKIP
    >>> run.metrics["trained.flat"]["ndcg@10"], run.score                                      # doctest: +SKIP
    >>> run.search("boundary layer flow", k=5)                                                # doctest: +SKIP
    >>> table = simlab.compare([run, "runs/r2"], metrics=["ndcg@10"])                          # doctest: +SKIP
    >>> print(table.to_markdown()); table.to_frame()                                          # doctest: +SKIP

`run`, `load_run`, `compare` (simlab.experiments.api), `load_config`, `load_sweep`, and the
registration decorators that plug a user's own part in by name: `register_model`,
`register_loss`, `register_converter`, `register_index`, `register_task`. Heavy libraries
(torch, sentence-transformers, faiss, mlflow) are imported only when used, so `import simlab`
and `simlab --help` stay instant.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "run": "simlab.experiments.api",
    "load_run": "simlab.experiments.api",
    "compare": "simlab.experiments.api",
    "Run": "simlab.experiments.api",
    "load_config": "simlab.tasks",
    "load_sweep": "simlab.tasks",
    "register_task": "simlab.tasks.registry",
    "register_model": "simlab.models",
    "register_loss": "simlab.training.pair_losses",
    "register_converter": "simlab.data.loader",
    "register_index": "simlab.index.dense",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'simlab' has no attribute {name!r}")
