"""Field descriptions for option dataclasses, taken from their Google docstring, so the Flyte console shows them.

flytekit writes a dataclass input's JSON schema into the launch form; a field's ``description`` there comes
from ``dataclasses.field(metadata={"description": ...})``. :func:`describe_fields` fills that metadata from
the class docstring's ``Attributes:`` (or ``Args:``) section, so the text is written once.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
from typing import TypeVar

T = TypeVar("T")
_ITEM = re.compile(r"^(\s*)(\w+)(?: \([^)]*\))?: (.*)$")


def docstring_fields(doc: str) -> dict[str, str]:
    """``{name: description}`` from the ``Attributes:``/``Args:`` section of a Google docstring.

    Args:
        doc: the docstring (continuation lines, indented deeper than the item, are joined).
    """
    out: dict[str, str] = {}
    lines = inspect.cleandoc(doc).splitlines()
    in_section, indent, name = False, -1, ""
    for line in lines:
        if line.strip() in ("Attributes:", "Args:"):
            in_section, indent, name = True, -1, ""
            continue
        if not in_section:
            continue
        if line and not line[0].isspace():
            in_section = False
            continue
        m = _ITEM.match(line)
        if m and (indent < 0 or len(m.group(1)) == indent):
            indent, name = len(m.group(1)), m.group(2)
            out[name] = m.group(3).strip()
        elif name and line.strip():
            out[name] += " " + line.strip()
    return out


def describe_fields(cls: type[T]) -> type[T]:
    """Class decorator (after ``@dataclass``): give each field without a description its docstring text.

    Args:
        cls: a dataclass with a Google docstring.
    """
    texts = docstring_fields(cls.__doc__ or "")
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in texts and "description" not in f.metadata:
            f.metadata = types.MappingProxyType({**f.metadata, "description": texts[f.name]})
    return cls
