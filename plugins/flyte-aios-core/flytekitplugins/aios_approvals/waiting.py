"""Local waiting for a gate: poll the audit trail until every request is settled or the gate times out.

This is what a local run does instead of flytekit's ``click.confirm`` (where an empty line approves):
it never reads stdin, it enforces the timeout with the injectable clock, and a decision from any
process (a second terminal, a script, ``aios approvals approve``) lands in the shared audit store and
is picked up on the next poll.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Sequence

from flytekitplugins.aios_approvals.clock import get_clock
from flytekitplugins.aios_approvals.evaluate import Env, evaluate
from flytekitplugins.aios_approvals.models import ApprovalOutcome
from flytekitplugins.aios_approvals.state import projection
from flytekitplugins.aios_audit.records import AuditEvent
from flytekitplugins.aios_core.errors import GovernanceDenied

log = logging.getLogger(__name__)
POLL_S = 0.1


class ApprovalGateTimeout(GovernanceDenied):
    """The gate's timeout passed with requests still undecided; like Flyte on a cluster, the node fails."""


def snapshot(request_ids: Sequence[str], env: Env) -> dict[str, ApprovalOutcome | None]:
    """Current verified outcome of each request (None for an unknown id)."""
    proj = projection(env.store)
    out: dict[str, ApprovalOutcome | None] = {}
    for rid in request_ids:
        st = proj.get(rid)
        out[rid] = evaluate(st, env) if st is not None else None
    return out


def _fail_timeout(gate: str, pending: list[str], timeout: dt.timedelta, env: Env) -> None:
    env.store.append_many(
        [
            AuditEvent(
                kind="approval_verified",
                actor=env.settings.actor,
                status="timed_out",
                subject=rid,
                attributes={"reason": f"gate {gate} timed out after {timeout}", "consumed_by": ""},
            )
            for rid in pending
        ]
    )
    msg = (
        f"approval gate {gate!r} timed out after {timeout} with {len(pending)} undecided request(s): "
        f"{', '.join(pending)}; the gated action did not run"
    )
    raise ApprovalGateTimeout(msg, reason_code="approval_timed_out", record_id=pending[0])


def _left(until: dt.datetime, now: dt.datetime) -> str:
    """``59m 58s`` / ``1h 0m`` / ``2d 3h``: the time from ``now`` to ``until`` (never negative)."""
    s = max(int((until - now).total_seconds()), 0)
    days, hours, minutes = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {s % 60}s"


def waiting_message(gate: str, pending: Sequence[str], deadline: dt.datetime, env: Env) -> str:
    """What the gate prints while it waits: the real time left (the requests' expiry, capped by the gate).

    Args:
        gate: gate name.
        pending: undecided request ids.
        deadline: when the gate itself gives up.
        env: the caller's settings and store.
    """
    proj, now = projection(env.store), get_clock().now()
    expiries = [st.request.expires_at for rid in pending if (st := proj.get(rid)) is not None]
    ends = max(expiries) if expiries else deadline
    if ends < deadline:
        until = f"they expire in {_left(ends, now)} (at {ends.isoformat(timespec='seconds')})"
    else:
        until = f"the gate gives up in {_left(deadline, now)} (at {deadline.isoformat(timespec='seconds')})"
    return (
        f"[approval gate {gate}] waiting for {len(pending)} request(s): {', '.join(pending)}; {until}; "
        f"decide with `aios approvals approve <id> --as <principal>` (stdin is never read)"
    )


def wait_for_decisions(
    gate: str, request_ids: Sequence[str], timeout: dt.timedelta, *, env: Env, poll_s: float = POLL_S
) -> None:
    """Block until no request is pending (decided or expired), or raise when ``timeout`` passes.

    Unknown ids do not block: the verification step after the gate refuses them.
    """
    clock = get_clock()
    deadline = clock.now() + timeout
    announced = False
    while True:
        pending = [rid for rid, o in snapshot(request_ids, env).items() if o is not None and o.status == "pending"]
        if not pending:
            return
        if clock.now() >= deadline:
            _fail_timeout(gate, pending, timeout, env)
        if not announced:
            print(waiting_message(gate, pending, deadline, env), file=sys.stderr, flush=True)
            announced = True
        clock.sleep(poll_s)
