"""The checks after a gate, and the fail-closed task-level check used by policy gates.

A Flyte gate signal says only "go on". :func:`verify_requests` establishes, from the audit trail and
the decision signatures, whether an authorized, audited, still-valid decision stands behind every
request; a signal with nothing behind it (a console click by someone without the role, a hand-written
API call) yields status ``refused`` and an ``approval_refused`` record. An approval is used once: the
first execution that verifies it consumes it; another execution is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from flytekitplugins.aios_approvals.clock import get_clock
from flytekitplugins.aios_approvals.evaluate import Env, evaluate
from flytekitplugins.aios_approvals.models import ApprovalOutcome
from flytekitplugins.aios_approvals.service import _execution_key, launcher_problem, open_request, run_launcher
from flytekitplugins.aios_approvals.state import RequestState, projection, use_claim
from flytekitplugins.aios_audit.records import AuditEvent
from flytekitplugins.aios_audit.stores import CLAIMS_ATTR, ClaimTaken, claim
from flytekitplugins.aios_core.context import current_execution
from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import Settings
from flytekitplugins.aios_core.types import PolicyDecision

log = logging.getLogger(__name__)
SIGNAL_ACTOR = "flyte-signal"


def _verified_event(actor: str, out: ApprovalOutcome, execution: str, consumed: bool) -> AuditEvent:
    attributes: dict[str, Any] = {
        "reason": out.reason,
        "consumed_by": execution if consumed else "",
        "key_id": out.key_id,
        "execution": execution,
    }
    if consumed:  # the unique claim makes the use atomic: a second execution's append fails as a whole
        attributes[CLAIMS_ATTR] = [claim(use_claim(out.request_id), execution)]
    return AuditEvent(
        kind="approval_verified",
        actor=actor,
        status=out.status,
        subject=out.request_id,
        execution=current_execution(),
        approvals=[d.model_dump(mode="json") for d in out.decisions],
        attributes=attributes,
    )


def _refusal(actor: str, rid: str, code: str, why: str) -> AuditEvent:
    return AuditEvent(
        kind="approval_refused",
        actor=actor,
        status=code,
        subject=rid,
        execution=current_execution(),
        attributes={"reason": why, "source": "verify"},
    )


def _check_one(
    env: Env, gate: str, rid: str, execution: str, after_signal: bool, holder: str | None, launcher: str | None
) -> tuple[ApprovalOutcome, list[AuditEvent]]:
    """The outcome for this execution and the records to append; ``holder`` is who holds the use claim now,
    ``launcher`` who launched the run that would use it (None: a service acting for ``execution``, which knows the
    execution but not its launcher: the request's own launcher when that execution opened it, else nobody)."""
    actor = SIGNAL_ACTOR if after_signal else env.settings.actor
    st = projection(env.store).get(rid)
    if st is None or st.request.gate != gate:
        why = (
            f"no request {rid!r}" if st is None else f"request {rid} belongs to gate {st.request.gate!r}, not {gate!r}"
        )
        out = ApprovalOutcome(request_id=rid, gate=gate, status="refused", reason=why)
        return out, [
            _refusal(actor, rid, "unknown_request", why),
            _verified_event(env.settings.actor, out, execution, False),
        ]
    out = evaluate(st, env)
    code, why = "", ""
    if out.status == "pending" and after_signal:
        code, why = "signal_without_decision", f"gate signal set without an authorized, audited decision ({out.reason})"
    elif out.status == "approved" and (why := launcher_problem(st.request, launcher, execution)):
        # another launcher's run (an approver's own launch among them) must not use, so use up, this approval
        code = "launcher_mismatch"
    elif out.status == "approved" and (used := _used_by(st, holder, execution)):
        code = "already_used"
        why = f"approval already used by execution {used}; an approval is applied exactly once"
    events = [_refusal(actor, rid, code, why)] if code else []
    if code:
        out = out.model_copy(update={"status": "refused", "reason": why})
    consumed = out.status == "approved" and holder is None
    events.append(_verified_event(env.settings.actor, out, execution, consumed))
    return out, events


def _used_by(st: RequestState, holder: str | None, execution: str) -> str:
    """Another execution that used the approval ("" when none): the claims table's holder, or one a sealed
    ``approval_verified`` record names as its consumer (its claim sealed in the record): a claims row deleted by a
    store writer left the sealed use standing, and a second execution used the approval again (review of
    2026-12-06; the full `aios audit verify` reports the row as ``claim_changed``)."""
    if holder is not None and holder != execution:
        return holder
    return next((c for c in st.consumed_by if c != execution), "")


def verify_requests(
    gate: str, request_ids: Sequence[str], *, env: Env, after_signal: bool = True, served: bool = False
) -> list[ApprovalOutcome]:
    """Verified outcome of every request after ``gate``; audits each check in one transaction.

    Using an approval is atomic: the execution that verifies an approved request first takes its unique claim
    ``approval-use:<id>`` in the same transaction as its ``approval_verified`` record. When two executions race,
    the loser's transaction fails as a whole and it re-reads the claims: it then sees ``already_used``.

    Args:
        gate: the gate (signal id) the requests were waited on.
        request_ids: ids from :func:`open_request`.
        after_signal: True after a gate (a pending request is then ``refused``: the signal had no decision behind it).
        env: settings, store and keys of the caller (``Env.load(settings)``).
        served: a service acting for the current (served) execution, whose launcher it does not know (the
            approval connector): only the execution that opened a request counts as a run of its launcher. Else
            the launcher is this process's (:func:`run_launcher`). An approved request is used only by a run of
            the launcher that opened it.

    Returns:
        One outcome per id, in order: ``approved`` only when an authorized quorum stands behind it.
    """
    execution = _execution_key()
    launcher = None if served else run_launcher(env.settings)
    for _attempt in range(8):
        holders = env.store.claim_holders([use_claim(r) for r in request_ids])
        outs: list[ApprovalOutcome] = []
        events: list[AuditEvent] = []
        for rid in request_ids:
            held = holders.get(use_claim(rid))
            out, evs = _check_one(env, gate, rid, execution, after_signal, held[0] if held else None, launcher)
            if out.status == "approved":  # the same id twice in one call: the first check takes the claim
                holders[use_claim(rid)] = (execution, 0)
            outs.append(out)
            events.extend(evs)
        try:
            if events:
                env.store.append_many(events)
        except ClaimTaken as e:  # another execution used one of them in between: read the claims again
            log.info("approval use raced with another execution (%s); checking again", e.key)
            continue
        return outs
    msg = f"could not record the use of approvals {list(request_ids)} after 8 attempts (constant races)"
    raise GovernanceDenied(msg, reason_code="approval_use_contended")


def _command(rid: str) -> str:
    return (
        f"`aios approvals approve {rid} --as <principal>` "
        f"(or `aios approvals reject {rid} --as <principal> --reason TEXT`)"
    )


def require_approval(
    decision: PolicyDecision,
    *,
    subject: str,
    summary: dict[str, Any] | None = None,
    evidence: dict[str, str] | None = None,
    requester: str,
    settings: Settings,
    timeout_s: float | None = None,
) -> ApprovalOutcome:
    """Fail-closed check for a policy decision of effect ``require_approval``.

    Opens (or finds) the request for exactly this content and returns its verified outcome when an
    authorized quorum approved it and no other execution used it yet; the approval is then consumed by
    this execution and added to the current audit scope when one is active.

    Args:
        decision: the policy decision; its ``approval`` names the gate, risk and reason.
        subject: what is approved (a content digest).
        summary: facts for reviewers.
        evidence: name -> digest; the decision's audit record id is added as ``policy_decision``.
        requester: the principal asking.
        settings: the caller's settings (audit store, roles, keys).
        timeout_s: request timeout (default ``settings.approval_timeout_s``).

    Raises:
        GovernanceDenied: ``approval_required`` (pending), ``approval_rejected``, ``approval_timed_out``,
            or ``denied`` for a decision that is not ``require_approval``; the message names the request id
            and the command that decides it.
    """
    if decision.effect != "require_approval" or decision.approval is None:
        msg = f"policy decision has effect {decision.effect!r}, not require_approval: {'; '.join(decision.reasons)}"
        raise GovernanceDenied(msg, reason_code="denied", record_id=decision.audit_record_id or None)
    req = decision.approval
    ev = dict(evidence or {})
    if decision.audit_record_id:
        ev.setdefault("policy_decision", decision.audit_record_id)
    env = Env.load(settings)
    reason = req.reason or "; ".join(decision.reasons)
    rid = open_request(req.gate, req.risk, subject, summary, ev, requester, reason, timeout_s, env=env)
    if why := _other_terms(env, rid, req.risk, timeout_s):
        msg = f"{req.gate} approval {rid} {why}; refusing to act on it"
        raise GovernanceDenied(msg, reason_code="approval_for_other_terms", record_id=rid)
    out = verify_requests(req.gate, [rid], env=env, after_signal=False)[0]
    if out.status == "approved":
        _add_to_audit_scope(out)
        return out
    code = {"rejected": "approval_rejected", "timed_out": "approval_timed_out"}.get(out.status, "approval_required")
    msg = f"{req.gate} approval {rid} is {out.status} ({out.reason}); decide it with {_command(rid)}"
    raise GovernanceDenied(msg, reason_code=code, record_id=rid)


CLOCK_SKEW_S = 60.0
"""How much later than the caller's clock plus the timeout asked a request may expire (clocks of other processes)."""


def _other_terms(env: Env, rid: str, risk: str, timeout_s: float | None) -> str:
    """Why request ``rid`` is not asked on the policy decision's terms ("" when it is): at its risk (so at that
    quorum), and expiring no later than the timeout asked for from now (``timeout_s``, else the settings'; plus
    :data:`CLOCK_SKEW_S`). A request a store writer planted with the gate's id once asked one approver for what the
    policy sent to two (review of 2026-12-07); the fold refuses such a record (``ApprovalRequest.integrity_problem``),
    and this check stands behind it. A request of this content opened by the gate is never later than that (it
    expired at most the timeout after it was opened), so one expiring later stretches "timeout = deny": a year, or a
    year ahead with a span of exactly the timeout (re-review of 2026-12-07). Measured from now, not from the record's
    ``created_at``, which is the writer's word; so after an operator shortens the timeout, an approved request opened
    under the longer one is refused only until it is within the new timeout of its expiry, not for good."""
    st = projection(env.store).get(rid)
    if st is None:
        return "is not in the audit trail"
    if st.request.risk != risk:
        return f"was asked at {st.request.risk} risk; the policy asks for {risk} risk"
    asked = float(timeout_s if timeout_s is not None else env.settings.approval_timeout_s)
    left = (st.request.expires_at - get_clock().now()).total_seconds()
    if left > asked + CLOCK_SKEW_S:
        return f"stays open {left:,.0f} s more, longer than the {asked:,.0f} s asked for"
    return ""


def _add_to_audit_scope(out: ApprovalOutcome) -> None:
    try:
        from flytekitplugins.aios_audit import current_audit
    except ImportError:
        return
    scope = current_audit()
    if scope is not None:
        scope.add_approval(out.model_dump(mode="json", exclude={"decisions"}))
