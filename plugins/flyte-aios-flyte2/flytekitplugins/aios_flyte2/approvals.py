"""Approvals on Flyte 2 conditions, with the pack's roles, separation of duties, quorum and signed decisions.

A Flyte 2 condition (``flyte.new_condition``) pauses a task until someone sets a value; it records who set it
but knows no roles, quorum or separation of duties. Here the condition is only the pause. What the value is
worth is decided after it, from the audit trail, exactly as after a flytekit gate node:

1. the adapter opens the request (:func:`~flytekitplugins.aios_approvals.open_request`, idempotent per content);
2. it waits: in local mode on the audit trail (a decision by ``aios approvals approve|reject`` from any
   process is picked up; stdin is never read), on a cluster on the condition itself;
3. after the wait, :func:`~flytekitplugins.aios_approvals.verify_requests` checks the decisions' roles, quorum,
   signatures and single use: a condition value set by someone without the role, or with no authorized quorum
   behind it, is ``refused`` (and audited). Only ``approved`` lets the gated body run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

from flytekitplugins.aios_approvals import ApprovalOutcome, open_request, verify_requests
from flytekitplugins.aios_audit import AuditEvent, audit_log, current_audit
from flytekitplugins.aios_core.context import current_execution
from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import Settings
from flytekitplugins.aios_core.types import PolicyDecision
from flytekitplugins.aios_flyte2.identity import is_local, task_context

Waiter = Literal["auto", "trail", "condition"]
SOURCE = "flyte2-condition"


def condition_name(gate: str, request_ids: Sequence[str]) -> str:
    """The condition's name: the gate plus a digest of the requests it waits for (stable across retries)."""
    return f"{gate}-{digest_value(sorted(request_ids)).removeprefix('sha256:')[:12]}"


def _prompt(gate: str, request_ids: Sequence[str]) -> str:
    ids = ", ".join(request_ids)
    return (
        f"{gate}: decide {ids} with `aios approvals approve <id> --as <principal>` (this value alone approves nothing)"
    )


def _mode(waiter: Waiter) -> Literal["trail", "condition"]:
    if waiter == "auto":
        return "trail" if is_local() else "condition"
    return waiter


def _new_condition(gate: str, request_ids: Sequence[str], timeout_s: float) -> Any:
    import flyte

    return flyte.new_condition(
        condition_name(gate, request_ids),
        prompt=_prompt(gate, request_ids),
        data_type=bool,
        description="flyte-aios approval: verified against roles.yaml after the condition",
        timeout=timeout_s,
    )


def _condition_value(condition: Any) -> bool:
    """The value someone set on the condition (timeouts and failures deny)."""
    import flyte.errors

    try:
        return bool(condition.wait())
    except flyte.errors.ConditionTimedoutError as e:
        msg = f"approval condition {condition.name!r} was not signalled in time; the gated action did not run"
        raise GovernanceDenied(msg, reason_code="approval_timed_out") from e
    except GovernanceDenied:
        raise
    except Exception as e:
        msg = f"approval condition {condition.name!r} failed ({type(e).__name__}); denied (fail closed)"
        raise GovernanceDenied(msg, reason_code="approval_unavailable") from e


def _declined(gate: str, request_ids: Sequence[str], settings: Settings) -> list[ApprovalOutcome]:
    """The condition was answered "no": audited, nothing is consumed, every request counts as rejected."""
    why = "the approval condition was answered no; the gated action did not run"
    audit_log(settings).append_many(
        [
            AuditEvent(
                kind="approval_refused",
                actor=settings.actor,
                status="condition_declined",
                subject=rid,
                execution=current_execution(),
                attributes={"reason": why, "source": SOURCE, "gate": gate},
            )
            for rid in request_ids
        ]
    )
    return [ApprovalOutcome(request_id=r, gate=gate, status="rejected", reason=why) for r in request_ids]


def wait_approvals(
    gate: str,
    request_ids: Sequence[str],
    *,
    settings: Settings,
    timeout_s: float | None = None,
    waiter: Waiter = "auto",
) -> list[ApprovalOutcome]:
    """Pause on a Flyte 2 condition for ``request_ids``, then verify them (sync; use in sync tasks).

    Args:
        gate: the approval gate (a key of ``approvals:`` in roles.yaml), e.g. ``payment-signoff``.
        request_ids: ids from ``open_request``.
        settings: the task's settings (``get_settings()`` once at the top of the task body); audit store, keys.
        timeout_s: how long to wait (default ``settings.approval_timeout_s``); then the requests time out.
        waiter: ``trail`` (poll the audit trail; local default), ``condition`` (wait for the condition's value;
            cluster default; in local mode flyte prompts on the console) or ``auto``.

    Returns:
        One verified outcome per id: ``approved`` only with an authorized, signed quorum behind it.

    Raises:
        GovernanceDenied: the wait timed out (``approval_timed_out``) or the condition failed.
    """
    from flytekitplugins.aios_approvals.evaluate import Env
    from flytekitplugins.aios_approvals.service import check_timeout
    from flytekitplugins.aios_approvals.waiting import wait_for_decisions

    timeout = check_timeout(timeout_s if timeout_s is not None else settings.approval_timeout_s, "timeout_s")
    env = Env.load(settings)
    mode = _mode(waiter)
    # locally the condition is only registered (it shows in the run); on a cluster an unwaited one would stay open
    wanted = task_context() is not None and (mode == "condition" or is_local())
    condition = _new_condition(gate, request_ids, timeout) if wanted else None
    if mode == "trail":
        wait_for_decisions(gate, list(request_ids), dt.timedelta(seconds=timeout), env=env)
    elif condition is None:
        msg = f"approval gate {gate!r} waits on a Flyte 2 condition, which needs a running task; denied"
        raise GovernanceDenied(msg, reason_code="approval_unavailable")
    elif not _condition_value(condition):
        return _declined(gate, request_ids, settings)
    return verify_requests(gate, list(request_ids), env=env, after_signal=True)


async def await_approvals(
    gate: str,
    request_ids: Sequence[str],
    *,
    settings: Settings,
    timeout_s: float | None = None,
    waiter: Waiter = "auto",
) -> list[ApprovalOutcome]:
    """:func:`wait_approvals` for async tasks (the wait runs in a worker thread, the event loop stays free)."""
    kw: dict[str, Any] = {"settings": settings, "timeout_s": timeout_s, "waiter": waiter}
    return await asyncio.to_thread(wait_approvals, gate, request_ids, **kw)


def _command(rid: str) -> str:
    return f"`aios approvals approve {rid} --as <principal>` (or `aios approvals reject {rid} --as <p> --reason T`)"


def open_for(
    decision: PolicyDecision,
    *,
    subject: str,
    summary: dict[str, Any],
    requester: str,
    timeout_s: float | None,
    settings: Settings,
) -> str:
    """Open (or find) the approval request a ``require_approval`` decision asks for; return its id."""
    if decision.effect != "require_approval" or decision.approval is None:
        msg = f"policy decision has effect {decision.effect!r}, not require_approval: {'; '.join(decision.reasons)}"
        raise GovernanceDenied(msg, reason_code="denied", record_id=decision.audit_record_id or None)
    req = decision.approval
    # keyed on the request digest (not this decision's record id): a retry finds the same request again
    evidence = {"policy_decision": decision.request_digest, "policy_set": decision.policy_set_digest}
    reason = req.reason or "; ".join(decision.reasons)
    from flytekitplugins.aios_approvals.evaluate import Env

    env = Env.load(settings)
    return open_request(req.gate, req.risk, subject, summary, evidence, requester, reason, timeout_s, env=env)


def settle(gate: str, outcome: ApprovalOutcome) -> ApprovalOutcome:
    """Return an approved outcome (attached to the task's audit scope); raise for anything else."""
    if outcome.status == "approved":
        scope = current_audit()
        if scope is not None:
            scope.add_approval(outcome.model_dump(mode="json", exclude={"decisions"}))
        return outcome
    code = {"rejected": "approval_rejected", "timed_out": "approval_timed_out"}.get(outcome.status, "approval_refused")
    rid = outcome.request_id
    msg = f"{gate} approval {rid} is {outcome.status} ({outcome.reason}); decide it with {_command(rid)}"
    raise GovernanceDenied(msg, reason_code=code, record_id=rid)


__all__ = ["Waiter", "await_approvals", "condition_name", "open_for", "settle", "wait_approvals"]
