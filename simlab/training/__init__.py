"""Training on the sentence-transformers trainers: dense retrieval (`dense`) and pair matching (`pairs`)."""

from __future__ import annotations

import os


def report_to(names: list[str]) -> list[str] | str:
    """The trainer's `report_to` for a config's `train.report_to` (`"none"` when empty).

    Those are the Hugging Face trainer's own integrations (tensorboard, wandb, clearml, ...),
    besides simlab's MLflow run. ClearML's offline mode (`CLEARML_OFFLINE_MODE=1`) cannot
    take the checkpoint upload the transformers callback makes on every save (clearml 2.1
    raises `'DummyModel' object has no attribute 'locked'`), so there, unless
    `CLEARML_LOG_MODEL` is set, checkpoints are not logged; metrics and the config are.
    """
    offline = os.environ.get("CLEARML_OFFLINE_MODE", "").lower() in ("1", "true", "yes", "on")
    if "clearml" in names and offline:
        os.environ.setdefault("CLEARML_LOG_MODEL", "false")
    return list(names) or "none"
