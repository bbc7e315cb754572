"""The place that acts verifies (issue 13, item 1): the system of record posts only what the trail stands behind.

Each test hands the real system-of-record task (the one the document workflow runs as ``post_document_actions``)
rows an attacker with launch rights could hand it, and checks what was posted by reading the system-of-record
table and the audit store the code under test wrote.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from flytekitplugins.aios_approvals import decide
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask
from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.settings import get_settings
from tests.governed_rows import PRINCIPAL, action_rows, decided_docs

post = SystemOfRecordTask(name="post_document_actions", config=SystemOfRecordConfig(table="document_actions"))


def _posted(db: Path) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT doc_digest, action, amount, currency, request_id FROM document_actions").fetchall()


def _post(rows: list[dict[str, Any]]) -> tuple[int, int, int]:
    out = post(actions=pd.DataFrame(rows))
    return out.posted, out.already_posted, out.refused


def _post_to(table: str, rows: list[dict[str, Any]], url: str = "") -> tuple[int, int, int]:
    task = SystemOfRecordTask(name=f"post_to_{table}", config=SystemOfRecordConfig(table=table, url=url))
    out = task(actions=pd.DataFrame(rows))
    return out.posted, out.already_posted, out.refused


def _refusals() -> list[str]:
    return [r.event.status for r in audit_log(get_settings()).scan() if r.event.kind == "action_refused"]


def _hand_made(**over: Any) -> dict[str, Any]:
    row = {
        "doc_digest": "sha256:" + "e" * 64,
        "decision_digest": "sha256:" + "d" * 64,
        "action": "pay_invoice",
        "doc_type": "invoice",
        "amount": 250_000.0,
        "currency": "USD",
        "request_id": "apr-made-up-000000000",
        "principal": PRINCIPAL,
        "policy_record": "",
    }
    row.update(over)
    row["action_key"] = digest_value({"doc": row["doc_digest"], "decision": row["decision_digest"]})
    return row


def test_a_hand_made_payment_posts_nothing(sor: Path) -> None:
    assert _post([_hand_made()]) == (0, 0, 1)
    assert _posted(sor) == []
    assert _refusals() == ["no_policy_decision"]
    assert not [r for r in audit_log(get_settings()).scan() if r.event.kind == "action"]


def test_a_row_naming_a_real_decision_for_another_amount_is_refused(sor: Path) -> None:
    (row,) = action_rows(decided_docs(1, "amt", amount=120.0))
    forged = dict(row, amount=250_000.0)
    assert _post([forged]) == (0, 0, 1)
    assert _refusals() == ["amount_mismatch"]
    assert _post([dict(row, currency="USD")]) == (0, 0, 1)
    assert _post([row]) == (1, 0, 0)  # the genuine row still posts
    assert _posted(sor) == [(row["doc_digest"], "pay_invoice", 120.0, "EUR", "")]


def test_what_a_refused_row_asked_for_is_recorded_even_when_it_repeats_a_refusal(sor: Path) -> None:
    """Re-review R35: a decoy row (121) ahead of the real attempt (250,000), both naming one real decision, put the
    attempt in the call's summary of repeats, where its amount, document and request were in no record at all. The
    first refusal's record and the summary's first rows now carry what each row asked for."""
    (row,) = action_rows(decided_docs(1, "amt", amount=120.0))
    assert _post([dict(row, amount=121.0), dict(row, amount=250_000.0)]) == (
        0,
        0,
        2,
    )
    first, repeats = [r.event for r in audit_log(get_settings()).scan() if r.event.kind == "action_refused"]
    assert first.status == "amount_mismatch" and first.attributes["amount"] == 121.0
    assert first.attributes["currency"] == row["currency"]
    (attempt,) = repeats.attributes["first_rows"]
    assert repeats.attributes["repeats_of"] == "amount_mismatch" and attempt["amount"] == 250_000.0
    assert attempt["document"] == row["doc_digest"] and attempt["action"] == row["action"]


def test_a_decision_for_another_document_or_a_task_record_is_refused(sor: Path) -> None:
    a, b = action_rows(decided_docs(2, "doc"))
    swapped = dict(a, policy_record=b["policy_record"])
    task_record = (
        audit_log(get_settings()).append(AuditEvent(kind="task", actor=PRINCIPAL, subject=a["doc_digest"])).record_id
    )
    wrong_kind = dict(a, policy_record=task_record)
    assert _post([swapped, wrong_kind]) == (0, 0, 2)
    assert sorted(_refusals()) == ["policy_record_mismatch", "policy_record_mismatch"]


def test_a_forged_approved_outcome_posts_nothing_until_a_real_approval(sor: Path) -> None:
    docs = decided_docs(1, "big", amount=25_000.0)  # over 10,000: the policy requires a payment sign-off
    assert docs[0]["effect"] == "require_approval" and docs[0]["request_id"]
    rid = docs[0]["request_id"]
    # What approved_actions builds from an ApprovalOutcome(status="approved") typed by hand:
    rows = action_rows(docs, approved={rid})
    assert _post(rows) == (0, 0, 1)
    assert _refusals() == ["approval_pending"]
    assert decide(rid, "user:bob", "approve", "checked against PO", env=Env.load(get_settings())).accepted
    assert _post(rows) == (1, 0, 0)
    assert _post(rows) == (0, 1, 0)  # a retry of the same action finds its own claims
    assert len(_posted(sor)) == 1


def test_an_approval_is_acted_on_once_and_only_for_its_decision(sor: Path) -> None:
    first, second = decided_docs(2, "pair", amount=30_000.0)
    rid = first["request_id"]
    assert decide(rid, "user:carol", "approve", "ok", env=Env.load(get_settings())).accepted
    borrowed = action_rows([dict(second, request_id=rid)], approved={rid})
    assert _post(borrowed) == (0, 0, 1)
    assert _refusals() == ["approval_for_other_action"]
    (row,) = action_rows([first], approved={rid})
    assert _post([row]) == (1, 0, 0)
    other = dict(row, decision_digest="sha256:" + "f" * 64)
    other["action_key"] = digest_value({"doc": other["doc_digest"], "decision": other["decision_digest"]})
    assert _post([other]) == (0, 0, 1)  # a second, different action on the same approval: its digest is made up
    assert _refusals()[-1] == "decision_mismatch"
    assert _post_to("ledger", [row]) == (0, 0, 1)  # the same action again, elsewhere
    assert _refusals()[-1] == "already_used"


def test_an_approval_asked_at_another_gate_or_risk_or_on_other_facts_is_not_acted_on(sor: Path) -> None:
    """Review of 2026-12-07, launch rights: a request names its decision and document in its evidence, which whoever
    opens requests writes. The launcher opened its own for a EUR 95,000 payment the policy sent to two finance
    approvers (``payment-signoff``, high risk) on the review gate at low risk, its summary showing 950; one ops analyst
    approved it and the payment was posted, the policy's own request still pending. So was one at the right gate at
    low risk (one approver). The acting point now takes only a request at the gate and risk the sealed decision asks
    for, showing its approvers the sealed context and action."""
    from flytekitplugins.aios_approvals import open_request, outcome

    env = Env.load(get_settings())
    (doc,) = decided_docs(1, "twin", amount=95_000.0)
    genuine = outcome(doc["request_id"], env)
    assert (genuine.gate, genuine.risk, genuine.quorum) == ("payment-signoff", "high", 2), genuine
    evidence = {"document": doc["digest"], "policy_decision": doc["policy_record"]}
    asked = {"amount": 95_000.0, "currency": "EUR", "action": "pay_invoice"}
    twins = [  # (gate, risk, summary, who approves it, the refusal)
        ("document-review", "low", {**asked, "amount": 950.0}, ["user:alice"], "approval_for_other_gate"),
        ("payment-signoff", "low", asked, ["user:carol"], "approval_for_other_gate"),
        ("payment-signoff", "high", {**asked, "amount": 950.0}, ["user:bob", "user:carol"], "approval_for_other_facts"),
    ]
    for gate, risk, summary, approvers, code in twins:
        rid = open_request(gate, risk, doc["digest"], summary=summary, evidence=evidence, requester=PRINCIPAL, env=env)
        for who in approvers:
            assert decide(rid, who, "approve", "looks fine", env=env).accepted, (gate, risk, who)
        assert outcome(rid, env).status == "approved"
        assert _post(action_rows([dict(doc, request_id=rid)], approved={rid})) == (0, 0, 1), (gate, risk)
        assert _refusals()[-1] == code, (gate, risk, _refusals())
    assert _posted(sor) == []
    for who in ("user:bob", "user:carol"):  # the request the decide step opened, approved by its quorum
        assert decide(doc["request_id"], who, "approve", "checked against PO", env=env).accepted
    assert _post(action_rows([doc], approved={doc["request_id"]})) == (1, 0, 0)
    assert _posted(sor) == [(doc["digest"], "pay_invoice", 95_000.0, "EUR", doc["request_id"])]


def test_a_decision_routed_to_review_is_acted_on_only_through_its_review_request(sor: Path) -> None:
    """A decision the policy allowed but routed to review waits on the review gate at low risk: that request, approved
    by one ops analyst, is acted on; one at medium risk, or on another gate, is not."""
    from flytekitplugins.aios_approvals import open_request, outcome

    env = Env.load(get_settings())
    (doc,) = decided_docs(1, "unsure", amount=400.0, confidence=0.4, route="review")
    genuine = outcome(doc["request_id"], env)
    assert (doc["effect"], genuine.gate, genuine.risk) == ("require_approval", "document-review", "low"), genuine
    evidence = {"document": doc["digest"], "policy_decision": doc["policy_record"]}
    for gate, risk, who in (("document-review", "medium", "user:bob"), ("payment-signoff", "low", "user:bob")):
        rid = open_request(gate, risk, doc["digest"], summary={"amount": 400.0, "currency": "EUR",
                           "action": "pay_invoice"}, evidence=evidence, requester=PRINCIPAL, env=env)  # fmt: skip
        assert decide(rid, who, "approve", "fine", env=env).accepted
        assert _post(action_rows([dict(doc, request_id=rid)], approved={rid})) == (0, 0, 1), (gate, risk)
        assert _refusals()[-1] == "approval_for_other_gate"
    assert decide(doc["request_id"], "user:alice", "approve", "label checked", env=env).accepted
    assert _post(action_rows([doc], approved={doc["request_id"]})) == (1, 0, 0)


def test_a_rejection_stands_against_a_second_request_for_the_same_decision(
    sor: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reviews of 2026-12-07: bob rejected the 20,000 payment; the launcher opened a second request for the decision
    (the same content is the same request, so its rejection stood; other content is a new request), carol approved
    it, and the payment was posted. The second request differed by one evidence key; then, once the acting point
    compared what a request asks, by the amount written ``20000`` for ``20000.0`` (equal in Python, other content
    for the request id) or by the launcher alone, each opened under the decision's own execution (``serving``). The
    decide step now seals its run's launcher, and the acting point takes only the request whose whole content key the
    decision gives: asking for exactly that again is the same request, so the rejection stands."""
    from flytekitplugins.aios_approvals import open_request, outcome
    from flytekitplugins.aios_core.context import ExecutionRef, serving
    from flytekitplugins.aios_core.settings import reset_settings

    with serving(ExecutionRef(project="aios", domain="production", name="f7a1b2c3d4e5", task_name="decide")):
        (doc,) = decided_docs(1, "rej2", amount=20_000.0)
    env = Env.load(get_settings())
    genuine = outcome(doc["request_id"], env)
    decision = audit_log(get_settings()).get(doc["policy_record"])
    assert decision is not None and decision.event.execution is not None
    made_in = decision.event.execution
    asked = {"summary": genuine.summary, "evidence": genuine.evidence, "requester": PRINCIPAL}
    asked["reason"] = next(r.event.attributes["request"]["reason"] for r in audit_log(get_settings()).scan()
                           if r.event.kind == "approval_request")  # fmt: skip
    assert decide(doc["request_id"], "user:bob", "reject", "supplier not on file", env=env).accepted
    twins = [
        {**asked, "evidence": {**genuine.evidence, "ticket": "FIN-4711"}},
        {**asked, "summary": {**genuine.summary, "amount": 20000}},
        asked,  # opened by another launcher (below)
    ]
    rids = []
    for i, twin in enumerate(twins):
        if i == 2:
            monkeypatch.setenv("AIOS_LAUNCHED_BY", "user:someone-else")
            reset_settings()
        with serving(made_in):
            rid = open_request(genuine.gate, genuine.risk, doc["digest"], env=Env.load(get_settings()), **twin)
        assert rid != doc["request_id"], i
        assert decide(rid, "user:carol", "approve", "looks fine", env=env).accepted
        rids.append(rid)
    monkeypatch.delenv("AIOS_LAUNCHED_BY", raising=False)
    reset_settings()
    with serving(made_in):  # the decision's whole content, its sealed launcher too: the rejected request itself
        same = open_request(genuine.gate, genuine.risk, doc["digest"], env=Env.load(get_settings()), **asked)
    assert same == doc["request_id"]
    with serving(made_in):
        for rid in [doc["request_id"], *rids]:
            assert _post(action_rows([dict(doc, request_id=rid)], approved={rid})) == (0, 0, 1), rid
    assert _refusals() == ["approval_rejected", *["approval_for_other_facts"] * 3]
    # the decide step run again on the same sealed document: a new decision, a new request, approved by carol
    from tasks.documents.governance import decide_many

    with serving(made_in):
        (again,) = decide_many([doc], PRINCIPAL, 3600.0, get_settings())
    assert again.request_id not in (doc["request_id"], *rids)
    assert decide(again.request_id, "user:carol", "approve", "asked again", env=env).accepted
    redecided = dict(doc, request_id=again.request_id, policy_record=again.policy_record)
    with serving(made_in):
        assert _post(action_rows([redecided], approved={again.request_id})) == (0, 0, 1)
    assert _refusals()[-1] == "approval_rejected"
    assert _posted(sor) == []


def test_an_approval_showing_its_approvers_more_or_other_facts_is_not_acted_on(sor: Path) -> None:
    """Review of 2026-12-07: a second request at the right gate and risk for a 95,000 invoice that classify flagged
    for prompt injection and routed to review, showing its approvers the sealed context but the flag cleared, route
    ``strong`` and a reassuring note first in the list, was approved by both finance approvers
    and paid. The request the decision's run opened, showing the flag, is the one acted on."""
    from flytekitplugins.aios_approvals import open_request, outcome
    from tasks.documents import seals
    from tasks.documents.governance import decide_many

    env = Env.load(get_settings())
    doc = {"digest": "sha256:" + "inj".ljust(64, "0"), "label": "invoice", "amount": 95_000.0, "currency": "EUR",
           "confidence": 0.41, "personal": False, "route": "review", "injection": True, "status": "ok",
           "name": "inj.eml", "doc_id": "inj", "text_digest": "sha256:" + "1" * 64}  # fmt: skip
    doc["sealed_by"] = seals.seal([doc], seals.CLASSIFIED, PRINCIPAL, get_settings())
    (d,) = decide_many([doc], PRINCIPAL, 3600.0, get_settings())
    doc.update(action=d.action, effect=d.effect, gate=d.gate, request_id=d.request_id, policy_record=d.policy_record)
    doc.update(
        reason=d.reason, decision_digest=d.digest(doc["digest"], {k: doc[k] for k in ("label", "amount", "currency")})
    )
    genuine = outcome(doc["request_id"], env)
    assert genuine.summary["injection_flag"] is True and genuine.summary["route"] == "review", genuine.summary
    cleared = {**genuine.summary, "injection_flag": False, "route": "strong"}
    noted = {**genuine.summary, "aa_checked": "amount confirmed by phone with supplier"}
    same = open_request(genuine.gate, genuine.risk, doc["digest"], summary=genuine.summary, evidence=genuine.evidence,
                        requester=PRINCIPAL, reason="routine supplier invoice, PO matched", env=env)  # fmt: skip
    assert same == doc["request_id"]  # the same content is the same request: its own reason stands
    for summary in (cleared, noted):
        twin = open_request(genuine.gate, genuine.risk, doc["digest"], summary=summary, evidence=genuine.evidence,
                            requester=PRINCIPAL, env=env)  # fmt: skip
        for who in ("user:bob", "user:carol"):
            assert decide(twin, who, "approve", "PO matched", env=env).accepted
        assert _post(action_rows([dict(doc, request_id=twin)], approved={twin})) == (0, 0, 1), summary
        assert _refusals()[-1] == "approval_for_other_facts"
    assert _posted(sor) == []
    for who in ("user:bob", "user:carol"):
        assert decide(doc["request_id"], who, "approve", "injection checked by hand", env=env).accepted
    assert _post(action_rows([doc], approved={doc["request_id"]})) == (1, 0, 0)


def test_a_rejected_request_is_never_acted_on(sor: Path) -> None:
    (doc,) = decided_docs(1, "rej", amount=40_000.0)
    rid = doc["request_id"]
    assert decide(rid, "user:bob", "reject", "duplicate invoice", env=Env.load(get_settings())).accepted
    assert _post(action_rows([doc], approved={rid})) == (0, 0, 1)
    assert _refusals() == ["approval_rejected"]
    assert _posted(sor) == []


def _served(rows: list[dict[str, Any]], service_account: str) -> Any:
    """The system-of-record connector's ``do`` as the server calls it, for a caller flytepropeller identified."""
    import asyncio

    from flytekit.models.literals import LiteralMap
    from flytekit.models.task import TaskExecutionMetadata, TaskTemplate

    from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConnector
    from tests.connectors.protos import execution_metadata, literal_map, template_of

    inputs = LiteralMap.from_flyte_idl(literal_map({"actions": pd.DataFrame(rows)}, {"actions": pd.DataFrame}))
    meta = TaskExecutionMetadata.from_flyte_idl(execution_metadata(service_account=service_account))
    template = TaskTemplate.from_flyte_idl(template_of(post))
    return asyncio.run(SystemOfRecordConnector().do(template, "/tmp/aios-sor-out", inputs, meta))


def test_a_served_caller_cannot_post_another_service_s_payment_by_naming_no_principal(sor: Path) -> None:
    """The monitoring service (mapped by connector_identities.yaml) hands in the document pipeline's real, approved
    payment with its ``principal`` column emptied: an empty claim passed the identity check and the acting point
    skipped the principal, so the payment posted under the pipeline's name. The policy principal must be the
    caller's, and a row must name it. (The request is opened in the execution the served calls act for, as on a
    cluster, where the pipeline's decide task and its posting serve one execution.)"""
    from flytekitplugins.aios_core.context import ExecutionRef, serving

    with serving(ExecutionRef(project="flyte-aios", domain="development", name="a1b2c3d4e5")):
        (doc,) = decided_docs(1, "sod", amount=20_000.0)
    rid = doc["request_id"]
    assert decide(rid, "user:bob", "approve", "PO checked", env=Env.load(get_settings())).accepted
    (row,) = action_rows([doc], approved={rid})
    for principal in ("", None):
        res = _served([dict(row, principal=principal)], "aios-monitoring")
        assert "posted 0" in res.message and "refused 1" in res.message, res.message
    assert _posted(sor) == []
    assert set(_refusals()) == {"identity_mismatch"}
    assert _post([dict(row, principal="")]) == (0, 0, 1)  # locally too: a row names the principal it acts for
    assert _refusals()[-1] == "principal_missing"
    res = _served([row], "aios-pipeline")  # the pipeline itself, naming itself, still posts
    assert "posted 1" in res.message, res.message
    assert len(_posted(sor)) == 1


def test_one_authorized_action_posts_in_one_place_only(sor: Path, aios_env: Path) -> None:
    """Regression: the acting point's claims named the action, not where it was written, and a retry of an action
    it had authorized was let through (``already_authorized``); only the destination table's primary key stopped a
    second insert. One approved payment was posted again into any other table, or another database the caller (or,
    served, an ``env:`` URL the operator mounted) named: five postings of one 25,000 EUR approval. An action is now
    claimed where it goes: a retry there is idempotent, the same action anywhere else is refused."""
    (doc,) = decided_docs(1, "dest", amount=25_000.0)
    rid = doc["request_id"]
    assert decide(rid, "user:bob", "approve", "PO checked", env=Env.load(get_settings())).accepted
    (row,) = action_rows([doc], approved={rid})
    assert _post([row]) == (1, 0, 0)
    assert _post([row]) == (0, 1, 0)  # a retry to the same table of the same database
    other_db = aios_env / "archive.db"
    assert _post_to("payments", [row]) == (0, 0, 1)
    assert _post_to("document_actions", [row], url=f"sqlite:///{other_db}") == (0, 0, 1)
    assert _refusals() == ["already_used", "already_used"]
    assert _posted(sor) == [(row["doc_digest"], "pay_invoice", 25_000.0, "EUR", rid)]
    for db, table in ((sor, "payments"), (other_db, "document_actions")):
        with sqlite3.connect(db) as conn:
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), (db, table)
    posted = [r for r in audit_log(get_settings()).scan() if r.event.kind == "action"]
    assert len(posted) == 1


def test_a_document_already_acted_on_is_not_acted_on_again_under_a_second_decision(sor: Path) -> None:
    """Regression: the action key was the digest of the document and a ``decision_digest`` the row handed in, never
    computed again from the sealed decision. With a second policy decision record for the same document (a second
    run, a relaunched ``decide``), a made-up ``decision_digest`` made a new action key, fresh claims, and a second
    payment of the same invoice (its ``doc_type``, never checked either, written as ``contract``). The digest is
    now the one the sealed decision gives, the type the one it sealed, and a document's action is claimed once."""
    (first,) = decided_docs(1, "twice", amount=9_500.0)
    (second,) = decided_docs(1, "twice", amount=9_500.0)  # the same document decided again: a second record
    assert first["policy_record"] != second["policy_record"] and first["digest"] == second["digest"]
    (row1,) = action_rows([first])
    (row2,) = action_rows([second])
    assert _post([row1]) == (1, 0, 0)
    forged = dict(row2, decision_digest="sha256:" + "0" * 64)
    forged["action_key"] = digest_value({"doc": forged["doc_digest"], "decision": forged["decision_digest"]})
    assert _post([forged]) == (0, 0, 1)
    assert _post([dict(row2, doc_type="contract")]) == (0, 0, 1)
    assert _refusals() == ["decision_mismatch", "policy_record_mismatch"]
    assert _post([row2]) == (0, 1, 0)  # the second decision's own row is the same action: already posted
    assert _posted(sor) == [(row1["doc_digest"], "pay_invoice", 9_500.0, "EUR", "")]


def test_an_approver_cannot_act_on_the_approval_from_a_run_of_his_own(
    sor: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: ``verify_requests`` refused an approval to a run of another launcher (``launcher_mismatch``), but
    the acting point did not: after the launcher's run opened the request (and stopped), the approver approved it
    and posted the payment from a run he launched himself, around separation of duties."""
    from flytekitplugins.aios_core.settings import reset_settings

    (doc,) = decided_docs(1, "sod-act", amount=30_000.0)
    rid = doc["request_id"]
    assert decide(rid, "user:bob", "approve", "ok", env=Env.load(get_settings())).accepted
    (row,) = action_rows([doc], approved={rid})
    monkeypatch.setenv("AIOS_PRINCIPAL", "user:bob")
    reset_settings()
    assert _post([row]) == (0, 0, 1)
    assert _refusals() == ["launcher_mismatch"]
    assert _posted(sor) == []
    monkeypatch.delenv("AIOS_PRINCIPAL")
    reset_settings()
    assert _post([row]) == (1, 0, 0)  # the launcher's own run acts on it


def test_a_decision_the_policy_has_changed_under_is_not_acted_on(sor: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the acting point never compared the decision's sealed ``policy_set_digest`` with the policy in
    force. After the policy was tightened (an emergency freeze of payments over 1,000), an unposted ``allow``
    decided under the old set was still posted, although the policy in force denies exactly that action."""
    import shutil

    from flytekitplugins.aios_core.settings import reset_settings

    (old,) = decided_docs(1, "stale", amount=9_000.0)
    policies = sor.parent / "policies-v2"
    shutil.copytree(get_settings().policy_dir, policies)
    with (policies / "documents.cedar").open("a", encoding="utf-8") as f:
        f.write(
            '\n@id("freeze-payments")\n@reason("payments over 1,000 are frozen")\n'
            'forbid (principal, action == Action::"act_on_document", resource)\n'
            'when { context.amount.greaterThan(decimal("1000.0")) };\n'
        )
    monkeypatch.setenv("AIOS_POLICY_DIR", str(policies))
    reset_settings()
    (now,) = decided_docs(1, "fresh", amount=9_000.0)
    assert now["effect"] == "deny"
    assert _post(action_rows([old])) == (0, 0, 1)
    assert _refusals() == ["policy_changed"]
    assert _posted(sor) == []
    monkeypatch.delenv("AIOS_POLICY_DIR")
    reset_settings()
    assert _post(action_rows([old])) == (1, 0, 0)  # under the policy it was decided under, it stands


def test_a_served_call_acts_on_an_approval_only_for_the_execution_that_opened_it(sor: Path) -> None:
    """Regression (served side of the launcher rule): a served call knows the execution it acts for, not who
    launched it; an approved request opened by another execution (here: a local run) is not acted on for it."""
    (doc,) = decided_docs(1, "srv", amount=20_000.0)  # opened by this process's local run, not a1b2c3d4e5
    rid = doc["request_id"]
    assert decide(rid, "user:bob", "approve", "PO checked", env=Env.load(get_settings())).accepted
    (row,) = action_rows([doc], approved={rid})
    res = _served([row], "aios-pipeline")
    assert "posted 0" in res.message and "refused 1" in res.message, res.message
    assert _refusals() == ["launcher_mismatch"]
    assert _post([row]) == (1, 0, 0)  # the run that opened it


def _decided_unsealed(amount: float, seal_text: str = "") -> list[dict[str, Any]]:
    """One invoice decided by the pipeline's own ``decide_many``, on a row classify never sealed (what the
    ``decide`` task made of hand-made rows before it checked them), or sealed with another text (``seal_text``)."""
    from tasks.documents import seals
    from tasks.documents.governance import decide_many

    doc = {
        "digest": "sha256:" + "a" * 64, "label": "invoice", "amount": amount, "currency": "EUR", "confidence": 0.99,
        "personal": False, "route": "fast", "injection": False, "status": "ok", "name": "x.txt", "doc_id": "x",
        "text_digest": "sha256:" + "b" * 64, "sealed_by": "",
    }  # fmt: skip
    if seal_text:
        doc["sealed_by"] = seals.seal([{**doc, "text_digest": seal_text}], seals.CLASSIFIED, PRINCIPAL, get_settings())
    (d,) = decide_many([doc], PRINCIPAL, 3600.0, get_settings())
    assert d.effect == "allow" and d.policy_record
    doc.update(action=d.action, effect=d.effect, gate=d.gate, request_id=d.request_id, policy_record=d.policy_record)
    doc["decision_digest"] = d.digest(doc["digest"], {k: doc[k] for k in ("label", "amount", "currency")})
    return [doc]


def test_a_decision_made_on_an_unsealed_classification_is_not_acted_on(sor: Path) -> None:
    """A genuine ``allow`` decision of the real policy, made on a row no classify step sealed (a ``decide`` started
    on hand-made rows, an invoice's amount lowered under the sign-off threshold in its text): the acting point
    re-establishes the classification from the trail too, and posts nothing."""
    assert _post(action_rows(_decided_unsealed(900.0))) == (0, 0, 1)
    assert _refusals() == ["unsealed_classification"]
    assert _posted(sor) == []


def test_a_decision_whose_seal_holds_another_text_is_not_acted_on(sor: Path) -> None:
    """The seal names the document, but with another protected text than the decision was made on."""
    assert _post(action_rows(_decided_unsealed(900.0, seal_text="sha256:" + "c" * 64))) == (0, 0, 1)
    assert _refusals() == ["unsealed_classification"]
    assert _posted(sor) == []
