"""The catalog's two governance hooks: a policy decision and an approval check, both fail closed.

Contract (swap them in :class:`~flytekitplugins.aios_catalog.catalog.Catalog` for tests of the catalog
itself, never to skip governance):

* ``Decide(action, actor, resource, context) -> PolicyDecision``: any failure (engine not installed,
  malformed request, engine error) is a ``deny`` with the error in ``reasons``.
* ``CheckApproval(request_id) -> ApprovalOutcome | None``: the verified outcome of an approval
  request for this run (``refused`` when this run was not launched by whoever opened the request), or None when
  it cannot be read (which the catalog treats as "not approved").

The defaults call the pack's policy plugin (``flytekitplugins.aios_policy.enforce``, which writes the
decision to the audit trail before returning it) and approvals plugin (``flytekitplugins.aios_approvals.outcome``).
Only the context attributes the policy schema declares for an action are sent (:data:`POLICY_CONTEXT`);
the full evidence stays in the catalog record.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from flytekitplugins.aios_core.settings import Settings
from flytekitplugins.aios_core.types import PolicyDecision

log = logging.getLogger(__name__)

# context attributes of config/policies/schema.cedarschema.json, per action (extra keys are a deny there)
POLICY_CONTEXT: dict[str, tuple[str, ...]] = {
    "promote_model": ("accuracy_delta", "drift_passed", "risk", "no_skill_delta"),
    "write_catalog": (),
}

Decide = Callable[[str, str, dict[str, Any], dict[str, Any]], PolicyDecision]
CheckApproval = Callable[[str], Any]


def _deny(reason: str) -> PolicyDecision:
    return PolicyDecision(effect="deny", reasons=[reason], engine="aios_catalog:fail-closed")


def policy_decision(
    action: str, actor: str, resource: dict[str, Any], context: dict[str, Any], *, settings: Settings
) -> PolicyDecision:
    """Ask the pack's policy engine (recorded in ``settings``' audit store); every failure is a deny.

    Args:
        action: policy action, e.g. ``promote_model`` or ``write_catalog``.
        actor: the principal acting, e.g. ``service:retraining``.
        resource: ``{"type": "Model", "id": "name@version"}``.
        context: facts the policy reads (``accuracy_delta``, ``drift_passed``, ...).

    Returns:
        The engine's decision, or a deny naming why none could be made.
    """
    try:
        policy = importlib.import_module("flytekitplugins.aios_policy")
        request_type, enforce = policy.PolicyRequest, policy.enforce
    except (ImportError, AttributeError) as e:
        return _deny(
            f"policy engine unavailable ({e}): catalog changes are denied until flytekitplugins.aios_policy loads"
        )
    try:
        keys = POLICY_CONTEXT.get(action)
        ctx = {k: v for k, v in context.items() if k in keys} if keys is not None else dict(context)
        request = request_type(principal=actor, action=action, resource=resource, context=ctx)
        decision = enforce(request, subject=str(resource.get("id", "")), raise_on_deny=False, settings=settings)
    except Exception as e:  # fail closed on any engine error
        log.warning("policy evaluation for %s by %s failed: %s", action, actor, e)
        return _deny(f"policy evaluation failed: {type(e).__name__}: {e}")
    if not isinstance(decision, PolicyDecision):
        return _deny(f"policy engine returned {type(decision).__name__}, not a PolicyDecision")
    return decision


def approval_outcome(request_id: str, *, settings: Settings) -> Any:
    """Verified outcome of an approval request, or None when it cannot be read.

    Args:
        request_id: id returned when the request was opened (``apr-...``).
    """
    try:
        importlib.import_module("flytekitplugins.aios_approvals")
    except ImportError as e:
        log.warning("approvals plugin unavailable (%s): approval %s counts as not approved", e, request_id)
        return None
    try:
        from flytekitplugins.aios_approvals.evaluate import Env, evaluate
        from flytekitplugins.aios_approvals.service import _execution_key, launcher_problem, run_launcher
        from flytekitplugins.aios_approvals.state import projection

        env = Env.load(settings)
        state = projection(env.store).get(request_id)
        if state is None:
            log.warning("approval %s is not in the audit trail: it counts as not approved", request_id)
            return None
        out = evaluate(state, env)  # what the plugin's outcome() folds, from the state read once here
        if not out.approved:
            return out
        # the rule verify_requests and the acting point apply: only a run of the launcher that opened the request
        # acts on its approval (another launcher's run, an approver's among them, neither uses nor uses it up)
        why = launcher_problem(state.request, run_launcher(settings), _execution_key())
        return out.model_copy(update={"status": "refused", "reason": why}) if why else out
    except Exception as e:  # unreadable means not approved
        log.warning("reading approval %s failed: %s", request_id, e)
        return None
