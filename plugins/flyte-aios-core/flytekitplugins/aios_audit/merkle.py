"""RFC 9162 (Certificate Transparency v2) Merkle tree hashes, inclusion and consistency proofs.

Hashes are raw 32-byte SHA-256 values: leaf = H(0x00 || entry), node = H(0x01 || left || right), the empty
tree hashes to H(""). Proof generation follows RFC 9162 section 2.1.3.1 / 2.1.4.1; verification is the
exact algorithm of sections 2.1.3.2 / 2.1.4.2, so proofs interoperate with other CT-style verifiers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

_sha = hashlib.sha256


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node hash: SHA-256(0x01 || left || right)."""
    return _sha(b"\x01" + left + right).digest()


def leaf_hash(entry: bytes) -> bytes:
    """Leaf hash: SHA-256(0x00 || entry)."""
    return _sha(b"\x00" + entry).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class RootAccumulator:
    """Streaming Merkle root: push leaf hashes in order, read the root of everything pushed so far.

    Keeps one perfect subtree per set bit of the size (O(log n) memory, one node hash per leaf amortized).
    """

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []

    def push(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        stack = self._stack
        stack.append(leaf)
        self.size += 1
        n = self.size
        while n & 1 == 0:  # node_hash inlined: this runs once per leaf during verification
            right = stack.pop()
            stack[-1] = _sha(b"\x01" + stack[-1] + right).digest()
            n >>= 1

    def push_subtree(self, node: bytes, size: int) -> None:
        """Append the root of a perfect subtree of ``size`` leaves (a power of two) at a multiple of ``size``.

        Lets a verifier hash blocks of the log in other processes and merge their roots here.
        """
        if size < 1 or size & (size - 1) or self.size % size:
            msg = f"push_subtree: {size} leaves at position {self.size} is not an aligned power-of-two block"
            raise ValueError(msg)
        stack = self._stack
        stack.append(node)
        self.size += size
        n = self.size // size
        while n & 1 == 0:
            right = stack.pop()
            stack[-1] = _sha(b"\x01" + stack[-1] + right).digest()
            n >>= 1

    def frontier(self) -> list[bytes]:
        """The compact range [0, size): roots of the perfect subtrees covering the leaves, largest first."""
        return list(self._stack)

    @classmethod
    def from_frontier(cls, size: int, frontier: Sequence[bytes]) -> RootAccumulator:
        """Resume from a compact range (see :meth:`frontier`); it must hold one hash per set bit of ``size``."""
        if size < 0 or len(frontier) != size.bit_count() or not all(_is_hash(h) for h in frontier):
            msg = f"a frontier of a tree of {size} leaves holds {size.bit_count()} hashes of 32 bytes"
            raise ValueError(msg)
        acc = cls()
        acc.size, acc._stack = size, list(frontier)
        return acc

    def root(self) -> bytes:
        """Root hash of the leaves pushed so far (RFC 9162 MTH)."""
        if not self._stack:
            return _sha(b"").digest()
        h = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            h = node_hash(left, h)
        return h


def root(leaves: Iterable[bytes]) -> bytes:
    """RFC 9162 Merkle Tree Hash of a sequence of leaf hashes."""
    acc = RootAccumulator()
    for leaf in leaves:
        acc.push(leaf)
    return acc.root()


class MerkleTree:
    """All levels of the tree over ``leaves`` (leaf hashes), for fast proofs over a fixed-size log.

    Args:
        leaves: Leaf hashes in log order.
    """

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.size = len(leaves)
        self.levels: list[list[bytes]] = [list(leaves)]
        level = self.levels[0]
        while len(level) > 1:
            nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            self.levels.append(nxt)
            level = nxt

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH of leaves ``[lo, hi)``."""
        n = hi - lo
        if n == 0:
            return _sha(b"").digest()
        height = n.bit_length() - 1
        if n == 1 << height and lo % n == 0:
            return self.levels[height][lo >> height]
        k = _split(n)
        return node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        """Root of the first ``size`` leaves (default all)."""
        return self.subtree(0, self.size if size is None else size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 PATH(index, D[0:size])."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            msg = f"no inclusion proof for leaf {index} in a tree of {size} (log has {self.size} leaves)"
            raise ValueError(msg)
        return self._path(index, 0, size)

    def _path(self, m: int, lo: int, hi: int) -> list[bytes]:
        if hi - lo <= 1:
            return []
        k = _split(hi - lo)
        if m < k:
            return [*self._path(m, lo, lo + k), self.subtree(lo + k, hi)]
        return [*self._path(m - k, lo + k, hi), self.subtree(lo, lo + k)]

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        """RFC 9162 PROOF(old, D[0:new])."""
        new = self.size if new is None else new
        if not 0 < old <= new <= self.size:
            msg = f"no consistency proof from size {old} to {new} (log has {self.size} leaves)"
            raise ValueError(msg)
        return self._subproof(old, 0, new, True)

    def _subproof(self, m: int, lo: int, hi: int, start: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if start else [self.subtree(lo, hi)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, lo, lo + k, start), self.subtree(lo + k, hi)]
        return [*self._subproof(m - k, lo + k, hi, False), self.subtree(lo, lo + k)]


HASH_SIZE = 32  # bytes of every hash a verifier accepts (SHA-256)
MAX_TREE_SIZE = 1 << 64  # exclusive bound on tree sizes and leaf indices: RFC 9162 carries them as uint64


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_TREE_SIZE


def _hashes(proof: object) -> list[bytes] | None:
    """The proof as a list when it is a sequence of HASH_SIZE-byte values, else None."""
    if not isinstance(proof, Sequence) or isinstance(proof, str | bytes | bytearray):
        return None
    path = list(proof)
    return path if all(isinstance(p, bytes) and len(p) == HASH_SIZE for p in path) else None


def inclusion_proof_size(index: int, size: int) -> int:
    """Number of hashes in PATH(index, D[0:size]) for ``0 <= index < size`` (RFC 9162 section 2.1.3.1).

    The paths of leaves ``index`` and ``size - 1`` share every level above ``inner``; below it the proof holds
    one sibling per level, above it one left sibling per set bit of the remaining index.
    """
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_size(old: int, new: int) -> int:
    """Number of hashes in PROOF(old, D[0:new]) for ``0 < old < new`` (RFC 9162 section 2.1.4.1).

    The proof is the inclusion path of leaf ``old - 1`` in the tree of ``new`` leaves, started at the root of
    the largest perfect subtree that ends at ``old`` (whose hash comes first unless that subtree is the whole
    old tree, which the verifier already holds).
    """
    shift = (old & -old).bit_length() - 1
    seed = 0 if old == 1 << shift else 1
    return seed + inclusion_proof_size(old - 1, new) - shift


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: does ``proof`` put ``leaf`` at ``index`` in the tree (``size``, ``root_hash``)?

    Malformed input is a plain False, never an exception: hashes that are not exactly HASH_SIZE bytes,
    indices or sizes that are not integers in ``[0, 2**64)``, ``index >= size``, and a proof whose length is
    not exactly the RFC's for (``index``, ``size``).
    """
    path = _hashes(proof)
    if path is None or not (_is_hash(leaf) and _is_hash(root_hash) and _is_count(index) and _is_count(size)):
        return False
    if index >= size or len(path) != inclusion_proof_size(index, size):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2: does tree (``new``, ``new_root``) extend tree (``old``, ``old_root``) append-only?

    Malformed input is a plain False, never an exception: hashes that are not exactly HASH_SIZE bytes, sizes
    that are not integers in ``[1, 2**64)`` with ``old <= new``, a non-empty proof for equal sizes, and a proof
    whose length is not exactly the RFC's for (``old``, ``new``).
    """
    path = _hashes(proof)
    if path is None or not (_is_hash(old_root) and _is_hash(new_root) and _is_count(old) and _is_count(new)):
        return False
    if old < 1 or new < old:
        return False
    if old == new:
        return not path and old_root == new_root
    if len(path) != consistency_proof_size(old, new):
        return False
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    return _consistency_roots(old, new, path) == (old_root, new_root)


def _consistency_roots(old: int, new: int, path: list[bytes]) -> tuple[bytes, bytes] | None:
    """RFC 9162 section 2.1.4.2 steps 4-7: the (old, new) roots ``path`` leads to, None if it does not fit."""
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return (fr, sr) if sn == 0 else None
