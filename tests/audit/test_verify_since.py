"""`aios audit verify --checkpoint` reads each record after the checkpoint once: the walk hands the entries it has
checked to the projection check and the claims check, and a second process does all three for the upper half."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_audit import incremental as inc
from flytekitplugins.aios_audit.checkpoint import Checkpoint
from flytekitplugins.aios_audit.projections import derive, derive_each
from flytekitplugins.aios_audit.stores import claim
from flytekitplugins.aios_audit.stores.sqlite import SQLiteAuditStore
from flytekitplugins.aios_audit.trust import TrustedKeys
from flytekitplugins.aios_audit.verify import verify_store
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings

EX = {"project": "p", "domain": "d", "name": "run-1", "task_name": "t"}


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def _db(aios_env: Path) -> sqlite3.Connection:
    c = sqlite3.connect(aios_env / "audit.db", isolation_level=None)
    for trig in ("audit_log_no_update", "audit_log_no_delete", "audit_log_no_fork"):
        c.execute(f"DROP TRIGGER IF EXISTS {trig}")
    for trig in ("audit_proj_lineage_no_update", "audit_proj_catalog_no_delete", "audit_claims_no_delete"):
        c.execute(f"DROP TRIGGER IF EXISTS {trig}")
    return c


def _mixed(start: int, n: int, store: Any = None) -> None:
    """Task records with an input each (lineage rows), every fifth one sealing a claim, every seventh a catalog
    record (governance rows); to the settings' store, or ``store``."""
    events = []
    for i in range(start, start + n):
        attrs: dict[str, Any] = {"claims": [claim(f"k-{i}", "h")]} if i % 5 == 0 else {}
        if i % 7 == 0:
            attrs = {"op": "register", "name": f"m{i}", "version": "1", "source_digest": f"sha256:{i:064x}"}
            events.append(AuditEvent(kind="catalog", actor="service:x", subject=f"m{i}", attributes=attrs))
            continue
        events.append(
            AuditEvent(kind="task", actor="service:x", execution=EX, inputs={"x": f"sha256:{i:064x}"}, attributes=attrs)
        )
    (store or audit_log(get_settings())).append_many(events)


@pytest.fixture
def split(aios_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """30 records, a checkpoint of them, then 40 more; two processes from 2 records after a checkpoint on."""
    monkeypatch.setenv("AIOS_VERIFY_WORKERS", "2")
    monkeypatch.setattr(inc, "SPLIT_MIN", 2)
    _mixed(0, 30)
    cp = tmp_path / "cp"
    assert _run("audit", "checkpoint", "--out", str(cp))[0] == 0
    _mixed(30, 40)
    return cp


def _verify_json(cp: Path) -> tuple[int, dict[str, Any]]:
    code, out = _run("audit", "verify", "--checkpoint", str(cp), "--json")
    return code, json.loads(out.strip().splitlines()[-1])


def test_two_processes_give_the_full_walks_root_and_head(split: Path) -> None:
    code, doc = _verify_json(split)
    full = verify_store(audit_log(get_settings()), workers=1)
    assert code == 0 and doc["ok"] and doc["workers"] == 2 and doc["mode"] == "incremental", doc
    assert (doc["root_hash"], doc["head_hash"], doc["frontier"]) == (full.root_hash, full.head_hash, full.frontier)
    assert doc["projection_problems"] == [] and doc["claims_problems"] == [] and doc["projection_note"] == ""


def test_aligned_blocks_of_the_second_process_fold_into_the_same_root(
    split: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large part comes back as the roots of aligned blocks (here of 4 records: 40 after the checkpoint)."""
    monkeypatch.setattr(inc, "BLOCK", 4)
    assert inc._split(30, 70, 2) == (48, 4)
    code, doc = _verify_json(split)
    full = verify_store(audit_log(get_settings()), workers=1)
    assert code == 0 and doc["workers"] == 2 and doc["root_hash"] == full.root_hash, doc


@pytest.mark.parametrize("where", [36, 62])
def test_an_edit_in_either_half_is_named_as_one_process_names_it(split: Path, aios_env: Path, where: int) -> None:
    """In this process's half (36) or the second's (62: its half is walked again here, which names it)."""
    c = _db(aios_env)
    entry = c.execute("SELECT entry FROM audit_log WHERE seq = ?", (where,)).fetchone()[0]
    c.execute("UPDATE audit_log SET entry = ? WHERE seq = ?", (entry.replace(b"service:x", b"service:y"), where))
    code, out = _run("audit", "verify", "--checkpoint", str(split))
    assert code == 1 and out.startswith(f"FAILED at seq {where}: edited"), out


def test_edits_in_both_halves_name_the_first(split: Path, aios_env: Path) -> None:
    c = _db(aios_env)
    for seq in (41, 66):
        entry = c.execute("SELECT entry FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0]
        c.execute("UPDATE audit_log SET entry = ? WHERE seq = ?", (entry.replace(b"service:x", b"service:z"), seq))
    code, out = _run("audit", "verify", "--checkpoint", str(split))
    assert code == 1 and out.startswith("FAILED at seq 41: edited"), out


def test_projection_and_claims_problems_of_both_halves_are_found(split: Path, aios_env: Path) -> None:
    c = _db(aios_env)
    forged = "sha256:" + "f" * 64
    c.execute("UPDATE audit_proj_lineage SET parent = ? WHERE seq = 33 AND pos = 0", (forged,))  # this process's
    c.execute("UPDATE audit_proj_lineage SET parent = ? WHERE seq = 67 AND pos = 0", (forged,))  # the second's
    c.execute("DELETE FROM audit_proj_catalog WHERE seq = 64")  # m63, the second's half
    c.execute("DELETE FROM audit_claims WHERE claim IN ('k-40', 'k-65')")  # one in each half
    code, doc = _verify_json(split)
    assert code == 1 and not doc["ok"] and doc["workers"] == 2, doc
    lines = doc["projection_problems"]
    assert [line.split(" at seq ")[1].split(":")[0] for line in lines] == ["33", "64", "67"], lines
    assert "projection_changed in audit_proj_lineage at seq 33" in lines[0] and forged in lines[0]
    assert lines[1].startswith("projection_missing in audit_proj_catalog at seq 64")
    assert "projection_changed in audit_proj_lineage at seq 67" in lines[2]
    claims = doc["claims_problems"]
    assert len(claims) == 2 and "claim_missing at seq 41: k-40" in claims[0] and "k-65" in claims[1], claims


def test_records_that_vanish_during_the_walk_are_reported(split: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check walks up to the size the log had when it began: records gone meanwhile are named, not skipped."""
    original = SQLiteAuditStore.scan_sealed

    def short(self: SQLiteAuditStore, start: int = 1, end: int | None = None) -> Any:
        return (row for row in original(self, start, end) if row[0] < 60)

    monkeypatch.setattr(SQLiteAuditStore, "scan_sealed", short)
    cp = Checkpoint.load(split)
    for workers in (1, 2):
        got = inc.verify_since(
            audit_log(get_settings()), cp, TrustedKeys.from_settings(get_settings()), workers=workers
        )
        assert not got.result.ok and got.result.first_bad_seq == 60 and got.result.problem == "truncated", got


def test_one_process_below_the_split_size(split: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inc, "SPLIT_MIN", 41)
    code, doc = _verify_json(split)
    assert code == 0 and doc["workers"] == 1, doc


def test_a_continuing_checkpoint_walks_the_records_after_the_last_in_two_processes(split: Path, tmp_path: Path) -> None:
    """``aios audit checkpoint`` continuing from an older checkpoint (and the review report from one) walks the
    records after it as the verifier does: the upper half in a second process, counted by both, the same root."""
    store, trusted, cp = audit_log(get_settings()), TrustedKeys.from_settings(get_settings()), Checkpoint.load(split)
    seen: list[int] = []
    two = inc.verify_from(store, cp, trusted, workers=2, progress=seen.append)
    one = inc.verify_from(store, cp, trusted, workers=1)
    full = verify_store(store, workers=1)
    assert two.ok and two.workers == 2 and one.ok and one.workers == 1, (two, one)
    assert (two.root_hash, two.head_hash, two.frontier) == (full.root_hash, full.head_hash, full.frontier)
    assert seen[-1] == 40 and seen == sorted(seen), seen
    counted: list[int] = []  # the verifier's bar ends at every record too, not at this process's half
    assert inc.verify_since(store, cp, trusted, workers=2, progress=counted.append).result.workers == 2
    assert counted[-1] == 40 and counted == sorted(counted), counted
    code, out = _run("audit", "checkpoint", "--out", str(tmp_path / "cp2"), "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["verified_after"] == 30 and doc["tree_size"] == 70 and doc["root_hash"] == full.root_hash, doc


def test_the_bar_keeps_counting_while_the_second_process_is_waited_for(
    split: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This process's half done, the child's count is reported every quarter second until its part comes in."""
    import time

    part = inc._part

    def slow(*args: Any) -> Any:
        time.sleep(1.2)  # in the child: this process waits for it
        return part(*args)

    monkeypatch.setattr(inc, "_part", slow)
    store, trusted, cp = audit_log(get_settings()), TrustedKeys.from_settings(get_settings()), Checkpoint.load(split)
    seen: list[int] = []
    got = inc.verify_from(store, cp, trusted, workers=2, progress=seen.append)
    assert got.ok and got.workers == 2, got
    assert seen.count(20) >= 3 and seen[-1] == 40 and seen == sorted(seen), seen  # 20: this process's half


@pytest.mark.parametrize("where", [36, 62])
def test_a_continuing_checkpoint_refuses_an_edit_in_either_half(
    split: Path, aios_env: Path, tmp_path: Path, where: int
) -> None:
    """The second process's finding (62) is walked again here and named as one process names it; nothing is signed."""
    c = _db(aios_env)
    entry = c.execute("SELECT entry FROM audit_log WHERE seq = ?", (where,)).fetchone()[0]
    c.execute("UPDATE audit_log SET entry = ? WHERE seq = ?", (entry.replace(b"service:x", b"service:y"), where))
    store, trusted, cp = audit_log(get_settings()), TrustedKeys.from_settings(get_settings()), Checkpoint.load(split)
    got = inc.verify_from(store, cp, trusted, workers=2)
    assert not got.ok and got.first_bad_seq == where and got.problem == "edited", got
    code, out = _run("audit", "checkpoint", "--out", str(tmp_path / "cp2"))
    assert code != 0 and "refusing to sign" in out and f"seq {where}: edited" in out, out
    assert not (tmp_path / "cp2").exists()


ENTRIES = [
    b'{"event":{"kind":"catalog","attributes":{"op":"register","name":"m","version":"2"},"execution":null},'
    b'"recorded_at":"2026-01-01T00:00:00+00:00","seq":3}',
    b'{"event":{"kind":"approval_request","subject":"r1","attributes":{"request":{"request_id":"r1",'
    b'"content_key":"c","gate":"g","expires_at":"2026-01-01T01:00:00+00:00"}}},"recorded_at":"x","seq":4}',
    b'{"event":{"kind":"task","inputs":{"x":"sha256:' + b"a" * 64 + b'"},"execution":{"project":"p","domain":"d",'
    b'"name":"n"}},"recorded_at":"2026-01-01T00:00:00+00:00","seq":5}',
    b'{"event":{"kind":"catalog","attributes":{"op":"register","name":"m","version":1e999}},"seq":6}',  # inf
    b'{"event":{"kind":"catalog","attributes":{"name":"big","version":123456789012345678901234567890}},"seq":7}',
    b'{"event":{"kind":"catalog","attributes":{"name":NaN}},"seq":8}',  # json reads NaN; orjson refuses it
    b'{"event":{"kind":"task"},"seq":9}',  # no recorded_at: no lineage rows
    b'{"event":["kind","catalog"],"seq":10}',
    b'["event"]',
    b"not json at all",
    b'{"event":{"kind":"catalog","attributes":{"name":"\\ud800"}},"recorded_at":"t","seq":11}',  # lone surrogate
    # the approval kinds take the fast parse: numbers where strings belong (big ones read as floats by it) and
    # the values it refuses must derive what the standard parse derives
    b'{"event":{"kind":"approval_request","subject":"r2","attributes":{"request":{"request_id":"r2",'
    b'"content_key":123456789012345678901234567890,"gate":1e3,"expires_at":18446744073709551616}}},"seq":13}',
    b'{"event":{"kind":"approval_decision","subject":"r2","attributes":{"decision":{"approver":'
    b'99999999999999999999999,"action":["approve"]}}},"recorded_at":"t","seq":14}',
    b'{"event":{"kind":"approval_decision","subject":123456789012345678901234,"attributes":{}},"seq":15}',
    b'{"event":{"kind":"approval_verified","subject":"r2","attributes":{"consumed_by":-9223372036854775809}},"seq":16}',
    b'{"event":{"kind":"approval_refused","subject":"r\\u00e9","attributes":{"consumed_by":"x"}},"seq":17}',
    b'{"event":{"kind":"approval_refused","subject":"r3","attributes":{"consumed_by":Infinity}},"seq":18}',
    b'{"event":{"kind":"approval_request","attributes":{"request":{"request_id":"r4","content_key":"c",'
    b'"expires_at":"2026-01-01T01:00:00"}},"kind":"approval_decision","subject":"r4"},"seq":19}',  # kind twice
]


@pytest.mark.parametrize("entry", ENTRIES)
def test_derived_once_is_what_the_writers_derive(entry: bytes) -> None:
    """The walk's single parse must give exactly the rows :func:`derive` gives (what the stores write)."""
    governance, lineage = derive_each(12, entry)
    everything = derive(12, entry)
    assert [*governance, *(("audit_proj_lineage", r) for r in lineage)] == everything


def test_batch_certainty_is_per_row_and_never_looser_than_the_row_check() -> None:
    """A row the batch check is sure of passes the single-row check too; an unusual row leaves the others sure."""
    from flytekitplugins.aios_audit.columns import _TAIL, SEP, batch_certain, columns_match

    def row(kind: str, subject: str, ex: str, seq: int, nested: bool = False) -> tuple[bytes, bytes, bytes, bytes]:
        attrs = '{"execution":"x"}' if nested else "{}"
        execution = f'{{"project":"p","domain":"d","name":"{ex}","task_name":"t"}}'
        entry = (
            f'{{"event":{{"attributes":{attrs},"execution":{execution},"inputs":{{}},"kind":"{kind}",'
            f'"subject":"{subject}"}},"recorded_at":"2026-01-01T00:00:00+00:00","seq":{seq}}}'
        ).encode()
        tail = _TAIL % (subject.encode(), b"2026-01-01T00:00:00+00:00", seq)
        return entry, tail, kind.encode() + b'"', f"p/d/{ex}".encode() + SEP + b"t"

    rows = [row("task", f"s{i}", "run", i) for i in range(1, 9)]
    rows[2] = row("approval_request", "s3", "run", 3, nested=True)  # "execution" twice: not sure
    entry, tail, kind, pair = rows[4]
    rows[4] = (entry, tail, b'policy_decision"', pair)  # the kind column edited
    entry, tail, kind, pair = rows[5]
    rows[5] = (entry, tail, kind, b"p/d/other" + SEP + b"t")  # the execution column edited
    entry, tail, kind, pair = rows[6]
    rows[6] = (entry, tail, None, pair)  # a NULL column
    sure = batch_certain(*(list(col) for col in zip(*rows, strict=True)))
    assert sure == [True, True, False, True, False, False, False, True]
    assert sure == [columns_match(*r) for r in rows]


def test_postgresql_two_processes_find_what_one_finds(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    from flytekitplugins.aios_audit.proofs import make_checkpoint
    from flytekitplugins.aios_audit.stores import open_store

    monkeypatch.setattr(inc, "SPLIT_MIN", 2)
    store = open_store(pg_url)
    _mixed(0, 30, store)
    cp = make_checkpoint(store, get_settings().signing_key)
    _mixed(30, 40, store)
    trusted = TrustedKeys.from_settings(get_settings())
    got = inc.verify_since(store, cp, trusted, workers=2)
    assert got.result.ok and got.result.workers == 2 and got.projections == [] and got.claims == [], got
    assert got.result.root_hash == verify_store(store, workers=1).root_hash
    with psycopg.connect(pg_url, autocommit=True) as c:  # the attacker: table owner, triggers off
        for table in ("audit_proj_lineage", "audit_proj_catalog", "audit_claims"):
            c.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        c.execute("UPDATE audit_proj_lineage SET parent = 'sha256:' || repeat('f', 64) WHERE seq = 67 AND pos = 0")
        c.execute("DELETE FROM audit_proj_catalog WHERE seq = 36")  # m35, this process's half
        c.execute("DELETE FROM audit_claims WHERE claim = 'k-65'")
        c.execute("INSERT INTO audit_proj_lineage VALUES (500, 0, '', 'sha256:ab', 'input:x')")  # beyond the log
    two = inc.verify_since(store, cp, trusted, workers=2)
    one = inc.verify_since(store, cp, trusted, workers=1)
    assert two.result.workers == 2 and one.result.workers == 1
    assert [p.line() for p in two.projections] == [p.line() for p in one.projections]
    assert [(p.code, p.table, p.seq) for p in two.projections] == [
        ("projection_missing", "audit_proj_catalog", 36),
        ("projection_changed", "audit_proj_lineage", 67),
        ("projection_extra", "audit_proj_lineage", 500),
    ]
    assert [(p.code, p.key) for p in two.claims] == [(p.code, p.key) for p in one.claims] == [("claim_missing", "k-65")]


def test_postgresql_readers_are_kept_only_when_their_call_ran_to_the_end(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from flytekitplugins.aios_audit.stores import open_store

    store = open_store(pg_url)
    _mixed(0, 3, store)
    assert list(store.iter_sql("SELECT seq FROM audit_log ORDER BY seq")) == [(1,), (2,), (3,)]
    opened: list[str] = []
    connect = psycopg.connect

    def counting(*args: Any, **kwargs: Any) -> Any:
        opened.append("x")
        return connect(*args, **kwargs)

    monkeypatch.setattr(psycopg, "connect", counting)
    for i in range(101, 104):  # each in a transaction of its own: a row committed meanwhile is seen by the next
        assert len(list(store.iter_sql("SELECT seq FROM audit_log"))) == store.size()
        _mixed(i, 1, store)
    assert opened == []  # the kept reader, three times
    unfinished = store.iter_sql("SELECT generate_series(1, 100000)")
    next(unfinished)
    unfinished.close()  # left half read: its connection (and transaction) is closed, not kept
    assert store._readers() == []  # type: ignore[attr-defined]
    assert list(store.iter_sql("SELECT 1")) == [(1,)] and len(opened) == 1
    pid = store._readers()[0].info.backend_pid  # type: ignore[attr-defined]
    with connect(pg_url, autocommit=True) as c:  # the server ends the idle reader (a restart, an idle timeout)
        c.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert list(store.iter_sql("SELECT 2")) == [(2,)] and len(opened) == 2  # once more, on a new one
    store.close()
    assert store._readers() == []  # type: ignore[attr-defined]


def test_postgresql_columns_print_as_the_entry_writes_them(pg_url: str) -> None:
    """The server builds ``tail`` with Python's ISO 8601 (no fraction when it is zero) and NULLs as nothing."""
    import datetime as dt

    import psycopg

    from flytekitplugins.aios_audit.columns import _TAIL, SEP, select_sql

    times = [
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(999, 12, 31, 23, 59, 59, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 6, 30, 12, 30, 45, 120000, tzinfo=dt.UTC),
    ]
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(
            "CREATE TABLE audit_log (seq bigint, kind text, subject text, recorded_at timestamptz, "
            "execution text, task text)"
        )
        for seq, when in enumerate(times, 1):
            c.execute("INSERT INTO audit_log VALUES (%s, 'task', 's', %s, 'p/d/n', 't')", (seq, when))
        c.execute("INSERT INTO audit_log VALUES (9, 'task', NULL, NULL, 'p/d/n', NULL)")
        rows = c.execute(f"SELECT seq, {select_sql('postgresql')} FROM audit_log ORDER BY seq").fetchall()
    for (seq, tail, kind, pair), when in zip(rows, times, strict=False):
        assert tail == _TAIL % (b"s", when.astimezone(dt.UTC).isoformat().encode(), seq), tail
        assert (kind, pair) == (b'task"', b"p/d/n" + SEP + b"t")
    assert rows[-1][1:] == (b',"subject":""},"recorded_at":"","seq":9}', None, b"p/d/n" + SEP)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_full_walk_checks_the_rows_of_each_record_it_walks(aios_env: Path, workers: int) -> None:
    """Both halves of a two-process full walk (blocks of 4 records here) re-derive their records' rows."""
    from flytekitplugins.aios_audit import projections as pj

    _mixed(0, 70)
    c = _db(aios_env)
    forged = "sha256:" + "e" * 64
    c.execute("UPDATE audit_proj_lineage SET parent = ? WHERE seq = 3 AND pos = 0", (forged,))  # the lower half
    c.execute("DELETE FROM audit_proj_catalog WHERE seq = 57")  # m56, the upper half
    store = audit_log(get_settings())
    missing = {g.state: pj.missing_through(store, g) for g in pj.GROUPS}
    found: list[Any] = []
    result = verify_store(store, workers=workers, block=4, rows=(missing, found))
    assert result.ok and result.workers == workers, result
    assert [(p.code, p.table, p.seq) for p in found] == [
        ("projection_changed", "audit_proj_lineage", 3),
        ("projection_missing", "audit_proj_catalog", 57),
    ]
    assert [p.line() for p in found] == [p.line() for p in pj.verify_projections(store)[0]]


def test_a_failed_full_walk_reports_no_rows(aios_env: Path) -> None:
    from flytekitplugins.aios_audit import projections as pj

    _mixed(0, 40)
    c = _db(aios_env)
    c.execute("DELETE FROM audit_proj_catalog WHERE seq = 8")
    entry = c.execute("SELECT entry FROM audit_log WHERE seq = 30").fetchone()[0]
    c.execute("UPDATE audit_log SET entry = ? WHERE seq = 30", (entry.replace(b"service:x", b"service:y"),))
    store = audit_log(get_settings())
    found: list[Any] = []
    missing = {g.state: pj.missing_through(store, g) for g in pj.GROUPS}
    result = verify_store(store, workers=2, block=4, rows=(missing, found))
    assert not result.ok and result.first_bad_seq == 30 and found == []


def test_a_failed_full_verification_prints_no_projection_note(aios_env: Path) -> None:
    """A walk that fails reports the first bad record and nothing of the tables (they were not checked)."""
    _mixed(0, 12)
    c = _db(aios_env)
    entry = c.execute("SELECT entry FROM audit_log WHERE seq = 5").fetchone()[0]
    c.execute("UPDATE audit_log SET entry = ? WHERE seq = 5", (entry.replace(b"service:x", b"service:y"),))
    code, out = _run("audit", "verify", "--json")
    doc = json.loads(out.strip().splitlines()[-1])
    assert code == 1 and doc["first_bad_seq"] == 5 and doc["problem"] == "edited", doc
    assert (doc["projection_problems"], doc["projection_note"], doc["claims_problems"]) == ([], "", []), doc
