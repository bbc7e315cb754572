"""Opening requests, deciding them and reading their verified status.

Every attempt, accepted or refused, is appended to the audit trail before this module returns;
a failed audit write raises (fail closed) and the decision does not count.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flytekitplugins.aios_approvals.approver_policy import approver_problem
from flytekitplugins.aios_approvals.clock import get_clock
from flytekitplugins.aios_approvals.evaluate import Env, decision_stands, evaluate, new_decision
from flytekitplugins.aios_approvals.models import (
    TERMINAL,
    Action,
    ApprovalOutcome,
    ApprovalRequest,
    content_key_of,
    request_id_of,
)
from flytekitplugins.aios_approvals.rules import RISKS, refusal_reason, validate_gate_name
from flytekitplugins.aios_approvals.state import RequestState, projection
from flytekitplugins.aios_audit.records import AuditEvent
from flytekitplugins.aios_audit.stores import PreconditionFailed
from flytekitplugins.aios_core.errors import AiosError
from flytekitplugins.aios_core.settings import MAX_APPROVAL_TIMEOUT_S, Settings


class ApprovalNotFound(AiosError):
    """No request with this id in the audit trail."""


@dataclass(frozen=True)
class DecideResult:
    """What happened to one approve/reject attempt."""

    accepted: bool
    code: str
    message: str
    outcome: ApprovalOutcome | None
    record_id: str


def check_timeout(value: object, name: str) -> float:
    """``value`` as seconds a request stays open, if it is a finite number in (0, ``MAX_APPROVAL_TIMEOUT_S``] (the
    settings' bound, a year and a day); else a ValueError naming ``name``. A timeout can come from a launch input
    (Flyte 2's ``governed(approval_timeout_s="<input>")``): a negative or zero one opened a request already timed
    out, NaN ended in "cannot convert float NaN to integer" and an infinite or huge one in an overflow, deep in
    opening the request."""
    # NaN fails the range too
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_APPROVAL_TIMEOUT_S:
        most = f"{MAX_APPROVAL_TIMEOUT_S:,} (a year and a day)"
        msg = f"{name} must be a number of seconds above 0 and at most {most}, not {value!r}"
        raise ValueError(msg)
    return float(value)


def _execution_key() -> str:
    """The Flyte execution this process works for: ``project/domain/name``.

    flytekit names every local execution ``local/local/local``; ``current_execution`` gives a local run the
    process's own run id instead (made in the process, never read from the environment), so approvals tell runs
    apart and no run can borrow another's identity to reuse its approval.
    """
    from flytekitplugins.aios_core.context import current_execution

    return current_execution().execution_key


def run_launcher(settings: Settings) -> str:
    """Who launched this run: the person behind a service run (``act_as`` keeps them as ``launched_by``), else the
    process's actor. Separation of duties keeps them from deciding the run's requests, and only runs they launch use
    those requests' approvals."""
    return settings.launched_by or settings.actor


def launcher_problem(request: ApprovalRequest, launcher: str | None, execution: str) -> str:
    """Why a run may not use or act on approved ``request`` ("" when it may): only runs of the launcher that opened
    it do. ``launcher`` is who launched the run (:func:`run_launcher`), or None for a service acting for
    ``execution``, which knows the execution but not its launcher: the request's own launcher when that execution
    opened it, else nobody. ``verify_requests`` and the acting point apply this one rule."""
    if launcher is None:
        launcher = request.launcher if request.execution == execution else ""
    if launcher and request.launcher == launcher:
        return ""
    who = f"was launched by {launcher}" if launcher else "has no established launcher"
    return (
        f"request {request.request_id} was opened by a run launched by {request.launcher or '(nobody recorded)'};"
        f" this run {who}: an approval is used only by runs its own launcher starts"
    )


def open_request(
    gate: str,
    risk: str,
    subject: str,
    summary: dict[str, Any] | None = None,
    evidence: dict[str, str] | None = None,
    requester: str = "",
    reason: str = "",
    timeout_s: float | None = None,
    *,
    env: Env,
) -> str:
    """Open an approval request (idempotently) and return its id, without waiting.

    The id is derived from the content (gate, risk, subject, summary, evidence, requester, launcher) and a round
    number: opening the same content again returns the same id while it is pending, approved and not yet
    used by another execution, or rejected; after a timeout or a use by another execution a new round opens.

    Args:
        gate: approval kind, kebab-case, a key of ``approvals:`` in roles.yaml (it is also the Flyte signal id).
        risk: ``low``, ``medium`` or ``high``; sets the quorum from roles.yaml.
        subject: what is approved, usually a content digest (``sha256:...``).
        summary: typed, non-secret facts shown to reviewers (amount, vendor, ...).
        evidence: name -> digest or audit record id (document, policy decision, ...).
        requester: principal asking (``service:document-pipeline``); may not approve.
        reason: why approval is needed (the policy's reason).
        timeout_s: seconds until the request times out (default ``settings.approval_timeout_s``).
        env: settings, store and keys of the caller (``Env.load(settings)``).

    Returns:
        The request id (``apr-<hex>``).

    Raises:
        ValueError: a malformed gate name or risk, or a timeout that is no number of seconds in
            (0, ``MAX_APPROVAL_TIMEOUT_S``].
        ConfigError: no rule for the gate in roles.yaml (fail closed).
        AuditWriteError: the request could not be recorded.
    """
    validate_gate_name(gate)
    if timeout_s is not None:
        check_timeout(timeout_s, "timeout_s")
    if risk not in RISKS:
        msg = f"risk {risk!r} is not one of {list(RISKS)}"
        raise ValueError(msg)
    if not requester:
        msg = "open_request needs requester= (the principal asking, e.g. 'service:document-pipeline')"
        raise ValueError(msg)
    rule = env.book.rule(gate)
    summary, evidence = dict(summary or {}), {k: str(v) for k, v in (evidence or {}).items()}
    content: dict[str, Any] = {"gate": gate, "risk": risk, "subject": subject, "summary": summary, "evidence": evidence}
    launcher = run_launcher(env.settings)
    # the launcher is part of the content: a run launched by someone else (an approver among them) asks anew and
    # never finds, or uses, the approval another launcher's run was given
    content_key = content_key_of(gate, risk, subject, summary, evidence, requester, launcher)
    execution = _execution_key()
    existing, round_ = _current_round(env, content_key, execution)
    if existing:
        return existing
    now = get_clock().now()
    timeout = check_timeout(env.settings.approval_timeout_s, "approval_timeout_s") if timeout_s is None else timeout_s
    req = ApprovalRequest(
        request_id=request_id_of(content_key, round_),
        content_key=content_key,
        round=round_,
        **content,
        requester=requester,
        launcher=launcher,
        reason=reason,
        roles=list(rule.roles),
        quorum=rule.quorum_for(risk),
        created_at=now,
        expires_at=now + dt.timedelta(seconds=timeout),
        execution=execution,
        signal_id=gate,
    )
    _append_request(env, req)
    return req.request_id


def _current_round(env: Env, content_key: str, execution: str) -> tuple[str, int]:
    """(id to reuse or "", round number for a new request).

    The round that stands is the first one no later round was opened past: a round counts only when the one before it
    no longer stood for the execution that opened it (timed out, refused, or used by another execution), as this
    function opens rounds. A store writer once appended a second round after an approver rejected the first, and the
    gate asked that one, whose approval by a second approver paid what the first had rejected (review of
    2026-12-07)."""
    rounds = projection(env.store).rounds_for(content_key)
    if not rounds:
        return "", 1
    latest = rounds[0]
    for later in rounds[1:]:
        if _stands(latest, env, later.request.execution):
            break
        latest = later
    if _stands(latest, env, execution):
        return latest.request.request_id, latest.request.round
    return "", latest.request.round + 1


def _stands(st: RequestState, env: Env, execution: str) -> bool:
    """Whether request ``st`` still answers a request of the same content opened by ``execution``: pending, rejected
    (a rejection stands), or approved and used by no other execution."""
    status = evaluate(st, env).status
    reusable = not st.consumed_by or st.consumed_by == [execution]
    return status in {"pending", "rejected"} or (status == "approved" and reusable)


def _append_request(env: Env, req: ApprovalRequest) -> None:
    parents = [v for v in req.evidence.values() if len(v) == 64 and all(c in "0123456789abcdef" for c in v)]
    env.store.append(
        AuditEvent(
            kind="approval_request",
            actor=env.settings.actor,
            status="pending",
            subject=req.request_id,
            execution=_cli_execution(),
            inputs=dict(req.evidence),
            parents=parents,
            attributes={"request": req.model_dump(mode="json"), "request_digest": req.digest()},
        )
    )


def outcome(request_id: str, env: Env) -> ApprovalOutcome:
    """Verified status of one request, folded from the audit trail (signatures and roles re-checked).

    Raises:
        ApprovalNotFound: no such request.
    """
    st = projection(env.store).get(request_id)
    if st is None:
        from flytekitplugins.aios_core.redact import mask_url

        where = mask_url(env.store.url)
        msg = f"no approval request {request_id!r} in the audit store {where}; see `aios approvals list`"
        raise ApprovalNotFound(msg)
    return evaluate(st, env)


def _refuse(env: Env, request_id: str, principal: str, action: str, code: str, why: str, source: str) -> DecideResult:
    rec = env.store.append(
        AuditEvent(
            kind="approval_refused",
            actor=principal,
            status=code,
            subject=request_id,
            execution=_cli_execution(),
            attributes={"action": action, "reason": why, "source": source},
        )
    )
    st = projection(env.store).get(request_id)
    return DecideResult(False, code, why, evaluate(st, env) if st else None, rec.record_id)


def _cli_execution() -> Any:
    from flytekitplugins.aios_core.context import current_execution

    return current_execution()


def record_refusal(
    request_id: str, principal: str, action: str, code: str, why: str, source: str, env: Env
) -> DecideResult:
    """Audit a refused attempt decided outside :func:`decide` (e.g. a CLI identity mismatch)."""
    return _refuse(env, request_id, principal, action, code, why, source)


class _Refused(PreconditionFailed):
    def __init__(self, code: str, why: str) -> None:
        super().__init__(why)
        self.code, self.why = code, why


def _problem(env: Env, request_id: str, principal: str, action: Action, reason: str) -> tuple[str, str] | None:
    """Why ``principal`` may not decide ``request_id`` now, as (code, message), or None."""
    st = projection(env.store).get(request_id)
    if st is None:
        return "unknown_request", f"no request {request_id!r}"
    current = evaluate(st, env)
    req = st.request
    checks: list[tuple[bool, str, str]] = [
        (action == "reject" and not reason.strip(), "reason_required", "a rejection needs --reason TEXT"),
        (current.status in TERMINAL, "already_decided", f"request is already {current.status}: {current.reason}"),
        (
            any(d.approver == principal and decision_stands(d, req, env) for d in st.decisions),
            "replay",
            f"{principal} already decided this request; a decision is applied exactly once",
        ),
    ]
    for failed, code, why in checks:
        if failed:
            return code, why
    problem = refusal_reason(env.book, req.gate, principal, req.requester, req.launcher)
    if problem is not None:
        code, _, why = problem.partition(": ")
        return code, why
    return None


def decide(
    request_id: str,
    principal: str,
    action: Action,
    reason: str = "",
    source: str = "cli",
    *,
    env: Env,
) -> DecideResult:
    """Apply one approve/reject by ``principal`` after every rule check; audit it either way.

    Refusals (unknown request, reject without reason, request already final or expired, replay, unknown
    principal, requester/launcher, missing role) are written as ``approval_refused`` and change nothing.
    An attempt that passes them is then put to the policy engine (Cedar action ``approve`` with context
    ``{gate}``, ``approver_policy``): anything but ``allow`` refuses it (``policy_forbids``), and so does a policy
    that cannot be evaluated (``policy_unavailable``, fail closed). Decisions already recorded are not re-checked
    against the policy; removing the role in roles.yaml withdraws them.
    The checks run again inside the store's write transaction, under its exclusive lock, right before the
    decision is appended: of two concurrent attempts by one approver exactly one is accepted, and a request
    that became final in between is not decided again. Only decisions whose signature verifies count as earlier
    decisions, so a junk record cannot turn a real decision into a "replay".
    """
    problem = _problem(env, request_id, principal, action, reason)
    if problem is not None:
        return _refuse(env, request_id, principal, action, *problem, source)
    st = projection(env.store).get(request_id)
    assert st is not None  # _problem found it
    # the policy's approvers (Cedar action `approve`), asked once, outside the store's write lock
    problem = approver_problem(env.settings, principal, st.request.gate, st.request.subject)
    if problem is not None:
        return _refuse(env, request_id, principal, action, *problem, source)
    dec = new_decision(env, st.request, principal, action, reason)
    event = AuditEvent(
        kind="approval_decision",
        actor=principal,
        status=action,
        subject=request_id,
        execution=_cli_execution(),
        parents=[st.record_id],
        approvals=[dec.model_dump(mode="json")],
        attributes={"decision": dec.model_dump(mode="json"), "source": source, "execution": st.request.execution},
    )

    def still_allowed() -> None:
        again = _problem(env, request_id, principal, action, reason)
        if again is not None:
            raise _Refused(*again)

    try:
        rec = env.store.append_many([event], precondition=still_allowed)[0]
    except _Refused as r:
        return _refuse(env, request_id, principal, action, r.code, r.why, source)
    after = evaluate(projection(env.store).get(request_id) or st, env)
    return DecideResult(
        True, "accepted", f"{action} by {principal} recorded; request is {after.status}", after, rec.record_id
    )
