"""Review R2 F3/F4/F5: rows a writer role (docs/audit.md's grants) inserts by hand stopped every append: projection
rows planted at future (seq, pos) (a duplicate key in the integrator's COPY and the locked path's INSERT), a staged
row holding a NULL event (the Python integrator's TypeError, for ever) and a staged row of millions of events (past
the integrator's own idle timeout, every try). b9775b4 then skipped a planted projection row, which hid the genuine
row of the record that came to that seq from every indexed reader (review R4/F1: a sealed rejection never read, so a
later approval counted). Now every projection table refuses a row at a seq the log does not hold
yet, at the planter's own insert; the integrators insert plainly, so a row planted before that trigger existed fails
the append loudly. The staged table refuses NULL elements and rows of more than MAX_STAGED_EVENTS events
(``stage_many`` splits), and a NULL element staged before that CHECK is sealed as the JSON null verification
reports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit.stores import AuditWriteError, open_store
from flytekitplugins.aios_audit.stores import pg_integrate as pgi
from flytekitplugins.aios_audit.verify import verify_store
from flytekitplugins.aios_core.context import ExecutionRef
from tests.security.test_pg_writer_forgery import writer_url  # noqa: F401 - the fixture

pytestmark = pytest.mark.postgres
EX = ExecutionRef(project="aios", domain="production", execution_id="run-7", task_name="extract", node_id="n0")
BIN = Path(sys.executable).parent


PLANTED_AT_2 = (
    "INSERT INTO audit_proj_lineage SELECT s, 0, 'x', 'y', 'z' FROM generate_series(2, 2001) s",
    "INSERT INTO audit_proj_approval_requests VALUES (2, 'apr-x', 'k', 'g', '')",
    "INSERT INTO audit_proj_approval_decisions VALUES (2, 'decoy', '', '')",
    "INSERT INTO audit_proj_approval_events VALUES (2, 'apr-x', 'approval_verified', '')",
    "INSERT INTO audit_proj_catalog VALUES (2, 0, 'noop', 'decoy', '', '')",
)


def test_planted_projection_rows_stop_no_append(writer_url: str, tmp_path: Path) -> None:  # noqa: F811
    honest = open_store(writer_url)
    honest.append(AuditEvent(kind="task", actor="service:pipeline", subject="before", execution=EX))
    with psycopg.connect(writer_url, autocommit=True) as att:
        # a row at a seq the log does not hold yet is refused at the planter's own insert (review of 2026-12-07
        # R4/F1: skipped by the next record's insert, it hid that record's row from the indexed readers), in every
        # projection table, by INSERT and by COPY
        for sql in PLANTED_AT_2:
            with pytest.raises(psycopg.errors.CheckViolation, match="no record there yet"):
                att.execute(sql)
        with pytest.raises(psycopg.errors.CheckViolation, match="no record there yet"):
            with att.cursor() as cur, cur.copy("COPY audit_proj_lineage FROM STDIN") as copy:
                copy.write_row((2, 0, "x", "y", "z"))
        assert att.execute("SELECT count(*) FROM audit_proj_lineage WHERE child = 'x'").fetchone()[0] == 0
    ack = honest.stage_many(
        [AuditEvent(kind="task", actor="service:bulk", subject=f"b{i}", execution=EX) for i in range(3)]
    )
    honest.integrate_staged()  # the Python integrator
    assert honest.is_integrated(ack)
    claimed = honest.append(
        AuditEvent(
            kind="action",
            actor="service:pipeline",
            execution=EX,
            attributes={"claims": [{"key": "approval-use:req-1", "holder": "aios/production/run-7"}]},
        )
    )  # the locked path
    plain = honest.append(AuditEvent(kind="task", actor="service:pipeline", subject="plain", execution=EX))
    assert (claimed.seq, plain.seq) == (5, 6) and honest.size() == 6
    assert verify_store(honest, workers=1).ok
    honest.close()
    env = dict(os.environ, AIOS_AUDIT_STORE=writer_url, AIOS_STATE_DIR=str(tmp_path / "state"))
    out = subprocess.run([str(BIN / "aios"), "audit", "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr  # nothing was planted: every projection row is genuine


def test_a_row_planted_before_the_trigger_fails_the_append_loudly(pg_url: str, writer_url: str, tmp_path: Path) -> None:  # noqa: F811
    """A row at the next seq planted before the upgrade (the owner disables the trigger to make one) makes the
    integrators fail, never skip the genuine row (which hid it from every indexed reader)."""
    honest = open_store(writer_url)
    honest.append(AuditEvent(kind="task", actor="service:pipeline", subject="before", execution=EX))
    with psycopg.connect(pg_url, autocommit=True) as owner:
        owner.execute("ALTER TABLE audit_proj_lineage DISABLE TRIGGER audit_proj_lineage_no_future")
        owner.execute("INSERT INTO audit_proj_lineage VALUES (2, 0, 'x', 'y', 'z')")
        owner.execute("ALTER TABLE audit_proj_lineage ENABLE TRIGGER audit_proj_lineage_no_future")
    # the server-side integrator (a plain append, nobody else integrating): refused, nothing recorded or staged
    with pytest.raises(AuditWriteError, match="duplicate key"):
        honest.append(AuditEvent(kind="task", actor="service:pipeline", subject="plain", execution=EX))
    assert honest.size() == 1 and pgi._staged_count(honest._conn()) == 0  # type: ignore[attr-defined]
    # the Python integrator: the acknowledged row stays staged, its integration fails every try
    ack = honest.stage_many([AuditEvent(kind="task", actor="service:bulk", subject="b", execution=EX)])
    with pytest.raises(psycopg.errors.UniqueViolation):
        honest.integrate_staged()
    assert not honest.is_integrated(ack) and honest.size() == 1
    honest.close()
    env = dict(os.environ, AIOS_AUDIT_STORE=pg_url, AIOS_STATE_DIR=str(tmp_path / "state"))
    out = subprocess.run([str(BIN / "aios"), "audit", "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "projection" in (out.stdout + out.stderr), out.stdout + out.stderr


def test_a_planted_decision_row_cannot_hide_a_rejection(
    monkeypatch: pytest.MonkeyPatch,
    aios_env: Path,
    writer_url: str,  # noqa: F811
) -> None:
    """Review of 2026-12-07 R4/F1 (f1_hidden_reject): a decoy approval_decisions row the writer role planted at the
    next seq made the locked append skip carol's sealed rejection's row; the indexed readers never saw it, and bob's
    later approval made the request approved. Now the decoy is refused and the rejection stands."""
    from flytekitplugins.aios_approvals import decide, open_request, outcome
    from flytekitplugins.aios_approvals.evaluate import Env
    from flytekitplugins.aios_core.settings import get_settings, reset_settings

    monkeypatch.setenv("AIOS_AUDIT_STORE", writer_url)
    monkeypatch.setenv("AIOS_PRINCIPAL", "service:document-pipeline")
    reset_settings()
    rid = open_request(
        "payment-signoff",
        "medium",
        "sha256:inv-42",
        {"amount": 9000},
        requester="service:document-pipeline",
        env=Env.load(get_settings()),
    )
    monkeypatch.delenv("AIOS_PRINCIPAL")
    reset_settings()
    with psycopg.connect(writer_url, autocommit=True) as att:  # the attacker: the writer grants, nothing more
        head = att.execute("SELECT coalesce(max(seq), 0) FROM audit_log").fetchone()[0]
        try:
            att.execute("INSERT INTO audit_proj_approval_decisions VALUES (%s, 'decoy', '', '')", (head + 1,))
        except psycopg.errors.CheckViolation:
            pass  # refused at its own insert
    env = Env.load(get_settings())
    assert decide(rid, "user:carol", "reject", "duplicate invoice", env=env).accepted
    decide(rid, "user:bob", "approve", env=env)  # refused: the request is final
    got = outcome(rid, env=Env.load(get_settings()))
    assert got.status == "rejected", (got.status, got.reason)
    with psycopg.connect(writer_url) as conn:
        rows = conn.execute("SELECT seq, request_id, action FROM audit_proj_approval_decisions").fetchall()
    assert (head + 1, rid, "reject") in rows and all(r[1] != "decoy" for r in rows)


def test_a_writer_cannot_stage_a_null_event(writer_url: str) -> None:  # noqa: F811
    with psycopg.connect(writer_url, autocommit=True) as att, pytest.raises(psycopg.errors.CheckViolation):
        att.execute("INSERT INTO audit_staged (events, cols, wants_receipt) VALUES (ARRAY[NULL]::bytea[], '{}', false)")


def test_a_null_event_staged_before_the_check_stops_nothing(pg_url: str, writer_url: str) -> None:  # noqa: F811
    with psycopg.connect(pg_url, autocommit=True) as owner:  # as a store staged before the upgrade holds it
        owner.execute("ALTER TABLE audit_staged DROP CONSTRAINT IF EXISTS audit_staged_events_bounded")
        owner.execute(
            "INSERT INTO audit_staged (events, cols, wants_receipt) VALUES (ARRAY[NULL]::bytea[], '{}', false)"
        )
    honest = open_store(writer_url)
    ack = honest.stage_many([AuditEvent(kind="task", actor="service:bulk", subject="b")])
    rec = honest.append(AuditEvent(kind="task", actor="a", subject="p"))  # integrates in Python after the NULL row
    assert honest.is_integrated(ack) and rec.seq == 3
    got = verify_store(honest, workers=1)
    assert not got.ok and got.first_bad_seq == 1 and got.problem == "edited", got.summary()
    honest.close()


def test_a_staged_row_holds_at_most_max_staged_events(writer_url: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    with psycopg.connect(writer_url, autocommit=True) as att, pytest.raises(psycopg.errors.CheckViolation):
        att.execute(
            "INSERT INTO audit_staged (events, cols, wants_receipt) SELECT array_agg('\\x6e756c6c'::bytea), '{}', false"
            " FROM generate_series(1, %s)",
            (pgi.MAX_STAGED_EVENTS + 1,),
        )
    monkeypatch.setattr(pgi, "MAX_STAGED_EVENTS", 4)  # stage_many splits a larger append into rows of that many
    honest = open_store(writer_url)
    ack = honest.stage_many([AuditEvent(kind="task", actor="service:bulk", subject=f"b{i}") for i in range(10)])
    with psycopg.connect(writer_url) as conn:
        sizes = [n for (n,) in conn.execute("SELECT cardinality(events) FROM audit_staged ORDER BY id")]
    assert sizes in ([4, 4, 2], [])  # ([] when its own integration already took them)
    honest.integrate_staged()
    assert honest.is_integrated(ack) and honest.size() == 10 and verify_store(honest, workers=1).ok
    honest.close()
