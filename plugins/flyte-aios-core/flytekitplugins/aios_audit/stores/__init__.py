"""Audit stores: append-only, hash-chained logs.

Contract for a store (implement every method of :class:`AuditStore`):

* ``append``/``append_many`` are durable before they return (the caller may act on the record); on any
  failure they raise :class:`AuditWriteError` and nothing is acknowledged. Governance callers treat that
  as a deny.
* Concurrent writers (threads, processes, pods) never fork the chain: the next ``seq`` and ``prev_hash``
  are read and written under one exclusive lock.
* Stores refuse in-place edits and deletes where the database can (triggers), but verification never
  relies on that: ``aios audit verify`` recomputes every hash.

* ``scan_raw`` yields exactly the bytes that were hashed, so verification never re-serializes.
* Claims make exactly-once rules structural. An event may carry ``attributes["claims"]`` (a list of
  ``{"key": ..., "holder": ...}``); the store writes each key into its ``audit_claims`` table (primary key
  ``claim``) in the SAME transaction as the record. A key that is already held aborts the whole append with
  :class:`ClaimTaken` (nothing is written). The claim is also sealed in the record, so the verifier re-derives
  the table from the log (``claims.verify_claims``) and reports any difference or duplicate as tampering.
* Projections (``projections.py``): records of the approval and catalog kinds write their rows into the
  governance tables, and every record its lineage rows (``lineage_rows.py``), in the SAME transaction
  (``projections.rows_for``; PostgreSQL's staged appends carry the lineage rows to the integrator); readers look
  them up by index and check them against the sealed records, and the verifier re-derives them from the log.
* Listeners (OpenLineage / OpenTelemetry emitters, see ``emit.py``) run AFTER the commit and are
  best-effort: their failures are logged, never raised, and never undo an acknowledged record.

Stores are chosen by URL (``AIOS_AUDIT_STORE``): ``sqlite:///path`` or ``postgresql://...``.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

from flytekitplugins.aios_audit.records import (
    GENESIS,
    AuditEvent,
    AuditRecord,
    chain_link,
    entry_seq_suffix,
    record_from_entry,
    seal_many,
)
from flytekitplugins.aios_core.errors import AiosError

log = logging.getLogger(__name__)

RawRow = tuple[int, bytes, str, str, str]
"""``(seq, entry bytes, leaf_hash, prev_hash, chain_hash)`` exactly as stored."""
Listener = Callable[[Sequence[AuditRecord]], None]


class AuditWriteError(AiosError):
    """An audit record could not be made durable. Governed actions must not proceed."""


class AuditOutcomeUnknown(AuditWriteError):
    """An append failed after its events may have been staged durably (PostgreSQL's batched path): they may be
    sequenced later by any integrator, so they must not be appended again; governed actions still must not proceed
    (no sequence number was confirmed). ``staged_id`` is the staged row when it is known."""

    def __init__(self, message: str, staged_id: int | None = None) -> None:
        super().__init__(message)
        self.staged_id = staged_id


class LogTampered(AiosError):
    """A record read from the log does not match its hashes or its predecessor: refuse to decide on it."""


class ClaimTaken(AiosError):
    """A unique claim (one use of an approval, one decision per approver, ...) is already held by someone."""

    def __init__(self, key: str, holder: str, seq: int) -> None:
        super().__init__(f"claim {key!r} is already held by {holder!r} (audit record seq {seq})")
        self.key, self.holder, self.seq = key, holder, seq


class PreconditionFailed(AiosError):
    """Raised by an ``append_many`` precondition to abort the append (stores re-raise it unchanged)."""


CLAIMS_ATTR = "claims"


def claim(key: str, holder: str) -> dict[str, str]:
    """One claim for ``AuditEvent.attributes["claims"]``."""
    return {"key": key, "holder": holder}


def claim_pairs(attributes: object) -> list[tuple[str, str]] | None:
    """``(key, holder)`` of each claim in an event's attributes (none when it has no claims attribute); None when
    that attribute is not a list of :func:`claim` objects, which no code of the pack writes: a record sealed so was
    written by hand (the verifier reports it, ``claim_malformed``; readers count it as claiming nothing)."""
    raw = attributes.get(CLAIMS_ATTR) if isinstance(attributes, dict) else None
    if not raw:  # absent, or an empty value of a domain field named "claims" (0, "", {}): as before, no claims
        return []
    if not isinstance(raw, list):
        return None
    pairs = [(c.get("key"), c.get("holder")) for c in raw if isinstance(c, dict)]
    if len(pairs) != len(raw) or not all(isinstance(k, str) and isinstance(h, str) for k, h in pairs):
        return None
    return pairs  # type: ignore[return-value]


def event_claims(events: Sequence[AuditEvent]) -> list[tuple[int, str, str]]:
    """``(index of the event, key, holder)`` for every claim the events carry."""
    out: list[tuple[int, str, str]] = []
    for i, ev in enumerate(events):
        pairs = claim_pairs(ev.attributes)
        if pairs is None:
            raise ValueError(
                f"the {CLAIMS_ATTR!r} attribute of a {ev.kind!r} event must be a list of claim(key, holder)"
            )
        out += [(i, key, holder) for key, holder in pairs]
    return out


@dataclasses.dataclass(frozen=True)
class Acknowledged:
    """A durable acknowledgement of appended events (:meth:`AuditStore.stage_many`).

    ``records`` holds the sealed records where the store sequenced them at once (SQLite, or appends with claims or
    projection rows); otherwise ``staged_id`` names the staged row, which the log integrates within a bounded delay
    (:meth:`AuditStore.is_integrated`, :meth:`AuditStore.integrate_staged`).
    """

    count: int
    staged_id: int | None = None
    records: tuple[AuditRecord, ...] = ()


class AuditStore(abc.ABC):
    """Append-only, hash-chained log of :class:`AuditRecord`."""

    url: str

    def stage_many(self, events: Sequence[AuditEvent]) -> Acknowledged:
        """Append ``events`` durably, without waiting for their sequence numbers where the store can.

        For writers that need no sequence number now (bulk task records, telemetry of many pods): the call returns
        once the events are durable (they survive a crash of the writer, of any integrator and of the server) and
        are sequenced exactly once, in one batch, within a bounded delay. Stores that sequence at once return the
        records. Listeners (lineage, traces) are not called for staged events. Use :meth:`append_many` when the
        caller acts on the record (a policy decision before a task body, an approval).
        """
        return Acknowledged(count=len(events), records=tuple(self.append_many(events)))

    def is_integrated(self, ack: Acknowledged) -> bool:
        """True once the acknowledged events are part of the log (always, for records sealed at once)."""
        return True

    def integrate_staged(self, timeout: float = 60.0) -> int:
        """Sequence every staged row now (waiting for a running integrator); returns how many were integrated."""
        return 0

    def append(self, event: AuditEvent) -> AuditRecord:
        """Append one event durably and return its chained record."""
        return self.append_many([event])[0]

    @abc.abstractmethod
    def append_many(
        self, events: Sequence[AuditEvent], precondition: Callable[[], None] | None = None
    ) -> list[AuditRecord]:
        """Append several events in one durable transaction (all or nothing).

        Args:
            events: what to append.
            precondition: called inside the write transaction, under the store's exclusive write lock, before
                anything is written; reads of this store made by the calling thread see every committed record and
                no other writer can append until the transaction ends. Raising aborts the append (the exception
                propagates unchanged). This is how check-then-append rules (one decision per approver) stay atomic.
        """

    def scan(self, start: int = 1, end: int | None = None) -> Iterator[AuditRecord]:
        """Yield records with ``start <= seq <= end`` in sequence order, parsed but NOT verified."""
        for _seq, entry, leaf, prev, chain in self.scan_raw(start, end):
            yield record_from_entry(entry, leaf, prev, chain)

    @abc.abstractmethod
    def scan_raw(self, start: int = 1, end: int | None = None) -> Iterator[RawRow]:
        """Yield stored rows ``(seq, entry, leaf, prev, chain)`` in sequence order, unparsed (fast verify)."""

    def scan_hashes(self, start: int = 1, end: int | None = None) -> Iterator[tuple[int, bytes, str]]:
        """Yield ``(seq, entry, leaf_hash + prev_hash + chain_hash)`` in sequence order: the verifier's fast path.

        One concatenated string per row instead of three halves the objects made per row; stores override
        this to concatenate in SQL. A NULL hash column yields a non-string, which never compares equal.
        """
        for seq, entry, leaf, prev, chain in self.scan_raw(start, end):
            ok = isinstance(leaf, str) and isinstance(prev, str) and isinstance(chain, str)
            yield seq, entry, leaf + prev + chain if ok else ""

    def scan_sealed(
        self, start: int = 1, end: int | None = None
    ) -> Iterator[tuple[int, bytes, str, bytes, bytes | None, bytes]]:
        """Like :meth:`scan_hashes`, plus the row's plain columns as ``columns.select_sql`` shapes them (the verifier).

        The columns (``kind``, ``subject``, ``execution``, ``task``, ``recorded_at``) are what SQL readers see;
        the verifier checks them against the sealed entry. Any NULL column makes ``kind`` None.
        """
        msg = f"{type(self).__name__} must implement scan_sealed so that `aios audit verify` can check its columns"
        raise NotImplementedError(msg)

    def scan_kinds(self, kinds: Collection[str], start: int = 1) -> Iterator[AuditRecord]:
        """Records of the given event kinds from ``start`` on, parsing only those (projections use this).

        The filter reads the hashed entry bytes (canonical JSON always holds ``"kind":"<kind>"``), never
        the unverified index columns, so an edited index cannot hide a record from a projection. Every row read is
        re-hashed and linked to the row before it (from ``start - 1``, or the genesis): the readers that fold the
        log (approvals, the catalog, where the projection tables are not complete) decided on an entry edited in
        place, and on a record rewritten with its hashes recomputed (review of 2026-12-06); they now raise
        :class:`LogTampered` (fail closed).
        """
        needles = tuple(b'"kind":' + json.dumps(k).encode() for k in kinds)
        wanted = frozenset(kinds)
        sha = hashlib.sha256
        link = GENESIS if start <= 1 else None  # the chain hash the next row must continue (its predecessor's)
        for seq, entry, leaf, prev, chain in self.scan_raw(max(1, start - 1)):
            leaf_b = sha(b"\x00" + entry).digest()
            linked = link in (None, prev) and entry.endswith(entry_seq_suffix(seq))
            link = chain_link(prev, leaf_b)
            if not linked or leaf_b.hex() != leaf or link != chain:
                raise LogTampered(f"audit record {seq} does not match its hashes (edited): run `aios audit verify`")
            if seq >= start and any(n in entry for n in needles):
                rec = record_from_entry(entry, leaf, prev, chain)
                if rec.event.kind in wanted:
                    yield rec

    dialect: str = ""
    """``sqlite`` or ``postgresql`` for stores that answer :meth:`read_sql` (projections, ``aios audit show``)."""

    def read_sql(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query with ``?`` placeholders (projections and ``aios audit show`` use this)."""
        raise NotImplementedError(f"{type(self).__name__} does not answer SQL queries")

    def iter_sql(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        """Like :meth:`read_sql`, streaming the rows in batches (bounded memory)."""
        yield from self.read_sql(sql, params)

    def projection_fill(
        self, rows: dict[str, list[tuple[Any, ...]]], expect: int, missing: int, state: str = "audit_proj_state"
    ) -> int:
        """Insert rebuilt projection rows and lower ``missing_through`` of the ``state`` table (one group's) from
        ``expect`` to ``missing``, atomically."""
        raise NotImplementedError(f"{type(self).__name__} has no projection tables")

    def projection_reset(self) -> None:
        """Drop and recreate the projection tables with every record marked as not built (a full rebuild)."""
        raise NotImplementedError(f"{type(self).__name__} has no projection tables")

    @abc.abstractmethod
    def claim_holders(self, keys: Collection[str]) -> dict[str, tuple[str, int]]:
        """``key -> (holder, seq)`` for the keys that are held (a read; the append is what decides)."""

    @abc.abstractmethod
    def scan_claims(self, after: int = 0) -> Iterator[tuple[str, str, int]]:
        """The rows ``(key, holder, seq)`` of the claims table with ``seq > after`` (all by default), by seq:
        verification compares them with the log (from a checkpoint: only those of the records after it)."""

    @abc.abstractmethod
    def size(self) -> int:
        """Number of records (the highest sequence number)."""

    @abc.abstractmethod
    def get(self, record_id: str) -> AuditRecord | None:
        """Record by id (leaf hash), or None."""

    def get_many(self, record_ids: Collection[str]) -> dict[str, AuditRecord]:
        """The records of ``record_ids`` that exist, by id: what :meth:`get` answers for each, in one query where
        the store can (the acting point reads a chunk's policy decisions at once: one round trip, not one each)."""
        found = {rid: self.get(rid) for rid in dict.fromkeys(record_ids)}
        return {rid: rec for rid, rec in found.items() if rec is not None}

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(records)`` after every durable append (best-effort; errors are logged)."""
        listeners: list[Listener] = self.__dict__.setdefault("_listeners", [])
        if listener not in listeners:
            listeners.append(listener)

    def _notify(self, records: Sequence[AuditRecord]) -> None:
        for listener in self.__dict__.get("_listeners", ()):
            try:
                listener(records)
            except Exception as e:
                log.warning("audit: emitter %r failed for %d record(s): %s", listener, len(records), e)


def seal_rows(
    head: tuple[int, str] | None, events: Sequence[AuditEvent], now: dt.datetime, recorded: object
) -> tuple[list[AuditRecord], list[tuple[object, ...]]]:
    """Chain ``events`` after the log head ``(seq, chain_hash)`` (None for an empty log).

    Returns the records and the ``audit_log`` rows to insert, in column order; ``recorded`` is the
    ``recorded_at`` column value for ``now`` in the database's own type (text for SQLite).
    Called by every store inside its exclusive write lock, so the chain never forks.
    """
    seq, prev = head if head else (0, GENESIS)
    sealed = seal_many(seq, prev, events, now)
    rows: list[tuple[object, ...]] = []
    for rec, entry in sealed:
        ev, ex = rec.event, rec.event.execution
        key, task = (ex.execution_key, ex.task_name) if ex else ("", "")
        hashes = (rec.leaf_hash, rec.prev_hash, rec.chain_hash)
        rows.append((rec.seq, recorded, ev.kind, ev.subject, key, task, entry, *hashes))
    return [rec for rec, _ in sealed], rows


_inherited: list[object] = []


_SEQ_REF = re.compile(r"#?([0-9]{1,19})")
MAX_SEQ = 2**63 - 1
"""The largest sequence number a log holds (SQLite's and PostgreSQL's 64-bit integers)."""


def seq_ref(ref: str) -> int | None:
    """The sequence number a ``#seq`` (or bare number) reference names: ASCII digits, 1 to :data:`MAX_SEQ`; None for
    anything else. ``str.isdigit`` also takes other scripts' digits ('٣', which ``int`` reads as 3) and signs like
    '²' (which ``int`` refuses), and a number past 64 bits overflowed the database driver."""
    m = _SEQ_REF.fullmatch(ref)
    n = int(m.group(1)) if m else 0
    return n if 1 <= n <= MAX_SEQ else None


def shown_ref(ref: object, most: int = 80) -> str:
    """A reference (or any value a message quotes) as ``repr`` shows it, cut to about ``most`` characters: an error
    does not echo a pasted page."""
    if isinstance(ref, str):
        return repr(ref) if len(ref) <= most else repr(ref[: most - 3]) + "..."
    text = repr(ref)
    return text if len(text) <= most else text[: most - 3] + "..."


def seq_runs(seqs: Sequence[int]) -> Iterator[tuple[int, int]]:
    """Contiguous ``(first, last)`` ranges covering ascending ``seqs``: records read by position one range a query
    (``scan_raw(first, last)``), not one query a record (an execution's records mostly follow each other)."""
    if not seqs:
        return
    first = last = seqs[0]
    for seq in seqs[1:]:
        if seq != last + 1:
            yield first, last
            first = seq
        last = seq
    yield first, last


def keep_inherited(conn: object) -> None:
    """Keep a connection inherited through fork() alive, unused, for the child's lifetime.

    Closing or freeing it in the child would act on the parent's session or file locks.
    """
    if conn is not None:
        _inherited.append(conn)


def open_store(url: str, *, ids_tail_read: int | None = None) -> AuditStore:
    """Open the store a URL names; an unknown scheme is a clear error.

    ``ids_tail_read``: SQLite only (see :class:`~flytekitplugins.aios_audit.stores.sqlite.SQLiteAuditStore`): how many
    records appended since its record-id table's last catch-up a look-up by id reads from the log's tail rather than
    indexing first; a one-shot reader passes a larger figure than the default. PostgreSQL indexes ids as it appends.
    """
    if url.startswith("sqlite:///"):
        from flytekitplugins.aios_audit.stores.sqlite import SQLiteAuditStore

        return SQLiteAuditStore(url, ids_tail_read=ids_tail_read)
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from flytekitplugins.aios_audit.stores.postgres import PostgresAuditStore

        return PostgresAuditStore(url)
    from flytekitplugins.aios_core.redact import mask_url

    msg = f"unsupported audit store URL {mask_url(url)!r}: use sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
    raise AuditWriteError(msg)
