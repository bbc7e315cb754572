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

import dataclasses
import datetime as dt
from collections.abc import Iterator
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


def where_sql(
    f: ShowFilter, dialect: str, *, kind_index: bool = True, keys: list[str] | None = None, plain: bool = False
) -> tuple[list[str], list[Any]]:
    """SQL conditions (``?`` placeholders) selecting a superset of what ``f.matches`` keeps (equal in practice).

    ``keys``: the ``project/domain/name`` keys a bare execution name was found to mean (:func:`column_keys`), compared
    as they are (the column's index serves them), instead of matching every key's last part.

    ``kind_index=False``: the kind's condition is spelled so that no index serves it (SQLite's ``+kind``,
    PostgreSQL's ``kind || ''``), so that a time window's query walks the time index: through the kind's index it
    read every record of the kind and sorted those in the window by time (61 s at ten million on PostgreSQL).

    ``plain`` (SQLite): no index serves the kind, the time or the actor (the log's tail after ``audit_show``, read by
    ``seq``; a log upgraded in place may still have its old indexes of them until it is rebuilt)."""
    conds: list[str] = []
    params: list[Any] = []
    if f.kind:
        plain_kind = "+kind = ?" if dialect == "sqlite" else "kind || '' = ?"
        conds.append("kind = ?" if kind_index and not plain else plain_kind)
        params.append(f.kind)
    if f.execution and keys is not None:
        conds.append(f"execution IN ({','.join('?' * len(keys))})" if keys else "1 = 0")
        params += keys
    elif f.execution:
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
            conds.append(f"{'+' if plain else ''}recorded_at {op} ?")
            params.append(bound.astimezone(dt.UTC).isoformat() if dialect == "sqlite" else bound)
    if f.actor is not None:
        conds.append(f"{'+' if plain else ''}{actor_sql(dialect)} = ?")  # the actor index's expression (unless plain)
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

    On SQLite an execution is found through the lineage rows (see :func:`_by_execution`), where the log has no index
    of its ``execution`` column; records older than the lineage rows (a log not yet rebuilt) are scanned as before.
    """
    if limit <= 0:
        return []
    built = _lineage_built_after(store) if f.execution and store.dialect == "sqlite" else None
    keys = execution_keys(store, f.execution or "") if built is not None else []
    if built is None and f.execution and f.execution.count("/") != 2 and store.dialect == "postgresql":
        named = column_keys(store, f.execution)  # a bare name: its keys, then the column's index
        out = _scan(store, f, limit, keys=named if len(named) <= MAX_KEYS else None)
    elif built is None or len(keys) > MAX_KEYS:
        out = _scan(store, f, limit)
    else:
        out = _by_execution(store, f, limit, built, keys)
        if len(out) < limit and built > 0:
            out += _scan(store, f, limit - len(out), upper=built)
    out.reverse()
    return out


_RECORD = "seq, entry, leaf_hash, prev_hash, chain_hash"
"""The columns a record is read back from (:func:`record_from_entry`)."""


def _scan(
    store: Any, f: ShowFilter, limit: int, upper: int | None = None, keys: list[str] | None = None
) -> list[AuditRecord]:
    """The newest ``limit`` records matching ``f`` (of those with ``seq <= upper``), newest first, read in pages
    (``keys``: what a bare execution name means, see :func:`where_sql`).

    SQLite keeps the kind, time and actor of its records in ``audit_show``, written in arrears (see
    :mod:`.stores.sqlite_show`): the records after its last are read from the log first (the newest; fewer than a
    batch while writers keep up), then the others through its indexes."""
    indexed = getattr(store, "show_indexed", None)
    upto = indexed() if indexed is not None else None
    if upto is None:
        return _scan_log(store, f, limit, upper=upper, keys=keys)
    out = _scan_log(store, f, limit, lower=upto, upper=upper, keys=keys)
    below = upto if upper is None else min(upto, upper)
    if len(out) < limit and below > 0:
        out += _scan_show(store, f, limit - len(out), below, keys)
    return out


def _scan_log(
    store: Any,
    f: ShowFilter,
    limit: int,
    lower: int | None = None,
    upper: int | None = None,
    keys: list[str] | None = None,
) -> list[AuditRecord]:
    """:func:`_scan` of the log itself through its own indexes, or (``lower``: SQLite's records after ``audit_show``'s
    last) of its records after ``lower`` by ``seq``, through none."""
    # newest by time through the time index; a log not yet given it (see unindexed) newest by seq, the same
    # order, which reads backwards from the head instead of sorting every record of the window
    window = f.since is not None or f.until is not None
    by_time = window and lower is None and _time_index(store)
    conds, params = where_sql(f, store.dialect, kind_index=not by_time, keys=keys, plain=lower is not None)
    for bound, op in ((lower, ">"), (upper, "<=")):
        if bound is not None:
            conds.append(f"seq {op} ?")
            params.append(bound)
    out: list[AuditRecord] = []
    for rows in _pages(store, f"SELECT {_RECORD}, recorded_at FROM audit_log", conds, params, by_time, limit):
        for _seq, entry, leaf, prev, chain, _recorded in rows:
            rec = record_from_entry(bytes(entry), leaf, prev, chain)
            if f.matches(rec):
                out.append(rec)
                if len(out) == limit:
                    return out
    return out


def _pages(
    store: Any, select: str, conds: list[str], params: list[Any], by_time: bool, limit: int
) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``select`` (its first column ``seq``, its last ``recorded_at``) under ``conds``, newest first (by
    time with ``by_time``, else by ``seq``), a page at a time: keyset pagination after the last row of each page, the
    first page sized for ``limit``. The caller stops when it has enough."""
    order = "recorded_at DESC, seq DESC" if by_time else "seq DESC"
    after: list[Any] = []  # the keyset of the last row read: seq, or (recorded_at, seq) with a time window
    page = min(PAGE, max(limit, 16))
    while True:
        # after a page: a range on the index (``recorded_at <= ?``), the tie on time broken by seq
        where = [*conds, *([_KEYSET if by_time else "seq < ?"] if after else [])]
        q = select + (" WHERE " + " AND ".join(where) if where else "") + f" ORDER BY {order} LIMIT {int(page)}"
        rows = store.read_sql(q, [*params, *_keyset(after, by_time)])
        if rows:
            yield rows
        if len(rows) < page:
            return
        after = [rows[-1][-1], int(rows[-1][0])] if by_time else [int(rows[-1][0])]
        page = PAGE


def _time_index(store: Any) -> bool:
    """Whether the log itself has its time index (SQLite's only while a log upgraded in place still has its old
    indexes, or a read-only one)."""
    has = getattr(store, "has_index", None)
    return has("audit_log_recorded") if has is not None else "audit_log_recorded" not in missing_indexes(store)


_KEYSET = "recorded_at <= ? AND (recorded_at < ? OR seq < ?)"
"""After the last row read, newest by time: a range on the time index, the tie on time broken by seq."""


def _keyset(after: list[Any], by_time: bool) -> list[Any]:
    return [after[0], after[0], after[1]] if by_time and after else after


def _scan_show(store: Any, f: ShowFilter, limit: int, upto: int, keys: list[str] | None) -> list[AuditRecord]:
    """:func:`_scan` of SQLite's records ``1 .. upto``, found through ``audit_show``'s indexes (kind, time, actor; a
    time window newest by time through its time index, the kind then checked on the way), each page's records then
    read from the log by ``seq`` with the other filters and checked with the exact one."""
    window = f.since is not None or f.until is not None
    only = ShowFilter(kind=f.kind, since=f.since, until=f.until)
    conds, params = where_sql(only, "sqlite", kind_index=not window)
    if f.actor is not None:
        conds.append("actor = ?")  # audit_show's column holds exactly actor_sql's bytes
        params.append(actor_prefix(f.actor))
    conds.append("seq <= ?")
    params.append(upto)
    rest, rest_params = where_sql(
        dataclasses.replace(f, kind=None, actor=None, since=None, until=None), "sqlite", keys=keys
    )
    out: list[AuditRecord] = []
    for rows in _pages(store, "SELECT seq, recorded_at FROM audit_show", conds, params, window, limit):
        seqs = [int(seq) for seq, _ in rows]
        q = f"SELECT {_RECORD} FROM audit_log WHERE seq IN ({','.join('?' * len(seqs))})"
        q += "".join(f" AND {c}" for c in rest)
        got = {int(r[0]): r[1:] for r in store.read_sql(q, [*seqs, *rest_params])}
        for seq in seqs:  # in the index's order
            if (row := got.get(seq)) is not None:
                rec = record_from_entry(bytes(row[0]), *row[1:])
                if f.matches(rec):
                    out.append(rec)
                    if len(out) == limit:
                        return out
    return out


NAMED_INDEX = "audit_log_execution_named"
_NAMED_EXECUTION = b'"execution":"'
"""In an entry: a field ``execution`` holding a string (an approval record's ``attributes.execution``, the execution
it acts on, or its request's), which the lineage row follows instead of the record's own execution."""


def named_execution_sql(dialect: str) -> str:
    """SQL true for the entries that hold :data:`_NAMED_EXECUTION`: the condition of SQLite's partial index
    ``audit_log_execution_named`` (a query must spell it the same way to use it)."""
    if dialect != "sqlite":
        raise ValueError("only the SQLite store keeps the named-execution index")
    return f"instr(entry, X'{_NAMED_EXECUTION.hex()}') > 0"


def missing_indexes(store: Any) -> list[str]:
    """The log's read indexes the store lacks (a log larger than its store's open-time limit, opened first by a version
    that has them: ``aios audit rebuild-projections`` builds them); none for a store without SQL."""
    missing = getattr(store, "missing_indexes", None)
    try:
        return list(missing()) if missing is not None else []
    except Exception:  # a database that cannot say (read-only, never opened by this version): as if none were built
        return list(getattr(store, "LOG_INDEXES", {}))


def unindexed(store: Any, f: ShowFilter) -> list[str]:
    """What ``f`` asks for that this store answers by reading the log, for lack of an index it will have once
    ``aios audit rebuild-projections`` has run (empty when nothing is missing)."""
    missing = set(missing_indexes(store))
    asked = {
        "--kind": bool(f.kind),
        "--since/--until": f.since is not None or f.until is not None,
        "--actor": f.actor is not None,
        "--execution": bool(f.execution),
    }
    # which index serves each filter: the log's own (PostgreSQL), SQLite's audit_show for three of them, and SQLite's
    # named-execution index (a store without it never lists it missing)
    serves = {
        "--kind": ("audit_log_kind", "audit_show"),
        "--since/--until": ("audit_log_recorded", "audit_show"),
        "--actor": ("audit_log_actor", "audit_show"),
        "--execution": (NAMED_INDEX,),
    }
    return [flag for flag, wanted in asked.items() if wanted and missing & set(serves[flag])]


def _lineage_built_after(store: Any) -> int | None:
    """``missing_through`` of the lineage rows (records up to it have none yet), or None when they cannot serve an
    execution's records here (no lineage table, rows of another rule version, no named-execution index)."""
    from flytekitplugins.aios_audit import projections

    try:
        state = store.read_sql(f"SELECT version, missing_through FROM {projections.LINEAGE_GROUP.state} WHERE id = 1")
        index = store.read_sql("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", [NAMED_INDEX])
    except Exception:  # a read-only store never opened by this version
        return None
    if not state or not index or int(state[0][0]) != projections.VERSION:
        return None
    return int(state[0][1])


def execution_keys(store: Any, execution: str) -> list[str]:
    """The ``project/domain/name`` keys ``execution`` may mean: itself when whole, else every key of the log ending in
    ``/<name>`` (SQLite), each distinct key found by one index seek (a loose index scan of the lineage rows' execution
    parents and of the named-execution index), not by reading every record."""
    if execution.count("/") == 2:
        return [execution]
    from flytekitplugins.aios_audit.edge_store import execution_keys as lineage_keys
    from flytekitplugins.aios_audit.edge_store import key_means

    keys = {*lineage_keys(store), *_column_values(store, named_execution_sql("sqlite"))}
    return sorted(k for k in keys if key_means(k, execution))


def column_keys(store: Any, name: str) -> list[str]:
    """The values of the log's ``execution`` column that a bare execution ``name`` means (the whole key, or its last
    part), on PostgreSQL, through the column's index (:func:`_column_values`)."""
    from flytekitplugins.aios_audit.edge_store import key_means

    return sorted(k for k in _column_values(store) if key_means(k, name))


def _column_values(store: Any, where: str = "") -> list[str]:
    """Every distinct non-empty value of the log's ``execution`` column (of the rows ``where`` holds for), each found by
    one seek in an index of the column (a loose index scan: the cost follows the number of executions, not of
    records; no range bound, so any collation orders them)."""
    step = "SELECT min(execution) FROM audit_log WHERE execution > {}" + (f" AND {where}" if where else "")
    sql = f"""WITH RECURSIVE k(e) AS (SELECT ({step.format("''")}) UNION ALL
        SELECT ({step.format("k.e")}) FROM k WHERE k.e IS NOT NULL) SELECT e FROM k WHERE e IS NOT NULL"""
    return [str(e) for (e,) in store.read_sql(sql)]


MAX_KEYS = 64
"""Executions a bare name may match and still be read through the indexes (two subqueries each, in one statement)."""


def _by_execution(store: Any, f: ShowFilter, limit: int, built: int, keys: list[str]) -> list[AuditRecord]:
    """The newest ``limit`` records matching ``f`` among those after ``built`` (whose lineage rows exist), newest
    first, the execution's records found without reading the others (SQLite keeps no index of ``execution``: it
    would cost every append a page of write-ahead log).

    A record's lineage row ``in_execution`` names the execution it belongs to: its own, or, when its entry names one
    in a string field ``execution`` (an approval decision acts on its request's execution), that one. So a record
    whose column is the execution either has that row, or holds such a field and is in the partial index
    ``audit_log_execution_named``; candidates from both, newest first in pages, are checked with the exact filter
    (the column's rule), as every query of ``aios audit show`` is."""
    from flytekitplugins.aios_audit.edge_store import arrears, by_parent
    from flytekitplugins.aios_audit.lineage_rows import EXECUTION

    if not keys:
        return []
    apart = arrears(store)  # SQLite's parent index in arrears (stores/sqlite_parents.py)
    # the other filters, checked on the candidates (looked up by seq: a kind is spelled so that its index is not used)
    conds, params = where_sql(dataclasses.replace(f, execution=None), "sqlite", kind_index=False)
    named = named_execution_sql("sqlite")
    out: list[AuditRecord] = []
    after, page = 2**62, min(PAGE, max(limit, 16))
    while len(out) < limit:
        parts: list[str] = []
        args: list[Any] = []
        for key in keys:  # each part walks one index range backwards (an IN list would read and sort them all)
            lineage, largs = by_parent(
                "parent = ? AND parent <> '' AND rel = 'in_execution' AND seq < ? AND seq > ?",
                [EXECUTION + key, after, built],
                apart,
                order="seq DESC",
                limit=page,
            )
            parts.append(f"SELECT seq FROM ({lineage})")
            parts.append(
                f"SELECT * FROM (SELECT seq FROM audit_log WHERE execution = ? AND {named} AND seq < ? AND seq > ? "
                f"ORDER BY seq DESC LIMIT {int(page)})"
            )
            args += [*largs, key, after, built]
        seqs = [int(s) for (s,) in store.read_sql(" UNION ".join(parts) + f" ORDER BY 1 DESC LIMIT {int(page)}", args)]
        if seqs:
            marks = ",".join("?" * len(seqs))
            q = f"SELECT {_RECORD} FROM audit_log WHERE seq IN ({marks})"
            q += "".join(f" AND {c}" for c in conds) + " ORDER BY seq DESC"
            for _seq, entry, leaf, prev, chain in store.read_sql(q, [*seqs, *params]):
                rec = record_from_entry(bytes(entry), leaf, prev, chain)
                if f.matches(rec):
                    out.append(rec)
                    if len(out) == limit:
                        break
            after = seqs[-1]
        if len(seqs) < page:
            break
        page = PAGE
    return out
