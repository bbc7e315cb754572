"""Lineage read from the store's own lineage projection (``audit_proj_lineage``), written with every record.

The same questions as :class:`~.edges.EdgeIndex` (parents, children, kinds, request aliases, an execution's
records), answered by indexed queries on the store, with the references of :mod:`.lineage_rows` resolved as they
are read. By parent, SQLite's rows come through its parent index written in arrears (:func:`by_parent`,
:mod:`.stores.sqlite_parents`) and the lineage table's tail after it. Every row used for a record's own edges is
checked against its sealed record first (:func:`.projections.read_sealed`: the record is re-hashed and linked, and
the row must be one its entry derives), so an edited row is refused, not followed; the rows under a shared node
(``model:``, ``policy:``, ``principal:``, possibly millions) are not checked one by one, but the tracer reads every
record it reaches from the log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flytekitplugins.aios_audit import projections
from flytekitplugins.aios_audit.edge_rules import HUBS, PARENT_REL, is_record
from flytekitplugins.aios_audit.lineage_rows import ALIAS, EXECUTION, HIDDEN
from flytekitplugins.aios_audit.stores.sqlite_parents import TABLE as _P
from flytekitplugins.aios_audit.stores.sqlite_parents import UPTO as _UPTO

_COLS = "seq, pos, child, parent, rel"
_T = projections.LINEAGE.name
Row = tuple[int, int, str, str, str]


def arrears(store: Any) -> bool:
    """Whether ``store`` keeps the lineage parent index apart, written in arrears (SQLite:
    :mod:`.stores.sqlite_parents`), rather than on the lineage table."""
    kept = getattr(store, "lineage_parents", None)
    return bool(kept()) if kept is not None else False


def by_parent(
    where: str, params: Sequence[Any], apart: bool, *, order: str = "seq, pos", limit: int | None = None
) -> tuple[str, list[Any]]:
    """SQL and parameters of the lineage rows (``seq, pos, child, parent, rel``) that ``where`` selects by parent
    (``parent = ?`` and more conditions on ``parent``, ``seq``, ``pos``, ``rel``), in ``order``, at most ``limit``.

    ``apart`` (:func:`arrears`): the rows of the records the parent table covers through it, each joined to the
    lineage row it names and kept only where that row says the same (a forged row names nothing), then the lineage
    table's tail after it by ``seq``; each part in ``order`` first, so a limit reads what it keeps (the columns are
    the parent table's, equal to the row's by the join: a parent's rows then come in its key's order, unsorted)."""
    lim = f" LIMIT {int(limit)}" if limit is not None else ""
    if not apart:
        return f"SELECT {_COLS} FROM {_T} WHERE {where} ORDER BY {order}{lim}", list(params)
    # the join comes before the limit: forged rows (kept out by the join) must not use up a page of it
    joined = (
        f"SELECT p.seq AS seq, p.pos AS pos, l.child AS child, p.parent AS parent, p.rel AS rel FROM {_P} p "
        f"JOIN {_T} l ON l.seq = p.seq AND l.pos = p.pos AND l.parent = p.parent AND l.rel = p.rel"
    )
    indexed = f"SELECT * FROM ({joined}) WHERE {where} AND seq <= ({_UPTO}) ORDER BY {order}{lim}"
    tail = f"SELECT {_COLS} FROM {_T} WHERE seq > ({_UPTO}) AND {where} ORDER BY {order}{lim}"
    return f"SELECT * FROM ({indexed}) UNION ALL SELECT * FROM ({tail}) ORDER BY {order}{lim}", [*params, *params]


class StoreEdges:
    """The lineage projection of one store, read by index (see the module)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._ids: dict[int, str] = {}
        self._seqs: dict[str, int] = {}
        self._kinds: dict[str, str] = {}
        self._checked: set[int] = set()
        self._parent_rows: dict[str, list[Row]] = {}  # filled by prefetch_parents, read once by parents
        self._aliases: dict[str, str] = {}
        self._apart: bool | None = None  # arrears(store), asked once

    # ---- the EdgeIndex interface that needs no work here ---------------------------------------------------
    def catch_up(self, store: Any, progress: Callable[[int, int], None] | None = None) -> int:
        """Nothing to catch up: every record wrote its rows with it. Returns 0."""
        del store, progress
        return 0

    def flush(self) -> None:
        """Nothing pending."""

    def close(self) -> None:
        """Nothing to close (the store's connection stays the store's)."""

    # ---- reading rows --------------------------------------------------------------------------------------
    def _rows(self, where: str, params: Sequence[Any], check: bool = True) -> list[Row]:
        return self._read(f"SELECT {_COLS} FROM {_T} WHERE {where} ORDER BY seq, pos", params, check)

    def _by_parent(self, where: str, params: Sequence[Any], check: bool = True) -> list[Row]:
        """:meth:`_rows` of a ``where`` that selects by parent (see :func:`by_parent`)."""
        return self._read(*by_parent(where, params, self._arrears()), check)

    def _read(self, q: str, params: Sequence[Any], check: bool) -> list[Row]:
        """The rows ``q`` selects (``seq, pos, child, parent, rel``), with ``check`` each checked against its sealed
        record once."""
        rows = [(int(s), int(p), str(c), str(pa), str(r)) for s, p, c, pa, r in self.store.read_sql(q, params)]
        if check:
            todo = [r for r in rows if r[0] not in self._checked]
            if todo:
                projections.read_sealed(self.store, projections.LINEAGE, todo)
                self._checked.update(r[0] for r in todo)
        return rows

    def _arrears(self) -> bool:
        """:func:`arrears` of the store, asked once."""
        if self._apart is None:
            self._apart = arrears(self.store)
        return self._apart

    def _id(self, seq: int) -> str:
        rid = self._ids.get(seq)
        if rid is None:
            got = self.store.read_sql("SELECT leaf_hash FROM audit_log WHERE seq = ?", [seq])
            rid = str(got[0][0]) if got else ""
            self._ids[seq] = rid
            if rid:
                self._seqs[rid] = seq
        return rid

    def _record(self, rid: str) -> None:
        if rid in self._seqs and rid in self._kinds:
            return
        rec = self.store.get(rid) if is_record(rid) else None
        self._seqs[rid] = rec.seq if rec is not None else 0
        self._kinds[rid] = rec.event.kind if rec is not None else ""
        if rec is not None:
            self._ids[rec.seq] = rid

    def seq_of(self, rid: str) -> int:
        """Sequence number of a record id (0 if unknown)."""
        self._record(rid)
        return self._seqs[rid]

    def kind(self, rid: str) -> str:
        """Kind of a record ("" if unknown)."""
        self._record(rid)
        return self._kinds[rid]

    def id_of_seq(self, seq: int) -> str:
        """Record id at ``seq`` ("" if none)."""
        return self._id(seq) if seq >= 1 else ""

    def alias(self, name: str) -> str:
        """Record id of an approval request id (``apr-...``): the first request record of that id, or ""."""
        if name in self._aliases:
            return self._aliases[name]
        rows = self._rows("child = ? AND child <> '' AND rel = 'alias'", [ALIAS + name])
        return self._id(rows[0][0]) if rows and name else ""

    # ---- many nodes at once --------------------------------------------------------------------------------
    def prefetch_parents(self, nodes: Sequence[str]) -> None:
        """Read what :meth:`parents` of each of ``nodes`` needs in a few queries for all of them, not a few each (a
        closure's walk asks a whole level of nodes; an evidence bundle's execution took 16,000 one-row queries): the
        nodes' records (sequence number and kind), their rows (checked against their sealed records as one by one),
        and the record ids, kinds and request aliases those rows name. :meth:`parents` then answers from these."""
        todo = [n for n in dict.fromkeys(nodes) if n and n not in self._parent_rows]
        if not todo:
            return
        self._fill_records([n for n in todo if is_record(n)])
        by_child = self._rows_in("child", todo, "child <> ''")
        by_seq = self._rows_in("seq", [self._seqs[n] for n in todo if is_record(n) and self._seqs[n]], "child = ''")
        for n in todo:
            seq = self._seqs.get(n, 0) if is_record(n) else 0
            self._parent_rows[n] = [*by_child.get(n, []), *(by_seq.get(seq, []) if seq else [])]
        rows = [r for n in todo for r in self._parent_rows[n]]
        self._fill_ids([r[0] for r in rows])
        names = [r[3].removeprefix(ALIAS) for r in rows if r[3].startswith(ALIAS)]
        self._fill_aliases([a for a in dict.fromkeys(names) if a and a not in self._aliases])
        self._fill_records([r[3] for r in rows if r[4] == "parent" and is_record(r[3])])

    def _rows_in(self, column: str, values: Sequence[Any], extra: str) -> dict[Any, list[Row]]:
        """:meth:`_rows` (checked) for many values of ``column``, grouped by that value (each group in order)."""
        out: dict[Any, list[Row]] = {}
        values = list(dict.fromkeys(values))
        key = 0 if column == "seq" else 2
        for i in range(0, len(values), 500):
            part = values[i : i + 500]
            for row in self._rows(f"{column} IN ({','.join('?' * len(part))}) AND {extra}", part):
                out.setdefault(row[key], []).append(row)
        return out

    def _fill_records(self, rids: Sequence[str]) -> None:
        """What :meth:`_record` learns of each record id (its sequence number and kind), in one read for all."""
        want = [r for r in dict.fromkeys(rids) if is_record(r) and not (r in self._seqs and r in self._kinds)]
        if not want:
            return
        found = self.store.get_many(want)
        for rid in want:
            rec = found.get(rid)
            self._seqs[rid] = rec.seq if rec is not None else 0
            self._kinds[rid] = rec.event.kind if rec is not None else ""
            if rec is not None:
                self._ids[rec.seq] = rid

    def _fill_aliases(self, names: Sequence[str]) -> None:
        """:meth:`alias` of many request ids at once (the first request record of each)."""
        by_child = self._rows_in("child", [ALIAS + n for n in names], "child <> '' AND rel = 'alias'")
        self._fill_ids([rows[0][0] for rows in by_child.values()])
        for name in names:
            rows = by_child.get(ALIAS + name)
            self._aliases[name] = self._id(rows[0][0]) if rows else ""

    def by_prefix(self, prefix: str) -> list[str]:
        """Record ids starting with ``prefix`` (at most two: enough to tell unique from ambiguous)."""
        with_prefix = getattr(self.store, "ids_with_prefix", None)  # SQLite: its id table and the log's tail
        if with_prefix is not None:
            return list(with_prefix(prefix, 2))
        q = "SELECT leaf_hash FROM audit_log WHERE leaf_hash >= ? AND leaf_hash < ? LIMIT 2"
        return [str(r[0]) for r in self.store.read_sql(q, [prefix, prefix + "g"])]

    def nodes_like(self, pattern: str) -> list[str]:
        """Nodes named by a pattern: exact, or every node starting with the text before a final ``%``."""
        out: set[str] = set()
        for col in ("parent", "child"):
            if pattern.endswith("%"):
                lo = pattern[:-1]
                cond, params = f"{col} >= ? AND {col} < ? AND {col} <> ''", [lo, lo + "\U0010ffff"]
            else:
                cond, params = f"{col} = ? AND {col} <> ''", [pattern]
            q = f"SELECT DISTINCT {col} FROM {_T} WHERE {cond}"
            if col == "parent" and self._arrears():  # the parent table (rows no lineage row has name nothing), its tail
                q = f"SELECT DISTINCT parent FROM {_P} WHERE {cond} UNION {q} AND seq > ({_UPTO})"
                params = [*params, *params]
            out.update(str(r[0]) for r in self.store.read_sql(q, params))
        return sorted(n for n in out if not n.startswith((ALIAS, EXECUTION)))

    def execution_records(self, execution: str) -> list[tuple[int, str]]:
        """``(seq, id)`` of the records of an execution (its name or ``project/domain/name``).

        A whole ``project/domain/name`` key is one look-up in the index; a bare name matches the keys ending in it,
        each distinct key of the log found by one seek (:func:`execution_keys`; reading every record's row to find
        them took 0.5 s at a million records).
        """
        if execution.count("/") == 2:
            named = [EXECUTION + execution]
            rows = self._by_parent("parent = ? AND parent <> '' AND rel = 'in_execution'", named, False)
        else:
            rows = []
            for key in execution_keys(self.store):
                if key_means(key, execution):
                    rows += self._by_parent(
                        "parent = ? AND parent <> '' AND rel = 'in_execution'", [EXECUTION + key], False
                    )
            rows.sort()
        self._fill_ids([s for s, *_ in rows])
        return [(s, self._id(s)) for s, *_ in rows]

    def _fill_ids(self, seqs: Sequence[int]) -> None:
        """Cache the ids of ``seqs`` a few hundred a query (an execution has hundreds of records)."""
        want = sorted({s for s in seqs if s not in self._ids})
        for i in range(0, len(want), 500):
            part = want[i : i + 500]
            q = f"SELECT seq, leaf_hash FROM audit_log WHERE seq IN ({','.join('?' * len(part))})"
            for seq, rid in self.store.read_sql(q, part):
                self._ids[int(seq)] = str(rid)
                self._seqs[str(rid)] = int(seq)

    # ---- edges ---------------------------------------------------------------------------------------------
    def _resolve(self, row: Row) -> tuple[str, str, str] | None:
        seq, _pos, child, parent, rel = row
        if rel in HIDDEN:
            return None
        child = child or self._id(seq)
        if parent.startswith(ALIAS):
            parent = self.alias(parent.removeprefix(ALIAS))
            if not parent:
                return None
        parent = parent or self._id(seq)
        if rel == "parent":
            rel = PARENT_REL.get(self.kind(parent), "parent")
        return child, parent, rel

    def parents(self, node: str) -> list[tuple[str, str, int]]:
        """``(parent, rel, seq)`` of the edges out of ``node`` (from :meth:`prefetch_parents` when it read them)."""
        seq = self.seq_of(node) if is_record(node) else 0
        rows = self._parent_rows.pop(node, None)
        if rows is None:
            rows = self._rows("child = ? AND child <> ''", [node])
            if seq:
                rows += self._rows("seq = ? AND child = ''", [seq])
        out = [(e[1], e[2], row[0]) for row in rows if (e := self._resolve(row)) is not None]
        if seq and self.kind(node) == "action_authorized":  # the decisions that approved its request before it
            for req, rel, _ in list(out):
                if rel == "approval_request":
                    decided = self.children(req)
                    out += [(d, "approved_by", seq) for d, drel, dseq in decided if drel == "decides" and dseq < seq]
        return list(dict.fromkeys(out))

    def children(self, node: str) -> list[tuple[str, str, int]]:
        """``(child, rel, seq)`` of the edges into ``node``."""
        rows = self._by_parent("parent = ? AND parent <> ''", [node], check=not node.startswith(HUBS))
        seq = self.seq_of(node) if is_record(node) else 0
        if seq:
            own = self._rows("seq = ? AND parent = ''", [seq])
            rows += own
            for _s, _p, child, _pa, rel in own:  # the request ids this request record is the first of
                if rel == "alias" and self.alias(child.removeprefix(ALIAS)) == node:
                    rows += self._by_parent("parent = ? AND parent <> ''", [child])
        out = [(e[0], e[2], row[0]) for row in rows if (e := self._resolve(row)) is not None]
        if seq and self.kind(node) == "approval_decision":  # authorizations it approved (their request, after it)
            for req, rel, _ in self.parents(node):
                if rel != "decides":
                    continue
                for a, arel, aseq in self.children(req):
                    if arel == "approval_request" and aseq > seq and self.kind(a) == "action_authorized":
                        out.append((a, "approved_by", aseq))
        return sorted(dict.fromkeys(out), key=lambda e: e[2])


def execution_keys(store: Any) -> list[str]:
    """Every ``project/domain/name`` that lineage rows name (``in_execution``): a loose index scan of the rows' parent
    index, one seek from each key to the next, so the cost follows the number of executions, not of records (one
    recursive query, the same SQL on SQLite and PostgreSQL). It stops at the first parent past the ``execution:`` keys
    by its prefix, not by a bound: under a PostgreSQL collation other than C, punctuation does not order as bytes."""
    apart = arrears(store)
    step = f"SELECT min(parent) FROM {_P if apart else _T} WHERE parent > {{}} AND parent <> ''"
    prefix = f"substr(k.p, 1, {len(EXECUTION)}) = ?"
    # SQLite in arrears: the parent table's keys (a forged row's key names no record) and those of the lineage
    # table's tail, in one statement (one snapshot: a batch copied between two would be in neither)
    tail = f" UNION SELECT DISTINCT parent FROM {_T} WHERE seq > ({_UPTO}) AND parent <> ''" if apart else ""
    sql = f"""WITH RECURSIVE k(p) AS (SELECT ({step.format("?")}) UNION ALL
        SELECT ({step.format("k.p")}) FROM k WHERE {prefix}) SELECT p FROM k WHERE p IS NOT NULL{tail}"""
    found = sorted(str(p) for (p,) in store.read_sql(sql, [EXECUTION, EXECUTION]))
    return [p.removeprefix(EXECUTION) for p in found if p.startswith(EXECUTION)]


def key_means(key: str, execution: str) -> bool:
    """Whether the ``project/domain/name`` ``key`` is what ``execution`` (a whole key or a bare name) names."""
    return key == execution or key.endswith("/" + execution)
