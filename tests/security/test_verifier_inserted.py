"""An ``inserted`` report names the sequence number of the inserted record, not of an intact one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_audit.records import record_from_entry, seal_entry
from flytekitplugins.aios_audit.verify import verify_store
from flytekitplugins.aios_core.settings import get_settings

N = 10


@pytest.fixture
def conn(aios_env: Path) -> sqlite3.Connection:
    for i in range(1, N + 1):
        audit_log(get_settings()).append(AuditEvent(kind="task", actor=f"user:a{i}", subject=f"doc-{i}"))
    c = sqlite3.connect(aios_env / "audit.db", isolation_level=None)
    c.execute("CREATE TABLE t AS SELECT * FROM audit_log")  # no PRIMARY KEY, no triggers: rows can be shifted
    c.execute("DROP TABLE audit_log")
    c.execute("ALTER TABLE t RENAME TO audit_log")
    return c


def _shift_from(c: sqlite3.Connection, seq: int, by: int) -> None:
    c.execute("UPDATE audit_log SET seq = seq + ? WHERE seq >= ?", (by, seq))


def _result() -> tuple[int | None, str, str]:
    r = verify_store(audit_log(get_settings()), workers=1)
    assert not r.ok
    return r.first_bad_seq, r.problem, r.detail


def test_copy_of_an_earlier_record_inserted(conn: sqlite3.Connection) -> None:
    """A replayed copy of record 2 is put at seq 4: the report names seq 4, where the copy sits."""
    _shift_from(conn, 4, 1)
    conn.execute(
        "INSERT INTO audit_log SELECT 4, recorded_at, kind, subject, execution, task, entry, leaf_hash, "
        "prev_hash, chain_hash FROM audit_log WHERE seq = 2"
    )
    seq, problem, detail = _result()
    assert (seq, problem) == (4, "inserted"), detail
    assert "seq 4" in detail


def test_two_copies_inserted(conn: sqlite3.Connection) -> None:
    _shift_from(conn, 6, 2)
    for at, src in ((6, 2), (7, 3)):
        conn.execute(
            "INSERT INTO audit_log SELECT ?, recorded_at, kind, subject, execution, task, entry, leaf_hash, "
            "prev_hash, chain_hash FROM audit_log WHERE seq = ?",
            (at, src),
        )
    assert _result()[:2] == (6, "inserted")


def test_forged_record_inserted_still_named(conn: sqlite3.Connection) -> None:
    """A forged record with valid hashes at seq 4 (later records renumbered): seq 4, as before."""
    prev = conn.execute("SELECT chain_hash FROM audit_log WHERE seq = 3").fetchone()[0]
    rec = record_from_entry(conn.execute("SELECT entry FROM audit_log WHERE seq = 3").fetchone()[0], "", "", "")
    _shift_from(conn, 4, 1)
    forged, entry = seal_entry(4, rec.recorded_at, AuditEvent(kind="task", actor="user:mallory"), prev)
    conn.execute(
        "INSERT INTO audit_log VALUES (4, ?, 'task', '', '', '', ?, ?, ?, ?)",
        (rec.recorded_at.isoformat(), entry, forged.leaf_hash, prev, forged.chain_hash),
    )
    seq, problem, detail = _result()
    assert (seq, problem) == (4, "inserted") and "inserted at seq 4" in detail
