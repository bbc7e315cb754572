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
    from flytekit.extend.backend.base_connector import ConnectorRegistry, SyncConnectorBase, mirror_async_methods
    from flytekit.models.literals import LiteralMap
    from flytekit.models.task import TaskExecutionMetadata, TaskTemplate

    request = await request_iterator.__anext__()
    template = TaskTemplate.from_flyte_idl(request.header.template)
    metadata = TaskExecutionMetadata.from_flyte_idl(request.header.task_execution_metadata)
    output_prefix = request.header.output_prefix
    task_type = template.type
    try:
        with cs.request_latency.labels(task_type=task_type, operation=cs.do_operation).time():
            connector = ConnectorRegistry.get_connector(task_type, template.task_type_version)
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
    """Apply both changes to flytekit's connector service (idempotent; a no-op without its extras)."""
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
    _installed = True
