"""Lineage-stamped, tamper-evident audit records for Flyte tasks.

Public API: :func:`audit_log` (the store), :class:`AuditEvent` / :class:`AuditRecord` (typed records),
:class:`ModelRef`, :class:`AuditWriteError`.
"""

from flytekitplugins.aios_audit.api import audit_log, close_all
from flytekitplugins.aios_audit.records import AuditEvent, AuditRecord, ModelRef
from flytekitplugins.aios_audit.stores import AuditStore, AuditWriteError

__all__ = ["AuditEvent", "AuditRecord", "AuditStore", "AuditWriteError", "ModelRef", "audit_log", "close_all"]
