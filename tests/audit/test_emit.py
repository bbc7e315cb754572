"""OpenLineage RunEvents (validated against the 2-0-2 schema) and OpenTelemetry spans, best-effort."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import jsonschema
import pytest

from flytekitplugins.aios_audit import AuditEvent, ModelRef, audit_log
from flytekitplugins.aios_audit.emit import flush
from flytekitplugins.aios_audit.otel import memory_exporter, trace_id_for
from flytekitplugins.aios_core.context import ExecutionRef
from flytekitplugins.aios_core.settings import reset_settings
from tests.audit import governed_tasks as gt

SCHEMA = json.loads(Path(__file__).with_name("openlineage-2-0-2-runevent.schema.json").read_text())


def _events(state: Path) -> list[dict]:
    flush()  # events are written by a background thread, off the task's critical path
    lines = (state / "lineage" / "events.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines if x.strip()]


def _validate(event: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(
        event
    )
    dt.datetime.fromisoformat(event["eventTime"])  # format date-time: not checked by jsonschema without extras


def test_runevents_validate_and_carry_facets(aios_env: Path) -> None:
    gt.count(words=gt.tokenize(text="alpha beta"))
    with pytest.raises(ValueError):
        gt.boom(x=1)
    events = _events(aios_env)
    assert len(events) == 3
    for e in events:
        _validate(e)
    tok, cnt, boom = events
    assert tok["eventType"] == "COMPLETE" and boom["eventType"] == "FAIL"
    assert tok["job"]["name"].endswith("governed_tasks.tokenize")
    assert tok["run"]["facets"]["aios_policy_decisions"]["decisions"][0]["effect"] == "allow"
    assert cnt["run"]["facets"]["aios_models"]["models"][0]["name"] == "counter"
    assert tok["outputs"][0]["name"] == cnt["inputs"][0]["name"]  # the digest links the datasets
    assert tok["run"]["facets"]["parent"]["run"]["runId"] == cnt["run"]["facets"]["parent"]["run"]["runId"]
    records = list(audit_log().scan())
    assert [e["run"]["facets"]["aios_audit"]["recordId"] for e in events] == [r.record_id for r in records]


def test_invalid_event_is_caught_by_the_schema(aios_env: Path) -> None:
    gt.tokenize(text="x")
    (event,) = _events(aios_env)
    event["run"]["runId"] = "not-a-uuid"
    with pytest.raises(jsonschema.ValidationError):
        _validate(event)


def test_emitter_failure_keeps_the_record(
    aios_env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIOS_LINEAGE_URL", f"file:{aios_env}/lineage")  # a directory: every emit fails
    (aios_env / "lineage").mkdir()
    reset_settings()
    with caplog.at_level(logging.WARNING):
        rec = audit_log().append(AuditEvent(kind="task", actor="a"))
        flush()
    assert audit_log().get(rec.record_id) is not None
    assert any("OpenLineage emit" in m for m in caplog.messages)


def test_spans_share_one_trace_per_execution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOS_OTEL_EXPORTER", "memory")
    monkeypatch.setenv("AIOS_LINEAGE_URL", "none")
    reset_settings()
    exporter = memory_exporter()
    exporter.clear()
    ex1 = ExecutionRef(project="p", domain="d", name="exec-1", task_name="t1")
    ex2 = ExecutionRef(project="p", domain="d", name="exec-2", task_name="t1")
    store = audit_log()
    recs = [
        store.append(AuditEvent(kind="task", actor="a", status="succeeded", execution=ex1)),
        store.append(
            AuditEvent(kind="task", actor="a", status="failed", execution=ex1.model_copy(update={"task_name": "t2"}))
        ),
        store.append(
            AuditEvent(kind="task", actor="a", execution=ex2, models=[ModelRef(name="m", version="1", digest="d")])
        ),
    ]
    spans = exporter.get_finished_spans()
    assert len(spans) == 3
    assert spans[0].context.trace_id == spans[1].context.trace_id == trace_id_for("p/d/exec-1")
    assert spans[2].context.trace_id == trace_id_for("p/d/exec-2") != spans[0].context.trace_id
    assert [f"{s.context.span_id:016x}" for s in spans] == [r.record_id[:16] for r in recs]
    assert spans[0].parent is not None and spans[0].parent.span_id == spans[1].parent.span_id
    assert spans[1].status.status_code.name == "ERROR"
    assert spans[2].attributes["aios.model.m"] == "1@d"


@pytest.mark.parametrize("with_execution", [True, False])
def test_direct_event_json_equals_the_openlineage_client_model(with_execution: bool) -> None:
    """The hot-path dict builder must stay identical to openlineage-python's own RunEvent + Serde output."""
    from openlineage.client.serde import Serde

    from flytekitplugins.aios_audit.lineage_events import run_event_dict, to_run_event
    from flytekitplugins.aios_audit.records import GENESIS, seal

    now = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
    ex = ExecutionRef(project="p", domain="d", name="e1", task_name="wf.t", node_id="n1", workflow="wf.w")
    events = [
        AuditEvent(kind="task", actor="a", status="failed", execution=ex if with_execution else None),
        AuditEvent(
            kind="policy_decision",
            actor="service:x",
            status="allow",
            subject="sha256:" + "ab" * 32,
            execution=ex if with_execution else None,
            ended_at=now,
            inputs={"doc": "sha256:" + "cd" * 32, "again": "sha256:" + "cd" * 32},
            outputs={"o0": "sha256:" + "ef" * 32},
            models=[ModelRef(name="m", version="1", digest="sha256:00")],
            policy_decisions=[{"effect": "allow", "policies": ["p1"], "reason": None, "empty": {}}],
            approvals=[{"request_id": "r1", "approver": "user:ann", "nested": [None, {}, {"k": 1}]}],
        ),
    ]
    for i, ev in enumerate(events, 1):
        record = seal(i, now, ev, GENESIS)
        assert run_event_dict(record) == Serde.to_dict(to_run_event(record))
