"""The console of a simlab command: library noise off, and progress bars only where they help.

`quiet` sets the heavy libraries' environment and log levels before they are imported. Piped or
logged (stderr not a terminal), progress bars are off: tqdm's, the hub's and the trainer's would
write a fragment per update into the file; the epoch lines and tables say what a log needs.
A long loop draws a bar only above a size, and never when bars are off (`wants_bar`).

`simlab` turns bars off when its output is piped or logged (`TQDM_DISABLE=1`, set by the CLI); a
library call given `show_progress_bar=True` explicitly would still draw one, since tqdm reads the
environment only for arguments it was not given. Every `show_progress_bar=` goes through `wants_bar`.
"""

from __future__ import annotations

import logging
import os
import sys


def quiet() -> None:
    """Progress bars off when piped, telemetry off, library logs at WARNING, simlab's at INFO."""
    if not sys.stderr.isatty():
        os.environ.setdefault("TQDM_DISABLE", "1")  # read by tqdm when it is first imported
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # mlflow sets its own level at import
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # read at its import; its warnings concern its internals
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("simlab").setLevel(logging.INFO)
    for noisy in ("mlflow", "bm25s", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def wants_bar(n: int, at_least: int) -> bool:
    """A progress bar for `n` items: from `at_least` items up, unless bars are off (`TQDM_DISABLE`)."""
    return n > at_least and os.environ.get("TQDM_DISABLE", "").lower() not in ("1", "true", "yes")
