"""A policy gate as a Flyte task that runs in the connector service: no pod is started.

The serialized template carries only the task type and a small config; the connector
(:mod:`flytekitplugins.aios_connectors.policy_connector`) evaluates the request with the policy plugin
and returns the decision as typed outputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from flytekit import Documentation
from flytekit.configuration import SerializationSettings
from flytekit.core.base_task import PythonTask
from flytekit.core.interface import Interface
from flytekit.extend.backend.base_connector import SyncConnectorExecutorMixin

from flytekitplugins.aios_connectors.constants import POLICY_DECISION_TASK_TYPE

POLICY_INPUTS: dict[str, type] = {"principal": str, "action": str, "resource": dict, "context": dict}
POLICY_OUTPUTS: dict[str, type] = {
    "effect": str,
    "reasons": list[str],
    "policy_ids": list[str],
    "policy_set_digest": str,
    "approval_gate": str,
    "audit_record_id": str,
}


@dataclass(frozen=True)
class PolicyDecisionConfig:
    """How the connector treats a decision.

    Attributes:
        fail_on_deny: a ``deny`` fails the task (fail closed, default). With False the task succeeds
            and the workflow must branch on the ``effect`` output itself.
    """

    fail_on_deny: bool = True

    @classmethod
    def from_custom(cls, custom: dict[str, Any] | None) -> PolicyDecisionConfig:
        """Read the config back from a task template's ``custom`` (unknown keys are an error)."""
        data = dict(custom or {})
        unknown = set(data) - {"fail_on_deny"}
        if unknown:
            msg = f"unknown policy decision config keys {sorted(unknown)}: re-register with this flyte-aios version"
            raise ValueError(msg)
        return cls(fail_on_deny=bool(data.get("fail_on_deny", True)))


class PolicyDecisionTask(SyncConnectorExecutorMixin, PythonTask[PolicyDecisionConfig]):
    """Evaluates one policy request in the connector service and returns the decision.

    Inputs: ``principal`` (``user:<name>``/``service:<name>``; a claim, checked against the caller's identity
    established from Flyte's propagated execution metadata, see docs/connectors.md), ``action``, ``resource``
    (``{"type": ..., "id": ..., attributes...}``) and ``context`` (typed attributes).
    Outputs: ``effect`` (allow, deny, require_approval), ``reasons``, ``policy_ids``,
    ``policy_set_digest``, ``approval_gate`` (the gate to open when approval is required, else empty)
    and ``audit_record_id`` (the audit record of this decision).

    Example:
        ``check = PolicyDecisionTask(name="document_action_gate")`` then, in a workflow,
        ``d = check(principal="service:document-pipeline", action="act_on_document", resource={...}, context={})``.
    """

    _TASK_TYPE = POLICY_DECISION_TASK_TYPE

    def __init__(self, name: str, config: PolicyDecisionConfig | None = None, description: str = "", **kwargs: Any):
        super().__init__(
            name=name,
            task_type=self._TASK_TYPE,
            task_config=config or PolicyDecisionConfig(),
            interface=Interface(inputs=POLICY_INPUTS, outputs=POLICY_OUTPUTS),
            docs=Documentation(short_description=description or "Policy decision (evaluated by the aios connector)"),
            **kwargs,
        )

    def get_custom(self, settings: SerializationSettings) -> dict[str, Any]:
        """The config dataclass as the template's ``custom``."""
        return asdict(self.task_config)
