"""Incremental verification: check only the records after a trusted checkpoint.

A C2SP checkpoint signs the chain head (chain hash of record ``tree_size``) and the Merkle frontier (the
roots of the perfect subtrees covering ``[0, tree_size)``). Starting from those, the verifier walks records
``tree_size + 1 .. N`` exactly as the full walk does (leaf hashes, chain links, plain columns), then folds the
new leaves into the frontier to get the root of all N records. Cost: proportional to the records added since
the checkpoint. What it does NOT re-check is the stored prefix itself (``1 .. tree_size``): the signed
checkpoint vouches for it, any rewrite of it changes the stored chain head (caught here), and an edit that
leaves the hash columns alone is caught only by the full walk (``aios audit verify`` without a checkpoint, or
``--deep``), which scheduled deep verification runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from flytekitplugins.aios_audit.checkpoint import Checkpoint
from flytekitplugins.aios_audit.claims import ClaimProblem
from flytekitplugins.aios_audit.diagnose import Bad
from flytekitplugins.aios_audit.merkle import RootAccumulator, leaf_hash
from flytekitplugins.aios_audit.stores import CLAIMS_ATTR, AuditStore
from flytekitplugins.aios_audit.trust import TrustedKeys, trusted_keys
from flytekitplugins.aios_audit.verify import Progress, VerifyResult, _counter, _walk, verify_store


def verify_from(
    store: AuditStore,
    checkpoint: Checkpoint,
    trusted: TrustedKeys | str | None = None,
    *,
    progress: Progress | None = None,
    workers: int | None = None,
    claimed: list[tuple[int, bytes]] | None = None,
) -> VerifyResult:
    """Verify the records after ``checkpoint`` (signed by a ``trusted`` key); see the module docstring.

    Old-format checkpoints carry no chain head or frontier: those fall back to the full walk.
    ``progress(done)`` is told how many records after the checkpoint are checked (the full walk: all of them).
    ``claimed`` (a list) receives ``(seq, entry)`` of the records walked that seal claims, for
    :func:`claims_since`.
    """
    t0 = time.perf_counter()
    if why := trusted_keys(trusted).check(checkpoint):
        return VerifyResult(False, 0, "", problem="bad checkpoint", detail=why)
    if not checkpoint.is_note or (checkpoint.tree_size and not checkpoint.chain_head):
        return verify_store(store, checkpoint, trusted, progress=progress, workers=workers)
    size = checkpoint.tree_size
    try:
        acc = RootAccumulator.from_frontier(size, [bytes.fromhex(h) for h in checkpoint.frontier])
    except ValueError as e:
        return VerifyResult(False, 0, "", problem="bad checkpoint", detail=f"its frontier is malformed: {e}")
    if acc.root().hex() != checkpoint.root_hash:
        detail = "its frontier does not hash to its root hash: it was signed by faulty software, verify with --deep"
        return VerifyResult(False, 0, "", problem="bad checkpoint", detail=detail)
    head = checkpoint.chain_head if size else _genesis()
    try:
        _anchor(store, checkpoint)
        keep = (CLAIMS_NEEDLE, claimed) if claimed is not None else None
        head = _walk(store, acc, None, size + 1, None, head, bytes.fromhex(head), _counter(progress), keep)[0]
    except Bad as bad:
        return VerifyResult.stopped(acc, head, bad)
    return VerifyResult.walked(acc, head, t0, checkpoint_size=size, mode="incremental")


def _genesis() -> str:
    from flytekitplugins.aios_audit.records import GENESIS

    return GENESIS


def _anchor(store: AuditStore, cp: Checkpoint) -> None:
    """The log still has record ``tree_size`` with the signed chain head (and, if it is a frontier leaf, leaf)."""
    n = store.size()
    if n < cp.tree_size:
        raise Bad(
            n + 1,
            "truncated",
            f"log has {n} records but the checkpoint of {cp.timestamp} commits to {cp.tree_size}: records "
            f"{n + 1}..{cp.tree_size} are gone",
        )
    if cp.tree_size == 0:
        return
    row = next(store.scan_raw(cp.tree_size, cp.tree_size), None)
    odd_leaf_ok = row is not None and (cp.tree_size % 2 == 0 or leaf_hash(row[1]).hex() == cp.frontier[-1])
    if row is None or row[4] != cp.chain_head or not odd_leaf_ok:
        raise Bad(
            None,
            "forked",
            f"record {cp.tree_size} no longer carries the chain head signed by the checkpoint of {cp.timestamp}: "
            "history was rewritten (run `aios audit verify --deep --checkpoint` to name the first changed record)",
        )


CLAIMS_NEEDLE = b'"' + CLAIMS_ATTR.encode() + b'":'
"""In the sealed bytes of every record that claims (and of some that do not: the check parses them)."""


def claims_since(
    store: AuditStore, size: int, claimed: list[tuple[int, bytes]] | None = None, until: int | None = None
) -> list[ClaimProblem]:
    """:func:`.claims.verify_claims` for the records after ``size``: their sealed claims against the table.

    A claim sealed after the checkpoint must have exactly its row; a key already held by a row of an earlier
    record is a duplicate; a row of a record after the checkpoint that no sealed claim names is extra. Rows of
    earlier records are the full walk's to re-derive. Reads the rows of the records after the checkpoint (by seq)
    and those of the keys they seal (by key): never the whole table (a claim or two per approval used).

    ``claimed``: the records after ``size`` that may claim, as the verifier's walk kept them (else read here);
    ``until``: the last record that walk checked (rows of records appended since are theirs to check next time).
    """
    table = {str(k): (str(h), int(s)) for k, h, s in store.scan_claims(size) if until is None or int(s) <= until}
    claims: list[tuple[int, str, str]] = []
    for seq, entry in _containing(store, size, CLAIMS_NEEDLE) if claimed is None else claimed:
        if until is None or seq <= until:  # both sources hold only entries with the needle
            attrs = json.loads(entry)["event"].get("attributes") or {}
            claims += [(int(seq), str(c["key"]), str(c["holder"])) for c in attrs.get(CLAIMS_ATTR) or ()]
    table |= store.claim_holders({key for _seq, key, _holder in claims if key not in table})
    sealed: dict[str, tuple[str, int]] = {}
    problems: list[ClaimProblem] = []
    for seq, key, holder in claims:
        row = table.get(key)
        if key in sealed or (row is not None and row[1] <= size):
            first = sealed[key][1] if key in sealed else row[1] if row else 0
            problems.append(ClaimProblem("claim_duplicated", key, seq, f"already claimed by seq {first}"))
            continue
        sealed[key] = (holder, seq)
        if row is None:
            problems.append(ClaimProblem("claim_missing", key, seq, "sealed in the log but absent from audit_claims"))
        elif row != (holder, seq):
            detail = f"audit_claims says holder {row[0]!r} at seq {row[1]}, the log says {holder!r} at seq {seq}"
            problems.append(ClaimProblem("claim_changed", key, seq, detail))
    for key, (holder, seq) in table.items():
        if seq > size and key not in sealed:
            detail = f"held by {holder!r} in audit_claims but claimed by no sealed record"
            problems.append(ClaimProblem("claim_extra", key, seq, detail))
    return sorted(problems, key=lambda p: (p.seq, p.key))


def _containing(store: AuditStore, after: int, needle: bytes) -> Iterator[tuple[int, bytes]]:
    """``(seq, entry)`` of the records after ``after`` whose sealed bytes contain ``needle`` (a superset: the caller
    parses them). Only the entries are read where the store answers SQL (the search runs here: SQLite's ``instr``
    over the bytes took longer than reading them)."""
    if not store.dialect:
        yield from ((seq, entry) for seq, entry, *_ in store.scan_raw(after + 1) if needle in entry)
        return
    rows = store.iter_sql("SELECT seq, entry FROM audit_log WHERE seq > ? ORDER BY seq", (after,))
    yield from ((int(seq), bytes(entry)) for seq, entry in rows if needle in entry)
