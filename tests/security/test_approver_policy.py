"""The policy's approvers (config/policies/approvers.cedar, Cedar action ``approve``) bind ``decide``.

A forbid that suspends an approver refused nothing: ``decide`` checked roles.yaml only, so the engine and
``aios policy test`` said deny while the suspended approver's approval was accepted and counted (review R1). Now every
attempt that passes the roles.yaml checks is put to the real policy engine before it is recorded; a deny refuses it
(``policy_forbids``) and a policy that cannot be read refuses it too (``policy_unavailable``, fail closed).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flytekitplugins.aios_approvals import decide, open_request, outcome
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_core.settings import get_settings, reset_settings
from flytekitplugins.aios_policy.cedar_load import clear_cache

REPO = Path(__file__).resolve().parents[2]
REQUESTER = "service:document-pipeline"
SUSPEND_BOB = """
@id("bob-suspended")
@reason("bob is suspended from approving")
forbid (principal == User::"bob", action == Action::"approve", resource);
"""


@pytest.fixture(autouse=True)
def launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs launched by a service that decides nothing (bob and carol are neither requester nor launcher)."""
    monkeypatch.setenv("AIOS_PRINCIPAL", "service:launcher")
    reset_settings()


def _policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, name: str = "approvers.cedar") -> Path:
    """A copy of config/policies with ``extra`` appended to ``name``, in force from here on (AIOS_POLICY_DIR)."""
    pol = shutil.copytree(REPO / "config" / "policies", tmp_path / "policies")
    target = pol / name
    target.write_text((target.read_text() if target.exists() else "") + extra)
    monkeypatch.setenv("AIOS_POLICY_DIR", str(pol))
    reset_settings()
    clear_cache()
    return pol


def _payment_request(tag: str = "invoice-12500") -> str:
    return open_request(
        "payment-signoff",
        "high",
        f"sha256:{tag}",
        {"amount": 60_000},
        requester=REQUESTER,
        env=Env.load(get_settings()),
    )


def _refusals() -> list[AuditEvent]:
    return [r.event for r in audit_log(get_settings()).scan() if r.event.kind == "approval_refused"]


def _decisions() -> list[AuditEvent]:
    return [r.event for r in audit_log(get_settings()).scan() if r.event.kind == "approval_decision"]


def test_a_forbid_on_approve_refuses_the_suspended_approver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _policies(tmp_path, monkeypatch, SUSPEND_BOB)
    rid = _payment_request()
    res = decide(rid, "user:bob", "approve", reason="ok", env=Env.load(get_settings()))
    assert not res.accepted and res.code == "policy_forbids", (res.code, res.message)
    assert "bob-suspended" in res.message and "bob is suspended from approving" in res.message
    assert [(e.actor, e.status) for e in _refusals()] == [("user:bob", "policy_forbids")]
    assert _decisions() == []
    assert outcome(rid, env=Env.load(get_settings())).status == "pending"
    # a rejection is a decision too: the suspended approver makes none
    rej = decide(rid, "user:bob", "reject", reason="no", env=Env.load(get_settings()))
    assert not rej.accepted and rej.code == "policy_forbids"
    assert outcome(rid, env=Env.load(get_settings())).status == "pending"
    # carol, a finance approver the policy allows, still decides: her approval counts (high risk: quorum 2)
    ok = decide(rid, "user:carol", "approve", reason="checked", env=Env.load(get_settings()))
    assert ok.accepted and ok.code == "accepted", (ok.code, ok.message)
    assert [(e.actor, e.status) for e in _decisions()] == [("user:carol", "approve")]
    assert outcome(rid, env=Env.load(get_settings())).status == "pending"  # one of two: bob's never counted


def test_shipped_policy_lets_the_roles_approvers_decide() -> None:
    """With config/policies as shipped, the finance approvers of roles.yaml decide payment sign-offs."""
    rid = _payment_request("shipped")
    for who in ("user:bob", "user:carol"):
        res = decide(rid, who, "approve", reason="checked", env=Env.load(get_settings()))
        assert res.accepted, (who, res.code, res.message)
    assert outcome(rid, env=Env.load(get_settings())).status == "approved"
    assert _refusals() == []


def test_an_unreadable_policy_refuses_every_decision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _policies(tmp_path, monkeypatch, '@id("broken") permit (principal, action, resource) when { ;', "broken.cedar")
    rid = _payment_request("broken-policy")
    res = decide(rid, "user:carol", "approve", reason="checked", env=Env.load(get_settings()))
    assert not res.accepted and res.code == "policy_unavailable", (res.code, res.message)
    assert "fail closed" in res.message
    assert [(e.actor, e.status) for e in _refusals()] == [("user:carol", "policy_unavailable")]
    assert _decisions() == []
    assert outcome(rid, env=Env.load(get_settings())).status == "pending"
