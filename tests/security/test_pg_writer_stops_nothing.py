"""Review R2 F3/F4/F5: rows a writer role (docs/audit.md's grants) inserts by hand stopped every append: projection
rows planted at future (seq, pos) (a duplicate key in the integrator's COPY and the locked path's INSERT), a staged
row holding a NULL event (the Python integrator's TypeError, for ever) and a staged row of millions of events (past
the integrator's own idle timeout, every try). Now a planted projection row is left for verification to report, the
table refuses NULL elements and rows of more than MAX_STAGED_EVENTS events (``stage_many`` splits), and a NULL
element staged before that CHECK is sealed as the JSON null verification reports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit.stores import open_store
from flytekitplugins.aios_audit.stores import pg_integrate as pgi
from flytekitplugins.aios_audit.verify import verify_store
from flytekitplugins.aios_core.context import ExecutionRef
from tests.security.test_pg_writer_forgery import writer_url  # noqa: F401 - the fixture

pytestmark = pytest.mark.postgres
EX = ExecutionRef(project="aios", domain="production", execution_id="run-7", task_name="extract", node_id="n0")
BIN = Path(sys.executable).parent


def test_planted_projection_rows_stop_no_append(writer_url: str, tmp_path: Path) -> None:  # noqa: F811
    honest = open_store(writer_url)
    honest.append(AuditEvent(kind="task", actor="service:pipeline", subject="before", execution=EX))
    with psycopg.connect(writer_url, autocommit=True) as att:
        att.execute("INSERT INTO audit_proj_lineage SELECT s, 0, 'x', 'y', 'z' FROM generate_series(2, 2001) s")
    ack = honest.stage_many(
        [AuditEvent(kind="task", actor="service:bulk", subject=f"b{i}", execution=EX) for i in range(3)]
    )
    honest.integrate_staged()  # the Python integrator (its lineage insert met the planted rows)
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
    assert verify_store(honest, workers=1).ok  # the chain is intact; the planted rows are the projection check's
    honest.close()
    env = dict(os.environ, AIOS_AUDIT_STORE=writer_url, AIOS_STATE_DIR=str(tmp_path / "state"))
    out = subprocess.run([str(BIN / "aios"), "audit", "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "projection" in (out.stdout + out.stderr), out.stdout + out.stderr


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
