"""Sweep axes: a list given where the schema expects one value is an axis; several make a grid.

A list given where the schema expects one value (`--set sampling.pos_neg_ratio=[1,2,4,8]`)
is a sweep axis; several axes make a grid (their cartesian product). A field whose type is
itself a list (`eval.metrics`) is an axis only when given a list of lists
(`eval.metrics=[[ndcg@10],[mrr@10]]`). Expansion works on the raw YAML dict, before
validation; `simlab.config.loading.load` then validates every grid point, and
`simlab.experiments.sweep` runs them.
"""

from __future__ import annotations

import copy
import itertools
import re
import types
import typing
from typing import Any

from pydantic import BaseModel

from simlab.errors import ConfigError


def _options(annotation: Any) -> tuple:
    """The alternatives of a union annotation (`int | None` -> (int, NoneType)), else (annotation,)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _section(annotation: Any) -> type[BaseModel] | None:
    """The config section (a pydantic model) a field holds, or None for a value field."""
    return next((a for a in _options(annotation) if isinstance(a, type) and issubclass(a, BaseModel)), None)


def _is_list_field(annotation: Any) -> bool:
    return any(a is list or typing.get_origin(a) is list for a in _options(annotation))


def _is_axis(value: Any, annotation: Any) -> bool:
    if not isinstance(value, list):
        return False
    if _is_list_field(annotation):
        return bool(value) and all(isinstance(v, list) for v in value)
    return _section(annotation) is None


def sweep_axes(raw: dict, schema: type[BaseModel], prefix: str = "") -> dict[str, list]:
    """The sweep axes of a raw config: dotted key -> the values to sweep, in file order.

    Example: `{"train": {"epochs": [1, 2], "seed": 3}}` -> `{"train.epochs": [1, 2]}`.

    Unknown keys are ignored here; validation reports them.
    """
    axes: dict[str, list] = {}
    for key, value in raw.items():
        field = schema.model_fields.get(str(key))
        if field is None:
            continue
        dotted = f"{prefix}{key}"
        section = _section(field.annotation)
        if section is not None and isinstance(value, dict):
            axes |= sweep_axes(value, section, dotted + ".")
        elif _is_axis(value, field.annotation):
            axes[dotted] = value
    return axes


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, list):
        return "+".join(_format_value(v) for v in value) or "empty"
    return str(value)


def _labels(keys: list[str]) -> dict[str, str]:
    """Dotted key -> its last component, or the whole key when two keys share the last component."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: short if last.count(short) == 1 else k for k, short in zip(keys, last)}


def _safe_name(text: str) -> str:
    """A folder name: anything but letters, digits and `._@+=,-` becomes `_`."""
    return re.sub(r"[^A-Za-z0-9._@+=,\-]", "_", text)


def _set(raw: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = raw
    for key in parents:
        node = node[key]
    node[last] = value


def expand(raw: dict, schema: type[BaseModel]) -> list[tuple[str, dict]]:
    """Expand the sweep axes of a raw config into one raw config per grid point.

    Grid points are the cartesian product of the axes, the first axis varying slowest. A
    point's name joins `key=value` for the axes with more than one value (all axes if none
    has), `key` being the field's last dotted component unless two axes share it.

    Example: `sampling.pos_neg_ratio=[1, 2]` and `sampling.hard_soft_ratio=[0.5, 0.7]` ->
    `pos_neg_ratio=1,hard_soft_ratio=0.5`, `pos_neg_ratio=1,hard_soft_ratio=0.7`, ...

    Args:
        raw: The config as read from YAML, overrides applied.
        schema: The task's config class (`simlab.config.TASKS[task]`), which says where a
            list is a value and where it is a sweep.

    Returns:
        (run name, raw config) per grid point; `[("", raw)]` when there is no axis.

    Raises:
        ConfigError: an axis has no value, or two grid points get the same name.
    """
    axes = sweep_axes(raw, schema)
    if not axes:
        return [("", raw)]
    for key, values in axes.items():
        if not values:
            raise ConfigError(f"{key}: an empty list sweeps nothing; give one value or a list of values")
    labels = _labels(list(axes))
    named = [k for k, values in axes.items() if len(values) > 1] or list(axes)
    points: list[tuple[str, dict]] = []
    for combo in itertools.product(*axes.values()):
        point = copy.deepcopy(raw)
        for key, value in zip(axes, combo):
            _set(point, key, value)
        chosen = dict(zip(axes, combo))
        name = _safe_name(",".join(f"{labels[k]}={_format_value(chosen[k])}" for k in named))
        points.append((name, point))
    names = [n for n, _ in points]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(
            f"several grid points would be named {', '.join(twice)}; remove the repeated value from the sweep list"
        )
    return points
