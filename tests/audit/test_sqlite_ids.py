"""Look-ups by record id on SQLite: the id table catches up in bulk and is never trusted on its own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_audit.stores import AuditStore, open_store
from flytekitplugins.aios_audit.stores import sqlite as sqlite_store


@pytest.fixture(autouse=True)
def _index_every_backlog(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests exercise the id table itself: a look-up indexes whatever waits (none reads the log's tail instead)
    unless the test says otherwise."""
    monkeypatch.setattr(sqlite_store, "IDS_TAIL_READ", 0)


def test_get_finds_records_appended_after_earlier_lookups(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    first = store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(5)])
    assert store.get(first[3].record_id) == first[3]
    later = store.append(AuditEvent(kind="action", actor="b"))
    assert store.get(later.record_id) == later  # appended after the first look-up
    assert store.get("0" * 64) is None
    other = open_store(f"sqlite:///{tmp_path}/a.db")  # another connection sees the same table
    assert other.get(first[0].record_id) == first[0]


def test_a_look_up_takes_the_write_lock_only_when_records_wait_to_be_indexed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readers do not queue behind writers for nothing: once the id table is current, a look-up reads it and takes
    no write transaction (each look-up used to take the write lock to index nothing); after a few appends, the next
    look-up reads them from the log's tail, still without writing (it used to index them: a durable write, an fsync,
    on every look-up after an append); once more than ``IDS_TAIL_READ`` wait, it indexes them."""
    monkeypatch.setattr(sqlite_store, "IDS_TAIL_READ", 3)
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    recs = store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(4)])
    assert store.get(recs[0].record_id) == recs[0]  # four waiting, more than three: indexes them
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)  # type: ignore[attr-defined]
    assert store.get_many([r.record_id for r in recs]) == {r.record_id: r for r in recs}
    assert store.get(recs[2].record_id) == recs[2]
    assert not [s for s in statements if s.startswith(("BEGIN", "INSERT"))], statements
    later = store.append_many([AuditEvent(kind="action", actor=f"b{i}") for i in range(3)])
    statements.clear()
    assert store.get_many([later[2].record_id, recs[1].record_id, "0" * 64]) == {
        later[2].record_id: later[2],
        recs[1].record_id: recs[1],
    }
    assert store.get(later[0].record_id) == later[0]
    assert not [s for s in statements if s.startswith(("BEGIN", "INSERT"))], statements
    assert store.ids_backlog() == 3  # read from the tail, left for a later catch-up
    one_more = store.append(AuditEvent(kind="action", actor="c"))
    statements.clear()
    assert store.get(one_more.record_id) == one_more
    store._conn().set_trace_callback(None)  # type: ignore[attr-defined]
    assert sum(s.startswith("BEGIN IMMEDIATE") for s in statements) == 1
    assert store.ids_backlog() == 0


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


def test_a_backlog_larger_than_the_indexed_part_is_indexed_by_one_sort(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log written by appends alone is indexed by one rebuild: the id index dropped, the rows added in log order and
    the index built again by one sort, in one transaction (random inserts into the index, chunk after chunk, took
    about 15 us a record at two million records, and 233 s for the first look-up at ten million). A smaller backlog,
    or one smaller than what is already indexed, still goes by chunks."""
    from flytekitplugins.aios_audit.stores import sqlite as sq

    store = open_store(f"sqlite:///{tmp_path}/a.db")
    recs = store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(10)])
    monkeypatch.setattr(sq, "IDS_CHUNK", 3)
    monkeypatch.setattr(sq, "IDS_BULK_MIN", 4)
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)  # type: ignore[attr-defined]
    assert store.get(recs[-1].record_id) == recs[-1]
    assert sum(s.startswith("BEGIN IMMEDIATE") for s in statements) == 1, statements
    assert [s.split(" ON ")[0] for s in statements if "INDEX" in s] == [
        "DROP INDEX IF EXISTS audit_ids_leaf",
        "CREATE INDEX IF NOT EXISTS audit_ids_leaf",
    ]
    db = sqlite3.connect(tmp_path / "a.db")
    assert db.execute("SELECT seq, leaf_hash FROM audit_ids ORDER BY seq").fetchall() == [
        (r.seq, r.record_id) for r in recs
    ]
    plan = db.execute("EXPLAIN QUERY PLAN SELECT seq FROM audit_ids WHERE leaf_hash = ?", ("x",)).fetchall()
    assert "audit_ids_leaf" in str(plan)  # the index is back, and look-ups use it
    # 2 more: fewer than IDS_BULK_MIN, so one chunk; then 12 more: fewer than the 12 indexed, so chunks too
    more = store.append_many([AuditEvent(kind="task", actor=f"b{i}") for i in range(2)])
    statements.clear()
    assert store.get(more[0].record_id) == more[0]
    assert not [s for s in statements if "INDEX" in s] and sum(s.startswith("BEGIN") for s in statements) == 1
    many = store.append_many([AuditEvent(kind="task", actor=f"c{i}") for i in range(12)])
    statements.clear()
    assert store.get(many[5].record_id) == many[5]
    assert not [s for s in statements if "INDEX" in s] and sum(s.startswith("BEGIN") for s in statements) == 5
    # larger than the 24 indexed: one rebuild again
    last = store.append_many([AuditEvent(kind="task", actor=f"d{i}") for i in range(30)])
    statements.clear()
    assert store.get(last[29].record_id) == last[29]
    store._conn().set_trace_callback(None)  # type: ignore[attr-defined]
    assert sum(s.startswith("BEGIN IMMEDIATE") for s in statements) == 1 and any("DROP INDEX" in s for s in statements)
    every = [*recs, *more, *many, *last]
    assert all(store.get(r.record_id) == r for r in every)
    assert db.execute("SELECT COUNT(*), MAX(seq) FROM audit_ids").fetchone() == (54, 54)


def test_a_failed_rebuild_of_the_id_index_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All or nothing: if the index cannot be built again, the drop and the rows roll back with it, and the look-up
    still answers from the log itself."""
    from flytekitplugins.aios_audit.stores import sqlite as sq

    store = open_store(f"sqlite:///{tmp_path}/a.db")
    first = store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(2)])
    assert store.get(first[0].record_id) == first[0]  # two indexed, by one chunk
    recs = store.append_many([AuditEvent(kind="task", actor=f"b{i}") for i in range(6)])
    monkeypatch.setattr(sq, "IDS_BULK_MIN", 4)

    def no_new_index(action: int, *_: object) -> int:
        return sqlite3.SQLITE_DENY if action == sqlite3.SQLITE_CREATE_INDEX else sqlite3.SQLITE_OK

    store._conn().set_authorizer(no_new_index)  # type: ignore[attr-defined]
    assert store.get(recs[4].record_id) == recs[4]  # answered from the log
    store._conn().set_authorizer(None)  # type: ignore[attr-defined]
    db = sqlite3.connect(tmp_path / "a.db")
    assert db.execute("SELECT seq FROM audit_ids ORDER BY seq").fetchall() == [(1,), (2,)]
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'audit_ids_leaf'").fetchone() == ("audit_ids_leaf",)
    assert store.get(recs[5].record_id) == recs[5]  # and the next look-up indexes them
    assert db.execute("SELECT COUNT(*) FROM audit_ids").fetchone() == (8,)


def test_the_write_ahead_log_is_cut_back_after_a_large_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One large transaction (the id table rebuilt at ten million records wrote 1.5 GB of write-ahead log) must not
    leave the WAL file at that size for the life of the store: once the log restarts it is cut to WAL_SIZE_LIMIT."""
    from flytekitplugins.aios_audit.stores import sqlite as sq

    monkeypatch.setattr(sq, "WAL_SIZE_LIMIT", 64 << 10)
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    store.append_many([AuditEvent(kind="task", actor=f"a{i}", attributes={"pad": "x" * 2000}) for i in range(300)])
    wal = tmp_path / "a.db-wal"
    assert wal.stat().st_size > 512 << 10  # the large transaction
    other = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    assert other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[0] == 0  # every frame copied back
    store.append(AuditEvent(kind="task", actor="b"))  # the next write restarts the log
    assert wal.stat().st_size <= 64 << 10
    from flytekitplugins.aios_audit.verify import verify_store

    assert verify_store(store).ok  # nothing lost by the cut: 301 records, chain intact
    assert store.size() == 301


def test_a_rebuild_rechecks_under_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes that both find a large backlog queue for the write lock; the second must not drop and sort the
    index again once the first has indexed everything (at ten million records, another 15-20 s of writers waiting)."""
    from flytekitplugins.aios_audit.stores import sqlite as sq

    store = open_store(f"sqlite:///{tmp_path}/a.db")
    recs = store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(10)])
    monkeypatch.setattr(sq, "IDS_BULK_MIN", 4)
    other = open_store(f"sqlite:///{tmp_path}/a.db")
    assert other.get(recs[0].record_id) == recs[0]  # the first process rebuilds
    statements: list[str] = []
    conn = store._conn()  # type: ignore[attr-defined]
    conn.set_trace_callback(statements.append)
    assert sq.SQLiteAuditStore._rebuild_ids(conn) == 0  # what the second one runs once it holds the lock
    conn.set_trace_callback(None)
    assert not [s for s in statements if "INDEX" in s or s.startswith("INSERT")], statements
    assert sum(s.startswith("BEGIN IMMEDIATE") for s in statements) == 1
    assert all(store.get(r.record_id) == r for r in recs)


def test_a_short_backlog_is_read_from_the_tail_without_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the default thresholds, look-ups after appends answer from the id table and the log's tail, taking the
    write lock only once more than ``IDS_TAIL_FREE`` records wait, and then for one step of ``IDS_STEP`` records
    (never for the whole backlog), and the records they return are those ``scan`` reads."""
    monkeypatch.setattr(sqlite_store, "IDS_TAIL_READ", 512)
    free, step = sqlite_store.IDS_TAIL_FREE, sqlite_store.IDS_STEP
    assert (free, step) == (8, 16)
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)  # type: ignore[attr-defined]
    made = []
    for i in range(40):
        before = store.ids_backlog()
        made += store.append_many([AuditEvent(kind="task", actor=f"a{i}-{k}") for k in range(10)])
        statements.clear()
        assert store.get_many([made[-1].record_id, made[i].record_id]) == {r.record_id: r for r in (made[-1], made[i])}
        writes = [s for s in statements if s.startswith(("BEGIN", "INSERT"))]
        if before + 10 <= free:
            assert not writes, (i, statements)
            assert store.ids_backlog() == before + 10
        else:  # one step: the oldest ``step`` waiting (or all of them, if fewer)
            assert sum(s.startswith("BEGIN IMMEDIATE") for s in writes) == 1, (i, statements)
            assert store.ids_backlog() == max(0, before + 10 - step)
    store._conn().set_trace_callback(None)  # type: ignore[attr-defined]
    assert store.get_many([r.record_id for r in made]) == {r.record_id: r for r in store.scan()}


def test_a_look_up_indexes_one_step_of_a_longer_backlog_and_reads_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three hundred records waiting (fewer than ``IDS_TAIL_READ``): a look-up indexes the oldest ``IDS_STEP`` (16) in
    one write transaction, in record-id order, and finds records on both sides of the step, and none twice; the id table
    holds exactly the log's first records, so no record can be skipped by the next step."""
    monkeypatch.setattr(sqlite_store, "IDS_TAIL_READ", 512)
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    first = store.append(AuditEvent(kind="task", actor="first"))
    assert store.get(first.record_id) == first  # one waiting: read from the tail, nothing written
    assert store.ids_backlog() == 1
    recs = [first, *store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(299)])]
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)  # type: ignore[attr-defined]
    step = sqlite_store.IDS_STEP
    wanted = [recs[0], recs[step - 1], recs[step], recs[-1]]  # the step's first and last, the tail's first and last
    assert store.get_many([r.record_id for r in wanted]) == {r.record_id: r for r in wanted}
    store._conn().set_trace_callback(None)  # type: ignore[attr-defined]
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert sum(s.startswith("BEGIN IMMEDIATE") for s in statements) == 1 and len(inserts) == 1, statements
    assert "ORDER BY leaf_hash" in inserts[0]
    ids = sqlite3.connect(tmp_path / "a.db").execute("SELECT seq, leaf_hash FROM audit_ids ORDER BY seq").fetchall()
    assert ids == [(r.seq, r.record_id) for r in recs[:step]]
    assert store.ids_backlog() == 300 - step


def test_a_read_only_database_answers_a_backlog_it_cannot_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More than ``IDS_TAIL_FREE`` records waiting in a database that cannot be written: the step fails quietly and the
    look-up reads every waiting record from the log's tail."""
    monkeypatch.setattr(sqlite_store, "IDS_TAIL_READ", 512)
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    recs = store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(100)])
    store.close()
    ro = open_store(f"sqlite:///{tmp_path}/a.db")
    ro._conn().execute("PRAGMA query_only = ON")  # type: ignore[attr-defined]
    assert ro.get_many([recs[0].record_id, recs[99].record_id]) == {r.record_id: r for r in (recs[0], recs[99])}
    assert ro.ids_backlog() == 100


def test_the_write_ahead_log_is_checkpointed_every_250_pages(tmp_path: Path) -> None:
    """Every connection of the store copies the write-ahead log back after 250 pages, not SQLite's default 1000: each
    checkpoint writes back id-index pages wherever they lie in a large log, so four small ones keep a governance call
    within its budget where one large one did not (benchmarks/README.md)."""
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    assert store._conn().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == sqlite_store.WAL_CHECKPOINT_PAGES == 250
    for i in range(120):  # a few pages of write-ahead log each: 400 or more in all, so some commit checkpointed
        store.append(AuditEvent(kind="task", actor=f"a{i}", attributes={"pad": "x" * 3000}))
    frames = sqlite3.connect(tmp_path / "a.db").execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    assert frames <= 260, frames  # at most 250 and the last commit's pages since the last checkpoint


def _indexed_then_waiting(
    tmp_path: Path, indexed: int, waiting: int
) -> tuple[str, AuditStore, list[AuditRecord], list[AuditRecord], AuditStore]:
    """A store with ``indexed`` records in its id table and ``waiting`` appended after: ``(url, writer, the indexed
    records, the waiting ones, a one-shot reader)`` (opened with ``ids_tail_read``, as ``aios lineage trace`` opens
    one)."""
    url = f"sqlite:///{tmp_path}/a.db"
    writer = open_store(url)
    old = writer.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(indexed)])
    assert writer.catch_up_ids()  # type: ignore[attr-defined]
    tail = writer.append_many([AuditEvent(kind="task", actor=f"b{i}") for i in range(waiting)])
    return url, writer, old, tail, open_store(url, ids_tail_read=10_000)


def test_a_one_shot_reader_reads_a_longer_backlog_from_the_tail_without_indexing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store opened with ``ids_tail_read`` (``aios lineage trace`` opens one) answers look-ups by id and by prefix
    over a backlog longer than ``IDS_TAIL_READ`` from the log's tail, writing nothing,
    where the default store indexes the whole backlog first (1.7-3.1 s for ten thousand at ten million records). The
    answers are those of an indexed table; a read-only database answers too."""
    monkeypatch.setattr(sqlite_store, "IDS_TAIL_READ", 512)
    url, writer, old, tail, reader = _indexed_then_waiting(tmp_path, 50, 700)
    assert reader.ids_backlog() == 700
    wanted = [old[3].record_id, tail[0].record_id, tail[699].record_id, "0" * 64]
    assert reader.get_many(wanted) == {r.record_id: r for r in (old[3], tail[0], tail[699])}
    assert reader.ids_backlog() == 700  # read from the tail: nothing indexed
    for rec in (old[7], tail[5], tail[698]):
        assert reader.ids_with_prefix(rec.record_id[:12]) == [rec.record_id]  # type: ignore[attr-defined]
        assert reader.ids_with_prefix(rec.record_id) == [rec.record_id]  # type: ignore[attr-defined]
    every = sorted(r.record_id for r in (*old, *tail))
    assert reader.ids_with_prefix("", 5) == every[:5]  # type: ignore[attr-defined]
    assert reader.ids_with_prefix("", 2000) == every  # type: ignore[attr-defined]
    assert reader.ids_backlog() == 700  # prefixes read the tail too, and write nothing
    assert writer.get(tail[1].record_id) == tail[1]  # the default store: more than 512 waiting, indexes them all
    assert writer.ids_backlog() == 0
    assert writer.ids_with_prefix("", 2000) == every  # type: ignore[attr-defined]
    more = writer.append_many([AuditEvent(kind="task", actor=f"c{i}") for i in range(600)])
    writer.close()
    reader.close()
    ro = open_store(url, ids_tail_read=10_000)
    ro._conn().execute("PRAGMA query_only = ON")  # type: ignore[attr-defined]
    assert ro.get_many([more[0].record_id, old[1].record_id]) == {r.record_id: r for r in (more[0], old[1])}
    assert ro.ids_with_prefix(more[599].record_id[:10]) == [more[599].record_id]  # type: ignore[attr-defined]
    assert ro.ids_backlog() == 600
    small = open_store(url, ids_tail_read=100)  # a backlog above its figure is indexed first, by prefix as by id
    small._conn().execute("PRAGMA query_only = ON")  # type: ignore[attr-defined]
    assert small.ids_with_prefix(more[3].record_id[:10]) == [more[3].record_id]  # type: ignore[attr-defined]


def test_a_one_shot_reader_writes_nothing_and_reads_the_tail_once(tmp_path: Path) -> None:
    """A one-shot reader's look-ups by id take no write transaction (a step of the backlog cost an fsync each, 2-7 ms
    at ten million records) and read the log's tail once, not once a look-up (3-7 ms each for ten thousand records):
    later look-ups use its map of the tail, extended by the records appended since, and read again when the id table
    moved past it. Every answer is the row that carries the id asked."""
    _url, writer, old, tail, reader = _indexed_then_waiting(tmp_path, 20, 300)
    seen: list[str] = []
    reader._conn().set_trace_callback(seen.append)  # type: ignore[attr-defined]
    for rec in (tail[0], old[2], tail[150], tail[299]):
        assert reader.get(rec.record_id) == rec
    assert reader.get("0" * 64) is None
    writes = [q for q in seen if q.split()[0].upper() in ("BEGIN", "INSERT", "UPDATE", "DELETE", "COMMIT")]
    assert writes == []  # the old reader indexed a step of IDS_STEP records a look-up, each its own transaction
    assert reader.ids_backlog() == 300
    tail_reads = [q for q in seen if "FROM audit_log WHERE seq >" in q]
    assert len(tail_reads) == 1, tail_reads  # the old reader scanned the tail at every look-up
    more = writer.append_many([AuditEvent(kind="task", actor=f"c{i}") for i in range(5)])
    assert reader.get_many([more[4].record_id, tail[7].record_id]) == {r.record_id: r for r in (more[4], tail[7])}
    assert len([q for q in seen if "FROM audit_log WHERE seq >" in q]) == 2  # only the five new records read
    assert writer.catch_up_ids()  # type: ignore[attr-defined]  # the id table now past the reader's map
    last = writer.append_many([AuditEvent(kind="task", actor=f"d{i}") for i in range(3)])
    wanted = [last[1].record_id, more[0].record_id, tail[3].record_id, old[0].record_id]
    assert reader.get_many(wanted) == {r.record_id: r for r in (last[1], more[0], tail[3], old[0])}
    assert reader.ids_backlog() == 3
    writer.close()
    reader.close()
