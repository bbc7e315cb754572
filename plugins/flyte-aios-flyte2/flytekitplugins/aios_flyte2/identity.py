"""Flyte 2 execution identity for audit records: run name, action name, task name and attempt.

A Flyte 2 task knows who it is through ``flyte.ctx()`` (a ``TaskContext`` whose ``action`` is an ``ActionID``:
action name, run name, project, domain, org). :func:`flyte_execution` maps it onto the pack's
:class:`~flytekitplugins.aios_core.context.ExecutionRef` (the identity every audit record, approval and span
carries): ``name`` = the run name, ``node_id`` = the action name, ``task_name``, ``task_version`` and
``retry_attempt``. Outside a task (a plain function call) it falls back to the pack's own local run id.

In local mode the run name is the launcher's choice (``flyte run --local --name pay-001``,
``with_runcontext(name=...)``), never unique: a second run under an approved run's name was that run, and used its
approval again (review of 2026-12-06). A local run's execution name is therefore the pack's per-process local run id
followed by the run name and the time the run started (``aios-run-<utc time>-<pid>-<random>:pay-001@<start>``), made
in the process and never read from the environment, as flytekit's local runs are
(:func:`~flytekitplugins.aios_core.context.local_run_id`): two runs of one name in one process were one execution too.
A launcher that passes one ``run_start_time`` to two runs of one name in its own process makes them one execution,
as two flytekit runs in one process are. On a cluster the backend's run name is the execution's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from flytekitplugins.aios_core.context import ExecutionRef, current_execution, local_run_id, serving

LOCAL_PROJECT = "local"
LOCAL_DOMAIN = "development"


def task_context() -> Any | None:
    """The running Flyte 2 ``TaskContext``, or ``None`` outside a task (or without the flyte SDK)."""
    try:
        import flyte
    except ImportError:
        return None
    tctx = flyte.ctx()
    return tctx if tctx else None


def is_local(tctx: Any | None = None) -> bool:
    """True for Flyte 2 local mode (``flyte.with_runcontext(mode="local")``) and plain calls outside a run."""
    tctx = tctx if tctx is not None else task_context()
    return tctx is None or getattr(tctx, "mode", "local") == "local"


def flyte_execution(task_name: str) -> ExecutionRef:
    """Identity of the Flyte 2 task attempt in progress (the pack's local run id outside a task).

    Args:
        task_name: the task's name (``<environment>.<function>``), used when the context has none.
    """
    tctx = task_context()
    if tctx is None:
        ex = current_execution(task_name)
        return ex if ex.task_name else ex.model_copy(update={"task_name": task_name})
    action = tctx.task_action or tctx.action
    run = action.run_name or action.name
    if is_local(tctx):  # this process's id, the run's name and the time it started (runs in one process differ there)
        started = getattr(tctx, "run_start_time", None)
        run = f"{local_run_id()}:{run}" + (f"@{started:%Y%m%dT%H%M%S.%f}" if started is not None else "")
    return ExecutionRef(
        project=action.project or LOCAL_PROJECT,
        domain=action.domain or LOCAL_DOMAIN,
        name=run,
        node_id=action.name,
        task_name=task_name,
        task_version=tctx.version or "",
        retry_attempt=int(tctx.attempt_number),
        workflow=task_name.rsplit(".", 1)[0] if "." in task_name else "",
    )


def run_parts(ex: ExecutionRef) -> tuple[str, str, str, str]:
    """(org, project, domain, run name) as the running ``ActionID`` has them (how flyteplugins-otel keys a run)."""
    tctx = task_context()
    if tctx is None:
        return "", ex.project, ex.domain, ex.name
    action = tctx.task_action or tctx.action
    return action.org or "", action.project or "", action.domain or "", action.run_name or action.name


@contextlib.contextmanager
def acting_as(execution: ExecutionRef) -> Iterator[ExecutionRef]:
    """Attribute everything the body records (policy decisions, approvals, the task record) to ``execution``."""
    with serving(execution) as ex:
        yield ex


__all__ = ["acting_as", "flyte_execution", "is_local", "run_parts", "task_context"]
