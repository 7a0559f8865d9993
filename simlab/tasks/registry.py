"""`TASKS`: the registered task kinds by name, and the decorator that registers one."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from simlab.errors import ConfigError

if TYPE_CHECKING:
    from simlab.tasks.base import Task

TASKS: dict[str, Task] = {}

T = TypeVar("T", bound=type)


def register_task(cls: T) -> T:
    """Class decorator: add a `Task` subclass to `TASKS` under its `name`.

    Raises:
        ValueError: the class lacks a rule every task must give, or the name is taken.
    """
    missing = [a for a in ("name", "schema", "reference_system") if not hasattr(cls, a)]
    if missing:
        raise ValueError(f"task {cls.__name__}: set {', '.join(missing)}")
    if cls.name in TASKS and type(TASKS[cls.name]) is not cls:
        raise ValueError(f"task {cls.name!r} is registered already ({type(TASKS[cls.name]).__name__})")
    TASKS[cls.name] = cls()
    return cls


def get_task(name: str) -> Task:
    """The registered task `name`; a `ConfigError` lists the registered ones."""
    if name not in TASKS:
        raise ConfigError(f"task: {name!r} is not a task; choose one of: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def task_name(raw: dict) -> str:
    """The task a raw config asks for, with the older spellings mapped (see the module docstring)."""
    task = raw.get("task", "retrieval")
    model = raw.get("model") if isinstance(raw.get("model"), dict) else {}
    if task == "retrieval" and model.get("kind") == "sparse":
        return "sparse"
    if task == "pairs" and raw.get("head") is not None:
        return "definitions"
    return task
