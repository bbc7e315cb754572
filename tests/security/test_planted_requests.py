"""Approval requests a store writer appends are not requests a policy gate asked for (review of 2026-12-07, F4).

Attacker: write access to the audit store (the SQLite file, or a PostgreSQL role that may append). The approvals
fold took the first ``approval_request`` record for an id as it stood, and the gate's id and content key are
predictable (digests of the request's content). So a writer planted the request a ``@policy_gate`` task was about to
ask for, with its id and content key but ``risk: low`` and quorum 1, and ONE finance approver's yes paid 60,000 EUR
that the policy had sent to two; a second round appended after bob's rejection was asked instead of the rejected
first, and carol's yes paid what bob had rejected; a request with the gate's whole content kept open for a year
stretched "timeout = deny". Real flytekit local execution of the gated test task, the pack's Cedar policy and
signed approvals, SQLite and the real PostgreSQL server.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from flytekitplugins.aios_approvals import decide, outcome
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_approvals.models import ApprovalRequest
from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import get_settings, reset_settings

HIGH = {"doc_id": "inv-77", "amount": 60_000.0, "currency": "EUR", "data_class": "internal", "doc_type": "invoice"}
MEDIUM = {**HIGH, "doc_id": "inv-78", "amount": 20_000.0}


def _use(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    reset_settings()


def _pay(args: dict[str, object]) -> str:
    """The gated task's result, or its refusal's reason code."""
    from tests.policy.gated_tasks import pay

    try:
        return str(pay(**args, confidence=0.99))
    except GovernanceDenied as e:
        return f"refused: {e.reason_code}"


def _asked(args: dict[str, object]) -> GovernanceDenied:
    from tests.policy.gated_tasks import pay

    with pytest.raises(GovernanceDenied) as e:
        pay(**args, confidence=0.99)
    return e.value


def _what_the_gate_asks(monkeypatch: pytest.MonkeyPatch, aios_env: Path, args: dict[str, object]) -> ApprovalRequest:
    """The request the gate will open, learned as the writer learns it: the same code and policy on a scratch store."""
    real = os.environ["AIOS_AUDIT_STORE"]
    _use(monkeypatch, AIOS_AUDIT_STORE=f"sqlite:///{aios_env}/scratch.db")
    rid = _asked(args).record_id
    rec = next(r for r in audit_log(get_settings()).scan_kinds(("approval_request",)) if r.event.subject == rid)
    _use(monkeypatch, AIOS_AUDIT_STORE=real)
    return ApprovalRequest.model_validate(rec.event.attributes["request"])


def _plant(req: ApprovalRequest) -> str:
    """Append ``req`` as the pack's own ``open_request`` records a request; its record id."""
    event = AuditEvent(
        kind="approval_request",
        actor="service:document-pipeline",
        status="pending",
        subject=req.request_id,
        inputs=dict(req.evidence),
        attributes={"request": req.model_dump(mode="json"), "request_digest": req.digest()},
    )
    return audit_log(get_settings()).append(event).record_id


def _paid(aios_env: Path, args: dict[str, object]) -> bool:
    return (aios_env / f"pay-{args['doc_id']}.acted").exists()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_planted_request_at_low_risk_is_not_the_gates_request(
    monkeypatch: pytest.MonkeyPatch, aios_env: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "postgres":
        _use(monkeypatch, AIOS_AUDIT_STORE=request.getfixturevalue("pg_url"))
    _use(monkeypatch, AIOS_PRINCIPAL="service:document-pipeline")
    asked = _what_the_gate_asks(monkeypatch, aios_env, HIGH)
    assert asked.risk == "high" and asked.quorum == 2
    now = dt.datetime.now(dt.UTC)
    planted = asked.model_copy(
        update={"risk": "low", "quorum": 1, "created_at": now, "expires_at": now + dt.timedelta(days=365)}
    )
    assert planted.request_id == asked.request_id and planted.content_key == asked.content_key
    record = _plant(planted)
    rid = _asked(HIGH).record_id
    assert rid == asked.request_id
    env = Env.load(get_settings())
    seen = outcome(rid, env)
    assert (seen.risk, seen.quorum) == ("high", 2)  # the gate's own request, recorded after the planted one
    assert decide(rid, "user:bob", "approve", "PO matched", env=env).accepted
    assert _pay(HIGH) == "refused: approval_required" and not _paid(aios_env, HIGH)  # one approver is not two
    assert decide(rid, "user:carol", "approve", "PO matched", env=env).accepted
    assert _pay(HIGH) == "paid 60000.0 EUR" and _paid(aios_env, HIGH)
    from click.testing import CliRunner

    from flytekitplugins.aios_core.cli import cli

    res = CliRunner().invoke(cli, ["audit", "verify"])  # the planted record is shown, as a junk decision is
    flagged = f"warning: ignored approval request (counts for nothing): record {record}: request {rid}: its content key"
    assert res.exit_code == 0 and flagged in res.output, res.output


def test_a_rejection_stands_against_a_second_round_a_writer_appends(
    monkeypatch: pytest.MonkeyPatch, aios_env: Path
) -> None:
    _use(monkeypatch, AIOS_PRINCIPAL="service:document-pipeline")
    rid = _asked(MEDIUM).record_id
    env = Env.load(get_settings())
    assert decide(rid, "user:bob", "reject", "supplier not on file", env=env).accepted
    assert _pay(MEDIUM) == "refused: approval_rejected"
    rec = next(r for r in audit_log(get_settings()).scan_kinds(("approval_request",)) if r.event.subject == rid)
    first = ApprovalRequest.model_validate(rec.event.attributes["request"])
    second_id = "apr-" + digest_value({"content_key": first.content_key, "round": 2}).removeprefix("sha256:")[:20]
    second = first.model_copy(update={"round": 2, "request_id": second_id})
    # as open_request would open it, had the first round timed out (test_what_a_request_record_must_hold)
    _plant(second)
    assert decide(second_id, "user:carol", "approve", "looks fine", env=env).accepted
    assert _pay(MEDIUM) == "refused: approval_rejected" and not _paid(aios_env, MEDIUM)
    assert _asked(MEDIUM).record_id == rid  # the gate still asks the rejected first round


def test_a_request_kept_open_longer_than_asked_is_not_acted_on(monkeypatch: pytest.MonkeyPatch, aios_env: Path) -> None:
    _use(monkeypatch, AIOS_PRINCIPAL="service:document-pipeline")
    asked = _what_the_gate_asks(monkeypatch, aios_env, MEDIUM)
    now = dt.datetime.now(dt.UTC)
    planted = asked.model_copy(update={"created_at": now, "expires_at": now + dt.timedelta(days=365)})
    # the gate's whole content and id, only open for a year
    _plant(planted)
    assert _pay(MEDIUM) == "refused: approval_for_other_terms"
    env = Env.load(get_settings())
    assert decide(asked.request_id, "user:bob", "approve", "PO matched", env=env).accepted
    assert _pay(MEDIUM) == "refused: approval_for_other_terms" and not _paid(aios_env, MEDIUM)


def test_what_a_request_record_must_hold() -> None:
    """The fold's check of one request record: its content key is its own fields' digest, its id its content key's
    and round's, and it stays open for (0, a year and a day]."""
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    fields = {"gate": "payment-signoff", "risk": "high", "subject": "sha256:" + "ab" * 32, "requester": "service:x"}
    base = ApprovalRequest(
        request_id="apr-x", content_key="", created_at=now, expires_at=now + dt.timedelta(hours=1), **fields
    )
    key = base.derived_key()
    rid = "apr-" + digest_value({"content_key": key, "round": 1}).removeprefix("sha256:")[:20]
    good = base.model_copy(update={"content_key": key, "request_id": rid})
    assert good.integrity_problem() == ""
    assert "not the digest of its own fields" in good.model_copy(update={"risk": "low"}).integrity_problem()
    assert "round 2" in good.model_copy(update={"round": 2}).integrity_problem()
    year = good.model_copy(update={"expires_at": now + dt.timedelta(days=400)})
    assert "outside (0," in year.integrity_problem()
    assert "outside (0," in good.model_copy(update={"expires_at": now}).integrity_problem()
    # a request of no recorded launcher, under the formula before the launcher was part of the content
    old = base.model_copy(update={"content_key": base.derived_key(launcher=False)})
    old_id = "apr-" + digest_value({"content_key": old.content_key, "round": 1}).removeprefix("sha256:")[:20]
    assert old.model_copy(update={"request_id": old_id}).integrity_problem() == ""
    signed = good.model_copy(update={"launcher": "user:mallory"})  # another launcher is other content
    assert "not the digest of its own fields" in signed.integrity_problem()


def test_a_request_planted_to_open_in_a_year_is_not_acted_on(monkeypatch: pytest.MonkeyPatch, aios_env: Path) -> None:
    """Re-review of 2026-12-07: the gate's whole content "created" a year ahead with a span of exactly the timeout
    asked passed the span check, stayed pending for a year, and an approval ten days past the timeout paid. A request
    the gate acts on must expire no later than the timeout asked from now."""
    from flytekitplugins.aios_approvals import ManualClock, use_clock

    _use(monkeypatch, AIOS_PRINCIPAL="service:document-pipeline")
    asked = _what_the_gate_asks(monkeypatch, aios_env, MEDIUM)
    with use_clock(ManualClock(dt.datetime.now(dt.UTC))) as clock:
        ahead = clock.now() + dt.timedelta(days=360)
        _plant(
            asked.model_copy(update={"created_at": ahead, "expires_at": ahead + (asked.expires_at - asked.created_at)})
        )
        assert _pay(MEDIUM) == "refused: approval_for_other_terms"
        clock.advance(10 * 86_400)  # ten days past the timeout the gate asks
        env = Env.load(get_settings())
        assert decide(asked.request_id, "user:bob", "approve", "PO matched", env=env).accepted
        assert _pay(MEDIUM) == "refused: approval_for_other_terms" and not _paid(aios_env, MEDIUM)


def test_a_shorter_timeout_refuses_an_approval_only_until_it_is_within_it() -> None:
    """Re-review of 2026-12-07: after an operator shortens the timeout, an approved request opened under the longer
    one was refused for good (it still stood, so no new round opened). It is refused only while it would stay open
    longer than the new timeout from now."""
    from flytekitplugins.aios_approvals import ManualClock, require_approval, use_clock
    from flytekitplugins.aios_core.types import ApprovalRequirement, PolicyDecision

    req = ApprovalRequirement(gate="payment-signoff", risk="medium", reason="payment-over-10k")
    decision = PolicyDecision(effect="require_approval", reasons=["x"], approval=req, audit_record_id="ab" * 32)
    ask = {"subject": "sha256:invoice-1", "summary": {"amount": 12_500}, "requester": "service:document-pipeline"}
    with use_clock(ManualClock()) as clock:
        with pytest.raises(GovernanceDenied) as opened:
            require_approval(decision, **ask, settings=get_settings(), timeout_s=3600)
        rid = opened.value.record_id
        assert rid and decide(rid, "user:bob", "approve", "PO matched", env=Env.load(get_settings())).accepted
        with pytest.raises(GovernanceDenied) as shorter:
            require_approval(decision, **ask, settings=get_settings(), timeout_s=1800)
        assert shorter.value.reason_code == "approval_for_other_terms"
        clock.advance(1800)  # now within the shorter timeout of its expiry
        assert require_approval(decision, **ask, settings=get_settings(), timeout_s=1800).request_id == rid
