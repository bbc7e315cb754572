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
