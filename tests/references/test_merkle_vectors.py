"""The Merkle verifiers and proof generation against transparency-dev/merkle's published vectors.

data/merkle/probes.json holds every inclusion and consistency probe of the Go library's testdata/ (happy paths
and the deliberately malformed ones: flipped bits, wrong index or size, truncated, extended or reordered
proofs, empty and wrong-length hashes); data/merkle/reference_tree.json the RFC 6962 reference tree of 8
leaves with its node hashes, roots and proofs, the hasher vectors and the compact-range golden roots. Where
this pack is deliberately stricter than the Go verifier the probe is listed in STRICTER with the reason.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from flytekitplugins.aios_audit.merkle import (
    MerkleTree,
    RootAccumulator,
    consistency_proof_size,
    inclusion_proof_size,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

DATA = Path(__file__).parent / "data" / "merkle"
PROBES: dict[str, Any] = json.loads((DATA / "probes.json").read_text(encoding="utf-8"))
REF: dict[str, Any] = json.loads((DATA / "reference_tree.json").read_text(encoding="utf-8"))
LEAVES = [leaf_hash(bytes.fromhex(x)) for x in REF["leaf_inputs_hex"]["values"]]
TREE = MerkleTree(LEAVES)
STRICTER = {
    # Go accepts equal sizes with equal roots without looking at them; the roots here are the 12-byte string
    # "don't care 2", not hashes, and this pack rejects every hash that is not 32 bytes.
    "testdata/consistency/additional/sizes-are-equal-one-and-proof-is-empty.json": "roots are not 32-byte hashes",
}


def _b(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(probe: dict[str, Any]) -> list[bytes]:
    return [_b(p) for p in probe["proof"] or []]


def _check_inclusion(p: dict[str, Any]) -> bool:
    return verify_inclusion(_b(p["leafHash"]), p["leafIdx"], p["treeSize"], _proof(p), _b(p["root"]))


def _check_consistency(p: dict[str, Any]) -> bool:
    return verify_consistency(p["size1"], p["size2"], _b(p["root1"]), _b(p["root2"]), _proof(p))


def test_vector_files_are_the_published_set() -> None:
    assert PROBES["repository"] == REF["repository"] == "https://github.com/transparency-dev/merkle"
    assert len(PROBES["commit"]) == 40 and PROBES["commit"] == REF["commit"]
    for kind in ("inclusion", "consistency"):
        probes = PROBES[kind]
        assert len(probes) == 98, kind
        assert sum(not p["wantErr"] for p in probes) < 15 < sum(p["wantErr"] for p in probes), kind


@pytest.mark.parametrize("probe", PROBES["inclusion"], ids=lambda p: p["file"].removeprefix("testdata/"))
def test_inclusion_probe(probe: dict[str, Any]) -> None:
    assert _check_inclusion(probe) is not probe["wantErr"], probe["desc"]


@pytest.mark.parametrize("probe", PROBES["consistency"], ids=lambda p: p["file"].removeprefix("testdata/"))
def test_consistency_probe(probe: dict[str, Any]) -> None:
    want = not probe["wantErr"] and probe["file"] not in STRICTER
    assert _check_consistency(probe) is want, probe["desc"]


def test_stricter_probes_are_still_published_as_accepted() -> None:
    files = {p["file"]: p for p in PROBES["consistency"]}
    for name in STRICTER:
        assert files[name]["wantErr"] is False
        assert len(_b(files[name]["root1"])) != 32


def test_reference_tree_hashes() -> None:
    hasher = {v["desc"]: v["want"] for v in REF["hasher"]["values"]}
    assert root([]).hex() == hasher["RFC6962 Empty"]
    assert leaf_hash(b"").hex() == hasher["RFC6962 Empty Leaf"]
    assert leaf_hash(b"L123456").hex() == hasher["RFC6962 Leaf"]
    assert node_hash(b"N123", b"N456").hex() == hasher["RFC6962 Node"]
    assert [[h.hex() for h in level] for level in TREE.levels] == REF["node_hashes_by_level"]["values"]
    roots = REF["roots_by_size"]["values"]
    assert [TREE.root(n).hex() for n in range(9)] == roots
    assert [root(LEAVES[:n]).hex() for n in range(9)] == roots


def test_compact_golden_roots() -> None:
    golden = {v["size"]: v["root"] for v in REF["compact_golden_roots"]["values"]}
    leaves = [leaf_hash(bytes([i & 0xFF, i >> 8 & 0xFF])) for i in range(max(golden))]
    acc, tree, got = RootAccumulator(), MerkleTree(leaves), {}
    for i, leaf in enumerate(leaves, 1):
        acc.push(leaf)
        if i in golden:
            got[i] = acc.root().hex()
            assert tree.root(i).hex() == golden[i], i
    assert got == golden


@pytest.mark.parametrize("case", REF["inclusion_proofs"]["values"], ids=lambda c: f"{c['index']}in{c['size']}")
def test_inclusion_proofs_generated_exactly(case: dict[str, Any]) -> None:
    index, size = case["index"], case["size"]
    proof = TREE.inclusion_proof(index, size)
    assert [p.hex() for p in proof] == case["proof"]
    assert verify_inclusion(LEAVES[index], index, size, proof, TREE.root(size))


@pytest.mark.parametrize("case", REF["consistency_proofs"]["values"], ids=lambda c: f"{c['size1']}to{c['size2']}")
def test_consistency_proofs_generated_exactly(case: dict[str, Any]) -> None:
    old, new = case["size1"], case["size2"]
    proof = TREE.consistency_proof(old, new)
    assert [p.hex() for p in proof] == case["proof"]
    assert verify_consistency(old, new, TREE.root(old), TREE.root(new), proof)


def test_happy_path_probes_are_what_the_tree_generates() -> None:
    checked = 0
    for p in PROBES["inclusion"]:
        if not p["wantErr"]:
            index, size, leaf = p["leafIdx"], p["treeSize"], _b(p["leafHash"])
            tree = TREE if leaf in LEAVES else MerkleTree([leaf])
            assert tree.inclusion_proof(index, size) == _proof(p), p["file"]
            assert tree.root(size) == _b(p["root"]), p["file"]
            checked += 1
    for p in PROBES["consistency"]:
        if not p["wantErr"] and p["file"] not in STRICTER:
            old, new = p["size1"], p["size2"]
            assert TREE.consistency_proof(old, new) == _proof(p), p["file"]
            assert (TREE.root(old), TREE.root(new)) == (_b(p["root1"]), _b(p["root2"])), p["file"]
            checked += 1
    assert checked == 11


def test_proof_sizes_are_the_rfc_ones() -> None:
    tree = MerkleTree([leaf_hash(i.to_bytes(2, "big")) for i in range(70)])
    for new in range(1, 71):
        for i in range(new):
            assert len(tree.inclusion_proof(i, new)) == inclusion_proof_size(i, new)
        for old in range(1, new):
            assert len(tree.consistency_proof(old, new)) == consistency_proof_size(old, new)
    assert inclusion_proof_size(0, 2**64 - 1) == 64  # 64 levels, one sibling each
    assert inclusion_proof_size(2**64 - 2, 2**64 - 1) == 63  # last leaf: one left sibling per set bit


def test_hashes_must_be_exactly_32_bytes() -> None:
    """Regression: a 1-leaf tree with an empty (or any non-32-byte) leaf equal to the root was accepted."""
    for bad in (b"", b"x", bytes(31), bytes(33)):
        assert not verify_inclusion(bad, 0, 1, [], bad)
        assert not verify_consistency(1, 1, bad, bad, [])
        assert not verify_consistency(2, 2, bad, bad, [])
    leaf, rt, proof = LEAVES[5], TREE.root(8), TREE.inclusion_proof(5, 8)
    for i in range(len(proof)):
        for bad in (proof[i][:31], proof[i] + b"\0", b""):
            assert not verify_inclusion(leaf, 5, 8, [*proof[:i], bad, *proof[i + 1 :]], rt)
    cproof = TREE.consistency_proof(6, 8)
    assert not verify_consistency(6, 8, TREE.root(6), TREE.root(8), [cproof[0] + b"\0", *cproof[1:]])
    assert not verify_consistency(4, 8, TREE.root(4)[:31], TREE.root(8), TREE.consistency_proof(4, 8))


MALFORMED: list[tuple[str, tuple[Any, ...]]] = [
    ("str proof element", (LEAVES[0], 0, 2, ["a" * 32], TREE.root(2))),
    ("int proof element", (LEAVES[0], 0, 2, [7], TREE.root(2))),
    ("proof is None", (LEAVES[0], 0, 2, None, TREE.root(2))),
    ("proof is bytes", (LEAVES[0], 0, 1, b"", LEAVES[0])),
    ("str leaf", ("a" * 32, 0, 1, [], "a" * 32)),
    ("float index", (LEAVES[0], 0.0, 1, [], LEAVES[0])),
    ("bool size", (LEAVES[0], 0, True, [], LEAVES[0])),
    ("None size", (LEAVES[0], 0, None, [], LEAVES[0])),
    ("negative index", (LEAVES[0], -1, 1, [], LEAVES[0])),
    ("size beyond uint64", (LEAVES[0], 0, 2**64, [LEAVES[1]] * 64, LEAVES[0])),
]


@pytest.mark.parametrize(("name", "args"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_inclusion_is_false_not_an_exception(name: str, args: tuple[Any, ...]) -> None:
    assert verify_inclusion(*args) is False, name


def test_malformed_consistency_is_false_not_an_exception() -> None:
    r1, r2, proof = TREE.root(6), TREE.root(8), TREE.consistency_proof(6, 8)
    for args in [
        (6, 8, r1, r2, [p.hex() for p in proof]),
        (6, 8, r1, r2, None),
        (6.0, 8, r1, r2, proof),
        (6, None, r1, r2, proof),
        (True, True, r1, r1, []),
        (6, 2**64, r1, r2, proof),
        (6, 8, r1.hex(), r2, proof),
    ]:
        assert verify_consistency(*args) is False, args


def test_one_extra_or_missing_element_is_rejected_for_every_small_tree() -> None:
    tree = MerkleTree([leaf_hash(i.to_bytes(2, "big")) for i in range(20)])
    extra = leaf_hash(b"extra")
    for new in range(1, 21):
        rt = tree.root(new)
        for i in range(new):
            proof = tree.inclusion_proof(i, new)
            assert verify_inclusion(tree.levels[0][i], i, new, proof, rt)
            assert not verify_inclusion(tree.levels[0][i], i, new, [*proof, extra], rt)
            assert not verify_inclusion(tree.levels[0][i], i, new, [extra, *proof], rt)
        for old in range(1, new + 1):
            proof, r1 = tree.consistency_proof(old, new), tree.root(old)
            assert verify_consistency(old, new, r1, rt, proof)
            assert not verify_consistency(old, new, r1, rt, [*proof, extra])
            assert not verify_consistency(old, new, r1, rt, proof[:-1]) or not proof
