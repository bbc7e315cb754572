"""SQLite's lineage parent index, ``audit_lineage_parents``, written a batch at a time instead of with every append.

The lineage table's own ``(parent, seq)`` index was 2.75 of the 5.95 pages of write-ahead log a single append wrote
(its execution's and its principal's index pages again each time, and its inputs'), before the append's ``fsync``
(benchmarks/README.md). Now writers copy the parent rows once
:data:`~flytekitplugins.aios_audit.stores.sqlite_parents.BATCH` records are waiting; readers join the table's rows to
the lineage rows they name and read the lineage table's tail by ``seq``; ``aios audit verify`` checks every row.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit import projections_show as ps
from flytekitplugins.aios_audit.edge_store import StoreEdges, execution_keys
from flytekitplugins.aios_audit.stores import open_store
from flytekitplugins.aios_audit.stores import sqlite as sq
from flytekitplugins.aios_audit.stores import sqlite_parents as parents
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.context import ExecutionRef

RUNS = [ExecutionRef(project="p", domain="d", name=f"run-{i}", task_name="tasks.t.step") for i in range(3)]
OLD_INDEX_SQL = f"CREATE INDEX {parents.OLD_INDEX} ON audit_proj_lineage(parent, seq) WHERE parent <> ''"
"""What ``projections.schema`` made on SQLite before the table."""


def _event(i: int, earlier: list[str], kinds: tuple[str, ...] = ()) -> AuditEvent:
    """A record of one of three executions, with inputs some records share and, every third, an earlier record
    as its parent (lineage rows naming hubs, shared digests and record ids); of ``kinds`` in turn (default: a task,
    a policy decision and an approval request)."""
    kinds = kinds or ("task", "policy_decision", "approval_request")
    return AuditEvent(
        kind=kinds[i % len(kinds)],
        actor="service:pipeline",
        execution=RUNS[i % 3] if i % 7 else None,
        inputs={"doc": f"sha256:{i % 11:064x}", "own": f"sha256:{1000 + i:064x}"},
        parents=[earlier[-3]] if i % 3 == 0 and len(earlier) >= 3 else [],
        attributes={"execution": RUNS[(i + 1) % 3].execution_key} if i % 5 == 1 else {},
    )


def _append(store: Any, n: int, *, batch: int = 1, kinds: tuple[str, ...] = ()) -> None:
    ids = [r.record_id for r in store.scan()]
    start = len(ids)
    i = start
    while i < start + n:
        events = [_event(j, ids, kinds) for j in range(i, min(i + batch, start + n))]
        ids += [r.record_id for r in store.append_many(events)]
        i += len(events)


def _answers(store: Any) -> dict[str, Any]:
    """What every lineage reader that selects by parent says of this store."""
    edges = StoreEdges(store)
    nodes = sorted({str(p) for (p,) in store.read_sql("SELECT DISTINCT parent FROM audit_proj_lineage")} - {""})
    out: dict[str, Any] = {n: edges.children(n) for n in nodes}
    out["keys"] = execution_keys(store)
    for run in RUNS:
        out[run.name] = edges.execution_records(run.name)
        out[run.execution_key] = edges.execution_records(run.execution_key)
        for limit in (1, 7, 1000):
            f = ps.ShowFilter(execution=run.name)
            out[f"show {run.name} {limit}"] = [r.seq for r in ps.select_records(store, f, limit)]
    for pattern in ("sha256:%", "sha256:000000000000000000000000000000000000000000000000000000000000000%", "x"):
        out[pattern] = edges.nodes_like(pattern)
    return out


def _reference(store: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """:func:`_answers` read from the lineage table alone (its rows by parent, scanned)."""
    with monkeypatch.context() as m:
        m.setattr(type(store), "lineage_parents", lambda self: False)
        return _answers(store)


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def _verify() -> tuple[int, dict[str, Any], str]:
    """``aios audit verify --json``: its exit code, its document and its whole output."""
    code, out = _run("audit", "verify", "--json")
    return code, json.loads(out.strip().splitlines()[-1]), out


def test_parent_rows_wait_for_a_batch_and_every_reader_answers_as_the_lineage_table(
    aios_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No parent row until a batch is waiting; then the batch's rows and a mark. At every step (records all in the
    tail, indexed and tail mixed, all indexed) each reader by parent (children, an execution's records by key and by
    name, the executions' keys, nodes by pattern, ``audit show --execution``) answers exactly what the lineage table
    says, and the lineage table has no parent index of its own."""
    store = open_store(f"sqlite:///{aios_env}/audit.db")
    names = {n for (n,) in store.read_sql("SELECT name FROM sqlite_master")}
    assert parents.TABLE in names and parents.OLD_INDEX not in names
    assert store.lineage_parents()  # type: ignore[attr-defined]
    steps = [(40, 1), (parents.BATCH - 41, 1), (1, 1), (300, 7), (2 * parents.CHUNK + 5, 1000)]
    for n, batch in steps:
        _append(store, n, batch=batch)
        size, upto = store.size(), parents.upto(store._conn())  # type: ignore[attr-defined]
        assert (upto == 0) == (size < parents.BATCH) and 0 <= size - upto < parents.BATCH, (size, upto)
        want = _reference(store, monkeypatch)
        assert _answers(store) == want, (size, upto)
        assert any(want[f"show {r.name} 1000"] for r in RUNS) and want["keys"] == [r.execution_key for r in RUNS]
    rows = store.read_sql(f"SELECT count(*) FROM {parents.TABLE} WHERE parent <> '' AND seq <= ?", [upto])[0][0]
    lineage = store.read_sql("SELECT count(*) FROM audit_proj_lineage WHERE parent <> '' AND seq <= ?", [upto])[0][0]
    assert rows == lineage > upto  # every parent row of the records it covers, no more
    past = store.read_sql(  # past the mark: the approval requests' rows only, written with them (parents.write_now)
        f"SELECT DISTINCT l.kind FROM {parents.TABLE} p JOIN audit_log l ON l.seq = p.seq WHERE p.seq > ?", [upto]
    )
    assert past in ([], [("approval_request",)]), past
    assert store.parents_problems(extra=True) == []  # type: ignore[attr-defined]
    assert _run("audit", "verify")[0] == 0
    store.close()


def _frames(db: Path) -> dict[str, int]:
    """Frames of the write-ahead log by the table or index whose page each holds."""
    wal = (db.parent / (db.name + "-wal")).read_bytes()
    size = struct.unpack(">I", wal[8:12])[0]
    pages = [struct.unpack(">I", wal[o : o + 4])[0] for o in range(32, len(wal) - 23, 24 + size)]
    with sqlite3.connect(db) as ro:
        names = {int(p): str(n) for n, p in ro.execute("SELECT name, pageno FROM dbstat")}
    out: dict[str, int] = {}
    for p in pages:
        out[names.get(p, "")] = out.get(names.get(p, ""), 0) + 1
    return out


def test_a_single_append_writes_no_page_of_a_parent_index(aios_env: Path) -> None:
    """Between batches a single append's commit writes the log's and the lineage table's pages, and none of a parent
    index: its hubs' pages are written once a batch."""
    db = aios_env / "audit.db"
    store = open_store(f"sqlite:///{db}")
    _append(store, parents.BATCH + 10)
    conn = store._conn()  # type: ignore[attr-defined]
    upto = parents.upto(conn)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    _append(store, 100, kinds=("task", "policy_decision"))  # records 267..366: no batch is due before 512
    frames = _frames(db)
    assert frames.get("audit_proj_lineage", 0) >= 100 and frames.get("audit_log", 0) >= 100, frames
    assert not [n for n in frames if n == parents.TABLE or n.endswith("_parent_seq")], frames
    waiting = store.size()
    _append(store, 3, kinds=("approval_request",))  # an approval request's rows are written with it (write_now)
    rows = store.read_sql(f"SELECT parent, seq, pos FROM {parents.TABLE} WHERE seq > ? ORDER BY 1, 2, 3", [upto])
    want = store.read_sql(  # past the mark: the approval requests' parent rows, and none of the waiting records'
        "SELECT p.parent, p.seq, p.pos FROM audit_proj_lineage p JOIN audit_log l ON l.seq = p.seq "
        "WHERE p.parent <> '' AND p.seq > ? AND l.kind = 'approval_request' ORDER BY 1, 2, 3",
        [upto],
    )
    mine = [r for r in rows if r[1] > waiting]
    assert rows == want and len(mine) >= 3, (rows, want)
    # Each row's insert writes its leaf page; one that overflows the leaf makes SQLite rebalance it with at most two
    # siblings (a fourth page when they do not fit) and rewrite their parent: at most 5 pages a row, and no page of
    # the rows of the records still waiting for their batch. (The count varies from run to run with where the
    # random record ids fall: 13, 16 or 19 frames for the same 10 rows.)
    assert 0 < _frames(db)[parents.TABLE] <= 5 * len(mine), (_frames(db), len(mine))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _append(store, parents.BATCH, kinds=("task", "policy_decision"))  # one batch copied: its rows share pages
    assert 0 < _frames(db)[parents.TABLE] < parents.BATCH // 4
    store.close()


def _to_old(db: Path) -> None:
    """The store as a version before the table left it: the lineage table's own parent index, no table."""
    with sqlite3.connect(db) as c:
        c.execute(f"DROP TABLE {parents.TABLE}")
        c.execute(OLD_INDEX_SQL)


def test_an_old_store_gets_the_table_at_open_or_from_rebuild_projections_when_large(
    aios_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store written before the table: at its first open while small, the table is filled and the lineage table's
    own index dropped; a larger one is opened as it was (its writers keep that index, readers read it) until ``aios
    audit rebuild-projections`` builds the table. The answers are the same throughout."""
    db = aios_env / "audit.db"
    store = open_store(f"sqlite:///{db}")
    _append(store, 700, batch=50)
    want = _answers(store)
    store.close()
    _to_old(db)
    store = open_store(f"sqlite:///{db}")  # small: upgraded at open
    names = {n for (n,) in store.read_sql("SELECT name FROM sqlite_master")}
    assert parents.TABLE in names and parents.OLD_INDEX not in names and store.lineage_parents()  # type: ignore[attr-defined]
    assert parents.upto(store._conn()) == 700 and _answers(store) == want  # type: ignore[attr-defined]
    store.close()
    _to_old(db)
    monkeypatch.setattr(sq, "OPEN_INDEX_MAX", 100)
    store = open_store(f"sqlite:///{db}")  # large: opened as it was
    assert not store.lineage_parents() and parents.TABLE in store.missing_indexes()  # type: ignore[attr-defined]
    assert _answers(store) == want
    _append(store, 20)
    assert store.has_index(parents.OLD_INDEX) and not store.has_index(parents.TABLE)  # type: ignore[attr-defined]
    want = _reference(store, monkeypatch)
    assert _answers(store) == want
    code, out = _run("audit", "rebuild-projections")
    assert code == 0 and parents.TABLE in out, out
    assert store.lineage_parents() and parents.TABLE not in store.missing_indexes()  # type: ignore[attr-defined]
    assert _answers(store) == want and _run("audit", "verify")[0] == 0
    store.close()


def test_lineage_rows_rebuilt_for_old_records_bring_their_parent_rows(
    aios_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log older than its lineage rows: the table marks its records at once (it has no rows of theirs to copy);
    the rebuild that writes their lineage rows writes their parent rows with them, so none is hidden."""
    db = aios_env / "audit.db"
    store = open_store(f"sqlite:///{db}")
    _append(store, 600, batch=100)
    store.close()
    with sqlite3.connect(db) as c:  # as a version before the lineage projection left it
        for t in ("audit_proj_lineage", "audit_proj_lineage_state", parents.TABLE):
            c.execute(f"DROP TABLE {t}")
    store = open_store(f"sqlite:///{db}")
    assert parents.upto(store._conn()) == 600  # type: ignore[attr-defined]
    assert store.read_sql(f"SELECT count(*) FROM {parents.TABLE} WHERE parent <> ''")[0][0] == 0
    _append(store, 300)  # new records bring their own rows
    code, out = _run("audit", "rebuild-projections")
    assert code == 0, out
    assert _answers(store) == _reference(store, monkeypatch)
    upto = parents.upto(store._conn())  # type: ignore[attr-defined]
    rows = store.read_sql(f"SELECT count(*) FROM {parents.TABLE} WHERE parent <> '' AND seq <= ?", [upto])[0][0]
    assert (
        rows == store.read_sql("SELECT count(*) FROM audit_proj_lineage WHERE parent <> '' AND seq <= ?", [upto])[0][0]
    )
    assert _run("audit", "verify")[0] == 0
    store.close()


def test_verify_reports_a_parent_row_missing_changed_forged_or_beyond_the_log(aios_env: Path, tmp_path: Path) -> None:
    """A store writer hides a record from its parent (deletes its parent row) or relabels the row (another
    relation), forges a row under another parent for a lineage row, or adds a mark beyond the log (so that the
    newest records look indexed and are never read from the tail). The forged row changes no answer (a row counts
    only where its lineage row says the same); the full walk names all four, the walk from a checkpoint those
    after it, and ``rebuild-projections --full`` repairs the table."""
    db = aios_env / "audit.db"
    store = open_store(f"sqlite:///{db}")
    _append(store, parents.BATCH, batch=64)
    cp = tmp_path / "cp"
    assert _run("audit", "checkpoint", "--out", str(cp))[0] == 0
    _append(store, parents.BATCH, batch=64)
    assert parents.upto(store._conn()) == 2 * parents.BATCH  # type: ignore[attr-defined]
    assert _run("audit", "verify")[0] == 0 and _run("audit", "verify", "--checkpoint", str(cp))[0] == 0
    doc_10 = f"sha256:{10 % 11:064x}"
    edges = StoreEdges(store)
    children = [seq for _c, _r, seq in edges.children(doc_10)]
    assert 11 in children and 275 in children  # records 11 and 275 read document 10
    with sqlite3.connect(db, isolation_level=None) as c:
        c.execute(f"DROP TRIGGER {parents.TABLE}_no_update")
        c.execute(f"DROP TRIGGER {parents.TABLE}_no_delete")
        c.execute(f"DELETE FROM {parents.TABLE} WHERE parent = ? AND seq IN (11, 275)", [doc_10])
        c.execute(
            f"UPDATE {parents.TABLE} SET rel = 'input:other' WHERE seq = 300 AND parent = ?",
            [f"sha256:{299 % 11:064x}"],
        )
        c.execute(f"INSERT INTO {parents.TABLE} SELECT 'sha256:forged', seq, pos, rel FROM audit_proj_lineage "
                  "WHERE seq = 301 AND parent <> '' LIMIT 1")  # fmt: skip
        c.execute(f"INSERT INTO {parents.TABLE} VALUES ('', 5000, -1, '')")
    hidden = [seq for _c, _r, seq in StoreEdges(store).children(doc_10)]
    assert 11 not in hidden and 275 not in hidden  # what the deletion does to the lineage walk
    assert StoreEdges(store).children("sha256:forged") == []  # the forged row names nothing
    code, doc, out = _verify()
    assert code == 1 and not doc["ok"], out
    found = [p.split(":")[0] for p in doc["projection_problems"] if "audit_lineage_parents" in p]
    assert found == [
        "projection_missing in audit_lineage_parents at seq 11",
        "projection_missing in audit_lineage_parents at seq 275",
        "projection_changed in audit_lineage_parents at seq 300",
        "projection_extra in audit_lineage_parents at seq 301",
        "projection_extra in audit_lineage_parents at seq 5000",
    ], doc["projection_problems"]
    code, out = _run("audit", "verify", "--checkpoint", str(cp))
    lines = [line for line in out.splitlines() if line.startswith("FAILED: projection")]
    assert code == 1 and len(lines) == 3, out  # the walk from it: seq 11 is before it, the forged row a full read's
    assert "at seq 275" in lines[0] and "at seq 300" in lines[1] and "at seq 5000" in lines[2], out
    code, out = _run("audit", "rebuild-projections", "--full")
    assert code == 0, out
    assert _run("audit", "verify")[0] == 0
    assert 11 in [seq for _c, _r, seq in StoreEdges(store).children(doc_10)]
    store.close()


def test_the_full_walk_names_a_forged_row_alone_and_one_beside_a_deleted_row(aios_env: Path) -> None:
    """The full walk reads the table row by row for rows no lineage row derives only when its count says there can
    be one (more rows than the lineage rows it covers) or a row was found missing: a forged row alone makes the
    counts differ, and a forged row beside a deleted one (equal counts) is named too."""
    db = aios_env / "audit.db"
    store = open_store(f"sqlite:///{db}")
    _append(store, parents.BATCH + 5, batch=50)
    assert store.parents_problems(extra=True) == []  # type: ignore[attr-defined]
    with sqlite3.connect(db, isolation_level=None) as c:
        c.execute(f"DROP TRIGGER {parents.TABLE}_no_delete")
        c.execute(f"INSERT INTO {parents.TABLE} VALUES ('sha256:forged', 40, 0, 'input:doc')")

    def named() -> list[str]:
        code, doc, out = _verify()
        assert code == 1 and not doc["ok"], out
        return [p.split(":")[0] for p in doc["projection_problems"]]

    assert named() == ["projection_extra in audit_lineage_parents at seq 40"]
    with sqlite3.connect(db, isolation_level=None) as c:  # one deleted beside it: the counts are equal again
        c.execute(f"DROP TRIGGER IF EXISTS {parents.TABLE}_no_delete")  # (an open recreates the table's triggers)
        c.execute(f"DELETE FROM {parents.TABLE} WHERE seq = 7 AND parent LIKE 'sha256:%' AND pos = 1")
    assert store.read_sql(f"SELECT count(*) FROM {parents.TABLE} WHERE parent <> ''") == store.read_sql(
        "SELECT count(*) FROM audit_proj_lineage WHERE parent <> '' AND seq <= ?",
        [parents.upto(store._conn())],  # type: ignore[attr-defined]
    )
    assert named() == [
        "projection_missing in audit_lineage_parents at seq 7",
        "projection_extra in audit_lineage_parents at seq 40",
    ]
    store.close()


def _parent_problems() -> list[tuple[str, int]]:
    code, doc, out = _verify()
    assert code == 1 and not doc["ok"], out
    found = [p.split(":")[0] for p in doc["projection_problems"] if f"in {parents.TABLE} at" in p]
    return [(f.split()[0], int(f.split()[-1])) for f in found]


def test_forged_rows_under_an_execution_hide_nothing_and_a_row_past_the_mark_stops_no_append(aios_env: Path) -> None:
    """Rows forged under an execution, each naming a lineage row of another execution, used to fill a page of the
    parent table's rows before the join dropped them: the page came back short and ``audit show --execution``
    stopped there (a review reproduced 206 of 257 records hidden). The join now comes before the limit. A row
    written past the newest mark (a copy of a tail record's row) made the next batch's copy fail, and with it every
    append; it is now left alone there, and the full walk names both kinds."""
    db = aios_env / "audit.db"
    store = open_store(f"sqlite:///{db}")
    _append(store, 900, batch=100)
    assert parents.upto(store._conn()) == 900  # type: ignore[attr-defined]
    run = RUNS[0]
    want = {n: [r.seq for r in ps.select_records(store, ps.ShowFilter(execution=run.name), n)] for n in (1, 7, 1000)}
    records = StoreEdges(store).execution_records(run.execution_key)
    assert len(want[1000]) > 100
    with sqlite3.connect(db, isolation_level=None) as c:  # the newest rows of the other executions, under this one
        c.execute(
            f"INSERT INTO {parents.TABLE} SELECT ?, seq, pos, rel FROM audit_proj_lineage WHERE rel = 'in_execution' "
            "AND parent <> ? ORDER BY seq DESC LIMIT 40",
            ["execution:" + run.execution_key] * 2,
        )
    for n, seqs in want.items():
        assert [r.seq for r in ps.select_records(store, ps.ShowFilter(execution=run.name), n)] == seqs, n
    assert StoreEdges(store).execution_records(run.execution_key) == records
    forged = _parent_problems()
    assert len(forged) == 40 and {code for code, _ in forged} == {"projection_extra"}, forged
    _append(store, 100, kinds=("task", "policy_decision"))  # records 901..1000: the tail
    row = store.read_sql("SELECT parent, seq, pos, rel FROM audit_proj_lineage WHERE seq = 950 AND parent <> ''")[0]
    with sqlite3.connect(db, isolation_level=None) as c:  # a copy of a tail record's row, and a row it does not derive
        c.execute(f"INSERT INTO {parents.TABLE} VALUES (?,?,?,?)", row)
        c.execute(f"INSERT INTO {parents.TABLE} VALUES (?,?,?,?)", ("sha256:forged", 960, 0, "input"))
    problems = _parent_problems()
    assert ("projection_extra", 960) in problems and ("projection_extra", 950) not in problems  # 950: as derived
    _append(store, parents.BATCH)  # the copy of 901.. goes past those rows
    assert parents.upto(store._conn()) > 960  # type: ignore[attr-defined]
    problems = _parent_problems()
    assert ("projection_extra", 950) not in problems and ("projection_extra", 960) in problems
    assert _run("audit", "rebuild-projections", "--full")[0] == 0 and _run("audit", "verify")[0] == 0
    store.close()


def test_a_table_replaced_by_hand_is_not_read_and_verify_says_so(aios_env: Path) -> None:
    """Someone with write access replaces the table with one without its key or its types, holding a mark whose
    seq is text (text sorts above every number: every record looked covered, and the readers of the mark crashed on
    it) and rows repeated (each used up a place in a page). Readers then read the lineage table itself, appends go
    on, and ``aios audit verify`` reports the table instead of failing with a traceback (an open leaves it as it is);
    ``rebuild-projections`` builds it again. The table as created refuses such a mark."""
    db = aios_env / "audit.db"
    store = open_store(f"sqlite:///{db}")
    _append(store, 600, batch=100)
    want = _answers(store)
    with sqlite3.connect(db, isolation_level=None) as c:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            c.execute(f"INSERT INTO {parents.TABLE} VALUES ('', 'x', -1, '')")
        c.execute(f"ALTER TABLE {parents.TABLE} RENAME TO kept")
        c.execute(f"CREATE TABLE {parents.TABLE} (parent TEXT, seq, pos INTEGER, rel TEXT)")
        c.execute(f"INSERT INTO {parents.TABLE} SELECT * FROM kept")
        c.execute(f"INSERT INTO {parents.TABLE} SELECT * FROM kept WHERE parent LIKE 'execution:%'")
        c.execute(f"INSERT INTO {parents.TABLE} VALUES ('', 'x', -1, '')")
    assert not store.lineage_parents()  # type: ignore[attr-defined]
    assert _answers(store) == want
    _append(store, parents.BATCH)  # appends go on (nothing is copied into a table nothing reads)
    code, doc, out = _verify()
    assert code == 1 and "Traceback" not in out, out
    assert [p.split(":")[0] for p in doc["projection_problems"]] == [
        f"projection_changed in {parents.TABLE} at seq 0"
    ], doc
    assert parents.TABLE in store.missing_indexes()  # type: ignore[attr-defined]  # an open repaired nothing
    code, out = _run("audit", "rebuild-projections")  # drops it and builds it again
    assert code == 0 and parents.TABLE in out, out
    assert _run("audit", "verify")[0] == 0 and store.lineage_parents()  # type: ignore[attr-defined]
    store.close()


def test_a_view_or_a_definition_rewritten_in_place_is_reported_not_a_crash(aios_env: Path) -> None:
    """A second review: a view made in the table's place passed verify and stopped every open (its triggers could not
    be made), and a table without its checks whose ``sqlite_master`` text was set to the pack's own (``PRAGMA
    writable_schema``) held a text mark on which verify crashed. The view is reported and replaced; the mark is
    reported with what it holds."""
    db = aios_env / "audit.db"
    store = open_store(f"sqlite:///{db}")
    _append(store, 300, batch=100)
    want = _answers(store)
    store.close()
    with sqlite3.connect(db, isolation_level=None) as c:
        c.execute(f"DROP TABLE {parents.TABLE}")
        c.execute(f"CREATE VIEW {parents.TABLE} AS SELECT parent, seq, pos, rel FROM audit_proj_lineage")
    store = open_store(f"sqlite:///{db}")  # opens (nothing is made on a view)
    assert not store.lineage_parents() and _answers(store) == want  # type: ignore[attr-defined]
    code, doc, out = _verify()
    assert code == 1 and [p.split(":")[0] for p in doc["projection_problems"]] == [
        f"projection_changed in {parents.TABLE} at seq 0"
    ], out
    assert _run("audit", "rebuild-projections")[0] == 0 and _run("audit", "verify")[0] == 0
    assert store.lineage_parents()  # type: ignore[attr-defined]
    store.close()
    with sqlite3.connect(db, isolation_level=None) as c:  # a table without its checks, its text made the pack's
        c.execute(f"DROP TABLE {parents.TABLE}")
        c.execute(f"CREATE TABLE {parents.TABLE} (parent TEXT, seq, pos, rel TEXT, PRIMARY KEY (parent, seq, pos))")
        c.execute(
            f"INSERT INTO {parents.TABLE} SELECT parent, seq, pos, rel FROM audit_proj_lineage WHERE parent <> ''"
        )
        c.execute(f"INSERT INTO {parents.TABLE} VALUES ('', 300, -1, ''), ('', 'x', -1, '')")
        c.execute("PRAGMA writable_schema = ON")
        c.execute("UPDATE sqlite_master SET sql = ? WHERE name = ?", (parents.definition(), parents.TABLE))
    store = open_store(f"sqlite:///{db}")
    assert parents.defined(store._conn()) and parents.upto(store._conn()) == 300  # type: ignore[attr-defined]
    code, doc, out = _verify()
    assert code == 1 and "Traceback" not in out and "error" not in doc, out
    assert "a mark 'x' beyond the log" in out, out
    store.close()
