"""Typed conversion between Flyte literal maps and Python values, for connectors (async, no event-loop nesting)."""

from __future__ import annotations

from typing import Any

from flytekit import FlyteContextManager
from flytekit.models.literals import LiteralMap

from flytekitplugins.aios.compat.flytekit import dict_to_literal_map, literal_map_to_kwargs


async def to_python(inputs: LiteralMap | None, types: dict[str, type]) -> dict[str, Any]:
    """Python values of the inputs present in ``inputs`` (absent optional inputs are left out)."""
    if inputs is None or not inputs.literals:
        return {}
    ctx = FlyteContextManager.current_context()
    present = {k: t for k, t in types.items() if k in inputs.literals}
    return await literal_map_to_kwargs(ctx, inputs, python_types=present)


async def to_literals(values: dict[str, Any], types: dict[str, type]) -> LiteralMap:
    """A literal map of ``values`` typed by ``types`` (so empty lists keep their element type)."""
    ctx = FlyteContextManager.current_context()
    return await dict_to_literal_map(ctx, values, type_hints=types)
