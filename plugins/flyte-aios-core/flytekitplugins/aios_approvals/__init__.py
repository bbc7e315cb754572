"""Approval signals: human sign-off on Flyte gate nodes, with identity, roles, separation of duties and proof.

Public API::

    from flytekitplugins.aios_approvals import (
        ApprovalRequest, ApprovalOutcome, open_request, require_approval, approval_gate, outcome,
    )

* :func:`open_request` (in a task, non-blocking): open a request idempotently, get its id.
* :func:`require_approval` (in a task, fail closed): the verified approval, or ``GovernanceDenied``.
* :func:`approval_gate` (in a workflow): a real Flyte gate node plus a verification task.
* :func:`outcome`: verified status of one request, folded from the audit trail.

The workflow-level pieces (``approval_gate``, ``verify_approvals``) are the flytekit plugin's
(:mod:`flytekitplugins.aios.approval_gate`, distribution ``flytekitplugins-aios``), re-exported here on first
access: this package never imports flytekit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flytekitplugins.aios_approvals.clock import ManualClock, use_clock
from flytekitplugins.aios_approvals.models import ApprovalDecision, ApprovalOutcome, ApprovalRequest
from flytekitplugins.aios_approvals.service import ApprovalNotFound, DecideResult, decide, open_request, outcome
from flytekitplugins.aios_approvals.verify import require_approval, verify_requests
from flytekitplugins.aios_core.extras import lazy_exports

if TYPE_CHECKING:
    from flytekitplugins.aios.approval_gate import approval_gate, verify_approvals

_LAZY = dict.fromkeys(("approval_gate", "verify_approvals", "ApprovalGate"), "flytekitplugins.aios.approval_gate")
__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "ApprovalDecision",
    "ApprovalNotFound",
    "ApprovalOutcome",
    "ApprovalRequest",
    "DecideResult",
    "ManualClock",
    "approval_gate",
    "decide",
    "open_request",
    "outcome",
    "require_approval",
    "use_clock",
    "verify_approvals",
    "verify_requests",
]
