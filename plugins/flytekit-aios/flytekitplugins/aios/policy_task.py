"""``@task(task_config=PolicyGate(...))``: a policy-gated task following flytekit's plugin conventions.

The task type is ``aios-policy-gate``; the gate's action and resource/context mapping are serialized into
the task template's ``custom`` field, so the console and tooling see what a task is gated on. The body
runs in the ordinary Python container: FlytePropeller hands task types it has no plugin for to its
default container plugin, so no backend plugin is needed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from flytekit.core.python_function_task import PythonFunctionTask
from flytekit.extend import TaskPlugins

from flytekitplugins.aios_policy.gate import GateSpec, run_gated
from flytekitplugins.aios_policy.spec import Check, ContextSpec, ResourceSpec

TASK_TYPE = "aios-policy-gate"


@dataclasses.dataclass(frozen=True)
class PolicyGate:
    """Policy gate configuration of a task (see :func:`flytekitplugins.aios_policy.policy_gate`).

    Args:
        action: Cedar action decided before the body runs (None: post-condition only).
        resource: callable ``(**inputs) -> {"type", "id", ...}`` or ``(type, input path of the id)``.
        context: callable ``(**inputs) -> {...}`` or ``{attribute: input path}``.
        post: post-condition decided on the result (its callables also get ``result=``).
        subject: input path or callable naming what the decision is about (default: resource id).
    """

    action: str | None = None
    resource: ResourceSpec | None = None
    context: ContextSpec = None
    post: Check | None = None
    subject: str | Callable[..., str] | None = None

    def __post_init__(self) -> None:
        if self.action is not None and self.resource is None:
            msg = f"PolicyGate(action={self.action!r}) needs resource=: a callable or a (type, input path) pair"
            raise ValueError(msg)
        self.spec()  # validates the whole gate at construction

    def spec(self) -> GateSpec:
        """The gate as a :class:`GateSpec`."""
        pre = Check(self.action, self.resource, self.context) if self.action and self.resource is not None else None
        return GateSpec(pre=pre, post=self.post, subject=self.subject)


class PolicyGateTask(PythonFunctionTask[PolicyGate]):
    """A Python task whose body runs only when the policy allows it (and whose result passes ``post``)."""

    def __init__(self, task_config: PolicyGate, task_function: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(task_config=task_config, task_function=task_function, task_type=TASK_TYPE, **kwargs)
        self._gate = task_config.spec()

    def execute(self, **kwargs: Any) -> Any:
        """Decide, run the body if allowed, then decide the post-condition."""
        return run_gated(super().execute, self._gate, self.name, kwargs)

    def get_custom(self, settings: Any) -> dict[str, Any]:
        """The gate's action and resource/context mapping, for the task template."""
        g = self._gate
        return {
            "aios_policy": {
                "pre": g.pre.describe() if g.pre else None,
                "post": g.post.describe() if g.post else None,
                "subject": g.subject if isinstance(g.subject, str) or g.subject is None else "callable",
                "fail_closed": True,
            }
        }


TaskPlugins.register_pythontask_plugin(PolicyGate, PolicyGateTask)
