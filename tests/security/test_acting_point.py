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


@pytest.fixture
def sor(aios_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = aios_env / "system_of_record.db"
    monkeypatch.setenv("AIOS_SYSTEM_OF_RECORD_URL", f"sqlite:///{db}")
    return db


def _posted(db: Path) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT doc_digest, action, amount, currency, request_id FROM document_actions").fetchall()


def _post(rows: list[dict[str, Any]]) -> tuple[int, int, int]:
    out = post(actions=pd.DataFrame(rows))
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
    assert _post([other]) == (0, 0, 1)  # a second, different action on the same approval
    assert _refusals()[-1] == "already_used"


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
    caller's, and a row must name it."""
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
