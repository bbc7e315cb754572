"""What ``aios audit verify`` reports about approvals: decision records that count for nothing.

Anyone with write access to the store can append an ``approval_decision`` record. Such a record is ignored by
every fold (``evaluate.decision_stands``: its signature must verify against the approvals key, over the digest of
the request it names), but it should not go unnoticed: the verifier lists every decision record that does not
stand, with the reason, so a reviewer sees the attempt.
"""

from __future__ import annotations

from pydantic import ValidationError

from flytekitplugins.aios_approvals import signing
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_approvals.models import ApprovalDecision, ApprovalRequest


def junk_decisions(env: Env) -> list[str]:
    """One line per recorded decision that does not stand (bad signature, another request's digest), in log order.

    One pass over the sealed log's request and decision records (verification never reads the projection tables),
    by the fold's rules (``state.Projection``): the first request of an id wins, a decision counts toward the
    request it is recorded for and names, a malformed record is passed over. Only each request's digest is kept, not
    the fold of every request (which took 420 MB for the 70,000 requests of a million-record log).
    """
    out: list[str] = []
    digests: dict[str, str] = {}
    kid = signing.key_id(env.public_key)
    for rec in env.store.scan_kinds(("approval_request", "approval_decision")):
        ev = rec.event
        try:
            if ev.kind == "approval_request":
                req = ApprovalRequest.model_validate(ev.attributes["request"])
                if req.request_id not in digests:
                    digests[req.request_id] = req.digest()
                continue
            digest = digests.get(ev.subject)
            if digest is None:
                continue
            d = ApprovalDecision.model_validate(ev.attributes["decision"])
        except (KeyError, TypeError, ValidationError):
            continue  # counts for nothing in the fold either (which logs it)
        if d.request_id != ev.subject:
            continue
        if d.request_digest != digest:
            out.append(
                f"record {rec.record_id}: decision by {d.approver} on {ev.subject} covers another request version"
            )
        elif not signing.verify(env.public_key, d.signed_payload(), d.signature):
            out.append(
                f"record {rec.record_id}: decision by {d.approver} on {ev.subject} is not signed by approvals key {kid}"
            )
    return out
