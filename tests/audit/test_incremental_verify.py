"""`aios audit verify --checkpoint` checks only the records after the checkpoint; --deep walks everything."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_audit.checkpoint import load_signing_key, sign_checkpoint
from flytekitplugins.aios_audit.incremental import verify_from
from flytekitplugins.aios_audit.proofs import make_checkpoint
from flytekitplugins.aios_audit.records import record_from_entry, seal_entry
from flytekitplugins.aios_audit.stores.sqlite import SQLiteAuditStore
from flytekitplugins.aios_audit.trust import TrustedKeys
from flytekitplugins.aios_audit.verify import verify_store
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def _fill(n: int) -> None:
    audit_log(get_settings()).append_many(
        [AuditEvent(kind="task", actor=f"user:a{i}", subject=f"d{i}") for i in range(n)]
    )


def _db(aios_env: Path) -> sqlite3.Connection:
    c = sqlite3.connect(aios_env / "audit.db", isolation_level=None)
    for trig in ("audit_log_no_update", "audit_log_no_delete", "audit_log_no_fork"):
        c.execute(f"DROP TRIGGER IF EXISTS {trig}")
    return c


@pytest.fixture
def checkpointed(aios_env: Path, tmp_path: Path) -> Path:
    """21 records, a checkpoint of them, then 12 more."""
    _fill(21)
    cp = tmp_path / "cp"
    assert _run("audit", "checkpoint", "--out", str(cp))[0] == 0
    _fill(12)
    return cp


def test_walks_only_the_records_after_the_checkpoint(
    checkpointed: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    starts: list[Any] = []
    original = SQLiteAuditStore.scan_sealed

    def spy(self: SQLiteAuditStore, start: int = 1, end: int | None = None) -> Any:
        starts.append((start, end))
        return original(self, start, end)

    monkeypatch.setattr(SQLiteAuditStore, "scan_sealed", spy)
    code, out = _run("audit", "verify", "--checkpoint", str(checkpointed))
    assert code == 0 and out.startswith("OK: 33 records") and "incremental: records 22..33" in out, out
    assert starts == [(22, 33)]  # the records after the checkpoint, up to the size when the check began
    full = verify_store(audit_log(get_settings()), workers=1)
    from flytekitplugins.aios_audit.checkpoint import Checkpoint

    inc = verify_from(
        audit_log(get_settings()), Checkpoint.load(checkpointed), TrustedKeys.from_settings(get_settings())
    )
    assert (inc.root_hash, inc.head_hash, inc.frontier) == (full.root_hash, full.head_hash, full.frontier)
    starts.clear()
    code, out = _run("audit", "verify", "--checkpoint", str(checkpointed), "--deep")
    assert code == 0 and "incremental" not in out and "checkpoint of 21" in out and starts[0][0] == 1


def test_edit_after_the_checkpoint_is_found(checkpointed: Path, aios_env: Path) -> None:
    c = _db(aios_env)
    entry = c.execute("SELECT entry FROM audit_log WHERE seq = 27").fetchone()[0]
    c.execute("UPDATE audit_log SET entry = ? WHERE seq = 27", (entry.replace(b"user:a5", b"user:a6"),))
    code, out = _run("audit", "verify", "--checkpoint", str(checkpointed))
    assert code == 1 and "FAILED at seq 27: edited" in out, out


def test_edit_before_the_checkpoint_needs_the_deep_walk(checkpointed: Path, aios_env: Path) -> None:
    """The trade-off, stated: an edit of the signed prefix that leaves its hashes alone is the deep walk's job."""
    c = _db(aios_env)
    entry = c.execute("SELECT entry FROM audit_log WHERE seq = 4").fetchone()[0]
    c.execute("UPDATE audit_log SET entry = ? WHERE seq = 4", (entry.replace(b"user:a3", b"user:a9"),))
    assert _run("audit", "verify", "--checkpoint", str(checkpointed))[0] == 0
    code, out = _run("audit", "verify", "--checkpoint", str(checkpointed), "--deep")
    assert code == 1 and "FAILED at seq 4: edited" in out, out


def test_rewritten_history_is_forked(checkpointed: Path, aios_env: Path) -> None:
    c = _db(aios_env)
    prev = c.execute("SELECT chain_hash FROM audit_log WHERE seq = 2").fetchone()[0]
    for (seq,) in c.execute("SELECT seq FROM audit_log WHERE seq >= 3 ORDER BY seq").fetchall():
        rec = record_from_entry(
            c.execute("SELECT entry FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0], "", "", ""
        )
        new, entry = seal_entry(seq, rec.recorded_at, rec.event.model_copy(update={"actor": "user:mallory"}), prev)
        c.execute(
            "UPDATE audit_log SET entry = ?, leaf_hash = ?, prev_hash = ?, chain_hash = ? WHERE seq = ?",
            (entry, new.leaf_hash, prev, new.chain_hash, seq),
        )
        prev = new.chain_hash
    assert verify_store(audit_log(get_settings())).ok  # internally consistent
    code, out = _run("audit", "verify", "--checkpoint", str(checkpointed))
    assert code == 1 and "forked" in out and "record 21" in out, out


def test_truncated_log(checkpointed: Path, aios_env: Path) -> None:
    _db(aios_env).execute("DELETE FROM audit_log WHERE seq >= 15")
    code, out = _run("audit", "verify", "--checkpoint", str(checkpointed))
    assert code == 1 and "FAILED at seq 15: truncated" in out, out


def test_frontier_that_does_not_match_the_root_is_refused(aios_env: Path) -> None:
    _fill(6)
    good = make_checkpoint(audit_log(get_settings()), get_settings().signing_key)
    key = load_signing_key(get_settings().signing_key)
    frontier = [bytes.fromhex(h) for h in good.frontier]
    bad = sign_checkpoint(
        good.origin, 6, bytes.fromhex(good.root_hash), key, bytes.fromhex(good.chain_head), frontier[::-1]
    )
    r = verify_from(audit_log(get_settings()), bad, TrustedKeys.from_settings(get_settings()))
    assert not r.ok and r.problem == "bad checkpoint" and "frontier" in r.detail
    assert verify_from(audit_log(get_settings()), good, TrustedKeys.from_settings(get_settings())).ok


def test_claims_after_the_checkpoint_are_checked(aios_env: Path, tmp_path: Path) -> None:
    from flytekitplugins.aios_audit.stores import claim

    def _claiming(keys: list[str]) -> None:
        audit_log(get_settings()).append_many(
            [AuditEvent(kind="action", actor="u", attributes={"claims": [claim(k, "h")]}) for k in keys]
        )

    _claiming(["old-1", "old-2"])
    cp = tmp_path / "cp"
    assert _run("audit", "checkpoint", "--out", str(cp))[0] == 0
    _claiming(["new-1", "new-2"])
    assert _run("audit", "verify", "--checkpoint", str(cp))[0] == 0
    c = _db(aios_env)
    c.execute("DROP TRIGGER IF EXISTS audit_claims_no_delete")
    c.execute("DELETE FROM audit_claims WHERE claim IN ('new-2', 'old-1')")
    c.execute("INSERT INTO audit_claims (claim, holder, seq) VALUES ('forged', 'x', 3)")
    code, out = _run("audit", "verify", "--checkpoint", str(cp))
    assert code == 1 and "claim_missing at seq 4: new-2" in out and "claim_extra at seq 3: forged" in out, out
    assert "old-1" not in out  # a row of a checkpointed record: the full walk's job
    code, out = _run("audit", "verify", "--checkpoint", str(cp), "--deep")
    assert code == 1 and "claim_missing at seq 1: old-1" in out, out


def test_claims_check_from_a_checkpoint_reads_only_the_rows_it_needs(
    aios_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the whole claims table (one or two rows per approval ever used): the rows of the records after the
    checkpoint, and those of the keys they seal (a duplicate of an older claim is still found)."""
    from flytekitplugins.aios_audit.stores import claim

    def _claiming(keys: list[str]) -> None:
        audit_log(get_settings()).append_many(
            [AuditEvent(kind="action", actor="u", attributes={"claims": [claim(k, "h")]}) for k in keys]
        )

    _claiming([f"old-{i}" for i in range(50)])
    cp = tmp_path / "cp"
    assert _run("audit", "checkpoint", "--out", str(cp))[0] == 0
    _claiming(["new-1", "new-2"])
    read: list[tuple[str, str, int]] = []
    original = SQLiteAuditStore.scan_claims

    def spy(self: SQLiteAuditStore, *args: Any, **kwargs: Any) -> Any:
        for row in original(self, *args, **kwargs):
            read.append(row)
            yield row

    monkeypatch.setattr(SQLiteAuditStore, "scan_claims", spy)
    assert _run("audit", "verify", "--checkpoint", str(cp))[0] == 0
    assert sorted(k for k, _h, _s in read) == ["new-1", "new-2"]
    # a record after the checkpoint that seals an old key again (its row forged to the new record) is a duplicate
    c = _db(aios_env)
    c.execute("DROP TRIGGER IF EXISTS audit_claims_no_delete")
    c.execute("DELETE FROM audit_claims WHERE claim = 'new-2'")
    entry = c.execute("SELECT entry FROM audit_log WHERE seq = 52").fetchone()[0]
    assert b'"new-2"' in entry
    c.execute("UPDATE audit_log SET entry = ? WHERE seq = 52", (entry.replace(b'"new-2"', b'"old-7"'),))
    from flytekitplugins.aios_audit.incremental import claims_since

    found = [(p.code, p.key, p.seq) for p in claims_since(audit_log(get_settings()), 50)]
    assert found == [("claim_duplicated", "old-7", 52)], found


def _with_inputs(start: int, n: int) -> None:
    """Task records with an input digest each: every one has lineage rows (the input, its execution)."""
    ex = {"project": "p", "domain": "d", "name": "run-1", "task_name": "t"}
    audit_log(get_settings()).append_many(
        [
            AuditEvent(kind="task", actor="service:x", execution=ex, inputs={"x": f"sha256:{i:064x}"})
            for i in range(start, start + n)
        ]
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_projection_rows_after_the_checkpoint_are_rederived(
    aios_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    """With two workers a second process walks and re-derives the upper half: the same findings as one."""
    from flytekitplugins.aios_audit import incremental

    monkeypatch.setenv("AIOS_VERIFY_WORKERS", workers)
    monkeypatch.setattr(incremental, "SPLIT_MIN", 2)  # six records after the checkpoint: split them
    _with_inputs(0, 5)
    cp = tmp_path / "cp"
    assert _run("audit", "checkpoint", "--out", str(cp))[0] == 0
    _with_inputs(5, 6)
    assert _run("audit", "verify", "--checkpoint", str(cp))[0] == 0
    c = _db(aios_env)
    c.execute("DROP TRIGGER IF EXISTS audit_proj_lineage_no_update")
    c.execute("DROP TRIGGER IF EXISTS audit_proj_lineage_no_delete")
    forged = "sha256:" + "f" * 64
    c.execute("UPDATE audit_proj_lineage SET parent = ? WHERE seq = 8 AND pos = 0", (forged,))  # the second's part
    c.execute("UPDATE audit_proj_lineage SET parent = ? WHERE seq = 11 AND pos = 0", (forged,))  # this one's part
    c.execute("UPDATE audit_proj_lineage SET parent = ? WHERE seq = 2 AND pos = 0", (forged,))  # before it
    c.execute("INSERT INTO audit_proj_lineage VALUES (40, 0, '', ?, 'input:x')", (forged,))
    code, out = _run("audit", "verify", "--checkpoint", str(cp))
    assert code == 1, out
    found = [line for line in out.splitlines() if line.startswith("FAILED: projection")]
    assert len(found) == 3, out
    assert "projection_changed in audit_proj_lineage at seq 8" in found[0] and forged in found[0], out
    assert "projection_changed in audit_proj_lineage at seq 11" in found[1] and forged in found[1], out
    assert "projection_extra in audit_proj_lineage at seq 40" in found[2] and "beyond the log" in found[2], out
    code, out = _run("audit", "verify", "--checkpoint", str(cp), "--deep")  # the full walk re-derives seq 2 too
    assert code == 1 and "projection_changed in audit_proj_lineage at seq 2" in out, out


def test_rows_of_records_appended_during_the_check_are_not_beyond_the_log(aios_env: Path) -> None:
    """The check of records 1..until reads rows beyond the log as the log is then: later records bring theirs."""
    from flytekitplugins.aios_audit.projections import verify_projections

    _with_inputs(0, 4)
    store = audit_log(get_settings())
    until = store.size()
    _with_inputs(4, 3)  # appended after the check took its bound
    assert verify_projections(store, 0, until=until) == ([], "")
    c = _db(aios_env)
    c.execute("INSERT INTO audit_proj_lineage VALUES (?, 0, '', 'sha256:ab', 'input:x')", (store.size() + 1,))
    problems, _ = verify_projections(store, 0, until=until)
    assert [(p.code, p.seq) for p in problems] == [("projection_extra", store.size() + 1)]


def test_a_check_aside_runs_in_another_process_and_falls_back_here() -> None:
    import os

    from flytekitplugins.aios_audit.aside import Aside

    assert Aside(os.getpid).result() != os.getpid()
    calls: list[int] = []

    def fails_in_the_child(parent: int) -> int:
        if os.getpid() != parent:
            raise RuntimeError("the child's copy fails")
        calls.append(1)
        return 7

    assert Aside(fails_in_the_child, os.getpid()).result() == 7 and calls == [1]
    waited: list[int] = []
    assert Aside(__import__("time").sleep, 0.8).result(waiting=lambda: waited.append(1)) is None
    assert len(waited) >= 2  # called each quarter second while the child works
    idle = Aside(__import__("time").sleep, 30)
    idle.cancel()  # not wanted: killed, not waited for
    assert idle._proc is None


def test_an_answered_or_cancelled_child_is_not_waited_for_and_is_collected_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``cancel`` (and ``result``, which ends with it) never blocks on the child's end: a child forked from a
    process with models loaded takes milliseconds to tear its memory down. Its exit status is still collected (no
    child is left behind) by the next :class:`Aside`."""
    import multiprocessing
    import multiprocessing.process
    import os
    import time

    from flytekitplugins.aios_audit import aside

    joins: list[float | None] = []
    join = multiprocessing.process.BaseProcess.join

    def recorded_join(self: multiprocessing.process.BaseProcess, timeout: float | None = None) -> None:
        joins.append(timeout)
        join(self, timeout)

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "join", recorded_join)
    answered = aside.Aside(os.getpid)
    assert answered.result() != os.getpid()
    idle = aside.Aside(time.sleep, 30)
    idle.cancel()
    assert joins and all(t == 0 for t in joins)  # every join a poll: none waited for a child's end
    ended = [answered, idle]
    deadline = time.monotonic() + 10
    while aside._ENDING and time.monotonic() < deadline:
        time.sleep(0.01)
        aside._reap()
    assert aside._ENDING == [], "the killed and the answered child were collected"
    assert all(a._proc is None for a in ended)
    # A process forked while a child waits to be collected inherits the entry: it drops it, never joins it (only
    # the parent may), and its own Aside works.
    waiting = multiprocessing.get_context("fork").Process(target=time.sleep, args=(1,))  # running at the fork
    waiting.start()
    aside._ENDING.append((os.getpid(), waiting))

    def reap_there() -> tuple[int, int]:
        aside._reap()
        return os.getpid(), len(aside._ENDING)

    helper = aside.Aside(reap_there)
    assert helper.result()[0] != os.getpid() and not helper.here, "the child reaped its inherited list without error"
    waiting.join()
    aside._reap()
    assert aside._ENDING == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_claims_since_on_both_stores(backend: str, aios_env: Path, request: pytest.FixtureRequest) -> None:
    """The database finds the records that claim (SQLite ``instr``, PostgreSQL ``position`` over the sealed bytes):
    the same findings on both."""
    from flytekitplugins.aios_audit.incremental import claims_since
    from flytekitplugins.aios_audit.stores import claim, open_store

    url = request.getfixturevalue("pg_url") if backend == "postgresql" else f"sqlite:///{aios_env}/claims.db"
    store = open_store(url)
    store.append_many([AuditEvent(kind="action", actor="u", attributes={"claims": [claim("k-old", "h")]})])
    store.append_many([AuditEvent(kind="task", actor="u", subject="no claim here")])
    store.append_many(
        [AuditEvent(kind="action", actor="u", attributes={"claims": [claim(k, "h")]}) for k in ("k-1", "k-2")]
    )
    assert claims_since(store, 2) == [] and claims_since(store, 0) == []
    if backend == "postgresql":
        import psycopg

        with psycopg.connect(url, autocommit=True) as c:
            c.execute("DROP TRIGGER audit_claims_no_update ON audit_claims")
            c.execute("DELETE FROM audit_claims WHERE claim IN ('k-2', 'k-old')")
    else:
        c = sqlite3.connect(aios_env / "claims.db", isolation_level=None)
        c.execute("DROP TRIGGER audit_claims_no_delete")
        c.execute("DELETE FROM audit_claims WHERE claim IN ('k-2', 'k-old')")
    assert [(p.code, p.key, p.seq) for p in claims_since(store, 2)] == [("claim_missing", "k-2", 4)]
    assert claims_since(store, 4) == []  # k-old is the full walk's to find
    # bounded by the walk that preceded it: record 4 came after that walk, its check is the next one's
    assert claims_since(store, 2, until=3) == []
    kept = [(3, next(store.scan_raw(3, 3))[1])]  # what the walk kept: the records that may claim
    assert claims_since(store, 2, kept, until=4) == []  # k-1 is fine; k-2's record was not kept, so not read
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_full_claims_check_names_every_kind_of_difference(
    backend: str, aios_env: Path, request: pytest.FixtureRequest
) -> None:
    """The deep walk's claims check (compared in a scratch database, not in two dictionaries of every claim) reports a
    duplicated, a missing, a changed and an extra claim, each at its record, on both stores."""
    from flytekitplugins.aios_audit.claims import verify_claims
    from flytekitplugins.aios_audit.stores import claim, open_store

    url = request.getfixturevalue("pg_url") if backend == "postgresql" else f"sqlite:///{aios_env}/claims.db"
    store = open_store(url)
    for key in ("dup", "gone", "moved", "fine"):
        store.append_many([AuditEvent(kind="action", actor="u", attributes={"claims": [claim(key, "h")]})])
    assert verify_claims(store) == []
    edits = [
        "DELETE FROM audit_claims WHERE claim IN ('dup', 'gone')",
        "UPDATE audit_claims SET holder = 'someone-else' WHERE claim = 'moved'",
        "INSERT INTO audit_claims VALUES ('forged', 'x', 2)",
        "INSERT INTO audit_claims VALUES ('ahead', 'x', 999)",  # a record the log does not have: still a row
    ]
    if backend == "postgresql":
        import psycopg

        with psycopg.connect(url, autocommit=True) as c:
            c.execute("DROP TRIGGER audit_claims_no_update ON audit_claims")
            for sql in edits:
                c.execute(sql)
    else:
        c = sqlite3.connect(aios_env / "claims.db", isolation_level=None)
        c.execute("DROP TRIGGER audit_claims_no_delete")
        c.execute("DROP TRIGGER audit_claims_no_update")
        for sql in edits:
            c.execute(sql)
        c.close()
    store.append_many([AuditEvent(kind="action", actor="v", attributes={"claims": [claim("dup", "h2")]})])  # seq 5
    found = [(p.code, p.key, p.seq) for p in verify_claims(store)]
    assert found == [
        ("claim_changed", "dup", 1),  # its row now names the second claim
        ("claim_extra", "forged", 2),
        ("claim_missing", "gone", 2),
        ("claim_changed", "moved", 3),
        ("claim_duplicated", "dup", 5),
        ("claim_extra", "ahead", 999),
    ], found
    store.close()
