"""PostgreSQL store on the real server: chain, triggers, concurrent writers, tamper detection."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest

from flytekitplugins.aios_audit import AuditEvent, AuditWriteError
from flytekitplugins.aios_audit.stores import open_store
from flytekitplugins.aios_audit.verify import verify_store

pytestmark = pytest.mark.postgres


def test_append_scan_get_and_refusals(pg_url: str) -> None:
    store = open_store(pg_url)
    recs = store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(5)])
    rec = store.append(AuditEvent(kind="action", actor="b", subject="sha256:" + "1" * 64))
    assert [r.seq for r in recs] == [1, 2, 3, 4, 5] and rec.seq == 6
    assert store.size() == 6 and store.get(rec.record_id) == rec
    asked = [rec.record_id, "0" * 64, recs[1].record_id, rec.record_id]
    assert store.get_many(asked) == {rec.record_id: rec, recs[1].record_id: recs[1]} and store.get_many([]) == {}
    assert [r.record_id for r in store.scan(2, 3)] == [recs[1].record_id, recs[2].record_id]
    assert verify_store(store).ok
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for sql in ("UPDATE audit_log SET kind = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(psycopg.errors.RaiseException):
                conn.execute(sql)
        with pytest.raises(psycopg.errors.RaiseException, match="gap or fork"):
            conn.execute(
                "INSERT INTO audit_log SELECT 9, recorded_at, kind, subject, execution, task, entry, 'l', 'p', 'c' "
                "FROM audit_log WHERE seq = 1"
            )
    store.close()


def test_concurrent_threads_never_fork(pg_url: str) -> None:
    store = open_store(pg_url)
    errors: list[Exception] = []

    def work(n: int) -> None:
        try:
            for i in range(15):
                store.append(AuditEvent(kind="task", actor=f"t{n}", subject=str(i)))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = verify_store(store)
    assert result.ok and result.size == 90
    store.close()


def test_tamper_with_triggers_disabled_is_detected(pg_url: str) -> None:
    store = open_store(pg_url)
    for i in range(6):
        store.append(AuditEvent(kind="task", actor=f"a{i}"))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        conn.execute(
            "UPDATE audit_log SET entry = convert_to(replace(convert_from(entry, 'UTF8'), '\"a3\"', '\"zz\"'), 'UTF8') "
            "WHERE seq = 4"
        )
    result = verify_store(store)
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 4, "edited")
    store.close()


def test_bad_url_fails_closed() -> None:
    with pytest.raises(AuditWriteError, match="cannot open the PostgreSQL audit store"):
        open_store("postgresql://nobody@127.0.0.1:1/none")


def test_two_process_verify_keeps_the_parents_session(pg_url: str) -> None:
    """The forked verifier opens its own connection and leaves the parent's session alone."""
    store = open_store(pg_url)
    store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(40)])
    serial = verify_store(store, workers=1)
    parallel = verify_store(store, workers=2, block=4)
    assert serial.ok and parallel.ok and parallel.workers == 2
    assert (parallel.size, parallel.root_hash, parallel.head_hash) == (40, serial.root_hash, serial.head_hash)
    assert store.append(AuditEvent(kind="task", actor="after")).seq == 41  # the parent's connection still works
    assert verify_store(store, workers=2, block=4).ok
    store.close()


def test_scans_hold_one_page_of_the_log_at_a_time(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """libpq reads a query's whole result before handing over a row, so a scan of the log in one query held all of it
    in memory (2 GB at a million records; more than the machine at ten million). Scans are pages of SCAN_PAGE rows:
    no result the client receives is larger, and the rows come out complete and in order."""
    from flytekitplugins.aios_audit.stores import CLAIMS_ATTR
    from flytekitplugins.aios_audit.stores import postgres as pg

    monkeypatch.setattr(pg, "SCAN_PAGE", 4)
    store = open_store(pg_url)
    claims = [{"key": f"k{i}", "holder": "h"} for i in range(3)]
    store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(9)])
    store.append_many([AuditEvent(kind="action", actor="b", attributes={CLAIMS_ATTR: claims[:2]})])
    store.append_many([AuditEvent(kind="action", actor="c", attributes={CLAIMS_ATTR: claims[2:]})])
    sizes: list[int] = []
    execute = psycopg.Cursor.execute

    def counting(self: psycopg.Cursor, *a: object, **k: object) -> psycopg.Cursor:
        out = execute(self, *a, **k)  # type: ignore[arg-type]
        if self.pgresult is not None:
            sizes.append(self.pgresult.ntuples)
        return out

    monkeypatch.setattr(psycopg.Cursor, "execute", counting)
    assert [r[0] for r in store.scan_raw()] == list(range(1, 12))
    assert [r[0] for r in store.scan_sealed(2, 10)] == list(range(2, 11))
    assert [r[0] for r in store.scan_hashes(5)] == list(range(5, 12))
    assert [r.seq for r in store.scan(1, 8)] == list(range(1, 9))
    assert list(store.scan_claims()) == [("k0", "h", 10), ("k1", "h", 10), ("k2", "h", 11)]
    assert list(store.scan_claims(10)) == [("k2", "h", 11)]
    with psycopg.connect(pg_url, autocommit=True) as conn:  # a row beyond the log is scanned all the same
        conn.execute("INSERT INTO audit_claims VALUES ('k9', 'h', 99)")
    assert list(store.scan_claims(10)) == [("k2", "h", 11), ("k9", "h", 99)]
    assert max(sizes) == 4 and len(sizes) >= 12, sizes  # every scan paged (11 records: 4 + 4 + 3, ...)
    store.append(AuditEvent(kind="task", actor="late"))
    rows = store.scan_raw()
    first = next(rows)
    store.append(AuditEvent(kind="task", actor="later"))  # appended while the scan runs: not in it
    assert [first[0], *(r[0] for r in rows)] == list(range(1, 13))
    assert verify_store(store).ok
    store.close()


def test_iter_sql_fetches_through_a_server_side_cursor(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``iter_sql`` (the projection checks, the claims search after a checkpoint) keeps the rows on the server and
    fetches them a page at a time, on a connection of its own: the store answers other queries meanwhile."""
    from flytekitplugins.aios_audit.stores import postgres as pg

    monkeypatch.setattr(pg, "SCAN_PAGE", 3)
    # this test's sessions by their own application name: the server's other sessions (another test's scans, a
    # benchmark's writers) neither pass the checks below nor keep them waiting
    tag = f"aios_test_{uuid.uuid4().hex[:10]}"
    store = open_store(f"{pg_url}&application_name={tag}")
    store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(8)])
    rows = store.iter_sql("SELECT seq FROM audit_log WHERE seq > ? ORDER BY seq", (1,))
    assert next(rows) == (2,)
    assert store.size() == 8  # the store's own connection is free
    with psycopg.connect(pg_url, autocommit=True) as conn:
        fetching = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE query LIKE 'FETCH FORWARD 3 FROM%%' AND application_name = %s",
            (tag,),
        ).fetchall()
    assert fetching, "no session fetching pages of a server-side cursor"
    assert [r[0] for r in rows] == list(range(3, 9))
    partial = store.iter_sql("SELECT seq FROM audit_log ORDER BY seq")
    assert next(partial) == (1,)
    mine = "SELECT pid FROM pg_stat_activity WHERE query LIKE '%%aios_iter_sql%%' AND application_name = %s"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        idle = conn.execute(mine + " AND state LIKE 'idle in transaction%%'", (tag,)).fetchall()
        open_cursors = {r[0] for r in idle}
    assert open_cursors, "the abandoned scan's session was not found"
    partial.close()  # abandoned: its connection is closed, nothing stays open
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for _ in range(50):  # the server ends the backend as the socket closes; give it a moment under load
            still = open_cursors & {r[0] for r in conn.execute(mine, (tag,)).fetchall()}
            if not still:
                break
            time.sleep(0.1)
    assert not still
    store.close()
