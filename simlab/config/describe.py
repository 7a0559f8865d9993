"""A task's config as YAML with every default and a comment per field (`simlab config show TASK`)."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from simlab.config.sweep import _section


def _value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("...").strip()


def schema_yaml(schema: type[BaseModel], defaults: BaseModel | None = None, indent: int = 0) -> str:
    """Every field of `schema` with its default (the values of `defaults` when given: a section's default may
    differ from its class's, e.g. pairs' plateau scheduler), `REQUIRED` where there is none, and its description.
    """
    lines = []
    pad = "  " * indent
    for name, field in schema.model_fields.items():
        comment = f"  # {field.description}" if field.description else ""
        required = field.default is PydanticUndefined and field.default_factory is None
        default = getattr(defaults, name) if defaults is not None else (
            None if required else field.get_default(call_default_factory=True)
        )  # fmt: skip
        section = _section(field.annotation)
        if section is not None and (required or isinstance(default, BaseModel)):
            lines += [f"{pad}{name}:{comment}", schema_yaml(section, default, indent + 1)]
        else:
            shown = "REQUIRED" if required and defaults is None else _value(default)
            lines.append(f"{pad}{name}: {shown}{comment}")
    return "\n".join(lines)
