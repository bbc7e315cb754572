"""Stored Merkle tree levels, so proofs read O(log n) hashes instead of every leaf.

``audit_merkle_nodes(level, idx, hash)`` holds the root of every complete perfect subtree of the log above the
leaves (level ``h``, index ``i`` covers leaves ``[i * 2**h, (i + 1) * 2**h)``: the content of tlog-tiles);
leaves are the log's own ``leaf_hash`` column. Like ``audit_ids`` the table is derived data, brought up to
date in bulk (one sequential pass over the records appended since), in batches that each commit their nodes with
the integrated size: by ``aios audit checkpoint`` for the tree it signs (:func:`integrate_through`), and by a
proof of a tree beyond what is stored. It is never trusted: :mod:`.proofs` verifies every proof
it builds from it against the signed checkpoint, and rebuilds the tree from the leaves if that fails.

SQLite (through the store's connection and write lock) and PostgreSQL (the store's connection, a transaction
holding an advisory lock of its own, so appends are not held up); other stores return None and proofs
rebuild the tree from all leaves as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flytekitplugins.aios_audit.merkle import MerkleTree, _split
from flytekitplugins.aios_audit.stores import AuditStore

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit_merkle_nodes (level INTEGER NOT NULL, idx BIGINT NOT NULL, "
    "hash {blob} NOT NULL, PRIMARY KEY (level, idx)){without_rowid}",
    "CREATE TABLE IF NOT EXISTS audit_merkle_size (id INTEGER PRIMARY KEY CHECK (id = 1), size BIGINT NOT NULL)",
)
_PG_LOCK = "hashtext(current_schema() || '.aios_audit_merkle_nodes')"
BATCH = 1 << 15
"""Leaves integrated per write transaction."""
_EMPTY = hashlib.sha256(b"").digest()


class StoredTree(MerkleTree):
    """The tree of the first ``size`` leaves, read node by node from the store (proofs as :class:`MerkleTree`)."""

    def __init__(self, conn: Any, size: int, ph: str = "?") -> None:  # no super().__init__: nothing loaded up front
        self.size, self.levels, self._conn, self._ph = size, [], conn, ph
        self._memo: dict[tuple[int, int], bytes] = {}

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH of leaves ``[lo, hi)``: one stored node for an aligned perfect subtree, else composed."""
        n = hi - lo
        if n == 0:
            return _EMPTY
        key = (lo, hi)
        if key not in self._memo:
            height = n.bit_length() - 1
            if n == 1 << height and lo % n == 0:
                self._memo[key] = self.node(height, lo >> height)
            else:
                k = _split(n)
                self._memo[key] = hashlib.sha256(b"\x01" + self.subtree(lo, lo + k) + self.subtree(lo + k, hi)).digest()
        return self._memo[key]

    def prefetch(self, leaves: Iterable[int]) -> int:
        """Read every stored node the inclusion proofs of ``leaves`` (0-based) need, level by level in chunks of
        :data:`PREFETCH_CHUNK` keys, instead of one query a node (an evidence bundle of 500 records at ten million:
        16,000 queries); returns the nodes found. Which nodes: those the proofs themselves ask for, by running them
        on a :class:`_Probe`. A node not found, or not well formed, is left to :meth:`node`, which raises as before.
        Nothing read here is trusted more than before: each proof is checked against the signed root by its caller."""
        probe = _Probe(self.size)
        for m in leaves:
            if 0 <= m < self.size:
                probe.inclusion_proof(m)
        by_level: dict[int, list[int]] = {}
        for level, idx in probe.asked:
            if (idx << level, (idx + 1) << level) not in self._memo:
                by_level.setdefault(level, []).append(idx)
        found = 0
        for level, ids in sorted(by_level.items()):
            for i in range(0, len(ids), PREFETCH_CHUNK):
                part = sorted(ids[i : i + PREFETCH_CHUNK])
                marks = ",".join([self._ph] * len(part))
                if level == 0:
                    q = f"SELECT seq - 1, leaf_hash FROM audit_log WHERE seq IN ({marks})"
                    rows = self._conn.execute(q, [x + 1 for x in part]).fetchall()
                else:
                    q = f"SELECT idx, hash FROM audit_merkle_nodes WHERE level = {self._ph} AND idx IN ({marks})"
                    rows = self._conn.execute(q, [level, *part]).fetchall()
                for idx, value in rows:
                    got = _node_bytes(level, value)
                    if got is not None:
                        self._memo[(int(idx) << level, (int(idx) + 1) << level)] = got
                        found += 1
        return found

    def node(self, level: int, idx: int) -> bytes:
        """A stored node (level 0: the log's leaf hash of seq ``idx + 1``); KeyError if it is not there."""
        if level == 0:
            q = f"SELECT leaf_hash FROM audit_log WHERE seq = {self._ph}"
            row = self._conn.execute(q, (idx + 1,)).fetchone()
            return bytes.fromhex(row[0]) if row and isinstance(row[0], str) else _missing(level, idx)
        q = f"SELECT hash FROM audit_merkle_nodes WHERE level = {self._ph} AND idx = {self._ph}"
        row = self._conn.execute(q, (level, idx)).fetchone()
        return bytes(row[0]) if row else _missing(level, idx)


class _Probe(StoredTree):
    """A tree of ``size`` leaves that reads nothing: it notes each stored node (level, idx) a proof asks for, so
    :meth:`StoredTree.prefetch` fetches exactly what the proofs' own recursion will read."""

    def __init__(self, size: int) -> None:
        super().__init__(None, size)
        self.asked: set[tuple[int, int]] = set()

    def node(self, level: int, idx: int) -> bytes:
        self.asked.add((level, idx))
        return _EMPTY


PREFETCH_CHUNK = 500
"""Node keys per query of :meth:`StoredTree.prefetch`."""


def _node_bytes(level: int, value: Any) -> bytes | None:
    """A stored node's hash as :meth:`StoredTree.node` reads it (level 0: the log's hex leaf hash); None if not
    well formed."""
    if level == 0:
        if not isinstance(value, str):
            return None
        try:
            return bytes.fromhex(value)
        except ValueError:
            return None
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else None


def _missing(level: int, idx: int) -> bytes:
    raise KeyError(f"tree node ({level}, {idx}) is not stored")


class _Db:
    """The store's connection, its placeholder and a write transaction that serializes integrators."""

    def __init__(
        self, conn: Any, ph: str, tx: Callable[[], contextlib.AbstractContextManager[Any]], ids: bool = False
    ) -> None:
        self.conn, self.ph, self.tx = conn, ph, tx
        self.ids = ids  # the store keeps SQLite's record-id table (seq, leaf_hash): see _leaf_hashes

    @classmethod
    def of(cls, store: AuditStore) -> _Db | None:
        from flytekitplugins.aios_audit.stores.sqlite import SQLiteAuditStore, _write

        if isinstance(store, SQLiteAuditStore):
            conn = store._conn()
            for stmt in SCHEMA:
                conn.execute(stmt.format(blob="BLOB", without_rowid=" WITHOUT ROWID"))
            return cls(conn, "?", lambda: _write(conn), ids=True)
        if type(store).__name__ == "PostgresAuditStore":
            pg = store._conn()  # type: ignore[attr-defined]

            @contextlib.contextmanager
            def tx() -> Iterator[None]:
                with pg.transaction():
                    pg.execute(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
                    yield

            # no DDL here: the level tables are part of the store's schema (stores.postgres._ddl), which its open made
            # or found whole, so a read-only role (an auditor's) reads the levels without a CREATE it may not run
            return cls(pg, "%s", tx)
        return None


def stored_tree(store: AuditStore, size: int) -> StoredTree | None:
    """A :class:`StoredTree` of ``size`` leaves, integrating what is missing first; None where not supported."""
    try:
        db = _Db.of(store)
        if db is None or _integrate_to(db, size) < size:
            return None
    except (ValueError, KeyError):
        return None
    except Exception as e:
        if _database_error(e):
            return None
        raise
    return StoredTree(db.conn, size, db.ph)


def _database_error(e: Exception) -> bool:
    """An error of the store's database (a read-only file, a role without rights, a lost connection): SQLite's, or
    psycopg's without importing psycopg where it is not installed."""
    return isinstance(e, sqlite3.Error) or type(e).__module__.startswith("psycopg")


def catch_up(store: AuditStore, progress: Callable[[int, int], None] | None = None) -> tuple[int, int] | None:
    """Integrate the stored tree levels up to the log's size now, batch by batch; ``(integrated, size)``.

    What ``aios audit rebuild-projections`` runs as part of an upgrade, so that the first proof afterwards does not
    integrate a whole log written before. None where the store keeps no levels; ``integrated < size`` when the log
    has a gap (``aios audit verify`` says where).
    """
    db = _Db.of(store)
    if db is None:
        return None
    size = store.size()
    return _integrate_to(db, size, progress), size


def integrate_through(
    store: AuditStore, size: int, progress: Callable[[int, int], None] | None = None
) -> tuple[int, str]:
    """Store the levels of the first ``size`` leaves now, as ``aios audit checkpoint`` does for the tree it signs (as
    Tessera's integration writes the tiles of the checkpoint it publishes), so that proofs against that checkpoint
    read O(log n) stored hashes from the first one on, whoever asks (a read-only auditor's role cannot store them).

    Returns ``(leaves whose levels are stored, why not through size or "")``; never raises for a store that keeps
    no levels or a role that may not write them: the proof then integrates them, or rebuilds from the leaves.
    """
    try:
        db = _Db.of(store)
        if db is None:
            return 0, "this store keeps no tree levels"
        done = _integrate_to(db, size, progress)
    except Exception as e:
        if not _database_error(e):
            raise
        if isinstance(e, sqlite3.Error):
            return 0, f"the tree levels could not be stored ({e})"
        return 0, f"the tree levels could not be stored ({type(e).__name__}: this role may not write them)"
    return done, "" if done >= size else f"the log has a gap after record {done} (run `aios audit verify`)"


def _integrate_to(db: _Db, size: int, progress: Callable[[int, int], None] | None = None) -> int:
    """Integrate batch by batch until ``size`` leaves have their nodes stored, or a gap in the log stops it; the
    leaves integrated then (at least ``size`` unless stopped)."""
    done = integrated(db.conn)
    while done < size:
        complete = _integrate_batch(db, size)
        done = integrated(db.conn)
        if not complete:
            break
        if progress is not None:
            progress(done, size)
    return done


def integrated(conn: Any) -> int:
    """Leaves whose nodes are stored."""
    row = conn.execute("SELECT size FROM audit_merkle_size WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def _integrate_batch(db: _Db, want: int) -> bool:
    """Store the nodes completed by the next batch of leaves (one transaction); False if the log has a gap."""
    conn, ph = db.conn, db.ph
    with db.tx():
        done = integrated(conn)  # re-read under the lock: another process may have caught up
        if done >= want:
            return True
        end = min(want, done + BATCH)
        tree = StoredTree(conn, done, ph)
        stack, start = [], 0
        for bit in reversed(range(done.bit_length())):  # the frontier of `done`: one node per set bit
            if done >> bit & 1:
                stack.append(tree.node(bit, start >> bit))
                start += 1 << bit
        out: list[tuple[int, int, bytes]] = []
        size = _push(stack, done, _leaf_hashes(db, done, end), out)
        upsert = " ON CONFLICT ({}) DO UPDATE SET {} = EXCLUDED.{}"
        pg = ph == "%s"  # PostgreSQL: the batch as three binary arrays in one statement (one row a statement took
        # 0.18 s for 10,800 leaves' nodes, pipelined, of a continuing checkpoint's 0.28 s of levels)
        rows = "SELECT * FROM unnest(%b::int[], %b::bigint[], %b::bytea[])" if pg else f"VALUES ({ph}, {ph}, {ph})"
        q = f"INSERT INTO audit_merkle_nodes (level, idx, hash) {rows}" + upsert.format("level, idx", "hash", "hash")
        if pg:
            conn.execute(q, [list(col) for col in zip(*out, strict=True)] if out else [[], [], []])
        else:
            with contextlib.closing(conn.cursor()) as cur:
                cur.executemany(q, out)
        q = f"INSERT INTO audit_merkle_size (id, size) VALUES (1, {ph})" + upsert.format("id", "size", "size")
        conn.execute(q, (size,))
    return size == end


def _leaf_hashes(db: _Db, done: int, end: int) -> list[bytes]:
    """The leaf hashes of records ``done + 1 .. end`` (fewer where the log has a gap).

    On SQLite, from the record-id table when it holds every one of them well formed: the same ``leaf_hash`` values
    as the log's column, in a table a fraction of the log's size (the log's rows carry their entries: reading the
    leaf hashes of ten million records from it took 36 s from a cold cache, from the id table 14 s). Otherwise, and
    for any record the id table lacks or holds malformed, from the log itself. Neither is trusted: a proof from the
    stored levels is checked against the signed checkpoint, and rebuilt from the entries if that fails. An id table
    that does not reach ``end`` (one look-up, its last seq) is not read at all: its rows would be read for nothing.
    """
    from flytekitplugins.aios_audit.stores.sqlite import _ids_heads

    if db.ids and _ids_heads(db.conn)[1] >= end:
        q = "SELECT seq, leaf_hash FROM audit_ids WHERE seq > ? AND seq <= ? ORDER BY seq"
        try:
            hashes = list(_leaves(db.conn.execute(q, (done, end)).fetchall(), done))
        except ValueError:  # a leaf_hash that is not hex
            hashes = []
        if len(hashes) == end - done:
            return hashes
    q = f"SELECT seq, leaf_hash FROM audit_log WHERE seq > {db.ph} AND seq <= {db.ph} ORDER BY seq"
    return list(_leaves(db.conn.execute(q, (done, end)).fetchall(), done))


def _leaves(rows: Iterable[tuple[int, str]], done: int) -> Iterable[bytes]:
    """Leaf hashes of consecutive rows after ``done``; stops at a gap or a malformed hash."""
    expected = done + 1
    for seq, leaf in rows:
        if seq != expected or not isinstance(leaf, str) or len(leaf) != 64:
            return
        yield bytes.fromhex(leaf)
        expected += 1


def _push(stack: list[bytes], size: int, leaves: Iterable[bytes], out: list[tuple[int, int, bytes]]) -> int:
    """Append leaves to the frontier ``stack`` of a tree of ``size``, collecting every completed node."""
    sha = hashlib.sha256
    for node in leaves:
        size += 1
        level, m = 0, size
        while m & 1 == 0:
            node = sha(b"\x01" + stack.pop() + node).digest()
            level += 1
            out.append((level, (size >> level) - 1, node))
            m >>= 1
        stack.append(node)
    return size
