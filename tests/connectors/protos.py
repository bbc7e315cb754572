"""Build the protobuf messages Flyte propeller would send, from real flytekit task objects."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from flyteidl.core import literals_pb2, tasks_pb2
from flytekit import FlyteContextManager
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.core.base_task import PythonTask
from flytekit.core.type_engine import TypeEngine
from flytekit.models.literals import LiteralMap
from flytekit.tools.translator import get_serializable

SETTINGS = SerializationSettings(image_config=ImageConfig.auto_default_image())


def template_of(task: PythonTask) -> tasks_pb2.TaskTemplate:
    """The task template exactly as `pyflyte register` would serialize it."""
    return get_serializable(OrderedDict(), SETTINGS, task).template.to_flyte_idl()


def literal_map(values: dict[str, Any], types: dict[str, type]) -> literals_pb2.LiteralMap:
    """Typed inputs as a flyteidl LiteralMap."""
    ctx = FlyteContextManager.current_context()
    return TypeEngine.dict_to_literal_map(ctx, values, type_hints=types).to_flyte_idl()


def python_values(lm: literals_pb2.LiteralMap, types: dict[str, type]) -> dict[str, Any]:
    """Python values of an output LiteralMap."""
    ctx = FlyteContextManager.current_context()
    return TypeEngine.literal_map_to_kwargs(ctx, LiteralMap.from_flyte_idl(lm), python_types=types)
