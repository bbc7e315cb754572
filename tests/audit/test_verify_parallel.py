"""The two-process verifier reports exactly what the one-process walk reports, clean or tampered."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_audit.merkle import RootAccumulator, root
from flytekitplugins.aios_audit.proofs import make_checkpoint
from flytekitplugins.aios_audit.records import record_from_entry, seal_entry
from flytekitplugins.aios_audit.trust import TrustedKeys
from flytekitplugins.aios_audit.verify import VerifyResult, verify_store
from flytekitplugins.aios_core.settings import get_settings

N, BLOCK = 45, 4  # parallel from 4 blocks on; the child verifies seq 21..45 (split at 20, block-aligned)


def _both(cp=None) -> tuple[VerifyResult, VerifyResult]:  # type: ignore[no-untyped-def]
    store = audit_log(get_settings())
    serial = verify_store(store, cp, TrustedKeys.from_settings(get_settings()), workers=1)
    parallel = verify_store(store, cp, TrustedKeys.from_settings(get_settings()), workers=2, block=BLOCK)
    return serial, parallel


def _same(a: VerifyResult, b: VerifyResult) -> None:
    assert (a.ok, a.size, a.root_hash, a.head_hash, a.first_bad_seq, a.problem, a.detail) == (
        b.ok,
        b.size,
        b.root_hash,
        b.head_hash,
        b.first_bad_seq,
        b.problem,
        b.detail,
    )


@pytest.fixture
def conn(aios_env: Path) -> sqlite3.Connection:
    store = audit_log(get_settings())
    store.append_many(
        [AuditEvent(kind="task", actor=f"user:a{i}", status="succeeded", subject=f"d{i}") for i in range(1, N + 1)]
    )
    c = sqlite3.connect(aios_env / "audit.db", isolation_level=None)
    for trig in ("audit_log_no_update", "audit_log_no_delete", "audit_log_no_fork"):
        c.execute(f"DROP TRIGGER {trig}")
    return c


def test_push_subtree_matches_leaf_by_leaf() -> None:
    leaves = [bytes([i]) * 32 for i in range(37)]
    acc = RootAccumulator()
    for b in range(0, 32, 8):
        acc.push_subtree(root(leaves[b : b + 8]), 8)
    for leaf in leaves[32:]:
        acc.push(leaf)
    assert acc.root() == root(leaves) and acc.size == 37
    with pytest.raises(ValueError, match="aligned"):
        acc.push_subtree(leaves[0], 4)  # size 37 is not a multiple of 4


def test_clean_log_same_result(conn: sqlite3.Connection) -> None:
    serial, parallel = _both()
    assert serial.ok and parallel.ok and parallel.size == N
    assert (serial.workers, parallel.workers) == (1, 2)  # the child really verified the upper half
    _same(serial, parallel)


@pytest.mark.parametrize("cp_size", [7, 20, 21, 27, 44, N])
def test_checkpoints_anywhere(conn: sqlite3.Connection, cp_size: int) -> None:
    store = audit_log(get_settings())
    full = make_checkpoint(store, get_settings().signing_key)
    assert full.tree_size == N
    conn.execute("CREATE TABLE keep AS SELECT * FROM audit_log")
    conn.execute("DELETE FROM audit_log WHERE seq > ?", (cp_size,))
    cp = make_checkpoint(audit_log(get_settings()), get_settings().signing_key)
    conn.execute("INSERT INTO audit_log SELECT * FROM keep WHERE seq > ?", (cp_size,))
    serial, parallel = _both(cp)
    assert serial.ok and serial.checkpoint_size == cp_size and parallel.workers == 2
    _same(serial, parallel)
    # rewrite history after the first record with fresh hashes: the checkpoint catches it in either process
    prev = conn.execute("SELECT chain_hash FROM audit_log WHERE seq = 1").fetchone()[0]
    for seq in range(2, N + 1):
        entry = conn.execute("SELECT entry FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0]
        rec = record_from_entry(entry, "", "", "")
        new, raw = seal_entry(seq, rec.recorded_at, rec.event.model_copy(update={"actor": "user:m"}), prev)
        conn.execute(
            "UPDATE audit_log SET entry = ?, leaf_hash = ?, prev_hash = ?, chain_hash = ? WHERE seq = ?",
            (raw, new.leaf_hash, prev, new.chain_hash, seq),
        )
        prev = new.chain_hash
    serial, parallel = _both(cp)
    assert not serial.ok and serial.problem == "forked"
    _same(serial, parallel)


def _edit(seq: int) -> Callable[[sqlite3.Connection], None]:
    def f(c: sqlite3.Connection) -> None:
        e = c.execute("SELECT entry FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0]
        c.execute("UPDATE audit_log SET entry = ? WHERE seq = ?", (e.replace(b"user:a", b"user:x"), seq))

    return f


def _delete(seq: int) -> Callable[[sqlite3.Connection], None]:
    return lambda c: c.execute("DELETE FROM audit_log WHERE seq = ?", (seq,)) and None


def _column(seq: int, col: str) -> Callable[[sqlite3.Connection], None]:
    return lambda c: c.execute(f"UPDATE audit_log SET {col} = ? WHERE seq = ?", ("f" * 64, seq)) and None


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "problem"),
    [
        (_edit(5), 5, "edited"),
        (_edit(20), 20, "edited"),  # last row of this process's half
        (_edit(21), 21, "edited"),  # first row of the child's half
        (_edit(33), 33, "edited"),
        (_delete(30), 30, "deleted"),
        (_delete(N - 1), N - 1, "deleted"),
        (_column(21, "prev_hash"), 21, "edited"),
        (_column(20, "chain_hash"), 20, "edited"),
        (_column(38, "leaf_hash"), 38, "edited"),
    ],
)
def test_tampering_in_either_half(
    conn: sqlite3.Connection, tamper: Callable[[sqlite3.Connection], None], bad_seq: int, problem: str
) -> None:
    tamper(conn)
    serial, parallel = _both()
    assert not serial.ok and (serial.first_bad_seq, serial.problem) == (bad_seq, problem)
    _same(serial, parallel)


def test_small_logs_and_one_worker_stay_serial(conn: sqlite3.Connection) -> None:
    r = verify_store(audit_log(get_settings()), workers=2, block=16)  # 45 < 4 * 16: one process
    assert r.ok and r.size == N and r.workers == 1
    assert verify_store(audit_log(get_settings()), workers=1, block=BLOCK).workers == 1


def _stuck_child(*args: object) -> None:
    """A worker that never answers."""
    import time

    time.sleep(300)


def _dead_child(*args: object) -> None:
    import os

    os._exit(3)  # dies without an answer


@pytest.mark.timeout(60)
def test_a_failing_half_stops_a_worker_that_ignores_sigterm(
    conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This process finds the edit in its half; the worker is killed, not waited on (it hung CI for 600 s)."""
    import signal

    from flytekitplugins.aios_audit import verify

    conn.execute("UPDATE audit_log SET subject = 'edited' WHERE seq = 3")
    serial = verify_store(audit_log(get_settings()), workers=1)
    monkeypatch.setattr(verify, "_child", _stuck_child)
    # a handler in this process that does not exit on SIGTERM, which the forked worker inherits
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        parallel = verify_store(audit_log(get_settings()), workers=2, block=BLOCK)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not serial.ok and serial.first_bad_seq == 3
    _same(serial, parallel)


@pytest.mark.timeout(60)
def test_a_worker_that_dies_without_answering_means_a_serial_walk(
    conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flytekitplugins.aios_audit import verify

    serial = verify_store(audit_log(get_settings()), workers=1)
    monkeypatch.setattr(verify, "_child", _dead_child)
    parallel = verify_store(audit_log(get_settings()), workers=2, block=BLOCK)
    assert serial.ok
    _same(serial, parallel)


@pytest.mark.timeout(60)
def test_a_worker_that_never_answers_means_a_serial_walk(
    conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker stuck after fork (a lock another thread held) is killed after the grace time; same result."""
    from flytekitplugins.aios_audit import verify

    conn.execute("UPDATE audit_log SET subject = 'edited' WHERE seq = 30")  # in the stuck worker's half
    serial = verify_store(audit_log(get_settings()), workers=1)
    monkeypatch.setattr(verify, "_child", _stuck_child)
    monkeypatch.setattr(verify, "WORKER_GRACE_S", 1.0)
    parallel = verify_store(audit_log(get_settings()), workers=2, block=BLOCK)
    assert not serial.ok and serial.first_bad_seq == 30
    _same(serial, parallel)
