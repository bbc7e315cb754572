"""Regenerate probes.json and reference_tree.json from a clone of github.com/transparency-dev/merkle.

Usage: python extract_vectors.py GIT_DIR OUT_DIR [COMMIT]

probes.json: every JSON probe under testdata/inclusion and testdata/consistency, verbatim (hashes stay base64,
as published), plus the file each came from. The subtree probes are left out: this pack has no subtree proofs.

reference_tree.json: the RFC 6962 reference tree of 8 leaves and its proofs, read out of the Go test sources
(testonly/constants.go, testonly/reference_test.go, cmd/proofgen/main.go, rfc6962/rfc6962_test.go,
compact/range_test.go) with the regular expressions below.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

_PROOFGEN_CASE = r"\{(\d+), (\d+), (nil|\[\]\[\]byte\{(.*?)\n\t\t\})\}"


def _git(git_dir: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, *args], check=True, capture_output=True, text=True).stdout


def _between(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end)]


def _hexes(text: str, fn: str = "hd") -> list[str]:
    return re.findall(fn + r'\("([0-9a-f]*)"', text)


def _unique(cases: list[dict[str, Any]], keys: tuple[str, str]) -> list[dict[str, Any]]:
    seen: dict[tuple[int, int], dict[str, Any]] = {}
    for case in cases:
        key = (case[keys[0]], case[keys[1]])
        if key in seen and seen[key]["proof"] != case["proof"]:
            raise SystemExit(f"the Go sources disagree on the proof for {key}")
        seen.setdefault(key, case)
    return list(seen.values())


def probes(git_dir: str, commit: str) -> dict[str, Any]:
    """The published JSON probes, verbatim."""
    out: dict[str, Any] = {"repository": "https://github.com/transparency-dev/merkle", "commit": commit}
    for kind in ("inclusion", "consistency"):
        files = _git(git_dir, "ls-tree", "-r", "--name-only", commit, f"testdata/{kind}/").split()
        names = sorted(f for f in files if f.endswith(".json"))
        out[kind] = [{"file": f, **json.loads(_git(git_dir, "show", f"{commit}:{f}"))} for f in names]
    return out


def _ref_cases(text: str, keys: tuple[str, str]) -> list[dict[str, Any]]:
    pattern = r"\{" + r",\s*".join(rf"{k}: (\d+)" for k in keys) + r", want: (nil|\[\]\[\]byte\{(.*?)\n\t\t\}\})"
    return [
        {keys[0]: int(m.group(1)), keys[1]: int(m.group(2)), "proof": _hexes(m.group(4) or "")}
        for m in re.finditer(pattern, text, re.S)
    ]


def reference_tree(git_dir: str, commit: str) -> dict[str, Any]:
    """The reference tree of 8 leaves, its roots and proofs, as the Go tests state them."""
    show = lambda path: _git(git_dir, "show", f"{commit}:{path}")  # noqa: E731
    consts, ref, gen = show("testonly/constants.go"), show("testonly/reference_test.go"), show("cmd/proofgen/main.go")
    levels = [_hexes(b) for b in _between(consts, "func NodeHashes", "func RootHashes").split("}, {")]
    inc = _ref_cases(_between(ref, "func TestRefInclusionProof", "func TestRefConsistencyProof"), ("index", "size"))
    con = _ref_cases(_between(ref, "func TestRefConsistencyProof", "func TestRefSubtree"), ("size1", "size2"))
    for m in re.finditer(_PROOFGEN_CASE, _between(gen, "inclusionProofs = ", "consistencyProofs = "), re.S):
        inc.append({"index": int(m.group(1)) - 1, "size": int(m.group(2)), "proof": _hexes(m.group(4) or "", "dh")})
    for m in re.finditer(_PROOFGEN_CASE, _between(gen, "consistencyProofs = ", "roots = "), re.S):
        con.append({"size1": int(m.group(1)), "size2": int(m.group(2)), "proof": _hexes(m.group(4) or "", "dh")})
    hasher = re.findall(r'desc: "([^"]+)",\s*want: "([0-9a-f]+)"', show("rfc6962/rfc6962_test.go"))
    golden = re.findall(
        r'size:\s*(\d+),\s*wantRoot:\s*"([^"]+)"',
        _between(show("compact/range_test.go"), "func TestGetRootHashGolden", "func TestDecomposeCases"),
    )
    return {
        "repository": "https://github.com/transparency-dev/merkle",
        "commit": commit,
        "licence": "Apache-2.0",
        "leaf_inputs_hex": {
            "source": "testonly/constants.go LeafInputs",
            "values": _hexes(_between(consts, "func LeafInputs", "func NodeHashes")),
        },
        "node_hashes_by_level": {"source": "testonly/constants.go NodeHashes", "values": levels},
        "roots_by_size": {
            "source": "testonly/constants.go RootHashes and EmptyRootHash (index = tree size)",
            "values": _hexes(_between(consts, "func EmptyRootHash", "func hd"))
            + _hexes(_between(consts, "func RootHashes", "func CompactTrees")),
        },
        "inclusion_proofs": {
            "source": "testonly/reference_test.go TestRefInclusionProof, cmd/proofgen/main.go inclusionProofs "
            "(1-based leafIdx there, 0-based here)",
            "values": _unique(inc, ("index", "size")),
        },
        "consistency_proofs": {
            "source": "testonly/reference_test.go TestRefConsistencyProof, cmd/proofgen/main.go consistencyProofs",
            "values": _unique(con, ("size1", "size2")),
        },
        "hasher": {
            "source": 'rfc6962/rfc6962_test.go TestRFC6962Hasher: empty root, HashLeaf(""), HashLeaf("L123456"), '
            'HashChildren("N123", "N456")',
            "values": [{"desc": d, "want": w} for d, w in hasher],
        },
        "compact_golden_roots": {
            "source": "compact/range_test.go TestGetRootHashGolden: leaf i = HashLeaf([i & 0xff, i >> 8 & 0xff]); "
            'size 0 (root "") left out',
            "values": [{"size": int(s), "root": base64.b64decode(r).hex()} for s, r in golden if int(s) > 0],
        },
    }


def main(git_dir: str, out_dir: str, commit: str = "HEAD") -> None:
    """Write probes.json and reference_tree.json for ``commit`` into ``out_dir``."""
    commit = _git(git_dir, "rev-parse", commit).strip()
    docs = {"probes.json": probes(git_dir, commit), "reference_tree.json": reference_tree(git_dir, commit)}
    for name, doc in docs.items():
        Path(out_dir, name).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:4])
