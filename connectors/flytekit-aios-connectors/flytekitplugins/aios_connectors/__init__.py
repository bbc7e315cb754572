"""Flyte connectors of the flyte-aios pack: policy decisions and approval notifications without pods.

Public API (task classes and their configs; importing one also registers its connector, so local
execution works in-process)::

    from flytekitplugins.aios_connectors import (
        PolicyDecisionTask, PolicyDecisionConfig, ApprovalNotificationTask, ApprovalNotificationConfig,
        POLICY_DECISION_TASK_TYPE, APPROVAL_NOTIFICATION_TASK_TYPE,
    )

Serve every connector with
``pyflyte serve connector --port 8000 --prometheus_port 9090 --modules flytekitplugins.aios_connectors.registry``.

Importing this package is cheap: flytekit is loaded only when a task class is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from flytekitplugins.aios_connectors.constants import APPROVAL_NOTIFICATION_TASK_TYPE, POLICY_DECISION_TASK_TYPE

if TYPE_CHECKING:
    from flytekitplugins.aios_connectors.approval_task import ApprovalNotificationConfig, ApprovalNotificationTask
    from flytekitplugins.aios_connectors.policy_task import PolicyDecisionConfig, PolicyDecisionTask

# name -> (module defining it, connector module to register with it)
_LAZY: dict[str, tuple[str, str]] = {
    "PolicyDecisionTask": ("policy_task", "policy_connector"),
    "PolicyDecisionConfig": ("policy_task", "policy_connector"),
    "ApprovalNotificationTask": ("approval_task", "approval_connector"),
    "ApprovalNotificationConfig": ("approval_task", "approval_connector"),
}


def __getattr__(name: str) -> Any:
    spec = _LAZY.get(name)
    if spec is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    module, connector = spec
    importlib.import_module(f"{__name__}.{connector}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "APPROVAL_NOTIFICATION_TASK_TYPE",
    "POLICY_DECISION_TASK_TYPE",
    "ApprovalNotificationConfig",
    "ApprovalNotificationTask",
    "PolicyDecisionConfig",
    "PolicyDecisionTask",
]
