"""SQLite's lineage parent index, ``audit_lineage_parents``, written in arrears.

The lineage projection (``audit_proj_lineage``, clustered by ``seq, pos``) used to carry its own ``(parent, seq)``
index on SQLite. A record's lineage rows name its execution and its principal as parents (hubs: each append wrote
their last index pages again) and its inputs (random digests): 2.75 of the 5.95 pages of write-ahead log a single
append's commit wrote (benchmarks/README.md), which it then waited for the disk to flush. Batched, a few hundred
records share the hubs' pages. So, as :mod:`.sqlite_show` does for ``audit show``'s columns, a write transaction
whose records leave :data:`BATCH` or more behind copies the lineage rows of those records that name a parent
(``parent, seq, pos, rel``) into this table, in the same transaction: every record it appended and at most
:data:`CHUNK` older ones. It then adds a mark row ``('', N, -1, '')``: the table holds the parent rows of records
``1 .. N`` of the log, the largest such N (:func:`upto`, one seek), with no hole. An approval request's rows are
written with it instead (:func:`write_now`): the acting point looks requests up here, and a mark must not hide one.
PostgreSQL keeps the index on the lineage table (its writers stage their records; the integrator writes the index in
batches already).

Readers (:func:`.lineage_parents.parent_rows_sql`) take the records after N (fewer than :data:`BATCH` while writers
keep up) from the lineage table by ``seq`` and the others through this table, each of its rows joined to the lineage
row it names and used only where that row says the same (a forged row of this table names nothing). A missing row
hides an edge: ``aios audit verify`` (the full walk, and from a checkpoint the records after it) looks up every
lineage row of the records ``1 .. N`` here and reports one without its row (``projection_missing``) or with another
relation (``projection_changed``), and a mark beyond the log; the full walk also reads the whole table for rows no
lineage row derives (``projection_extra``). The table is append-only (triggers); ``aios audit rebuild-projections
--full`` builds it again, and a rebuild of lineage rows adds theirs.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import Any

from flytekitplugins.aios_audit.projections import LINEAGE, PARENTS
from flytekitplugins.aios_audit.stores.sqlite_show import BATCH, BUILD_CHUNK, CHUNK, MISSING

TABLE = PARENTS
OLD_INDEX = f"{LINEAGE.name}_parent_seq"
"""The lineage table's own parent index (what :func:`.projections.schema` made on SQLite before this table): dropped
once the table holds the whole log."""
__all__ = ["BATCH", "BUILD_CHUNK", "CHUNK", "MISSING", "OLD_INDEX", "TABLE"]

SCHEMA = [
    # a value of another type is refused (a text seq would sort above every number: a mark 'x' made every record
    # look covered, and crashed the readers of the mark); CHECKs rather than STRICT, which needs SQLite 3.37
    f"CREATE TABLE IF NOT EXISTS {TABLE} (parent TEXT NOT NULL CHECK (typeof(parent) = 'text'), "
    "seq INTEGER NOT NULL CHECK (typeof(seq) = 'integer'), pos INTEGER NOT NULL CHECK (typeof(pos) = 'integer'), "
    "rel TEXT NOT NULL CHECK (typeof(rel) = 'text'), PRIMARY KEY (parent, seq, pos)) WITHOUT ROWID",
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: UPDATE refused'); END",
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: DELETE refused'); END",
]
OBJECTS = (TABLE, f"{TABLE}_no_update", f"{TABLE}_no_delete")

_LOG_HEAD = "SELECT COALESCE(MAX(seq), 0) FROM audit_log"
UPTO = f"SELECT COALESCE(MAX(seq), 0) FROM {TABLE} WHERE parent = '' AND seq <= ({_LOG_HEAD})"
"""SQL of the last record whose parent rows the table holds: its newest mark within the log (a mark beyond the log
is ``aios audit verify``'s ``projection_extra``, and covers nothing the log does not have)."""
_COPY = (
    # OR IGNORE: a row already there (one written past the newest mark by hand, or left there by deleted marks) does
    # not stop every append; ``aios audit verify`` reports it
    f"INSERT OR IGNORE INTO {TABLE} SELECT parent, seq, pos, rel FROM {LINEAGE.name} "
    "WHERE seq > ? AND seq <= ? AND parent <> '' ORDER BY seq, pos"
)
_MARK = f"INSERT INTO {TABLE} VALUES ('', ?, -1, '')"


@functools.cache
def definition() -> str:
    """The table's ``CREATE`` statement as SQLite keeps it in ``sqlite_master`` (what this version creates)."""
    mem = sqlite3.connect(":memory:")
    try:
        mem.execute(SCHEMA[0])
        return str(mem.execute("SELECT sql FROM sqlite_master WHERE name = ?", (TABLE,)).fetchone()[0])
    finally:
        mem.close()


def defined(conn: sqlite3.Connection) -> bool | None:
    """Whether the table is the one this version creates (its columns, types, key): None where nothing has its name.
    A table defined otherwise, or a view of that name (made by someone with write access: without its key, rows may
    repeat; without its checks, a seq may be text), is not read (readers use the lineage table itself) and ``aios
    audit verify`` says so. The definition is ``sqlite_master``'s text, which such a writer can also set
    (``PRAGMA writable_schema``): the verifier's checks do not rely on it (:func:`problems`)."""
    row = conn.execute("SELECT type, sql FROM sqlite_master WHERE name = ?", (TABLE,)).fetchone()
    return None if row is None else row[0] == "table" and row[1] == definition()


def drop(conn: sqlite3.Connection) -> None:
    """Drop whatever has the table's name (a view made in its place too)."""
    row = conn.execute("SELECT type FROM sqlite_master WHERE name = ?", (TABLE,)).fetchone()
    if row is not None:
        conn.execute(f"DROP {'VIEW' if row[0] == 'view' else 'TABLE'} {TABLE}")


def upto(conn: sqlite3.Connection) -> int:
    """The last ``seq`` whose parent rows the table holds (it holds those of ``1 ..`` that)."""
    return int(conn.execute(UPTO).fetchone()[0])


def after_append(conn: sqlite3.Connection, head: int, added: int) -> None:
    """In a writer's transaction, once its ``added`` records and their lineage rows are in (``head``: the last one's
    ``seq``): when :data:`BATCH` or more are waiting, copy their parent rows into the table: all of this
    transaction's records and at most :data:`CHUNK` older ones (see :func:`.sqlite_show.after_append`). Nothing
    where the table is missing (a large log opened before its upgrade: readers use the lineage table's own index
    then)."""
    try:
        have = upto(conn)
    except sqlite3.OperationalError:
        return
    if head - have >= BATCH and defined(conn):  # (a table replaced by hand is left alone: nothing reads it)
        _copy(conn, have, min(head, have + added + CHUNK))


_NOW = f"INSERT OR IGNORE INTO {TABLE} VALUES (?, ?, ?, ?)"


def write_now(conn: sqlite3.Connection, lineage_rows: list[tuple[Any, ...]]) -> None:
    """In a writer's transaction, the parent rows of some of its records (``lineage_rows``: their lineage rows, ``seq,
    pos, child, parent, rel``) at once, not in arrears: those of approval requests. The acting point and the catalog
    find the requests that name a document or an evaluation through this table, and a rejection on one of them must
    stand; a store writer who inserted a mark row past records whose rows were not copied yet (no trigger dropped: the
    table refuses only UPDATE and DELETE) hid the rejected request from the acting point, and the payment a second
    approver approved on another request was posted (review of 2026-12-07). Readers take a row here for a record up
    to the newest mark; past it they read the lineage table itself, so a row written early is read either way, and the
    copy in arrears skips it (``INSERT OR IGNORE``). Nothing where the table is missing or defined otherwise."""
    if not lineage_rows or not defined(conn):
        return
    conn.executemany(_NOW, [(parent, seq, pos, rel) for seq, pos, _child, parent, rel in lineage_rows if parent])


def _copy(conn: sqlite3.Connection, have: int, through: int) -> None:
    """Copy the parent rows of records ``have + 1 .. through`` and mark ``through`` (the caller holds a write
    transaction; the table holds ``1 .. have``)."""
    if through > have:
        conn.execute(_COPY, (have, through))
        conn.execute(_MARK, (through,))


def fill(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """In the transaction of a rebuild that writes lineage ``rows`` (``seq, pos, child, parent, rel``) of records
    that had none: the parent rows of those the table already covers (the others come with the next copy)."""
    try:
        have = upto(conn)
    except sqlite3.OperationalError:
        return
    if not defined(conn):
        return
    mine = [(r[3], r[0], r[1], r[4]) for r in rows if r[3] != "" and int(r[0]) <= have]
    conn.executemany(f"INSERT OR IGNORE INTO {TABLE} VALUES (?,?,?,?)", mine)


def build(conn: sqlite3.Connection, write: Callable[[sqlite3.Connection], Any]) -> None:
    """Create the table where it is missing (or defined otherwise: it is dropped first) and bring it up to the log in
    transactions of :data:`BUILD_CHUNK` records (``write(conn)``: the store's write transaction), then drop the
    lineage table's :data:`OLD_INDEX`."""
    schema = SCHEMA
    while True:
        with write(conn):
            if schema and defined(conn) is False:
                drop(conn)
            for stmt in schema:
                conn.execute(stmt)
            schema = []
            have = upto(conn)
            head = int(conn.execute(_LOG_HEAD).fetchone()[0])
            through = min(head, have + BUILD_CHUNK)
            _copy(conn, have, through)
            if through >= head:
                conn.execute(f"DROP INDEX IF EXISTS {OLD_INDEX}")
                return


def _seq(value: Any) -> int:
    """A stored ``seq`` as a problem's sequence number (0 for a value that is not an integer: a table whose checks
    were taken away, which the problem's text shows as it is)."""
    return value if isinstance(value, int) else 0


def backlog(conn: sqlite3.Connection) -> int:
    """Records of the log whose parent rows the table does not hold yet."""
    log, have = conn.execute(f"SELECT ({_LOG_HEAD}), ({UPTO})").fetchone()
    return int(log) - int(have)


def problems(
    conn: sqlite3.Connection,
    since: int = 0,
    until: int | None = None,
    *,
    rows: bool = True,
    beyond: bool = True,
    extra: bool = False,
    suspect: bool = False,
) -> list[tuple[str, int, str]]:
    """``(code, seq, detail)``: with ``rows``, each lineage row naming a parent, of the records ``since + 1 .. until``
    up to :func:`upto`, without its row here (``projection_missing``) or with another relation
    (``projection_changed``), one look-up each; with ``beyond``, a mark beyond the log (``projection_extra``); with
    ``extra`` (the full walk, after its rows check of every record), each row no lineage row derives and each mark
    beyond the log or malformed (``projection_extra``).

    The rows no lineage row derives are looked for one by one (a look-up in the lineage table for each row of this
    table, in its order: random reads) only when there can be one: when the table holds more rows than the lineage
    rows it covers, or ``suspect`` (the rows check found one missing: the caller's walk, or ``rows`` here). Else
    there is none: every lineage row has its row here (the rows check), the table's keys are unique, and the two
    counts are equal, so the table holds exactly those rows."""
    out: list[tuple[str, int, str]] = []
    if defined(conn) is False:  # said once, by the check after the walk (``beyond``), not for each range of it
        why = (
            f"{TABLE} is not defined as this version defines it ({definition()}): readers do not use it; "
            "`aios audit rebuild-projections` builds it again"
        )
        return [("projection_changed", 0, why)] if beyond or extra else []
    if rows:
        q = (
            f"SELECT l.seq, l.pos, l.parent, l.rel, p.rel FROM {LINEAGE.name} l LEFT JOIN {TABLE} p "
            "ON p.parent = l.parent AND p.seq = l.seq AND p.pos = l.pos "
            f"WHERE l.seq > ? AND l.seq <= ? AND l.seq <= ({UPTO}) AND l.parent <> '' "
            "AND (p.rel IS NULL OR p.rel IS NOT l.rel) ORDER BY l.seq, l.pos"
        )
        for seq, pos, parent, rel, got in conn.execute(q, (since, 2**62 if until is None else until)):
            want = [parent, _seq(seq), _seq(pos), rel]
            suspect = suspect or got is None
            if got is None:
                out.append(("projection_missing", _seq(seq), f"no row {want}"))
            else:
                detail = f"row {[parent, seq, pos, got]} but the lineage row derives {want}"
                out.append(("projection_changed", _seq(seq), detail))
    if beyond or extra:
        marks = f"SELECT seq FROM {TABLE} WHERE parent = '' AND seq > ({_LOG_HEAD}) ORDER BY seq"  # an index range
        out += [("projection_extra", _seq(seq), f"a mark {seq!r} beyond the log") for (seq,) in conn.execute(marks)]
    if extra:
        out += _unfounded(conn, suspect)
    return sorted(out, key=lambda p: p[1])


def _unfounded(conn: sqlite3.Connection, suspect: bool) -> list[tuple[str, int, str]]:
    """:func:`problems`' ``extra``: rows past the newest mark or that no lineage row derives (read row by row only
    when the counts, or ``suspect``, say there can be one), and malformed marks."""
    out: list[tuple[str, int, str]] = []
    # the rows past the newest mark are the approval requests' (write_now): each must be one a lineage row derives
    upto_now = upto(conn)
    counts = (  # one pass over this table: its rows up to the mark, and those past it that no lineage row derives
        f"SELECT count(*) FILTER (WHERE p.seq <= ?), count(*) FILTER (WHERE p.seq > ? AND NOT EXISTS (SELECT 1 FROM "
        f"{LINEAGE.name} l WHERE l.seq = p.seq AND l.pos = p.pos AND l.parent = p.parent AND l.rel = p.rel)) "
        f"FROM {TABLE} p WHERE p.parent <> ''"
    )
    have, stray = conn.execute(counts, (upto_now, upto_now)).fetchone()
    lineage = conn.execute(
        f"SELECT count(*) FROM {LINEAGE.name} WHERE parent <> '' AND seq <= ?", (upto_now,)
    ).fetchone()[0]
    if suspect or have != lineage or stray:
        # rows no lineage row derives, past the newest mark or not (a row of a lineage row with another relation is
        # the rows check's projection_changed, up to the mark)
        q = (
            f"SELECT p.parent, p.seq, p.pos, p.rel, p.seq > ({UPTO}) FROM {TABLE} p WHERE p.parent <> '' AND "
            f"NOT EXISTS (SELECT 1 FROM {LINEAGE.name} l WHERE l.seq = p.seq AND l.pos = p.pos "
            f"AND l.parent = p.parent AND (l.rel = p.rel OR p.seq <= ({UPTO})))"
        )
        named = 0
        for parent, seq, pos, rel, past in conn.execute(q):
            why = "past the newest mark, that no lineage row derives" if past else "that no lineage row derives"
            out.append(("projection_extra", _seq(seq), f"row {[parent, seq, pos, rel]} {why}"))
            named += not past
        if have - named > lineage:  # more rows than the lineage rows they could be, none of them named
            why = (
                f"{have} rows for {lineage} lineage rows of the records it covers: {have - named - lineage} unexplained"
            )
            out.append(("projection_extra", 0, why))
    q = (
        f"SELECT pos, seq, rel FROM {TABLE} WHERE parent = '' AND (pos IS NOT -1 OR rel IS NOT '' "
        "OR typeof(seq) <> 'integer')"
    )
    return out + [("projection_extra", _seq(seq), f"a mark {[seq, pos, rel]!r}") for pos, seq, rel in conn.execute(q)]
