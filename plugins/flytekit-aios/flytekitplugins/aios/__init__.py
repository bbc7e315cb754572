"""flyte-aios for flytekit: governed tasks and approval gate nodes on top of the governance core.

Distribution ``flytekitplugins-aios`` (depends on ``flyte-aios-core`` and flytekit, nothing else). flytekit imports
this package at ``import flytekit`` through the ``flytekit.plugins`` entry point, as it does for its own plugins;
that registers the :class:`Audited` and :class:`PolicyGate` task configs, so ``@task(task_config=...)`` dispatches
to the governed task types without any import in the user's module.

Public API::

    from flytekitplugins.aios import audited, Audited, policy_gate, PolicyGate, Check, approval_gate

* :func:`audited` (decorator under ``@task``) and :class:`Audited` (task config): one durable audit record per
  execution of the task, success or failure.
* :func:`policy_gate` (decorator under ``@task``) and :class:`PolicyGate` (task config): a Cedar decision before
  the body runs, fail closed; :func:`policy_check`: a task whose output is the decision.
* :func:`approval_gate` (in a workflow): a Flyte gate node plus a task that verifies the signed decisions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flytekitplugins.aios.audited import Audited, AuditedPythonFunctionTask, audited
from flytekitplugins.aios.policy_task import PolicyGate, PolicyGateTask
from flytekitplugins.aios_core.extras import lazy_exports
from flytekitplugins.aios_policy.gate import policy_gate
from flytekitplugins.aios_policy.spec import Check

if TYPE_CHECKING:
    from flytekitplugins.aios.approval_gate import approval_gate, verify_approvals
    from flytekitplugins.aios.policy_check import policy_check

_LAZY = {
    "approval_gate": "flytekitplugins.aios.approval_gate",
    "verify_approvals": "flytekitplugins.aios.approval_gate",
    "ApprovalGate": "flytekitplugins.aios.approval_gate",
    "policy_check": "flytekitplugins.aios.policy_check",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "Audited",
    "AuditedPythonFunctionTask",
    "Check",
    "PolicyGate",
    "PolicyGateTask",
    "approval_gate",
    "audited",
    "policy_check",
    "policy_gate",
    "verify_approvals",
]
