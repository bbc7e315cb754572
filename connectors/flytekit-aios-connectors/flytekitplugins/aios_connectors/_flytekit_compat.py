"""The flytekit connector-service behaviours this pack changes, in one place (pinned by tests/security).

The private member it replaces (``connector_service._handle_exception``) is reached through
``flytekitplugins.aios.compat.flytekit`` (pinned by tests/compat).

flytekit 1.16's ``pyflyte serve connector`` has two behaviours a governance connector cannot keep:

1. ``connector_service._handle_exception`` sends the full Python traceback, and the exception's text, to
   any gRPC caller as the status details, and logs it: a database error quoting its DSN hands out the
   password. :func:`_handle_exception` replaces it: one line, ``failed to <op> <task type> task:
   <ErrorType>: <masked message>``, same status codes and metrics.
2. ``SyncConnectorService.ExecuteTaskSync`` drops the header's ``task_execution_metadata`` (the execution
   id, namespace and service account flytepropeller sends), so a sync connector cannot tell who calls it.
   :func:`_execute_task_sync` passes it to ``do`` as ``CreateTask`` does for ``create``.
3. The service serves every connector registered in the process: ``import flytekit`` registers its sensor engine and
   ``pyflyte serve connector`` its webhook connector, neither of which checks who calls or what it decodes (a sensor
   task's input with literal metadata ``format: pickle`` ran the caller's code in the service, and the webhook
   connector fetched any URL and answered with the response; review of 2026-12-06). The service's registry
   (:class:`_ServedRegistry`) serves only the pack's task types (:data:`SERVED_TASK_TYPES`); run other connectors
   in a deployment of their own. Local execution in a process is unchanged.

:func:`install` is idempotent and runs when a connector module of the pack is imported, which is how
``pyflyte serve connector --modules ...`` loads them, before the server is built; it also masks every log
record of the process (:func:`flytekitplugins.aios_core.redact.mask_logs`). Without flytekit's
connector extras (no grpc/prometheus) there is no server to patch and nothing happens.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

import grpc

from flytekitplugins.aios.compat.flytekit import connector_exception_handler, replace_connector_exception_handler
from flytekitplugins.aios_core.redact import mask_logs, one_line_error
from flytekitplugins.aios_core.visible import visible

log = logging.getLogger(__name__)

_installed = False

SERVED_TASK_TYPES = frozenset({"aios_policy_decision", "aios_approval_notification", "aios_system_of_record"})
"""The task types the pack's connector service answers for (``constants`` and ``system_of_record``); any other is
``NOT_FOUND``, and ``ListAgents`` names only the connectors serving these."""


def _served_registry() -> type:
    """flytekit's ``ConnectorRegistry`` as the gRPC service sees it: only :data:`SERVED_TASK_TYPES`."""
    from flytekit.exceptions.system import FlyteConnectorNotFound
    from flytekit.extend.backend.base_connector import ConnectorRegistry

    def _served(task_type_name: str) -> None:
        if task_type_name not in SERVED_TASK_TYPES:
            raise FlyteConnectorNotFound(f"Cannot find connector for task type: {visible(task_type_name)}.")

    class _ServedRegistry(ConnectorRegistry):
        @staticmethod
        def get_connector(task_type_name: str, task_type_version: int = 0) -> Any:
            _served(task_type_name)
            return ConnectorRegistry.get_connector(task_type_name, task_type_version)

        get_agent = get_connector  # flytekit's older name of the same look-up

        @staticmethod
        def list_connectors() -> list[Any]:
            return [
                m
                for m in ConnectorRegistry.list_connectors()
                if any(c.name in SERVED_TASK_TYPES for c in m.supported_task_categories)
            ]

        @staticmethod
        def get_connector_metadata(name: str) -> Any:
            if name not in {m.name for m in _ServedRegistry.list_connectors()}:
                raise FlyteConnectorNotFound(f"Cannot find connector for name: {visible(name)}.")
            return ConnectorRegistry.get_connector_metadata(name)

    return _ServedRegistry


def _handle_exception(e: Exception, context: grpc.ServicerContext, task_type: str, operation: str) -> None:
    """flytekit's handler without the traceback: NOT_FOUND for unknown task types, else INTERNAL, one line."""
    from flytekit.exceptions.system import FlyteConnectorNotFound
    from flytekit.extend.backend import connector_service as cs

    shown = visible(task_type)  # the caller's text: its control characters forged log lines (review of 2026-12-06)
    if isinstance(e, FlyteConnectorNotFound):
        message, code, http = f"Cannot find connector for task type: {shown}.", grpc.StatusCode.NOT_FOUND, 404
    else:
        message = f"failed to {operation} {shown} task: {one_line_error(e)}"
        code, http = grpc.StatusCode.INTERNAL, int(HTTPStatus.INTERNAL_SERVER_ERROR)
    log.error("%s", message)
    context.set_code(code)
    context.set_details(message)
    cs.request_failure_count.labels(task_type=task_type, operation=operation, error_code=http).inc()


async def _execute_task_sync(
    self: Any, request_iterator: AsyncIterator[Any], context: grpc.ServicerContext
) -> AsyncIterator[Any]:
    """flytekit 1.16's ``SyncConnectorService.ExecuteTaskSync``, passing the header's execution metadata on."""
    from flyteidl.admin.agent_pb2 import ExecuteTaskSyncResponse, ExecuteTaskSyncResponseHeader
    from flytekit.extend.backend import connector_service as cs
    from flytekit.extend.backend.base_connector import SyncConnectorBase, mirror_async_methods
    from flytekit.models.literals import LiteralMap
    from flytekit.models.task import TaskExecutionMetadata, TaskTemplate

    request = await request_iterator.__anext__()
    template = TaskTemplate.from_flyte_idl(request.header.template)
    metadata = TaskExecutionMetadata.from_flyte_idl(request.header.task_execution_metadata)
    output_prefix = request.header.output_prefix
    task_type = template.type
    try:
        with cs.request_latency.labels(task_type=task_type, operation=cs.do_operation).time():
            connector = cs.ConnectorRegistry.get_connector(task_type, template.task_type_version)  # the served ones
            if not isinstance(connector, SyncConnectorBase):
                msg = f"[{connector.name}] does not support sync execution"
                raise ValueError(msg)
            request = await request_iterator.__anext__()
            inputs = LiteralMap.from_flyte_idl(request.inputs) if request.inputs else None
            res = await mirror_async_methods(
                connector.do,
                task_template=template,
                inputs=inputs,
                output_prefix=output_prefix,
                task_execution_metadata=metadata,
            )
            resource = await res.to_flyte_idl()
            yield ExecuteTaskSyncResponse(header=ExecuteTaskSyncResponseHeader(resource=resource))
        cs.request_success_count.labels(task_type=task_type, operation=cs.do_operation).inc()
    except Exception as e:
        connector_exception_handler()(e, context, task_type, cs.do_operation)


def install() -> None:
    """Apply the three changes to flytekit's connector service (idempotent; a no-op without its extras)."""
    global _installed
    if _installed:
        return
    mask_logs()
    try:
        from flytekit.extend.backend import connector_service as cs
    except ImportError:  # no grpc server extras: nothing serves connectors in this process
        return
    replace_connector_exception_handler(_handle_exception)
    cs.SyncConnectorService.ExecuteTaskSync = _execute_task_sync
    cs.ConnectorRegistry = _served_registry()  # the name every servicer of the service looks connectors up by
    _installed = True
