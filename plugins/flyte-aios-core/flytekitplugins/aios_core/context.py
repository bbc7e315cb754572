"""Where am I running? Flyte execution identity for audit records, lineage and spans.

On a cluster the values come from the environment Flyte sets on every task pod
(``FLYTE_INTERNAL_EXECUTION_*``, ``FLYTE_INTERNAL_TASK_*``, ``FLYTE_ATTEMPT_NUMBER``); in local
execution from flytekit's context (execution name ``local``-prefixed). flytekit is imported lazily.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import os
import secrets
import sys
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict


class ExecutionRef(BaseModel):
    """Identity of one task execution inside a Flyte workflow execution."""

    model_config = ConfigDict(frozen=True)

    # Fields in alphabetical order: audit entries serialize them in declaration order as canonical JSON.
    domain: str = "development"
    image: str = ""
    launch_plan: str = ""
    name: str = "local"
    node_id: str = ""
    project: str = "local"
    retry_attempt: int = 0
    task_name: str = ""
    task_version: str = ""
    workflow: str = ""

    @property
    def execution_key(self) -> str:
        """``project/domain/name``: the Flyte execution this task ran in."""
        return f"{self.project}/{self.domain}/{self.name}"


def _env(*names: str) -> str:
    for n in names:
        v = os.environ.get(n)
        if v:
            return v
    return ""


# The Flyte task execution a connector serves (set from the propagated task_execution_metadata, per call).
_served: contextvars.ContextVar[ExecutionRef | None] = contextvars.ContextVar("aios_served_execution", default=None)


@contextlib.contextmanager
def serving(execution: ExecutionRef) -> Iterator[ExecutionRef]:
    """Attribute what the body records to ``execution``: a connector acting for a Flyte task, in its own process."""
    token = _served.set(execution)
    try:
        yield execution
    finally:
        _served.reset(token)


def in_cluster_task() -> bool:
    """Whether flytekit runs the task in progress as on a Flyte cluster (:func:`_in_cluster_task`): there its inputs
    are a launcher's, who is not the worker's owner."""
    return _in_cluster_task()


def _in_cluster_task() -> bool:
    """True while flytekit runs a task as on a Flyte cluster: its entrypoint (``pyflyte-execute``) set the execution
    state from the variables flytepropeller gives the pod. False for local runs (``pyflyte run``, a workflow called
    in Python) and for processes outside any task (the ``aios`` commands, scripts): there the ``FLYTE_INTERNAL_*``
    variables are whatever the shell set, and they are not read. flytekit is not imported for the answer: a process
    that has not imported it runs no flytekit task."""
    cm = sys.modules.get("flytekit.core.context_manager")
    if cm is None:
        return False
    try:
        state = cm.FlyteContextManager.current_context().execution_state
        mode = state.mode if state is not None else None
    except Exception:
        return False
    modes = cm.ExecutionState.Mode
    return mode in (modes.TASK_EXECUTION, modes.DYNAMIC_TASK_EXECUTION, modes.EAGER_EXECUTION)


def current_execution(task_name: str = "") -> ExecutionRef:
    """Identity of the task execution in progress: the served call's, else a cluster task's (flytepropeller's
    variables, read only inside a task flytekit runs as on a cluster: :func:`_in_cluster_task`), else the local
    run's (flytekit's local context and this process's run id, made here: a shell that sets ``FLYTE_INTERNAL_*``
    variables cannot make a local run another execution, and so cannot use that execution's approval again)."""
    served = _served.get()
    if served is not None:
        return served
    if not _in_cluster_task():
        local: dict[str, Any] = {"task_name": task_name, "image": _env("AIOS_IMAGE"), **_local_context()}
        return ExecutionRef(**{k: v for k, v in local.items() if v not in ("", None)})
    fields: dict[str, Any] = {
        "project": _env("FLYTE_INTERNAL_EXECUTION_PROJECT", "_F_PRJ"),
        "domain": _env("FLYTE_INTERNAL_EXECUTION_DOMAIN", "_F_DM"),
        "name": _env("FLYTE_INTERNAL_EXECUTION_ID", "_F_NM"),
        "workflow": _env("FLYTE_INTERNAL_EXECUTION_WORKFLOW", "_F_WF"),
        "launch_plan": _env("FLYTE_INTERNAL_EXECUTION_LAUNCHPLAN", "_F_LP"),
        "node_id": _env("FLYTE_INTERNAL_NODE_ID", "_F_NODE_ID"),
        "task_name": _env("FLYTE_INTERNAL_TASK_NAME", "_F_TK_NM") or task_name,
        "task_version": _env("FLYTE_INTERNAL_TASK_VERSION", "_F_TK_V"),
        "image": _env("FLYTE_INTERNAL_IMAGE", "AIOS_IMAGE"),
    }
    attempt = _env("FLYTE_ATTEMPT_NUMBER")
    fields["retry_attempt"] = int(attempt) if attempt.isdigit() else 0
    if not fields["name"]:
        fields.update(_local_context())
    if not fields["task_name"]:
        fields["task_name"] = task_name
    return ExecutionRef(**{k: v for k, v in fields.items() if v not in ("", None)})


LOCAL_RUN_PREFIX = "aios-run-"


def is_local_run(name: str) -> bool:
    """True for the execution name of a local run (never a Flyte cluster's execution name)."""
    return name.startswith(LOCAL_RUN_PREFIX)


# One id per local process (one ``pyflyte run`` or ``python -m`` run is one process): every record the run writes
# carries it, as every record of a cluster execution carries the Flyte execution name. It is made here, never read
# from the environment, so another process cannot borrow a run's identity (and with it the run's approvals).
_PROCESS_RUN = f"{LOCAL_RUN_PREFIX}{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{os.getpid()}-{secrets.token_hex(3)}"
_run_override: list[str] = []  # a stack, process-wide: flytekit's local map tasks run in worker threads


def local_run_id() -> str:
    """The execution name of local runs in this process (``aios-run-<utc time>-<pid>-<random>``)."""
    return _run_override[-1] if _run_override else _PROCESS_RUN


@contextlib.contextmanager
def local_run(name: str = "") -> Iterator[str]:
    """Run the body as a separate local execution (in-process only: tests, benchmarks, notebooks).

    Args:
        name: a label for the run; a random suffix is always added so the id cannot name another run.
    """
    run = f"{LOCAL_RUN_PREFIX}{name or 'local'}-{secrets.token_hex(4)}"
    _run_override.append(run)
    try:
        yield run
    finally:
        _run_override.remove(run)


def _local_context() -> dict[str, Any]:
    try:
        import flytekit

        params = flytekit.current_context()
        eid = params.execution_id
        name = eid.name if eid.name and not eid.name.startswith("local") else local_run_id()
        out: dict[str, Any] = {"project": eid.project, "domain": eid.domain, "name": name}
        tid = params.task_id
        if tid is not None and tid.name not in ("", "local"):
            out["task_name"] = tid.name
            out["task_version"] = tid.version
        return out
    except Exception:
        return {"name": local_run_id()}


def code_version(configured: str = "") -> str:
    """Version of the code that runs: the Flyte task version on a cluster, else ``configured`` (the
    ``code_version`` setting), else the installed pack version."""
    v = _env("FLYTE_INTERNAL_TASK_VERSION", "_F_TK_V")
    return v or configured or _package_version()


@functools.cache
def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"flyte-aios-core=={version('flyte-aios-core')}"
    except PackageNotFoundError:
        return "flyte-aios-core==unknown"
