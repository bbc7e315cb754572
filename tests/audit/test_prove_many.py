"""Inclusion proofs of many records at once (an evidence bundle's): one stored tree, its nodes read in bulk, each
proof the same document `aios audit prove` gives, on both backends; stored levels that fail still give true proofs.

Before, each record's proof read its ~2 log n nodes one query at a time: an execution's 500 records at ten million
records on PostgreSQL made 16,000 queries (2.3 s of a 3.4 s export)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flytekitplugins.aios_audit import AuditEvent, nodes, proofs
from flytekitplugins.aios_audit.merkle import verify_inclusion
from flytekitplugins.aios_audit.stores import AuditStore, open_store
from flytekitplugins.aios_core.settings import get_settings


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, aios_env: Path) -> Iterator[AuditStore]:
    url = f"sqlite:///{aios_env}/many.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = open_store(url)
    s.append_many([AuditEvent(kind="task", actor="user:a", subject=f"d{i}") for i in range(257)])  # an odd size
    yield s
    s.close()


def _checkpoint(store: AuditStore) -> Any:
    cp = proofs.continuing_checkpoint(store, get_settings())[0]
    store.append_many([AuditEvent(kind="task", actor="user:a", subject=f"later{i}") for i in range(9)])
    return cp  # of 257 records, the log now 266: proofs are of the checkpoint's tree, not the log's


def test_many_proofs_equal_one_at_a_time_and_read_only_the_bulk_nodes(
    store: AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    cp = _checkpoint(store)
    assert cp.tree_size == 257 and store.size() == 266
    one_by_one = {seq: proofs.prove_inclusion(store, f"#{seq}", cp) for seq in range(1, 258)}

    def no(*_a: object, **_k: object) -> Any:
        raise AssertionError("a node was read one at a time, or a proof fell back")

    with monkeypatch.context() as m:  # every node the 257 paths need comes from the prefetch's queries
        m.setattr(nodes.StoredTree, "node", no)
        m.setattr(proofs, "prove_inclusion", no)
        many = proofs.prove_inclusions(store, [0, *range(257, 0, -1), 258, 266, 9999], cp)
    assert list(many) == list(range(1, 258))  # in order, only what the checkpoint covers
    assert many == one_by_one


def test_stored_levels_that_fail_still_give_true_proofs(store: AuditStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed stored node fails the check against the signed root; those records' proofs come from the tree
    rebuilt once from every leaf, the others' from the stored levels, and every one verifies."""
    cp = _checkpoint(store)
    seqs = [1, 33, 40, 48, 49, 64, 100, 129, 200, 257]
    want = {seq: proofs.prove_inclusion(store, f"#{seq}", cp) for seq in seqs}  # before the change
    conn: Any = store._conn()  # type: ignore[attr-defined]
    q = "UPDATE audit_merkle_nodes SET hash = {} WHERE level = 4 AND idx = 3"  # seqs 49..64: in the paths of 33..48
    if store.dialect == "sqlite":
        with conn:
            assert conn.execute(q.format("zeroblob(32)")).rowcount == 1
    else:
        with conn.transaction():
            assert conn.execute(q.format("'\\x" + "00" * 32 + "'::bytea")).rowcount == 1
    rebuilt: list[int] = []
    tree = proofs._tree

    def counted(*a: Any, **k: Any) -> Any:
        rebuilt.append(1)
        return tree(*a, **k)

    monkeypatch.setattr(proofs, "_tree", counted)
    got = proofs.prove_inclusions(store, seqs, cp)
    assert rebuilt == [1]  # once for the three records whose paths hold the changed node, not once each
    root = bytes.fromhex(cp.root_hash)
    for seq in seqs:
        doc = got[seq]
        path = [bytes.fromhex(h) for h in doc["path"]]
        assert verify_inclusion(bytes.fromhex(doc["leaf_hash"]), seq - 1, cp.tree_size, path, root), seq
    assert got == want


def test_prefetch_reads_nodes_in_chunks(aios_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The prefetch's queries grow with the nodes needed over the chunk size, not with the number of proofs."""
    s = open_store(f"sqlite:///{aios_env}/chunks.db")
    s.append_many([AuditEvent(kind="task", actor="user:a", subject=f"d{i}") for i in range(1000)])
    cp = proofs.continuing_checkpoint(s, get_settings())[0]
    tree = nodes.stored_tree(s, cp.tree_size)
    assert tree is not None
    statements: list[str] = []
    conn = s._conn()  # type: ignore[attr-defined]
    assert isinstance(conn, sqlite3.Connection)
    conn.set_trace_callback(statements.append)
    monkeypatch.setattr(nodes, "PREFETCH_CHUNK", 64)
    try:
        found = tree.prefetch(range(0, 1000, 3))
    finally:
        conn.set_trace_callback(None)
    reads = [q for q in statements if q.startswith("SELECT")]
    assert found > 334 and len(reads) <= found // 64 + 11  # one query per chunk of a level (ten levels and leaves)
    path, leaf = tree.inclusion_proof(333), tree.subtree(333, 334)  # from what was read
    assert verify_inclusion(leaf, 333, 1000, path, bytes.fromhex(cp.root_hash))
