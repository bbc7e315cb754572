"""The same invoice in two files of one batch is paid once (review of 2026-12-06 from 20:55 UTC, reproduced).

``ingest`` drops duplicates by their bytes, so a second copy with CRLF line endings was another document: both were
classified, decided and posted (two payments of EUR 9,500). The classification seal now names each text's content
key and the acting point claims it: the second copy is refused there (``already_used``), counted, and the batch goes
on.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.settings import get_settings
from tests.documents.conftest import options


@pytest.fixture
def inbox(aios_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from tasks.documents.corpus_text import _body

    folder = tmp_path / "inbox"
    folder.mkdir()
    text = _body("invoice", random.Random(5), "Northwind Supplies Ltd", "Acme GmbH", "EUR 9,500.00", "12 March 2026",
                 "Jane Roe")  # fmt: skip
    (folder / "inv-7781.txt").write_text(text, encoding="utf-8")
    (folder / "inv-7781-reminder.txt").write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    monkeypatch.setenv("AIOS_DOCUMENT_SOURCES", str(folder))
    monkeypatch.setenv("AIOS_SYSTEM_OF_RECORD_URL", f"sqlite:///{aios_env / 'system_of_record.db'}")
    return folder


def test_one_invoice_in_two_files_is_paid_once(inbox: Path, aios_env: Path) -> None:
    from workflows.document_processing import process_documents

    summary, results, _quarantine = process_documents(source=str(inbox), options=options())
    with sqlite3.connect(aios_env / "system_of_record.db") as conn:
        posted = conn.execute("SELECT action, amount, currency FROM document_actions").fetchall()
    assert posted == [("pay_invoice", 9500.0, "EUR")]
    assert len(results) == 2 and summary.processed == 2, summary  # both read, classified and decided: none is lost
    assert (summary.posted, summary.already_posted, summary.refused_at_acting_point) == (1, 0, 1), summary
    refused = [r.event for r in audit_log(get_settings()).scan() if r.event.kind == "action_refused"]
    assert [e.status for e in refused] == ["already_used"]
    assert refused[0].subject in set(results["digest"])
    # each row says what happened to it: the refused copy's row used to say "acted", as the paid one's did
    outcomes = dict(zip(results["digest"], results["outcome"], strict=True))
    assert outcomes[refused[0].subject] == "refused_at_acting_point", outcomes
    assert sorted(outcomes.values()) == ["acted", "refused_at_acting_point"]
    assert summary.outcomes == {"acted": 1, "refused_at_acting_point": 1}, summary


def test_two_texts_that_differ_only_where_redaction_writes_a_placeholder_are_acted_on_once(
    tmp_path: Path, aios_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key is the protected text's: a key of the text before redaction let whoever reads the trail and the
    protected text try every PIN in place of ``[SECRET]`` (the second review recovered one in 0.2 s). Two texts that
    differ only where redaction wrote a placeholder (an invoice resent with another bank account) are one text for the
    trail, and the second is held back at the acting point, counted, for a person to look at."""
    from flytekitplugins.aios_approvals.acting import content_key
    from tasks.documents.protect import redact
    from workflows.document_processing import process_documents

    folder = tmp_path / "inbox"
    folder.mkdir()
    body = "INVOICE 7781\nNorthwind Supplies Ltd\nPay to {}\nTotal amount due: EUR 9,500.00\n"
    texts = [body.format("DE89 3704 0044 0532 0130 00"), body.format("GB29 NWBK 6016 1331 9268 19")]
    assert redact(texts[0]).text == redact(texts[1]).text  # both IBANs read [IBAN]: one protected text
    for i, text in enumerate(texts):
        (folder / f"inv-{i}.txt").write_text(text, encoding="utf-8")
    monkeypatch.setenv("AIOS_DOCUMENT_SOURCES", str(folder))
    monkeypatch.setenv("AIOS_SYSTEM_OF_RECORD_URL", f"sqlite:///{aios_env / 'system_of_record.db'}")
    summary, _results, _quarantine = process_documents(source=str(folder), options=options())
    assert (summary.processed, summary.posted, summary.refused_at_acting_point) == (2, 1, 1), summary
    sealed = [
        d["content"]
        for r in audit_log(get_settings()).scan()
        if r.event.kind in ("documents_protected", "documents_classified")
        for d in r.event.attributes["documents"]
    ]
    assert set(sealed) == {content_key(redact(texts[0]).text)}  # what the trail names: the protected text's key


def test_a_row_reads_acted_only_where_the_trail_holds_its_action() -> None:
    """``outcome_of`` reads the holders of the rows' post claims: held by the row's own action key at the workflow's
    table (of any database: a retry that found it posted) is taken, whatever the batch's gate saw; held by another
    action, at another table (the action taken elsewhere first: the pipeline's own post was refused, review of
    2026-12-07), or by nobody, is a refusal."""
    from flytekitplugins.aios_core.digest import digest_value
    from tasks.documents.report import acted_claims, outcome_of

    doc, decision = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    key = digest_value({"doc": doc, "decision": decision})
    row = {"status": "ok", "effect": "allow", "action": "pay_invoice", "digest": doc, "decision_digest": decision,
           "request_id": "", "reason": ""}  # fmt: skip
    claim = f"post:{doc}:pay_invoice"
    here = {claim: (f"{key}@document_actions@sqlite:///elsewhere.db", 7)}
    assert acted_claims(pd.DataFrame([row])) == [claim]
    assert outcome_of(row, {}, here) == "acted"
    assert outcome_of(row, {}, {claim: (f"sha256:{'c' * 64}@document_actions@x", 7)}) == "refused_at_acting_point"
    assert outcome_of(row, {}, {claim: (f"{key}@parked@sqlite:///parked.db", 7)}) == "refused_at_acting_point"
    assert outcome_of(row, {}, {}) == "refused_at_acting_point"
    asked = {**row, "effect": "require_approval", "request_id": "apr-1"}
    assert outcome_of(asked, {"apr-1": "approved"}, here) == "acted_after_approval"
    assert outcome_of(asked, {"apr-1": "rejected"}, here) == "acted_after_approval"  # the trail says it was acted on
    assert outcome_of(asked, {"apr-1": "approved"}, {}) == "refused_at_acting_point"
    assert outcome_of(asked, {"apr-1": "rejected"}, {}) == "approval_rejected"
    assert outcome_of({**row, "effect": "deny"}, {}, {}) == "denied"
