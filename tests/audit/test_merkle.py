"""RFC 9162 Merkle trees: published vectors, every proof of small trees, and corrupted proofs rejected.

Vectors: the eight leaves and tree heads used by Certificate Transparency's reference implementations
(RFC 6962 / RFC 9162 share the hashing), as published in transparency-dev/merkle ``testonly`` and
google/certificate-transparency-go ``merkle`` tests: roots for sizes 1..8, the inclusion proof of leaf 0
in the tree of 8, and consistency proofs 1->8, 6->8, 2->5.
"""

from __future__ import annotations

import hashlib

import pytest

from flytekitplugins.aios_audit.merkle import (
    MerkleTree,
    RootAccumulator,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION_0_8 = [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
]
CONSISTENCY = {
    (1, 8): INCLUSION_0_8,
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}
HASHES = [leaf_hash(x) for x in LEAVES]
TREE = MerkleTree(HASHES)


def test_published_roots() -> None:
    assert root([]) == hashlib.sha256(b"").digest()
    for n in range(1, 9):
        assert root(HASHES[:n]).hex() == ROOTS[n - 1]
        assert TREE.root(n).hex() == ROOTS[n - 1]


def test_streaming_accumulator_matches_tree_for_many_sizes() -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(300)]
    acc = RootAccumulator()
    tree = MerkleTree(leaves)
    for i, leaf in enumerate(leaves):
        acc.push(leaf)
        assert acc.root() == tree.root(i + 1)


def test_published_proofs() -> None:
    assert [p.hex() for p in TREE.inclusion_proof(0, 8)] == INCLUSION_0_8
    for (a, b), proof in CONSISTENCY.items():
        assert [p.hex() for p in TREE.consistency_proof(a, b)] == proof
        assert verify_consistency(a, b, TREE.root(a), TREE.root(b), [bytes.fromhex(p) for p in proof])


def test_every_proof_of_small_trees_verifies() -> None:
    tree = MerkleTree([leaf_hash(str(i).encode()) for i in range(33)])
    for n in range(1, 34):
        for i in range(n):
            assert verify_inclusion(tree.levels[0][i], i, n, tree.inclusion_proof(i, n), tree.root(n))
        for m in range(1, n + 1):
            assert verify_consistency(m, n, tree.root(m), tree.root(n), tree.consistency_proof(m, n))


def _flip(b: bytes, bit: int = 0) -> bytes:
    return bytes([b[0] ^ (1 << bit)]) + b[1:]


def _inclusion_corruptions(proof: list[bytes]) -> list[tuple[str, list[bytes]]]:
    out = [(f"flip element {k}", [*proof[:k], _flip(p), *proof[k + 1 :]]) for k, p in enumerate(proof)]
    out += [("extra element", [*proof, proof[-1]]), ("missing last", proof[:-1]), ("missing first", proof[1:])]
    out += [("short hash", [proof[0][:31], *proof[1:]]), ("reversed", proof[::-1]) if len(proof) > 1 else ("empty", [])]
    return out


@pytest.mark.parametrize(("index", "size"), [(0, 8), (5, 8), (2, 5), (6, 7), (12, 33), (32, 33)])
def test_corrupted_inclusion_proofs_are_rejected(index: int, size: int) -> None:
    tree = MerkleTree([leaf_hash(str(i).encode()) for i in range(40)])
    leaf, proof, rt = tree.levels[0][index], tree.inclusion_proof(index, size), tree.root(size)
    assert verify_inclusion(leaf, index, size, proof, rt)
    for name, bad in _inclusion_corruptions(proof):
        assert not verify_inclusion(leaf, index, size, bad, rt), name
    assert not verify_inclusion(_flip(leaf, 3), index, size, proof, rt), "flipped leaf"
    assert not verify_inclusion(leaf, index ^ 1, size, proof, rt), "wrong index"
    # A proof binds (size, root): claiming another size (with that size's real root) must fail.
    assert not verify_inclusion(leaf, index, size + 1, proof, tree.root(size + 1)), "wrong size (bigger)"
    if index < size - 1:
        assert not verify_inclusion(leaf, index, size - 1, proof, tree.root(size - 1)), "wrong size (smaller)"
    assert not verify_inclusion(leaf, size, size, proof, rt), "index out of range"
    assert not verify_inclusion(leaf, index, size, proof, _flip(rt)), "wrong root"


@pytest.mark.parametrize(("old", "new"), [(1, 8), (6, 8), (2, 5), (3, 7), (4, 33), (17, 33)])
def test_corrupted_consistency_proofs_are_rejected(old: int, new: int) -> None:
    tree = MerkleTree([leaf_hash(str(i).encode()) for i in range(40)])
    proof, r1, r2 = tree.consistency_proof(old, new), tree.root(old), tree.root(new)
    assert verify_consistency(old, new, r1, r2, proof)
    for name, bad in _inclusion_corruptions(proof):
        assert not verify_consistency(old, new, r1, r2, bad), name
    assert not verify_consistency(old, new, _flip(r1), r2, proof), "wrong old root"
    assert not verify_consistency(old, new, r1, _flip(r2), proof), "wrong new root"
    assert not verify_consistency(old, new + 1, r1, tree.root(new + 1), proof), "wrong new size"
    if old + 1 < new:
        assert not verify_consistency(old + 1, new, tree.root(old + 1), r2, proof), "wrong old size"
    assert not verify_consistency(old, new, r1, r2, []), "empty proof"
