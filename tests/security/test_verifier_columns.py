"""Verification proves every stored column equals the sealed entry, in either process of the two-process walk.

The attacker edits the plain columns SQL readers see (``kind``, ``subject``, ``execution``, ``task``,
``recorded_at``) with the append-only triggers dropped, leaving entry bytes and hashes intact.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_audit.verify import verify_store
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.context import ExecutionRef
from flytekitplugins.aios_core.settings import get_settings

N = 45  # with block=4 the child process verifies seq 21..45
EX = ExecutionRef(project="proj", domain="development", name="exec-7", task_name="wf.classify", node_id="n1")

EDITS = {
    "kind": "'approval_decision'",
    "subject": "'sha256:forged'",
    "execution": "'proj/development/other'",
    "task": "'wf.other'",
    "recorded_at": "'2020-01-01T00:00:00+00:00'",
}


def _events() -> list[AuditEvent]:
    odd = ['quote " and back\\slash', "ünïcode/ü", "tab\there", ""]
    return [
        AuditEvent(
            kind="task",
            actor=f"user:a{i}",
            subject=odd[i % 4] if i % 5 == 0 else f"doc-{i}",
            execution=EX if i % 3 else None,
            inputs={"x": f"sha256:{i:064x}"},
            attributes={"execution": "nested", "kind": "nested"} if i % 7 == 0 else {},
        )
        for i in range(1, N + 1)
    ]


@pytest.fixture
def conn(aios_env: Path) -> sqlite3.Connection:
    audit_log(get_settings()).append_many(_events())
    c = sqlite3.connect(aios_env / "audit.db", isolation_level=None)
    c.execute("DROP TRIGGER audit_log_no_update")
    return c


def _both() -> list[tuple[int | None, str, str]]:
    store = audit_log(get_settings())
    results = [verify_store(store, workers=1), verify_store(store, workers=2, block=4)]
    return [(r.first_bad_seq, r.problem, r.detail) for r in results]


def test_intact_log_with_odd_values_verifies(conn: sqlite3.Connection) -> None:
    store = audit_log(get_settings())
    assert verify_store(store, workers=1).ok
    parallel = verify_store(store, workers=2, block=4)
    assert parallel.ok and parallel.workers == 2


@pytest.mark.parametrize("column", list(EDITS))
@pytest.mark.parametrize("seq", [3, 10, 14, 21, 30, 35, 44])
# both halves; 10 and 30 have odd subjects, 14 and 35 a nested "execution" key beside their execution (both go
# through the parsed check, parsed_match, after the byte checks are unsure)
def test_edited_column_is_found(conn: sqlite3.Connection, column: str, seq: int) -> None:
    conn.execute(f"UPDATE audit_log SET {column} = {EDITS[column]} WHERE seq = ?", (seq,))
    serial, parallel = _both()
    assert serial == parallel
    bad_seq, problem, detail = serial
    assert (bad_seq, problem) == (seq, "edited")
    assert f"column {column} " in detail


def test_sql_readers_see_what_was_sealed(conn: sqlite3.Connection) -> None:
    """The reviewer's case: the table says 'approval_decision' while the sealed entry says 'task'."""
    conn.execute("UPDATE audit_log SET kind = 'approval_decision', subject = 'x' WHERE seq = 12")
    res = CliRunner().invoke(cli, ["audit", "verify"])
    assert res.exit_code == 1, res.output
    assert "FAILED at seq 12: edited" in res.output and "column" in res.output


def test_null_column_is_found(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE t AS SELECT * FROM audit_log")  # no NOT NULL constraints, no triggers
    conn.execute("DROP TABLE audit_log")
    conn.execute("ALTER TABLE t RENAME TO audit_log")
    conn.execute("UPDATE audit_log SET task = NULL WHERE seq = 8")
    serial, parallel = _both()
    assert serial == parallel and serial[:2] == (8, "edited") and "NULL" in serial[2]


def test_postgres_columns(pg_url: str) -> None:
    import psycopg

    store = audit_log(get_settings(), url=pg_url, emit=False)
    store.append_many(_events())
    assert verify_store(store, workers=1).ok
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
        c.execute("UPDATE audit_log SET recorded_at = recorded_at + interval '1 second' WHERE seq = 33")
    for workers in (1, 2):
        r = verify_store(store, workers=workers, block=4)
        assert (r.first_bad_seq, r.problem) == (33, "edited") and "column recorded_at" in r.detail
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("UPDATE audit_log SET recorded_at = recorded_at - interval '1 second' WHERE seq = 33")
        c.execute("UPDATE audit_log SET kind = 'action' WHERE seq = 7")
    r = verify_store(store, workers=1)
    assert (r.first_bad_seq, r.problem) == (7, "edited") and "column kind" in r.detail


@pytest.mark.parametrize("column", list(EDITS))
def test_edited_column_in_a_plain_log(aios_env: Path, column: str) -> None:
    """No odd values: whole batches take the fast check, which must still see one edited row."""
    audit_log(get_settings()).append_many(
        [AuditEvent(kind="task", actor="user:a", subject=f"doc-{i}", execution=EX) for i in range(1, N + 1)]
    )
    assert verify_store(audit_log(get_settings()), workers=1).ok
    c = sqlite3.connect(aios_env / "audit.db", isolation_level=None)
    c.execute("DROP TRIGGER audit_log_no_update")
    c.execute(f"UPDATE audit_log SET {column} = {EDITS[column]} WHERE seq = 40")
    serial, parallel = _both()
    assert serial == parallel and serial[:2] == (40, "edited") and f"column {column} " in serial[2]
