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
    ClearML reports from a thread rather than a forked process (see below).
    """
    offline = os.environ.get("CLEARML_OFFLINE_MODE", "").lower() in ("1", "true", "yes", "on")
    if "clearml" in names and offline:
        os.environ.setdefault("CLEARML_LOG_MODEL", "false")
    if "clearml" in names:
        # On Linux clearml reports from a forked subprocess (`sdk.development.report_use_subprocess`); a fork of
        # a process already running torch and tokenizers threads can deadlock (seen here: parent and child both
        # waiting on futexes, forever), so report from a thread, as that setting does when false.
        from clearml import Task

        Task._report_subprocess_enabled = False
    return list(names) or "none"
