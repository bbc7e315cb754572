"""Trace lineage through the typed edges of the evidence model (:mod:`.edges`), upstream and downstream.

A reference names one or more start nodes: a record id (or a unique prefix of 8+ hex), ``#seq``, an approval
request id (``apr-...``), a content digest (``sha256:...``: a document, protected text, data set; a plain
``sha256sum`` of a file also works), ``model:name[@version]`` (or ``name@version``), ``policy:<id>`` or
``principal:<name>`` (``approver:<name>``). Upstream follows ``child -> parent`` edges (why did this happen);
downstream follows them backwards (what happened because of it). Models, policies and principals are shared by
many decisions: they are walked downstream only when the trace starts at them, and then every decision they
touch is traced in full, so "what did model X@3 decide" and "which actions did policy P allow" both work.
"""

from __future__ import annotations

import dataclasses
import re
from collections import deque
from collections.abc import Iterable

from flytekitplugins.aios_audit.edge_rules import is_record
from flytekitplugins.aios_audit.edges import HUBS, Lineage
from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_audit.stores import AuditStore, seq_ref
from flytekitplugins.aios_core.digest import digest_value

_HEX = re.compile(r"^[0-9a-f]+$")
MAX_NODES = 20000


PREFETCH_MIN = 8
"""Nodes a level of an upstream walk needs for its parents to be read for the whole level at once (a few queries
whatever its size); a smaller level reads each node's (a trace of one decision on a million-record PostgreSQL trail
took 4.3 ms at the median with every level read at once, 1.8-2.4 ms node by node)."""


@dataclasses.dataclass
class Trace:
    """What a trace reached: start nodes, upstream and downstream nodes, the typed edges and the records."""

    ref: str
    start: list[str]
    upstream: list[str] = dataclasses.field(default_factory=list)
    downstream: list[str] = dataclasses.field(default_factory=list)
    context: list[str] = dataclasses.field(default_factory=list)
    edges: list[tuple[str, str, str, int]] = dataclasses.field(default_factory=list)
    records: dict[str, AuditRecord] = dataclasses.field(default_factory=dict)
    truncated: bool = False

    def nodes(self) -> list[str]:
        """Every node reached, start first."""
        return list(dict.fromkeys([*self.start, *self.upstream, *self.downstream, *self.context]))


class Tracer:
    """Traces over one store and its edge index (caught up when the tracer is made)."""

    def __init__(self, store: AuditStore, index: Lineage) -> None:
        self.store = store
        self.index = index
        index.catch_up(store)

    def record(self, rid: str) -> AuditRecord | None:
        """The record ``rid``, read from the store (the index is only used to find its position)."""
        seq = self.index.seq_of(rid)
        rec = next(self.store.scan(seq, seq), None) if seq else None
        return rec if rec is not None and rec.record_id == rid else None

    def resolve(self, ref: str) -> list[str]:
        """Start nodes ``ref`` names (empty when none)."""
        ref = ref.strip()
        idx = self.index
        if (seq := seq_ref(ref)) is not None:
            rid = idx.id_of_seq(seq)
            if rid or ref.startswith("#") or len(ref) < 8:
                return [rid] if rid else []
            # a bare number of 8+ digits that is no sequence number here is a record id prefix of digits only
            # (about one id in a hundred starts with ten): it named nothing before
        if ref.startswith("apr-"):
            rid = idx.alias(ref)
            return [rid] if rid else []
        if ref.startswith("sha256:"):
            for node in (ref, digest_value({"$file": ref})):
                if idx.parents(node) or idx.children(node):
                    return [node]
            return []
        if ref.startswith("approver:"):
            ref = "principal:" + ref.removeprefix("approver:")
        if ref.startswith(("policy:", "principal:")):
            return [ref] if idx.children(ref) else []
        if is_record(ref):
            return [ref] if idx.seq_of(ref) else []
        if len(ref) >= 8 and _HEX.match(ref):
            found = idx.by_prefix(ref)
            return found if len(found) == 1 else []
        name = ref.removeprefix("model:")
        return idx.nodes_like(f"model:{name}" if "@" in name else f"model:{name}@%")

    def trace(self, ref: str, max_nodes: int = MAX_NODES) -> Trace:
        """Walk from the nodes ``ref`` names; records reached are read from the store."""
        start = self.resolve(ref)
        tr = Trace(ref, start)
        seeds = list(start)
        for node in start:
            if node.startswith(HUBS):  # what the model/policy/principal decided, each traced in full
                for child, rel, seq in self.index.children(node):
                    tr.edges.append((child, node, rel, seq))
                    (tr.context if rel == "used_model" else seeds).append(child)  # tasks: listed, not walked
        tr.upstream = self._walk(seeds, tr, up=True, max_nodes=max_nodes)
        tr.downstream = self._walk(seeds, tr, up=False, max_nodes=max_nodes)
        tr.upstream = [n for n in tr.upstream if n not in start]
        tr.downstream = [n for n in tr.downstream if n not in start and n not in tr.upstream]
        self._context(tr)
        tr.records.update(self.records(tr.nodes()))
        return tr

    def closure(self, seeds: list[str]) -> Trace:
        """``seeds`` and everything upstream of them, with their records (what an evidence bundle holds)."""
        tr = Trace(f"{len(seeds)} records", list(seeds))
        tr.upstream = [n for n in self._walk(seeds, tr, up=True, max_nodes=10**7) if n not in seeds]
        tr.records.update(self.records(tr.nodes()))
        return tr

    def records(self, nodes: Iterable[str]) -> dict[str, AuditRecord]:
        """:meth:`record` of every record among ``nodes``, in ``nodes``' order. Over the store's own lineage rows,
        whose index looks records up by id anyway, they are read by id a few hundred at a time, each kept only at the
        position the index gives it (as :meth:`record` checks); over an index file derived from the log, one by one
        by position, as before (a read-only log behind it may have no current id table to look ids up in)."""
        rids = [n for n in dict.fromkeys(nodes) if is_record(n)]
        if not hasattr(self.index, "prefetch_parents"):
            return {r: rec for r in rids if (rec := self.record(r)) is not None}
        found: dict[str, AuditRecord] = {}
        for i in range(0, len(rids), 500):
            found.update(self.store.get_many(rids[i : i + 500]))
        return {r: rec for r in rids if (rec := found.get(r)) is not None and rec.seq == self.index.seq_of(r)}

    def _context(self, tr: Trace) -> None:
        """The direct parents of every record reached downstream (its model, policies, request, approvers)."""
        known = set(tr.nodes())
        for node in tr.downstream:
            if not is_record(node) or self.index.kind(node) == "task":  # a task's parents are a whole chunk's
                continue
            for parent, rel, seq in self.index.parents(node):
                tr.edges.append((node, parent, rel, seq))
                if parent not in known:
                    known.add(parent)
                    tr.context.append(parent)

    def _walk(self, seeds: Iterable[str], tr: Trace, *, up: bool, max_nodes: int) -> list[str]:
        seen: dict[str, str] = dict.fromkeys(seeds, "")  # node -> rel it was reached by
        queue = deque(seen)
        found: list[str] = [s for s in seen if s not in tr.start]
        prefetch = getattr(self.index, "prefetch_parents", None) if up else None
        level = 0  # nodes left in the level being walked; the queue holds the next level's after them
        while queue:
            if prefetch is not None and level == 0:  # a whole level's parents in a few queries (the store's index)
                level = len(queue)
                if level >= PREFETCH_MIN:
                    prefetch(list(queue))
            level -= 1
            node = queue.popleft()
            if not up and not self._expands_down(node, tr.start, seen[node]):
                continue
            hops = self.index.parents(node) if up else self.index.children(node)
            for other, rel, seq in hops:
                tr.edges.append((node, other, rel, seq) if up else (other, node, rel, seq))
                if other in seen:
                    continue
                if len(seen) >= max_nodes:
                    tr.truncated = True
                    continue
                seen[other] = rel
                found.append(other)
                queue.append(other)
        return found

    def _expands_down(self, node: str, start: list[str], reached_by: str) -> bool:
        if node in start:
            return True
        if node.startswith(HUBS):
            return False
        # a task gated by a chunk's policy decisions is downstream of all of them: do not fan out through it
        return not (reached_by == "policy_decision" and is_record(node) and self.index.kind(node) == "task")


def record_edges(tr: Trace) -> list[tuple[int, int, str, str]]:
    """Edges between records as ``(from seq, to seq, rel, via digest)``: parent first, data hops collapsed."""
    seq = {rid: r.seq for rid, r in tr.records.items()}
    out: dict[tuple[int, int, str, str], None] = {}
    producers: dict[str, list[int]] = {}
    consumers: dict[str, list[tuple[int, str]]] = {}
    for child, parent, rel, _via in dict.fromkeys(tr.edges):
        if child in seq and parent in seq:
            out[(seq[parent], seq[child], rel, "")] = None
        elif rel == "output_of" and parent in seq:
            producers.setdefault(child, []).append(seq[parent])
        elif child in seq and parent.startswith("sha256:"):
            consumers.setdefault(parent, []).append((seq[child], rel))
    for digest, made in producers.items():
        for p in made:
            for c, _rel in consumers.get(digest, []):
                if p < c:
                    out[(p, c, "data", digest)] = None
    return sorted(out)


def sources(tr: Trace) -> dict[str, list[int]]:
    """Digests reached that no record produced (documents, data read from outside) -> seqs that used them."""
    produced = {child for child, _p, _rel, _s in tr.edges if child.startswith("sha256:")}  # made or derived
    out: dict[str, list[int]] = {}
    for child, parent, _rel, _seq in dict.fromkeys(tr.edges):
        if parent.startswith("sha256:") and parent not in produced and child in tr.records:
            seqs = out.setdefault(parent, [])
            if tr.records[child].seq not in seqs:
                seqs.append(tr.records[child].seq)
    return {d: sorted(s) for d, s in out.items()}
