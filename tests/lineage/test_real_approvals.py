"""Trace through approvals made by the real approvals service: roles from config/roles.yaml, signatures re-checked."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from flytekitplugins.aios_approvals import decide, open_request
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings
from tests.lineage.synthetic import _decision, _ex


def _open(i: int) -> tuple[str, str]:
    doc = f"sha256:{i:064x}"
    pd = audit_log(get_settings(), emit=False).append(_decision(doc, i, _ex("run-real"))).record_id
    evidence = {"document": doc, "policy_decision": pd}
    rid = open_request(
        "payment-signoff",
        "high",
        doc,
        {"amount": 60000 + i},
        evidence,
        requester="service:x",
        env=Env.load(get_settings()),
    )
    return doc, rid


def test_quorum_of_two_approvers_with_roles_and_verified_signatures(aios_env: Path) -> None:
    doc, rid = _open(1)
    assert decide(
        rid, "user:bob", "approve", reason="matches the purchase order", env=Env.load(get_settings())
    ).accepted
    assert decide(rid, "user:carol", "approve", reason="second pair of eyes", env=Env.load(get_settings())).accepted
    res = CliRunner().invoke(cli, ["lineage", "trace", rid, "--json"])
    assert res.exit_code == 0, res.output
    [case] = json.loads(res.output)["cases"]
    assert case["document"] == doc
    assert [(a["approver"], a["roles"], a["signature"]) for a in case["approvals"]] == [
        ("user:bob", ["finance-approver"], "verified"),
        ("user:carol", ["finance-approver", "risk-officer"], "verified"),
    ]
    assert case["approval_requests"][0]["quorum"] == 2
    assert case["outcome"].startswith("waiting for approval or not acted on")  # approved, but nothing posted yet


def test_rejection_and_refused_attempts_are_in_the_case(aios_env: Path) -> None:
    _doc, rid = _open(2)
    assert not decide(
        rid, "user:alice", "approve", reason="not my role", env=Env.load(get_settings())
    ).accepted  # refused: wrong role
    assert decide(rid, "user:bob", "reject", reason="duplicate invoice", env=Env.load(get_settings())).accepted
    text = CliRunner().invoke(cli, ["lineage", "trace", rid]).output
    assert "outcome: rejected by user:bob: nothing was posted" in text
    assert "reject by user:bob [finance-approver] reason 'duplicate invoice', signature verified" in text
    assert "refused: user:alice" in text
