"""Approval records whose payload does not parse are reported by the verifiers, not passed over in silence.

Attacker: write access to the audit store. A decision record whose ``decision`` payload is not a decision (fields
missing, of the wrong type, or no payload at all) counts for nothing in every fold, as it should; but ``aios audit
verify`` passed over it without a word while ``aios audit show`` prints its record as "approve by user:carol", so an
auditor reading the trail saw an approval that nothing reported as ignored (left open in the note of 2026-12-07).
Likewise an ``approval_request`` record that is not a request. Now both verifiers list each such record as
``warning: ignored approval decision/request (counts for nothing): ... does not parse: field ...``, naming the field
and never echoing the writer's text. Real SQLite store, the pack's signed approvals and its CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_approvals import decide, open_request, outcome
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_audit import AuditEvent, audit_log, close_all
from flytekitplugins.aios_core.cli import cli as aios
from flytekitplugins.aios_core.settings import get_settings

HOSTILE = "\x1b[2J\x1b[Hall approvals verified"
"""A writer's text in the malformed payload: it must not reach the auditor's screen."""


def _append(kind: str, actor: str, subject: str, attributes: dict[str, object]) -> str:
    event = AuditEvent(kind=kind, actor=actor, status="approve", subject=subject, attributes=attributes)
    return audit_log(get_settings()).append(event).record_id


def test_unreadable_decisions_and_requests_are_reported_by_audit_verify(aios_env: Path) -> None:
    env = Env.load(get_settings())
    rid = open_request("payment-signoff", "medium", "sha256:unreadable", {"amount": 20_000}, requester="svc", env=env)
    assert decide(rid, "user:bob", "approve", "checked", env=env).accepted
    wrong_type = {"request_id": rid, "approver": "user:carol", "action": "approve", "signature": 7, "roles": HOSTILE}
    typed = _append("approval_decision", "user:carol", rid, {"decision": wrong_type})
    bare = _append("approval_decision", "user:dave", rid, {"note": HOSTILE})
    request = _append("approval_request", "service:x", "apr-planted", {"request": {"request_id": HOSTILE}})
    close_all()
    seen = outcome(rid, env=Env.load(get_settings()))
    assert seen.approvers == ["user:bob"]  # neither counts, as before

    res = CliRunner().invoke(aios, ["audit", "verify"])
    assert res.exit_code == 0, res.output  # every record is genuinely sealed: warnings, not tampering
    out = res.output
    warn = "warning: ignored approval {} (counts for nothing): record {}: "
    assert warn.format("decision", typed) + f"decision by user:carol on {rid} does not parse: field " in out, out
    missing = f"decision by user:dave on {rid} does not parse: its payload is missing"
    assert warn.format("decision", bare) + missing in out, out
    assert warn.format("request", request) + "request apr-planted: does not parse: field " in out, out
    assert "\x1b" not in out and "all approvals verified" not in out, out
    assert out.count("counts for nothing") == 3, out  # bob's genuine decision and the real request are not listed

    doc = json.loads(CliRunner().invoke(aios, ["audit", "verify", "--json"]).output)
    assert doc["ok"] is True and len(doc["ignored_approval_decisions"]) == 3, doc


def test_a_signed_decision_re_recorded_under_another_actor_is_reported(aios_env: Path) -> None:
    """Re-review R3 D1: bob's signed rejection, appended again unchanged but for ``actor=user:carol`` and ``status=
    approve``, counts only as what it signs (bob's reject, once) but ``aios audit show`` prints it as carol's approval;
    no verifier reported it."""
    env = Env.load(get_settings())
    rid = open_request("payment-signoff", "medium", "sha256:relabel", {"amount": 20_000}, requester="svc", env=env)
    assert decide(rid, "user:bob", "reject", "supplier unknown", env=env).accepted
    store = audit_log(get_settings())
    genuine = next(r for r in store.scan_kinds(("approval_decision",)) if r.event.subject == rid)
    copy = genuine.event.model_copy(update={"actor": "user:carol", "status": "approve"})
    relabelled = store.append(copy).record_id
    close_all()
    assert outcome(rid, env=Env.load(get_settings())).status == "rejected"  # the fold goes by what is signed

    out = CliRunner().invoke(aios, ["audit", "verify"]).output
    want = (
        f"warning: ignored approval decision (counts for nothing): record {relabelled}: decision by user:bob on {rid} "
        "is recorded as 'approve' by 'user:carol', but its signed decision is 'reject' by 'user:bob'"
    )
    assert want in out and out.count("counts for nothing") == 1, out  # bob's own record is not listed


def test_a_bloated_payload_is_reported_by_its_count_of_errors(aios_env: Path) -> None:
    """Re-review R3 D3: naming the first invalid field built a dict for each of a bloated payload's million errors
    (470 MB more peak memory for one 3 MB record); past a few errors only their count is given."""
    from pydantic import ValidationError

    from flytekitplugins.aios_approvals.audit_check import UNREADABLE_DETAIL_MAX, unreadable
    from flytekitplugins.aios_approvals.models import ApprovalDecision

    with pytest.raises(ValidationError) as bloated:
        ApprovalDecision.model_validate({"request_id": "apr-x", "roles": [0] * 5_000})
    assert bloated.value.error_count() > UNREADABLE_DETAIL_MAX
    assert unreadable(bloated.value) == f"does not parse: {bloated.value.error_count():,} fields invalid"
    with pytest.raises(ValidationError) as few:
        ApprovalDecision.model_validate({"request_id": "apr-x"})
    assert unreadable(few.value).startswith("does not parse: field ")


def test_an_evidence_bundle_without_decisions_still_reports_an_unreadable_request(
    aios_env: Path, tmp_path: Path
) -> None:
    """Re-review R3 D2: ``aios evidence verify`` judged request records only when the bundle held a decision, so a
    bundle of a document whose planted request does not parse said a plain OK."""
    from flytekitplugins.aios_audit.evidence_verify import verify_bundle
    from tests.lineage.synthetic import _decision, _ex
    from tests.security.test_evidence_forgery import _aios, _published_key

    doc = f"sha256:{1:064x}"
    store = audit_log(get_settings(), emit=False)
    pd = store.append(_decision(doc, 1, _ex("run-real"))).record_id
    env = Env.load(get_settings())
    evidence = {"document": doc, "policy_decision": pd}
    open_request("payment-signoff", "high", doc, {"amount": 60_001}, evidence, requester="service:x", env=env)
    planted = AuditEvent(
        kind="approval_request",
        actor="service:x",
        status="pending",
        subject="apr-planted",
        inputs={"document": doc},
        parents=[pd],
        attributes={"request": {"request_id": "apr-planted", "gate": 7}},
    )
    bad = store.append(planted).record_id
    close_all()
    bundle = tmp_path / "doc.zip"
    code, out = _aios("evidence", "export", "--document", doc, "-o", str(bundle))
    assert code == 0, out
    pinned = _published_key(tmp_path)
    code, out = _aios("evidence", "verify", str(bundle), "--public-key", str(pinned))
    assert code == 0 and out.startswith("OK: "), out
    assert "warning: ignored approval request (counts for nothing): record #" in out, out
    assert f"{bad}: request apr-planted: does not parse: field " in out, out
    check = verify_bundle(bundle, [str(pinned)])
    assert check.ok and sum("apr-planted: does not parse" in n for n in check.notes) == 1, check.notes
