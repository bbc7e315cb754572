"""The policy decision connector: evaluates a :class:`PolicyDecisionTask` in the connector service.

Synchronous (``do``): a decision takes about a millisecond, so Flyte gets the answer in the same call
and no pod is started. The decision is written to the audit trail before it is returned
(``flytekitplugins.aios_policy.enforce``); a failed audit write or any error is a failed task, never an
allow (fail closed). With ``fail_on_deny`` (default) a deny fails the task too, naming the policies and
reasons; otherwise the deny is returned as outputs for the workflow to branch on.

The input ``principal`` is a claim: the decision is made for the caller's established identity
(:mod:`flytekitplugins.aios_connectors.identity`), and a claim that disagrees with it is refused and audited.
Errors come back as one masked line (:func:`flytekitplugins.aios_core.redact.one_line_error`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from flyteidl.core.execution_pb2 import TaskExecution
from flytekit.extend.backend.base_connector import ConnectorRegistry, Resource, SyncConnectorBase
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskExecutionMetadata, TaskTemplate

from flytekitplugins.aios_connectors import _flytekit_compat
from flytekitplugins.aios_connectors._literals import to_literals, to_python
from flytekitplugins.aios_connectors.constants import POLICY_DECISION_TASK_TYPE
from flytekitplugins.aios_connectors.identity import Caller, IdentityRefused, establish, input_refused, refuse
from flytekitplugins.aios_connectors.policy_task import POLICY_INPUTS, POLICY_OUTPUTS, PolicyDecisionConfig
from flytekitplugins.aios_core.redact import one_line_error
from flytekitplugins.aios_core.settings import Settings, get_settings
from flytekitplugins.aios_core.types import PolicyDecision
from flytekitplugins.aios_core.visible import bounded, visible

log = logging.getLogger(__name__)


def _enforce(request: dict[str, Any], task_name: str, caller: Caller, settings: Settings) -> PolicyDecision:
    """Decide and audit as ``caller``, the record naming the Flyte execution served (when propagated)."""
    import contextlib

    from flytekitplugins.aios_core.context import serving
    from flytekitplugins.aios_policy import enforce

    attributes = {"via": "connector", "task": task_name, **caller.audit_attributes()}
    scope = serving(caller.execution) if caller.execution is not None else contextlib.nullcontext()
    with scope:
        request = {**request, "principal": caller.principal}
        return enforce(request, raise_on_deny=False, attributes=attributes, settings=settings)


def _claimed_principal(inputs: LiteralMap | None) -> str:
    """The ``principal`` input as its literal holds it (a plain string), without decoding any input; "" otherwise."""
    literal = inputs.literals.get("principal") if inputs is not None and inputs.literals else None
    scalar = getattr(literal, "scalar", None)
    primitive = getattr(scalar, "primitive", None)
    value = getattr(primitive, "string_value", None)
    return value if isinstance(value, str) else ""


def _failed(task_name: str, message: str) -> Resource:
    """A failed task carrying ``message``, logged; what the caller sent is shown escaped (:func:`.visible.visible`)."""
    message = visible(message)
    log.warning("policy decision for task %s failed: %s", visible(task_name), message)
    return Resource(phase=TaskExecution.FAILED, message=message)


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
        self,
        task_template: TaskTemplate,
        output_prefix: str,
        inputs: LiteralMap | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        **kwargs: Any,
    ) -> Resource:
        """Evaluate and audit the request in ``inputs`` for the established caller.

        Returns:
            SUCCEEDED with the decision; FAILED naming why (one line, secrets masked) on a deny with
            ``fail_on_deny``, an error (fail closed) or a refused identity (audited as ``connector_refused``).
        """
        task_name = bounded(task_template.id.name) if task_template.id else "?"  # the caller's text
        settings = get_settings()  # the connector call is an entry point: settings resolved once, passed down
        claimed = ""
        try:
            cfg = PolicyDecisionConfig.from_custom(task_template.custom)
            served = task_execution_metadata is not None
            if served:  # who calls, before a byte of the inputs is decoded (review R31b: an anonymous call's 3.9 MB
                # input held the service's event loop for 1.3 s before its refusal); the principal it claims is read
                # off its literal as sent, so that a refusal still records it
                claimed = _claimed_principal(inputs)
                first = await asyncio.to_thread(establish, task_execution_metadata, settings, claimed)
                try:
                    values = await to_python(inputs, POLICY_INPUTS, served=True)
                except ValueError as e:  # an input refused (UnsafeInput): audited under the established caller
                    raise input_refused(e, first.principal) from e
            else:
                values = await to_python(inputs, POLICY_INPUTS, served=False)
            claimed = str(values.get("principal") or "")
            caller = await asyncio.to_thread(establish, task_execution_metadata, settings, claimed)
        except IdentityRefused as e:
            why = await asyncio.to_thread(
                refuse,
                e,
                connector=self.name,
                task_name=task_name,
                claimed=claimed,
                meta=task_execution_metadata,
                settings=settings,
            )
            return _failed(task_name, why)
        except Exception as e:  # every failure is a failed task (fail closed), in one masked line
            return _failed(task_name, f"policy decision failed (fail closed): {one_line_error(e)}")
        request = {k: v for k, v in values.items() if v is not None}
        request.setdefault("context", {})
        try:
            decision = await asyncio.to_thread(_enforce, request, task_name, caller, settings)
        except Exception as e:
            return _failed(task_name, f"policy decision failed (fail closed): {one_line_error(e)}")
        outputs = await to_literals(decision_outputs(decision), POLICY_OUTPUTS)
        if decision.effect == "deny" and cfg.fail_on_deny:
            from flytekitplugins.aios_policy.decide import denial_message

            return Resource(phase=TaskExecution.FAILED, message=denial_message(decision), outputs=outputs)
        message = f"policy decision: {decision.effect} [{', '.join(decision.policy_ids) or 'no policy'}]"
        return Resource(phase=TaskExecution.SUCCEEDED, message=message, outputs=outputs)


_flytekit_compat.install()
ConnectorRegistry.register(PolicyDecisionConnector())
