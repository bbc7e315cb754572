"""A small governed document workflow whose steps write the records the KPIs are derived from."""

from __future__ import annotations

import datetime as dt

from flytekit import task, workflow
from flytekit.types.file import FlyteFile

from flytekitplugins.aios_audit import AuditEvent, audit_log, audited, current_audit
from flytekitplugins.aios_audit.metrics import record_cost
from flytekitplugins.aios_core.context import current_execution
from flytekitplugins.aios_core.settings import get_settings


def _append(kind: str, status: str, **fields: object) -> None:
    event = AuditEvent(kind=kind, actor="service:kpi", status=status, execution=current_execution(), **fields)
    audit_log(get_settings()).append(event)


@task
@audited(subject_input="doc", attributes={"stage": "ingest"})
def ingest(doc: FlyteFile) -> int:
    """Take a batch in.

    Args:
        doc: The batch's document.
    """
    scope = current_audit()
    assert scope is not None
    scope.set_attribute("documents", 4)
    return 4


@task
@audited
def triage(n: int) -> int:
    """Quarantine one document, deny one payment, send one to review and decide it.

    Args:
        n: Documents in.
    """
    _append("quarantine", "quarantined", attributes={"reason": "encrypted_pdf"})
    _append("policy_decision", "deny", policy_decisions=[{"effect": "deny", "policy_ids": ["payments-known-vendor"]}])
    asked = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=90)
    request = {"gate": "document-review", "created_at": asked.isoformat()}
    _append("approval_request", "pending", subject="apr-kpi", attributes={"request": request})
    decided = {"decided_at": dt.datetime.now(dt.UTC).isoformat()}
    _append("approval_decision", "approved", subject="apr-kpi", attributes={"decision": decided})
    return n - 1


@task
@audited(kind="action")
def act(n: int) -> int:
    """Post the actions and record the batch cost.

    Args:
        n: Documents to act on.
    """
    for _ in range(2):
        _append("action", "posted", attributes={"action": "create_ticket"})
    record_cost(0.002, 4, "tests.observability.kpi_wf.batch", get_settings())
    return 2


@task
@audited
def fail_once(n: int) -> int:
    """Fail (for the FAIL event and the ERROR span).

    Args:
        n: Ignored.
    """
    if n >= 0:
        raise RuntimeError(f"bad input {n}")
    return n


@workflow
def batch(doc: FlyteFile) -> int:
    """Ingest, triage and act on a batch.

    Args:
        doc: The batch's document.
    """
    return act(n=triage(n=ingest(doc=doc)))
