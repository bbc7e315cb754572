"""Writing a policy decision to the audit trail (and to the task's audit scope when one is active)."""

from __future__ import annotations

import logging
import os
from typing import Any

from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.types import PolicyDecision

log = logging.getLogger(__name__)


def record_decision(
    decision: PolicyDecision, *, subject: str = "", attributes: dict[str, Any] | None = None
) -> PolicyDecision:
    """Append a ``policy_decision`` record durably; return the decision with ``audit_record_id`` set.

    Raises:
        GovernanceDenied: ``reason_code="audit_write_failed"`` if the record could not be made durable
            (the governed action must not proceed: fail closed).
    """
    from flytekitplugins.aios_audit import AuditEvent, audit_log
    from flytekitplugins.aios_core.context import current_execution

    a = decision.attributes
    subject = subject or f"{a.get('resource_type', '?')}::{a.get('resource_id', '?')}"
    try:
        event = AuditEvent(
            kind="policy_decision",
            actor=str(a.get("principal", "unknown")),
            status=decision.effect,
            subject=subject,
            execution=current_execution(),
            code_version=_code_version(),
            policy_decisions=[_summary(decision)],
            attributes={**(attributes or {}), "action": a.get("action", ""), "resource_type": a.get("resource_type")},
        )
        record = audit_log().append(event)
    except Exception as e:
        log.error("policy decision could not be audited, denying: %s", e)
        msg = f"policy decision for {subject} could not be written to the audit trail, so it is denied: {e}"
        raise GovernanceDenied(msg, reason_code="audit_write_failed") from e
    decision = decision.model_copy(update={"audit_record_id": record.record_id})
    _add_to_scope(decision)
    return decision


_VERSION_VARS = ("FLYTE_INTERNAL_TASK_VERSION", "_F_TK_V", "AIOS_CODE_VERSION")
_versions: dict[tuple[str, ...], str] = {}


def _code_version() -> str:
    """``code_version()`` cached per process for the same version variables (it reads package metadata)."""
    from flytekitplugins.aios_core.context import code_version

    key = tuple(os.environ.get(v, "") for v in _VERSION_VARS)
    if key not in _versions:
        _versions[key] = code_version()
    return _versions[key]


def _summary(d: PolicyDecision) -> dict[str, Any]:
    """What the audit record keeps of a decision (digests and ids, no request payload)."""
    out: dict[str, Any] = {
        "effect": d.effect,
        "reasons": d.reasons,
        "policy_ids": d.policy_ids,
        "policy_set_digest": d.policy_set_digest,
        "request_digest": d.request_digest,
        "engine": d.engine,
        "duration_us": round(d.duration_us, 1),
        "evaluated_at": d.evaluated_at.isoformat(),
        "action": d.attributes.get("action", ""),
    }
    if d.approval is not None:
        out["approval"] = d.approval.model_dump(mode="json")
    return out


def _add_to_scope(decision: PolicyDecision) -> None:
    """Attach the decision to the in-task audit scope of the audit plugin, when it is there and active."""
    import flytekitplugins.aios_audit as audit

    current_audit = getattr(audit, "current_audit", None)
    scope = current_audit() if callable(current_audit) else None
    if scope is None:
        return
    scope.add_policy_decision({**_summary(decision), "record_id": decision.audit_record_id})
    add_parent = getattr(scope, "add_parent", None)
    if callable(add_parent) and decision.audit_record_id:
        add_parent(decision.audit_record_id)
