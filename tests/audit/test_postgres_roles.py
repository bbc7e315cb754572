"""Least-privilege PostgreSQL roles: an auditor's read-only role runs the read commands; opening a store whose
schema is current runs no DDL and takes no lock; a role that may not create a missing schema is told what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from flytekitplugins.aios_audit import AuditEvent, AuditWriteError, nodes
from flytekitplugins.aios_audit.merkle import MerkleTree
from flytekitplugins.aios_audit.stores import open_store
from flytekitplugins.aios_audit.stores.pg_integrate import LOCK
from flytekitplugins.aios_core.context import ExecutionRef

pytestmark = pytest.mark.postgres
BIN = Path(sys.executable).parent
EX = ExecutionRef(project="aios", domain="production", execution_id="run-7", task_name="extract", node_id="n0")


def _as(url: str, role: str) -> str:
    """``url`` with its user replaced by ``role`` (the test server trusts local connections)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


def _schema(url: str) -> str:
    return url.rpartition("search_path%3D")[2]


@pytest.fixture
def role(pg_url: str) -> Iterator[str]:
    """A login role with no rights of its own (granted per test), dropped afterwards with whatever it was granted."""
    name = f"aios_role_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN")
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {name}")
        conn.execute(f"DROP ROLE {name}")


def _grant(pg_url: str, sql: str, role: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.format(schema=f'"{_schema(pg_url)}"', role=role))


def _aios(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "aios"), *args], env=env, capture_output=True, text=True, timeout=120)


def test_a_read_only_role_runs_the_read_commands(pg_url: str, role: str, tmp_path: Path) -> None:
    """An auditor's role with SELECT only: every store open used to run the schema's DDL, which needs the tables'
    owner, so no command could open the store ('permission denied for schema')."""
    store = open_store(pg_url)  # the owner creates the schema and writes the records
    recs = store.append_many(
        [AuditEvent(kind="task", actor="service:pipeline", subject=f"doc-{i}", execution=EX) for i in range(30)]
    )
    assert nodes.catch_up(store) == (30, 30)  # the owner integrates the tree levels (as rebuild-projections does)
    store.close()
    _grant(pg_url, "GRANT USAGE ON SCHEMA {schema} TO {role}", role)
    _grant(pg_url, "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}", role)
    reader = open_store(_as(pg_url, role))
    tree = nodes.stored_tree(reader, 30)  # the auditor proves from the stored levels
    assert tree is not None and tree.root() == MerkleTree([bytes.fromhex(r.record_id) for r in recs]).root()
    reader.close()
    env = dict(os.environ, AIOS_AUDIT_STORE=_as(pg_url, role), AIOS_STATE_DIR=str(tmp_path / "auditor"))
    cp, proof = tmp_path / "cp.txt", tmp_path / "proof.json"
    runs = {
        "show": ["audit", "show", "--limit", "5", "--json"],
        "execution": ["audit", "show", "--execution", "run-7", "--json"],
        "approvals": ["approvals", "list"],
        "trace": ["lineage", "trace", recs[3].record_id],
        "verify": ["audit", "verify", "--json"],
        "checkpoint": ["audit", "checkpoint", "--out", str(cp)],
        "prove": ["audit", "prove", recs[3].record_id, "--checkpoint", str(cp), "--out", str(proof)],
        "verify from checkpoint": ["audit", "verify", "--checkpoint", str(cp), "--json"],
    }
    for what, args in runs.items():
        done = _aios(args, env)
        assert done.returncode == 0, (what, done.stdout, done.stderr)
        assert "permission denied" not in done.stderr, (what, done.stderr)
    assert json.loads(_aios(runs["verify"], env).stdout)["ok"] is True
    assert [json.loads(line)["seq"] for line in _aios(runs["show"], env).stdout.splitlines()] == [26, 27, 28, 29, 30]
    assert json.loads(proof.read_text())["leaf_index"] == 3
    # and the role really is read-only: an append through it fails closed, nothing written
    reader = open_store(_as(pg_url, role))
    with pytest.raises(AuditWriteError):
        reader.append(AuditEvent(kind="task", actor="service:auditor"))
    assert reader.size() == 30
    reader.close()


def test_a_role_that_may_not_create_the_schema_is_told_what_to_do(pg_url: str, role: str) -> None:
    _grant(pg_url, "GRANT USAGE ON SCHEMA {schema} TO {role}", role)  # nothing created yet, no CREATE right
    with pytest.raises(AuditWriteError) as info:
        open_store(_as(pg_url, f"{role}:s3cret-pw"))  # the server trusts local connections: the password is unused
    msg = str(info.value)
    assert "s3cret-pw" not in msg and f"{role}:***@" in msg
    assert "lacks what this version of the pack needs (audit_claims" in msg
    assert "Open the store once with the role that owns the audit tables" in msg and "Traceback" not in msg
    open_store(pg_url).close()  # the owner creates it; then the same role opens it
    _grant(pg_url, "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}", role)
    assert open_store(_as(pg_url, role)).size() == 0


def test_opening_a_current_store_waits_for_no_writer(pg_url: str) -> None:
    """A reader opening the store used to take the log's advisory lock (held by writers while they integrate) and
    the triggers' table locks, so it queued behind every writer; now it reads the catalog and goes on."""
    open_store(pg_url).close()
    opened = threading.Event()
    with psycopg.connect(pg_url, autocommit=True) as writer:
        writer.execute(f"SELECT pg_advisory_lock({LOCK})")  # a writer integrating
        worker = threading.Thread(target=lambda: (open_store(pg_url).close(), opened.set()), daemon=True)
        worker.start()
        finished = opened.wait(10)
        writer.execute(f"SELECT pg_advisory_unlock({LOCK})")
    worker.join(30)
    assert finished, "opening the store waited for the writer's lock"


def test_a_disabled_or_redefined_trigger_or_replaced_function_is_put_back_by_the_next_open(pg_url: str) -> None:
    store = open_store(pg_url)
    store.append(AuditEvent(kind="action", actor="a", attributes={"claims": [{"key": "k-1", "holder": "a"}]}))
    store.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
        conn.execute(  # the same name, no longer refusing DELETE
            "CREATE OR REPLACE TRIGGER audit_claims_no_update BEFORE UPDATE ON audit_claims "
            "FOR EACH ROW EXECUTE FUNCTION aios_audit_refuse()"
        )
        conn.execute(
            "CREATE OR REPLACE FUNCTION aios_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; "
            "END $$"
        )
    open_store(pg_url).close()  # the owner's next open sees both and restores them
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for sql in ("UPDATE audit_log SET kind = 'x'", "DELETE FROM audit_log", "DELETE FROM audit_claims"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(sql)


def _doc_grants(schema: str, writer: str, auditor: str) -> list[str]:
    """The GRANT statements of docs/audit.md's 'Database roles', for ``schema`` and these roles."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text(encoding="utf-8")
    block = text.split("### Database roles", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("--")]
    sql = "\n".join(lines).replace("aios_writer", writer).replace("aios_auditor", auditor)
    sql = sql.replace("SCHEMA aios ", f'SCHEMA "{schema}" ').replace("aios.", f'"{schema}".')
    return [stmt.strip() for stmt in sql.split(";") if stmt.strip()]


def test_the_documented_grants_are_enough_to_write_and_to_audit(
    pg_url: str, role: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flytekitplugins.aios_approvals import decide, open_request, outcome
    from flytekitplugins.aios_approvals.evaluate import Env
    from flytekitplugins.aios_audit import close_all
    from flytekitplugins.aios_core.settings import get_settings, reset_settings

    open_store(pg_url).close()  # the owner creates the schema
    auditor = f"{role}_ro"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {auditor} LOGIN")
    try:
        grants = _doc_grants(_schema(pg_url), role, auditor)
        assert len(grants) == 10
        with psycopg.connect(pg_url, autocommit=True) as conn:
            for stmt in grants:
                conn.execute(stmt)
        writer_url = _as(pg_url, role)
        store = open_store(writer_url)
        recs = store.append_many([AuditEvent(kind="task", actor=f"w{i}") for i in range(3)])
        assert [r.seq for r in recs] == [1, 2, 3]
        ack = store.stage_many([AuditEvent(kind="task", actor="bulk", subject=str(i)) for i in range(5)])
        store.integrate_staged()  # (staging may have integrated them already)
        assert store.is_integrated(ack) and store.size() == 8
        claimed = AuditEvent(kind="action", actor="w", attributes={"claims": [{"key": "k-1", "holder": "w"}]})
        assert store.append(claimed).seq == 9
        store.close()
        monkeypatch.setenv("AIOS_AUDIT_STORE", writer_url)
        monkeypatch.setenv("AIOS_STATE_DIR", str(tmp_path / "writer"))
        close_all()
        reset_settings()
        env = Env.load(get_settings())
        rid = open_request("document-review", "low", "sha256:doc", {"doc": 1}, requester="service:x", env=env)
        assert decide(rid, "user:bob", "approve", env=env).accepted
        assert outcome(rid, env=env).status == "approved"
        close_all()
        # the writer signs a checkpoint, which stores the tree levels of the records it covers (a service's job)...
        cp, proof = tmp_path / "cp.txt", tmp_path / "proof.json"
        w_env = dict(os.environ, AIOS_AUDIT_STORE=writer_url, AIOS_STATE_DIR=str(tmp_path / "writer"))
        done = _aios(["audit", "checkpoint", "--out", str(cp), "--json"], w_env)
        assert done.returncode == 0, done.stderr
        signed = json.loads(done.stdout)
        assert signed["levels_stored_through"] == signed["tree_size"] >= 11 and not signed["levels_note"], signed
        # ...so the auditor's read-only role proves from them (nothing to integrate, which it could not write)
        a_env = dict(os.environ, AIOS_AUDIT_STORE=_as(pg_url, auditor), AIOS_STATE_DIR=str(tmp_path / "auditor"))
        done = _aios(["audit", "verify", "--json"], a_env)
        assert done.returncode == 0 and json.loads(done.stdout)["ok"] is True, done.stderr
        reader = open_store(_as(pg_url, auditor))
        assert nodes.stored_tree(reader, signed["tree_size"]) is not None
        reader.close()
        done = _aios(["audit", "prove", recs[1].record_id, "--checkpoint", str(cp), "--out", str(proof)], a_env)
        assert done.returncode == 0 and json.loads(proof.read_text())["leaf_index"] == 1, done.stderr
    finally:
        close_all()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {auditor}")
            conn.execute(f"DROP ROLE {auditor}")


@pytest.fixture
def writer_url(pg_url: str, role: str) -> Iterator[str]:
    """The URL of ``role`` holding exactly docs/audit.md's writer grants on a schema the owner created (auditor
    grants go to a role of their own, dropped afterwards)."""
    open_store(pg_url).close()
    auditor = f"{role}_ro"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {auditor} LOGIN")
        for stmt in _doc_grants(_schema(pg_url), role, auditor):
            conn.execute(stmt)
    try:
        yield _as(pg_url, role)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {auditor}")
            conn.execute(f"DROP ROLE {auditor}")


def test_a_writer_can_neither_plant_a_receipt_nor_consume_another_s_staged_row(writer_url: str) -> None:
    """Regression (review findings R1 and R7): the writers' grants let a writer delete other writers' staged,
    acknowledged events before they were sequenced (lost, and ``is_integrated`` then said they were in), and insert a
    receipt under another writer's staged row, whose waiting ``append`` then returned records that are not in the
    log. Writers now hold neither right; staged rows are consumed, and receipts written, only by the integrators'
    routines (run with the owner's rights), which consume a staged row only once its events are in the log as
    sealed and derive each receipt from the log."""
    import datetime as dt

    from flytekitplugins.aios_audit.records import _json_time, _to_json

    store = open_store(writer_url)
    store.append(AuditEvent(kind="task", actor="service:pipeline", subject="before"))
    victim = _to_json(AuditEvent(kind="task", actor="service:victim", subject="acknowledged"))
    with psycopg.connect(writer_url, autocommit=True) as att:
        sid = att.execute(
            "INSERT INTO audit_staged (events, cols, wants_receipt) VALUES (ARRAY[%b::bytea], '{}', false)"
            " RETURNING id",
            (victim,),
        ).fetchone()[0]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            att.execute("DELETE FROM audit_staged WHERE id = %s", (sid,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            att.execute("INSERT INTO audit_receipts VALUES (%s, 'x')", (sid,))
        when = _json_time(dt.datetime.now(dt.UTC))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not in the log as sealed"):
            att.execute("SELECT aios_audit_done(ARRAY[%s]::bigint[], ARRAY[1]::bigint[], %b, NULL)", (sid, when))
        assert att.execute("SELECT count(*) FROM audit_staged WHERE id = %s", (sid,)).fetchone() == (1,)
    # the staged row is still there, and the next append sequences it before its own event
    assert store.append(AuditEvent(kind="task", actor="a", subject="p")).seq == 3
    assert [r.event.subject for r in store.scan()] == ["before", "acknowledged", "p"]
    claimed = AuditEvent(kind="action", actor="a", attributes={"claims": [{"key": "k-r2", "holder": "a"}]})
    assert store.append(claimed).seq == 4  # the locked path (the Python integrator)
    ack = store.stage_many([AuditEvent(kind="task", actor="b")])
    store.integrate_staged(5)
    assert store.is_integrated(ack) and store.size() == 5
    store.close()


def test_a_writer_s_lineage_rows_cannot_plant_a_row_at_a_later_record(writer_url: str) -> None:
    """Regression: the server-side integrator inserted the lineage rows a writer staged at ``base + <event index the
    writer chose>``, unchecked: an index past the row's own events planted a row at a later record's seq, and both
    integrators then failed on its primary key when that record came. Indexes outside the row's events are dropped,
    and a row already at ``(seq, pos)`` is left for verification to report."""
    import datetime as dt

    from flytekitplugins.aios_audit.records import _json_time, _to_json

    store = open_store(writer_url)
    store.append(AuditEvent(kind="task", actor="service:pipeline", subject="before"))
    now = dt.datetime.now(dt.UTC)
    ev = _to_json(AuditEvent(kind="task", actor="service:x", subject="x"))
    with psycopg.connect(writer_url, autocommit=True) as att:
        att.execute(
            "CALL aios_audit_append(ARRAY[%b::bytea], ARRAY['task','x','',''], %s::text[], %s, %b, 4096, NULL)",
            (ev, ["3", "0", "", "execution:aios/production/run-7", "in_execution"], now, _json_time(now)),
        )
        assert att.execute("SELECT count(*) FROM audit_proj_lineage WHERE seq > 2").fetchone() == (0,)
    assert [store.append(AuditEvent(kind="task", actor="p", subject=f"r{i}", execution=EX)).seq for i in range(3)] == [
        3,
        4,
        5,
    ]
    ack = store.stage_many([AuditEvent(kind="task", actor="b", execution=EX)])
    store.integrate_staged(5)
    assert store.is_integrated(ack) and store.size() == 6
    store.close()


def test_a_batch_of_zero_does_not_spin_under_the_log_s_lock(writer_url: str) -> None:
    """Regression: ``aios_audit_append`` with ``p_batch = 0`` took no staged row and looped for ever holding the log's
    lock (every other append waited for the caller's statement timeout). A batch is at least one row."""
    import datetime as dt

    from flytekitplugins.aios_audit.records import _json_time, _to_json

    now = dt.datetime.now(dt.UTC)
    ev = _to_json(AuditEvent(kind="task", actor="service:x", subject="z"))
    with psycopg.connect(writer_url, autocommit=True) as att:
        att.execute("SET statement_timeout = '5s'")
        got = att.execute(
            "CALL aios_audit_append(ARRAY[%b::bytea], ARRAY['task','z','',''], '{}'::text[], %s, %b, 0, NULL)",
            (ev, now, _json_time(now)),
        ).fetchone()[0]
    assert got and got.split("|", 1)[1].split(":")[1] == "1", got
    store = open_store(writer_url)
    assert store.append(AuditEvent(kind="task", actor="a")).seq == 2
    store.close()


def test_a_writer_cannot_stage_bytes_whose_columns_are_not_what_parsers_read(writer_url: str) -> None:
    """Regression (review finding R4): bytes ``A,"event":B`` staged with A's columns through ``aios_audit_append`` were
    sealed by the server-side integrator with those columns, and ``aios audit verify``'s fast column check (it reads
    the entry's first ``"event"``) passed a record every JSON parser reads as B. A staged row with columns must now
    hold one JSON object per event, whose kind, subject, execution and task are its columns; else the insert fails
    (only the writer's own call), and nothing of it reaches the log."""
    import datetime as dt

    from flytekitplugins.aios_audit.records import _json_time, _to_json

    store = open_store(writer_url)
    store.append(AuditEvent(kind="task", actor="service:pipeline", subject="before"))
    a = _to_json(AuditEvent(kind="task", actor="service:x", subject="harmless"))
    b = _to_json(AuditEvent(kind="policy_decision", actor="service:x", subject="forged"))
    now = dt.datetime.now(dt.UTC)
    call = "CALL aios_audit_append(ARRAY[%b::bytea], ARRAY['task','harmless','',''], '{}'::text[], %s, %b, 4096, NULL)"
    with psycopg.connect(writer_url, autocommit=True) as att:
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            att.execute(call, (a + b',"event":' + b, now, _json_time(now)))
        with pytest.raises(psycopg.errors.CheckViolation):
            att.execute(call, (b, now, _json_time(now)))  # one object, but not the one its columns name
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            att.execute(
                "INSERT INTO audit_staged (events, cols) VALUES (%s, %s)",
                ([a + b',"event":' + b], ["task", "harmless", "", ""]),
            )
        assert att.execute("SELECT count(*) FROM audit_staged").fetchone() == (0,)
        att.execute(call, (a, now, _json_time(now)))  # an honest row goes through
    assert [r.event.subject for r in store.scan()] == ["before", "harmless"]
    store.close()
