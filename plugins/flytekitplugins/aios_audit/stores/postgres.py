"""PostgreSQL audit store: many pods appending at once.

Each append runs in one transaction that first takes a transaction-scoped advisory lock keyed on the
schema (``pg_advisory_xact_lock``), then reads the chain head and inserts the next links. The lock
serializes writers, so the chain never forks; it is released by COMMIT, ROLLBACK or a dead client.
``synchronous_commit`` stays on: an acknowledged record survives a server crash. Triggers refuse UPDATE,
DELETE, TRUNCATE and any insert that does not continue the head, but verification never relies on them.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from flytekitplugins.aios_audit.records import GENESIS, AuditEvent, AuditRecord, record_from_entry
from flytekitplugins.aios_audit.stores import AuditStore, AuditWriteError, RawRow, keep_inherited, seal_rows

_LOCK = "hashtext(current_schema() || '.aios_audit_log')"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit_log (
    seq         BIGINT PRIMARY KEY CHECK (seq >= 1),
    recorded_at TIMESTAMPTZ NOT NULL,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    execution   TEXT NOT NULL,
    task        TEXT NOT NULL,
    entry       BYTEA NOT NULL,
    leaf_hash   TEXT NOT NULL UNIQUE,
    prev_hash   TEXT NOT NULL,
    chain_hash  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_kind ON audit_log(kind);
CREATE INDEX IF NOT EXISTS audit_log_execution ON audit_log(execution);
CREATE OR REPLACE FUNCTION aios_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP; END $$;
CREATE OR REPLACE FUNCTION aios_audit_check_head() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE head_seq BIGINT; head_hash TEXT;
BEGIN
  SELECT seq, chain_hash INTO head_seq, head_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
  IF NEW.seq <> COALESCE(head_seq, 0) + 1 OR NEW.prev_hash <> COALESCE(head_hash, '{GENESIS}') THEN
    RAISE EXCEPTION 'audit_log refuses a gap or fork at seq %', NEW.seq;
  END IF;
  RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION aios_audit_refuse();
CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION aios_audit_refuse();
CREATE OR REPLACE TRIGGER audit_log_no_fork BEFORE INSERT ON audit_log
  FOR EACH ROW EXECUTE FUNCTION aios_audit_check_head();
"""

_COLS = "seq, entry, leaf_hash, prev_hash, chain_hash"


class PostgresAuditStore(AuditStore):
    """Hash-chained log in PostgreSQL; one connection per thread and process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._local = threading.local()
        try:
            conn = self._conn()
            with conn.transaction():
                conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK})")
                conn.execute(SCHEMA)
        except Exception as e:
            msg = f"cannot open the PostgreSQL audit store ({self._redacted()}): {e}. Check AIOS_AUDIT_STORE"
            raise AuditWriteError(msg) from e

    def _redacted(self) -> str:
        head, sep, tail = self._dsn.partition("@")
        return f"postgresql://***@{tail}" if sep else head

    def _conn(self) -> Any:
        import psycopg

        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or getattr(self._local, "pid", None) != os.getpid():
            if conn is not None and getattr(self._local, "pid", None) != os.getpid():
                keep_inherited(conn)  # freeing it here would end the parent's session (libpq sends Terminate)
            conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def append_many(self, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        if not events:
            return []
        try:
            conn = self._conn()
            with conn.transaction():
                conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK})")
                out = self._insert(conn, events)
        except Exception as e:
            self._local.conn = None
            msg = f"audit append to {self._redacted()} failed: {e}. The action was not recorded; do not proceed"
            raise AuditWriteError(msg) from e
        self._notify(out)
        return out

    @staticmethod
    def _insert(conn: Any, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        head = conn.execute("SELECT seq, chain_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        now = dt.datetime.now(dt.UTC)
        out, rows = seal_rows(head, events, now, now)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO audit_log VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows)
        return out

    def scan_raw(self, start: int = 1, end: int | None = None) -> Iterator[RawRow]:
        q = f"SELECT {_COLS} FROM audit_log WHERE seq >= %s AND seq <= %s ORDER BY seq"
        with self._conn().cursor() as cur:
            cur.execute(q, (start, end if end is not None else 2**62))
            while batch := cur.fetchmany(4096):
                for seq, entry, leaf, prev, chain in batch:
                    yield seq, bytes(entry), leaf, prev, chain

    def scan_hashes(self, start: int = 1, end: int | None = None) -> Iterator[tuple[int, bytes, str]]:
        q = "SELECT seq, entry, leaf_hash || prev_hash || chain_hash FROM audit_log WHERE seq >= %s AND seq <= %s"
        q += " ORDER BY seq"
        with self._conn().cursor() as cur:
            cur.execute(q, (start, end if end is not None else 2**62))
            while batch := cur.fetchmany(4096):
                for seq, entry, hashes in batch:
                    yield seq, bytes(entry), hashes

    def size(self) -> int:
        row = self._conn().execute("SELECT COALESCE(MAX(seq), 0) FROM audit_log").fetchone()
        return int(row[0])

    def get(self, record_id: str) -> AuditRecord | None:
        row = self._conn().execute(f"SELECT {_COLS} FROM audit_log WHERE leaf_hash = %s", (record_id,)).fetchone()
        return record_from_entry(bytes(row[1]), row[2], row[3], row[4]) if row else None

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = None
