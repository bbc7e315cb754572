"""Sealed, indexed projections of the audit log: approval requests, decisions, uses, catalog records, lineage.

Governance reads (is this request approved? what is the champion of this model?) used to fold the whole log.
Each projection table holds, for every record of its kinds, the few columns readers look up by (request id,
content key, model name, ...), keyed by the record's ``seq``. Rows are written by the store in the SAME
transaction as the record (``rows_for``), so a record and its rows commit or roll back together.

Rules of the tables:

* **Derived by one pure function per kind** (:data:`DERIVERS`; lineage rows by :mod:`.lineage_rows`, for every
  kind) from the sealed entry's JSON, never from anything else: the stores' writers, :func:`rebuild` and
  :func:`verify_projections` share them, so a row means exactly what the record says.
* **Never trusted alone.** Readers (``read_sealed``) fetch the records the rows name by ``seq``, re-hash them
  (``leaf = SHA-256(0x00 || entry)``, ``chain = SHA-256(prev || leaf)``, and the next record's ``prev_hash``) and
  re-derive the rows from the sealed entries; a row that its record does not produce is refused
  (:class:`ProjectionTampered`). Readers then fold the sealed records themselves, so an edited row can hide a
  record (``aios audit verify`` reports that as ``projection_missing``) but never change what a record says.
* **Append-only**: triggers refuse UPDATE and DELETE (defence in depth: the verifier never relies on them).
* **Complete, or known not to be.** ``audit_proj_state.missing_through`` is the last ``seq`` whose rows may be
  missing: a store created before projections existed has ``missing_through = size`` when it first opens, and
  readers fold the log as before until ``aios audit rebuild-projections`` has filled the rows (in batches,
  verifying the chain as it goes) and set it to 0.

The same SQL serves SQLite and PostgreSQL (``?`` placeholders; the PostgreSQL store converts them).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import orjson

from flytekitplugins.aios_audit.lineage_rows import as_rows, entry_rows, parsed_rows
from flytekitplugins.aios_audit.records import GENESIS, chain_link, entry_seq_suffix
from flytekitplugins.aios_audit.stores import LogTampered

VERSION = 1
Row = tuple[Any, ...]
Derived = list[tuple[str, Row]]
"""``(table, row)`` pairs: what one record puts into the projection tables."""


@dataclasses.dataclass(frozen=True)
class Table:
    """One projection table: its columns (the first is ``seq``) and the indexes readers use."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...]
    partial: tuple[str, ...] = ()
    """A ``WHERE`` per index (partial indexes; none when empty)."""
    clustered: bool = False
    """SQLite: rows stored in their primary key's b-tree (``WITHOUT ROWID``): one b-tree less to write per append."""

    def insert_sql(self) -> str:
        return f"INSERT INTO {self.name} VALUES ({','.join('?' * len(self.columns))})"

    def fill_sql(self, dialect: str) -> str:
        """The rebuild's insert: a row already there is left alone (the verification after the rebuild compares it;
        on PostgreSQL, records staged before an upgrade may have had theirs written by the integrator)."""
        marks = ",".join("?" * len(self.columns))
        if dialect == "postgresql":
            return f"INSERT INTO {self.name} VALUES ({marks}) ON CONFLICT DO NOTHING"
        return f"INSERT OR IGNORE INTO {self.name} VALUES ({marks})"


REQUESTS = Table(
    "audit_proj_approval_requests",
    ("seq", "request_id", "content_key", "gate", "expires_at"),
    ("seq",),
    (("request_id", "seq"), ("content_key", "seq"), ("expires_at",)),
)
DECISIONS = Table(
    "audit_proj_approval_decisions",
    ("seq", "request_id", "approver", "action"),
    ("seq",),
    (("request_id", "approver", "seq"),),
)
APPROVAL_EVENTS = Table(
    "audit_proj_approval_events",
    ("seq", "request_id", "kind", "consumed_by"),
    ("seq",),
    (("request_id", "seq"),),
)
CATALOG = Table(
    "audit_proj_catalog",
    ("seq", "pos", "op", "name", "version", "source_digest"),
    ("seq", "pos"),
    (("name", "seq"), ("source_digest",)),
)
LINEAGE = Table(
    "audit_proj_lineage",
    ("seq", "pos", "child", "parent", "rel"),
    ("seq", "pos"),
    (("child", "seq"), ("parent", "seq")),
    ("child <> ''", "parent <> ''"),  # "" is the record itself, found by seq: not worth an index entry
    clustered=True,
)
STATE = "audit_proj_state"
SQLITE_ARREARS = {(LINEAGE.name, ("parent", "seq"))}
"""Indexes SQLite keeps apart, written in arrears (the lineage parent index: :mod:`.stores.sqlite_parents`)."""
PARENTS = "audit_lineage_parents"  # the table SQLite keeps it in (stores/sqlite_parents.py)


@dataclasses.dataclass(frozen=True)
class Group:
    """Projection tables that are complete (or not yet) together: one state row each."""

    state: str
    tables: tuple[Table, ...]
    every_kind: bool  # rows for records of every kind (lineage), not only the governance kinds


GOVERNANCE = Group(STATE, (REQUESTS, DECISIONS, APPROVAL_EVENTS, CATALOG), every_kind=False)
LINEAGE_GROUP = Group("audit_proj_lineage_state", (LINEAGE,), every_kind=True)
"""Added after the governance tables: a store that has those gets its own ``missing_through`` for lineage."""
GROUPS = (GOVERNANCE, LINEAGE_GROUP)
TABLES: tuple[Table, ...] = tuple(t for g in GROUPS for t in g.tables)
BY_NAME = {t.name: t for t in TABLES}
GROUP_OF = {t.name: g for g in GROUPS for t in g.tables}


class ProjectionTampered(LogTampered):
    """A projection row, or the record it names, is not what the sealed log says: refuse to decide on it."""


# ---- the pure functions: one per kind ---------------------------------------------------------------------------


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _attrs(event: dict[str, Any]) -> dict[str, Any]:
    a = event.get("attributes")
    return a if isinstance(a, dict) else {}


def utc_text(value: Any) -> str:
    """A time as fixed-width UTC text (``YYYY-MM-DDTHH:MM:SS.ffffffZ``, sorts as time); "" when unreadable.

    Naive times are read as UTC. Used for ``expires_at`` and for comparing with it.
    """
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return ""
    if not isinstance(value, dt.datetime):
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def derive_approval_request(seq: int, event: dict[str, Any]) -> Derived:
    """``approval_request``: keyed by the request's own id (as the fold keys it), content key, gate, expiry."""
    req = _attrs(event).get("request")
    if not isinstance(req, dict):
        return []
    rid, key, gate = _s(req.get("request_id")), _s(req.get("content_key")), _s(req.get("gate"))
    if rid is None or key is None:
        return []  # the fold cannot read it either: it counts for nothing
    return [(REQUESTS.name, (seq, rid, key, gate or "", utc_text(req.get("expires_at"))))]


def derive_approval_decision(seq: int, event: dict[str, Any]) -> Derived:
    """``approval_decision``: keyed by the record's subject (the request id the fold files it under)."""
    rid = _s(event.get("subject"))
    if rid is None:
        return []
    dec = _attrs(event).get("decision")
    dec = dec if isinstance(dec, dict) else {}
    return [(DECISIONS.name, (seq, rid, _s(dec.get("approver")) or "", _s(dec.get("action")) or ""))]


def derive_approval_event(seq: int, event: dict[str, Any]) -> Derived:
    """``approval_refused`` / ``approval_verified``: keyed by subject; ``consumed_by`` as the record states it."""
    rid, kind = _s(event.get("subject")), _s(event.get("kind"))
    if rid is None or kind is None:
        return []
    return [(APPROVAL_EVENTS.name, (seq, rid, kind, _s(_attrs(event).get("consumed_by")) or ""))]


def derive_catalog(seq: int, event: dict[str, Any]) -> Derived:
    """``catalog``: one row per model the record touches (``pos`` numbers them), with the seed's digest."""
    attrs = _attrs(event)
    op = _s(attrs.get("op")) or ""
    digest = (_s(attrs.get("source_digest")) or "") if op == "seed" else ""
    models: list[tuple[str, str]] = []
    if op == "seed":
        entries = attrs.get("entries")
        for e in entries if isinstance(entries, list) else ():  # a seed written by hand may hold anything
            if isinstance(e, dict):
                models.append((_s(e.get("name")) or "", _s(e.get("version")) or ""))
    elif op == "register":
        e = attrs.get("entry")
        e = e if isinstance(e, dict) else {}
        models.append((_s(e.get("name")) or "", _s(e.get("version")) or ""))
    else:
        models.append((str(attrs.get("name", "")), str(attrs.get("version", ""))))
    models = models or [("", "")]
    return [(CATALOG.name, (seq, i, op, name, version, digest)) for i, (name, version) in enumerate(models)]


DERIVERS: dict[str, Callable[[int, dict[str, Any]], Derived]] = {
    "approval_request": derive_approval_request,
    "approval_decision": derive_approval_decision,
    "approval_refused": derive_approval_event,
    "approval_verified": derive_approval_event,
    "catalog": derive_catalog,
}
KINDS = frozenset(DERIVERS)


def derive(seq: int, entry: bytes, group: Group | None = None) -> Derived:
    """The projection rows of one sealed entry, of every group or of ``group`` (none for an unreadable entry)."""
    out: Derived = []
    if group is not LINEAGE_GROUP:
        out += _derive_governance(seq, entry)
    if group is not GOVERNANCE:
        out += [(LINEAGE.name, r) for r in as_rows(seq, entry_rows(entry))]
    return out


def derive_each(seq: int, entry: bytes) -> tuple[Derived, list[Row]]:
    """The governance rows and the lineage table rows of one sealed entry: exactly what :func:`derive` of every
    group gives, split, with the entry parsed once for most records (the verifier's walk re-derives each record it
    checks this way).

    Lineage rows come from the fast parse :func:`derive` uses for them, and so do the approval kinds' rows: the
    fast parser and the standard one :func:`derive` uses for the governance kinds differ only on integers beyond 64
    bits (read as floats by the fast one) and on what the fast one refuses (then :func:`derive`'s own functions
    run), and those derivers take only strings from the event, so a number reads as nothing either way. Catalog
    rows print ``name`` and ``version`` whatever they hold (``str``), so they keep the standard parse."""
    try:
        record = orjson.loads(entry)
        event = record["event"]
    except (ValueError, TypeError, KeyError):
        event = None
    if not isinstance(event, dict):
        return _derive_governance(seq, entry), as_rows(seq, entry_rows(entry))
    kind = event.get("kind")
    if kind not in KINDS:
        governance: Derived = []
    elif kind in _STRINGS_ONLY:
        governance = DERIVERS[kind](seq, event)
    else:
        governance = _derive_governance(seq, entry)
    return governance, as_rows(seq, parsed_rows(record, event))


_STRINGS_ONLY = frozenset({"approval_request", "approval_decision", "approval_refused", "approval_verified"})
"""Kinds whose derivers read only strings (and dicts holding them) from the event: a number is None to them."""


def _derive_governance(seq: int, entry: bytes) -> Derived:
    try:
        event = json.loads(entry)["event"]
    except (ValueError, TypeError, KeyError):
        return []
    if not isinstance(event, dict):
        return []
    fn = DERIVERS.get(event.get("kind"))  # type: ignore[arg-type]
    return fn(seq, event) if fn is not None else []


def touches(kinds: Iterable[str]) -> bool:
    """True when records of these kinds have governance rows (the PostgreSQL store then appends under its lock;
    lineage rows, which every record has, travel with staged appends)."""
    return not KINDS.isdisjoint(kinds)


def rows_for(log_rows: Sequence[Sequence[Any]]) -> dict[str, list[Row]]:
    """Projection rows for ``audit_log`` rows as ``stores.seal_rows`` makes them (kind at 2, entry at 6)."""
    out: dict[str, list[Row]] = {}
    for row in log_rows:  # governance rows only for their kinds (the kind column is the record's own here)
        for table, values in derive(int(row[0]), bytes(row[6]), None if row[2] in KINDS else LINEAGE_GROUP):
            out.setdefault(table, []).append(values)
    return out


# ---- schema -------------------------------------------------------------------------------------------------------


def schema(dialect: str) -> list[str]:
    """DDL of the projection tables, their indexes and append-only triggers, and the state row."""
    seq = "BIGINT" if dialect == "postgresql" else "INTEGER"
    out = [
        f"CREATE TABLE IF NOT EXISTS {g.state} (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, "
        f"missing_through {seq} NOT NULL)"
        for g in GROUPS
    ]
    if dialect == "postgresql":
        out.append(
            "CREATE OR REPLACE FUNCTION aios_proj_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP; END $$"
        )
    for t in TABLES:
        cols = ", ".join(
            f"{c} {seq if c == 'seq' else 'INTEGER' if c == 'pos' else 'TEXT'} NOT NULL" for c in t.columns
        )
        clustered = " WITHOUT ROWID" if t.clustered and dialect == "sqlite" else ""
        out.append(f"CREATE TABLE IF NOT EXISTS {t.name} ({cols}, PRIMARY KEY ({', '.join(t.key)})){clustered}")
        for i, cols_ in enumerate(t.indexes):
            if dialect == "sqlite" and (t.name, cols_) in SQLITE_ARREARS:
                continue
            where = f" WHERE {t.partial[i]}" if i < len(t.partial) and t.partial[i] else ""
            out.append(f"CREATE INDEX IF NOT EXISTS {t.name}_{'_'.join(cols_)} ON {t.name}({', '.join(cols_)}){where}")
        if dialect == "postgresql":
            out.append(
                f"CREATE OR REPLACE TRIGGER {t.name}_no_update BEFORE UPDATE OR DELETE ON {t.name} "
                "FOR EACH ROW EXECUTE FUNCTION aios_proj_refuse()"
            )
        else:
            for op in ("UPDATE", "DELETE"):
                out.append(
                    f"CREATE TRIGGER IF NOT EXISTS {t.name}_no_{op.lower()} BEFORE {op} ON {t.name} "
                    f"BEGIN SELECT RAISE(ABORT, '{t.name} is append-only: {op} refused'); END"
                )
    # a log that existed before the tables: its records have no rows yet (rebuild-projections fills them)
    # PostgreSQL: events staged (acknowledged) but not yet sequenced when the lineage table is created may come from
    # writers of the version before it, whose staged rows carry no lineage: they get the next sequence numbers, so
    # they count as not built too (rows the integrator does write for them are kept by the rebuild's insert)
    staged = " + (SELECT COALESCE(SUM(cardinality(events)), 0) FROM audit_staged)" if dialect == "postgresql" else ""
    out += [
        f"INSERT INTO {g.state} (id, version, missing_through) SELECT 1, {VERSION}, "
        f"(SELECT COALESCE(MAX(seq), 0) FROM audit_log){staged if g.every_kind else ''} "
        f"WHERE NOT EXISTS (SELECT 1 FROM {g.state})"
        for g in GROUPS
    ]
    return out


def drop_sql(dialect: str) -> list[str]:
    """Statements that empty the projection tables (a full rebuild; triggers are recreated by :func:`schema`)."""
    del dialect
    return [f"DROP TABLE IF EXISTS {t.name}" for t in TABLES] + [f"DROP TABLE IF EXISTS {g.state}" for g in GROUPS]


# ---- reading ------------------------------------------------------------------------------------------------------


def available(store: Any, group: Group = GOVERNANCE) -> bool:
    """True when ``store`` has complete tables of ``group`` (else readers fold the log, or index it, as before)."""
    reader = getattr(store, "read_sql", None)
    if reader is None:
        return False
    try:
        row = reader(f"SELECT version, missing_through FROM {group.state} WHERE id = 1")
    except Exception:  # a store without the tables (read-only, never opened by this version)
        return False
    return bool(row) and int(row[0][0]) == VERSION and int(row[0][1]) == 0


def missing_through(store: Any, group: Group = GOVERNANCE) -> int | None:
    """``missing_through`` of the group's state row, or None when the store has no such tables."""
    try:
        row = store.read_sql(f"SELECT missing_through FROM {group.state} WHERE id = 1")
    except Exception:
        return None
    return int(row[0][0]) if row else None


def select(
    store: Any, table: Table, where: str, params: Sequence[Any], order: str = "seq", limit: int | None = None
) -> list[Row]:
    """Rows of ``table`` matching ``where`` (a condition with ``?`` placeholders), ordered, the first ``limit``."""
    sql = f"SELECT {', '.join(table.columns)} FROM {table.name} WHERE {where} ORDER BY {order}"
    sql += f" LIMIT {int(limit)}" if limit is not None else ""
    return [tuple(r) for r in store.read_sql(sql, params)]


def read_sealed(store: Any, table: Table, rows: Sequence[Row]) -> dict[int, tuple[bytes, str, str, str]]:
    """The sealed records ``rows`` name, after checking each row against its record.

    Every record is fetched by ``seq`` and re-hashed (leaf, chain link, and the next record's ``prev_hash``), and
    the row must be one its entry derives. Returns ``seq -> (entry, leaf_hash, prev_hash, chain_hash)``.

    Raises:
        ProjectionTampered: a row its record does not derive, a record whose hashes do not hold, or a missing one.
    """
    got = sealed_entries(store, [int(r[0]) for r in rows])
    derived: dict[int, set[tuple[str, Row]]] = {}  # once a record, its table's group only
    for r in rows:
        seq = int(r[0])
        if seq not in derived:
            derived[seq] = {(t, _norm(v)) for t, v in derive(seq, got[seq][0], GROUP_OF[table.name])}
        if (table.name, _norm(r)) not in derived[seq]:
            msg = (
                f"projection row {table.name} {list(r)} is not what the sealed audit record {seq} says: the "
                "projection was edited. Refusing to decide on it; run `aios audit verify` and "
                "`aios audit rebuild-projections --full`"
            )
            raise ProjectionTampered(msg)
    return got


def sealed_records(store: Any, found: Iterable[tuple[Table, Sequence[Row]]], lite: bool = False) -> list[Any]:
    """The checked records (:func:`read_sealed`) that rows of several tables name, parsed, in log order: as
    :class:`.records.AuditRecord`, or with ``lite`` as :func:`.lite.lite_record`'s read-only records (the same
    fields, parsed without validating the event: for a fold that reads them and keeps none)."""
    from flytekitplugins.aios_audit.lite import lite_record
    from flytekitplugins.aios_audit.records import record_from_entry

    raw: dict[int, tuple[bytes, str, str, str]] = {}
    for table, rows in found:
        raw.update(read_sealed(store, table, rows))
    if lite:
        return [lite_record(raw[seq][0], raw[seq][1]) for seq in sorted(raw)]
    return [record_from_entry(*raw[seq]) for seq in sorted(raw)]


def sealed_entries(store: Any, seqs: Sequence[int]) -> dict[int, tuple[bytes, str, str, str]]:
    """``seq -> (entry, leaf, prev, chain)`` for ``seqs``, each re-hashed and linked to its successor's record."""
    want = sorted(set(seqs))
    got: dict[int, tuple[bytes, str, str, str]] = {}
    nxt: dict[int, str] = {}
    for i in range(0, len(want), 500):
        part = want[i : i + 500]
        marks = ",".join("?" * len(part))
        q = f"SELECT seq, entry, leaf_hash, prev_hash, chain_hash FROM audit_log WHERE seq IN ({marks})"
        for seq, entry, leaf, prev, chain in store.read_sql(q, part):
            got[int(seq)] = (bytes(entry), leaf, prev, chain)
        q = f"SELECT seq, prev_hash FROM audit_log WHERE seq IN ({marks})"
        for seq, prev in store.read_sql(q, [s + 1 for s in part]):
            nxt[int(seq) - 1] = prev
    sha = hashlib.sha256
    for seq in want:
        rec = got.get(seq)
        if rec is None:
            msg = f"the projection names audit record {seq}, which is not in the log: run `aios audit verify`"
            raise ProjectionTampered(msg)
        entry, leaf, prev, chain = rec
        leaf_b = sha(b"\x00" + entry).digest()
        ok = isinstance(prev, str) and len(prev) == 64 and entry.endswith(entry_seq_suffix(seq))
        ok = ok and leaf_b.hex() == leaf and chain_link(prev, leaf_b) == chain
        ok = ok and (seq > 1 or prev == GENESIS) and nxt.get(seq, chain) == chain
        if not ok:
            msg = f"audit record {seq} does not match its hashes (edited): run `aios audit verify`"
            raise ProjectionTampered(msg)
    return got


def _norm(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(int(v) if isinstance(v, int) else str(v) for v in row)


# ---- verification and rebuild -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ProjectionProblem:
    """One difference between a projection table and what the sealed log derives."""

    code: str  # projection_missing | projection_extra | projection_changed
    table: str
    seq: int
    detail: str

    def line(self) -> str:
        """One line for people."""
        return f"{self.code} in {self.table} at seq {self.seq}: {self.detail}"


CHUNK = 20_000
"""Records per verification / rebuild step (bounded memory)."""


def _pos(table: str, row: Row) -> int:
    return int(row[1]) if table in (CATALOG.name, LINEAGE.name) else 0


def _derived_range(store: Any, group: Group, lo: int, hi: int) -> dict[tuple[str, int, int], Row]:
    """Derived rows of ``group`` for records ``lo..hi``, keyed by ``(table, seq, pos)`` (pos 0 for one-row tables).

    Governance reads only the records whose ``kind`` column is a projected kind: callers run after the verifier
    proved every column equal to its sealed entry.
    """
    q = "SELECT seq, entry FROM audit_log WHERE seq >= ? AND seq <= ?"
    params: list[Any] = [lo, hi]
    if not group.every_kind:
        kinds = sorted(KINDS)
        q += f" AND kind IN ({','.join('?' * len(kinds))})"
        params += kinds
    out: dict[tuple[str, int, int], Row] = {}
    for seq, entry in store.iter_sql(q, params):
        for table, row in derive(int(seq), bytes(entry), group):
            out[(table, int(seq), _pos(table, row))] = tuple(row) if table == LINEAGE.name else _norm(row)
    return out


def _table_range(
    store: Any,
    group: Group,
    where: str = "seq >= ? AND seq <= ?",
    params: Sequence[Any] = (),
    read: Callable[[str, Sequence[Any]], Iterable[Row]] | None = None,
) -> Iterator[tuple[tuple[str, int, int], Row]]:
    """The rows of ``group``'s tables matching ``where``, keyed as :func:`_derived_range` keys them (``read``:
    the store's ``iter_sql``, or ``read_sql`` for a bounded range: no connection of its own)."""
    read = read or store.iter_sql
    for t in group.tables:
        plain = t is LINEAGE  # (int, int, str, str, str) from both databases: nothing to normalize
        # in key order: the planner then reads the range from the primary key even when its bound is a subquery
        # (without it PostgreSQL scanned the 22 million lineage rows of a 10M log to find none beyond the log: 1.9 s)
        q = f"SELECT {', '.join(t.columns)} FROM {t.name} WHERE {where} ORDER BY {', '.join(t.key)}"
        for row in read(q, params):
            yield (t.name, int(row[0]), _pos(t.name, row)), tuple(row) if plain else _norm(row)


def verify_projections(
    store: Any, since: int = 0, chunk: int = CHUNK, until: int | None = None, beyond: bool = True
) -> tuple[list[ProjectionProblem], str]:
    """Re-derive every projection row of records ``since + 1 .. until`` (default: the log's size) from the log and
    compare with the tables.

    Returns the problems (empty when the tables hold exactly what the log derives) and a note ("" or why the check
    was partial: tables not built yet). Rows of records ``<= missing_through`` (of their group) may be absent (not
    built yet) but those present must be right; with ``beyond``, rows naming records beyond the log (as it is when
    they are read: records appended meanwhile bring their own rows) are extra.
    """
    problems: list[ProjectionProblem] = []
    missing = {group.state: missing_through(store, group) for group in GROUPS}
    for group in GROUPS:
        if (below := missing[group.state]) is not None:
            problems += _verify_group(store, group, since, chunk, below, until, beyond)
    problems += show_problems(store, since, until, beyond=beyond, extra=beyond and since == 0 and until is None)
    return sorted(problems, key=lambda p: (p.seq, p.table)), group_notes(missing)


def group_notes(missing: dict[str, int | None]) -> str:
    """Why a projection check was partial, from each group's ``missing_through`` ("" when it was not)."""
    notes: list[str] = []
    for group in GROUPS:
        below = missing.get(group.state)
        if below is None:
            notes.append(f"no {group.state} in this store (open it with this version to create the tables)")
        elif below:
            what = "lineage" if group is LINEAGE_GROUP else "projection"
            notes.append(f"records 1..{below} have no {what} rows yet: run `aios audit rebuild-projections`")
    return "; ".join(notes)


def _lineage_equal(store: Any, lo: int, hi: int) -> bool:
    """True when the lineage rows of records ``lo..hi``, in ``(seq, pos)`` order, are exactly those their entries
    derive (the common case, two lists compared; anything else is diffed row by row to name it)."""
    want: list[tuple[Any, ...]] = []
    for seq, entry in store.iter_sql(
        "SELECT seq, entry FROM audit_log WHERE seq >= ? AND seq <= ? ORDER BY seq", [lo, hi]
    ):
        want += [tuple(row) for _table, row in derive(int(seq), bytes(entry), LINEAGE_GROUP)]
    q = f"SELECT {', '.join(LINEAGE.columns)} FROM {LINEAGE.name} WHERE seq >= ? AND seq <= ? ORDER BY seq, pos"
    return want == [tuple(r) for r in store.iter_sql(q, [lo, hi])]


def _verify_group(
    store: Any, group: Group, since: int, chunk: int, missing: int, until: int | None, beyond: bool
) -> list[ProjectionProblem]:
    size = int(store.size()) if until is None else until
    problems: list[ProjectionProblem] = []
    lo = since + 1
    while lo <= size:
        hi = min(size, lo + chunk - 1)
        if group is LINEAGE_GROUP and lo > missing and _lineage_equal(store, lo, hi):  # rows not built: diff them
            lo = hi + 1
            continue
        problems += _compare(
            _derived_range(store, group, lo, hi), dict(_table_range(store, group, params=(lo, hi))), missing
        )
        lo = hi + 1
    return problems + (beyond_the_log(store, group) if beyond else [])


def beyond(
    store: Any, missing: dict[str, int | None], *, full: bool = False, found: Sequence[ProjectionProblem] = ()
) -> list[ProjectionProblem]:
    """:func:`beyond_the_log` of every group the store has tables of (``missing``: as :class:`RangeCheck` takes it),
    and SQLite's ``audit_show`` and lineage parent rows beyond the log, in (seq, table) order; with ``full`` (after
    the full walk, whose problems are ``found``) also every lineage parent row that no lineage row derives (see
    :func:`.stores.sqlite_parents.problems`)."""
    out = [p for g in GROUPS if missing.get(g.state) is not None for p in beyond_the_log(store, g)]
    suspect = any(p.table == PARENTS and p.code == "projection_missing" for p in found)
    out += show_problems(store, rows=False, extra=full, suspect=suspect)
    return sorted(out, key=lambda p: (p.seq, p.table))


def show_problems(
    store: Any,
    since: int = 0,
    until: int | None = None,
    *,
    rows: bool = True,
    beyond: bool = True,
    extra: bool = False,
    suspect: bool = False,
) -> list[ProjectionProblem]:
    """SQLite's tables written in arrears against the log: ``audit_show`` (the columns ``aios audit show`` filters
    by) and ``audit_lineage_parents`` (the lineage parent index). With ``rows``, of the records ``since + 1 ..
    until`` a record without its row or a changed row; with ``beyond``, a row beyond the log; with ``extra``, a
    parent row no lineage row derives (see :func:`.stores.sqlite_show.problems`,
    :func:`.stores.sqlite_parents.problems`); none for a store without them."""
    out: list[ProjectionProblem] = []
    check = getattr(store, "show_problems", None)
    if check is not None:
        found = check(since, until, rows=rows, beyond=beyond)
        out += [ProjectionProblem(code, "audit_show", seq, detail) for code, seq, detail in found]
    check = getattr(store, "parents_problems", None)
    if check is not None:
        found = check(since, until, rows=rows, beyond=beyond, extra=extra, suspect=suspect)
        out += [ProjectionProblem(code, PARENTS, seq, detail) for code, seq, detail in found]
    return out


def beyond_the_log(store: Any, group: Group) -> list[ProjectionProblem]:
    """Rows of ``group`` naming records the log does not have, each table in one statement (one snapshot: a record
    appended meanwhile is in the log with its rows, not a row beyond it)."""
    where = "seq > (SELECT COALESCE(MAX(seq), 0) FROM audit_log)"
    return [
        ProjectionProblem("projection_extra", key[0], key[1], f"row {list(row)} beyond the log")
        for key, row in _table_range(store, group, where)
    ]


Key = tuple[str, int, int]


def _compare(want: dict[Key, Row], have: dict[Key, Row], missing: int) -> list[ProjectionProblem]:
    """The rows the records derive (``want``) against the rows the tables hold (``have``) for the same records; rows
    of records ``<= missing`` may be absent (not built yet)."""
    problems: list[ProjectionProblem] = []
    for key, row in want.items():
        got = have.get(key)
        if got is None:
            if key[1] > missing:
                problems.append(ProjectionProblem("projection_missing", key[0], key[1], f"no row {list(row)}"))
        elif got != row:
            detail = f"row {list(got)} but the sealed record derives {list(row)}"
            problems.append(ProjectionProblem("projection_changed", key[0], key[1], detail))
    for key, row in have.items():
        if key not in want:
            detail = f"row {list(row)} that the sealed record does not derive"
            problems.append(ProjectionProblem("projection_extra", key[0], key[1], detail))
    return problems


class RangeCheck:
    """The projection rows of consecutive records, re-derived from the entries the verifier's walk hands over
    (:meth:`add`, in ``seq`` order, each batch once its hashes and columns are checked: no second read of the log)
    and compared with the tables :data:`CHUNK` records at a time (bounded memory).

    ``missing``: each group's ``missing_through`` (:func:`missing_through`; a group that is None is not checked).
    :meth:`finish` returns the problems found, in ``seq`` order, as :func:`verify_projections` names them (without
    the rows beyond the log: :func:`beyond_the_log`)."""

    def __init__(self, store: Any, missing: dict[str, int | None], chunk: int = CHUNK) -> None:
        self.store, self.chunk = store, chunk
        self.gov_missing, self.lin_missing = missing.get(GOVERNANCE.state), missing.get(LINEAGE_GROUP.state)
        self.lo = self.hi = 0
        self.gov: dict[Key, Row] = {}
        self.lin: list[Row] = []
        self.problems: list[ProjectionProblem] = []

    def add(self, batch: Sequence[Sequence[Any]]) -> None:
        for row in batch:
            seq, entry = int(row[0]), row[1]
            if not self.lo:
                self.lo = seq
            self.hi = seq
            governance, lineage = derive_each(seq, entry)
            for table, values in governance:
                self.gov[(table, seq, _pos(table, values))] = _norm(values)
            self.lin += lineage
        if self.hi - self.lo + 1 >= self.chunk:
            self._flush()

    def finish(self) -> list[ProjectionProblem]:
        if self.lo:
            self._flush()
        return sorted(self.problems, key=lambda p: (p.seq, p.table))

    def _flush(self) -> None:
        lo, hi, store = self.lo, self.hi, self.store
        # SQLite's audit_show rows of these records, compared in SQL with the log rows the walk has just read
        self.problems += show_problems(store, lo - 1, hi, beyond=False)
        if self.gov_missing is not None:
            have = dict(_table_range(store, GOVERNANCE, params=(lo, hi), read=store.read_sql))
            self.problems += _compare(self.gov, have, self.gov_missing)
        if self.lin_missing is not None:
            q = f"SELECT {', '.join(LINEAGE.columns)} FROM {LINEAGE.name} WHERE seq >= ? AND seq <= ? ORDER BY seq, pos"
            rows = [tuple(r) for r in store.read_sql(q, [lo, hi])]
            if rows != self.lin:  # the common case: one comparison of two lists
                want = {(LINEAGE.name, int(r[0]), int(r[1])): r for r in self.lin}
                have = {(LINEAGE.name, int(r[0]), int(r[1])): r for r in rows}
                self.problems += _compare(want, have, self.lin_missing)
        self.lo, self.gov, self.lin = 0, {}, []


Progress = Callable[[int, int], None]


def rebuild(store: Any, *, full: bool = False, chunk: int = CHUNK, progress: Progress | None = None) -> int:
    """Fill the projection rows of records ``1..missing_through`` of every group from the log, verifying the chain.

    Works downwards from each group's ``missing_through`` in chunks; each chunk commits its rows together with the
    lowered ``missing_through`` (the store's ``projection_fill``), so an interrupted rebuild resumes where it
    stopped, and appends go on meanwhile (new records write their own rows). Readers fold the log (or index it
    apart, for lineage) until it reaches 0. Every record read is re-hashed and linked to its neighbours (and
    record 1 to the genesis hash).

    With ``full`` the tables are dropped first and rebuilt from every record (after tampering, or to be sure).

    Returns the number of rows written. Raises :class:`ProjectionTampered` when the chain does not hold.
    """
    if full:
        store.projection_reset()
    return sum(_rebuild_group(store, g, chunk, progress) for g in GROUPS)


def _rebuild_group(store: Any, group: Group, chunk: int, progress: Progress | None) -> int:
    top = missing_through(store, group)
    if top is None:
        msg = "this store has no projection tables"
        raise ProjectionTampered(msg)
    sha = hashlib.sha256
    written, hi = 0, top
    after = next(iter(store.scan_raw(top + 1, top + 1)), None)  # the link into the records that have rows
    expect_chain = after[3] if after is not None else None
    while hi >= 1:
        lo = max(1, hi - chunk + 1)
        batch = list(store.scan_raw(lo, hi))
        rows: dict[str, list[Row]] = {}
        for i in range(len(batch) - 1, -1, -1):
            seq, entry, leaf, prev, chain = batch[i]
            leaf_b = sha(b"\x00" + entry).digest()
            ok = seq == lo + i and len(batch) == hi - lo + 1 and isinstance(prev, str) and len(prev) == 64
            ok = ok and leaf_b.hex() == leaf and chain_link(prev, leaf_b) == chain
            ok = ok and entry.endswith(entry_seq_suffix(seq)) and (expect_chain is None or chain == expect_chain)
            ok = ok and (seq > 1 or prev == GENESIS)
            if not ok:
                msg = f"audit record {seq} does not verify (run `aios audit verify`): projections not rebuilt"
                raise ProjectionTampered(msg)
            expect_chain = prev
            for table, values in derive(int(seq), entry, group):
                rows.setdefault(table, []).append(values)
        written += store.projection_fill(rows, hi, lo - 1, group.state)
        if progress is not None:
            progress(top - lo + 1, top)
        hi = lo - 1
    return written
