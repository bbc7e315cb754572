"""A drift check recorded as ``measure_drift`` records one, for tests that need its figures and not its data.

``measure_drift`` writes its record with the digests of both batches (``inputs``) and the ``kind="quality"`` seal of
the validation that passed them as its parent (``tasks.drift.check.check_quality`` writes it); the monitoring chain
and the evaluation count no drift check without that seal. The batches here are named by digests only.
"""

from __future__ import annotations

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_core.settings import Settings
from tasks.drift.check import QUALITY_KIND, record_drift

BATCHES = {"reference": "sha256:" + "a" * 64, "current": "sha256:" + "b" * 64}


def sealed_check(status: str, subject: str, attributes: dict[str, object], settings: Settings) -> str:
    """Append a passed quality seal of :data:`BATCHES` and a drift record on it; return the drift record's id."""
    seal = AuditEvent(
        kind=QUALITY_KIND, actor=settings.actor, status="passed", subject=subject, inputs=dict(BATCHES),
        attributes={"suite": "flights", "batches": {b: {"rows": 100, "evaluated": 3} for b in BATCHES}},
    )  # fmt: skip
    parent = audit_log(settings).append(seal).record_id
    return record_drift(status, subject, attributes, settings, inputs=dict(BATCHES), parents=[parent])
