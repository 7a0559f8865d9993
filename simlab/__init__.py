"""simlab: neural matching and retrieval experiments from one YAML file.

Heavy libraries (torch, sentence-transformers, faiss, mlflow) are imported inside the
functions that need them, so importing this package and `simlab --help` stay instant.
"""

from __future__ import annotations

__version__ = "0.1.0"
