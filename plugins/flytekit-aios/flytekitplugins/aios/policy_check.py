"""``policy_check``: a task whose output is the policy decision, for when it must be its own Flyte node.

Use it where the decision should be visible in the Flyte graph (and its output passed on, e.g. to a
conditional or an approval gate)::

    d = policy_check(action="promote_model", resource_type="Model", resource_id=model_id,
                     numbers={"accuracy_delta": delta}, flags={"drift_passed": ok})

Context attributes come in three typed maps (``numbers``, ``labels``, ``flags``) rather than one
``dict[str, Any]``: Flyte can bind upstream outputs into typed maps, and the policy sees typed fields only.
The decision is audited like every other. By default a deny fails the node (fail closed);
``fail_on_deny=False`` returns it so that a workflow can branch on ``d.effect`` instead.
"""

from __future__ import annotations

from typing import Any

from flytekitplugins.aios.naming import registered_task
from flytekitplugins.aios_core.settings import get_settings
from flytekitplugins.aios_core.types import PolicyDecision
from flytekitplugins.aios_policy.decide import enforce


@registered_task("flytekitplugins.aios_policy.check")
def policy_check(
    action: str,
    resource_type: str,
    resource_id: str,
    numbers: dict[str, float] | None = None,
    labels: dict[str, str] | None = None,
    flags: dict[str, bool] | None = None,
    approved_data_classes: list[str] | None = None,
    fail_on_deny: bool = True,
) -> PolicyDecision:
    """Decide a policy as its own workflow node and record the decision in the audit trail.

    Args:
        action: Cedar action, e.g. ``act_on_document`` or ``promote_model``.
        resource_type: Cedar resource type: Workflow, Task, Document or Model.
        resource_id: the resource's id (a content digest, a model version).
        numbers: numeric context attributes (amount, confidence, accuracy_delta).
        labels: text context attributes (currency, data_class, doc_type, risk, gate).
        flags: boolean context attributes (drift_passed).
        approved_data_classes: for a Model resource, the data classes it is approved for.
        fail_on_deny: fail this node on deny (default); False returns the deny for the workflow to branch on.

    Returns:
        The decision, with its audit record id.
    """
    resource: dict[str, Any] = {"type": resource_type, "id": resource_id}
    if approved_data_classes is not None:
        resource["approved_data_classes"] = list(approved_data_classes)
    context: dict[str, Any] = {**(numbers or {}), **(labels or {}), **(flags or {})}
    settings = get_settings()  # this task's entry point: resolved once, passed down
    request = {"principal": settings.actor, "action": action, "resource": resource, "context": context}
    attrs = {"task": "policy_check", "stage": "node"}
    return enforce(request, raise_on_deny=fail_on_deny, attributes=attrs, settings=settings)
