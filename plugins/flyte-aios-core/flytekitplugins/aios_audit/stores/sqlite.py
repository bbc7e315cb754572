"""SQLite audit store: the embedded default.

WAL journal with ``synchronous=FULL`` (a committed append survives power loss), ``BEGIN IMMEDIATE`` so
that several processes appending at once serialize on SQLite's write lock and never fork the chain,
and triggers that refuse UPDATE and DELETE on the log and any insert that is not the next link.
The canonical entry bytes are stored as they were hashed, so verification recomputes hashes over
exactly those bytes.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import fcntl
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from flytekitplugins.aios_audit import projections
from flytekitplugins.aios_audit.private_files import SQLITE_COMPANIONS, UnsafeFile, open_owned, touch_private
from flytekitplugins.aios_audit.projections_show import NAMED_INDEX, named_execution_sql
from flytekitplugins.aios_audit.records import GENESIS, AuditEvent, AuditRecord, record_from_entry
from flytekitplugins.aios_audit.stores import (
    AuditStore,
    AuditWriteError,
    ClaimTaken,
    RawRow,
    event_claims,
    keep_inherited,
    seal_rows,
)
from flytekitplugins.aios_audit.stores import sqlite_parents as parents
from flytekitplugins.aios_audit.stores import sqlite_show as show

_IDS_INDEX = "CREATE INDEX IF NOT EXISTS audit_ids_leaf ON audit_ids(leaf_hash)"  # also rebuilt by _rebuild_ids

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit_log (
    seq         INTEGER PRIMARY KEY CHECK (seq >= 1),
    recorded_at TEXT NOT NULL,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    execution   TEXT NOT NULL,
    task        TEXT NOT NULL,
    entry       BLOB NOT NULL,
    leaf_hash   TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    chain_hash  TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_fork BEFORE INSERT ON audit_log
WHEN NOT (NEW.seq = 1 AND NEW.prev_hash = '{GENESIS}' AND NOT EXISTS (SELECT 1 FROM audit_log))
  AND NOT EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.seq - 1 AND chain_hash = NEW.prev_hash)
BEGIN SELECT RAISE(ABORT, 'audit_log refuses a gap or fork: seq and prev_hash must continue the chain head'); END;
CREATE TABLE IF NOT EXISTS audit_ids (seq INTEGER PRIMARY KEY, leaf_hash TEXT NOT NULL);
{_IDS_INDEX};
CREATE TABLE IF NOT EXISTS audit_claims (claim TEXT PRIMARY KEY, holder TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_claims_no_update BEFORE UPDATE ON audit_claims
BEGIN SELECT RAISE(ABORT, 'audit_claims is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_claims_no_delete BEFORE DELETE ON audit_claims
BEGIN SELECT RAISE(ABORT, 'audit_claims is append-only: DELETE refused'); END;
"""
# Appends touch only the tail of the log: the fork trigger is one primary-key lookup per row (the
# predecessor must exist and end in prev_hash; with seq as PRIMARY KEY and DELETE refused, every insert is
# the next link of the head), and the log has no index keyed on the random record id. Look-ups by record
# id go through ``audit_ids``, brought up to date in bulk by ``get`` (one sequential pass over the new
# rows), so the cost of a random-order index is paid once per read, not once per append. ``audit_ids`` is
# derived data: ``get`` re-checks the log row it points to, and verification never reads it.
# (Logs created before this version keep their UNIQUE record-id index, their equivalent MAX(seq)-based
# trigger and their kind/execution indexes, which no query of the pack uses.)

_COLS = "seq, entry, leaf_hash, prev_hash, chain_hash"
_IDS_HEADS = "SELECT (SELECT COALESCE(MAX(seq), 0) FROM audit_log), (SELECT COALESCE(MAX(seq), 0) FROM audit_ids)"
IDS_CHUNK = 50_000  # records per audit_ids catch-up transaction (see SQLiteAuditStore._index_ids)
IDS_BULK_MIN = 200_000  # a backlog this large, and larger than the indexed part, is indexed by one rebuild instead
WAL_SIZE_LIMIT = 64 << 20  # bytes of write-ahead log kept on disk once it restarts (PRAGMA journal_size_limit)
IDS_TAIL_READ = 512
"""Records appended since the id table's last catch-up that a look-up by id reads from the log's tail instead of
indexing them all first (about 0.5 ms for 512 rows at a million records, less than the durable write's fsync)."""
IDS_TAIL_FREE = 8
"""Records a look-up leaves waiting without writing: more than this (and at most :data:`IDS_TAIL_READ`), and it first
indexes the oldest :data:`IDS_STEP` of them, one small write transaction, and reads the rest from the tail."""
IDS_STEP = 16
"""Records one look-up indexes at most while the backlog is short (see :data:`IDS_TAIL_FREE`). The id index is keyed on
random ids, so each record it takes costs a page of it wherever that lies, written again where the write-ahead log is
checkpointed: at ten million records a look-up that indexed 512 at once took 55-186 ms (the governance calls'
maximum, and the p99 of a run of 200 that met two of them), a step of 16 about 2 ms, so a backlog is worked off a
step a look-up (benchmarks/README.md: the governance calls' p99 at ten million records by step and checkpoint size)."""
WAL_CHECKPOINT_PAGES = 250
"""Pages of write-ahead log after which a commit copies them into the database (``PRAGMA wal_autocheckpoint``; SQLite's
default is 1000). The id index's pages lie all over a large log's file, so each checkpoint writes some of them back
wherever they are: four smaller checkpoints instead of one keep each within a governance call's budget (measured at
ten million records; single and batched appends on a small store unchanged)."""
OPEN_INDEX_MAX = 100_000
"""Records up to which opening a log that lacks one of its read indexes builds it on the spot (a fraction of a second
each); a larger log is opened without it and ``aios audit rebuild-projections`` builds it, with progress (see
``SQLiteAuditStore._ensure_projections``)."""
GET_MANY_CHUNK = 500  # ids per query of SQLiteAuditStore.get_many (SQLite allows 32,766 parameters a statement)
BUSY_TIMEOUT_S = 60.0
"""Seconds a writer waits for SQLite's write lock (``busy_timeout``) before it fails."""


class _Connection(sqlite3.Connection):
    """A connection with its own descriptor on the store's lock file (see :func:`_write`)."""

    lock_fd: int = -1
    wait_fd: int = -1
    lock_depth: int = 0
    pid: int = -1  # the process that opened it (a forked child never closes its parent's)


_OPENED: weakref.WeakSet[_Connection] = weakref.WeakSet()
"""The store connections this process opened, closed at its exit by :func:`_close_at_exit`."""


def _close_at_exit() -> None:
    """Close the store connections this process opened (``atexit``).

    The last connection to close a database checkpoints and empties its write-ahead log. An ``aios`` command used to
    exit with its connection open (the interpreter does not promise to finalize it), leaving the log behind, valid;
    every later process, opening first, then rebuilt its index by reading all of it: 65 ms a command after a catch-up
    of the record ids had written 150 MB of log on a million-record trail, and again for each command after it (a
    reader never restarts the log), until a writer came."""
    for conn in list(_OPENED):
        if conn.pid == os.getpid():
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            conn.pid = -1  # a thread still writing after this (a daemon's) gets a new connection, not a closed one


atexit.register(_close_at_exit)


@contextlib.contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction holding SQLite's write lock from the start (``BEGIN IMMEDIATE``): commit or roll back.

    Writers first queue on an exclusive ``flock`` of ``<db>.lock``, taken before ``BEGIN IMMEDIATE`` and
    released after ``COMMIT``, and waiting writers go first (:func:`_take_turn`), so one writer cannot starve
    another (SQLite's busy handler sleeps and retries, and a writer that just committed would usually win again).
    SQLite's own lock still serializes writers that do not take it; a writer that dies releases it.
    """
    fd = getattr(conn, "lock_fd", -1)
    outer = fd >= 0 and getattr(conn, "lock_depth", 0) == 0
    if outer:
        _take_turn(fd, getattr(conn, "wait_fd", -1))
    if fd >= 0:
        conn.lock_depth += 1  # type: ignore[attr-defined]
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")  # a failed COMMIT leaves the transaction open: roll it back too
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        if fd >= 0:
            conn.lock_depth -= 1  # type: ignore[attr-defined]
        if outer:
            fcntl.flock(fd, fcntl.LOCK_UN)


def _ids_heads(conn: sqlite3.Connection) -> tuple[int, int]:
    """The last seq of the log and the last seq ``audit_ids`` holds (its rows are ``1 ..`` that, in order)."""
    log, ids = conn.execute(_IDS_HEADS).fetchone()
    return int(log), int(ids)


LOG_INDEXES = {
    # `aios audit show --execution`: the records whose entries name an execution in a string field (approval records:
    # one in seven), whose lineage row may name another execution than their column; every other record is found
    # through its lineage row (no index of the column: appends of other kinds pay nothing)
    NAMED_INDEX: f"CREATE INDEX IF NOT EXISTS {NAMED_INDEX} ON audit_log(execution) WHERE "
    + named_execution_sql("sqlite"),
    "audit_claims_seq": "CREATE INDEX IF NOT EXISTS audit_claims_seq ON audit_claims(seq)",  # checks since a seq
}
"""The log's read indexes by name, each with its ``CREATE INDEX`` statement: the named-execution index of ``aios audit
show`` and the claims' seq index of ``aios audit verify --checkpoint`` (appends add to the end of each of their
ranges; none is keyed on a random value). The kind, time and actor indexes of ``aios audit show`` are on
``audit_show``, written in arrears (:mod:`.sqlite_show`)."""


def _log_size(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_log").fetchone()[0])


def _present(conn: sqlite3.Connection, names: Sequence[str]) -> set[str]:
    """Which of the tables and indexes ``names`` the database holds."""
    q = f"SELECT name FROM sqlite_master WHERE name IN ({','.join('?' * len(names))})"
    return {name for (name,) in conn.execute(q, tuple(names))}


def _rebuild_pays(log: int, ids: int) -> bool:
    """Whether the records ``ids + 1 .. log`` waiting to be indexed are better indexed by one rebuild of
    ``audit_ids``' index (at least :data:`IDS_BULK_MIN`, and more than are indexed already) than in chunks."""
    return log - ids >= IDS_BULK_MIN and log - ids > ids


def _take_turn(lock_fd: int, wait_fd: int) -> None:
    """Take the writers' lock (``<db>.lock``) after every writer that is already waiting for it.

    ``flock`` alone hands the lock to whoever asks first once it is free, and a writer that has just committed
    asks again within microseconds, before the waiter the kernel woke has run: on a fast disk one writer took
    14,358 turns to the other's 4,206 in three seconds. So a writer that has to wait says so by holding
    ``<db>.wait`` shared while it blocks, and lets go of it once it holds the lock; a writer that finds
    ``<db>.wait`` held takes it exclusively first, which the kernel grants only when each of those waiters has had
    the lock. Nobody waits for ``<db>.wait`` while holding the lock, so the two cannot deadlock; alone, a writer
    pays two non-blocking calls.

    The waits block without a bound, as they must stay cheap (polling with short sleeps cost a process's four writing
    threads 35% of their appends): so a queue file another user could hold is refused when the store is opened
    (:meth:`SQLiteAuditStore._open_queue`), and only a process of the store's own user can stall its writers.
    """
    if wait_fd >= 0:
        try:
            fcntl.flock(wait_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(wait_fd, fcntl.LOCK_EX)  # the writers waiting now have had their turn
        fcntl.flock(wait_fd, fcntl.LOCK_UN)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    if wait_fd >= 0:
        fcntl.flock(wait_fd, fcntl.LOCK_SH)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
    finally:
        if wait_fd >= 0:
            fcntl.flock(wait_fd, fcntl.LOCK_UN)


class SQLiteAuditStore(AuditStore):
    """Hash-chained log in one SQLite file; safe for several threads and processes."""

    def __init__(self, url: str, *, ids_tail_read: int | None = None) -> None:
        """Open (and create) the log at ``url``.

        Args:
            url: ``sqlite:///PATH``.
            ids_tail_read: Records appended since the id table's last catch-up that a look-up by record id reads from
                the log's tail rather than indexing them all first; default :data:`IDS_TAIL_READ`. A one-shot reader
                (``aios lineage trace``) passes a larger figure: reading ten thousand records' tail took about 4 ms
                at ten million records, indexing them 1.7-3.1 s (benchmarks/README.md), a cost the next governance
                look-ups share out a step at a time instead. Such a reader writes nothing for its look-ups by id: it
                reads the tail's ids once into a map (:meth:`_tail_seqs`) and takes no step of the backlog.
        """
        self.url = url
        self.path = Path(url.removeprefix("sqlite:///"))
        self._local = threading.local()
        self._ids_tail_read = ids_tail_read
        # a one-shot reader's map of the log's tail, record id -> seq (see _tail_seqs)
        self._tail_lock = threading.Lock()
        self._tail: dict[str, int] = {}
        self._tail_span = (0, 0)  # the records it maps: (after this seq, through this one)
        try:
            # mode 0600 (SQLite gives -wal and -shm the database's mode), folders 0700; a -wal or -shm another user
            # left is refused with it (SQLite would read its pages as the log's)
            touch_private(self.path, companions=SQLITE_COMPANIONS)
            self._conn().executescript(SCHEMA)
            self._ensure_projections(self._conn())
        except UnsafeFile as e:  # another local user's file or folder, or one others may write (review R9)
            msg = (
                f"refusing the SQLite audit store {self.path}: {e}; nothing was written. Keep the store in a folder "
                "only its own user can write (AIOS_AUDIT_STORE / AIOS_STATE_DIR)"
            )
            raise AuditWriteError(msg) from None
        except (OSError, sqlite3.Error) as e:
            msg = f"cannot open the SQLite audit store at {self.path}: {e}. Check AIOS_AUDIT_STORE / AIOS_STATE_DIR"
            raise AuditWriteError(msg) from e

    dialect = "sqlite"
    _PROJECTION_OBJECTS = (*(t.name for t in projections.TABLES), *(g.state for g in projections.GROUPS))
    LOG_INDEXES = LOG_INDEXES

    @classmethod
    def _ensure_projections(cls, conn: sqlite3.Connection) -> None:
        """Create the projection tables and ``audit_show`` (:mod:`.sqlite_show`) once, under the write lock, and the
        log's read indexes (:data:`LOG_INDEXES`) where the log is small enough to index on the spot
        (:data:`OPEN_INDEX_MAX`).

        A log that existed before the tables gets ``missing_through`` = its size, and a larger log that lacks an
        index is opened without it (its readers scan as they did before it existed): ``aios audit
        rebuild-projections`` fills and builds both, with progress (:meth:`build_indexes`). Building the
        indexes of a ten-million-record log at its first open made that open, a governance call's perhaps, take
        minutes while every other writer waited. So too ``audit_show``: a log written before it gets it filled and
        the log's own ``audit show`` indexes dropped at its first open while it holds at most
        :data:`OPEN_INDEX_MAX` records; a larger one is opened without it (writers then skip it, and ``aios audit
        show`` reads the log as before) until the upgrade command builds it. A read-only database is left as it is:
        readers then fold the log.
        """
        objects = (*cls._PROJECTION_OBJECTS, *LOG_INDEXES, *show.OBJECTS, *show.OLD_INDEXES, *parents.OBJECTS)
        present = _present(conn, (*objects, parents.OLD_INDEX))
        tables = any(n not in present for n in cls._PROJECTION_OBJECTS)
        build = [n for n in LOG_INDEXES if n not in present]
        shown = any(n not in present for n in show.OBJECTS)
        old = set(show.OLD_INDEXES) & present
        # the lineage parent index in arrears: missing, or the lineage table's own index still there
        parented = any(n not in present for n in parents.OBJECTS) or parents.OLD_INDEX in present
        # a table defined otherwise (replaced by hand) is left for `aios audit verify` to report and for
        # `rebuild-projections` to build again (see missing_indexes): an open repairs nothing silently
        parented = parented and parents.defined(conn) is not False
        if (build or shown or old or parented) and _log_size(conn) > OPEN_INDEX_MAX:
            build, shown, old, parented = [], False, set(), False  # left to `aios audit rebuild-projections`
        migrate = shown or bool(old)  # a log of this size without audit_show (a new one too): created and filled now
        try:
            if tables or build:
                with _write(conn):
                    for name in build:
                        conn.execute(LOG_INDEXES[name])
                    if tables:
                        for stmt in projections.schema("sqlite"):
                            conn.execute(stmt)
            if migrate:
                show.build(conn, _write)  # and the log's old show indexes dropped
            if parented:
                parents.build(conn, _write)  # and the lineage table's own parent index dropped
        except sqlite3.OperationalError as e:
            if "readonly" not in str(e) and "read-only" not in str(e):
                raise

    def missing_indexes(self) -> list[str]:
        """The :data:`LOG_INDEXES` this database lacks (a log larger than :data:`OPEN_INDEX_MAX` records opened first
        by a version that has them: see :meth:`_ensure_projections`), ``audit_show`` while it lacks more than
        :data:`.sqlite_show.MISSING` records of the log or the log still has its old ``audit show`` indexes, and
        ``audit_lineage_parents`` likewise, or while it is defined otherwise than this version defines it."""
        conn = self._conn()
        present = _present(conn, (*LOG_INDEXES, show.TABLE, *show.OLD_INDEXES, parents.OLD_INDEX))
        out = [name for name in LOG_INDEXES if name not in present]
        if show.TABLE not in present or set(show.OLD_INDEXES) & present or show.backlog(conn) > show.MISSING:
            out.append(show.TABLE)
        if (
            not parents.defined(conn)  # missing, or defined otherwise (replaced by hand): built again
            or parents.OLD_INDEX in present
            or parents.backlog(conn) > parents.MISSING
        ):
            out.append(parents.TABLE)
        return out

    def build_indexes(self, progress: Callable[[str, float], None] | None = None) -> list[str]:
        """Build the log's missing read indexes, one write transaction each (other writers wait for one index at
        most), and bring ``audit_show`` up to the log (:func:`.sqlite_show.build`), ``progress(name, seconds)`` told
        as each is done; returns their names."""
        built: list[str] = []
        conn = self._conn()
        for name in self.missing_indexes():
            t0 = time.perf_counter()
            if name == show.TABLE:
                show.build(conn, _write)
            elif name == parents.TABLE:
                parents.build(conn, _write)
            else:
                with _write(conn):
                    conn.execute(LOG_INDEXES[name])
            built.append(name)
            if progress is not None:
                progress(name, time.perf_counter() - t0)
        return built

    def show_indexed(self) -> int | None:
        """The last ``seq`` ``audit_show`` holds (``aios audit show`` reads the records after it from the log), or
        None where ``aios audit show`` reads the log as before: the table is missing (a large log not yet upgraded,
        a read-only one) or not yet complete (the log's old indexes are still there: an upgrade not finished)."""
        conn = self._conn()
        if _present(conn, (show.TABLE, *show.OLD_INDEXES)) != {show.TABLE}:
            return None
        return show.upto(conn)

    def lineage_parents(self) -> bool:
        """Whether lineage rows are found by parent through ``audit_lineage_parents`` and the lineage table's tail
        (:mod:`.sqlite_parents`): the table is there, defined as this version defines it, and the lineage table's own
        parent index is gone (an upgrade finished). Otherwise through the lineage table (its index: a large log not
        yet upgraded, a read-only one)."""
        conn = self._conn()
        return bool(parents.defined(conn)) and not _present(conn, (parents.OLD_INDEX,))

    def has_index(self, name: str) -> bool:
        """Whether the database holds the index (or table) ``name``."""
        return bool(_present(self._conn(), (name,)))

    def show_problems(
        self, since: int = 0, until: int | None = None, *, rows: bool = True, beyond: bool = True
    ) -> list[tuple[str, int, str]]:
        """``audit_show``'s rows of the records ``since + 1 .. until`` that the log does not derive, and its rows
        beyond the log (see :func:`.sqlite_show.problems`); none where the table is missing."""
        if not self.has_index(show.TABLE):
            return []
        return show.problems(self._conn(), since, until, rows=rows, beyond=beyond)

    def parents_problems(
        self,
        since: int = 0,
        until: int | None = None,
        *,
        rows: bool = True,
        beyond: bool = True,
        extra: bool = False,
        suspect: bool = False,
    ) -> list[tuple[str, int, str]]:
        """``audit_lineage_parents`` against the lineage rows (see :func:`.sqlite_parents.problems`); none where the
        table is missing."""
        if not self.has_index(parents.TABLE):
            return []
        conn = self._conn()
        return parents.problems(conn, since, until, rows=rows, beyond=beyond, extra=extra, suspect=suspect)

    def read_sql(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._conn().execute(sql, tuple(params)).fetchall()

    def iter_sql(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        cur = self._conn().execute(sql, tuple(params))
        while batch := cur.fetchmany(4096):
            yield from batch

    def projection_fill(
        self, rows: dict[str, list[tuple[Any, ...]]], expect: int, missing: int, state: str = projections.STATE
    ) -> int:
        conn = self._conn()
        with _write(conn):
            row = conn.execute(f"SELECT missing_through FROM {state} WHERE id = 1").fetchone()
            if row is None or int(row[0]) != expect:
                msg = f"projection rebuild expected missing_through {expect}, found {row and row[0]}: another rebuild?"
                raise projections.ProjectionTampered(msg)
            for table, values in rows.items():
                conn.executemany(projections.BY_NAME[table].fill_sql("sqlite"), values)
            parents.fill(conn, rows.get(projections.LINEAGE.name, []))  # those the parent table covers already
            conn.execute(f"UPDATE {state} SET missing_through = ? WHERE id = 1", (missing,))
        return sum(map(len, rows.values()))

    def projection_reset(self) -> None:
        conn = self._conn()
        with _write(conn):
            for stmt in projections.drop_sql("sqlite"):
                conn.execute(stmt)
            for stmt in projections.schema("sqlite"):
                conn.execute(stmt)
            conn.execute(f"DROP TABLE IF EXISTS {show.TABLE}")  # derived from the log like the tables: again too
            parents.drop(conn)
        show.build(conn, _write)
        parents.build(conn, _write)  # marks the log's records: their rows come as the rebuild writes lineage rows

    def _conn(self) -> sqlite3.Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        # the connection's own pid: a forked child's copy, or one the exit handler closed, is not this process's
        if conn is None or conn.pid != os.getpid():
            # A connection must not cross fork(): a child opens its own, and never closes the parent's.
            keep_inherited(conn)
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False, factory=_Connection
            )
            conn.pid = os.getpid()
            _OPENED.add(conn)
            self._open_queue(conn)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            # after a large transaction (an id table rebuilt at ten million records: 1.5 GB of write-ahead log) the
            # WAL file is cut back to this when it next restarts, instead of keeping its largest size on disk
            conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            self._local.conn = conn
        return conn

    def _open_queue(self, conn: _Connection) -> None:
        """Open the writer-queue files ``<db>.lock`` and ``<db>.wait`` for ``conn`` (see :func:`_write`).

        A file this process may not open or create (a read-only folder) leaves ``conn`` without a queue, as before
        (SQLite still serializes its writers). One that another user could hold (:func:`.private_files.open_owned`: a
        link, not a regular file, owned by someone other than this process's user or root, or open to others) is refused
        with :class:`AuditWriteError`: in a shared folder such as ``/tmp`` another local user created ``audit.db.lock``
        first and held ``flock -s`` on it, and every writer blocked for ever. Root opening a database another user
        owns takes no queue at all: trusting that user's queue files let them stall root's writers (re-review R4).
        """
        owners = {os.geteuid(), 0}
        if os.geteuid() == 0:
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_uid != 0:  # root opening a service user's store (or one another user made):
                    return  # no queue, SQLite's busy timeout bounds its waits; that user's queue file could stall root
        try:
            with contextlib.suppress(OSError):  # a read-only folder: no writer queue (SQLite still serializes)
                conn.lock_fd = self._queue_fd(conn, ".lock", owners)
                conn.wait_fd = self._queue_fd(conn, ".wait", owners)  # after the lock: a folder with only it queues
        except UnsafeFile as e:
            conn.close()
            msg = (
                f"refusing the SQLite audit store {self.path}: its writers' queue file {e}, so another local user "
                f"could stall every audit write; nothing was written. Remove {e.path}, and keep the store in a folder "
                "only its own user can write (AIOS_AUDIT_STORE / AIOS_STATE_DIR)"
            )
            raise AuditWriteError(msg) from None

    def _queue_fd(self, conn: sqlite3.Connection, suffix: str, owners: Collection[int]) -> int:
        """A descriptor of the writer-queue file ``<db><suffix>`` (0600, never through a link, refused where another
        user could hold it: :func:`.private_files.open_owned`), closed with ``conn`` (see :func:`_write`)."""
        fd = open_owned(self.path.with_name(self.path.name + suffix), owners)
        weakref.finalize(conn, os.close, fd)
        return fd

    def append_many(
        self, events: Sequence[AuditEvent], precondition: Callable[[], None] | None = None
    ) -> list[AuditRecord]:
        if not events:
            return []
        conn = self._conn()
        try:
            with _write(conn):
                if precondition is not None:
                    precondition()
                out = self._insert(conn, events)
        except sqlite3.Error as e:
            msg = f"audit append to {self.path} failed: {e}. The action was not recorded; do not proceed"
            raise AuditWriteError(msg) from e
        self._notify(out)
        return out

    @staticmethod
    def _insert(conn: sqlite3.Connection, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        head = conn.execute("SELECT seq, chain_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        now = dt.datetime.now(dt.UTC)
        out, rows = seal_rows(head, events, now, now.isoformat())
        conn.executemany("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        for i, key, holder in event_claims(events):
            try:
                conn.execute("INSERT INTO audit_claims VALUES (?,?,?)", (key, holder, out[i].seq))
            except sqlite3.IntegrityError:
                row = conn.execute("SELECT holder, seq FROM audit_claims WHERE claim = ?", (key,)).fetchone()
                raise ClaimTaken(key, *(row or (holder, out[i].seq))) from None
        derived = projections.rows_for(rows)
        for table, values in derived.items():  # same transaction as the records
            conn.executemany(projections.BY_NAME[table].insert_sql(), values)
        requests = {r.seq for r in out if r.event.kind == "approval_request"}
        if requests:  # their parent rows now, not in arrears: a rejection must be found (parents.write_now)
            parents.write_now(conn, [v for v in derived.get(projections.LINEAGE.name, ()) if v[0] in requests])
        show.after_append(conn, out[-1].seq, len(out))  # audit show's columns, a batch at a time
        parents.after_append(conn, out[-1].seq, len(out))  # the lineage parent index, a batch at a time
        return out

    def claim_holders(self, keys: Collection[str]) -> dict[str, tuple[str, int]]:
        out: dict[str, tuple[str, int]] = {}
        keys = list(keys)
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            q = f"SELECT claim, holder, seq FROM audit_claims WHERE claim IN ({','.join('?' * len(part))})"
            out.update({k: (h, int(s)) for k, h, s in self._conn().execute(q, part)})
        return out

    def scan_claims(self, after: int = 0) -> Iterator[tuple[str, str, int]]:
        q = "SELECT claim, holder, seq FROM audit_claims WHERE seq > ? ORDER BY seq, claim"
        yield from self._conn().execute(q, (after,))

    def scan_raw(self, start: int = 1, end: int | None = None) -> Iterator[RawRow]:
        q = f"SELECT {_COLS} FROM audit_log WHERE seq >= ? AND seq <= ? ORDER BY seq"
        cur = self._conn().execute(q, (start, end if end is not None else 2**62))
        while batch := cur.fetchmany(4096):
            yield from batch

    def scan_hashes(self, start: int = 1, end: int | None = None) -> Iterator[tuple[int, bytes, str]]:
        q = "SELECT seq, entry, leaf_hash || prev_hash || chain_hash FROM audit_log WHERE seq >= ? AND seq <= ?"
        q += " ORDER BY seq"
        yield from self._conn().execute(q, (start, end if end is not None else 2**62))

    def scan_sealed(
        self, start: int = 1, end: int | None = None
    ) -> Iterator[tuple[int, bytes, str, bytes, bytes | None, bytes]]:
        from flytekitplugins.aios_audit.columns import select_sql

        q = f"SELECT seq, entry, leaf_hash || prev_hash || chain_hash, {select_sql('sqlite')} FROM audit_log"
        q += " WHERE seq >= ? AND seq <= ? ORDER BY seq"
        yield from self._conn().execute(q, (start, end if end is not None else 2**62))

    def size(self) -> int:
        return _log_size(self._conn())

    def get(self, record_id: str) -> AuditRecord | None:
        return self.get_many([record_id]).get(record_id)

    def get_many(self, record_ids: Collection[str]) -> dict[str, AuditRecord]:
        ids = list(dict.fromkeys(record_ids))
        if not ids:
            return {}
        conn = self._conn()
        # through the id table, and for the few records appended since it was last brought up to date, the log's
        # tail (a range of its primary key): a look-up after an append takes no write transaction, which cost an
        # fsync each (the acting point's check of each consumption). A longer backlog is indexed first; in a
        # read-only database, where it cannot be, the log itself (a full scan unless the log has the old index)
        # A one-shot reader (opened with ``ids_tail_read``) writes nothing: it takes no step of the backlog (a write
        # transaction and its fsync a look-up, 2-7 ms each at ten million records) and finds the backlog's records
        # through its map of the tail, read once (each look-up scanned the whole tail again: 3-7 ms for ten thousand)
        via_ids = "seq IN (SELECT seq FROM audit_ids WHERE leaf_hash IN ({}))"
        one_shot = self._ids_tail_read is not None
        span = self._ids_span(conn, step=not one_shot)
        tail: dict[str, int] | None = None
        if span is None:
            wheres = ["leaf_hash IN ({})"]
        else:
            indexed, log = span
            wheres = [via_ids]
            if log > indexed and one_shot:
                tail = self._tail_seqs(conn, indexed, log)
            elif log > indexed:
                wheres.append(f"seq > {int(indexed)} AND leaf_hash IN ({{}})")
        out: dict[str, AuditRecord] = {}
        wanted = set(ids)
        for i in range(0, len(ids), GET_MANY_CHUNK):
            part = ids[i : i + GET_MANY_CHUNK]
            queries: list[tuple[str, Sequence[object]]] = [
                (where.format(",".join("?" * len(part))), part) for where in wheres
            ]
            if tail is not None and (seqs := [tail[r] for r in part if r in tail]):
                queries.append((f"seq IN ({','.join('?' * len(seqs))})", seqs))
            for where, params in queries:
                for row in conn.execute(f"SELECT {_COLS} FROM audit_log WHERE {where} ORDER BY seq", params):
                    # neither the id table nor the tail's map is trusted on its own: the row must carry the id asked
                    # (the first such row)
                    if row[2] in wanted and row[2] not in out:
                        out[row[2]] = record_from_entry(row[1], row[2], row[3], row[4])
        return out

    @property
    def _tail_read(self) -> int:
        """Records appended since the id table's last catch-up that this store's look-ups read from the log's tail
        (``ids_tail_read``, else :data:`IDS_TAIL_READ`)."""
        return IDS_TAIL_READ if self._ids_tail_read is None else self._ids_tail_read

    def _tail_seqs(self, conn: sqlite3.Connection, indexed: int, log: int) -> dict[str, int]:
        """Record id -> seq of the log's records ``indexed + 1 .. log`` (the first record of each id), for a one-shot
        reader: read once, then extended by the records appended since; at most ``ids_tail_read`` records are mapped
        (:meth:`_ids_span` indexes a longer backlog first), and the map is read again from ``indexed`` when it would
        hold more or no longer meets the id table."""
        with self._tail_lock:
            low, high = self._tail_span
            if not low <= indexed <= high or log - low > self._tail_read:
                # the first look-up; an id table rebuilt below the map's start or caught up past its end; or a map
                # that would outgrow the backlog this reader reads from the tail (the id table caught up meanwhile)
                self._tail, low, high = {}, indexed, indexed
            if log > high:
                q = "SELECT seq, leaf_hash FROM audit_log WHERE seq > ? AND seq <= ? ORDER BY seq"
                for seq, leaf in conn.execute(q, (high, log)):
                    self._tail.setdefault(leaf, int(seq))
                self._tail_span = (low, log)
            return self._tail

    def _ids_span(self, conn: sqlite3.Connection, *, step: bool) -> tuple[int, int] | None:
        """``(indexed, log)`` for a look-up by record id: the id table answers for records ``1 .. indexed``, the log's
        tail (a range of its primary key) for ``indexed + 1 .. log``; None where the id table cannot answer (a backlog
        that a read-only database cannot index, or no id table): read the log itself.

        A backlog longer than this store reads from the tail (``ids_tail_read``) is indexed first. With ``step``, a
        backlog of more than :data:`IDS_TAIL_FREE` first gets its oldest :data:`IDS_STEP` indexed, one small write
        transaction (a look-up after an append otherwise takes none, which cost an fsync each)."""
        try:
            log, indexed = _ids_heads(conn)
        except sqlite3.Error:
            log = indexed = 0
        if 0 < log - indexed <= self._tail_read:
            if step and log - indexed > IDS_TAIL_FREE and self._index_step(conn, IDS_STEP):
                indexed = min(log, indexed + IDS_STEP)  # at least these: the tail read starts after them
            return indexed, log
        if not self._index_ids(conn):
            return None
        return log, log

    def ids_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        """Record ids starting with ``prefix`` (at most ``limit``, in id order), through the id table and, for a backlog
        this store reads from the tail (see ``ids_tail_read``), the log's tail; a longer backlog is indexed first.
        Candidates only: a record is read with :meth:`get`, which checks the row carries the id."""
        conn = self._conn()
        bounds = [prefix, prefix + "g"]  # ids are lowercase hex: "g" sorts after every continuation
        span = self._ids_span(conn, step=False)
        if span is None:  # the log itself
            q = "SELECT leaf_hash FROM audit_log WHERE leaf_hash >= ? AND leaf_hash < ? ORDER BY leaf_hash LIMIT ?"
            return [str(r[0]) for r in conn.execute(q, [*bounds, limit])]
        indexed, log = span
        q = "SELECT leaf_hash FROM audit_ids WHERE leaf_hash >= ? AND leaf_hash < ? ORDER BY leaf_hash LIMIT ?"
        found = {str(r[0]) for r in conn.execute(q, [*bounds, limit])}
        if log > indexed:
            q = "SELECT leaf_hash FROM audit_log WHERE seq > ? AND leaf_hash >= ? AND leaf_hash < ?"
            found.update(str(r[0]) for r in conn.execute(q, [indexed, *bounds]))
        return sorted(found)[:limit]

    def catch_up_ids(self, progress: Callable[[int], None] | None = None) -> bool:
        """Bring the record-id look-up table up to date now (``aios audit rebuild-projections`` does, as part of
        an upgrade, so that the first governance look-up after it does not pay for the whole log); ``progress(n)``
        is told the records indexed so far."""
        return self._index_ids(self._conn(), progress)

    def ids_backlog(self) -> int:
        """Records the next look-up by record id would index first (appends alone leave them: see ``get``)."""
        log, ids = _ids_heads(self._conn())
        return log - ids

    def ids_problems(self, after: int = 0, most: int = 10) -> list[str]:
        """Where the record-id table differs from the log, for records after ``after`` (at most ``most`` of each):
        a row naming another record than the log's at its seq, or one beyond the log, and rows missing below its
        last one (its rows are ``1 ..`` its last, as it is written). A look-up by id checks a row it finds, but a
        missing row hid a record from it: a store writer who left a rejected request's row out had the rejection
        count for nothing where a reader took "not found" for "not there" (review of 2026-12-07). ``aios audit
        verify`` reports these as tampering; rows past the last are an ordinary backlog, read from the log's tail."""
        conn = self._conn()
        _log, ids = _ids_heads(conn)
        q = (
            "SELECT i.seq, i.leaf_hash, l.leaf_hash FROM audit_ids i LEFT JOIN audit_log l ON l.seq = i.seq "
            "WHERE i.seq > ? AND l.leaf_hash IS NOT i.leaf_hash ORDER BY i.seq LIMIT ?"
        )
        out = [
            f"record-id row {seq} names {str(got)[:16]}..., the log's record {seq} is "
            + (f"{want[:16]}..." if want else "not there")
            for seq, got, want in conn.execute(q, (after, most))
        ]
        (held,) = conn.execute("SELECT COUNT(*) FROM audit_ids WHERE seq > ?", (after,)).fetchone()
        if int(held) < ids - after:
            q = (
                "SELECT l.seq FROM audit_log l WHERE l.seq > ? AND l.seq <= ? AND NOT EXISTS "
                "(SELECT 1 FROM audit_ids i WHERE i.seq = l.seq) ORDER BY l.seq LIMIT ?"
            )
            gone = [int(seq) for (seq,) in conn.execute(q, (after, ids, most))]
            out.append(
                f"the record-id table lacks the rows of records {gone} (it holds rows up to {ids}): a look-up by id "
                "does not find them"
            )
        return out

    @staticmethod
    def _index_ids(conn: sqlite3.Connection, progress: Callable[[int], None] | None = None) -> bool:
        """Add the records appended since the last look-up to ``audit_ids``; False if that cannot be done (a table
        already current is checked with a read, and no write lock is taken).

        In write transactions of :data:`IDS_CHUNK` records, each sorted by record id: appends from other writers
        wait for one chunk at most (a single catch-up of a whole log written by ``append`` alone, e.g. an upgraded
        store's first look-up, held the write lock for minutes at ten million records), and the random-order id
        index is filled in key order, each of its pages touched once per chunk. A backlog of at least
        :data:`IDS_BULK_MIN` records that is also larger than the part already indexed is indexed by
        :meth:`_rebuild_ids` instead: one transaction, the index built by one sort rather than by each chunk's
        inserts into it, which rewrite index pages all over it (a log of two million records written by appends
        alone: 28-29 s in chunks, 7-11 s by the rebuild; ten million: 255 s and 44-48 s; see
        benchmarks/id_catchup_bench.py).
        """
        done = 0
        try:
            log, ids = _ids_heads(conn)
            if log <= ids:
                return True  # nothing appended since the last look-up: no write lock taken
            if _rebuild_pays(log, ids):
                done = SQLiteAuditStore._rebuild_ids(conn)
                if progress is not None:
                    progress(done)
                log, ids = _ids_heads(conn)
                if log <= ids:
                    return True  # nothing appended during the rebuild
            while True:
                added = SQLiteAuditStore._index_next(conn, IDS_CHUNK)
                done += added
                if progress is not None:
                    progress(done)
                if added < IDS_CHUNK:
                    return True
        except sqlite3.Error:
            return False

    @staticmethod
    def _index_step(conn: sqlite3.Connection, limit: int) -> bool:
        """Index the oldest ``limit`` records the id table lacks, one write transaction; False if that cannot be done
        (a read-only database: the look-up then reads them from the log's tail all the same)."""
        try:
            SQLiteAuditStore._index_next(conn, limit)
        except sqlite3.Error:
            return False
        return True

    @staticmethod
    def _index_next(conn: sqlite3.Connection, limit: int) -> int:
        """Add the next ``limit`` records after the id table's last to it, in one write transaction, sorted by record
        id (the random-order index is filled in key order, each of its pages touched once); returns how many."""
        with _write(conn):
            cur = conn.execute(
                "INSERT OR IGNORE INTO audit_ids (seq, leaf_hash) SELECT seq, leaf_hash FROM audit_log "
                "WHERE seq > (SELECT COALESCE(MAX(seq), 0) FROM audit_ids) "
                "AND seq <= (SELECT COALESCE(MAX(seq), 0) FROM audit_ids) + ? ORDER BY leaf_hash",
                (limit,),
            )
        return max(cur.rowcount, 0)

    @staticmethod
    def _rebuild_ids(conn: sqlite3.Connection) -> int:
        """Index every record not yet in ``audit_ids`` in one write transaction: drop the id index, add the rows
        in log order, build the index again by sorting (SQLite's ``CREATE INDEX``). Returns the rows added.

        Writers wait for the whole transaction (measured in benchmarks/README.md), which is why only a backlog
        larger than the indexed part takes this path; the records appended meanwhile are left to the chunks after
        it. All or nothing: a failure rolls the index's drop back with the rest.
        """
        with _write(conn):
            if not _rebuild_pays(*_ids_heads(conn)):
                return 0  # another connection indexed them while this one waited for the lock: no second sort
            conn.execute("DROP INDEX IF EXISTS audit_ids_leaf")
            cur = conn.execute(
                "INSERT OR IGNORE INTO audit_ids (seq, leaf_hash) SELECT seq, leaf_hash FROM audit_log "
                "WHERE seq > (SELECT COALESCE(MAX(seq), 0) FROM audit_ids) ORDER BY seq"
            )
            conn.execute(_IDS_INDEX)
        return max(cur.rowcount, 0)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and conn.pid == os.getpid():
            conn.close()
        self._local.conn = None
