"""The governed task as a flyte task plugin: ``plugin_config=Governed(...)`` instead of the decorator.

flyte finds the task template class for a plugin config type in ``TaskPluginRegistry``; :class:`Governed` maps to
:class:`GovernedFunctionTask`, an ``AsyncFunctionTaskTemplate`` whose function is governed exactly like
:func:`~flytekitplugins.aios_flyte2.governed` (same gate, approvals and records), named by the flyte task name
(``<environment>.<function>``). Per task: ``task.override(plugin_config=Governed(action=..., ...))``; for every
task of an environment (audited, with the gate if given): ``flyte.TaskEnvironment(..., plugin_config=Governed())``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from flyte import AsyncFunctionTaskTemplate
from flyte.extend import TaskPluginRegistry

from flytekitplugins.aios_flyte2.approvals import Waiter
from flytekitplugins.aios_flyte2.gate import GovernSpec, make_spec, wrap_function
from flytekitplugins.aios_policy.spec import ContextSpec, ResourceSpec


@dataclasses.dataclass(frozen=True)
class Governed:
    """Plugin config of a governed task: the arguments of :func:`~flytekitplugins.aios_flyte2.governed`."""

    action: str | None = None
    resource: ResourceSpec | None = None
    context: ContextSpec = None
    subject: str | Callable[..., str] | None = None
    approval_timeout_s: float | str | None = None
    waiter: Waiter = "auto"

    def spec(self) -> GovernSpec:
        """The validated spec (raises ``ValueError`` for an action without a resource)."""
        return make_spec(self.action, self.resource, self.context, self.subject, self.approval_timeout_s, self.waiter)


@dataclasses.dataclass(kw_only=True)
class GovernedFunctionTask(AsyncFunctionTaskTemplate):  # type: ignore[misc,type-arg,unused-ignore]
    """A flyte function task whose function runs governed (gate, approvals, one audited record per attempt)."""

    def __post_init__(self) -> None:
        super().__post_init__()  # type: ignore[no-untyped-call,unused-ignore]
        task: Any = self  # flyte's template is generic in its function type; the wrapper keeps the signature
        if isinstance(task.plugin_config, Governed) and not hasattr(task.func, "__aios_governed__"):
            task.func = wrap_function(task.func, task.plugin_config.spec(), task_name=task.name)


TaskPluginRegistry.register(Governed, GovernedFunctionTask)

__all__ = ["Governed", "GovernedFunctionTask"]
