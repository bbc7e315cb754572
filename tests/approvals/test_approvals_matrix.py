"""Authorization matrix: role x action x risk, separation of duties, quorum, replay, timeout, rejection.

The gated action is ``governed_payment``: it runs only after ``require_approval`` returns. Every refused
case must leave the ledger untouched and leave an ``approval_refused`` record naming the actor and reason;
every allowed case must pay exactly once.
"""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
from pathlib import Path

import pytest

from flytekitplugins.aios_approvals import ManualClock, decide, open_request, outcome, require_approval, use_clock
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_core.context import local_run
from flytekitplugins.aios_core.errors import ConfigError, GovernanceDenied
from flytekitplugins.aios_core.settings import get_settings, reset_settings
from flytekitplugins.aios_core.types import ApprovalRequirement, PolicyDecision

REQUESTER = "service:document-pipeline"
PRINCIPALS = ["user:alice", "user:bob", "user:carol", "user:dave", "user:mallory"]
AUTHORIZED = {"user:bob", "user:carol"}  # finance-approver in config/roles.yaml


def _decision(risk: str) -> PolicyDecision:
    req = ApprovalRequirement(gate="payment-signoff", risk=risk, reason="payment-over-10k")  # type: ignore[arg-type]
    return PolicyDecision(
        effect="require_approval", reasons=["amount > 10000"], approval=req, audit_record_id="ab" * 32
    )


def governed_payment(ledger: list[str], risk: str, amount: int = 12500, requester: str = REQUESTER) -> str:
    appr = require_approval(
        _decision(risk),
        subject=f"sha256:invoice-{amount}",
        summary={"amount": amount},
        requester=requester,
        settings=get_settings(),
    )
    ledger.append(appr.request_id)
    return appr.request_id


def _request_id(risk: str, amount: int = 12500, requester: str = REQUESTER) -> str:
    with pytest.raises(GovernanceDenied) as e:
        governed_payment([], risk, amount, requester)
    assert e.value.reason_code == "approval_required"
    assert f"aios approvals approve {e.value.record_id} --as" in str(e.value)
    return str(e.value.record_id)


def _kinds(kind: str) -> list[AuditEvent]:
    return [r.event for r in audit_log(get_settings()).scan() if r.event.kind == kind]


@pytest.fixture(autouse=True)
def launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOS_PRINCIPAL", "service:launcher")
    reset_settings()


MATRIX = list(itertools.product(PRINCIPALS, ["approve", "reject"], ["low", "medium", "high"]))


@pytest.mark.parametrize(("principal", "action", "risk"), MATRIX)
def test_matrix(principal: str, action: str, risk: str) -> None:
    rid = _request_id(risk)
    ledger: list[str] = []
    res = decide(rid, principal, action, reason="checked invoice", env=Env.load(get_settings()))  # type: ignore[arg-type]
    assert res.accepted == (principal in AUTHORIZED)
    if not res.accepted:
        refused = _kinds("approval_refused")
        assert refused[-1].actor == principal and refused[-1].subject == rid
        assert refused[-1].status in {"role", "unknown_principal"}
        assert refused[-1].attributes["reason"]
        assert outcome(rid, env=Env.load(get_settings())).status == "pending"
    expect_paid = res.accepted and action == "approve" and risk != "high"
    if expect_paid:
        assert governed_payment(ledger, risk) == rid
    else:
        with pytest.raises(GovernanceDenied) as e:
            governed_payment(ledger, risk)
        want = "approval_rejected" if res.accepted and action == "reject" else "approval_required"
        assert e.value.reason_code == want
    assert ledger == ([rid] if expect_paid else [])


@pytest.mark.parametrize("who", ["requester", "launcher"])
def test_separation_of_duties(who: str, monkeypatch: pytest.MonkeyPatch) -> None:
    requester = "user:carol" if who == "requester" else REQUESTER
    if who == "launcher":
        monkeypatch.setenv("AIOS_PRINCIPAL", "user:carol")
        reset_settings()
    rid = _request_id("medium", requester=requester)
    res = decide(rid, "user:carol", "approve", env=Env.load(get_settings()))
    assert not res.accepted and res.code == "separation_of_duties" and who in res.message
    assert _kinds("approval_refused")[-1].actor == "user:carol"
    with pytest.raises(GovernanceDenied):
        governed_payment([], "medium", requester=requester)


def test_a_run_that_takes_a_service_identity_keeps_its_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    """carol launched a run whose first task took ``service:document-pipeline`` (act_as): the request it opened named
    the service as launcher, so carol approved her own run's payment. The launcher is who launched the run."""
    from tasks.acting import act_as

    monkeypatch.setenv("AIOS_PRINCIPAL", "user:carol")
    reset_settings()
    assert act_as("service:document-pipeline") == "service:document-pipeline"
    assert act_as("service:document-pipeline") == "service:document-pipeline"  # a second call changes nothing
    rid = _request_id("medium", requester="service:document-pipeline")
    res = decide(rid, "user:carol", "approve", env=Env.load(get_settings()))
    assert not res.accepted and res.code == "separation_of_duties" and "launcher" in res.message
    assert decide(rid, "user:bob", "approve", env=Env.load(get_settings())).accepted


def test_high_risk_quorum_and_replay() -> None:
    rid = _request_id("high")
    assert decide(rid, "user:carol", "approve", env=Env.load(get_settings())).accepted
    assert outcome(rid, env=Env.load(get_settings())).status == "pending"  # one of two
    replay = decide(rid, "user:carol", "approve", env=Env.load(get_settings()))
    assert not replay.accepted and replay.code == "replay"
    ledger: list[str] = []
    with pytest.raises(GovernanceDenied):
        governed_payment(ledger, "high")
    assert decide(rid, "user:bob", "approve", env=Env.load(get_settings())).accepted
    out = outcome(rid, env=Env.load(get_settings()))
    assert out.status == "approved" and sorted(out.approvers) == ["user:bob", "user:carol"] and len(out.signatures) == 2
    governed_payment(ledger, "high")
    late = decide(rid, "user:bob", "reject", reason="changed my mind", env=Env.load(get_settings()))
    assert not late.accepted and late.code == "already_decided"
    assert ledger == [rid]


def test_duplicate_decision_record_changes_nothing() -> None:
    """A decision record replayed into the log (e.g. a raced double submit) is folded once."""
    rid = _request_id("high")
    res = decide(rid, "user:carol", "approve", env=Env.load(get_settings()))
    record = audit_log(get_settings()).get(res.record_id)
    assert record is not None
    audit_log(get_settings()).append(record.event)  # the same signed decision, appended again
    out = outcome(rid, env=Env.load(get_settings()))
    assert out.status == "pending" and out.approvers == ["user:carol"]


def test_forged_decision_does_not_count() -> None:
    rid = _request_id("high")
    res = decide(rid, "user:carol", "approve", env=Env.load(get_settings()))
    ev = audit_log(get_settings()).get(res.record_id).event  # type: ignore[union-attr]
    forged = dict(ev.attributes["decision"], approver="user:bob", decision_key="sha256:forged")
    audit_log(get_settings()).append(ev.model_copy(update={"attributes": {"decision": forged}}))
    out = outcome(rid, env=Env.load(get_settings()))
    assert out.status == "pending" and out.approvers == ["user:carol"] and "bad_signature" in out.reason


def test_exactly_once_across_executions() -> None:
    ledger: list[str] = []
    with local_run("run-1"):
        rid = _request_id("medium")
        decide(rid, "user:carol", "approve", env=Env.load(get_settings()))
        governed_payment(ledger, "medium")
        governed_payment(ledger, "medium")  # a retry inside the same execution sees the same approval
    with local_run("run-2"), pytest.raises(GovernanceDenied) as e:
        governed_payment(ledger, "medium")
    assert e.value.reason_code == "approval_required" and e.value.record_id != rid  # a new round
    assert ledger == [rid, rid]


@pytest.mark.parametrize("other", ["user:mallory", "user:bob"])
def test_another_launchers_run_neither_uses_nor_uses_up_the_approval(
    other: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run launched by someone else with the same content found the approved request and used it up first: the
    launcher's own run was then refused, and an approver (bob) could approve a request and use it in a run of his
    own, around separation of duties. Another launcher's run asks anew, and cannot use the request by its id."""
    from flytekitplugins.aios_approvals import verify_requests

    ledger: list[str] = []
    with local_run("run-1"):
        rid = _request_id("medium")
        assert decide(rid, "user:bob", "approve", env=Env.load(get_settings())).accepted
    monkeypatch.setenv("AIOS_PRINCIPAL", other)
    reset_settings()
    with local_run("run-2"):
        with pytest.raises(GovernanceDenied) as e:
            governed_payment(ledger, "medium")
        assert e.value.reason_code == "approval_required" and e.value.record_id != rid  # its own request
        out = verify_requests("payment-signoff", [rid], env=Env.load(get_settings()), after_signal=False)[0]
        assert out.status == "refused" and "launched by service:launcher" in out.reason and other in out.reason
    refused = _kinds("approval_refused")[-1]
    assert refused.subject == rid and refused.status == "launcher_mismatch"
    assert not [e for e in _kinds("approval_verified") if e.subject == rid and e.attributes["consumed_by"]]
    monkeypatch.setenv("AIOS_PRINCIPAL", "service:launcher")
    reset_settings()
    with local_run("run-1"):
        assert governed_payment(ledger, "medium") == rid  # the launcher's run still has its approval
    assert ledger == [rid]


def test_timeout_with_fake_clock() -> None:
    with use_clock(ManualClock()) as clock:
        rid = open_request(
            "payment-signoff",
            "medium",
            "sha256:x",
            {"amount": 1},
            requester=REQUESTER,
            timeout_s=60,
            env=Env.load(get_settings()),
        )
        clock.advance(59)
        assert outcome(rid, env=Env.load(get_settings())).status == "pending"
        clock.advance(2)
        assert outcome(rid, env=Env.load(get_settings())).status == "timed_out"
        late = decide(rid, "user:carol", "approve", env=Env.load(get_settings()))
        assert not late.accepted and late.code == "already_decided"
        assert outcome(rid, env=Env.load(get_settings())).status == "timed_out"


def test_timeout_denies_the_action() -> None:
    ledger: list[str] = []
    with use_clock(ManualClock()) as clock:
        with pytest.raises(GovernanceDenied):
            require_approval(_decision("low"), subject="s", requester=REQUESTER, timeout_s=5, settings=get_settings())
        clock.advance(10)
        with pytest.raises(GovernanceDenied) as e:
            appr = require_approval(
                _decision("low"), subject="s", requester=REQUESTER, timeout_s=5, settings=get_settings()
            )
            ledger.append(appr.request_id)
    assert e.value.reason_code in {"approval_timed_out", "approval_required"}
    assert ledger == []


def test_rejection_is_final_and_needs_reason() -> None:
    rid = _request_id("medium")
    no_reason = decide(rid, "user:carol", "reject", reason="  ", env=Env.load(get_settings()))
    assert not no_reason.accepted and no_reason.code == "reason_required"
    assert decide(rid, "user:carol", "reject", reason="vendor not on file", env=Env.load(get_settings())).accepted
    after = decide(rid, "user:bob", "approve", env=Env.load(get_settings()))
    assert not after.accepted and after.code == "already_decided"
    with pytest.raises(GovernanceDenied) as e:
        governed_payment([], "medium")
    assert e.value.reason_code == "approval_rejected" and "vendor not on file" in str(e.value)


def _revoke_carols_finance_role(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of config/ where user:carol is no longer a finance approver, in force from here on."""
    cfg = tmp_path / "config"
    shutil.copytree(Path(__file__).resolve().parents[2] / "config", cfg)
    roles = cfg / "roles.yaml"
    roles.write_text(roles.read_text().replace("[finance-approver, risk-officer]", "[risk-officer]"))
    monkeypatch.setenv("AIOS_CONFIG_DIR", str(cfg))
    reset_settings()


def test_revoked_role_withdraws_the_approval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rid = _request_id("medium")
    assert decide(rid, "user:carol", "approve", env=Env.load(get_settings())).accepted
    assert outcome(rid, env=Env.load(get_settings())).status == "approved"
    _revoke_carols_finance_role(tmp_path, monkeypatch)
    out = outcome(rid, env=Env.load(get_settings()))
    assert out.status == "pending" and "role" in out.reason


def test_a_revoked_role_never_withdraws_a_rejection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """carol rejected, then lost the role: the rejection stopped counting, the request was pending again, bob
    approved it and the payment was made. One authorized reject is final."""
    rid = _request_id("medium")
    assert decide(rid, "user:carol", "reject", reason="vendor not on file", env=Env.load(get_settings())).accepted
    _revoke_carols_finance_role(tmp_path, monkeypatch)
    assert outcome(rid, env=Env.load(get_settings())).status == "rejected"
    after = decide(rid, "user:bob", "approve", env=Env.load(get_settings()))
    assert not after.accepted
    assert outcome(rid, env=Env.load(get_settings())).status == "rejected"
    with pytest.raises(GovernanceDenied) as e:
        governed_payment([], "medium")
    assert e.value.reason_code == "approval_rejected"


def test_every_attempt_is_audited() -> None:
    rid = _request_id("medium")
    for p in ["user:alice", "user:mallory", "user:carol", "user:carol"]:
        decide(rid, p, "approve", env=Env.load(get_settings()))
    assert decide("apr-doesnotexist", "user:bob", "approve", env=Env.load(get_settings())).code == "unknown_request"
    refused = [(e.actor, e.status) for e in _kinds("approval_refused")]
    assert refused == [
        ("user:alice", "role"),
        ("user:mallory", "unknown_principal"),
        ("user:carol", "already_decided"),
        ("user:bob", "unknown_request"),
    ]
    decisions = _kinds("approval_decision")
    assert [(e.actor, e.status) for e in decisions] == [("user:carol", "approve")]
    assert decisions[0].approvals[0]["signature"]


def test_bad_gate_and_unknown_gate_fail_closed() -> None:
    with pytest.raises(ValueError, match="kebab-case"):
        open_request("Payment_Signoff", "low", "s", requester=REQUESTER, env=Env.load(get_settings()))
    with pytest.raises(ConfigError, match="no approval rule for gate 'wire-transfer'"):
        open_request("wire-transfer", "low", "s", requester=REQUESTER, env=Env.load(get_settings()))
    with pytest.raises(ValueError, match="risk"):
        open_request("payment-signoff", "extreme", "s", requester=REQUESTER, env=Env.load(get_settings()))


@pytest.mark.parametrize("timeout_s", [-5, 0, 0.0, float("nan"), float("inf"), 1e12, True, "60"])
def test_a_timeout_that_is_no_number_of_seconds_opens_nothing(timeout_s: object) -> None:
    """A timeout can come from a launch input: -5 opened a request already timed out, NaN ended in "cannot convert
    float NaN to integer" and inf or 1e12 in an overflow, deep in opening it. Each is refused by name, before any
    record is written."""
    with pytest.raises(ValueError, match=r"timeout_s must be a number of seconds above 0 and at most 31,622,400"):
        env = Env.load(get_settings())
        open_request("payment-signoff", "low", "s", timeout_s=timeout_s, requester=REQUESTER, env=env)  # type: ignore[arg-type]
    assert _kinds("approval_request") == []


def test_a_timeout_of_a_year_and_a_day_opens_a_request_expiring_then() -> None:
    env = Env.load(get_settings())
    rid = open_request("payment-signoff", "low", "s", timeout_s=366 * 86_400, requester=REQUESTER, env=env)
    (req,) = _kinds("approval_request")
    assert req.subject == rid
    opened = req.attributes["request"]
    lasts = dt.datetime.fromisoformat(opened["expires_at"]) - dt.datetime.fromisoformat(opened["created_at"])
    assert lasts == dt.timedelta(days=366)


def test_open_is_idempotent() -> None:
    a = open_request("payment-signoff", "low", "s", {"amount": 1}, requester=REQUESTER, env=Env.load(get_settings()))
    b = open_request("payment-signoff", "low", "s", {"amount": 1}, requester=REQUESTER, env=Env.load(get_settings()))
    c = open_request("payment-signoff", "low", "s", {"amount": 2}, requester=REQUESTER, env=Env.load(get_settings()))
    assert a == b != c
    assert len(_kinds("approval_request")) == 2
