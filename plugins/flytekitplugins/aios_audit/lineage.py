"""Lineage edges between audit records, rebuilt from the log (the log is the source of truth).

Two kinds of edge point from an earlier record to a later one:

* ``parent``: the later record names the earlier record id in ``parents`` (explicit, e.g. a policy decision
  record that gated the step, or an approval);
* ``data``: the later record consumed a digest (an input, or a ``sha256:`` subject) that the earlier record
  produced as an output. When several records produced the same digest, the producer in the same Flyte
  execution wins, else the most recent earlier producer.

Digests consumed but never produced by any record are *sources* (documents, data sets read from outside).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable

from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_core.digest import digest_value


@dataclasses.dataclass(frozen=True)
class Edge:
    """``src`` -> ``dst`` (record ids); ``label`` is ``parent`` or the digest that flowed."""

    src: str
    dst: str
    kind: str
    label: str = ""


def consumed(record: AuditRecord) -> dict[str, str]:
    """Digests a record consumed (name -> digest), the subject included when it is a digest."""
    ev = record.event
    out = dict(ev.inputs)
    if ev.subject.startswith("sha256:") and ev.subject not in out.values():
        out["subject"] = ev.subject
    return out


def _key(record: AuditRecord) -> str:
    return record.event.execution.execution_key if record.event.execution else ""


@dataclasses.dataclass
class LineageGraph:
    """Records and the edges between them."""

    records: dict[str, AuditRecord] = dataclasses.field(default_factory=dict)
    edges: list[Edge] = dataclasses.field(default_factory=list)
    producers: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    consumers: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    by_seq: dict[int, str] = dataclasses.field(default_factory=dict)
    _in: dict[str, list[Edge]] = dataclasses.field(default_factory=dict)
    _out: dict[str, list[Edge]] = dataclasses.field(default_factory=dict)

    def add(self, edge: Edge) -> None:
        """Add an edge."""
        self.edges.append(edge)
        self._in.setdefault(edge.dst, []).append(edge)
        self._out.setdefault(edge.src, []).append(edge)

    def incoming(self, rid: str) -> list[Edge]:
        """Edges into ``rid``."""
        return self._in.get(rid, [])

    def outgoing(self, rid: str) -> list[Edge]:
        """Edges out of ``rid``."""
        return self._out.get(rid, [])


def build_graph(records: Iterable[AuditRecord]) -> LineageGraph:
    """Rebuild lineage from records in sequence order."""
    g = LineageGraph()
    for rec in records:
        rid = rec.record_id
        g.records[rid] = rec
        g.by_seq[rec.seq] = rid
        for digest in dict.fromkeys(consumed(rec).values()):
            g.consumers.setdefault(digest, []).append(rid)
            src = _producer(g, digest, _key(rec))
            if src is not None:
                g.add(Edge(src, rid, "data", digest))
        for parent in rec.event.parents:
            if parent in g.records:
                g.add(Edge(parent, rid, "parent"))
        for digest in dict.fromkeys(rec.event.outputs.values()):
            g.producers.setdefault(digest, []).append(rid)
    return g


def _producer(g: LineageGraph, digest: str, execution: str) -> str | None:
    candidates = g.producers.get(digest, [])
    same = [c for c in candidates if _key(g.records[c]) == execution]
    pick = same or candidates
    return pick[-1] if pick else None


def resolve(g: LineageGraph, ref: str) -> list[str]:
    """Record ids a reference names: a record id (or unique prefix), ``#seq``/a number, or a content digest."""
    ref = ref.strip()
    if ref.lstrip("#").isdigit():
        rid = g.by_seq.get(int(ref.lstrip("#")))
        return [rid] if rid else []
    if ref in g.records:
        return [ref]
    if ref.startswith("sha256:"):
        found = list(dict.fromkeys(g.producers.get(ref, []) + g.consumers.get(ref, [])))
        if not found:  # a plain file hash (sha256sum): files are recorded as digests of {"$file": ...}
            wrapped = digest_value({"$file": ref})
            found = list(dict.fromkeys(g.producers.get(wrapped, []) + g.consumers.get(wrapped, [])))
        return found
    matches = [rid for rid in g.records if rid.startswith(ref)] if len(ref) >= 8 else []
    return matches if len(matches) == 1 else []


def walk(g: LineageGraph, start: Iterable[str], forward: bool) -> list[str]:
    """Record ids reachable from ``start`` (breadth-first, excluding the start), oldest first."""
    seen: set[str] = set(start)
    queue = deque(seen)
    found: list[str] = []
    while queue:
        rid = queue.popleft()
        for e in g.outgoing(rid) if forward else g.incoming(rid):
            nxt = e.dst if forward else e.src
            if nxt not in seen:
                seen.add(nxt)
                found.append(nxt)
                queue.append(nxt)
    return sorted(found, key=lambda r: g.records[r].seq)


def sources(g: LineageGraph, rids: Iterable[str]) -> dict[str, list[int]]:
    """Source digests (consumed, never produced) of ``rids`` -> the seqs that consumed them."""
    out: dict[str, list[int]] = {}
    for rid in rids:
        rec = g.records[rid]
        for digest in consumed(rec).values():
            if digest.startswith("sha256:") and not g.producers.get(digest):
                out.setdefault(digest, []).append(rec.seq)
    return out
