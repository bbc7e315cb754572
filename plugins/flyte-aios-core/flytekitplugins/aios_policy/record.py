"""Writing a policy decision to the audit trail (and to the task's audit scope when one is active)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import Settings
from flytekitplugins.aios_core.types import PolicyDecision

log = logging.getLogger(__name__)


def record_decision(
    decision: PolicyDecision,
    *,
    subject: str = "",
    attributes: dict[str, Any] | None = None,
    settings: Settings,
) -> PolicyDecision:
    """Append a ``policy_decision`` record durably; return the decision with ``audit_record_id`` set.

    Raises:
        GovernanceDenied: ``reason_code="audit_write_failed"`` if the record could not be made durable
            (the governed action must not proceed: fail closed).
    """
    return record_decisions([decision], subjects=[subject], attributes=[attributes], settings=settings)[0]


def record_decisions(
    decisions: Sequence[PolicyDecision],
    *,
    subjects: Sequence[str],
    attributes: Sequence[dict[str, Any] | None],
    settings: Settings,
) -> list[PolicyDecision]:
    """Append one ``policy_decision`` record per decision in ONE durable transaction (all or nothing).

    Raises:
        GovernanceDenied: ``reason_code="audit_write_failed"`` if the records could not be made durable;
            then none of the decisions may be acted on (fail closed).
    """
    from flytekitplugins.aios_audit import AuditEvent, audit_log
    from flytekitplugins.aios_core.context import current_execution

    execution, version = current_execution(), _code_version(settings.code_version)
    events, names = [], []
    try:
        for decision, subject, extra in zip(decisions, subjects, attributes, strict=True):
            a = decision.attributes
            name = subject or f"{a.get('resource_type', '?')}::{a.get('resource_id', '?')}"
            names.append(name)
            events.append(
                AuditEvent(
                    kind="policy_decision",
                    actor=str(a.get("principal", "unknown")),
                    status=decision.effect,
                    subject=name,
                    execution=execution,
                    code_version=version,
                    policy_decisions=[_summary(decision)],
                    attributes={
                        **(extra or {}),
                        "action": a.get("action", ""),
                        "resource_type": a.get("resource_type"),
                    },
                )
            )
        records = audit_log(settings).append_many(events)
    except Exception as e:
        log.error("policy decisions could not be audited, denying: %s", e)
        what = names[0] if len(names) == 1 else f"{len(decisions)} requests"
        msg = f"policy decision for {what} could not be written to the audit trail, so it is denied: {e}"
        raise GovernanceDenied(msg, reason_code="audit_write_failed") from e
    out = [d.model_copy(update={"audit_record_id": r.record_id}) for d, r in zip(decisions, records, strict=True)]
    for d in out:
        _add_to_scope(d)
    return out


_VERSION_VARS = ("FLYTE_INTERNAL_TASK_VERSION", "_F_TK_V")
_versions: dict[tuple[str, ...], str] = {}


def _code_version(configured: str) -> str:
    """``code_version()`` cached per process for the same Flyte version variables and setting."""
    from flytekitplugins.aios_core.context import code_version

    key = (*(os.environ.get(v, "") for v in _VERSION_VARS), configured)
    if key not in _versions:
        _versions[key] = code_version(configured)
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
