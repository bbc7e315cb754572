"""`scan_kinds` (what the approval and catalog projections read) filters on the hashed entry bytes, so an
attacker who edits the unverified `kind` index column cannot hide a record from a projection."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_core.settings import get_settings


def _fill() -> list[str]:
    store = audit_log(get_settings())
    ids = []
    for i in range(30):
        kind = "approval_decision" if i % 10 == 3 else "task"
        # a task record whose attributes mention the kind string must not be mistaken for one
        attrs = {"note": '"kind":"approval_decision"'} if i == 5 else {"i": i}
        ids.append(store.append(AuditEvent(kind=kind, actor="user:x", subject=f"s{i}", attributes=attrs)).record_id)
    return ids


def test_only_the_requested_kinds_come_back_in_order() -> None:
    ids = _fill()
    got = list(audit_log(get_settings()).scan_kinds(("approval_decision",)))
    assert [r.event.subject for r in got] == ["s3", "s13", "s23"]
    assert [r.record_id for r in got] == [ids[3], ids[13], ids[23]]
    assert [r.event.subject for r in audit_log(get_settings()).scan_kinds(("approval_decision",), start=15)] == ["s23"]


def test_an_edited_index_column_does_not_hide_a_record(aios_env: Path) -> None:
    _fill()
    conn = sqlite3.connect(aios_env / "audit.db")
    conn.execute("DROP TRIGGER audit_log_no_update")  # the attacker has file access
    conn.execute("UPDATE audit_log SET kind = 'task' WHERE kind = 'approval_decision'")
    conn.commit()
    conn.close()
    got = [r.event.subject for r in audit_log(get_settings()).scan_kinds(("approval_decision",))]
    assert got == ["s3", "s13", "s23"]
