"""SQLite's record-id table is a look-up aid, never a witness that a record is absent (review of 2026-12-07, F3).

Attacker: write access to the SQLite audit store. ``audit_ids (seq, leaf_hash)`` finds records by id; a row that is
found must carry the id asked for, but a missing row made ``store.get`` answer None. The acting point's check that no
request for the document was rejected found the requests through the lineage index and then looked each up by id, so
a writer who left the rejected request's row out of ``audit_ids`` had bob's rejection count for nothing, and the
payment carol approved on a second request was posted; ``aios audit verify`` said OK before and after. Real
flytekit local execution of the system-of-record connector task, the pack's Cedar policy and signed approvals.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd

from flytekitplugins.aios_approvals import decide
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask
from flytekitplugins.aios_core.settings import get_settings
from tests.governed_rows import PRINCIPAL, action_rows, decided_docs

post = SystemOfRecordTask(name="post_document_actions", config=SystemOfRecordConfig(table="document_actions"))


def _posted(db: Path) -> list[Any]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT doc_digest, action, request_id FROM document_actions").fetchall()


def _rejected_then_asked_again() -> tuple[dict[str, Any], str, str]:
    """A 40,000 EUR invoice bob rejected, the decide step run again on it, and carol's approval of the new request:
    ``(row, rejected request id, the request record's id)``."""
    from tasks.documents.governance import decide_many

    env = Env.load(get_settings())
    (doc,) = decided_docs(1, "rej", amount=40_000.0)
    rejected = doc["request_id"]
    assert decide(rejected, "user:bob", "reject", "duplicate invoice", env=env).accepted
    (again,) = decide_many([doc], PRINCIPAL, 3600.0, get_settings())
    assert again.request_id != rejected
    assert decide(again.request_id, "user:carol", "approve", "asked again", env=env).accepted
    asked = dict(doc, request_id=again.request_id, policy_record=again.policy_record)
    (row,) = action_rows([asked], {again.request_id})
    record = next(r for r in audit_log(get_settings()).scan_kinds(("approval_request",)) if r.event.subject == rejected)
    return row, rejected, record.record_id


def _db() -> Path:
    return Path(get_settings().audit_store.removeprefix("sqlite:///"))


def test_a_rejection_stands_when_its_request_is_left_out_of_the_id_table(sor: Path) -> None:
    row, _rejected, record_id = _rejected_then_asked_again()
    with sqlite3.connect(_db()) as conn:  # the writer: the id table brought up to date, but for one record
        conn.execute(
            "INSERT OR IGNORE INTO audit_ids (seq, leaf_hash) "
            "SELECT seq, leaf_hash FROM audit_log WHERE leaf_hash <> ?",
            (record_id,),
        )
    assert audit_log(get_settings()).get(record_id) is None  # the look-up by id no longer finds it
    out = post(actions=pd.DataFrame([row]))
    assert (out.posted, out.refused) == (0, 1)
    assert _posted(sor) == []
    refusals = [r.event.status for r in audit_log(get_settings()).scan_kinds(("action_refused",))]
    assert refusals == ["approval_rejected"]


def _verify(*args: str) -> tuple[int, str]:
    from click.testing import CliRunner

    from flytekitplugins.aios_core.cli import cli

    res = CliRunner().invoke(cli, ["audit", "verify", *args])
    return res.exit_code, res.output


def test_verify_reports_a_record_id_table_that_hides_or_substitutes_records(aios_env: Path, tmp_path: Path) -> None:
    """``aios audit verify`` (the full walk, and from a checkpoint for the rows after it) compares the record-id table
    with the log: a row left out below its last, or one naming another record, is tampering; rows not yet written
    past its last are an ordinary backlog."""
    from flytekitplugins.aios_audit import AuditEvent

    store = audit_log(get_settings())
    recs = store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(30)])
    assert store.catch_up_ids()  # type: ignore[attr-defined]
    code, out = _verify()
    assert code == 0 and "OK" in out, out
    checkpoint = tmp_path / "cp.json"
    from click.testing import CliRunner

    from flytekitplugins.aios_core.cli import cli

    made = CliRunner().invoke(cli, ["audit", "checkpoint", "--out", str(checkpoint)])
    assert made.exit_code == 0, made.output
    recs += store.append_many([AuditEvent(kind="task", actor=f"b{i}") for i in range(10)])
    assert store.catch_up_ids() and store.ids_backlog() == 0  # type: ignore[attr-defined]
    with sqlite3.connect(_db(), isolation_level=None) as conn:
        conn.execute("DELETE FROM audit_ids WHERE seq = 35")  # hides record 35 from look-ups by id
    assert store.get(recs[34].record_id) is None
    for args in ((), ("--checkpoint", str(checkpoint))):
        code, out = _verify(*args)
        assert code == 1 and "the record-id table lacks the rows of records [35]" in out, (args, out)
    with sqlite3.connect(_db(), isolation_level=None) as conn:
        conn.execute("INSERT INTO audit_ids VALUES (35, ?)", (recs[34].record_id,))
        conn.execute("UPDATE audit_ids SET leaf_hash = ? WHERE seq = 3", (recs[0].record_id,))
    code, out = _verify()
    assert code == 1 and f"record-id row 3 names {recs[0].record_id[:16]}" in out, out
    code, out = _verify("--checkpoint", str(checkpoint))  # an edit at or before the checkpoint: the full walk's
    assert code == 0, out
    with sqlite3.connect(_db(), isolation_level=None) as conn:
        conn.execute("UPDATE audit_ids SET leaf_hash = ? WHERE seq = 3", (recs[2].record_id,))
        conn.execute("DELETE FROM audit_ids WHERE seq > 36")  # rows not yet written: a backlog, not tampering
    assert _verify()[0] == 0
