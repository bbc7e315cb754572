"""Build the protobuf messages Flyte propeller would send, from real flytekit task objects."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from flyteidl.admin import agent_pb2
from flyteidl.core import identifier_pb2, literals_pb2, tasks_pb2
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


def execution_metadata(
    namespace: str = "flyte-aios-development",
    service_account: str = "aios-pipeline",
    execution: str = "a1b2c3d4e5",
    task: str = "grpc_task",
) -> agent_pb2.TaskExecutionMetadata:
    """The task execution metadata flytepropeller sends with every connector call (identity of the caller)."""
    project, _, domain = namespace.rpartition("-")
    wf = identifier_pb2.WorkflowExecutionIdentifier(project=project, domain=domain, name=execution)
    task_id = identifier_pb2.Identifier(
        resource_type=identifier_pb2.TASK, project=project, domain=domain, name=task, version="v1"
    )
    tid = identifier_pb2.TaskExecutionIdentifier(
        task_id=task_id,
        node_execution_id=identifier_pb2.NodeExecutionIdentifier(node_id="n0", execution_id=wf),
        retry_attempt=0,
    )
    return agent_pb2.TaskExecutionMetadata(
        task_execution_id=tid, namespace=namespace, k8s_service_account=service_account
    )
