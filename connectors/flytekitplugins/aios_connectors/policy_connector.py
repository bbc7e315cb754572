"""The policy decision connector: evaluates a :class:`PolicyDecisionTask` in the connector service.

Synchronous (``do``): a decision takes about a millisecond, so Flyte gets the answer in the same call
and no pod is started. The decision is written to the audit trail before it is returned
(``flytekitplugins.aios_policy.enforce``); a failed audit write or any error is a failed task, never an
allow (fail closed). With ``fail_on_deny`` (default) a deny fails the task too, naming the policies and
reasons; otherwise the deny is returned as outputs for the workflow to branch on.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from flyteidl.core.execution_pb2 import TaskExecution
from flytekit.extend.backend.base_connector import ConnectorRegistry, Resource, SyncConnectorBase
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskTemplate

from flytekitplugins.aios_connectors._literals import to_literals, to_python
from flytekitplugins.aios_connectors.constants import POLICY_DECISION_TASK_TYPE
from flytekitplugins.aios_connectors.policy_task import POLICY_INPUTS, POLICY_OUTPUTS, PolicyDecisionConfig
from flytekitplugins.aios_core.types import PolicyDecision

log = logging.getLogger(__name__)


def _enforce(request: dict[str, Any], task_name: str) -> PolicyDecision:
    from flytekitplugins.aios_policy import enforce

    return enforce(request, raise_on_deny=False, attributes={"via": "connector", "task": task_name})


def decision_outputs(decision: PolicyDecision) -> dict[str, Any]:
    """The task's typed outputs for one decision."""
    return {
        "effect": decision.effect,
        "reasons": list(decision.reasons),
        "policy_ids": list(decision.policy_ids),
        "policy_set_digest": decision.policy_set_digest,
        "approval_gate": decision.approval.gate if decision.approval else "",
        "audit_record_id": decision.audit_record_id,
    }


class PolicyDecisionConnector(SyncConnectorBase):
    """Serves task type ``aios_policy_decision``: one audited policy decision per call."""

    name = "AIOS Policy Decision Connector"

    def __init__(self) -> None:
        super().__init__(task_type_name=POLICY_DECISION_TASK_TYPE)

    async def do(
        self, task_template: TaskTemplate, output_prefix: str, inputs: LiteralMap | None = None, **kwargs: Any
    ) -> Resource:
        """Evaluate and audit the request in ``inputs``; SUCCEEDED with the decision, or FAILED naming why."""
        task_name = task_template.id.name if task_template.id else "?"
        try:
            cfg = PolicyDecisionConfig.from_custom(task_template.custom)
            values = await to_python(inputs, POLICY_INPUTS)
            request = {k: v for k, v in values.items() if v is not None}
            request.setdefault("context", {})
            decision = await asyncio.to_thread(_enforce, request, task_name)
        except Exception as e:  # every failure is a failed task (fail closed), with its reason
            log.warning("policy decision for task %s failed: %s", task_name, e)
            return Resource(phase=TaskExecution.FAILED, message=f"policy decision failed (fail closed): {e}")
        outputs = await to_literals(decision_outputs(decision), POLICY_OUTPUTS)
        if decision.effect == "deny" and cfg.fail_on_deny:
            from flytekitplugins.aios_policy.decide import denial_message

            return Resource(phase=TaskExecution.FAILED, message=denial_message(decision), outputs=outputs)
        message = f"policy decision: {decision.effect} [{', '.join(decision.policy_ids) or 'no policy'}]"
        return Resource(phase=TaskExecution.SUCCEEDED, message=message, outputs=outputs)


ConnectorRegistry.register(PolicyDecisionConnector())
