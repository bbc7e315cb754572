"""``aios audit show``: filter, order and limit in the database, newest first, in pages (bounded memory).

The filters become SQL over the log's plain columns (``kind``, ``execution``, ``task``, ``recorded_at``, which
``aios audit verify`` proves equal to the sealed entries) and, for the actor, a prefix of the canonical entry
bytes (``{"event":{"actor":<json>,``: ``actor`` is the event's first field), through an index of that prefix.
Rows come newest first in pages of at most :data:`PAGE` (keyset pagination on ``seq``; for a time window on
``recorded_at, seq``, through the log's time index), each page is parsed and checked again with the exact Python
filter, and reading stops at ``limit`` matches: the cost follows what is shown, not the log's size (filters without
an index, such as a task substring, scan backwards from the head until enough rows match).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flytekitplugins.aios_audit.records import AuditEvent, AuditRecord, record_from_entry

PAGE = 512


@dataclass(frozen=True)
class ShowFilter:
    """What ``aios audit show`` selects (None: any)."""

    kind: str | None = None
    actor: str | None = None
    execution: str | None = None
    task: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def matches(self, r: AuditRecord) -> bool:
        """The exact rule (what the SQL narrows to), applied to each parsed record."""
        ex, ev = r.event.execution, r.event
        since, until = _utc(self.since), _utc(self.until)
        return not (
            (self.kind and ev.kind != self.kind)
            or (self.actor is not None and ev.actor != self.actor)
            or (self.execution and not (ex and self.execution in (ex.execution_key, ex.name)))
            or (self.task and not (ex and self.task in ex.task_name))
            or (since and r.recorded_at < since)
            or (until and r.recorded_at >= until)
        )


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def actor_prefix(actor: str) -> bytes:
    """The bytes every sealed entry of ``actor`` starts with (canonical JSON: ``actor`` is the first field)."""
    raw = AuditEvent.__pydantic_serializer__.to_json(AuditEvent(kind="x", actor=actor))
    return b'{"event":' + raw[: raw.index(b',"approvals":')] + b","


def like_escape(text: str) -> str:
    """``text`` as a literal in a LIKE pattern with ``ESCAPE '\\'`` (its %, _ and \\ match themselves)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def where_sql(f: ShowFilter, dialect: str, *, kind_index: bool = True) -> tuple[list[str], list[Any]]:
    """SQL conditions (``?`` placeholders) selecting a superset of what ``f.matches`` keeps (equal in practice).

    ``kind_index=False``: the kind's condition is spelled so that no index serves it (SQLite's ``+kind``,
    PostgreSQL's ``kind || ''``), so that a time window's query walks the time index: through the kind's index it
    read every record of the kind and sorted those in the window by time (61 s at ten million on PostgreSQL)."""
    conds: list[str] = []
    params: list[Any] = []
    if f.kind:
        plain = "+kind = ?" if dialect == "sqlite" else "kind || '' = ?"
        conds.append("kind = ?" if kind_index else plain)
        params.append(f.kind)
    if f.execution:
        if f.execution.count("/") == 2:
            conds.append("execution = ?")
            params.append(f.execution)
        else:  # a bare execution name: the key's last part
            conds.append("(execution = ? OR execution LIKE ? ESCAPE '\\')")
            params += [f.execution, "%/" + like_escape(f.execution)]
    if f.task:
        conds.append("instr(task, ?) > 0" if dialect == "sqlite" else "strpos(task, ?) > 0")
        params.append(f.task)
    for bound, op in ((_utc(f.since), ">="), (_utc(f.until), "<")):
        if bound is not None:
            conds.append(f"recorded_at {op} ?")
            params.append(bound.astimezone(dt.UTC).isoformat() if dialect == "sqlite" else bound)
    if f.actor is not None:
        conds.append(f"{actor_sql(dialect)} = ?")  # the expression of the actor index, so that the index serves it
        params.append(actor_prefix(f.actor))
    return conds, params


_APPROVALS = b',"approvals":'
"""What follows the actor in every canonical entry (``approvals`` is the event's second field)."""


def actor_sql(dialect: str) -> str:
    """SQL of an entry's bytes up to and including the comma after its actor: :func:`actor_prefix` of the record's
    actor for every entry the pack seals (its actor's JSON string cannot hold ``,"approvals":``: quotes in it are
    escaped). The stores index this expression (``audit_log_actor``); a query must spell it the same way to use it."""
    if dialect == "sqlite":
        return f"substr(entry, 1, instr(entry, X'{_APPROVALS.hex()}'))"
    return f"substring(entry from 1 for position('\\x{_APPROVALS.hex()}'::bytea in entry))"


def select_records(store: Any, f: ShowFilter, limit: int) -> list[AuditRecord]:
    """The newest ``limit`` records matching ``f``, oldest first (as ``aios audit show`` prints them).

    Newest by ``seq``; with a time window (``since``/``until``), newest by ``recorded_at`` then ``seq``, read from
    the log's time index (``audit_log_recorded``) from the window's end backwards, other filters (a kind too) checked
    on the way, so a window costs what it shows wherever it lies in the log (a window before the newest records used
    to scan every record after it: 3.7 s at ten million on PostgreSQL for a window that held nothing; with a common
    kind, through the kind's index, 61 s). The two orders agree: each store takes a record's time under the log's
    write lock, so times grow with ``seq`` (records sealed together share one).
    """
    if limit <= 0:
        return []
    by_time = f.since is not None or f.until is not None
    conds, params = where_sql(f, store.dialect, kind_index=not by_time)
    order = "recorded_at DESC, seq DESC" if by_time else "seq DESC"
    after: list[Any] = []  # the keyset of the last row read: seq, or (recorded_at, seq) with a time window
    out: list[AuditRecord] = []
    page = min(PAGE, max(limit, 16))
    while len(out) < limit:
        where = list(conds)
        if after:
            # a range on the index (``recorded_at <= ?``), the tie on time broken by seq
            where.append("recorded_at <= ? AND (recorded_at < ? OR seq < ?)" if by_time else "seq < ?")
        q = "SELECT seq, entry, leaf_hash, prev_hash, chain_hash, recorded_at FROM audit_log"
        q += (" WHERE " + " AND ".join(where) if where else "") + f" ORDER BY {order} LIMIT {int(page)}"
        keys = [after[0], after[0], after[1]] if by_time and after else after
        rows = store.read_sql(q, [*params, *keys])
        for seq, entry, leaf, prev, chain, recorded in rows:
            rec = record_from_entry(bytes(entry), leaf, prev, chain)
            if f.matches(rec):
                out.append(rec)
                if len(out) == limit:
                    break
            after = [recorded, int(seq)] if by_time else [int(seq)]
        if len(rows) < page:
            break
        page = PAGE
    out.reverse()
    return out
