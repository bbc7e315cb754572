"""Lineage-stamped, tamper-evident audit records for Flyte tasks.

Public API:

* :func:`audited` (decorator under ``@task``) and :class:`Audited` (task config): one record per execution
  of a governed task, success or failure.
* :func:`current_audit`: the in-task scope other plugins attach policy decisions, approvals, models and
  lineage parents to (``None`` outside a governed task).
* :func:`audit_log` (the store), :class:`AuditEvent` / :class:`AuditRecord` (typed records),
  :class:`ModelRef`, :class:`AuditWriteError` (and :class:`AuditOutcomeUnknown`, a failed append whose events
  may already be durably staged: never append them again).

``audited``/``Audited`` are the flytekit plugin's (:mod:`flytekitplugins.aios.audited`, distribution
``flytekitplugins-aios``); they are re-exported here on first access, so this package never imports flytekit.
"""

from typing import TYPE_CHECKING

from flytekitplugins.aios_audit.api import audit_log, close_all
from flytekitplugins.aios_audit.records import AuditEvent, AuditRecord, ModelRef
from flytekitplugins.aios_audit.scope import AuditScope, current_audit
from flytekitplugins.aios_audit.stores import AuditOutcomeUnknown, AuditStore, AuditWriteError
from flytekitplugins.aios_core.extras import lazy_exports

if TYPE_CHECKING:
    from flytekitplugins.aios.audited import Audited, audited

__all__ = [
    "AuditEvent",
    "AuditOutcomeUnknown",
    "AuditRecord",
    "AuditScope",
    "AuditStore",
    "AuditWriteError",
    "Audited",
    "ModelRef",
    "audit_log",
    "audited",
    "close_all",
    "current_audit",
]


__getattr__ = lazy_exports(
    __name__, {"audited": "flytekitplugins.aios.audited", "Audited": "flytekitplugins.aios.audited"}
)
