"""SQLite audit store: the embedded default.

WAL journal with ``synchronous=FULL`` (a committed append survives power loss), ``BEGIN IMMEDIATE`` so
that several processes appending at once serialize on SQLite's write lock and never fork the chain,
and triggers that refuse UPDATE and DELETE on the log and any insert that is not the next link.
The canonical entry bytes are stored as they were hashed, so verification recomputes hashes over
exactly those bytes.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from flytekitplugins.aios_audit.records import GENESIS, AuditEvent, AuditRecord, record_from_entry
from flytekitplugins.aios_audit.stores import AuditStore, AuditWriteError, RawRow, keep_inherited, seal_rows

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit_log (
    seq         INTEGER PRIMARY KEY CHECK (seq >= 1),
    recorded_at TEXT NOT NULL,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    execution   TEXT NOT NULL,
    task        TEXT NOT NULL,
    entry       BLOB NOT NULL,
    leaf_hash   TEXT NOT NULL UNIQUE,
    prev_hash   TEXT NOT NULL,
    chain_hash  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_kind ON audit_log(kind);
CREATE INDEX IF NOT EXISTS audit_log_execution ON audit_log(execution);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_fork BEFORE INSERT ON audit_log
WHEN NEW.seq <> (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log)
  OR NEW.prev_hash <> COALESCE((SELECT chain_hash FROM audit_log ORDER BY seq DESC LIMIT 1), '{GENESIS}')
BEGIN SELECT RAISE(ABORT, 'audit_log refuses a gap or fork: seq and prev_hash must continue the chain head'); END;
"""

_COLS = "seq, entry, leaf_hash, prev_hash, chain_hash"


class SQLiteAuditStore(AuditStore):
    """Hash-chained log in one SQLite file; safe for several threads and processes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = Path(url.removeprefix("sqlite:///"))
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn().executescript(SCHEMA)
        except (OSError, sqlite3.Error) as e:
            msg = f"cannot open the SQLite audit store at {self.path}: {e}. Check AIOS_AUDIT_STORE / AIOS_STATE_DIR"
            raise AuditWriteError(msg) from e

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            # A connection must not cross fork(): a child opens its own, and never closes the parent's.
            keep_inherited(conn)
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def append_many(self, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        if not events:
            return []
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = self._insert(conn, events)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
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
        return out

    def scan_raw(self, start: int = 1, end: int | None = None) -> Iterator[RawRow]:
        q = f"SELECT {_COLS} FROM audit_log WHERE seq >= ? AND seq <= ? ORDER BY seq"
        cur = self._conn().execute(q, (start, end if end is not None else 2**62))
        while batch := cur.fetchmany(4096):
            yield from batch

    def scan_hashes(self, start: int = 1, end: int | None = None) -> Iterator[tuple[int, bytes, str]]:
        q = "SELECT seq, entry, leaf_hash || prev_hash || chain_hash FROM audit_log WHERE seq >= ? AND seq <= ?"
        q += " ORDER BY seq"
        yield from self._conn().execute(q, (start, end if end is not None else 2**62))

    def size(self) -> int:
        row = self._conn().execute("SELECT COALESCE(MAX(seq), 0) FROM audit_log").fetchone()
        return int(row[0])

    def get(self, record_id: str) -> AuditRecord | None:
        q = f"SELECT {_COLS} FROM audit_log WHERE leaf_hash = ?"
        row = self._conn().execute(q, (record_id,)).fetchone()
        return record_from_entry(row[1], row[2], row[3], row[4]) if row else None

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = None
