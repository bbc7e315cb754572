"""SQLite audit store: the embedded default.

WAL journal with ``synchronous=FULL`` (a committed append survives power loss), ``BEGIN IMMEDIATE`` so
that several processes appending at once serialize on SQLite's write lock and never fork the chain,
and triggers that refuse UPDATE and DELETE on the log.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from flytekitplugins.aios_audit.records import GENESIS, AuditEvent, AuditRecord, seal
from flytekitplugins.aios_audit.stores import AuditStore, AuditWriteError

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    seq         INTEGER PRIMARY KEY CHECK (seq >= 1),
    recorded_at TEXT NOT NULL,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    execution   TEXT NOT NULL,
    event       TEXT NOT NULL,
    leaf_hash   TEXT NOT NULL UNIQUE,
    prev_hash   TEXT NOT NULL UNIQUE,
    chain_hash  TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS audit_log_kind ON audit_log(kind);
CREATE INDEX IF NOT EXISTS audit_log_subject ON audit_log(subject);
CREATE INDEX IF NOT EXISTS audit_log_execution ON audit_log(execution);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_fork BEFORE INSERT ON audit_log
WHEN NEW.seq <> (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log)
BEGIN SELECT RAISE(ABORT, 'audit_log refuses a gap or fork: seq must be the next number'); END;
"""


class SQLiteAuditStore(AuditStore):
    """Hash-chained log in one SQLite file; safe for several threads and processes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = Path(url.removeprefix("sqlite:///"))
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._conn()
            conn.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as e:
            msg = f"cannot open the SQLite audit store at {self.path}: {e}. Check AIOS_AUDIT_STORE / AIOS_STATE_DIR"
            raise AuditWriteError(msg) from e

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
        return conn

    def append(self, event: AuditEvent) -> AuditRecord:
        return self.append_many([event])[0]

    def append_many(self, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT seq, chain_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (row[0], row[1]) if row else (0, GENESIS)
                out: list[AuditRecord] = []
                now = dt.datetime.now(dt.UTC)
                for ev in events:
                    seq += 1
                    rec = seal(seq, now, ev, prev)
                    conn.execute(
                        "INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?)",
                        (
                            rec.seq,
                            rec.recorded_at.isoformat(),
                            ev.kind,
                            ev.subject,
                            ev.execution.execution_key if ev.execution else "",
                            ev.model_dump_json(),
                            rec.leaf_hash,
                            rec.prev_hash,
                            rec.chain_hash,
                        ),
                    )
                    prev = rec.chain_hash
                    out.append(rec)
                conn.execute("COMMIT")
                return out
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            msg = f"audit append to {self.path} failed: {e}"
            raise AuditWriteError(msg) from e

    def _row_to_record(self, row: tuple[int, str, str, str, str, str]) -> AuditRecord:
        seq, recorded_at, event, leaf, prev, chain = row
        return AuditRecord(
            seq=seq,
            recorded_at=dt.datetime.fromisoformat(recorded_at),
            event=AuditEvent.model_validate_json(event),
            leaf_hash=leaf,
            prev_hash=prev,
            chain_hash=chain,
        )

    _COLS = "seq, recorded_at, event, leaf_hash, prev_hash, chain_hash"

    def scan(self, start: int = 1, end: int | None = None) -> Iterator[AuditRecord]:
        conn = self._conn()
        q = f"SELECT {self._COLS} FROM audit_log WHERE seq >= ? AND seq <= ? ORDER BY seq"  # noqa: S608
        for row in conn.execute(q, (start, end if end is not None else 2**62)):
            yield self._row_to_record(row)

    def size(self) -> int:
        row = self._conn().execute("SELECT COALESCE(MAX(seq), 0) FROM audit_log").fetchone()
        return int(row[0])

    def get(self, record_id: str) -> AuditRecord | None:
        q = f"SELECT {self._COLS} FROM audit_log WHERE leaf_hash = ?"  # noqa: S608
        row = self._conn().execute(q, (record_id,)).fetchone()
        return self._row_to_record(row) if row else None

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
