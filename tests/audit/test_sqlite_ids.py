"""Look-ups by record id on SQLite: the id table catches up in bulk and is never trusted on its own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit.stores import open_store


def test_get_finds_records_appended_after_earlier_lookups(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    first = store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(5)])
    assert store.get(first[3].record_id) == first[3]
    later = store.append(AuditEvent(kind="action", actor="b"))
    assert store.get(later.record_id) == later  # appended after the first look-up
    assert store.get("0" * 64) is None
    other = open_store(f"sqlite:///{tmp_path}/a.db")  # another connection sees the same table
    assert other.get(first[0].record_id) == first[0]


def test_a_tampered_id_table_cannot_substitute_a_record(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    recs = store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(3)])
    assert store.get(recs[0].record_id) is not None
    conn = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    conn.execute("DELETE FROM audit_ids WHERE seq = 1")  # point record 1's id at record 3
    conn.execute("UPDATE audit_ids SET leaf_hash = ? WHERE seq = 3", (recs[0].record_id,))
    assert store.get(recs[0].record_id) is None  # the row it points to has another id: not returned
    assert store.get(recs[1].record_id) == recs[1]


def test_read_only_database_still_answers(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    rec = store.append(AuditEvent(kind="task", actor="a"))
    store.close()
    (tmp_path / "a.db").chmod(0o444)
    ro = open_store(f"sqlite:///{tmp_path}/a.db")
    ro._conn().execute("PRAGMA query_only = ON")  # as on a read-only mount: the id table cannot be written
    assert ro.get(rec.record_id) == rec
