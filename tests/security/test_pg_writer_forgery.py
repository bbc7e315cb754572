"""Review R2 F1/F2: a writer role (docs/audit.md's grants) may execute the SECURITY DEFINER integrators, whose batch
time ``p_when`` was spliced raw into every entry they sealed, other writers' included: ``"<time>","event":{forged}``
sealed an honest writer's record with a second ``event`` key every reader takes, and ``aios audit verify`` said OK;
a plain back-dated time sealed it a year back. The routines now refuse any batch time that is not one quoted UTC time
near the server's clock, and verification reports an entry not framed as the stores seal it."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit.records import _json_time, record_from_entry
from flytekitplugins.aios_audit.stores import open_store
from flytekitplugins.aios_audit.stores.pg_integrate import LOCK, WHEN_SKEW_S
from flytekitplugins.aios_audit.verify import verify_store
from flytekitplugins.aios_core.context import ExecutionRef

pytestmark = pytest.mark.postgres
EX = ExecutionRef(project="aios", domain="production", execution_id="run-7", task_name="post", node_id="n0")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "audit.md"


def _as(url: str, role: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.rpartition('@')[2]}"))


def doc_grants(schema: str, writer: str, auditor: str) -> list[str]:
    """docs/audit.md 'Database roles', as written, for ``schema`` and these roles."""
    block = DOCS.read_text(encoding="utf-8").split("### Database roles", 1)[1].split("```sql\n", 1)[1].split("```")[0]
    lines = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("--")]
    sql = "\n".join(lines).replace("aios_writer", writer).replace("aios_auditor", auditor)
    sql = sql.replace("SCHEMA aios ", f'SCHEMA "{schema}" ').replace("aios.", f'"{schema}".')
    return [stmt.strip() for stmt in sql.split(";") if stmt.strip()]


@pytest.fixture
def writer_url(pg_url: str) -> Iterator[str]:
    """A role holding exactly the documented writer grants on a schema the owner opened (roles dropped after)."""
    open_store(pg_url).close()
    writer, auditor = (f"aios_r2_{uuid.uuid4().hex[:8]}{s}" for s in ("_w", "_a"))
    schema = pg_url.rpartition("search_path%3D")[2]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for r in (writer, auditor):
            conn.execute(f"CREATE ROLE {r} LOGIN")
        for stmt in doc_grants(schema, writer, auditor):
            conn.execute(stmt)
    try:
        yield _as(pg_url, writer)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            for r in (writer, auditor):
                conn.execute(f"DROP OWNED BY {r}")
                conn.execute(f"DROP ROLE {r}")


def _forged_when(event: dict[str, Any], now: dt.datetime) -> bytes:
    forged = dict(event, actor="user:mallory", status="succeeded", attributes={"amount": 1})
    return _json_time(now) + b',"event":' + json.dumps(forged, sort_keys=True, separators=(",", ":")).encode()


def _honest(store: Any) -> AuditEvent:
    return AuditEvent(
        kind="task",
        actor="service:pipeline",
        subject="invoice-42",
        status="failed",
        execution=EX,
        attributes={"amount": 95000},
    )


@contextlib.contextmanager
def _holding_the_lock(url: str, honest: Any) -> Iterator[tuple[Any, bytes, dict[str, Any]]]:
    """``(the attacker's connection, the honest writer's staged event bytes, its result)``: the attacker (the writer
    grants) holds the log's lock while an honest writer's append, in a thread, stages its event and waits; on exit the
    attacker's connection is closed (so the honest writer integrates, unless the attacker did) and the thread joined."""
    att = psycopg.connect(url)
    att.execute(f"SELECT pg_advisory_xact_lock({LOCK})")
    res: dict[str, Any] = {}
    t = threading.Thread(target=lambda: res.update(rec=honest.append(_honest(honest))))
    t.start()
    try:
        deadline = time.monotonic() + 30
        while (row := att.execute("SELECT events[1] FROM audit_staged ORDER BY id LIMIT 1").fetchone()) is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        yield att, bytes(row[0]), res
    finally:
        att.close()
        t.join(70)


@pytest.mark.parametrize("how", ["inject", "back-dated", "far-future"])
def test_a_writer_cannot_seal_another_writers_record_with_its_own_batch_time(writer_url: str, how: str) -> None:
    honest = open_store(writer_url)
    honest.append(AuditEvent(kind="task", actor="service:pipeline", subject="before", execution=EX))
    with _holding_the_lock(writer_url, honest) as (att, staged, res):
        now = dt.datetime.now(dt.UTC)
        if how == "back-dated":
            now -= dt.timedelta(days=330)
        elif how == "far-future":
            now += dt.timedelta(seconds=2 * WHEN_SKEW_S)
        when = _forged_when(json.loads(staged), now) if how == "inject" else _json_time(now)
        with pytest.raises(psycopg.errors.InvalidDatetimeFormat, match="refused batch time"):
            att.execute("SELECT aios_audit_integrate(%s, %b, 4096, NULL)", (now, when))
        att.rollback()
    rec = res["rec"]  # the honest writer's own integrator sealed it, with its own time
    assert (rec.event.actor, rec.event.status, rec.event.attributes) == (
        "service:pipeline",
        "failed",
        {"amount": 95000},
    )
    assert abs((rec.recorded_at - dt.datetime.now(dt.UTC)).total_seconds()) < 120
    entry, leaf, prev, chain = (
        psycopg.connect(writer_url)
        .execute("SELECT entry, leaf_hash, prev_hash, chain_hash FROM audit_log WHERE seq = %s", (rec.seq,))
        .fetchone()
    )
    assert bytes(entry).count(b'"event":') == 1
    assert record_from_entry(bytes(entry), leaf, prev, chain).event.actor == "service:pipeline"
    assert verify_store(honest, workers=1).ok
    honest.close()


def test_the_append_procedure_refuses_a_batch_time_that_is_not_its_time(writer_url: str) -> None:
    now = dt.datetime.now(dt.UTC)
    ev = _honest(None).model_dump_json().encode()
    with psycopg.connect(writer_url, autocommit=True) as att:
        for when in (_json_time(now) + b' ,"x":1', _json_time(now - dt.timedelta(seconds=1)), b'"' + b"9" * 30 + b'"'):
            with pytest.raises(psycopg.errors.InvalidDatetimeFormat, match="refused batch time"):
                att.execute(
                    "CALL aios_audit_append(ARRAY[%b]::bytea[], '{}'::text[], '{}'::text[], %s, %b, 4096, NULL)",
                    (ev, now, when),
                )
        assert att.execute("SELECT count(*) FROM audit_staged").fetchone()[0] == 0  # nothing was staged


def test_done_refuses_a_forged_batch_time_on_the_bulk_path(writer_url: str) -> None:
    """r3: the attacker writes the log rows for an honest writer's acknowledged staged row itself, with a time that
    injects a second event, and has aios_audit_done consume the row."""
    from flytekitplugins.aios_audit import projections
    from flytekitplugins.aios_audit.stores.pg_integrate import _columns

    honest = open_store(writer_url)
    honest.append(AuditEvent(kind="task", actor="service:pipeline", subject="before", execution=EX))
    att = psycopg.connect(writer_url)
    att.execute(f"SELECT pg_advisory_xact_lock({LOCK})")
    ack = honest.stage_many([_honest(honest)])
    sid, blob = att.execute("SELECT id, events[1] FROM audit_staged ORDER BY id").fetchone()
    now = dt.datetime.now(dt.UTC)
    when = _forged_when(json.loads(bytes(blob)), now)
    head, prev = att.execute("SELECT seq, chain_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    entry = b'{"event":%b,"recorded_at":%b,"seq":%d}' % (bytes(blob), when, head + 1)
    leaf = hashlib.sha256(b"\x00" + entry).digest()
    row = (
        head + 1,
        now,
        *_columns(json.loads(bytes(blob))),
        entry,
        leaf.hex(),
        prev,
        hashlib.sha256(bytes.fromhex(prev) + leaf).hexdigest(),
    )
    att.execute("INSERT INTO audit_log VALUES (%s,%s,%s,%s,%s,%s,%b,%s,%s,%s)", row)
    for table, values in projections.rows_for([row]).items():
        for v in values:
            att.execute(projections.BY_NAME[table].insert_sql().replace("?", "%s"), v)
    try:
        with pytest.raises(psycopg.errors.InvalidDatetimeFormat, match="refused batch time"):
            att.execute("SELECT aios_audit_done(ARRAY[%s]::bigint[], ARRAY[%s]::bigint[], %b, NULL)", (sid, head, when))
    finally:
        att.rollback()
        att.close()
    assert not honest.is_integrated(ack)  # still staged: the next integrator seals it
    assert honest.integrate_staged() == 1 and honest.is_integrated(ack)
    assert verify_store(honest, workers=1).ok
    ((_, entry, leaf, prev, chain),) = list(honest.scan_raw(2, 2))
    assert (
        entry.count(b'"event":') == 1 and record_from_entry(entry, leaf, prev, chain).event.actor == "service:pipeline"
    )
    honest.close()


def _splice(entry: bytes, forged: dict[str, Any]) -> bytes:
    """``entry`` with a second ``"event"`` key spliced in after its time, as a forged batch time sealed it."""
    head, _, seq = entry.rpartition(b',"seq":')
    return head + b',"event":' + json.dumps(forged, sort_keys=True, separators=(",", ":")).encode() + b',"seq":' + seq


def _forged_row(store: Any, seq: int) -> tuple[bytes, str, str, str]:
    """The entry and hashes of record ``seq`` as a forged batch time would have sealed it (chained correctly)."""
    ((_s, entry, _leaf, prev, _chain),) = list(store.scan_raw(seq, seq))
    forged = json.loads(entry)["event"] | {"actor": "user:mallory", "status": "succeeded"}
    new = _splice(entry, forged)
    leaf_b = hashlib.sha256(b"\x00" + new).digest()
    return new, leaf_b.hex(), prev, hashlib.sha256(bytes.fromhex(prev) + leaf_b).hexdigest()


def test_verify_reports_an_entry_sealed_with_a_spliced_time_postgres(pg_url: str) -> None:
    store = open_store(pg_url)
    store.append_many([AuditEvent(kind="task", actor="a", subject=f"s{i}", execution=EX) for i in range(3)])
    entry, leaf, _prev, chain = _forged_row(store, 3)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the owner (as a log sealed before the fix holds it)
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
        conn.execute(
            "UPDATE audit_log SET entry = %s, leaf_hash = %s, chain_hash = %s WHERE seq = 3", (entry, leaf, chain)
        )
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update")
    got = verify_store(store, workers=1)
    assert not got.ok and got.first_bad_seq == 3 and got.problem == "edited", got.summary()
    assert "not framed as the stores seal it" in got.detail
    store.close()


def test_verify_reports_an_entry_sealed_with_a_spliced_time_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    store = open_store(f"sqlite:///{path}")
    store.append_many([AuditEvent(kind="task", actor="a", subject=f"s{i}", execution=EX) for i in range(3)])
    entry, leaf, _prev, chain = _forged_row(store, 3)
    store.close()
    conn = sqlite3.connect(path)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("UPDATE audit_log SET entry = ?, leaf_hash = ?, chain_hash = ? WHERE seq = 3", (entry, leaf, chain))
    conn.commit()
    conn.close()
    store = open_store(f"sqlite:///{path}")
    got = verify_store(store, workers=1)
    assert not got.ok and got.first_bad_seq == 3 and got.problem == "edited", got.summary()
    store.close()


@pytest.mark.parametrize(
    "when",
    [
        '"2026-12-07T06:59:00.000000+00:00"',  # the pack writes no fraction when it is zero
        '"2026-12-07T06:58:60+00:00"',  # PostgreSQL reads second 60 as the next minute; Python cannot read it
        '"2026-12-07T24:00:00+00:00"',  # hour 24: the next day
    ],
)
def test_a_batch_time_is_refused_unless_written_as_the_pack_writes_it(writer_url: str, when: str) -> None:
    """Review of 2026-12-07 R4/F2: such a time, sealed into an honest writer's record, made verify report it edited
    and `aios audit show` exit 2. Refused whatever the server's clock (the form is checked before the skew)."""
    with psycopg.connect(writer_url, autocommit=True) as att:
        with pytest.raises(psycopg.errors.InvalidDatetimeFormat, match="not written as the pack writes that time"):
            att.execute("SELECT aios_audit_check_when(NULL, %b)", (when.encode(),))
        for t in (dt.datetime(2026, 12, 7, 6, 59, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=dt.UTC)):
            assert bytes(att.execute("SELECT aios_audit_when(%s)", (t,)).fetchone()[0]) == _json_time(t)


def _times(url: str) -> list[dt.datetime]:
    with psycopg.connect(url) as conn:
        return [t for (t,) in conn.execute("SELECT recorded_at FROM audit_log ORDER BY seq")]


def test_times_never_decrease_along_seq(writer_url: str) -> None:
    """Review of 2026-12-07 R4/F3: a writer holding the log's lock sealed another writer's record 540 s before the
    record before it (within the 600 s allowed), and time-window reads, which take times to grow with seq, missed
    it. Every integrator now seals the later of its clock and the head's recorded_at; aios_audit_done refuses a
    batch time before the record the batch follows."""
    from flytekitplugins.aios_audit.stores.pg_integrate import _columns

    honest = open_store(writer_url)
    honest.append(AuditEvent(kind="task", actor="service:pipeline", subject="before", execution=EX))
    for shift in (-540, 300):  # back-dated (the finding), then a head 300 s ahead of every honest clock
        with _holding_the_lock(writer_url, honest) as (att, _staged, res):
            now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=shift)
            att.execute("SELECT aios_audit_integrate(%s, %b, 4096, NULL)", (now, _json_time(now)))
            att.commit()
        times = _times(writer_url)
        assert times == sorted(times) and res["rec"].recorded_at == times[-1], times
    ahead = _times(writer_url)[-1]
    assert ahead > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=200)
    # the Python integrator, the locked path and the server's integrator, their clocks 300 s behind that head
    ack = honest.stage_many([AuditEvent(kind="task", actor="service:bulk", subject="b", execution=EX)])
    honest.integrate_staged()
    claimed = AuditEvent(
        kind="action",
        actor="service:pipeline",
        execution=EX,
        attributes={"claims": [{"key": "approval-use:req-1", "holder": "aios/production/run-7"}]},
    )
    honest.append(claimed)
    honest.append(AuditEvent(kind="task", actor="service:pipeline", subject="plain", execution=EX))
    times = _times(writer_url)
    assert honest.is_integrated(ack) and len(times) == 6 and times == sorted(times) and times[2:] == [ahead] * 4
    # aios_audit_done: log rows written by hand for an honest staged row, sealed before the head's time
    att = psycopg.connect(writer_url)
    att.execute(f"SELECT pg_advisory_xact_lock({LOCK})")
    ack = honest.stage_many([_honest(honest)])
    sid, blob = att.execute("SELECT id, events[1] FROM audit_staged ORDER BY id").fetchone()
    now = dt.datetime.now(dt.UTC)
    head, prev = att.execute("SELECT seq, chain_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    entry = b'{"event":%b,"recorded_at":%b,"seq":%d}' % (bytes(blob), _json_time(now), head + 1)
    leaf = hashlib.sha256(b"\x00" + entry).digest()
    chain = hashlib.sha256(bytes.fromhex(prev) + leaf).hexdigest()
    row = (head + 1, now, *_columns(json.loads(bytes(blob))), entry, leaf.hex(), prev, chain)
    att.execute("INSERT INTO audit_log VALUES (%s,%s,%s,%s,%s,%s,%b,%s,%s,%s)", row)
    try:
        with pytest.raises(psycopg.errors.InvalidDatetimeFormat, match="earlier than the record before the batch"):
            att.execute(
                "SELECT aios_audit_done(ARRAY[%s]::bigint[], ARRAY[%s]::bigint[], %b, NULL)",
                (sid, head, _json_time(now)),
            )
    finally:
        att.rollback()
        att.close()
    assert honest.integrate_staged() == 1 and honest.is_integrated(ack)
    times = _times(writer_url)
    assert times == sorted(times) and verify_store(honest, workers=1).ok
    honest.close()


@pytest.mark.parametrize("ahead", ["50 years", "infinity", "year 12000"])
def test_a_hand_inserted_head_far_ahead_moves_no_later_time_and_stops_no_append(writer_url: str, ahead: str) -> None:
    """Re-review R6 of 2026-12-07: the rule above followed the head's time whatever it was. The writer role inserted
    one chained record of its own by hand, sealed 50 years ahead: every later honest record was then sealed 50 years
    ahead (time-window reads lost them), and once a row was staged the Python integrator's time was refused as too far
    from the server's clock, which stopped every append; at ``infinity`` or in the year 12000 every append failed at
    once. A head time no honest clock gives (not finite, or more than WHEN_SKEW_S ahead) is no longer followed."""
    from flytekitplugins.aios_audit import projections
    from flytekitplugins.aios_audit.stores import seal_rows

    honest = open_store(writer_url)
    honest.append(AuditEvent(kind="task", actor="service:pipeline", subject="before", execution=EX))
    with psycopg.connect(writer_url) as att:  # the writer grants of docs/audit.md: INSERT on the log and projections
        head = att.execute("SELECT seq, chain_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        future = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=365 * 50)
        event = AuditEvent(kind="task", actor="service:pipeline", subject="innocuous", execution=EX)
        _, rows = seal_rows(head, [event], future, future)
        row = list(rows[0])
        if ahead != "50 years":  # the entry says 50 years ahead; the column what the attacker chose
            row[1] = "infinity" if ahead == "infinity" else "12000-01-01T00:00:00+00"
        cur = att.cursor()
        cur.execute("INSERT INTO audit_log VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", row)
        for table, values in projections.rows_for(rows).items():  # its projection rows: at the head, allowed
            cur.executemany(projections.BY_NAME[table].insert_sql().replace("?", "%s"), values)
    before = dt.datetime.now(dt.UTC)
    honest.append(AuditEvent(kind="task", actor="service:pipeline", subject="plain", execution=EX))  # server's
    honest.append_many([_honest(honest)], precondition=lambda: None)  # the locked path
    ack = honest.stage_many([AuditEvent(kind="task", actor="service:bulk", subject="b", execution=EX)])
    assert honest.integrate_staged() == 1 and honest.is_integrated(ack)  # the Python integrator
    honest.append(AuditEvent(kind="task", actor="service:pipeline", subject="after", execution=EX))
    with psycopg.connect(writer_url) as conn:
        later = [t for (t,) in conn.execute("SELECT recorded_at FROM audit_log WHERE seq > 2 ORDER BY seq")]
    assert len(later) == 4
    assert all(before - dt.timedelta(seconds=5) <= t <= dt.datetime.now(dt.UTC) for t in later), later
    assert later == sorted(later)
    honest.close()
