"""Full verification of an audit log: recompute every leaf hash, chain link and the Merkle root.

Verification reads the stored canonical entry bytes (exactly what was hashed) and never trusts the
database's constraints. It stops at the first bad sequence number and names what is wrong:

* ``edited``    entry bytes no longer match the record id (leaf hash), a chain hash was rewritten, or a plain
  column (``kind``, ``subject``, ``execution``, ``task``, ``recorded_at``) differs from what the sealed entry says;
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
import logging
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable
from itertools import islice, repeat
from operator import and_
from typing import Any

from flytekitplugins.aios_audit.checkpoint import Checkpoint
from flytekitplugins.aios_audit.columns import batch_certain, column_mismatch, parsed_match
from flytekitplugins.aios_audit.diagnose import Bad, diagnose
from flytekitplugins.aios_audit.merkle import RootAccumulator, root
from flytekitplugins.aios_audit.records import ENTRY_HEAD, GENESIS, entry_framed, entry_seq_suffix, holds_lone_surrogate
from flytekitplugins.aios_audit.stores import AuditStore
from flytekitplugins.aios_audit.trust import TrustedKeys, trusted_keys


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
    workers: int = 1
    """Processes that verified the log (2 when the two-process walk ran to the end)."""
    frontier: list[str] = dataclasses.field(default_factory=list)
    """Compact range of the verified tree (hex), largest subtree first: what a checkpoint signs."""
    mode: str = "full"
    """``full`` (every record walked) or ``incremental`` (only the records after a trusted checkpoint)."""

    def summary(self) -> str:
        """One line for people and logs."""
        if self.ok:
            cp = f"; consistent with checkpoint of {self.checkpoint_size}" if self.checkpoint_size else ""
            if self.mode == "incremental":
                after = (self.checkpoint_size or 0) + 1
                walked = f"records {after}..{self.size}" if after <= self.size else "no records after it"
                cp += f" (incremental: {walked} checked from the checkpoint; --deep walks the whole log)"
            return f"OK: {self.size} records, chain intact, root {self.root_hash[:16]}...{cp}"
        return f"FAILED at seq {self.first_bad_seq}: {self.problem}: {self.detail}"

    @classmethod
    def walked(cls, acc: RootAccumulator, head: str, t0: float, **extra: Any) -> VerifyResult:
        """The result of a walk that ended at ``acc``/``head`` without a problem (``extra``: mode, workers...)."""
        frontier = [h.hex() for h in acc.frontier()]
        return cls(True, acc.size, acc.root().hex(), head, seconds=time.perf_counter() - t0, frontier=frontier, **extra)

    @classmethod
    def stopped(cls, acc: RootAccumulator, head: str, bad: Bad) -> VerifyResult:
        """The result of a walk that stopped at the first bad record."""
        return cls(False, acc.size, acc.root().hex(), head, bad.seq, bad.problem, bad.detail)


Progress = Callable[[int], None]
"""``progress(done)``: records checked so far (an absolute count; it may start again from 0 when a failed
two-process walk is redone in one process). Called every 1,024 records, never from a child process."""

BLOCK = 1 << 14
"""Leaves per block when a second process verifies the upper part of the log (a power of two)."""
WORKER_GRACE_S = 30.0
"""How long, at least, this process waits for the second one after finishing its own half (see ``_parallel``)."""
log = logging.getLogger(__name__)


def verify_workers(configured: int = 0) -> int:
    """Processes to verify with: ``configured`` (the ``verify_workers`` setting, ``AIOS_VERIFY_WORKERS``: 1 or 2),
    else (0) 2 when the machine has 2+ CPUs."""
    if configured >= 1:
        return min(2, configured)
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def verify_store(
    store: AuditStore,
    checkpoint: Checkpoint | None = None,
    trusted: TrustedKeys | str | None = None,
    *,
    workers: int | None = None,
    block: int = BLOCK,
    progress: Progress | None = None,
    rows: tuple[dict[str, int | None], list[Any]] | None = None,
    also: tuple[Callable[[int], Any], list[Any]] | None = None,
) -> VerifyResult:
    """Recompute everything in ``store``; compare with ``checkpoint`` (signature checked first) if given.

    The checkpoint must be signed by a ``trusted`` key (a PEM string trusts exactly that key; callers pass
    ``TrustedKeys.from_settings(settings)`` for the configured ones), never merely by the key it embeds.

    Logs of at least four blocks are verified by two processes (``workers``, default
    :func:`verify_workers`): this one walks the lower half while a forked child walks the upper half and
    returns the Merkle roots of its blocks. If the child finds anything wrong, the whole log is walked again
    in this process, so a failure is always reported exactly as the one-process walk reports it.

    ``progress`` (see :data:`Progress`) is told how many records are checked, both processes counted.

    With ``rows = (missing, found)`` (each projection group's ``missing_through``, :func:`.projections.missing_through`,
    and a list) the projection rows of every record are re-derived from the entry the walk has just checked, in
    whichever process walks it, and compared with the tables (:class:`.projections.RangeCheck`); the differences
    are added to ``found`` in seq order when the walk succeeds (rows beyond the log are the caller's to check).

    With ``also = (make, parts)``, ``make(first)`` gives a check of the records from ``first`` on, in whichever process
    walks them: its ``add(batch)`` is handed each batch the walk has checked (rows ``seq, entry, leaf || prev || chain,
    ...``) and its ``finish()`` returns a picklable part; ``parts`` receives the parts in seq order (one per walking
    process) when the walk succeeds.
    """
    t0 = time.perf_counter()
    if checkpoint is not None and (why := trusted_keys(trusted).check(checkpoint)):
        return VerifyResult(False, 0, "", problem="bad checkpoint", detail=why)
    acc = RootAccumulator()
    head = GENESIS
    try:
        n = workers if workers is not None else verify_workers()
        missing = rows[0] if rows is not None else None
        make = also[0] if also is not None else None
        found: list[Any] = []
        extra: list[Any] = []
        got = _parallel(store, acc, checkpoint, block, progress, missing, found, make, extra) if n >= 2 else None
        used = 1 if got is None else 2
        if got is None:
            acc = RootAccumulator()
            feed = _Feed(store, missing, make, 1)
            got = _walk(store, acc, checkpoint, 1, None, GENESIS, bytes(32), _counter(progress), feed=feed.or_none())[0]
            found, part = feed.finish()
            extra = [part]
        head = got
        if checkpoint is not None and acc.size < checkpoint.tree_size:
            raise Bad(
                acc.size + 1,
                "truncated",
                f"log has {acc.size} records but the checkpoint of {checkpoint.timestamp} commits to "
                f"{checkpoint.tree_size}: records {acc.size + 1}..{checkpoint.tree_size} are gone",
            )
    except Bad as bad:
        return VerifyResult.stopped(acc, head, bad)
    if rows is not None:
        rows[1].extend(found)
    if also is not None:
        also[1].extend(extra)
    cp_size = checkpoint.tree_size if checkpoint else None
    return VerifyResult.walked(acc, head, t0, checkpoint_size=cp_size, workers=used)


def _range_check(store: AuditStore, missing: dict[str, int | None] | None) -> Any:
    """A :class:`.projections.RangeCheck` of the records one walk hands over (None: no projection check)."""
    if missing is None:
        return None
    from flytekitplugins.aios_audit.projections import RangeCheck

    return RangeCheck(store, missing)


class _Feed:
    """The walk's ``feed`` for the records from ``first`` on: the projection check (``missing``: as
    :func:`_range_check` takes it) and the caller's check (``make(first)``, :func:`verify_store`'s ``also``)."""

    def __init__(self, store: AuditStore, missing: dict[str, int | None] | None, make: Any, first: int) -> None:
        self.check = _range_check(store, missing)
        self.extra = make(first) if make is not None else None

    def __call__(self, batch: list[tuple[Any, ...]]) -> None:
        if self.check is not None:
            self.check.add(batch)
        if self.extra is not None:
            self.extra.add(batch)

    def or_none(self) -> _Feed | None:
        return self if self.check is not None or self.extra is not None else None

    def finish(self) -> tuple[list[Any], Any]:
        """The projection problems found (in seq order) and the caller's part (None without one)."""
        found = self.check.finish() if self.check is not None else []
        return found, self.extra.finish() if self.extra is not None else None


def _walk(
    store: AuditStore,
    acc: RootAccumulator,
    cp: Checkpoint | None,
    start: int,
    end: int | None,
    prev: str,
    prev_b: bytes,
    tick: Progress | None = None,
    keep: tuple[bytes, list[tuple[int, bytes]]] | None = None,
    feed: Callable[[list[tuple[Any, ...]]], None] | None = None,
) -> tuple[str, bytes]:
    """Walk rows ``start..end``; the common case (row intact) costs two hashes and a few byte comparisons.

    Every row's plain columns are compared with what its sealed entry says (:mod:`.columns`), in this
    process and in the child alike. ``tick(n)`` is called after each batch of ``n`` rows. With ``keep`` =
    ``(needle, out)``, ``(seq, entry)`` of the rows whose entry contains ``needle`` are added to ``out`` (the
    claims check reads them there instead of reading the log again). ``feed(batch)`` is given each batch of rows
    (``seq, entry, ...``) once all of them are checked (the projection check derives its rows from them there).
    """
    sha = hashlib.sha256
    cp_size = cp.tree_size if cp is not None else -1
    expected = start
    push = acc.push
    rows = store.scan_sealed(start, end)
    while batch := list(islice(rows, 1024)):
        _seqs, entries, _hashes, tails, kinds, pairs = zip(*batch, strict=True)
        # a row sure of its columns ends with the tail the database builds from them (a quote-free time, this seq);
        # with the head it is framed as sealed: only the others are matched in full (entry_framed), so the walk pays
        # one C-level startswith a row for the frame
        certain = map(and_, batch_certain(entries, tails, kinds, pairs), map(bytes.startswith, entries, _HEADS))
        for (seq, entry, hashes, tail, kind, pair), sure in zip(batch, certain, strict=True):
            lb = sha(b"\x00" + entry).digest()
            cb = sha(prev_b + lb).digest()
            chain = cb.hex()
            if seq != expected or hashes != lb.hex() + prev + chain:
                diagnose(store, seq, expected, lb, prev)
            # the function's own first test, inline: the walk's hot loop skips the call (memchr: 0.15 us a 1.3 KB entry)
            if b"\\" in entry and holds_lone_surrogate(entry):
                why = "its entry holds text that is not Unicode (a lone surrogate escape), which the pack never seals"
                raise Bad(seq, "edited", f"seq {seq}: {why}")
            if not sure:
                if not parsed_match(entry, seq, tail, kind, pair):
                    if not entry.endswith(entry_seq_suffix(seq)):  # the tail also holds the seq: a moved record
                        diagnose(store, seq, expected, lb, prev)
                    if why := column_mismatch(entry, seq, tail, kind, pair):
                        raise Bad(seq, "edited", f"seq {seq}: {why}")
                if not entry_framed(entry, seq):  # (a parser reads one "event" key of two: the columns can agree)
                    raise Bad(seq, "edited", f"seq {seq}: {_UNFRAMED}")
            push(lb)
            if seq == cp_size and cp is not None:
                _check_checkpoint(acc, cp)
            prev, prev_b = chain, cb
            expected += 1
        if keep is not None:
            keep[1].extend((row[0], row[1]) for row in batch if keep[0] in row[1])
        if feed is not None:
            feed(batch)
        if tick is not None:
            tick(len(batch))
    return prev, prev_b


_HEADS = repeat(ENTRY_HEAD)
_UNFRAMED = (
    'its entry is not framed as the stores seal it ({"event":...,"recorded_at":"<UTC time>","seq":<seq>}): bytes '
    "were spliced into it (a second key a reader takes for the record's own), so it was not sealed by this pack"
)


def _counter(progress: Progress | None, base: Callable[[], int] = lambda: 0) -> Progress | None:
    """A ``tick(n)`` that adds ``n`` to a running count and reports ``count + base()`` to ``progress``."""
    if progress is None:
        return None
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        progress(done + base())

    return tick


def _check_checkpoint(acc: RootAccumulator, cp: Checkpoint) -> None:
    if acc.root().hex() != cp.root_hash:
        raise Bad(
            None,
            "forked",
            f"records 1..{acc.size} no longer match the checkpoint root of {cp.timestamp}: history was rewritten "
            "with fresh hashes (compare with earlier checkpoints to narrow it down)",
        )


class _BlockAccumulator(RootAccumulator):
    """Collects a child's leaves as block roots (or raw leaves for the block a checkpoint ends in)."""

    def __init__(self, first: int, block: int, cp_size: int) -> None:
        super().__init__()
        self.first, self.block, self.cp_size = first, block, cp_size
        self.leaves: list[bytes] = []
        self.out: list[tuple[str, Any]] = []

    def push(self, leaf: bytes) -> None:
        self.leaves.append(leaf)
        if len(self.leaves) == self.block:
            self._close()

    def _close(self) -> None:
        lo = self.first + len(self.out) * self.block  # seq of the block's first leaf
        if lo <= self.cp_size < lo + len(self.leaves):
            self.out.append(("leaves", self.leaves))
        elif len(self.leaves) == self.block:
            self.out.append(("root", root(self.leaves)))
        else:
            self.out.append(("leaves", self.leaves))
        self.leaves = []

    def finish(self) -> list[tuple[str, Any]]:
        if self.leaves:
            self._close()
        return self.out


def _child(
    store: AuditStore,
    first: int,
    prev: str,
    block: int,
    cp_size: int,
    conn: Any,
    done: Any = None,
    missing: dict[str, int | None] | None = None,
    make: Any = None,
) -> None:
    """Forked worker: verify rows ``first..`` (the chain continuing from ``prev``), send block roots or 'bad'.

    ``done`` (a shared integer, or None) counts the rows checked, for the parent's progress report; with
    ``missing`` the rows' projection rows are checked too (:func:`_range_check`) and the differences sent along,
    and with ``make`` the caller's check of them (:func:`verify_store`'s ``also``) and its part.
    """

    def tick(n: int) -> None:
        done.value += n

    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handlers: a terminated worker just ends
    try:
        acc = _BlockAccumulator(first, block, cp_size)
        feed = _Feed(store, missing, make, first)
        counted = tick if done is not None else None
        head = _walk(store, acc, None, first, None, prev, bytes.fromhex(prev), counted, feed=feed.or_none())[0]
        conn.send(("ok", acc.finish(), head, *feed.finish()))
    except Bad:
        conn.send(("bad", None, "", [], None))
    except BaseException as e:  # the parent walks the whole log itself
        conn.send(("error", repr(e), "", [], None))
    finally:
        conn.close()


def _parallel(
    store: AuditStore,
    acc: RootAccumulator,
    cp: Checkpoint | None,
    block: int,
    progress: Progress | None = None,
    missing: dict[str, int | None] | None = None,
    found: list[Any] | None = None,
    make: Any = None,
    extra: list[Any] | None = None,
) -> str | None:
    """Two-process walk; None when it does not apply or the child found a problem (then walk serially). With
    ``missing``, each process checks the projection rows of its half and ``found`` receives the differences; with
    ``make`` (:func:`verify_store`'s ``also``), each runs that check of its half and ``extra`` receives both parts."""
    if block < 1 or block & (block - 1) or "fork" not in mp.get_all_start_methods():
        return None
    size = store.size()
    if size < 4 * block:
        return None
    split = size // 2 // block * block  # this process: 1..split; the child: split+1.. (block-aligned)
    boundary = next(store.scan_raw(split, split), None)
    if boundary is None or not isinstance(boundary[4], str) or len(boundary[4]) != 64:
        return None
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    cp_size = cp.tree_size if cp is not None else -1
    child_done = ctx.Value("q", 0, lock=False) if progress is not None else None  # rows the child has checked
    args = (store, split + 1, boundary[4], block, cp_size, send, child_done, missing, make)
    proc = ctx.Process(target=_child, args=args, daemon=True)
    try:
        proc.start()
    except Exception:  # e.g. inside a daemonic worker, which may not have children
        return None
    finally:
        send.close()
    status = "error"
    try:

        def base() -> int:
            return int(child_done.value) if child_done is not None else 0

        started = time.monotonic()
        feed = _Feed(store, missing, make, 1)
        prev, _ = _walk(store, acc, cp, 1, split, GENESIS, bytes(32), _counter(progress, base), feed=feed.or_none())
        mine, my_part = feed.finish()  # (the walk raises what it finds)
        # the child's half is as long as this one: far past that, it is stuck (a lock held at fork time), so it is
        # killed and the whole log walked here; the result is the same either way, only slower
        deadline = time.monotonic() + max(WORKER_GRACE_S, 10 * (time.monotonic() - started))
        while not recv.poll(0.25):  # the child's part, while this one waits for it
            if time.monotonic() > deadline:
                log.warning("verify: the second process gave no answer in time; walking the whole log here")
                raise EOFError
            if progress is not None:
                progress(split + base())
        status, blocks, head, theirs, their_part = recv.recv()
        if progress is not None:
            progress(split + base())
    except EOFError:
        status = "error"
    finally:
        recv.close()
        if status == "error" and proc.is_alive():
            # SIGKILL, not SIGTERM: the forked child inherits this process's signal handlers (a test runner's, an
            # emitter's flush-on-exit), which may not exit, and its half of the walk is moot once this one failed
            proc.kill()
        proc.join()
    if status != "ok" or prev != boundary[4]:
        return None  # the serial walk names the first bad record exactly
    if found is not None:
        found += mine + theirs  # this half's rows, then the child's: in seq order
    if extra is not None:
        extra += [my_part, their_part]
    for kind, value in blocks:
        if kind == "root":
            acc.push_subtree(value, block)
            continue
        for leaf in value:
            acc.push(leaf)
            if acc.size == cp_size and cp is not None:
                _check_checkpoint(acc, cp)
    return str(head)
