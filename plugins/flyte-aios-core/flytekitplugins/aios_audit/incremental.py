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

import dataclasses
import functools
import json
import multiprocessing as mp
import time
from collections.abc import Iterator
from typing import Any

from flytekitplugins.aios_audit.checkpoint import Checkpoint
from flytekitplugins.aios_audit.claims import ClaimProblem, malformed_claims
from flytekitplugins.aios_audit.diagnose import Bad
from flytekitplugins.aios_audit.merkle import RootAccumulator, leaf_hash
from flytekitplugins.aios_audit.stores import CLAIMS_ATTR, AuditStore, claim_pairs
from flytekitplugins.aios_audit.trust import TrustedKeys, trusted_keys
from flytekitplugins.aios_audit.verify import (
    BLOCK,
    Progress,
    VerifyResult,
    _BlockAccumulator,
    _counter,
    _range_check,
    _walk,
    verify_store,
    verify_workers,
)


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
    :func:`claims_since`. The records walked are those in the log when the walk begins; with two ``workers``
    (default :func:`.verify.verify_workers`) and at least :data:`SPLIT_MIN` of them, a forked child walks the upper
    half as :func:`verify_since` has it done (``aios audit checkpoint`` continuing from an older checkpoint, the
    review report from one).
    """
    t0 = time.perf_counter()
    if why := trusted_keys(trusted).check(checkpoint):
        return VerifyResult(False, 0, "", problem="bad checkpoint", detail=why)
    if not incremental(checkpoint):
        return verify_store(store, checkpoint, trusted, progress=progress, workers=workers)
    return _walk_after(store, checkpoint, t0, progress, workers, None, claimed)[0]


def incremental(checkpoint: Checkpoint) -> bool:
    """True when ``checkpoint`` carries what checking only the records after it needs (a chain head and a frontier:
    C2SP notes); older checkpoints are checked by the full walk."""
    return checkpoint.is_note and not (checkpoint.tree_size and not checkpoint.chain_head)


def _resume(checkpoint: Checkpoint) -> RootAccumulator | VerifyResult:
    """The Merkle accumulator of the checkpoint's tree (from its signed frontier), or why it cannot be had."""
    try:
        acc = RootAccumulator.from_frontier(checkpoint.tree_size, [bytes.fromhex(h) for h in checkpoint.frontier])
    except ValueError as e:
        return VerifyResult(False, 0, "", problem="bad checkpoint", detail=f"its frontier is malformed: {e}")
    if acc.root().hex() != checkpoint.root_hash:
        detail = "its frontier does not hash to its root hash: it was signed by faulty software, verify with --deep"
        return VerifyResult(False, 0, "", problem="bad checkpoint", detail=detail)
    return acc


SPLIT_MIN = 2048
"""Records after the checkpoint from which :func:`verify_since` hands the upper half of them to a second process
(below that, starting it costs about what it saves)."""


@dataclasses.dataclass
class SinceResult:
    """What :func:`verify_since` found: the walk's result, and (when it succeeded) the claims and projection rows of
    the records it checked against the sealed log."""

    result: VerifyResult
    claims: list[ClaimProblem]
    projections: list[Any]
    """:class:`~.projections.ProjectionProblem` of the records walked, in seq order, then rows beyond the log."""
    note: str = ""
    """Why the projection check was partial ("" when it was not)."""


def verify_since(
    store: AuditStore,
    checkpoint: Checkpoint,
    trusted: TrustedKeys | str | None = None,
    *,
    progress: Progress | None = None,
    workers: int | None = None,
) -> SinceResult:
    """Everything ``aios audit verify --checkpoint`` checks of the records after ``checkpoint``, each read once.

    Each record after the checkpoint (up to the log's size when the check starts) is walked as
    :func:`verify_from` walks it, and the projection rows it derives are re-derived from the entry the walk has
    just checked (no second read of the log) and compared with the tables; the claims it seals are compared with
    the claims table. With two ``workers`` (default :func:`.verify.verify_workers`) and at least
    :data:`SPLIT_MIN` records, a forked child does all of that for the upper half of them while this process does
    the lower half (the chain continuing from the stored chain hash where they meet, which this process's half
    checks); if the child finds anything wrong, or gives no answer, its half is done again here, so a failure is
    reported exactly as one process reports it. Claims and projections are checked only when the walk succeeds.

    The checkpoint must be incremental (:func:`incremental`; the caller runs the full walk for older ones).
    """
    from flytekitplugins.aios_audit import projections as pj

    t0 = time.perf_counter()
    if why := trusted_keys(trusted).check(checkpoint):
        return SinceResult(VerifyResult(False, 0, "", problem="bad checkpoint", detail=why), [], [])
    if not incremental(checkpoint):
        raise ValueError("verify_since needs a checkpoint with a chain head and a frontier (see incremental())")
    tables = bool(getattr(store, "dialect", ""))
    missing = {g.state: pj.missing_through(store, g) for g in pj.GROUPS} if tables else None  # None: no projections
    claimed: list[tuple[int, bytes]] = []
    result, end, found = _walk_after(store, checkpoint, t0, progress, workers, missing, claimed)
    if not result.ok:
        return SinceResult(result, [], [])
    claims = claims_since(store, checkpoint.tree_size, claimed, end)
    if missing is None:
        return SinceResult(result, claims, [], "this store keeps no projection tables")
    found += pj.beyond(store, missing)
    return SinceResult(result, claims, found, pj.group_notes(missing))


def _walk_after(
    store: AuditStore,
    checkpoint: Checkpoint,
    t0: float,
    progress: Progress | None,
    workers: int | None,
    missing: dict[str, int | None] | None,
    claimed: list[tuple[int, bytes]] | None,
) -> tuple[VerifyResult, int, list[Any]]:
    """The walk of the records after an incremental ``checkpoint`` (those in the log when it begins), in two
    processes where :func:`_split` says so: ``(result, the log's size it walked to, projection problems)``.

    ``missing`` as :func:`.verify._range_check` takes it (None: no projection rows are re-derived); ``claimed``
    receives the entries that may seal claims (None: none are kept)."""
    acc = _resume(checkpoint)
    if isinstance(acc, VerifyResult):
        return acc, 0, []
    size = checkpoint.tree_size
    head = checkpoint.chain_head if size else _genesis()
    aside: Any = None
    used = 1
    claims = claimed is not None
    try:
        end = _anchor(store, checkpoint)
        mid, block = _split(size, end, workers)
        boundary = next(store.scan_raw(mid, mid), None) if mid < end else None
        if boundary is None or not isinstance(boundary[4], str) or len(boundary[4]) != 64:
            mid = end  # one process
        done: Any = None
        if mid < end:
            from flytekitplugins.aios_audit.aside import Aside

            done = mp.get_context("fork").Value("q", 0, lock=False) if progress is not None else None
            aside = Aside(_part, store, mid + 1, end, boundary[4], block, missing, claims, done)  # type: ignore[index]
        tick = _counter(progress, lambda: int(done.value) if done is not None else 0)
        check = _range_check(store, missing)
        feed = _Through(size, check)
        keep = (CLAIMS_NEEDLE, claimed) if claimed is not None else None
        head = _walk(store, acc, None, size + 1, mid, head, bytes.fromhex(head), tick, keep, feed)[0]
        feed.reached(mid)
        found = check.finish() if check is not None else []
        if aside is not None:
            if head != boundary[4]:  # type: ignore[index]  # the stored chain hash changed since it was read
                aside.cancel()
                aside = None
                upper = _part(store, mid + 1, end, head, block, missing, claims)
            else:
                # the child's, or (it failed) the same part done here: raises what it finds; the bar keeps counting
                upper = aside.result(waiting=functools.partial(tick, 0) if tick is not None else None)
                used = 1 if aside.here else 2
            blocks, head, more, problems = upper
            _fold(acc, blocks, block)
            if progress is not None:  # the second part's last records are counted once it is in
                progress(end - size)
            if claimed is not None:
                claimed += more
            found += problems
    except Bad as bad:
        return VerifyResult.stopped(acc, head, bad), 0, []
    finally:
        if aside is not None:
            aside.cancel()
    return VerifyResult.walked(acc, head, t0, checkpoint_size=size, mode="incremental", workers=used), end, found


def _split(size: int, end: int, workers: int | None) -> tuple[int, int]:
    """Where the second process's part begins (after the returned record; ``end``: one process) and the blocks it
    returns the Merkle roots of (aligned blocks when its part is large; else its leaves, one by one)."""
    n = end - size
    if (
        (workers if workers is not None else verify_workers()) < 2
        or n < max(SPLIT_MIN, 2)
        or "fork" not in mp.get_all_start_methods()
    ):
        return end, 0
    if n >= 4 * BLOCK:
        return (size + n // 2) // BLOCK * BLOCK, BLOCK
    return size + n // 2, 1 << 62


class _Through:
    """The walk's ``feed``: hands each checked batch to the projection check and keeps the last record seen."""

    def __init__(self, last: int, check: Any) -> None:
        self.last, self.check = last, check

    def __call__(self, batch: list[tuple[Any, ...]]) -> None:
        if self.check is not None:
            self.check.add(batch)
        self.last = int(batch[-1][0])

    def reached(self, end: int) -> None:
        """The walk got to record ``end`` (the log's size when the check began): else records vanished meanwhile."""
        if self.last < end:
            detail = f"records {self.last + 1}..{end} were in the log when the check began and are gone"
            raise Bad(self.last + 1, "truncated", detail)


def _part(
    store: AuditStore,
    first: int,
    end: int,
    prev: str,
    block: int,
    missing: dict[str, int | None] | None,
    claims: bool = True,
    done: Any = None,
) -> tuple[list[tuple[str, Any]], str, list[tuple[int, bytes]], list[Any]]:
    """Records ``first..end`` (the chain continuing from ``prev``) walked, their projection rows (``missing``: as
    :func:`.verify._range_check` takes it) and, with ``claims``, the entries that may seal claims kept:
    ``(Merkle blocks, chain head, claiming entries, projection problems)``. Raises :class:`Bad`."""

    def tick(n: int) -> None:
        done.value += n

    acc = _BlockAccumulator(first, block or 1 << 62, -1)
    claimed: list[tuple[int, bytes]] = []
    check = _range_check(store, missing)
    feed = _Through(first - 1, check)
    keep, counted = (CLAIMS_NEEDLE, claimed) if claims else None, tick if done is not None else None
    head = _walk(store, acc, None, first, end, prev, bytes.fromhex(prev), counted, keep, feed)[0]
    feed.reached(end)
    return acc.finish(), head, claimed, check.finish() if check is not None else []


def _fold(acc: RootAccumulator, blocks: list[tuple[str, Any]], block: int) -> None:
    """The second process's leaves (or the roots of its aligned blocks) after this process's."""
    for kind, value in blocks:
        if kind == "root":
            acc.push_subtree(value, block)
        else:
            for leaf in value:
                acc.push(leaf)


def _genesis() -> str:
    from flytekitplugins.aios_audit.records import GENESIS

    return GENESIS


def _anchor(store: AuditStore, cp: Checkpoint) -> int:
    """The log still has record ``tree_size`` with the signed chain head (and, if it is a frontier leaf, leaf).
    Returns the log's size."""
    n = store.size()
    if n < cp.tree_size:
        raise Bad(
            n + 1,
            "truncated",
            f"log has {n} records but the checkpoint of {cp.timestamp} commits to {cp.tree_size}: records "
            f"{n + 1}..{cp.tree_size} are gone",
        )
    if cp.tree_size == 0:
        return n
    row = next(store.scan_raw(cp.tree_size, cp.tree_size), None)
    odd_leaf_ok = row is not None and (cp.tree_size % 2 == 0 or leaf_hash(row[1]).hex() == cp.frontier[-1])
    if row is None or row[4] != cp.chain_head or not odd_leaf_ok:
        raise Bad(
            None,
            "forked",
            f"record {cp.tree_size} no longer carries the chain head signed by the checkpoint of {cp.timestamp}: "
            "history was rewritten (run `aios audit verify --deep --checkpoint` to name the first changed record)",
        )
    return n


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
    malformed: list[int] = []
    for seq, entry in _containing(store, size, CLAIMS_NEEDLE) if claimed is None else claimed:
        if until is None or seq <= until:  # both sources hold only entries with the needle
            pairs = claim_pairs(json.loads(entry)["event"].get("attributes"))
            if pairs is None:
                malformed.append(int(seq))
            claims += [(int(seq), key, holder) for key, holder in pairs or ()]
    table |= store.claim_holders({key for _seq, key, _holder in claims if key not in table})
    sealed: dict[str, tuple[str, int]] = {}
    problems = malformed_claims(malformed)
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
