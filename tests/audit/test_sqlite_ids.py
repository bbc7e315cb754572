"""Look-ups by record id on SQLite: the id table catches up in bulk and is never trusted on its own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

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


def test_a_look_up_takes_the_write_lock_only_when_records_wait_to_be_indexed(tmp_path: Path) -> None:
    """Readers do not queue behind writers for nothing: once the id table is current, a look-up reads it and takes
    no write transaction (each look-up used to take the write lock to index nothing); after an append, the next
    look-up indexes it."""
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    recs = store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(4)])
    assert store.get(recs[0].record_id) == recs[0]  # indexes the four
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)  # type: ignore[attr-defined]
    assert store.get_many([r.record_id for r in recs]) == {r.record_id: r for r in recs}
    assert store.get(recs[2].record_id) == recs[2]
    assert not [s for s in statements if s.startswith(("BEGIN", "INSERT"))], statements
    later = store.append(AuditEvent(kind="action", actor="b"))
    statements.clear()
    assert store.get(later.record_id) == later
    store._conn().set_trace_callback(None)  # type: ignore[attr-defined]
    assert sum(s.startswith("BEGIN IMMEDIATE") for s in statements) == 1


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


def test_catch_up_takes_the_write_lock_one_chunk_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log written by appends alone (an upgraded store) is indexed in chunks: other writers wait for one chunk,
    not for the whole log (at ten million records a single catch-up held the write lock for minutes)."""
    from flytekitplugins.aios_audit.stores import sqlite as sq

    store = open_store(f"sqlite:///{tmp_path}/a.db")
    recs = store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(10)])
    monkeypatch.setattr(sq, "IDS_CHUNK", 3)
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)
    assert store.get(recs[-1].record_id) == recs[-1]
    assert sum(s.startswith("BEGIN IMMEDIATE") for s in statements) == 4  # 3 + 3 + 3 + 1 records
    store._conn().set_trace_callback(None)
    assert all(store.get(r.record_id) == r for r in recs)
    ids = sqlite3.connect(tmp_path / "a.db").execute("SELECT seq, leaf_hash FROM audit_ids ORDER BY seq").fetchall()
    assert ids == [(r.seq, r.record_id) for r in recs]


def test_the_upgrade_command_builds_the_id_table(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from flytekitplugins.aios_core.cli import cli

    url = f"sqlite:///{tmp_path}/a.db"
    run = {"project": "p", "domain": "d", "name": "r"}
    recs = open_store(url).append_many([AuditEvent(kind="task", actor=f"a{i}", execution=run) for i in range(5)])
    db = sqlite3.connect(tmp_path / "a.db")
    assert db.execute("SELECT COUNT(*) FROM audit_ids").fetchone() == (0,)  # appends alone never fill it
    # as written by a version before the lineage projection: its tables come with the next open, marked unbuilt
    db.executescript("DROP TABLE audit_proj_lineage; DROP TABLE audit_proj_lineage_state;")
    open_store(url)
    assert db.execute("SELECT missing_through FROM audit_proj_lineage_state").fetchone() == (5,)
    res = CliRunner().invoke(cli, ["audit", "rebuild-projections", "--store", url, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output.strip().splitlines()[-1])
    assert doc["record_id_index"] is True and doc["ok"] is True
    assert db.execute("SELECT seq, leaf_hash FROM audit_ids ORDER BY seq").fetchall() == [
        (r.seq, r.record_id) for r in recs
    ]
    # the rest of the upgrade: the Merkle tree levels and the lineage index, so the first proof and the first trace
    # afterwards do not pay for the whole log
    assert doc["tree_levels"] == 5 and db.execute("SELECT size FROM audit_merkle_size").fetchone() == (5,)
    from flytekitplugins.aios_audit.merkle import MerkleTree
    from flytekitplugins.aios_audit.nodes import StoredTree

    stored, full = StoredTree(db, 5), MerkleTree([bytes.fromhex(r.record_id) for r in recs])
    assert stored.root() == full.root() and stored.inclusion_proof(3) == full.inclusion_proof(3)
    # lineage: the store's own projection, filled from the log (one execution row a record), no index file
    assert doc["lineage_index"] is None and doc["rows_written"] == 5
    assert db.execute("SELECT missing_through FROM audit_proj_lineage_state").fetchone() == (0,)
    assert db.execute("SELECT seq, child, parent, rel FROM audit_proj_lineage ORDER BY seq").fetchall() == [
        (r.seq, "", "execution:p/d/r", "in_execution") for r in recs
    ]
    again = CliRunner().invoke(cli, ["audit", "rebuild-projections", "--store", url, "--json"])
    assert json.loads(again.output.strip().splitlines()[-1])["rows_written"] == 0  # already up to date


def test_get_many_answers_what_get_answers_in_few_queries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``get_many`` (the acting point reads a chunk's policy decisions with it) returns exactly the records ``get``
    returns, one query per chunk of ids, and never a row the id table points at under another id."""
    from flytekitplugins.aios_audit.stores import sqlite as sq

    store = open_store(f"sqlite:///{tmp_path}/a.db")
    recs = store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(7)])
    missing = "0" * 64
    asked = [recs[5].record_id, missing, recs[0].record_id, recs[5].record_id, *(r.record_id for r in recs[1:4])]
    monkeypatch.setattr(sq, "GET_MANY_CHUNK", 2)
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)
    got = store.get_many(asked)
    store._conn().set_trace_callback(None)
    assert got == {rid: rec for rid in asked if (rec := store.get(rid)) is not None}
    assert set(got) == {recs[i].record_id for i in (0, 1, 2, 3, 5)} and missing not in got
    assert sum("FROM audit_log WHERE seq IN" in s for s in statements) == 3  # 6 distinct ids, 2 a query
    assert store.get_many([]) == {}
    conn = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    conn.execute("DELETE FROM audit_ids WHERE seq = 1")  # point record 1's id at record 3
    conn.execute("UPDATE audit_ids SET leaf_hash = ? WHERE seq = 3", (recs[0].record_id,))
    assert store.get_many([recs[0].record_id, recs[1].record_id]) == {recs[1].record_id: recs[1]}


def test_get_many_on_a_read_only_database(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    recs = store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(3)])
    store.close()
    (tmp_path / "a.db").chmod(0o444)
    ro = open_store(f"sqlite:///{tmp_path}/a.db")
    ro._conn().execute("PRAGMA query_only = ON")
    assert ro.get_many([recs[2].record_id, "0" * 64]) == {recs[2].record_id: recs[2]}
