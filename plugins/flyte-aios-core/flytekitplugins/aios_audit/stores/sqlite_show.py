"""SQLite's ``audit_show``: the columns ``aios audit show`` filters by (kind, time, actor), indexed in arrears.

The log used to carry three indexes of its own for ``audit show`` (``audit_log_kind``, ``audit_log_recorded``,
``audit_log_actor``). Each append wrote a page of each of them to the write-ahead log before its ``fsync``: 3.5 of the
9.8 pages a single append's commit wrote (benchmarks/README.md). Their keys come in order (times grow with ``seq``; a
kind or an actor gets its records at the end of its range), so a few hundred records share those pages: the writers
now add them in batches. A write transaction whose records leave :data:`BATCH` or more behind copies them into
``audit_show`` (``seq``, ``kind``, ``recorded_at`` and the entry's bytes up to its actor, as
:func:`~..projections_show.actor_sql` spells them), in the same transaction: every record it appended and at most
:data:`CHUNK` older ones, so the table is always ``1 .. N`` of the log with no hole, and writers never leave more than
:data:`BATCH` behind whatever the size of their batches.

Readers take the records after ``N`` (fewer than :data:`BATCH` while writers keep up) from the log itself and the
rest through the table's indexes; every record they show is parsed and checked with the exact filter, so a row of
the table can hide a record but never change what one says. ``aios audit verify`` compares every row with the log's
columns and entry (which its walk proves equal to the sealed entries) and reports a hole, a changed row or a row
beyond the log (:func:`problems`); the table is append-only (triggers), and ``aios audit rebuild-projections --full``
builds it again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from flytekitplugins.aios_audit.projections_show import actor_sql

TABLE = "audit_show"
BATCH = 256
"""Records a writer leaves behind before its transaction copies them into ``audit_show`` (the tail readers read
from the log)."""
CHUNK = 1024
"""Records older than its own that one write transaction copies at most: a backlog (a log written before the table
kept up with batches larger than this, see :func:`after_append`) is caught up this many an append (4-5 ms more an
append on the project's 2-core VM, at ten million records), or at once by ``aios audit rebuild-projections``."""
BUILD_CHUNK = 100_000
"""Records per write transaction of :func:`build` (other writers wait for one at most)."""
MISSING = 50_000
"""Records behind after which ``missing_indexes`` names ``audit_show`` (``aios audit show`` reads them from the log,
and says so)."""
INDEXES = {
    "audit_show_kind": f"CREATE INDEX IF NOT EXISTS audit_show_kind ON {TABLE}(kind)",
    # times grow with seq, so a batch adds to the index's last pages
    "audit_show_recorded": f"CREATE INDEX IF NOT EXISTS audit_show_recorded ON {TABLE}(recorded_at)",
    # one key per actor: a batch adds to the end of each actor's range
    "audit_show_actor": f"CREATE INDEX IF NOT EXISTS audit_show_actor ON {TABLE}(actor)",
}
SCHEMA = [
    f"CREATE TABLE IF NOT EXISTS {TABLE} (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, recorded_at TEXT NOT NULL, "
    "actor BLOB NOT NULL)",
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: UPDATE refused'); END",
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: DELETE refused'); END",
    *INDEXES.values(),
]
OLD_INDEXES = ("audit_log_kind", "audit_log_recorded", "audit_log_actor")
"""The log's own ``audit show`` indexes before this table: dropped once the table holds the whole log."""
OBJECTS = (TABLE, f"{TABLE}_no_update", f"{TABLE}_no_delete", *INDEXES)

_UPTO = f"SELECT COALESCE(MAX(seq), 0) FROM {TABLE}"
_LOG_HEAD = "SELECT COALESCE(MAX(seq), 0) FROM audit_log"
_FILL = (
    f"INSERT INTO {TABLE} SELECT seq, kind, recorded_at, {actor_sql('sqlite')} FROM audit_log "
    "WHERE seq > ? AND seq <= ? ORDER BY seq"
)


def upto(conn: sqlite3.Connection) -> int:
    """The last ``seq`` the table holds (it holds ``1 ..`` that)."""
    return int(conn.execute(_UPTO).fetchone()[0])


def after_append(conn: sqlite3.Connection, head: int, added: int) -> None:
    """In a writer's transaction, once its ``added`` records are in (``head``: the last one's ``seq``): when
    :data:`BATCH` or more are waiting, copy them into the table: all of this transaction's and at most :data:`CHUNK`
    older ones. A transaction's own records always go in whole: a writer of batches larger than a chunk (a bulk load
    appends thousands a transaction) once left the table further behind with each batch, 4.46 million records behind
    a 10M-record log, which ``audit show`` then read without an index (28 s for an actor with no record) and the next
    single appends caught up 1,024 at a time. Nothing where the table is missing (a large log opened before its
    upgrade: ``aios audit show`` reads the log then; a failed prepare leaves the transaction as it was)."""
    try:
        have = upto(conn)
    except sqlite3.OperationalError:
        return
    if head - have >= BATCH:
        _copy(conn, have, added + CHUNK)  # the log ends at head: at most head - have rows


def _copy(conn: sqlite3.Connection, have: int, limit: int) -> int:
    """Copy the log's records ``have + 1 .. have + limit`` into the table (it holds ``1 .. have``; the caller holds a
    write transaction); returns how many there were."""
    return max(conn.execute(_FILL, (have, have + limit)).rowcount, 0)


def build(conn: sqlite3.Connection, write: Callable[[sqlite3.Connection], Any]) -> None:
    """Create the table where it is missing and bring it up to the log in transactions of :data:`BUILD_CHUNK`
    records (``write(conn)``: the store's write transaction), then drop the log's :data:`OLD_INDEXES`."""
    schema = SCHEMA
    while True:
        with write(conn):
            for stmt in schema:
                conn.execute(stmt)
            schema = []
            if _copy(conn, upto(conn), BUILD_CHUNK) < BUILD_CHUNK:
                for name in OLD_INDEXES:
                    conn.execute(f"DROP INDEX IF EXISTS {name}")
                return


def backlog(conn: sqlite3.Connection) -> int:
    """Records of the log the table does not hold yet."""
    log, have = conn.execute(f"SELECT ({_LOG_HEAD}), ({_UPTO})").fetchone()
    return int(log) - int(have)


def problems(
    conn: sqlite3.Connection, since: int = 0, until: int | None = None, *, rows: bool = True, beyond: bool = True
) -> list[tuple[str, int, str]]:
    """``(code, seq, detail)`` for every row of the table, of the records ``since + 1 .. until``, that is not what the
    log derives (``rows``): a record up to the table's last ``seq`` without a row (``projection_missing``: ``audit
    show`` would not find it through the indexes), a row whose columns differ from the log's
    (``projection_changed``); and (``beyond``) each row beyond the log (``projection_extra``). The log's columns and
    entries are the ones the verifier's walk proves equal to the sealed entries; the verifier hands its ranges over
    right after reading them, so their pages are in memory. One statement each, in SQLite."""
    out: list[tuple[str, int, str]] = []
    actor = actor_sql("sqlite")
    q = (
        f"SELECT l.seq, s.seq IS NULL, s.kind, s.recorded_at, hex(s.actor), l.kind, l.recorded_at, hex({actor}) "
        f"FROM audit_log l LEFT JOIN {TABLE} s ON s.seq = l.seq WHERE l.seq > ? AND l.seq <= ? AND l.seq <= ({_UPTO}) "
        f"AND (s.seq IS NULL OR s.kind IS NOT l.kind OR s.recorded_at IS NOT l.recorded_at OR s.actor IS NOT {actor}) "
        "ORDER BY l.seq"
    )
    if rows:
        for seq, absent, kind, at, who, lkind, lat, lwho in conn.execute(q, (since, 2**62 if until is None else until)):
            want = [lkind, lat, lwho]
            if absent:
                out.append(("projection_missing", int(seq), f"no row {want}"))
            else:
                detail = f"row {[kind, at, who]} but the sealed record derives {want}"
                out.append(("projection_changed", int(seq), detail))
    if beyond:
        extra = f"SELECT seq, kind FROM {TABLE} WHERE seq > ({_LOG_HEAD}) ORDER BY seq"
        out += [
            ("projection_extra", int(seq), f"row of kind {kind!r} beyond the log") for seq, kind in conn.execute(extra)
        ]
    return out
