"""Typed lineage edges of the evidence model, read from sealed record fields, and their derived index.

Every edge is ``child -> parent`` ("the child is explained by the parent") and is read from fields of ONE
sealed record (its ``seq`` is kept with the edge), so editing an edge means editing a hashed record, which
``aios audit verify`` reports. One edge is derived from two sealed facts: ``action_authorized -approved_by->
approval_decision`` joins the request the authorization names with the decisions that name that request
(sealed before it); its ``seq`` is the authorization's. Nodes are record ids (64 hex), content digests
(``sha256:...``: documents, protected text, data sets), ``model:<name>@<version>``, ``policy:<policy id>``
and ``principal:<name>``.

The chain of a document decision, from the action back to its source::

    action -authorized_by-> action_authorized -approved_by-> approval_decision -decided_by-> principal
           -policy_decision-> policy_decision -classified_by-> model -trained_by-> training -triggered_by-> drift
                              policy_decision -determined_by-> policy   -protected_text-> text -redacted_from-> doc
    action_authorized -approval_request-> approval_request -policy_decision-> ...   approval_decision -decides-> request

Stores read lineage from their own lineage projection, written with every record (``lineage_rows.py``, read by
``edge_store.StoreEdges``). :class:`EdgeIndex` applies the same rules with the look-ups resolved as it goes: for
evidence bundles (in memory), for a store without SQL, and for a store upgraded from a version before the
projection until ``aios audit rebuild-projections`` has filled it. Its file (``lineage_edges(child, parent, rel,
seq)`` and ``lineage_records``) is derived data, like SQLite's ``audit_ids``: brought up to date in bulk on read
(records appended since the last look-up), rebuilt when the log's record at the last indexed position is no longer
the one indexed. It is never trusted for content: callers read the records themselves from the store.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from flytekitplugins.aios_audit import projections
from flytekitplugins.aios_audit.edge_rules import HUBS, Edge, document_of, execution_of, record_edges
from flytekitplugins.aios_audit.edge_store import StoreEdges
from flytekitplugins.aios_audit.private_files import SQLITE_COMPANIONS, touch_private
from flytekitplugins.aios_audit.records import AuditRecord
from flytekitplugins.aios_audit.stores import AuditStore

__all__ = ["HUBS", "VERSION", "EdgeIndex", "Lineage", "StoreEdges", "document_of", "execution_of"]

VERSION = "1"  # of the edge rules below: an index built by other rules is rebuilt
CHUNK = 20_000  # records per catch-up transaction, held in memory until written (a few MB)
CACHE_KIB = 65_536  # SQLite page cache of the index connection (64 MiB): bounded, well under a command's budget
_SCHEMA = """
CREATE TABLE IF NOT EXISTS lineage_records (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, kind TEXT NOT NULL,
    execution TEXT NOT NULL, subject TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS lineage_records_id ON lineage_records(id);
CREATE INDEX IF NOT EXISTS lineage_records_execution ON lineage_records(execution);
CREATE TABLE IF NOT EXISTS lineage_edges (child TEXT NOT NULL, parent TEXT NOT NULL, rel TEXT NOT NULL,
    seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS lineage_edges_child ON lineage_edges(child);
CREATE INDEX IF NOT EXISTS lineage_edges_parent ON lineage_edges(parent);
CREATE TABLE IF NOT EXISTS lineage_alias (alias TEXT PRIMARY KEY, id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lineage_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""


class EdgeIndex:
    """The derived edge index of one audit store, in a SQLite file of its own."""

    def __init__(self, path: Path | None) -> None:
        """Open (or create) the index at ``path``; None keeps it in memory (evidence bundles)."""
        # 0600 in a 0700 folder, like every state file (docs/security.md); an index file or folder another local
        # user made or may write is refused (UnsafeFile, review R9), never used as found
        if path is not None:
            touch_private(path, companions=SQLITE_COMPANIONS)
        self.path = path or Path(":memory:")
        self.conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=60.0)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")  # the id and edge indexes are random-order b-trees
        self.conn.executescript(_SCHEMA)
        # rows indexed but not yet written (catch_up writes them in chunks); look-ups see them too
        self._rows: list[tuple[Any, ...]] = []
        self._edges: list[tuple[str, str, str, int]] = []
        self._aliases: list[tuple[str, str]] = []
        self._kinds: dict[str, str] = {}
        self._alias_of: dict[str, str] = {}
        self._children: dict[str, list[tuple[str, str, int]]] = {}

    @classmethod
    def for_store(cls, store: AuditStore, state_dir: Path) -> EdgeIndex | StoreEdges:
        """The lineage of ``store``: its own lineage projection where complete (written with every record), else
        the index file under ``state_dir/lineage`` (one per store URL: a store without SQL, or one upgraded from a
        version before the projection until ``aios audit rebuild-projections`` has filled it)."""
        if projections.available(store, projections.LINEAGE_GROUP):
            return StoreEdges(store)
        url = str(getattr(store, "url", type(store).__name__))
        return cls(state_dir / "lineage" / f"edges-{hashlib.sha256(url.encode()).hexdigest()[:16]}.db")

    def close(self) -> None:
        """Close the index file."""
        self.conn.close()

    # ---- catching up ---------------------------------------------------------------------------
    def _meta(self) -> tuple[int, str]:
        rows = dict(self.conn.execute("SELECT k, v FROM lineage_meta").fetchall())
        return int(rows.get("last_seq", 0)), str(rows.get("last_leaf", ""))

    def catch_up(self, store: AuditStore, progress: Callable[[int, int], None] | None = None) -> int:
        """Index the records appended since the last call; returns how many were indexed.

        One transaction per :data:`CHUNK` records, each committing its position with its rows: memory and the
        write-ahead log stay bounded on a log of any size, an interrupted catch-up (a first build on ten million
        records takes minutes) resumes where it stopped, and concurrent callers take turns chunk by chunk.
        ``progress(indexed through seq, log size)`` is called after each chunk.
        """
        total = 0
        while True:
            n = self._catch_up_chunk(store)
            total += n
            if progress is not None and n:
                progress(self._meta()[0], store.size())
            if n < CHUNK:
                return total

    def _catch_up_chunk(self, store: AuditStore) -> int:
        from flytekitplugins.aios_audit.lite import lite_record

        self.conn.execute("BEGIN IMMEDIATE")  # read the position under the lock: concurrent readers never both add
        try:
            last, leaf = self._meta()
            version = self.conn.execute("SELECT v FROM lineage_meta WHERE k = 'version'").fetchone()
            row = next(store.scan_raw(last, last), None) if last else None
            if last and (row is None or row[2] != leaf or version is None or version[0] != VERSION):
                for table in ("lineage_records", "lineage_edges", "lineage_alias", "lineage_meta"):
                    self.conn.execute(f"DELETE FROM {table}")
                last = 0
            n = 0
            for seq, entry, rid, _prev, _chain in store.scan_raw(last + 1, last + CHUNK):
                try:
                    self.add(lite_record(entry, rid))
                except (ValueError, TypeError, KeyError, AttributeError):  # an edited entry: no edges from it
                    self._rows.append((seq, rid, "", "", ""))
                n += 1
                last, leaf = seq, rid
            self.flush()
            if n:
                self._save(last, leaf)
            self.conn.execute("COMMIT")
        except BaseException:
            self._forget()
            self.conn.execute("ROLLBACK")
            raise
        return n

    def flush(self) -> None:
        """Write the rows indexed since the last flush (``add`` keeps them in memory, in chunks)."""
        if self._rows:
            self.conn.executemany("INSERT OR REPLACE INTO lineage_records VALUES (?,?,?,?,?)", self._rows)
        if self._aliases:
            self.conn.executemany("INSERT OR IGNORE INTO lineage_alias VALUES (?, ?)", self._aliases)
        if self._edges:
            self.conn.executemany("INSERT INTO lineage_edges VALUES (?,?,?,?)", self._edges)
        self._forget()

    def _forget(self) -> None:
        self._rows, self._edges, self._aliases = [], [], []
        self._kinds, self._alias_of, self._children = {}, {}, {}

    def _save(self, last: int, leaf: str) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO lineage_meta VALUES (?, ?)",
            [("last_seq", str(last)), ("last_leaf", leaf), ("version", VERSION)],
        )

    def add(self, rec: AuditRecord) -> None:
        """Index one record (records must come in sequence order); written at the next :meth:`flush`.

        Look-ups the edge rules make (``kind``, ``alias``, ``children``) see the rows not yet written.
        """
        ev, rid = rec.event, rec.record_id
        self._rows.append((rec.seq, rid, ev.kind, execution_of(rec), ev.subject[:200]))
        self._kinds[rid] = ev.kind
        if ev.kind == "approval_request":
            self._aliases.append((ev.subject, rid))
            self._alias_of.setdefault(ev.subject, rid)
        for child, parent, rel in dict.fromkeys(self.edges_of(rec)):
            self._edges.append((child, parent, rel, rec.seq))
            self._children.setdefault(parent, []).append((child, rel, rec.seq))

    # ---- reading sealed fields -----------------------------------------------------------------
    def edges_of(self, rec: AuditRecord) -> Iterator[Edge]:
        """The typed edges sealed in ``rec`` (looks up earlier records for the kinds of parents)."""
        return record_edges(self, rec)

    def all_edges(self) -> list[tuple[str, str, str, int]]:
        """Every indexed edge ``(child, parent, rel, seq)`` in the order indexed."""
        q = "SELECT child, parent, rel, seq FROM lineage_edges ORDER BY rowid"
        return [(str(c), str(p), str(r), int(s)) for c, p, r, s in self._read(q)]

    def kind(self, rid: str) -> str:
        """Kind of an indexed record ("" if unknown)."""
        pending = self._kinds.get(rid)
        if pending is not None:
            return pending
        row = self.conn.execute("SELECT kind FROM lineage_records WHERE id = ?", (rid,)).fetchone()
        return str(row[0]) if row else ""

    # ---- queries -------------------------------------------------------------------------------
    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """Run a query after writing the rows still pending (the rules' own look-ups above read them in memory)."""
        self.flush()
        return self.conn.execute(sql, params)

    def alias(self, name: str) -> str:
        """Record id of an approval request id (``apr-...``), or ""."""
        row = self.conn.execute("SELECT id FROM lineage_alias WHERE alias = ?", (name,)).fetchone()
        return str(row[0]) if row else self._alias_of.get(name, "")

    def parents(self, node: str) -> list[tuple[str, str, int]]:
        """``(parent, rel, seq)`` of the edges out of ``node``."""
        q = "SELECT parent, rel, seq FROM lineage_edges WHERE child = ?"
        return [(str(p), str(r), int(s)) for p, r, s in self._read(q, (node,))]

    def children(self, node: str) -> list[tuple[str, str, int]]:
        """``(child, rel, seq)`` of the edges into ``node``."""
        q = "SELECT child, rel, seq FROM lineage_edges WHERE parent = ?"
        return [(str(c), str(r), int(s)) for c, r, s in self.conn.execute(q, (node,))] + self._children.get(node, [])

    def seq_of(self, rid: str) -> int:
        """Sequence number of an indexed record id (0 if unknown)."""
        row = self._read("SELECT seq FROM lineage_records WHERE id = ?", (rid,)).fetchone()
        return int(row[0]) if row else 0

    def id_of_seq(self, seq: int) -> str:
        """Record id at ``seq`` ("" if not indexed)."""
        row = self._read("SELECT id FROM lineage_records WHERE seq = ?", (seq,)).fetchone()
        return str(row[0]) if row else ""

    def by_prefix(self, prefix: str) -> list[str]:
        """Record ids starting with ``prefix`` (at most two: enough to tell unique from ambiguous)."""
        q = "SELECT id FROM lineage_records WHERE id >= ? AND id < ? LIMIT 2"
        return [str(r[0]) for r in self._read(q, (prefix, prefix + "g"))]

    def nodes_like(self, pattern: str) -> list[str]:
        """Parent nodes matching a LIKE pattern (e.g. every version of a model: ``model:name@%``)."""
        q = "SELECT DISTINCT parent FROM lineage_edges WHERE parent LIKE ? UNION SELECT DISTINCT child FROM "
        q += "lineage_edges WHERE child LIKE ?"
        return sorted(str(r[0]) for r in self._read(q, (pattern, pattern)))

    def execution_records(self, execution: str) -> list[tuple[int, str]]:
        """``(seq, id)`` of the records of an execution (its name or ``project/domain/name``).

        A whole ``project/domain/name`` key is one look-up in the execution index; a bare name matches the keys
        ending in it, which reads every indexed record (pass the whole key on a large log).
        """
        if execution.count("/") == 2:
            q = "SELECT seq, id FROM lineage_records WHERE execution = ? ORDER BY seq"
            return [(int(s), str(i)) for s, i in self._read(q, (execution,))]
        from flytekitplugins.aios_audit.projections_show import like_escape

        pattern = "%/" + like_escape(execution)
        q = "SELECT seq, id FROM lineage_records WHERE execution = ? OR execution LIKE ? ESCAPE '\\' ORDER BY seq"
        return [(int(s), str(i)) for s, i in self._read(q, (execution, pattern))]


Lineage = EdgeIndex | StoreEdges
"""What a tracer reads lineage from: the store's projection, or an index file derived from the log."""
