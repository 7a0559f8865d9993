"""The exceptions simlab raises for user mistakes.

Every message names the file, line or field at fault and says how to fix it. The CLI
prints `SimlabError`s without a traceback and exits with `exit_code`.
"""

from __future__ import annotations


class SimlabError(Exception):
    """Base class: a problem the user can fix. The CLI prints it and exits with `exit_code`.

    Every subclass below is a user mistake (a file, a field, an artifact) and exits with 2; exit
    1 is left for bugs (any other exception).
    """

    exit_code = 1


class ConfigError(SimlabError):
    """An experiment config (file, field or `--set` override) is invalid."""

    exit_code = 2


class DataError(SimlabError):
    """An input data file is missing or malformed; the message names `file:line`."""

    exit_code = 2


class IndexMismatchError(SimlabError):
    """A saved index does not fit the model or query vectors it is used with."""

    exit_code = 2


class ModelLoadError(SimlabError):
    """A model name or path cannot be loaded (e.g. the Hugging Face hub is unreachable)."""

    exit_code = 2


class RunFolderError(SimlabError):
    """A run folder is missing, incomplete, or would be overwritten."""

    exit_code = 2
