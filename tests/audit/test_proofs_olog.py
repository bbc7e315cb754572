"""Proofs read O(log n) stored tree nodes, are byte-identical to the full rebuild, and never trust the nodes."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from flytekitplugins.aios_audit import AuditEvent, audit_log, nodes, proofs
from flytekitplugins.aios_audit.merkle import MerkleTree, leaf_hash
from flytekitplugins.aios_audit.proofs import check_proof, make_checkpoint, prove_consistency, prove_inclusion
from flytekitplugins.aios_audit.trust import TrustedKeys
from flytekitplugins.aios_core.settings import get_settings


def _fill(n: int) -> None:
    audit_log(get_settings()).append_many([AuditEvent(kind="task", actor=f"user:a{i}") for i in range(n)])


def _full_tree(size: int) -> MerkleTree:
    return MerkleTree([leaf_hash(r[1]) for r in audit_log(get_settings()).scan_raw(1, size)])


def test_stored_tree_proofs_equal_the_full_tree(aios_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nodes, "BATCH", 5)  # many small integration batches
    _fill(37)
    full = _full_tree(37)
    for size in (1, 2, 3, 7, 8, 9, 16, 21, 32, 37):
        tree = nodes.stored_tree(audit_log(get_settings()), size)
        assert tree is not None and tree.root() == full.root(size)
        for i in range(size):
            assert tree.inclusion_proof(i, size) == full.inclusion_proof(i, size), (i, size)
        for old in range(1, size + 1):
            assert tree.consistency_proof(old, size) == full.consistency_proof(old, size), (old, size)
    assert nodes.integrated(audit_log(get_settings())._conn()) == 37


def test_prove_reads_log_n_nodes_and_never_rebuilds(aios_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(300)
    cp = make_checkpoint(audit_log(get_settings()), get_settings().signing_key)
    monkeypatch.setattr(proofs, "_tree", lambda *a: (_ for _ in ()).throw(AssertionError("full rebuild")))
    nodes.stored_tree(audit_log(get_settings()), cp.tree_size)  # integrate once
    reads: list[Any] = []
    original = nodes.StoredTree.node

    def spy(self: nodes.StoredTree, level: int, idx: int) -> bytes:
        reads.append((level, idx))
        return original(self, level, idx)

    monkeypatch.setattr(nodes.StoredTree, "node", spy)
    full = _full_tree(300)
    for seq in (1, 150, 257, 300):
        doc = prove_inclusion(audit_log(get_settings()), f"#{seq}", cp)
        assert doc["path"] == [p.hex() for p in full.inclusion_proof(seq - 1)]
        assert check_proof(doc, cp, TrustedKeys.from_settings(get_settings()))[0]
        assert len(reads) <= 2 * math.ceil(math.log2(300)), (seq, reads)
        reads.clear()
    rid = next(audit_log(get_settings()).scan_raw(77, 77))[2]
    assert prove_inclusion(audit_log(get_settings()), rid, cp)["leaf_index"] == 76
    for unknown in ("f" * 64, "#0", "#301"):  # refused without rebuilding the tree
        with pytest.raises(proofs.ProofError, match="is not among the 300 records"):
            prove_inclusion(audit_log(get_settings()), unknown, cp)


def test_corrupt_nodes_fall_back_to_the_full_rebuild(aios_env: Path) -> None:
    _fill(40)
    cp = make_checkpoint(audit_log(get_settings()), get_settings().signing_key)
    good = prove_inclusion(audit_log(get_settings()), "#3", cp)
    c = sqlite3.connect(aios_env / "audit.db", isolation_level=None)
    assert c.execute("UPDATE audit_merkle_nodes SET hash = zeroblob(32)").rowcount > 0
    again = prove_inclusion(audit_log(get_settings()), "#3", cp)
    assert again == good and check_proof(again, cp, TrustedKeys.from_settings(get_settings()))[0]


def test_consistency_from_nodes_and_catch_up(aios_env: Path) -> None:
    _fill(13)
    old = make_checkpoint(audit_log(get_settings()), get_settings().signing_key)
    prove_inclusion(audit_log(get_settings()), "#2", old)
    assert nodes.integrated(audit_log(get_settings())._conn()) == 13
    _fill(30)
    new = make_checkpoint(audit_log(get_settings()), get_settings().signing_key)
    doc = prove_consistency(audit_log(get_settings()), old, new)
    assert doc["path"] == [p.hex() for p in _full_tree(43).consistency_proof(13, 43)]
    assert (
        check_proof(doc, new, TrustedKeys.from_settings(get_settings()))[0]
        and nodes.integrated(audit_log(get_settings())._conn()) == 43
    )


def test_postgres_stored_tree(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from flytekitplugins.aios_audit.stores import open_store

    monkeypatch.setattr(nodes, "BATCH", 8)
    store = open_store(pg_url)
    store.append_many([AuditEvent(kind="task", actor=f"user:a{i}") for i in range(29)])
    full = MerkleTree([leaf_hash(r[1]) for r in store.scan_raw(1, 29)])
    tree = nodes.stored_tree(store, 29)
    assert tree is not None and tree.root() == full.root()
    assert all(tree.inclusion_proof(i) == full.inclusion_proof(i) for i in range(29))
    assert tree.consistency_proof(11, 29) == full.consistency_proof(11, 29)
    assert nodes.integrated(store._conn()) == 29  # type: ignore[attr-defined]


def test_tree_levels_read_the_leaf_hashes_from_a_current_id_table(
    aios_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite the tree levels are integrated from the record-id table when it holds every leaf asked (a fraction of
    the log's size: 14 s against 36 s for ten million leaf hashes from a cold cache), else from the log; either way
    the same tree."""
    monkeypatch.setattr(nodes, "BATCH", 8)
    _fill(30)
    store = audit_log(get_settings())
    rid = next(store.scan_raw(30, 30))[2]
    assert store.get(rid) is not None
    assert store.catch_up_ids()  # type: ignore[attr-defined]  # audit_ids up to date: 30 records
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)  # type: ignore[attr-defined]
    tree = nodes.stored_tree(store, 30)
    store._conn().set_trace_callback(None)  # type: ignore[attr-defined]
    assert tree is not None and tree.root() == _full_tree(30).root()
    leaf_reads = [s for s in statements if "SELECT seq, leaf_hash FROM" in s]
    assert len(leaf_reads) == 4 and all("FROM audit_ids" in s for s in leaf_reads), leaf_reads  # 8 + 8 + 8 + 6
    _fill(10)  # not yet in audit_ids: read from the log, and the id table that stops at 30 is not read at all
    statements.clear()
    store._conn().set_trace_callback(statements.append)  # type: ignore[attr-defined]
    tree = nodes.stored_tree(store, 40)
    store._conn().set_trace_callback(None)  # type: ignore[attr-defined]
    assert tree is not None and tree.root() == _full_tree(40).root()
    leaf_reads = [s for s in statements if "SELECT seq, leaf_hash FROM" in s]
    assert len(leaf_reads) == 2 and all("FROM audit_log" in s for s in leaf_reads), leaf_reads  # 31-38, 39-40


@pytest.mark.parametrize(
    "tamper",
    [
        "DELETE FROM audit_ids WHERE seq = 5",
        "UPDATE audit_ids SET leaf_hash = 'zz' || substr(leaf_hash, 3) WHERE seq = 6",
    ],
)
def test_an_id_table_with_a_hole_or_a_malformed_hash_is_passed_over(aios_env: Path, tamper: str) -> None:
    """A record the id table lacks or holds malformed: that batch is read from the log (not reported as a gap in the
    log), and the tree is the log's."""
    _fill(20)
    store = audit_log(get_settings())
    assert store.get(next(store.scan_raw(20, 20))[2]) is not None
    sqlite3.connect(aios_env / "audit.db", isolation_level=None).execute(tamper)
    assert nodes.catch_up(store) == (20, 20)
    tree = nodes.stored_tree(store, 20)
    assert tree is not None and tree.root() == _full_tree(20).root()


def test_a_wrong_hash_in_the_id_table_cannot_make_a_proof_pass(aios_env: Path) -> None:
    """A well-formed but wrong leaf hash in the id table gives wrong stored levels; the proof from them fails against
    the signed checkpoint and the proof is rebuilt from the entries: still the right, verifying proof."""
    _fill(24)
    store = audit_log(get_settings())
    cp = make_checkpoint(store, get_settings().signing_key)
    assert store.get(next(store.scan_raw(24, 24))[2]) is not None
    assert store.catch_up_ids()  # type: ignore[attr-defined]  # the id table holds every record (a look-up reads a short backlog from the log)
    c = sqlite3.connect(aios_env / "audit.db", isolation_level=None)
    c.execute("DROP TABLE IF EXISTS audit_merkle_nodes")
    c.execute("DROP TABLE IF EXISTS audit_merkle_size")
    c.execute("UPDATE audit_ids SET leaf_hash = ? WHERE seq = 7", ("ab" * 32,))
    doc = prove_inclusion(store, "#7", cp)
    assert doc["path"] == [p.hex() for p in _full_tree(24).inclusion_proof(6)]
    assert check_proof(doc, cp, TrustedKeys.from_settings(get_settings()))[0]
    stored = nodes.stored_tree(store, 24)  # the levels did come from the edited table: wrong, and not used
    assert stored is not None and stored.root() != _full_tree(24).root()


@pytest.mark.postgres
@pytest.mark.parametrize("batch", [1, 5])
def test_postgres_stored_levels_equal_the_full_tree(pg_url: str, monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    """PostgreSQL writes each batch's nodes as three binary arrays in one statement: the same tree, across batches
    (one leaf a batch: batches that complete no node), and after a node is overwritten by a later integration."""
    from flytekitplugins.aios_audit.stores import open_store

    monkeypatch.setattr(nodes, "BATCH", batch)
    store = open_store(pg_url)
    try:
        store.append_many([AuditEvent(kind="task", actor=f"user:a{i}") for i in range(23)])
        full = MerkleTree([leaf_hash(r[1]) for r in store.scan_raw(1, 23)])
        for size in (1, 2, 7, 8, 16, 23):
            tree = nodes.stored_tree(store, size)
            assert tree is not None and tree.root() == full.root(size), size
            for i in range(size):
                assert tree.inclusion_proof(i, size) == full.inclusion_proof(i, size), (i, size)
        with store._conn().transaction():  # type: ignore[attr-defined]
            store._conn().execute("UPDATE audit_merkle_size SET size = 0")  # type: ignore[attr-defined]
        assert nodes.integrate_through(store, 23) == (23, "")  # every node written again over itself
        tree = nodes.stored_tree(store, 23)
        assert tree is not None and tree.root() == full.root(23)
    finally:
        store.close()
