"""Reading a config: YAML in, `--set` overrides applied, sweep axes expanded, every point validated.

`load(path, overrides, schemas)` is the whole edge: it raises one `ConfigError` naming the file,
the grid point and the dotted field with what is allowed, before any work starts. The schemas
come from the caller (`simlab.tasks.load_config` passes the task registry), so this package
knows no task.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from simlab.config.base import Experiment, Section
from simlab.config.sweep import expand
from simlab.errors import ConfigError


def _fields_of(model: type[BaseModel], loc: tuple) -> list[str]:
    """Valid field names at `loc` (the parent of a rejected key), for the error message."""
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        inner = [a for a in typing.get_args(field.annotation) or (field.annotation,) if isinstance(a, type)]
        sub = next((a for a in inner if issubclass(a, BaseModel)), None)
        if sub is None:
            return []
        model = sub
    return sorted(model.model_fields)


def _format_error(source: str, err: ValidationError, schema: type[BaseModel]) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "missing":
            example = f"{dotted}.path" if dotted == "data" else dotted
            lines.append(f"{source}: {dotted}: missing; give it in the config or with --set {example}=...")
        elif e["type"] == "extra_forbidden":
            valid = _fields_of(schema, loc[:-1])
            lines.append(f"{source}: {dotted}: unknown field; valid fields here: {', '.join(valid)}")
        else:
            got = e.get("input")
            got_text = "" if isinstance(got, dict) else f" (got {got!r})"
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"{source}: {dotted}: {msg}{got_text}" if loc else f"{source}: {msg}")
    return "\n".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b.c=value` into (["a", "b", "c"], value parsed as YAML)."""
    import yaml

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected dotted.key=value, e.g. --set train.epochs=2")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({exc.problem})") from None
    return key.strip().split("."), value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Return a copy of `raw` with each `dotted.key=value` set (intermediate mappings created)."""
    out = copy.deepcopy(raw)
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for i, k in enumerate(keys[:-1]):
            child = node.setdefault(k, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(keys[: i + 1])} is a value, not a section")
            node = child
        node[keys[-1]] = value
    return out


def _unique_keys_loader():
    """A YAML SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""
    import yaml

    class UniqueKeys(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark
                    )
                seen[key] = key_node.start_mark.line
            return super().construct_mapping(node, deep)

    return UniqueKeys


def read_raw(path: str | Path | None, overrides: list[str]) -> tuple[str, dict]:
    """The config file as a plain dict with the overrides applied, and its name for messages."""
    import yaml

    raw: dict = {}
    source = "<defaults>"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            line = path.read_bytes()[: exc.start].count(b"\n") + 1
            raise ConfigError(f"{path}:{line}: not UTF-8 text (byte {exc.start}); save the config as UTF-8") from None
        try:
            raw = yaml.load(text, Loader=_unique_keys_loader()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections (data:, model:, ...)")
    return source, apply_overrides(raw, list(overrides))


def validate(source: str, raw: dict, schema: type[Experiment]) -> Experiment:
    """`raw` checked against `schema`; every problem in one `ConfigError` naming `source` and the field."""
    try:
        return schema.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_error(source, err, schema)) from None


def load(
    path: str | Path | None,
    overrides: list[str],
    schema_of: Callable[[str, dict], type[Experiment]],
    sweep: bool = True,
) -> list[tuple[str, Experiment]]:
    """Read, override, expand and validate a config: (run name, config) per grid point.

    Every grid point is validated before this returns, so a bad value anywhere fails before
    any run starts; its message names the file, the grid point and the dotted field
    (`exp.yaml [batch_size=1]: train.batch_size: ...`). A config without sweep axes gives
    one item named "".

    Args:
        path: The YAML file; None for the defaults.
        overrides: `dotted.key=value` strings (`--set`).
        schema_of: (source, raw config) -> the schema to validate against (the task's).
        sweep: False refuses a config with sweep axes (a list where a value belongs).
    """
    source, raw = read_raw(path, overrides)
    schema = schema_of(source, raw)
    try:
        points = expand(raw, schema)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if not sweep and points[0][0]:
        from simlab.config.sweep import sweep_axes

        raise ConfigError(
            f"{source}: {', '.join(sweep_axes(raw, schema))}: a list of values makes this config a sweep; "
            "run it with `simlab run` (library: load_sweep + run_sweep) or give one value"
        )
    return [(name, validate(f"{source} [{name}]" if name else source, point, schema)) for name, point in points]


def flat(d: Mapping, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`: a nested config as dotted keys (lists stay values)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out |= flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def differing_keys(old: Mapping, new: Mapping, ignore: set[str] = frozenset()) -> list[str]:
    """The dotted keys (`flat`) whose values differ between two configs as dicts, but for `ignore`."""
    a, b = flat(old), flat(new)
    return sorted(k for k in a.keys() | b.keys() if k not in ignore and a.get(k) != b.get(k))


def changed_fields(cfg: Section, paths: list[str]) -> list[str]:
    """The dotted `paths` whose value in `cfg` differs from the schema's default, for checks like
    "a sparse-only field in a dense config" (a resolved config.yaml spells every default out)."""
    found = []
    for path in paths:
        *parents, last = path.split(".")
        node: Any = cfg
        for key in parents:
            node = getattr(node, key)
        default = type(node).model_fields[last].get_default(call_default_factory=True)
        if getattr(node, last) != default:
            found.append(path)
    return found
