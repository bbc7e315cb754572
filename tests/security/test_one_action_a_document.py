"""One action a document, and one a text, whatever label or file it comes with (review of 2026-12-06, from 20:55 UTC).

The acting point claimed ``post:<document>:<action>``: the same document classified again (a launch that raised
``fast_threshold``, which is allowed, routed it to the strong head) was a claim where it had been an invoice, its
second decision named another action (``settle_claim``), took fresh claims and was posted: one invoice paid as an
invoice and settled as a claim. The same invoice sent again as a second file with CRLF line endings was another
document (another byte digest) and was paid twice. The acting point now also claims ``doc:<document>`` and
``text:<content key>`` (the key the classification seal names for the text), and looks up the per-action claims a
document posted before ``doc:`` existed holds.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd

from flytekitplugins.aios_approvals.acting import DOCUMENT_ACTIONS, content_key
from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_audit.stores import CLAIMS_ATTR, claim
from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask
from flytekitplugins.aios_core.settings import get_settings

PRINCIPAL = "service:document-pipeline"
post = SystemOfRecordTask(name="post_document_actions", config=SystemOfRecordConfig(table="document_actions"))
INVOICE = "INVOICE 7781\nNorthwind Supplies Ltd\nTotal amount due: EUR 9,500.00\nPayable within 30 days\n"


def _decided(digest: str, label: str, route: str, confidence: float, text: str = INVOICE) -> list[dict[str, Any]]:
    """One document classified (sealed as ``classify`` seals it, with the content key ``parse_protect`` took of its
    text) and decided by the real policy."""
    from tasks.documents import report, seals
    from tasks.documents.governance import decide_many

    doc = {
        "digest": digest, "label": label, "amount": 9_500.0, "currency": "EUR", "confidence": confidence,
        "personal": False, "route": route, "injection": False, "status": "ok", "name": "inv-7781.txt",
        "doc_id": "inv-7781", "text": text, "text_digest": seals.text_digest(text), "content_key": content_key(text),
    }  # fmt: skip
    doc["sealed_by"] = seals.seal([doc], seals.CLASSIFIED, PRINCIPAL, get_settings())
    (d,) = decide_many([doc], PRINCIPAL, 3600.0, get_settings())
    assert d.effect == "allow", d
    doc.update(action=d.action, effect=d.effect, gate=d.gate, request_id=d.request_id, policy_record=d.policy_record)
    doc["decision_digest"] = d.digest(doc["digest"], {k: doc[k] for k in ("label", "amount", "currency")})
    rows: list[dict[str, Any]] = report.action_rows(pd.DataFrame([doc]), PRINCIPAL).to_dict(orient="records")
    return rows


def _post(rows: list[dict[str, Any]]) -> tuple[int, int, int]:
    out = post(actions=pd.DataFrame(rows))
    return out.posted, out.already_posted, out.refused


def _posted(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT doc_digest, action FROM document_actions ORDER BY rowid").fetchall()


def _refusals() -> list[str]:
    return [r.event.status for r in audit_log(get_settings()).scan() if r.event.kind == "action_refused"]


def test_a_document_classified_again_under_another_label_is_not_acted_on_twice(sor: Path) -> None:
    doc = "sha256:" + "ab" * 32
    assert _post(_decided(doc, "invoice", "fast", 0.86)) == (1, 0, 0)
    second = _decided(doc, "claim", "strong", 0.78)  # the same document, routed to the strong head: a raised threshold
    assert second[0]["action"] == "settle_claim"
    assert _post(second) == (0, 0, 1)
    assert _posted(sor) == [(doc, "pay_invoice")]
    assert _refusals() == ["already_used"]
    assert _post(_decided(doc, "invoice", "fast", 0.86)) == (0, 1, 0)  # the first action again: a retry, idempotent


def test_the_same_text_in_another_file_is_not_acted_on_twice(sor: Path) -> None:
    first, crlf = "sha256:" + "c1" * 32, "sha256:" + "c2" * 32
    assert _post(_decided(first, "invoice", "fast", 0.9)) == (1, 0, 0)
    resent = INVOICE.replace("\n", " \r\n").replace("Northwind", "NORTH\u034fWIND")  # CRLF, case, an unseen mark
    assert content_key(resent) == content_key(INVOICE)
    assert _post(_decided(crlf, "invoice", "fast", 0.9, text=resent)) == (0, 0, 1)
    for other_text in ("$950.00", "EUR -9,500.00", "EUR 95,00.00"):  # a currency, a sign, punctuation: other texts
        assert content_key(INVOICE.replace("EUR 9,500.00", other_text)) != content_key(INVOICE)
    lines = INVOICE.splitlines()
    assert content_key("\n".join(reversed(lines))) != content_key(INVOICE)  # lines in another order: another text
    other = INVOICE.replace("9,500.00", "9,400.00")  # another invoice's text is another key
    assert _post(_decided("sha256:" + "c3" * 32, "invoice", "fast", 0.9, text=other)) == (1, 0, 0)
    assert [d for d, _ in _posted(sor)] == [first, "sha256:" + "c3" * 32]


def test_two_actions_on_one_document_in_one_call_post_one(sor: Path) -> None:
    doc = "sha256:" + "d4" * 32
    both = _decided(doc, "invoice", "fast", 0.86) + _decided(doc, "claim", "strong", 0.78)
    assert _post(both) == (1, 0, 1)
    assert _posted(sor) == [(doc, "pay_invoice")]


def test_a_document_acted_on_before_per_document_claims_is_not_acted_on_again(sor: Path) -> None:
    """A trail from before this change holds ``post:<document>:pay_invoice`` and no ``doc:`` claim for a document it
    posted: a decision for that document under another action is refused all the same."""
    doc = "sha256:" + "e5" * 32
    assert "pay_invoice" in DOCUMENT_ACTIONS
    earlier = AuditEvent(  # what the acting point recorded before doc: claims (the claims it took then)
        kind="action_authorized",
        actor=PRINCIPAL,
        status="authorized",
        subject=doc,
        attributes={CLAIMS_ATTR: [claim(f"post:{doc}:pay_invoice", "sha256:earlier@document_actions@sqlite:///x")]},
    )
    audit_log(get_settings()).append(earlier)
    assert _post(_decided(doc, "claim", "strong", 0.78)) == (0, 0, 1)
    assert _refusals() == ["already_used"]


def test_the_pipeline_s_actions_are_the_acting_point_s() -> None:
    """The acting point looks up every action the pipeline takes (:data:`DOCUMENT_ACTIONS`): one the pipeline added
    without it would not be looked up for documents posted before per-document claims."""
    from tasks.documents.governance import OTHER_ACTIONS, PAYMENT_ACTIONS

    assert {*PAYMENT_ACTIONS.values(), *OTHER_ACTIONS.values()} == set(DOCUMENT_ACTIONS)
