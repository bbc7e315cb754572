"""The policy's say on who decides an approval request: Cedar action ``approve`` (config/policies/approvers.cedar).

:func:`decide <flytekitplugins.aios_approvals.service.decide>` asks it once per attempt, after the roles.yaml checks
and before the decision is appended: anything but ``allow`` refuses the attempt (``policy_forbids``), and a policy
that cannot be read or evaluated refuses it too (``policy_unavailable``, fail closed). A forbid on ``approve``
therefore refuses new decisions; decisions already recorded are withdrawn only by removing the role in roles.yaml.
"""

from __future__ import annotations

from typing import Any

from flytekitplugins.aios_core.settings import Settings
from flytekitplugins.aios_core.types import PolicyDecision
from flytekitplugins.aios_core.visible import visible

#: The Cedar resource type an approval gate's request is about; any other gate's resource is ``Task::<gate>``.
GATE_RESOURCE_TYPES = {"model-promotion": "Model", "payment-signoff": "Document", "document-review": "Document"}

# what the engine and decide.py write into the reasons of a deny that is no policy's answer but a failure
_FAILURE_MARKS = ("(fail closed)", "malformed policy request")


def approve_request(principal: str, gate: str, subject: str) -> dict[str, Any]:
    """The policy request asking whether ``principal`` may decide a ``gate`` request about ``subject``."""
    kind = GATE_RESOURCE_TYPES.get(gate)
    resource = {"type": kind, "id": subject} if kind else {"type": "Task", "id": gate}
    return {"principal": principal, "action": "approve", "resource": resource, "context": {"gate": gate}}


def _unavailable(decision: PolicyDecision) -> bool:
    """Whether a deny is the engine failing (no policy set loaded, an evaluation error, over budget), not a policy."""
    if not decision.policy_set_digest:
        return True
    return any(mark in reason for reason in decision.reasons for mark in _FAILURE_MARKS)


def approver_problem(settings: Settings, principal: str, gate: str, subject: str) -> tuple[str, str] | None:
    """Why the policy does not let ``principal`` decide a ``gate`` request about ``subject``, as (code, message),
    or None when it allows it. Never raises: an engine error is ``policy_unavailable`` (fail closed)."""
    from flytekitplugins.aios_policy import evaluate

    request = approve_request(principal, gate, subject)
    try:
        decision = evaluate(request, settings=settings)
    except Exception as e:  # evaluate never raises; should it ever, nobody decides until the policy can answer
        return "policy_unavailable", visible(f"the approver policy could not be evaluated ({type(e).__name__}: {e})")
    if decision.effect == "allow":
        return None
    by = ", ".join(decision.policy_ids) or "no policy id"
    why = "; ".join(decision.reasons) or "no reason given"
    on = f"{request['resource']['type']}::{request['resource']['id']}"
    if _unavailable(decision):
        msg = f"the approver policy could not decide whether {principal} may approve on {on} (fail closed): {why}"
        return "policy_unavailable", visible(msg)
    msg = f"the policy does not let {principal} decide {gate!r} requests ({decision.effect}) [policies: {by}]: {why}"
    return "policy_forbids", visible(msg)
