"""Tamper matrix: every kind of change is found at the exact first bad sequence number.

The attacker has file access to the SQLite database: they drop the append-only triggers (and, to fork,
rebuild the table without its UNIQUE constraints) and then edit rows, recomputing hashes where that helps
them hide.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_audit.checkpoint import Checkpoint
from flytekitplugins.aios_audit.proofs import make_checkpoint
from flytekitplugins.aios_audit.records import record_from_entry, seal_entry
from flytekitplugins.aios_audit.trust import TrustedKeys
from flytekitplugins.aios_audit.verify import verify_store
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings

N = 10


@pytest.fixture
def log(aios_env: Path) -> tuple[Path, sqlite3.Connection]:
    store = audit_log(get_settings())
    for i in range(1, N + 1):
        store.append(AuditEvent(kind="task", actor=f"user:actor-{i}", status="succeeded", subject=f"doc-{i}"))
    assert verify_store(store).ok
    db = aios_env / "audit.db"
    conn = sqlite3.connect(db, isolation_level=None)
    for trig in ("audit_log_no_update", "audit_log_no_delete", "audit_log_no_fork"):
        conn.execute(f"DROP TRIGGER {trig}")
    return db, conn


def _row(conn: sqlite3.Connection, seq: int) -> tuple:
    return conn.execute("SELECT * FROM audit_log WHERE seq = ?", (seq,)).fetchone()


def _chain(conn: sqlite3.Connection, seq: int) -> str:
    return conn.execute("SELECT chain_hash FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0]


def _unconstrain(conn: sqlite3.Connection) -> None:
    """Rebuild the table without PRIMARY KEY / UNIQUE constraints (and so without the triggers)."""
    conn.execute("CREATE TABLE t AS SELECT * FROM audit_log")
    conn.execute("DROP TABLE audit_log")
    conn.execute("ALTER TABLE t RENAME TO audit_log")


def _verify(cp: Checkpoint | None = None) -> tuple[int | None, str]:
    r = verify_store(audit_log(get_settings()), cp, TrustedKeys.from_settings(get_settings()))
    assert not r.ok
    return r.first_bad_seq, r.problem


def test_triggers_refuse_edits_and_forks(aios_env: Path) -> None:
    audit_log(get_settings()).append(AuditEvent(kind="task", actor="a"))
    conn = sqlite3.connect(aios_env / "audit.db", isolation_level=None)
    for sql in (
        "UPDATE audit_log SET kind = 'x'",
        "DELETE FROM audit_log",
        "INSERT INTO audit_log SELECT 5, recorded_at, kind, subject, execution, task, entry, 'l', 'p', 'c' "
        "FROM audit_log",
    ):
        with pytest.raises(sqlite3.DatabaseError):
            conn.execute(sql)


def test_edited_entry(log: tuple[Path, sqlite3.Connection]) -> None:
    _, conn = log
    entry = _row(conn, 4)[6].replace(b"actor-4", b"mallory")
    conn.execute("UPDATE audit_log SET entry = ? WHERE seq = 4", (entry,))
    assert _verify() == (4, "edited")


def test_edited_entry_with_recomputed_leaf(log: tuple[Path, sqlite3.Connection]) -> None:
    _, conn = log
    rec = record_from_entry(_row(conn, 4)[6], "", "", "")
    forged, entry = seal_entry(4, rec.recorded_at, rec.event.model_copy(update={"status": "failed"}), _chain(conn, 3))
    conn.execute("UPDATE audit_log SET entry = ?, leaf_hash = ? WHERE seq = 4", (entry, forged.leaf_hash))
    assert _verify() == (4, "edited")


def test_deleted_row(log: tuple[Path, sqlite3.Connection]) -> None:
    _, conn = log
    conn.execute("DELETE FROM audit_log WHERE seq = 4")
    assert _verify() == (4, "deleted")


def test_deleted_and_renumbered(log: tuple[Path, sqlite3.Connection]) -> None:
    _, conn = log
    conn.execute("DELETE FROM audit_log WHERE seq = 4")
    for seq in range(5, N + 1):
        conn.execute("UPDATE audit_log SET seq = ? WHERE seq = ?", (seq - 1, seq))
    assert _verify() == (4, "deleted")


def test_inserted_with_valid_hashes(log: tuple[Path, sqlite3.Connection]) -> None:
    _, conn = log
    prev = _chain(conn, 3)
    _unconstrain(conn)
    for seq in range(N, 3, -1):
        conn.execute("UPDATE audit_log SET seq = ? WHERE seq = ?", (seq + 1, seq))
    rec = record_from_entry(_row(conn, 3)[6], "", "", "")
    forged, entry = seal_entry(4, rec.recorded_at, AuditEvent(kind="action", actor="user:mallory"), prev)
    conn.execute(
        "INSERT INTO audit_log VALUES (4, ?, 'action', '', '', '', ?, ?, ?, ?)",
        (rec.recorded_at.isoformat(), entry, forged.leaf_hash, prev, forged.chain_hash),
    )
    assert _verify() == (4, "inserted")


def test_reordered(log: tuple[Path, sqlite3.Connection]) -> None:
    _, conn = log
    a, b = _row(conn, 4), _row(conn, 7)
    _unconstrain(conn)
    conn.execute("DELETE FROM audit_log WHERE seq IN (4, 7)")
    conn.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?,?)", (4, *b[1:]))
    conn.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?,?)", (7, *a[1:]))
    assert _verify() == (4, "reordered")


def test_forked_chain(log: tuple[Path, sqlite3.Connection]) -> None:
    _, conn = log
    _unconstrain(conn)
    # seq 8 re-written by a second writer that saw a stale head (seq 6): two records now share a parent
    rec = record_from_entry(_row(conn, 8)[6], "", "", "")
    forked, entry = seal_entry(8, rec.recorded_at, rec.event, _chain(conn, 6))
    conn.execute(
        "UPDATE audit_log SET entry = ?, leaf_hash = ?, prev_hash = ?, chain_hash = ? WHERE seq = 8",
        (entry, forked.leaf_hash, forked.prev_hash, forked.chain_hash),
    )
    assert _verify() == (8, "forked")


def test_truncated_against_checkpoint(log: tuple[Path, sqlite3.Connection], tmp_path: Path) -> None:
    _, conn = log
    cp = make_checkpoint(audit_log(get_settings()), get_settings().signing_key)
    conn.execute("DELETE FROM audit_log WHERE seq >= 8")
    assert verify_store(audit_log(get_settings())).ok  # a clean cut of the tail is invisible without a checkpoint...
    assert _verify(cp) == (8, "truncated")  # ...and caught with one
    cp_file = cp.save(tmp_path / "cp.json")
    res = CliRunner().invoke(cli, ["audit", "verify", "--checkpoint", str(cp_file)])
    assert res.exit_code == 1
    assert "FAILED at seq 8: truncated" in res.output


def test_history_rewritten_against_checkpoint(log: tuple[Path, sqlite3.Connection]) -> None:
    _, conn = log
    cp = make_checkpoint(audit_log(get_settings()), get_settings().signing_key)
    prev = _chain(conn, 4)
    _unconstrain(conn)
    for seq in range(5, N + 1):
        rec = record_from_entry(_row(conn, seq)[6], "", "", "")
        new, entry = seal_entry(seq, rec.recorded_at, rec.event.model_copy(update={"actor": "user:mallory"}), prev)
        conn.execute(
            "UPDATE audit_log SET entry = ?, leaf_hash = ?, prev_hash = ?, chain_hash = ? WHERE seq = ?",
            (entry, new.leaf_hash, prev, new.chain_hash, seq),
        )
        prev = new.chain_hash
    assert verify_store(audit_log(get_settings())).ok  # internally consistent...
    r = verify_store(
        audit_log(get_settings()), cp, TrustedKeys.from_settings(get_settings())
    )  # ...but not the history the checkpoint signed
    assert not r.ok
    assert r.problem == "forked"


def test_forged_checkpoint_is_rejected(log: tuple[Path, sqlite3.Connection]) -> None:
    cp = make_checkpoint(audit_log(get_settings()), get_settings().signing_key)
    forged = cp.model_copy(update={"tree_size": cp.tree_size - 1})
    r = verify_store(audit_log(get_settings()), forged, TrustedKeys.from_settings(get_settings()))
    assert not r.ok and r.problem == "bad checkpoint"


def test_cli_verify_ok_and_edit(log: tuple[Path, sqlite3.Connection]) -> None:
    res = CliRunner().invoke(cli, ["audit", "verify"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"OK: {N} records")
    _, conn = log
    conn.execute("DROP TRIGGER audit_log_no_update")  # opening the store re-created it
    conn.execute(
        "UPDATE audit_log SET entry = CAST(REPLACE(CAST(entry AS TEXT), 'doc-6', 'doc-X') AS BLOB) WHERE seq = 6"
    )
    res = CliRunner().invoke(cli, ["audit", "verify"])
    assert res.exit_code == 1
    assert "FAILED at seq 6: edited" in res.output
