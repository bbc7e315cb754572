"""What a store writer (SQL on the audit database, no signing key) could do that the readers and writers of the log
did not notice (review of 2026-12-06 from 12:45 UTC), each reproduced on the code before its fix."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path

import psycopg
import pytest

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit.stores import AuditOutcomeUnknown, open_store
from flytekitplugins.aios_audit.stores import pg_integrate as pgi


@pytest.mark.postgres
def test_a_receipt_the_log_does_not_bear_out_is_not_an_acknowledgement(pg_url: str) -> None:
    """The attacker holds the log's lock so that a writer stages and waits, deletes the staged row and writes a
    receipt for it: the append returned sealed records that were in no log (and `aios audit verify` passed, the
    suppression unseen). Now the writer checks the receipt against the log and does not report success."""
    store = open_store(pg_url)
    store.append(AuditEvent(kind="task", actor="service:x", subject="first", status="ok"))
    attacker = psycopg.connect(pg_url, autocommit=True)
    try:
        attacker.execute(f"SELECT pg_advisory_lock({pgi.LOCK})")
        size, head = attacker.execute("SELECT seq, chain_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        out: dict[str, object] = {}

        def writer() -> None:
            event = AuditEvent(kind="task", actor="service:pipeline", subject="payment-posted", status="ok")
            try:
                out["records"] = store.append_many([event])
            except Exception as e:
                out["error"] = e

        t = threading.Thread(target=writer)
        t.start()
        sid = None
        for _ in range(400):
            row = attacker.execute("SELECT id FROM audit_staged ORDER BY id DESC LIMIT 1").fetchone()
            if row:
                sid = row[0]
                break
            time.sleep(0.05)
        assert sid is not None, "the writer staged nothing"
        attacker.execute("DELETE FROM audit_staged WHERE id = %s", (sid,))
        when = json.dumps(dt.datetime.now(dt.UTC).isoformat())
        attacker.execute("INSERT INTO audit_receipts VALUES (%s, %s)", (sid, f"{when}|{sid}:{size + 1}:{head}"))
        t.join(60)
        attacker.execute(f"SELECT pg_advisory_unlock({pgi.LOCK})")
    finally:
        attacker.close()
    assert "records" not in out, "the append reported records the log does not hold"
    error = out["error"]
    assert isinstance(error, AuditOutcomeUnknown)
    assert "do not proceed" in str(error) and "does not hold" in str(error)
    assert [r.event.subject for r in store.scan()] == ["first"]


def _append_by_sql(db: Path, events: list[AuditEvent], projection_rows: bool = True) -> int:
    """Chain ``events`` onto the SQLite log as the store would (columns, hashes), by SQL: a store writer's append."""
    import sqlite3

    from flytekitplugins.aios_audit import projections as pj
    from flytekitplugins.aios_audit.stores import seal_rows

    conn = sqlite3.connect(db)
    try:
        head = conn.execute("SELECT seq, chain_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        now = dt.datetime.now(dt.UTC)
        records, rows = seal_rows(head, events, now, now.isoformat())
        conn.executemany(f"INSERT INTO audit_log VALUES ({','.join('?' * len(rows[0]))})", rows)
        for table, values in pj.rows_for(rows).items() if projection_rows else ():
            conn.executemany(pj.BY_NAME[table].insert_sql(), values)
        conn.commit()
        return records[0].seq
    finally:
        conn.close()


@pytest.mark.parametrize("claims", [5, ["x"], [{"key": 1, "holder": "h"}], {"key": "k", "holder": "h"}])
def test_a_record_with_malformed_claims_is_reported_not_a_crash(tmp_path: Path, claims: object) -> None:
    """A correctly chained record whose claims attribute is not a list of claims (no pack code writes one) made
    `aios audit verify` die with `unexpected TypeError` naming no record, and the approvals fold with it; now the
    verifier reports the record (`claim_malformed`) and the fold counts it as claiming nothing."""
    from flytekitplugins.aios_approvals.state import Projection
    from flytekitplugins.aios_audit.claims import verify_claims
    from flytekitplugins.aios_audit.incremental import claims_since

    db = tmp_path / "audit.db"
    store = open_store(f"sqlite:///{db}")
    store.append(AuditEvent(kind="task", actor="service:x", subject="t0", status="ok"))
    bad = AuditEvent(kind="approval_verified", actor="a", subject="r1", status="ok", attributes={"claims": claims})
    seq = _append_by_sql(db, [bad])
    problems = verify_claims(store)
    assert [(p.code, p.seq) for p in problems] == [("claim_malformed", seq)]
    assert [(p.code, p.seq) for p in claims_since(store, seq - 1)] == [("claim_malformed", seq)]
    Projection().fold(store.scan())  # no exception: a malformed record counts for nothing


@pytest.mark.parametrize("claims", [0, "", {}, [], None])
def test_an_empty_claims_value_is_still_no_claim(tmp_path: Path, claims: object) -> None:
    """A falsy value of an attribute named claims (a domain field) claimed nothing before the malformed-claims check
    and must still append and verify (a re-review found the first version refusing the append)."""
    from flytekitplugins.aios_audit.claims import verify_claims

    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    store.append(AuditEvent(kind="task", actor="a", subject="x", status="ok", attributes={"claims": claims}))
    assert verify_claims(store) == []


def test_a_catalog_seed_with_malformed_entries_derives_rows_instead_of_crashing(tmp_path: Path) -> None:
    """A hand-written catalog seed whose entries are not a list stopped the projections' re-derivation (and with it
    `aios audit verify`, `rebuild-projections` and the append itself) with a TypeError; now it derives the row of no
    model, and a projection row deleted beside it is reported."""
    from flytekitplugins.aios_audit.projections import verify_projections

    db = tmp_path / "audit.db"
    store = open_store(f"sqlite:///{db}")
    attributes = {"op": "seed", "entries": 5}
    store.append(AuditEvent(kind="catalog", actor="a", subject="seed:x", status="seed", attributes=attributes))
    assert verify_projections(store) == ([], "")
    _append_by_sql(
        db, [AuditEvent(kind="catalog", actor="a", subject="s", status="seed", attributes=attributes)], False
    )
    assert [p.code for p in verify_projections(store)[0]] == ["projection_missing"]


def _sqlite(db: Path, *sql: tuple[str, tuple[object, ...]]) -> None:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        conn.executescript("DROP TRIGGER IF EXISTS audit_log_no_update;")
        for statement, params in sql:
            conn.execute(statement, params)
        conn.commit()
    finally:
        conn.close()


def _edited_store(tmp_path: Path, rehash: bool) -> tuple[Path, object]:
    """A log of three records whose first record's entry a store writer edited (and, with ``rehash``, whose leaf and
    chain hashes it recomputed with the next record's ``prev_hash``), its projections marked not built."""
    import hashlib

    db = tmp_path / "audit.db"
    store = open_store(f"sqlite:///{db}")
    for name in ("champion", "b", "c"):
        store.append(AuditEvent(kind="task", actor="service:x", subject=name, status="ok"))
    first = next(iter(store.scan()))
    entry = next(iter(store.scan_raw(1)))[1]
    edited = bytes(entry).replace(b'"subject":"champion"', b'"subject":"attacker"')
    assert edited != bytes(entry)
    sql = [
        ("UPDATE audit_proj_state SET missing_through = 3", ()),
        ("UPDATE audit_log SET entry = ? WHERE seq = 1", (edited,)),
    ]
    if rehash:
        leaf = hashlib.sha256(b"\x00" + edited).digest()
        chain = hashlib.sha256(bytes.fromhex(first.prev_hash) + leaf).hexdigest()
        sql += [
            ("UPDATE audit_log SET leaf_hash = ?, chain_hash = ? WHERE seq = 1", (leaf.hex(), chain)),
            ("UPDATE audit_log SET prev_hash = ? WHERE seq = 2", (chain,)),
        ]
    _sqlite(db, *sql)
    return db, open_store(f"sqlite:///{db}")


@pytest.mark.parametrize("rehash", [False, True])
def test_readers_that_fold_the_log_refuse_an_edited_record(tmp_path: Path, rehash: bool) -> None:
    """With the projections marked not built, the approvals and catalog readers fold the log through `scan_kinds`,
    which re-hashed nothing: an entry edited in place (a champion's digest, in the review) was decided on, as was a
    record rewritten with its hashes and its successor's link recomputed. Now every row read is re-hashed and linked
    to the one before it, and the readers refuse (fail closed)."""
    from flytekitplugins.aios_approvals.state import projection
    from flytekitplugins.aios_audit.stores import LogTampered

    _db, store = _edited_store(tmp_path, rehash)
    with pytest.raises(LogTampered, match=r"audit record [12] does not match its hashes"):
        list(store.scan_kinds(("task",)))  # type: ignore[attr-defined]
    with pytest.raises(LogTampered):
        projection(store).get("any-request")  # type: ignore[arg-type]


def test_a_deleted_claims_row_does_not_free_a_used_approval(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store writer dropped the claims table's delete trigger and deleted an approval's use claim: a second
    execution of the same launcher then used the approval again (a second payment on one sign-off), and `aios audit
    verify --checkpoint` passed. The sealed `approval_verified` record still names the execution that used it, and
    the approval is now refused to any other."""
    from flytekitplugins.aios_approvals import decide, require_approval, verify_requests
    from flytekitplugins.aios_approvals.evaluate import Env
    from flytekitplugins.aios_audit import audit_log
    from flytekitplugins.aios_core.context import local_run
    from flytekitplugins.aios_core.errors import GovernanceDenied
    from flytekitplugins.aios_core.settings import get_settings, reset_settings
    from flytekitplugins.aios_core.types import ApprovalRequirement, PolicyDecision

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:launcher")
    reset_settings()
    settings = get_settings()
    req = ApprovalRequirement(gate="payment-signoff", risk="medium", reason="payment-over-10k")
    decision = PolicyDecision(effect="require_approval", reasons=["amount"], approval=req, audit_record_id="ab" * 32)
    with local_run("run-1"):
        with pytest.raises(GovernanceDenied) as e:
            require_approval(decision, subject="sha256:invoice", requester="service:pipeline", settings=settings)
        rid = str(e.value.record_id)
        assert decide(rid, "user:carol", "approve", env=Env.load(settings)).accepted
        first = verify_requests("payment-signoff", [rid], env=Env.load(settings), after_signal=False)[0]
        assert first.status == "approved"
    db = Path(audit_log(settings).path)  # type: ignore[attr-defined]
    _sqlite(db, ("DROP TRIGGER audit_claims_no_delete", ()), ("DELETE FROM audit_claims", ()))
    with local_run("run-2"):
        second = verify_requests("payment-signoff", [rid], env=Env.load(settings), after_signal=False)[0]
    assert second.status == "refused" and "already used by execution" in second.reason, second
