"""The gate in local execution: waits on the audit trail (never stdin), enforces its timeout, and the step
after it refuses a signal with no authorized decision behind it; the gate name is checked at compile time."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest
from flytekit import task, workflow
from flytekit.core.context_manager import FlyteContextManager

from flytekitplugins.aios_approvals import ManualClock, decide, use_clock, verify_approvals
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_approvals.state import projection
from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.settings import get_settings
from tests.approvals import approval_wf


def _payments(state: Path) -> list[str]:
    log = state / "payments.log"
    return log.read_text().splitlines() if log.exists() else []


def _decide_when_pending(principals: list[str], stop: threading.Event) -> None:
    """Act as the second terminal: wait for the request, then let each principal try to approve it."""
    while not stop.is_set():
        pending = [r for r in projection(audit_log(get_settings())).requests.values()]
        if pending:
            for p in principals:
                decide(
                    pending[0].request.request_id,
                    p,
                    "approve",
                    reason="looked at the invoice",
                    env=Env.load(get_settings()),
                )
            return
        time.sleep(0.05)


def _run_with_decider(principals: list[str], **kwargs: object) -> object:
    stop = threading.Event()
    t = threading.Thread(target=_decide_when_pending, args=(principals, stop), daemon=True)
    t.start()
    try:
        return approval_wf.payment_wf(**kwargs)
    finally:
        stop.set()
        t.join(5)


def test_gate_waits_for_an_authorized_decision(aios_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOS_PRINCIPAL", "user:bob")
    started = time.time()
    auto, paid = _run_with_decider(["user:bob", "user:alice", "user:carol"], amounts=[500, 12500])  # type: ignore[misc]
    assert (auto, paid) == (1, 1)
    pays = _payments(aios_env)
    assert pays[0] == "auto 500" and pays[1].startswith("approved apr-") and len(pays) == 2
    kinds = [(r.event.kind, r.event.actor, r.event.status) for r in audit_log(get_settings()).scan()]
    assert ("approval_refused", "user:bob", "separation_of_duties") in kinds
    assert ("approval_refused", "user:alice", "role") in kinds
    assert ("approval_decision", "user:carol", "approve") in kinds
    assert [k for k in kinds if k[0] == "approval_verified"][-1][2] == "approved"
    sandbox = Path(FlyteContextManager.current_context().file_access.local_sandbox_dir)
    decks = [p for p in sandbox.rglob("deck.html") if p.stat().st_mtime >= started]
    html = max(decks, key=lambda p: p.stat().st_mtime).read_text()
    assert "payment-signoff" in html and "user:carol" in html and "separation_of_duties" in html and "12500" in html


def test_gate_timeout_is_enforced_with_a_fake_clock(aios_env: Path) -> None:
    with use_clock(ManualClock()), pytest.raises(Exception, match="timed out after 0:00:02") as e:
        approval_wf.short_gate_wf(amounts=[12500])
    assert "did not run" in str(e.value)
    assert not any(p.startswith("approved") for p in _payments(aios_env))
    assert [r.event.status for r in audit_log(get_settings()).scan() if r.event.kind == "approval_verified"] == [
        "timed_out"
    ]


def test_request_timeout_means_no_payment(aios_env: Path) -> None:
    with use_clock(ManualClock()):
        auto, paid = approval_wf.payment_wf(amounts=[12500, 20000], timeout_s=5.0)
    assert (auto, paid) == (0, 0)
    assert _payments(aios_env) == []
    assert [r.event.status for r in audit_log(get_settings()).scan() if r.event.kind == "approval_verified"] == [
        "timed_out"
    ] * 2


def test_signal_without_decision_is_refused(aios_env: Path) -> None:
    """What a console click by someone without the role amounts to: the gate opens, nobody authorized decided."""
    ids = approval_wf.request_signoffs(amounts=[12500], timeout_s=600.0)
    decide(ids[0], "user:alice", "approve", env=Env.load(get_settings()))  # refused: wrong role
    outcomes = verify_approvals(gate="payment-signoff", request_ids=ids)
    assert outcomes[0].status == "refused" and "without an authorized" in outcomes[0].reason
    assert approval_wf.pay_approved(outcomes=outcomes) == 0
    refused = [r.event for r in audit_log(get_settings()).scan() if r.event.kind == "approval_refused"]
    want = [("user:alice", "role"), ("flyte-signal", "signal_without_decision")]
    assert [(e.actor, e.status) for e in refused] == want
    wrong_gate = verify_approvals(gate="model-promotion", request_ids=ids)
    assert wrong_gate[0].status == "refused" and "belongs to gate 'payment-signoff'" in wrong_gate[0].reason


@task
def _ids() -> list[str]:
    return []


def test_gate_name_is_checked_at_compile_time() -> None:
    from flytekitplugins.aios_approvals import approval_gate

    with pytest.raises(ValueError, match=r"'Payment_Signoff' is not kebab-case.*'payment-signoff'"):

        @workflow
        def bad() -> None:
            approval_gate("Payment_Signoff", request_ids=_ids(), timeout=dt.timedelta(minutes=1))

        bad.compile()  # what pyflyte register/package/run does first

    with pytest.raises(ValueError, match="not a workflow input"):

        @workflow
        def from_input(ids: list[str]) -> None:
            approval_gate("payment-signoff", request_ids=ids)

        from_input.compile()

    with pytest.raises(ValueError, match="positive"):

        @workflow
        def no_time() -> None:
            approval_gate("payment-signoff", request_ids=_ids(), timeout=dt.timedelta(0))

        no_time.compile()


def test_empty_batch_passes_without_waiting(aios_env: Path) -> None:
    assert approval_wf.payment_wf(amounts=[10]) == (1, 0)
