"""PostgreSQL audit store: many pods appending at once.

Plain appends are sequenced in batches (group commit, see ``pg_integrate``): a writer durably stages its events,
and whichever writer wins the log's advisory lock integrates every staged row in one transaction (sequence
numbers, ``recorded_at``, hash chain, ``audit_log`` insert); the call returns once its records are sealed.
Appends with a precondition or claims take the lock with ``pg_advisory_xact_lock``, integrate what is staged,
then run the precondition and insert in the same transaction. The lock serializes integrators, so the chain
never forks; it is released by COMMIT, ROLLBACK, unlock or a dead client. ``synchronous_commit`` stays on: an
acknowledged record survives a server crash. Triggers refuse UPDATE, DELETE, TRUNCATE and any insert that does
not continue the head, but verification never relies on them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

from flytekitplugins.aios_audit import projections
from flytekitplugins.aios_audit.projections_show import actor_sql
from flytekitplugins.aios_audit.records import GENESIS, AuditEvent, AuditRecord, record_from_entry, seal_many
from flytekitplugins.aios_audit.stores import (
    Acknowledged,
    AuditOutcomeUnknown,
    AuditStore,
    AuditWriteError,
    ClaimTaken,
    PreconditionFailed,
    RawRow,
    event_claims,
    keep_inherited,
    seal_rows,
)
from flytekitplugins.aios_audit.stores import pg_integrate as pgi
from flytekitplugins.aios_core.redact import mask_text

log = logging.getLogger(__name__)
_LOCK = pgi.LOCK
_STAGED_ROW = re.compile(r"staged audit row (\d+)")  # the server's wait names the row it staged and committed

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
CREATE OR REPLACE FUNCTION aios_audit_check_chain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN  -- every inserted row continues the row before it (in the table or in this statement): no gap, no fork
  IF EXISTS (SELECT 1 FROM aios_new_rows n LEFT JOIN audit_log p ON p.seq = n.seq - 1
             WHERE CASE WHEN n.seq = 1 THEN n.prev_hash <> '{GENESIS}'
                        ELSE p.seq IS NULL OR n.prev_hash <> p.chain_hash END) THEN
    RAISE EXCEPTION 'audit_log refuses a gap or fork';
  END IF;
  RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION aios_audit_refuse();
CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION aios_audit_refuse();
CREATE OR REPLACE TRIGGER audit_log_no_fork AFTER INSERT ON audit_log REFERENCING NEW TABLE AS aios_new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION aios_audit_check_chain();
DROP FUNCTION IF EXISTS aios_audit_check_head();
CREATE TABLE IF NOT EXISTS audit_claims (claim TEXT PRIMARY KEY, holder TEXT NOT NULL, seq BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_claims_seq ON audit_claims(seq);
CREATE OR REPLACE TRIGGER audit_claims_no_update BEFORE UPDATE OR DELETE ON audit_claims
  FOR EACH ROW EXECUTE FUNCTION aios_audit_refuse();
"""

_NO_FUTURE_FN = """
CREATE OR REPLACE FUNCTION aios_proj_no_future() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE top BIGINT; head BIGINT;
BEGIN  -- a row naming a record the log does not hold yet is refused (once per statement, over the rows it inserted)
  SELECT max(seq) INTO top FROM aios_new_rows;
  IF top IS NULL THEN RETURN NULL; END IF;
  SELECT max(seq) INTO head FROM audit_log;  -- the primary key's last entry
  IF top > COALESCE(head, 0) THEN
    RAISE EXCEPTION 'aios audit: % refuses a row at seq %: the log holds no record there yet (head %)',
      TG_TABLE_NAME, top, COALESCE(head, 0) USING ERRCODE = '23514';
  END IF;
  RETURN NULL;
END $$;
DO $$ BEGIN  -- audit_log of this schema, never a temporary table a session put before it
  EXECUTE format('ALTER FUNCTION aios_proj_no_future() SET search_path = %I, pg_temp', current_schema());
END $$;
"""


def _no_future_ddl() -> list[str]:
    """The statement-level trigger on every projection table that refuses a row whose seq is past the log's head
    (review of 2026-12-07, R4/F1). Every row the pack writes there names a record inserted before it in the same
    transaction; a row a writer role planted at the NEXT seq, before that record existed, hid the record's own row
    from the indexed readers (a rejection never read, so a later approval counted). ``COPY`` fires it too (the
    Python integrator's lineage rows). Not on ``audit_claims``: a claim is keyed by its claim, not its seq, and
    inserted ``ON CONFLICT (claim) DO NOTHING RETURNING``, so a planted claim makes the claimant's append raise
    :class:`ClaimTaken` (fail closed), never skips a row, and verification reports a claim its record does not
    hold, beyond the log or not."""
    tables = [t.name for t in projections.TABLES]
    return [_NO_FUTURE_FN] + [
        f"CREATE OR REPLACE TRIGGER {name}_no_future AFTER INSERT ON {name} REFERENCING NEW TABLE AS aios_new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION aios_proj_no_future()"
        for name in tables
    ]


LOG_INDEXES = {
    # time windows of `aios audit show`, newest first by (recorded_at, seq)
    "audit_log_recorded": "CREATE INDEX IF NOT EXISTS audit_log_recorded ON audit_log(recorded_at, seq)",
    # `aios audit show --actor`: the entry's bytes up to its actor
    "audit_log_actor": f"CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log(({actor_sql('postgresql')}))",
}
"""The log's read indexes added after the log itself: a log that lacks them gets them at its first open by the tables'
owner while it holds at most :data:`OPEN_INDEX_MAX` records; a larger one is opened without them (``CREATE INDEX``
holds off every append while it reads the whole table: 60.5 s for the two at ten million records) and ``aios audit
rebuild-projections`` builds them with ``CREATE INDEX CONCURRENTLY``, appends going on (:meth:`PostgresAuditStore.
build_indexes`)."""
OPEN_INDEX_MAX = 100_000
"""Records up to which an open builds the missing :data:`LOG_INDEXES` itself."""

_COLS = "seq, entry, leaf_hash, prev_hash, chain_hash"
_SESSION = "SET jit = off"
"""Every connection of the store runs without JIT compilation. The store's queries are look-ups and short ranges by
index; JIT only ever started on one the planner misjudged (a range whose bound is a subquery, estimated at a third of
a 22-million-row table) and cost 67 ms of compiling to return nothing."""
READERS = 2
"""Idle reader connections :meth:`PostgresAuditStore.iter_sql` keeps per thread for its next calls."""
SCAN_PAGE = 4096
"""Rows one query of a scan of the log returns. libpq reads a query's whole result into the client before the first
row is handed over (``fetchmany`` only slices it), so a scan of the log in one query held all of it in memory: 2 GB
for a million realistic records, so at ten million more than the machine has. A scan is therefore a sequence of
queries of at most this many rows, each starting after the last seq of the one before (the primary key's order)."""


def _pg(sql: str) -> str:
    """``?`` placeholders (the SQL projections share with SQLite) as psycopg's ``%s``."""
    return sql.replace("%", "%%").replace("?", "%s")


def _plain(row: Any) -> tuple[Any, ...]:
    """A row with ``bytea`` values as ``bytes`` (psycopg returns memoryview)."""
    if memoryview not in map(type, row):  # most rows hold none: no conversion
        return row if type(row) is tuple else tuple(row)
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)


def _ddl(deferred: Collection[str] = ()) -> list[str]:
    """Every statement that creates or upgrades the store's schema, in order (each idempotent); the Merkle tree
    level tables too, so that grants made after the owner's first open cover them; the :data:`LOG_INDEXES` but the
    ``deferred`` ones."""
    from flytekitplugins.aios_audit import nodes

    levels = [stmt.format(blob="BYTEA", without_rowid="") for stmt in nodes.SCHEMA]
    indexes = [stmt for name, stmt in LOG_INDEXES.items() if name not in deferred]
    return [SCHEMA, *indexes, pgi.STAGING, *projections.schema("postgresql"), *_no_future_ddl(), *levels]


@dataclasses.dataclass(frozen=True)
class _Expected:
    """What :func:`_ddl` creates, read off its text: the check :func:`schema_missing` makes before any DDL."""

    mark: str
    relations: tuple[str, ...]
    triggers: tuple[str, ...]  # "table.trigger"
    routines: tuple[str, ...]  # "name:md5 of the body"
    states: tuple[str, ...]  # projection state tables, one row each


@functools.cache
def _expected() -> _Expected:
    text = "\n".join(_ddl())
    relations = re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", text)
    relations += re.findall(r"CREATE (?:UNIQUE )?INDEX IF NOT EXISTS (\w+)", text)
    triggers = [f"{t}.{n}" for n, t in re.findall(r"CREATE OR REPLACE TRIGGER (\w+)\s.*?\sON (\w+)\s", text, re.S)]
    routines = [
        f"{n}:{hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()}"
        for n, body in re.findall(r"CREATE OR REPLACE (?:FUNCTION|PROCEDURE) (\w+)\(.*?\$\$(.*?)\$\$", text, re.S)
    ]
    mark = f"flyte-aios audit schema sha256:{hashlib.sha256(text.encode()).hexdigest()}"
    states = tuple(g.state for g in projections.GROUPS)
    return _Expected(mark, tuple(sorted(set(relations))), tuple(sorted(triggers)), tuple(sorted(routines)), states)


_CHECK = """
WITH ns AS (SELECT quote_ident(current_schema())::regnamespace AS oid)
SELECT obj_description(to_regclass(quote_ident(current_schema()) || '.audit_log'), 'pg_class'),
  ARRAY(SELECT c.relname::text FROM pg_class c, ns WHERE c.relnamespace = ns.oid AND c.relname = ANY(%(relations)s)),
  ARRAY(SELECT c.relname || '.' || t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid, ns
        WHERE c.relnamespace = ns.oid AND NOT t.tgisinternal AND t.tgenabled IN ('O', 'A')),
  ARRAY(SELECT p.proname || ':' || md5(p.prosrc) FROM pg_proc p, ns WHERE p.pronamespace = ns.oid),
  (SELECT md5(string_agg(pg_get_triggerdef(t.oid), ';' ORDER BY c.relname, t.tgname))
   FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid, ns WHERE c.relnamespace = ns.oid AND NOT t.tgisinternal)
"""
_TRIGGERS = " triggers:"
"""The mark ends with the digest of the triggers' definitions as the server printed them when the schema was made
(``pg_get_triggerdef``): a trigger redefined under its own name (say, no longer refusing DELETE) is made again."""


def schema_missing(conn: Any) -> list[str]:
    """What the store's schema lacks for this version of the pack (empty: nothing to create), read from the catalog.

    Opening a store used to run every ``CREATE ... IF NOT EXISTS`` and ``CREATE OR REPLACE`` statement each time:
    that needs the rights of the tables' owner (a read-only role, an auditor's, could open no store at all) and
    takes locks on the log that queue behind writers. Now the catalog is read first, without locks, and the
    statements run only when something is missing: a table or index, an enabled append-only trigger, a function
    whose body is not this version's, a trigger whose definition changed since the schema was made, a projection
    state row, or the schema mark (a comment on ``audit_log`` naming the digest of this version's statements and of
    the triggers as made). One disabled, redefined or replaced is put back by the next open with the owner's rights,
    as every open used to do. (Verification never relies on any of them: an owner can change them at any time.)
    """
    want = _expected()
    row = conn.execute(_CHECK, {"relations": list(want.relations)}).fetchone()
    mark, relations, triggers, routines, trigger_defs = row
    missing = sorted(set(want.relations) - set(relations))
    missing += sorted(f"trigger {t}" for t in set(want.triggers) - set(triggers))
    missing += sorted(f"function {r.split(':')[0]}" for r in set(want.routines) - set(routines))
    if mark != f"{want.mark}{_TRIGGERS}{trigger_defs}":
        missing.append(
            "the schema mark of this version" if (mark or "").split(_TRIGGERS)[0] != want.mark else "a trigger as made"
        )
    if not missing:
        counts = " + ".join(f"(SELECT count(*) FROM {s} WHERE id = 1)" for s in want.states)
        if conn.execute(f"SELECT {counts}").fetchone()[0] != len(want.states):
            missing.append("a projection state row")
    return missing


def _deferred(conn: Any, missing: list[str]) -> list[str]:
    """The :data:`LOG_INDEXES` among ``missing`` that an open leaves to ``aios audit rebuild-projections``: all of
    them on a log of more than :data:`OPEN_INDEX_MAX` records, none on a smaller one."""
    names = [name for name in missing if name in LOG_INDEXES]
    if not names or "audit_log" in missing:
        return []
    return names if _log_size(conn) > OPEN_INDEX_MAX else []


def _log_size(conn: Any) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_log").fetchone()[0])


_VALID_INDEXES = """SELECT c.relname FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
WHERE c.relnamespace = quote_ident(current_schema())::regnamespace AND c.relname = ANY(%s) AND i.indisvalid"""


def _staged_before(error: Exception) -> bool | None:
    """Whether a failed ``CALL aios_audit_append`` had committed its staged row: True when the server failed in the
    wait that follows the commit (``aios_audit_await``), False for any other error the server reported (its
    transaction, the staging insert with it, rolled back), None when the connection failed without a word from the
    server (it may have committed)."""
    diag = getattr(error, "diag", None)
    if _STAGED_ROW.search(str(error)) or "aios_audit_await" in str(getattr(diag, "context", None) or ""):
        return True
    return False if getattr(error, "sqlstate", None) else None


_HEAD_SQL = "SELECT seq, chain_hash, aios_audit_honest_time(recorded_at) FROM audit_log ORDER BY seq DESC LIMIT 1"
"""The log's head and its time where an honest clock gives it (the rule the server-side integrators apply,
``aios_audit_honest_time``): a head a writer inserted by hand far ahead (or at infinity) is not followed."""


class PostgresAuditStore(AuditStore):
    """Hash-chained log in PostgreSQL; one connection per thread and process."""

    LOG_INDEXES = LOG_INDEXES

    def __init__(self, url: str) -> None:
        self.url = url
        self._dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._local = threading.local()
        try:
            conn = self._conn()
            missing = schema_missing(conn)
        except Exception as e:
            msg = f"cannot open the PostgreSQL audit store ({self._redacted()}): {mask_text(e)}. Check AIOS_AUDIT_STORE"
            raise AuditWriteError(msg) from e
        if missing:
            try:
                deferred = _deferred(conn, missing)
            except Exception as e:
                msg = f"cannot open the PostgreSQL audit store ({self._redacted()}): {mask_text(e)}"
                raise AuditWriteError(msg) from e
            if set(missing) - set(deferred):
                self._create_schema(conn, missing, deferred)

    def _create_schema(self, conn: Any, missing: list[str], deferred: Collection[str] = ()) -> None:
        """Create or bring up to date the tables, indexes (but the ``deferred`` read indexes of a large log: see
        :data:`LOG_INDEXES`), triggers and functions (under the log's lock), and mark the schema current. Needs the
        rights of the role that owns the audit tables."""
        import psycopg

        try:
            with conn.transaction():
                conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK})")
                for stmt in _ddl(deferred):
                    conn.execute(stmt)
                defs = conn.execute(_CHECK, {"relations": []}).fetchone()[4]  # the triggers as just made
                conn.execute(f"COMMENT ON TABLE audit_log IS '{_expected().mark}{_TRIGGERS}{defs}'")  # quote-free
        except psycopg.errors.InsufficientPrivilege as e:
            shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
            msg = (
                f"the PostgreSQL audit store ({self._redacted()}) lacks what this version of the pack needs "
                f"({shown}) and this role may not create it ({mask_text(e)}). Open the store once with the role "
                "that owns the audit tables (any aios command does, e.g. `aios audit show --limit 1`), then retry: "
                "readers and writers need no more than the grants in docs/audit.md, 'Database roles'"
            )
            raise AuditWriteError(msg) from None
        except Exception as e:
            msg = f"cannot open the PostgreSQL audit store ({self._redacted()}): {mask_text(e)}. Check AIOS_AUDIT_STORE"
            raise AuditWriteError(msg) from e

    def missing_indexes(self) -> list[str]:
        """The :data:`LOG_INDEXES` this schema lacks, or holds invalid (a concurrent build that was interrupted)."""
        present = {name for (name,) in self._conn().execute(_VALID_INDEXES, (list(LOG_INDEXES),))}
        return [name for name in LOG_INDEXES if name not in present]

    def build_indexes(self, progress: Callable[[str, float], None] | None = None) -> list[str]:
        """Build the missing :data:`LOG_INDEXES` with ``CREATE INDEX CONCURRENTLY`` (appends go on meanwhile; an
        invalid index left by an interrupted build is dropped first), ``progress(name, seconds)`` told as each is
        done; returns their names. Needs the rights of the role that owns the audit tables."""
        built: list[str] = []
        for name in self.missing_indexes():
            t0 = time.perf_counter()
            conn = self._connect(autocommit=True)  # CONCURRENTLY runs outside any transaction block
            try:
                conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                conn.execute(LOG_INDEXES[name].replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY", 1))
            finally:
                conn.close()
            built.append(name)
            if progress is not None:
                progress(name, time.perf_counter() - t0)
        return built

    def _redacted(self) -> str:
        from flytekitplugins.aios_core.redact import mask_url

        return mask_url(self._dsn)

    def _connect(self, autocommit: bool) -> Any:
        """A new connection to the store's server with the store's session settings (:data:`_SESSION`, committed: it
        stays for the session whatever the connection's transactions do)."""
        import psycopg

        conn = psycopg.connect(self._dsn, autocommit=autocommit, connect_timeout=10)
        conn.execute(_SESSION)
        if not autocommit:
            conn.commit()
        return conn

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or getattr(self._local, "pid", None) != os.getpid():
            if conn is not None and getattr(self._local, "pid", None) != os.getpid():
                keep_inherited(conn)  # freeing it here would end the parent's session (libpq sends Terminate)
            conn = self._connect(autocommit=True)
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def append_many(
        self, events: Sequence[AuditEvent], precondition: Callable[[], None] | None = None
    ) -> list[AuditRecord]:
        if not events:
            return []
        conn, batched = None, False
        try:
            conn = self._conn()
            plain = (
                precondition is None and not event_claims(events) and not projections.touches(e.kind for e in events)
            )
            if plain and len(events) <= pgi.MAX_STAGED_EVENTS:  # a staged row holds at most that many events
                batched = True
                out = self._append_batched(conn, events)
            else:
                out = self._append_locked(conn, events, precondition)
        except (ClaimTaken, PreconditionFailed):
            raise
        except pgi.ReceiptNotInLog as e:  # a receipt the log does not bear out: whatever happened, do not proceed
            self._drop(conn)
            msg = (
                f"audit append to {self._redacted()} is unconfirmed: {e}. Someone with write access to the audit"
                " store may have removed the staged events: do not proceed, and run `aios audit verify`"
            )
            raise AuditOutcomeUnknown(msg, None) from e
        except pgi.StagedNotSequenced as e:  # staged and committed: the next integrator sequences it
            why = f"staged row {e.staged_id} is durably staged but was not sequenced in time ({mask_text(e.cause)})"
            raise self._unknown(conn, why, e.staged_id, certain=True) from e
        except Exception as e:
            staged = _staged_before(e) if batched else False
            if staged is not False:  # the procedure committed the staged row before it waited (or may have)
                found = _STAGED_ROW.search(str(e))
                sid = int(found.group(1)) if found else None
                raise self._unknown(conn, mask_text(e), sid, certain=staged is True) from e
            raise self._failed(conn, e, "The action was not recorded; do not proceed") from e
        self._notify(out)
        return out

    def _unknown(self, conn: Any, why: str, staged_id: int | None, certain: bool) -> AuditOutcomeUnknown:
        """The error of a batched append that failed once its events were (or may have been) staged: they will be
        sequenced by the next integrator, so appending them again would record them twice."""
        self._drop(conn)
        state = "were staged durably" if certain else "may have been staged durably"
        msg = (
            f"audit append to {self._redacted()} failed: {why}. The events {state}"
            f"{f' (staged row {staged_id})' if staged_id is not None else ''} and will then be sequenced by the next"
            " integrator (`aios audit integrate`): do not append them again, and do not proceed until `aios audit"
            " show` finds them in the log"
        )
        return AuditOutcomeUnknown(msg, staged_id)

    def stage_many(self, events: Sequence[AuditEvent]) -> Acknowledged:
        """One durable insert of the events' bytes into ``audit_staged`` (and, every
        :data:`pgi.STAGE_INTEGRATE_EVERY_S`, integration if the lock is free): see :func:`pgi.stage`."""
        if not events or event_claims(events) or projections.touches(e.kind for e in events):
            return super().stage_many(events)  # claims and projection rows need the lock: sequenced at once
        conn = None
        try:
            conn = self._conn()
            now = time.monotonic()
            due = now - getattr(self._local, "integrated_at", -1e9) >= pgi.STAGE_INTEGRATE_EVERY_S
            staged = pgi.stage(conn, events, integrate=due)
            if due:
                self._local.integrated_at = now
        except pgi.StagedNotSequenced as e:  # durably staged: acknowledged; the next integrator sequences it
            log.warning("staged audit row %s; integrating after it failed: %s", e.staged_id, mask_text(e.cause))
            self._drop(conn)
            return Acknowledged(count=len(events), staged_id=e.staged_id)
        except Exception as e:
            raise self._failed(conn, e, "The events were not recorded") from e
        return Acknowledged(count=len(events), staged_id=staged)

    def is_integrated(self, ack: Acknowledged) -> bool:
        if ack.staged_id is None:
            return True
        return self._conn().execute("SELECT 1 FROM audit_staged WHERE id = %s", (ack.staged_id,)).fetchone() is None

    def integrate_staged(self, timeout: float = 60.0) -> int:
        return pgi.drain(self._conn(), timeout)

    @staticmethod
    def _append_batched(conn: Any, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        """Stage, then integrate or wait for the integrator; seal this call's records from its receipt."""
        when, first, prev = pgi.append(conn, events)
        records = [rec for rec, _entry in seal_many(first - 1, prev, events, when)]
        pgi.check_receipt(conn, records)
        return records

    def _append_locked(
        self, conn: Any, events: Sequence[AuditEvent], precondition: Callable[[], None] | None
    ) -> list[AuditRecord]:
        """Exclusive path: integrate what is staged, then run the precondition and insert, in one transaction.

        The precondition and the insert run in a savepoint: if they raise, the integrated batch still commits
        (other writers are waiting for it) and the exception propagates.
        """
        failure: Exception | None = None
        out: list[AuditRecord] = []
        with conn.transaction():
            conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK})")
            pgi.integrate_rows(conn)  # this transaction holds the lock: it always integrates
            try:
                with conn.transaction():
                    if precondition is not None:
                        precondition()
                    out = self._insert(conn, events)
            except Exception as e:
                failure = e
        if failure is not None:
            raise failure
        return out

    def _failed(self, conn: Any, error: Exception, consequence: str) -> AuditWriteError:
        """The error a failed write raises (masked: no password); the connection is dropped first."""
        self._drop(conn)
        return AuditWriteError(f"audit append to {self._redacted()} failed: {mask_text(error)}. {consequence}")

    def _drop(self, conn: Any) -> None:
        """Forget (and close) a connection after a failed append: it may hold the session lock or be broken."""
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: S110 - best effort, the server ends the session when the socket closes
                pass

    @staticmethod
    def _insert(conn: Any, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        head = conn.execute(_HEAD_SQL).fetchone()
        now = dt.datetime.now(dt.UTC)
        if head is not None and head[2] is not None:  # times never decrease along seq: a clock behind the head's
            now = max(now, head[2])  # record seals the head's time (none given where no honest clock gives it)
        out, rows = seal_rows(head and (head[0], head[1]), events, now, now)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO audit_log VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows)
            for i, key, holder in event_claims(events):
                cur.execute(
                    "INSERT INTO audit_claims VALUES (%s,%s,%s) ON CONFLICT (claim) DO NOTHING RETURNING claim",
                    (key, holder, out[i].seq),
                )
                if cur.fetchone() is None:
                    row = cur.execute("SELECT holder, seq FROM audit_claims WHERE claim = %s", (key,)).fetchone()
                    raise ClaimTaken(key, *(row or (holder, out[i].seq)))
            # same transaction as the records, plain inserts: a row already at (seq, pos) fails the append, loud,
            # never skipped (skipping hid a sealed rejection from the approvals readers, review of 2026-12-07 R4/F1).
            # The tables' triggers refuse a row at a seq the log does not hold yet, so only a row planted before
            # they existed can be there, and `aios audit verify` names it
            for table, values in projections.rows_for(rows).items():
                cur.executemany(_pg(projections.BY_NAME[table].insert_sql()), values)
        return out

    dialect = "postgresql"

    def read_sql(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return [_plain(r) for r in self._conn().execute(_pg(sql), tuple(params)).fetchall()]

    def iter_sql(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows of ``sql`` through a server-side cursor, :data:`SCAN_PAGE` a fetch, on a connection of its own.

        A plain cursor's result is read whole into memory before the first row (libpq), whatever ``fetchmany``
        asks for; a named cursor keeps the rows on the server until they are fetched. It needs a transaction, so it
        runs on a reader connection beside the store's own (committed rows only, as this store's autocommit reads
        see them: each call in a transaction of its own, a fresh snapshot), and the caller may use the store
        meanwhile. A reader whose call ran to the end is kept for the next (:data:`READERS` at most, per thread):
        a command that asks a dozen questions opens one, not a dozen (4-5 ms each on loopback).
        """
        import psycopg

        conn, fresh = self._reader()
        done = False
        try:
            while True:
                try:
                    cur = conn.cursor(name="aios_iter_sql", binary=True)
                    cur.itersize = SCAN_PAGE
                    cur.execute(_pg(sql), tuple(params))
                    break
                except psycopg.OperationalError:
                    if fresh:
                        raise
                    conn.close()  # a kept reader the server has closed meanwhile: once more on a new one
                    conn, fresh = self._reader(new=True)
            with cur:
                for r in cur:
                    yield _plain(r)
            conn.commit()
            done = True
        finally:
            if done and len(self._readers()) < READERS:
                self._readers().append(conn)
            else:
                conn.close()  # a call left unfinished (or failed): its transaction ends with the connection

    def _readers(self) -> list[Any]:
        """This thread's idle reader connections (a forked child's list starts empty: the parent's stay unused)."""
        if getattr(self._local, "readers_pid", None) != os.getpid():
            for conn in getattr(self._local, "readers", ()):
                keep_inherited(conn)
            self._local.readers, self._local.readers_pid = [], os.getpid()
        return self._local.readers

    def _reader(self, new: bool = False) -> tuple[Any, bool]:
        """An idle reader connection (no transaction open) and whether it was opened just now."""
        import psycopg

        idle = self._readers()
        while idle and not new:
            conn = idle.pop()
            if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                return conn, False
            conn.close()
        return self._connect(autocommit=False), True

    def projection_fill(
        self, rows: dict[str, list[tuple[Any, ...]]], expect: int, missing: int, state: str = projections.STATE
    ) -> int:
        conn = self._conn()
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(f"SELECT pg_advisory_xact_lock({_LOCK})")
            row = cur.execute(f"SELECT missing_through FROM {state} WHERE id = 1").fetchone()
            if row is None or int(row[0]) != expect:
                msg = f"projection rebuild expected missing_through {expect}, found {row and row[0]}: another rebuild?"
                raise projections.ProjectionTampered(msg)
            for table, values in rows.items():
                cur.executemany(_pg(projections.BY_NAME[table].fill_sql("postgresql")), values)
            cur.execute(f"UPDATE {state} SET missing_through = %s WHERE id = 1", (missing,))
        return sum(map(len, rows.values()))

    def projection_reset(self) -> None:
        conn = self._conn()
        with conn.transaction():
            conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK})")
            for stmt in projections.drop_sql("postgresql"):
                conn.execute(stmt)
            for stmt in [*projections.schema("postgresql"), *_no_future_ddl()]:  # the triggers dropped with them
                conn.execute(stmt)

    def claim_holders(self, keys: Collection[str]) -> dict[str, tuple[str, int]]:
        q = "SELECT claim, holder, seq FROM audit_claims WHERE claim = ANY(%s)"
        return {k: (h, int(s)) for k, h, s in self._conn().execute(q, (list(keys),))}

    def scan_claims(self, after: int = 0) -> Iterator[tuple[str, str, int]]:
        """Claims rows with a seq above ``after`` in ``(seq, claim)`` order, :data:`SCAN_PAGE` rows a query (each
        page after the last ``(seq, claim)`` of the one before). No upper bound: a row naming a record beyond the log
        is one the verifier must see."""
        conn = self._conn()
        q = "SELECT claim, holder, seq FROM audit_claims WHERE {} ORDER BY seq, claim LIMIT %s"
        rows = conn.execute(q.format("seq > %s"), (after, SCAN_PAGE)).fetchall()
        while True:
            yield from ((str(c), str(h), int(s)) for c, h, s in rows)
            if len(rows) < SCAN_PAGE:
                return
            last = rows[-1]
            rows = conn.execute(q.format("(seq, claim) > (%s, %s)"), (last[2], last[0], SCAN_PAGE)).fetchall()

    def _pages(self, cols: str, start: int, end: int | None) -> Iterator[tuple[Any, ...]]:
        """``cols`` (the first one ``seq``) of records ``start..end`` in seq order, :data:`SCAN_PAGE` rows a query.

        Without ``end``, up to the log's last record when the scan starts (what one query would have seen: records
        appended while the caller iterates are not included).
        """
        conn = self._conn()
        hi = end if end is not None else self.size()
        q = f"SELECT {cols} FROM audit_log WHERE seq >= %s AND seq <= %s ORDER BY seq LIMIT {SCAN_PAGE}"
        lo = start
        while lo <= hi:
            rows = conn.execute(q, (lo, hi), binary=True).fetchall()  # entries as bytes, not hex text: half the time
            yield from rows
            if len(rows) < SCAN_PAGE:
                return
            lo = int(rows[-1][0]) + 1

    def scan_raw(self, start: int = 1, end: int | None = None) -> Iterator[RawRow]:
        for seq, entry, leaf, prev, chain in self._pages(_COLS, start, end):
            yield seq, bytes(entry), leaf, prev, chain

    def scan_hashes(self, start: int = 1, end: int | None = None) -> Iterator[tuple[int, bytes, str]]:
        for seq, entry, hashes in self._pages("seq, entry, leaf_hash || prev_hash || chain_hash", start, end):
            yield seq, bytes(entry), hashes

    def scan_sealed(
        self, start: int = 1, end: int | None = None
    ) -> Iterator[tuple[int, bytes, str, bytes, bytes | None, bytes]]:
        from flytekitplugins.aios_audit.columns import select_sql

        cols = f"seq, entry, leaf_hash || prev_hash || chain_hash, {select_sql('postgresql')}"
        for seq, entry, hashes, tail, kind, pair in self._pages(cols, start, end):
            yield seq, bytes(entry), hashes, bytes(tail), kind and bytes(kind), bytes(pair)

    def size(self) -> int:
        return _log_size(self._conn())

    def get(self, record_id: str) -> AuditRecord | None:
        return self.get_many([record_id]).get(record_id)

    def get_many(self, record_ids: Collection[str]) -> dict[str, AuditRecord]:
        ids = list(dict.fromkeys(record_ids))
        if not ids:
            return {}
        rows = self._conn().execute(f"SELECT {_COLS} FROM audit_log WHERE leaf_hash = ANY(%s)", (ids,)).fetchall()
        return {row[2]: record_from_entry(bytes(row[1]), row[2], row[3], row[4]) for row in rows}

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = None
        readers = self._readers()
        while readers:
            readers.pop().close()
