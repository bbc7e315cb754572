"""Full verification of an audit log: recompute every leaf hash, chain link and the Merkle root.

Verification reads the stored canonical entry bytes (exactly what was hashed) and never trusts the
database's constraints. It stops at the first bad sequence number and names what is wrong:

* ``edited``    entry bytes no longer match the record id (leaf hash), or a chain hash was rewritten;
* ``deleted``   a sequence number is missing, or later records were renumbered to close the gap;
* ``inserted``  a record appears that was not there (later records carry lower original numbers);
* ``reordered`` records were moved (a record's original position is elsewhere in the log);
* ``forked``    a record links to an older record than its predecessor (two records share a parent), or
  the log no longer matches a signed checkpoint (history rewritten with fresh hashes);
* ``truncated`` the log is shorter than a signed checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterable

from flytekitplugins.aios_audit.checkpoint import Checkpoint
from flytekitplugins.aios_audit.merkle import RootAccumulator
from flytekitplugins.aios_audit.records import GENESIS
from flytekitplugins.aios_audit.stores import AuditStore, RawRow


@dataclasses.dataclass
class VerifyResult:
    """Outcome of :func:`verify_store`."""

    ok: bool
    size: int
    root_hash: str
    head_hash: str = ""
    first_bad_seq: int | None = None
    problem: str = ""
    detail: str = ""
    seconds: float = 0.0
    checkpoint_size: int | None = None

    def summary(self) -> str:
        """One line for people and logs."""
        if self.ok:
            cp = f"; consistent with checkpoint of {self.checkpoint_size}" if self.checkpoint_size else ""
            return f"OK: {self.size} records, chain intact, root {self.root_hash[:16]}...{cp}"
        return f"FAILED at seq {self.first_bad_seq}: {self.problem}: {self.detail}"


class _Bad(Exception):
    def __init__(self, seq: int | None, problem: str, detail: str) -> None:
        super().__init__(detail)
        self.seq, self.problem, self.detail = seq, problem, detail


def _embedded_seq(entry: bytes) -> int:
    try:
        return int(entry[entry.rindex(b":") + 1 : -1])
    except ValueError:
        return -1


def verify_store(
    store: AuditStore, checkpoint: Checkpoint | None = None, trusted_key: str | None = None
) -> VerifyResult:
    """Recompute everything in ``store``; compare with ``checkpoint`` (signature checked first) if given."""
    t0 = time.perf_counter()
    if checkpoint is not None and not checkpoint.verify_signature(trusted_key):
        return VerifyResult(False, 0, "", problem="bad checkpoint", detail="checkpoint signature does not verify")
    acc = RootAccumulator()
    head = GENESIS
    try:
        head = _walk(store, store.scan_raw(), acc, checkpoint)
        if checkpoint is not None and acc.size < checkpoint.tree_size:
            raise _Bad(
                acc.size + 1,
                "truncated",
                f"log has {acc.size} records but the checkpoint of {checkpoint.timestamp} commits to "
                f"{checkpoint.tree_size}: records {acc.size + 1}..{checkpoint.tree_size} are gone",
            )
    except _Bad as bad:
        return VerifyResult(False, acc.size, acc.root().hex(), head, bad.seq, bad.problem, bad.detail)
    return VerifyResult(
        True,
        acc.size,
        acc.root().hex(),
        head,
        seconds=time.perf_counter() - t0,
        checkpoint_size=checkpoint.tree_size if checkpoint else None,
    )


def _walk(store: AuditStore, rows: Iterable[RawRow], acc: RootAccumulator, cp: Checkpoint | None) -> str:
    sha, fromhex = hashlib.sha256, bytes.fromhex
    cp_size = cp.tree_size if cp is not None else -1
    expected, prev = 1, GENESIS
    push = acc.push
    for seq, entry, leaf, prev_hash, chain in rows:
        if seq != expected:
            raise _Bad(expected, "deleted", f"records {expected}..{seq - 1} are missing (next stored seq is {seq})")
        lb = sha(b"\x00" + entry).digest()
        if not entry.endswith(b',"seq":%d}' % seq):
            _moved(store, seq, entry, lb.hex() == leaf, prev)
        if lb.hex() != leaf:
            raise _Bad(seq, "edited", f"entry bytes of seq {seq} do not match its record id (leaf hash)")
        if prev_hash != prev:
            _bad_link(store, seq, prev_hash)
        if sha(fromhex(prev_hash) + lb).hexdigest() != chain:
            raise _Bad(seq, "edited", f"chain hash of seq {seq} is not H(prev || leaf)")
        push(lb)
        if seq == cp_size and cp is not None and acc.root().hex() != cp.root_hash:
            raise _Bad(
                None,
                "forked",
                f"records 1..{seq} no longer match the checkpoint root of {cp.timestamp}: history was rewritten "
                "with fresh hashes (compare with earlier checkpoints to narrow it down)",
            )
        prev = chain
        expected += 1
    return prev


def _moved(store: AuditStore, seq: int, entry: bytes, intact: bool, prev: str) -> None:
    k = _embedded_seq(entry)
    if not intact or k < 0:
        raise _Bad(seq, "edited", f"entry of seq {seq} was altered (its embedded sequence number is {k})")
    if k < seq:
        raise _Bad(k, "inserted", f"{seq - k} record(s) inserted at seq {k}..{seq - 1}: seq {seq} was written as {k}")
    home = next((r[0] for r in store.scan_raw() if r[3] == prev and r[0] != seq), None)
    if home is not None:
        raise _Bad(seq, "reordered", f"seq {seq} holds the record written as {k}; the record of seq {seq} is at {home}")
    raise _Bad(seq, "deleted", f"records {seq}..{k - 1} were removed and later records renumbered")


def _bad_link(store: AuditStore, seq: int, prev_hash: str) -> None:
    parent = next((r[0] for r in store.scan_raw(1, seq - 1) if r[4] == prev_hash), None)
    if parent is not None:
        raise _Bad(seq, "forked", f"seq {seq} links to seq {parent} like seq {parent + 1} does (a fork of the chain)")
    raise _Bad(seq, "edited", f"prev hash of seq {seq} does not match the chain hash of seq {seq - 1}")
