"""Batched sequencing on PostgreSQL (issue 15, item 5): staged appends, one integrator at a time, nothing lost.

Writers are separate processes (``pg_seq_writer.py``) that print a record only after ``append_many`` returned it;
every printed record must be in the log exactly once, the sequence gap-free and the log must verify, also when
writers and an integrator paused in the middle of its transaction are killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from flytekitplugins.aios_audit import AuditEvent, AuditRecord
from flytekitplugins.aios_audit.claims import verify_claims
from flytekitplugins.aios_audit.stores import ClaimTaken, PreconditionFailed, claim, open_store
from flytekitplugins.aios_audit.stores import pg_integrate as pgi
from flytekitplugins.aios_audit.verify import verify_store
from flytekitplugins.aios_core.context import ExecutionRef
from tests.audit.test_crash import _read_acks

pytestmark = pytest.mark.postgres

WRITER = Path(__file__).with_name("pg_seq_writer.py")
REPO = Path(__file__).resolve().parents[2]


def _spawn(url: str, name: str, count: int, **env: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.Popen([sys.executable, str(WRITER), url, name, str(count)], stdout=subprocess.PIPE, env=env)


def _acks(out: bytes) -> dict[int, str]:
    acks: dict[int, str] = {}
    for line in out.decode().splitlines():
        if line.count(" ") == 1:  # a line cut by SIGKILL has no record id
            seq, rid = line.split()
            assert int(seq) not in acks, f"seq {seq} acknowledged twice"
            acks[int(seq)] = rid
    return acks


def _check_log(url: str, acks: dict[int, str]) -> list[str]:
    """The log verifies, is gap-free, holds every acknowledged record exactly once, with exactly the projection rows
    its records derive; returns its subjects."""
    store = open_store(url)
    try:
        result = verify_store(store)
        assert result.ok, result.summary()
        assert verify_claims(store) == []
        records = list(store.scan())
        assert [r.seq for r in records] == list(range(1, len(records) + 1))
        by_seq = {r.seq: r.record_id for r in records}
        lost = {s: rid for s, rid in acks.items() if by_seq.get(s) != rid}
        assert not lost, f"acknowledged records lost or changed: {sorted(lost)[:5]}"
        subjects = [r.event.subject for r in records]
        assert [s for s, n in Counter(subjects).items() if n > 1] == [], "a staged append was sequenced twice"
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM audit_staged").fetchone() == (0,)
        from flytekitplugins.aios_audit.projections import verify_projections

        problems, _note = verify_projections(store)  # lineage rows: each record's, written with it, exactly once
        assert [p.line() for p in problems] == []
        return subjects
    finally:
        store.close()


def test_many_writer_processes_gap_free_and_verified(pg_url: str) -> None:
    procs = [_spawn(pg_url, f"w{i}", 40) for i in range(8)]
    acks: dict[int, str] = {}
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        for seq, rid in _acks(out).items():
            assert seq not in acks, f"seq {seq} returned to two writers"
            acks[seq] = rid
    subjects = _check_log(pg_url, acks)
    assert len(acks) == len(subjects) == 8 * sum(1 + i % 3 for i in range(1, 41))
    with psycopg.connect(pg_url, autocommit=True) as conn:  # every receipt was collected by its writer
        assert conn.execute("SELECT count(*) FROM audit_receipts").fetchone() == (0,)


def test_writers_killed_at_random_lose_nothing(pg_url: str) -> None:
    acks: dict[int, str] = {}
    for round_ in range(2):  # the second round starts on a log whose writers died mid-append
        procs = [_spawn(pg_url, f"k{round_}{i}", 0) for i in range(6)]
        for seq, rid in _read_acks(list(procs), 1.5).items():  # each killed at random after its first record
            assert seq not in acks, f"seq {seq} acknowledged twice"
            acks[seq] = rid
        for p in procs:
            p.wait(timeout=10)
    open_store(pg_url).append(AuditEvent(kind="task", actor="after"))  # integrates whatever the dead left staged
    _check_log(pg_url, acks)
    assert len(acks) > 20, "writers acknowledged too few records to make the test meaningful"


def test_integrator_killed_mid_batch_loses_nothing(pg_url: str, tmp_path: Path) -> None:
    store = open_store(pg_url)
    first = store.append(AuditEvent(kind="task", actor="before", subject="before"))
    marker = tmp_path / "integrating"
    victim = _spawn(pg_url, "victim", 1, **{pgi.PAUSE_ENV: str(marker)})
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert victim.poll() is None and time.monotonic() < deadline, "the integrator never reached its pause"
        time.sleep(0.02)
    assert store.size() == 1  # its batch is inserted but not committed
    got: list[AuditRecord] = []
    waiter = threading.Thread(target=lambda: got.append(store.append(AuditEvent(kind="task", actor="w", subject="w"))))
    waiter.start()
    time.sleep(0.3)
    assert not got, "a writer returned while the integrator held the lock"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    waiter.join(timeout=30)
    assert got and store.get(got[0].record_id) == got[0]
    subjects = _check_log(pg_url, {first.seq: first.record_id, got[0].seq: got[0].record_id})
    assert sorted(subjects) == ["before", "victim-1-0", "victim-1-1", "w"]  # the victim's staged batch, once
    store.close()


def _stage_directly(url: str, *subjects: str, columns: bool = True) -> None:
    """A staged row nobody integrated yet (its writer died right after staging), of one event per subject: with the
    columns an ``append`` stages, or (``columns`` false) the events' bytes alone, as ``stage_many`` stages them."""
    blobs = [
        AuditEvent.__pydantic_serializer__.to_json(AuditEvent(kind="task", actor="dead", subject=s)) for s in subjects
    ]
    cols = [c for s in subjects for c in ("task", s, "", "")] if columns else []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO audit_staged (events, cols, wants_receipt) VALUES (%b::bytea[], %s::text[], %s)",
            (blobs, cols, columns),
        )


def test_precondition_runs_after_staged_rows_are_integrated_and_aborts_cleanly(pg_url: str) -> None:
    store = open_store(pg_url)
    _stage_directly(pg_url, "staged-1")
    seen: list[int] = []
    rec = store.append_many(
        [AuditEvent(kind="task", actor="a", subject="p")], precondition=lambda: seen.append(store.size())
    )
    assert seen == [1] and rec[0].seq == 2
    _stage_directly(pg_url, "staged-2")

    def refuse() -> None:
        raise PreconditionFailed("no")

    with pytest.raises(PreconditionFailed):
        store.append_many([AuditEvent(kind="task", actor="a", subject="refused")], precondition=refuse)
    assert _check_log(pg_url, {}) == ["staged-1", "p", "staged-2"]  # the staged row still committed, nothing else
    store.close()


def test_claims_stay_atomic_beside_batched_appends(pg_url: str) -> None:
    store = open_store(pg_url)
    stop = threading.Event()

    def churn(n: int) -> None:
        s, i = open_store(pg_url), 0
        while not stop.is_set():
            i += 1
            s.append(AuditEvent(kind="task", actor="churn", subject=f"churn-{n}-{i}"))
        s.close()

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    try:
        won = store.append(
            AuditEvent(kind="action", actor="a", subject="a", attributes={"claims": [claim("use:1", "run-a")]})
        )
        with pytest.raises(ClaimTaken) as taken:
            store.append_many(
                [
                    AuditEvent(kind="action", actor="b", subject="never"),
                    AuditEvent(kind="action", actor="b", subject="b", attributes={"claims": [claim("use:1", "run-b")]}),
                ]
            )
        assert (taken.value.holder, taken.value.seq) == ("run-a", won.seq)
    finally:
        stop.set()
        for t in threads:
            t.join()
    subjects = _check_log(pg_url, {won.seq: won.record_id})
    assert "never" not in subjects and store.claim_holders(["use:1"]) == {"use:1": ("run-a", won.seq)}
    store.close()


def test_a_large_batch_is_sealed_on_the_server_as_seal_many_seals_it(pg_url: str) -> None:
    """Server-side sealing gives the bytes ``records.seal_many`` gives, also for non-ASCII text and JSON escapes."""
    store = open_store(pg_url)
    store.append(AuditEvent(kind="task", actor="first"))
    subjects = [f'bulk-{i}-\u00e9\u4e2d"q\\' for i in range(150)]
    for subject in subjects:
        _stage_directly(pg_url, subject)
    last = store.append(AuditEvent(kind="task", actor="last", subject="last"))
    assert last.seq == 152 and store.get(last.record_id) == last
    assert _check_log(pg_url, {last.seq: last.record_id})[1:151] == subjects
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the dead writers' receipts wait for nobody
        assert conn.execute("SELECT count(*) FROM audit_receipts").fetchone() == (150,)
    store.close()


def test_a_log_made_before_batched_sequencing_upgrades_in_place(pg_url: str) -> None:
    store = open_store(pg_url)
    old = store.append_many([AuditEvent(kind="task", actor="old", subject=f"old-{i}") for i in range(3)])
    store.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:  # what a log written by the previous version holds
        conn.execute("DROP PROCEDURE aios_audit_append")
        conn.execute("DROP FUNCTION aios_audit_await, aios_audit_integrate")
        conn.execute("DROP TABLE audit_staged, audit_receipts")
    store = open_store(pg_url)
    new = store.append(AuditEvent(kind="task", actor="new", subject="new"))
    assert new.seq == 4 and new.prev_hash == old[-1].chain_hash
    assert _check_log(pg_url, {r.seq: r.record_id for r in [*old, new]}) == ["old-0", "old-1", "old-2", "new"]
    store.close()


def test_a_backlog_longer_than_one_batch_is_integrated_in_order(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgi, "BATCH", 2)
    store = open_store(pg_url)
    for i in range(5):
        _stage_directly(pg_url, f"backlog-{i}")
    rec = store.append(AuditEvent(kind="task", actor="late", subject="late"))
    assert rec.seq == 6 and store.get(rec.record_id) == rec
    assert _check_log(pg_url, {6: rec.record_id}) == [*(f"backlog-{i}" for i in range(5)), "late"]
    store.close()


def _staged_subjects(out: bytes) -> list[str]:
    """Subjects a staging writer printed after ``stage_many`` returned (a line cut by SIGKILL has no newline)."""
    text = out.decode()
    lines = text.splitlines()[: text.count("\n")]
    return [line.removeprefix("staged ") for line in lines if line.startswith("staged ")]


def test_staged_appends_from_many_processes_are_sequenced_once_and_verify(pg_url: str) -> None:
    """``stage_many`` returns a durable acknowledgement; after a drain every acknowledged event is in the log once."""
    procs = [_spawn(pg_url, f"s{i}", 30, AIOS_TEST_STAGE="1") for i in range(6)]
    acked: list[str] = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        acked += _staged_subjects(out)
    store = open_store(pg_url)
    store.integrate_staged()  # what `aios audit integrate` does for rows the last writers left staged
    subjects = _check_log(pg_url, {})
    assert sorted(subjects) == sorted(acked) and len(acked) == 6 * sum(1 + i % 3 for i in range(1, 31))
    with psycopg.connect(pg_url, autocommit=True) as conn:  # staging writers ask for no receipts
        assert conn.execute("SELECT count(*) FROM audit_receipts").fetchone() == (0,)
    store.close()


def test_staging_writers_killed_at_random_lose_no_acknowledged_event(pg_url: str) -> None:
    procs = [_spawn(pg_url, f"ks{i}", 0, AIOS_TEST_STAGE="1") for i in range(6)]
    early = []
    for p in procs:  # every writer is staging before any is killed
        assert p.stdout is not None
        early.append(b"".join(p.stdout.readline() for _ in range(5)))
    time.sleep(0.5)
    for p in procs:
        p.send_signal(signal.SIGKILL)
    acked = [
        s for p, head in zip(procs, early, strict=True) for s in _staged_subjects(head + p.communicate(timeout=30)[0])
    ]
    assert len(acked) > 20, "writers acknowledged too few events to make the test meaningful"
    store = open_store(pg_url)
    store.integrate_staged()
    subjects = _check_log(pg_url, {})
    missing = set(acked) - set(subjects)
    assert not missing, f"acknowledged events lost: {sorted(missing)[:5]}"
    store.close()


def test_stage_is_an_acknowledgement_that_the_log_integrates(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgi, "STAGE_INTEGRATE_EVERY_S", 3600.0)  # however slow this machine, the next try is not due
    store = open_store(pg_url)
    ack = store.stage_many([AuditEvent(kind="task", actor="a", subject="staged-once")])
    assert ack.staged_id is not None and ack.count == 1 and not ack.records
    assert store.is_integrated(ack)  # a connection's first staging call also integrates (the lock was free)
    late = store.stage_many([AuditEvent(kind="task", actor="a", subject="staged-later")])
    assert not store.is_integrated(late)  # no try due yet: it waits for a batch, durably staged
    assert store.integrate_staged() == 1 and store.is_integrated(late)
    with_claim = AuditEvent(kind="action", actor="a", subject="c", attributes={"claims": [claim("use:9", "r")]})
    sealed = store.stage_many([with_claim])  # claims need the lock: sequenced at once, records returned
    assert sealed.staged_id is None and sealed.records[0].seq == 3
    assert _check_log(pg_url, {3: sealed.records[0].record_id}) == ["staged-once", "staged-later", "c"]
    store.close()


def test_aios_audit_integrate_sequences_what_is_staged(pg_url: str) -> None:
    import json as _json

    from click.testing import CliRunner

    from flytekitplugins.aios_core.cli import cli

    open_store(pg_url).close()
    _stage_directly(pg_url, "left-by-a-dead-writer")
    result = CliRunner().invoke(cli, ["--store", pg_url, "audit", "integrate", "--json"])
    assert result.exit_code == 0, result.output
    assert _json.loads(result.output.splitlines()[-1])["integrated"] == 1
    assert _check_log(pg_url, {}) == ["left-by-a-dead-writer"]


@pytest.mark.parametrize("n", [1, 3, pgi.SCALAR_EVENTS, pgi.SCALAR_EVENTS + 1])
def test_scalar_and_array_parameters_stage_the_same_bytes(pg_url: str, n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Few events go as scalar parameters inside ``ARRAY[...]``, many as two array parameters: both stage and
    append byte for byte what ``seal_many`` seals, also for text that array literals would have to quote."""
    monkeypatch.setattr(pgi, "STAGE_INTEGRATE_EVERY_S", 3600.0)
    awkward = ["a,b", "{c}", '"q"', "back\\slash", "NULL", "", "\u00e9\u4e2d", "x y"]
    events = [AuditEvent(kind="task", actor="w", subject=awkward[i % len(awkward)] + str(i)) for i in range(n)]
    ex = "p/d/" + awkward[n % len(awkward)]
    store = open_store(pg_url)
    store.append(AuditEvent(kind="task", actor="first"))
    ack = store.stage_many(events)  # the log's lock is held by nobody: the first try integrates
    staged_sql = pgi._arrays_sql(n, True)
    assert ("ARRAY[" in staged_sql) == (n <= pgi.SCALAR_EVENTS)
    assert store.is_integrated(ack)
    again = [e.model_copy(update={"subject": e.subject + ex, "attributes": {"execution": ex}}) for e in events]
    sealed = store.append_many(again)
    records = list(store.scan())
    assert [r.event for r in records[1:]] == events + again
    assert records[-n:] == sealed and [r.seq for r in sealed] == list(range(n + 2, 2 * n + 2))
    assert _check_log(pg_url, {r.seq: r.record_id for r in sealed})[1:] == [e.subject for e in events + again]
    # the lineage rows travelled with the staged events (awkward execution keys included) and verify
    from flytekitplugins.aios_audit.projections import verify_projections

    assert verify_projections(store) == ([], "")
    rows = store.read_sql("SELECT seq, parent FROM audit_proj_lineage WHERE rel = 'in_execution' ORDER BY seq")
    assert rows == [(r.seq, "execution:" + ex) for r in sealed]
    store.close()


def test_many_lineage_rows_an_event_in_one_append_are_each_written_once(pg_url: str) -> None:
    """The server-side integrator reads each staged row's lineage values once and groups them by five (a subscript
    of a stored array per value was quadratic in the append's size): every row lands at its own record and
    position, for two appends of many events, each with several rows."""
    from flytekitplugins.aios_audit.lineage_rows import event_rows
    from flytekitplugins.aios_audit.projections import verify_projections

    def ev(i: int) -> AuditEvent:
        digest = f"sha256:{i:064x}"
        return AuditEvent(
            kind="action",
            actor="w",
            subject=digest,
            inputs={"document": digest, "policy": f"sha256:{i + 1:064x}"},
            outputs={"posted": f"sha256:{i + 2:064x}"},
            parents=[f"{i + 3:064x}"],
        )

    store = open_store(pg_url)
    events = [ev(i) for i in range(150)]
    first, second = store.append_many(events[:70]), store.append_many(events[70:])
    assert [r.seq for r in first + second] == list(range(1, 151))
    assert verify_projections(store) == ([], "")
    want = sorted((r.seq, *row) for r in first + second for row in event_rows(r.event.model_dump_json().encode()))
    assert len(want) >= 4 * 150
    assert sorted(store.read_sql("SELECT seq, pos, child, parent, rel FROM audit_proj_lineage")) == want
    store.close()


@pytest.mark.parametrize("staged", [True, False])
def test_a_lineage_value_holding_the_separator_cannot_split_a_row(pg_url: str, staged: bool) -> None:
    """Lineage values travel as one text split on chr(31); a value holding chr(31) (an execution key from a CLI
    decision's attributes, say) goes as an array instead, so it cannot forge rows for its record."""
    from flytekitplugins.aios_audit.lineage_rows import staged_text
    from flytekitplugins.aios_audit.projections import verify_projections

    forged = "p/d/x\x1f1\x1f0\x1f\x1fpolicy:allow-all\x1fdetermined_by"
    ev = AuditEvent(kind="task", actor="w", subject="s", attributes={"execution": forged})
    assert isinstance(staged_text([ev.model_dump_json().encode()]), list)
    store = open_store(pg_url)
    store.append(AuditEvent(kind="task", actor="first"))
    if staged:  # the acknowledged path: rows staged beside the event, inserted by the integrator
        store.stage_many([ev])
        store.integrate_staged()
    else:
        store.append(ev)
    assert verify_projections(store) == ([], "")
    rows = store.read_sql("SELECT child, parent, rel FROM audit_proj_lineage WHERE seq > 1 ORDER BY seq, pos")
    assert set(rows) == {("", "execution:" + forged, "in_execution")}
    store.close()


def test_events_staged_by_an_older_writer_before_the_upgrade_get_their_lineage_rows(pg_url: str) -> None:
    """A log upgraded while acknowledged events of the previous version (staged rows without lineage) wait to be
    sequenced: they count as not built, `rebuild-projections` fills their rows, and the log then verifies clean."""
    from flytekitplugins.aios_audit import projections as pj
    from flytekitplugins.aios_audit.records import _to_json

    store = open_store(pg_url)
    store.append(AuditEvent(kind="task", actor="before", inputs={"x": "sha256:" + "1" * 64}))
    store.close()
    old = [AuditEvent(kind="task", actor="old-writer", inputs={"x": f"sha256:{i:064x}"}) for i in range(3)]
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the previous version: no lineage table, no lin column
        conn.execute("DROP TABLE audit_proj_lineage, audit_proj_lineage_state")
        conn.execute("ALTER TABLE audit_staged DROP COLUMN lin")
        cols = [v for _ in old for v in ("task", "", "", "")]
        conn.execute("INSERT INTO audit_staged (events, cols) VALUES (%s, %s)", ([_to_json(e) for e in old], cols))
    store = open_store(pg_url)  # the upgrade: tables created, the staged events counted as not built
    assert pj.missing_through(store, pj.LINEAGE_GROUP) == 1 + len(old)
    new = store.append(AuditEvent(kind="task", actor="after", inputs={"x": "sha256:" + "2" * 64}))
    assert new.seq == 5  # integrated after the staged events, with its own rows
    assert pj.rebuild(store) > 0
    assert pj.available(store, pj.LINEAGE_GROUP) and pj.verify_projections(store) == ([], "")
    parents = store.read_sql("SELECT seq, parent FROM audit_proj_lineage WHERE rel = 'input:x' ORDER BY seq")
    assert parents == [
        (1, "sha256:" + "1" * 64),
        *((2 + i, f"sha256:{i:064x}") for i in range(3)),
        (5, "sha256:" + "2" * 64),
    ]
    store.close()


def test_an_append_after_bytes_only_staged_rows_is_sequenced_after_them(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``stage_many`` stages the events' bytes alone; the server's integrator stops at such a row and the appending
    client integrates the batch in Python: the order of staging holds, the columns and lineage rows are derived from
    the entries, and the log verifies."""
    monkeypatch.setattr(pgi, "STAGE_INTEGRATE_EVERY_S", 3600.0)
    ex = ExecutionRef(project="p", domain="d", name="mixed", task_name="t")
    store = open_store(pg_url)
    store.append(AuditEvent(kind="task", actor="first", subject="first"))
    store.stage_many([AuditEvent(kind="task", actor="w", subject="warm-up")])  # spends the connection's first try
    events = [
        AuditEvent(kind="task", actor="w", subject=f"bytes-{i}", execution=ex, inputs={"x": f"sha256:{i:064x}"})
        for i in range(3)
    ]
    ack = store.stage_many(events)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT cardinality(cols), cardinality(lin) FROM audit_staged WHERE id = %s", (ack.staged_id,)
        )
        assert row.fetchone() == (0, 0)  # the writer derived nothing
    _stage_directly(pg_url, "old-format")  # a row with writer-derived columns, staged after them
    rec = store.append(AuditEvent(kind="task", actor="late", subject="late"))
    assert store.is_integrated(ack) and rec.seq == 7 and store.get(rec.record_id) == rec
    subjects = _check_log(pg_url, {rec.seq: rec.record_id})
    assert subjects == ["first", "warm-up", "bytes-0", "bytes-1", "bytes-2", "old-format", "late"]
    cols = store.read_sql("SELECT kind, subject, execution, task FROM audit_log WHERE seq BETWEEN 3 AND 5 ORDER BY seq")
    assert cols == [("task", f"bytes-{i}", "p/d/mixed", "t") for i in range(3)]
    parents = store.read_sql("SELECT seq, parent FROM audit_proj_lineage WHERE rel = 'input:x' ORDER BY seq")
    assert parents == [(3 + i, f"sha256:{i:064x}") for i in range(3)]
    store.close()


def test_the_integrator_derives_columns_from_the_entry_not_from_the_staged_row(pg_url: str) -> None:
    """A writer with store access stages a row whose columns lie about its event (to hide it from a query by kind):
    the server refuses the row (the server-side integrator would seal it with those columns), and the same bytes
    staged alone are sealed by the Python integrator with the columns of the event's own bytes."""
    store = open_store(pg_url)
    store.append(AuditEvent(kind="task", actor="first"))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        blob = AuditEvent.__pydantic_serializer__.to_json(AuditEvent(kind="action", actor="x", subject="real"))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO audit_staged (events, cols) VALUES (%s, %s)", ([blob], ["task", "decoy", "", ""]))
        conn.execute("INSERT INTO audit_staged (events, cols) VALUES (%s, '{}')", ([blob],))
    assert store.integrate_staged() == 1
    assert store.read_sql("SELECT kind, subject FROM audit_log WHERE seq = 2") == [("action", "real")]
    assert _check_log(pg_url, {}) == ["", "real"]
    store.close()


def test_a_staged_row_that_is_no_event_cannot_stop_the_integrator(pg_url: str) -> None:
    """Bytes staged by hand that are no event (or hold NUL, which ``text`` columns refuse) are sealed all the same
    (nothing staged is lost, the rows after them are sequenced), and verification reports the record."""
    store = open_store(pg_url)
    store.append(AuditEvent(kind="task", actor="first"))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        nul = b'{"kind":"task","subject":"a\\u0000b","execution":null}'
        for blob in (b"not json", nul):
            conn.execute("INSERT INTO audit_staged (events, cols, wants_receipt) VALUES (%s, '{}', false)", ([blob],))
    after = store.stage_many([AuditEvent(kind="task", actor="after", subject="after")])
    store.integrate_staged()
    assert store.is_integrated(after) and store.size() == 4
    assert store.read_sql("SELECT subject FROM audit_log WHERE seq = 3") == [("a\ufffdb",)]
    result = verify_store(store)
    assert not result.ok and result.first_bad_seq == 2, result.summary()
    store.close()


def test_stage_refuses_an_event_holding_nul_naming_it(pg_url: str) -> None:
    from flytekitplugins.aios_audit.stores import AuditWriteError

    store = open_store(pg_url)
    with pytest.raises(AuditWriteError, match=r"NUL character"):
        store.stage_many([AuditEvent(kind="task", actor="a", subject="x\x00y")])
    assert store.size() == 0
    store.close()


def test_staging_writers_leave_rows_for_a_batch_integrated_moments_ago(pg_url: str) -> None:
    """A staging writer's try does nothing when a batch was integrated less than the interval ago (many writers'
    tries make few large batches); `aios audit integrate` (no interval) always integrates."""
    store = open_store(pg_url)
    store.stage_many([AuditEvent(kind="task", actor="a", subject="one")])  # integrates, stamps the time
    with psycopg.connect(pg_url, autocommit=True) as conn:
        _stage_directly(pg_url, "two")
        with conn.transaction():
            assert pgi.integrate_rows(conn, gap=3600.0) is None  # the last batch is seconds old
        assert conn.execute("SELECT count(*) FROM audit_staged").fetchone() == (1,)
        with conn.transaction():
            assert pgi.integrate_rows(conn, gap=0.0) == ""
    assert _check_log(pg_url, {}) == ["one", "two"]
    store.close()


def test_a_backlog_longer_than_a_batch_is_not_held_to_one_batch_an_interval(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A staging writer's try is skipped after a batch integrated moments ago only when that batch was not full: with
    a backlog, batch follows batch (else integration would be capped at a batch an interval, and a backlog staged
    faster than that would grow without bound)."""
    monkeypatch.setattr(pgi, "BATCH", 2)
    store = open_store(pg_url)
    for i in range(5):
        _stage_directly(pg_url, f"backlog-{i}")
    tries = []
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for _ in range(4):
            with conn.transaction():
                got = pgi.integrate_rows(conn, gap=3600.0)
            tries.append((got, conn.execute("SELECT count(*) FROM audit_staged").fetchone()[0]))
    # full, full, then the last row (not full), then a skip: the last batch was moments ago and not full
    assert tries == [("", 3), ("", 1), ("", 0), (None, 0)]
    assert _check_log(pg_url, {}) == [f"backlog-{i}" for i in range(5)]
    store.close()


def test_an_integrate_batch_is_bounded_in_events_not_only_in_rows(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bulk writers stage many events a row: a batch stops at MAX_BATCH_EVENTS events (a row larger than that is
    integrated alone), so an integrator's memory does not grow with what rows hold; the next try is not held back."""
    monkeypatch.setattr(pgi, "MAX_BATCH_EVENTS", 5)
    store = open_store(pg_url)
    rows = [[f"r{r}-{i}" for i in range(n)] for r, n in enumerate([3, 3, 7, 1, 1])]
    for subjects in rows:
        _stage_directly(pg_url, *subjects, columns=False)
    sizes = []
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for _ in range(4):
            before = store.size()
            with conn.transaction():
                assert pgi.integrate_rows(conn, gap=3600.0) == ""  # never skipped while rows are left behind
            sizes.append(store.size() - before)
        with conn.transaction():
            assert pgi.integrate_rows(conn, gap=3600.0) is None  # nothing left: the last batch holds the interval
    assert sizes == [3, 3, 7, 2]  # 3 (+3 would pass 5), 3, the row of 7 alone, then 1 + 1
    assert _check_log(pg_url, {}) == [s for subjects in rows for s in subjects]
    store.close()


def test_an_append_behind_a_backlog_larger_than_one_batch_is_sequenced_after_it(pg_url: str) -> None:
    """The server-side integrator stops a batch at MAX_BATCH_EVENTS events too, and the appending call integrates
    batch after batch until its own row: every staged event comes first, in order, then the append's."""
    store = open_store(pg_url)
    per_row = pgi.MAX_BATCH_EVENTS // 2 + 1  # two rows pass the bound: three batches
    rows = [[f"b{r}-{i}" for i in range(per_row)] for r in range(3)]
    for subjects in rows:
        _stage_directly(pg_url, *subjects)
    rec = store.append(AuditEvent(kind="task", actor="late", subject="late"))
    assert rec.seq == 3 * per_row + 1
    subjects = [r.event.subject for r in store.scan()]
    assert subjects == [s for row in rows for s in row] + ["late"]
    assert verify_store(store).ok and store.read_sql("SELECT count(*) FROM audit_staged") == [(0,)]
    store.close()


def test_the_log_refuses_a_multi_row_insert_with_a_gap_or_a_fork(pg_url: str) -> None:
    """The no-fork check runs once per statement over the rows it inserted (set-based, as the integrator's COPY
    inserts): a row must continue the row before it, in the table or in the same statement."""
    store = open_store(pg_url)
    recs = store.append_many([AuditEvent(kind="task", actor=f"a{i}") for i in range(3)])
    cols = "recorded_at, kind, subject, execution, task, entry"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        ok_then_gap = (
            f"INSERT INTO audit_log SELECT seq + 3, {cols}, leaf_hash || 'x', prev_hash, chain_hash FROM audit_log"
            " WHERE seq IN (1, 3)"
        )
        forked = (
            f"INSERT INTO audit_log SELECT 4, {cols}, 'l', '{recs[0].chain_hash}', 'c' FROM audit_log WHERE seq = 1"
        )
        for sql in (ok_then_gap, forked):
            with pytest.raises(psycopg.errors.RaiseException, match="gap or fork"):
                conn.execute(sql)
        trig = conn.execute(
            "SELECT tgtype & 1 FROM pg_trigger WHERE tgname = 'audit_log_no_fork' AND tgrelid = 'audit_log'::regclass"
        ).fetchall()
        assert trig == [(0,)]  # one trigger, statement level (bit 0 clear)
    assert store.size() == 3 and verify_store(store).ok
    store.close()


_STAGE_THEN_INTEGRATE = """
import sys, time
import psycopg
from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit.stores import open_store
from flytekitplugins.aios_audit.stores import pg_integrate as pgi

store = open_store(sys.argv[1])
for i in range(3):
    store.stage_many([AuditEvent(kind="task", actor="service:victim", subject=f"victim-{i}")])
    sys.stdout.write(f"staged victim-{i}\\n")
    sys.stdout.flush()
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    while True:  # until the test kills it: the hook pauses in the first try that takes a batch (before COMMIT)
        with conn.transaction():
            pgi.integrate_rows(conn)  # None while another writer's try holds the log's lock, "" when none staged
        time.sleep(0.005)
"""


def test_a_staging_integrator_killed_mid_batch_loses_nothing(pg_url: str, tmp_path: Path) -> None:
    """A staging writer's integration (the Python integrator) is killed with SIGKILL after its COPYs, before COMMIT,
    while other staging writers keep acknowledging: its batch rolls back, stays staged, and every acknowledged event
    is sequenced exactly once."""
    open_store(pg_url).append(AuditEvent(kind="task", actor="before", subject="before"))
    others = [_spawn(pg_url, f"o{i}", 0, AIOS_TEST_STAGE="1") for i in range(3)]
    early = []
    for p in others:  # every other writer is staging (its store open) before the victim starts
        assert p.stdout is not None
        early.append(p.stdout.readline())
    marker = tmp_path / "integrating"
    # the victim stages like the others, then integrates as their tries do but without the interval (as one of their
    # tries would, had it not been skipped): its turn must not hang on winning the interval against three writers
    victim = subprocess.Popen(
        [sys.executable, "-c", _STAGE_THEN_INTEGRATE, pg_url],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO), pgi.PAUSE_ENV: str(marker)},
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert victim.poll() is None and time.monotonic() < deadline, "the integrator never reached its pause"
        time.sleep(0.02)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        at_pause = conn.execute("SELECT count(*) FROM audit_staged").fetchone()[0]
        time.sleep(0.5)  # the others keep acknowledging while the victim holds the lock
        assert conn.execute("SELECT count(*) FROM audit_staged").fetchone()[0] > at_pause
    for p in [*others, victim]:
        p.send_signal(signal.SIGKILL)
    acked = [s for p, head in zip(others, early, strict=True) for s in _staged_subjects(head + p.communicate()[0])]
    acked += _staged_subjects(victim.communicate()[0])
    store = open_store(pg_url)
    store.integrate_staged()
    subjects = _check_log(pg_url, {})
    missing = set(acked) - set(subjects)
    assert not missing and len(acked) > 20, (sorted(missing)[:5], len(acked))
    store.close()


def test_an_append_cut_off_after_staging_says_it_may_be_in_and_is_sequenced_once(pg_url: str) -> None:
    """An append whose connection is lost while it waits for an integrator, after the server committed its staged
    row: the error says the events may be in and must not be appended again (it said "The action was not recorded",
    so a caller that retried recorded them twice), and the next integrator sequences them exactly once."""
    tag = f"aios_test_{uuid.uuid4().hex[:10]}"  # this test's sessions: another test's waiting append is not cut off
    store = open_store(f"{pg_url}&application_name={tag}")
    store.append_many([AuditEvent(kind="task", actor="a", subject="first")])
    errors: list[BaseException] = []

    def write() -> None:
        try:
            store.append_many([AuditEvent(kind="task", actor="a", subject="cut-off")])
        except BaseException as e:
            errors.append(e)

    with psycopg.connect(pg_url, autocommit=True) as holder:
        holder.execute(f"SELECT pg_advisory_lock({pgi.LOCK})")  # an integrator at work: the append stages and waits
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        deadline = time.monotonic() + 30
        while holder.execute("SELECT count(*) FROM audit_staged").fetchone() != (1,):
            assert time.monotonic() < deadline, "the append never staged its row"
            time.sleep(0.01)
        waiting = "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'CALL aios_audit_append%%'"
        (pid,) = holder.execute(waiting + " AND application_name = %s", (tag,)).fetchone()
        holder.execute("SELECT pg_terminate_backend(%s)", (pid,))  # the connection is lost while it waits
        writer.join(30)
        holder.execute(f"SELECT pg_advisory_unlock({pgi.LOCK})")
    assert not writer.is_alive()
    (error,) = errors
    assert "not recorded" not in str(error) and "do not append them again" in str(error), str(error)
    from flytekitplugins.aios_audit.stores import AuditOutcomeUnknown

    assert isinstance(error, AuditOutcomeUnknown), repr(error)
    assert store.integrate_staged() == 1
    store.close()
    assert _check_log(pg_url, {}) == ["first", "cut-off"]


def test_a_staging_call_whose_integration_try_fails_still_acknowledges(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``stage_many`` commits the staged row, then tries to integrate: when that try fails (here a lost connection,
    injected), the row is durably staged, so the call acknowledges it (it raised "The events were not recorded", and
    a caller that staged again had them sequenced twice); the next integrator sequences it once."""
    store = open_store(pg_url)
    store.append_many([AuditEvent(kind="task", actor="a", subject="first")])

    def lost(conn: object, own: object = None, gap: float = 0.0) -> None:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(pgi, "integrate_rows", lost)
    ack = store.stage_many([AuditEvent(kind="task", actor="a", subject="staged")])
    monkeypatch.undo()
    assert ack.staged_id is not None and ack.count == 1 and not store.is_integrated(ack)
    assert store.integrate_staged() == 1 and store.is_integrated(ack)
    store.close()
    assert _check_log(pg_url, {}) == ["first", "staged"]
