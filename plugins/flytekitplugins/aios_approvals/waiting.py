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


def snapshot(request_ids: Sequence[str]) -> dict[str, ApprovalOutcome | None]:
    """Current verified outcome of each request (None for an unknown id)."""
    env = Env.load()
    proj = projection(env.store)
    out: dict[str, ApprovalOutcome | None] = {}
    for rid in request_ids:
        st = proj.get(rid)
        out[rid] = evaluate(st, env) if st is not None else None
    return out


def _fail_timeout(gate: str, pending: list[str], timeout: dt.timedelta) -> None:
    env = Env.load()
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


def wait_for_decisions(gate: str, request_ids: Sequence[str], timeout: dt.timedelta, poll_s: float = POLL_S) -> None:
    """Block until no request is pending (decided or expired), or raise when ``timeout`` passes.

    Unknown ids do not block: the verification step after the gate refuses them.
    """
    clock = get_clock()
    deadline = clock.now() + timeout
    announced = False
    while True:
        pending = [rid for rid, o in snapshot(request_ids).items() if o is not None and o.status == "pending"]
        if not pending:
            return
        if clock.now() >= deadline:
            _fail_timeout(gate, pending, timeout)
        if not announced:
            print(
                f"[approval gate {gate}] waiting up to {timeout} for {len(pending)} request(s): {', '.join(pending)}; "
                f"decide with `aios approvals approve <id> --as <principal>` (stdin is never read)",
                file=sys.stderr,
                flush=True,
            )
            announced = True
        clock.sleep(poll_s)
