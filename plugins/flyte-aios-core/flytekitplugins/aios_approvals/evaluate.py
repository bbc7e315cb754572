"""Verified status of a request: signatures, roles and quorum re-checked on every read.

A decision counts only if its Ed25519 signature is valid, it covers the request as recorded (request
digest), it was made before the request expired, and its approver still passes the rules in the
current roles.yaml (a revoked role withdraws the approval, never a rejection). The first authorized reject is final;
``quorum`` distinct authorized approvals approve; otherwise the request is pending until it expires.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from flytekitplugins.aios_approvals import signing
from flytekitplugins.aios_approvals.clock import get_clock
from flytekitplugins.aios_approvals.models import Action, ApprovalDecision, ApprovalOutcome, ApprovalRequest
from flytekitplugins.aios_approvals.rules import RoleBook, load_rolebook, refusal_reason
from flytekitplugins.aios_approvals.state import RequestState
from flytekitplugins.aios_audit import AuditStore, audit_log
from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.settings import Settings


@functools.lru_cache(maxsize=8)
def _book(path: str, mtime_ns: int) -> RoleBook:
    return load_rolebook(Path(path))


@dataclass(frozen=True)
class Env:
    """Settings, audit store, approval rules and verification key of this process."""

    settings: Settings
    store: AuditStore
    book: RoleBook
    public_key: Ed25519PublicKey

    @classmethod
    def load(cls, settings: Settings) -> Env:
        """Resolve store, roles and verification key from the caller's ``settings``."""
        s = settings
        path = Path(s.roles_file)
        mtime = path.stat().st_mtime_ns if path.exists() else 0
        return cls(s, audit_log(s), _book(str(path), mtime), signing.public_key(s))

    def private_key(self) -> Ed25519PrivateKey:
        """The signing key (only the deciding side needs it)."""
        return signing.private_key(self.settings)


def new_decision(env: Env, req: ApprovalRequest, principal: str, action: Action, reason: str) -> ApprovalDecision:
    """A signed decision by ``principal`` on ``req``."""
    key = env.private_key()
    unsigned = ApprovalDecision(
        request_id=req.request_id,
        request_digest=req.digest(),
        approver=principal,
        roles=list(env.book.roles_of(principal)),
        action=action,
        reason=reason,
        decided_at=get_clock().now(),
        decision_key=digest_value({"request_id": req.request_id, "approver": principal}),
        key_id=signing.key_id(key.public_key()),
    )
    return unsigned.model_copy(update={"signature": signing.sign(key, unsigned.signed_payload())})


def decision_stands(d: ApprovalDecision, req: ApprovalRequest, env: Env) -> bool:
    """True when ``d`` is a real decision on ``req`` (valid signature over this request's digest).

    Such a decision is final for its approver even when it no longer counts (a revoked role, a late decision):
    it makes a second decision by the same approver a replay. A decision that does not stand is junk and is
    ignored everywhere.
    """
    return d.request_digest == req.digest() and signing.verify(env.public_key, d.signed_payload(), d.signature)


def decision_problem(d: ApprovalDecision, req: ApprovalRequest, env: Env) -> str | None:
    """Why a recorded decision does not count, or None when it does.

    A rejection is not re-checked against the current roles: it was authorized when it was made (``decide``
    records only authorized decisions, signed), and one authorized reject is final. Withdrawing it when the
    rejecter later lost the role put the request back to pending, to be approved and acted on."""
    if not signing.verify(env.public_key, d.signed_payload(), d.signature):
        kid = signing.key_id(env.public_key)
        return f"bad_signature: decision by {d.approver} is not signed by the approvals key {kid}"
    if d.request_digest != req.digest():
        return f"request_changed: decision by {d.approver} covers another version of the request"
    if d.decided_at > req.expires_at:
        return f"late: decision by {d.approver} came after the request expired"
    if d.action == "reject":
        return None
    return refusal_reason(env.book, req.gate, d.approver, req.requester, req.launcher)


def evaluate(st: RequestState, env: Env) -> ApprovalOutcome:
    """Fold the decisions of one request into its verified outcome."""
    req = st.request
    quorum = max(req.quorum, env.book.rule(req.gate).quorum_for(req.risk))
    approvers: list[str] = []
    counted: list[ApprovalDecision] = []
    ignored: list[str] = []
    decided: set[str] = set()
    status, reason = "pending", ""
    for d in st.decisions:
        problem = decision_problem(d, req, env)
        if problem is None and d.approver in decided:
            problem = f"replay: {d.approver} already decided; only the first verified decision counts"
        if problem is not None:
            ignored.append(problem)
            continue
        decided.add(d.approver)
        counted.append(d)
        if d.action == "reject":
            status, reason = "rejected", f"rejected by {d.approver}: {d.reason}"
            break
        approvers.append(d.approver)
        if len(approvers) >= quorum:
            status, reason = "approved", f"approved by {', '.join(approvers)} (quorum {quorum})"
            break
    if status == "pending":
        if get_clock().now() >= req.expires_at:
            status, reason = "timed_out", f"no decision before {req.expires_at.isoformat()}"
        else:
            reason = f"{len(approvers)} of {quorum} approvals"
    if ignored:
        reason += "; ignored: " + "; ".join(ignored)
    return ApprovalOutcome(
        request_id=req.request_id,
        gate=req.gate,
        status=status,  # type: ignore[arg-type]
        subject=req.subject,
        risk=req.risk,
        evidence=dict(req.evidence),
        summary=dict(req.summary),
        requester=req.requester,
        execution=req.execution,
        approvers=approvers,
        rejected_by=[d.approver for d in counted if d.action == "reject"],
        quorum=quorum,
        reason=reason,
        signatures=[d.signature for d in counted],
        key_id=signing.key_id(env.public_key),
        decisions=counted,
        ignored=ignored,
    )
