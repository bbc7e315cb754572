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
