"""Where am I running? Flyte execution identity for audit records, lineage and spans.

On a cluster the values come from the environment Flyte sets on every task pod
(``FLYTE_INTERNAL_EXECUTION_*``, ``FLYTE_INTERNAL_TASK_*``, ``FLYTE_ATTEMPT_NUMBER``); in local
execution from flytekit's context (execution name ``local``-prefixed). flytekit is imported lazily.
"""

from __future__ import annotations

import functools
import os
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


def current_execution(task_name: str = "") -> ExecutionRef:
    """Identity of the task execution in progress (cluster env first, then flytekit's local context)."""
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


def _local_context() -> dict[str, Any]:
    try:
        import flytekit

        params = flytekit.current_context()
        eid = params.execution_id
        out: dict[str, Any] = {"project": eid.project, "domain": eid.domain, "name": eid.name}
        tid = params.task_id
        if tid is not None:
            out["task_name"] = tid.name
            out["task_version"] = tid.version
        return out
    except Exception:
        return {}


def code_version() -> str:
    """Version of the code that runs: the task version on a cluster, else the installed pack version."""
    v = _env("FLYTE_INTERNAL_TASK_VERSION", "_F_TK_V", "AIOS_CODE_VERSION")
    return v or _package_version()


@functools.cache
def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"flyte-aios=={version('flyte-aios')}"
    except PackageNotFoundError:
        return "flyte-aios==unknown"
