"""What ``aios audit verify`` reports about approvals: decision records that count for nothing.

Anyone with write access to the store can append an ``approval_decision`` record. Such a record is ignored by
every fold (``evaluate.decision_stands``: its signature must verify against the approvals key, over the digest of
the request it names), but it should not go unnoticed: the verifier lists every decision record that does not
stand, with the reason, so a reviewer sees the attempt.
"""

from __future__ import annotations

from flytekitplugins.aios_approvals import signing
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_approvals.state import folded


def junk_decisions(env: Env) -> list[str]:
    """One line per recorded decision that does not stand (bad signature, another request's digest)."""
    out: list[str] = []
    proj = folded(env.store)  # the sealed log itself (verification never reads the projection tables)
    for rid, st in proj.requests.items():
        digest = st.request.digest()
        for d, record in zip(st.decisions, st.decision_records, strict=True):
            if d.request_digest != digest:
                out.append(f"record {record}: decision by {d.approver} on {rid} covers another request version")
            elif not signing.verify(env.public_key, d.signed_payload(), d.signature):
                kid = signing.key_id(env.public_key)
                out.append(f"record {record}: decision by {d.approver} on {rid} is not signed by approvals key {kid}")
    return out
