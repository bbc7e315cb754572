"""Naming what is wrong with a log row the verifier's fast path rejected (see :mod:`.verify`)."""

from __future__ import annotations

from flytekitplugins.aios_audit.stores import AuditStore


class Bad(Exception):
    """The first bad sequence number, the problem (edited, deleted, ...) and a detail line."""

    def __init__(self, seq: int | None, problem: str, detail: str) -> None:
        super().__init__(detail)
        self.seq, self.problem, self.detail = seq, problem, detail


def _embedded_seq(entry: bytes) -> int:
    try:
        return int(entry[entry.rindex(b":") + 1 : -1])
    except ValueError:
        return -1


def diagnose(store: AuditStore, seq: int, expected: int, lb: bytes, prev: str) -> None:
    """Name what is wrong with the row the fast path rejected (always raises :class:`Bad`)."""
    if seq != expected:
        raise Bad(expected, "deleted", f"records {expected}..{seq - 1} are missing (next stored seq is {seq})")
    _seq, entry, leaf, prev_hash, _chain = next(store.scan_raw(seq, seq))
    if not entry.endswith(b',"seq":%d}' % seq):
        _moved(store, seq, entry, lb.hex() == leaf, prev)
    if lb.hex() != leaf:
        raise Bad(seq, "edited", f"entry bytes of seq {seq} do not match its record id (leaf hash)")
    if prev_hash != prev:
        _bad_link(store, seq, prev_hash)
    raise Bad(seq, "edited", f"chain hash of seq {seq} is not H(prev || leaf)")


def _moved(store: AuditStore, seq: int, entry: bytes, intact: bool, prev: str) -> None:
    k = _embedded_seq(entry)
    if not intact or k < 0:
        raise Bad(seq, "edited", f"entry of seq {seq} was altered (its embedded sequence number is {k})")
    copy = next((r[0] for r in store.scan_raw() if r[1] == entry and r[0] != seq), None)
    if copy is not None:  # a second copy of a record: the copy at seq is what was inserted, wherever it came from
        raise Bad(seq, "inserted", f"seq {seq} is a copy of the record written as {k} (also stored at seq {copy})")
    if k < seq:
        raise Bad(k, "inserted", f"{seq - k} record(s) inserted at seq {k}..{seq - 1}: seq {seq} was written as {k}")
    home = next((r[0] for r in store.scan_raw() if r[3] == prev and r[0] != seq), None)
    if home is not None:
        raise Bad(seq, "reordered", f"seq {seq} holds the record written as {k}; the record of seq {seq} is at {home}")
    raise Bad(seq, "deleted", f"records {seq}..{k - 1} were removed and later records renumbered")


def _bad_link(store: AuditStore, seq: int, prev_hash: str) -> None:
    parent = next((r[0] for r in store.scan_raw(1, seq - 1) if r[4] == prev_hash), None)
    if parent is not None:
        raise Bad(seq, "forked", f"seq {seq} links to seq {parent} like seq {parent + 1} does (a fork of the chain)")
    raise Bad(seq, "edited", f"prev hash of seq {seq} does not match the chain hash of seq {seq - 1}")
